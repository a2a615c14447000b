"""Options of the simulator (one frozen dataclass, filled from ``KISSimulator(...)`` keywords)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from kis_async.config import Mode

__all__ = ["SimOptions"]


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
