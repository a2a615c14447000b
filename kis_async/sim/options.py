"""Options of the simulator (one frozen dataclass, filled from ``KISSimulator(...)`` keywords)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from kis_async.config import Mode

__all__ = ["LAYOUTS", "LayoutProfile", "SimOptions"]


@dataclass(frozen=True)
class LayoutProfile:
    """The real-time record widths of one layout profile (protocol doc §7, §12)."""

    trade_fields: Literal[46, 47]
    book_layout: Literal["kt", "ota"]
    notice_fields: Literal[23, 26]


#: ``current``: 47-field trades, 63-field H0STASP0 (kis-trader's live probe), 26-field
#: notices; ``legacy``: 46 / 59 / 23, as KIS sent before 2026 (python-kis parses these).
LAYOUTS: Final[dict[str, LayoutProfile]] = {
    "current": LayoutProfile(47, "kt", 26),
    "legacy": LayoutProfile(46, "ota", 23),
}


@dataclass(frozen=True, kw_only=True)
class SimOptions:
    """Everything configurable about a :class:`~kis_async.sim.KISSimulator`.

    See :class:`~kis_async.sim.KISSimulator` for the meaning of each field.
    """

    seed: int
    mode: Mode
    app_key: str
    app_secret: str
    account_id: str
    hts_id: str
    account_name: str
    starting_cash: int
    rate_limit: bool
    requests_per_second: int
    token_lifetime: float
    token_reuse_window: float
    token_issue_interval: float
    approval_key_lifetime: float
    quote_interval: float | None
    records_per_frame: int
    layout: Literal["current", "legacy"]
    trade_fields: Literal[46, 47]
    book_layout: Literal["kt", "ota"]
    notice_fields: Literal[23, 26]
    pingpong_interval: float
    pingpong_timeout: float
    max_registrations: int
    daily_ccld_page_size: int
    balance_page_size: int
    rvsecncl_page_size: int
    start_time: datetime | None

    @property
    def is_paper(self) -> bool:
        """True in paper mode."""
        return self.mode is Mode.PAPER
