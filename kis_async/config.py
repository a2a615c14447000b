"""Configuration: :class:`KISConfig` and :class:`Mode`.

A :class:`KISConfig` is immutable and validated at construction. Invalid input raises a
``ValueError`` whose message names the offending field but never repeats its value, because
the values here are credentials and account numbers.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr

__all__ = ["DEFAULT_REST_URLS", "DEFAULT_WS_URLS", "KISConfig", "Mode", "mask_account"]


class Mode(StrEnum):
    """Which KIS environment a configuration talks to."""

    PAPER = "paper"
    """모의투자: the paper-trading servers (``V…`` account TR ids, 2 requests/s)."""
    LIVE = "live"
    """실전투자: the live servers (real money, 20 requests/s)."""


# Protocol doc §1. The WebSocket path is not checked by KIS as far as anyone can tell; we send
# ``/tryitout`` because the current official sample and python-kis both do.
DEFAULT_REST_URLS: Final[Mapping[Mode, str]] = {
    Mode.LIVE: "https://openapi.koreainvestment.com:9443",
    Mode.PAPER: "https://openapivts.koreainvestment.com:29443",
}
DEFAULT_WS_URLS: Final[Mapping[Mode, str]] = {
    Mode.LIVE: "ws://ops.koreainvestment.com:21000/tryitout",
    Mode.PAPER: "ws://ops.koreainvestment.com:31000/tryitout",
}
# Published limits are 20/s live and 2/s paper (protocol doc §5). Live stays one under (as
# python-kis does); paper cannot go under 2 without halving throughput. The limiter's window is
# 1 s + 50 ms, so arrival jitter below 50 ms can never put more than the limit into KIS's 1-s
# window, and an EGW00201 that slips through anyway is retried.
DEFAULT_REQUESTS_PER_SECOND: Final[Mapping[Mode, float]] = {Mode.LIVE: 19.0, Mode.PAPER: 2.0}

_ACCOUNT_RE = re.compile(r"^(\d{8})-?(\d{2})$")
_UNSET: Any = object()


def mask_account(account_id: str) -> str:
    """Return a log-safe form of an account number: only the last 2 CANO digits and the
    product code survive (``"1234567801"`` -> ``"******78-01"``, a bare 8-digit CANO
    ``"12345678"`` -> ``"******78"``).

    Args:
        account_id: a 10-digit account number, with or without the dash, or a CANO.
    """
    digits = account_id.strip().replace("-", "")
    if len(digits) == 8 and digits.isascii() and digits.isdigit():
        return f"******{digits[6:]}"
    if len(digits) != 10:
        return "**********"
    return f"******{digits[6:8]}-{digits[8:]}"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "kis_async"


@dataclass(frozen=True, kw_only=True, repr=False, eq=True)
class KISConfig:
    """Everything a :class:`~kis_async.KISBroker` needs to talk to KIS.

    Args:
        app_key: the app key issued on the KIS developer portal.
        app_secret: the app secret; kept as a :class:`pydantic.SecretStr`, never shown.
        account_id: 10 digits, ``"12345678-01"`` or ``"1234567801"`` (CANO + product code).
        hts_id: the HTS login id; needed only for real-time execution notices.
        mode: :attr:`Mode.PAPER` (default) or :attr:`Mode.LIVE`.
        rest_url: REST base URL; defaults to KIS's host for ``mode``.
        ws_url: WebSocket URL; defaults to KIS's host for ``mode``.
        token_cache_dir: where the access token is cached (file 0600 in a 0700 directory);
            ``None`` disables the disk cache. Defaults to ``~/.cache/kis_async``.
        timeout: per-request timeout in seconds.
        requests_per_second: client-side REST rate limit; defaults to 19 (live) or 2
            (paper); ``None`` disables client-side limiting.
        max_retries: retries after the first attempt for retryable failures.
        use_hashkey: add the ``hashkey`` header to order POSTs (KIS says it is optional).
        customer_type: ``"P"`` (individual, default) or ``"B"`` (corporate).
        token_refresh_margin: refresh the access token this many seconds before it expires.
        max_response_bytes: the largest REST response body read; a longer one is abandoned
            with :class:`~kis_async.errors.ResponseTooLargeError` (default 4 MiB).
        log_traffic: write masked request/response and WebSocket control records to the
            ``kis_async.traffic`` logger at DEBUG (``KIS_LOG_TRAFFIC=1`` does the same).
        log_traffic_frames: the share of WebSocket data frames also recorded while traffic
            logging is on, from 0.0 (none, the default) to 1.0 (every frame).

    Raises:
        ValueError: a field is missing, empty or malformed. The message names the field only.
    """

    app_key: str
    app_secret: SecretStr
    account_id: str
    hts_id: str | None = None
    mode: Mode = Mode.PAPER
    rest_url: str = _UNSET
    ws_url: str = _UNSET
    token_cache_dir: Path | None = field(default_factory=_default_cache_dir)
    timeout: float = 10.0
    requests_per_second: float | None = _UNSET
    max_retries: int = 3
    use_hashkey: bool = False
    customer_type: str = "P"
    token_refresh_margin: float = 600.0
    max_response_bytes: int = 4 * 1024 * 1024
    log_traffic: bool = False
    log_traffic_frames: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("app_key", "account_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"KISConfig.{name} is required and must be a non-empty string")
            set_(self, name, value.strip())
        secret = self.app_secret
        if isinstance(secret, str):
            secret = SecretStr(secret)
        if not isinstance(secret, SecretStr) or not secret.get_secret_value().strip():
            raise ValueError("KISConfig.app_secret is required and must be a non-empty string")
        set_(self, "app_secret", SecretStr(secret.get_secret_value().strip()))
        match = _ACCOUNT_RE.match(self.account_id)
        if match is None:
            raise ValueError(
                "KISConfig.account_id is malformed: expected 10 digits, written as "
                "8 digits, a dash and 2 digits, or as 10 digits"
            )
        set_(self, "account_id", match.group(1) + match.group(2))
        try:
            mode = Mode(str(self.mode).lower())
        except ValueError:
            raise ValueError("KISConfig.mode must be 'paper' or 'live'") from None
        set_(self, "mode", mode)
        if self.hts_id is not None:
            hts = self.hts_id.strip() if isinstance(self.hts_id, str) else ""
            if not hts:
                raise ValueError("KISConfig.hts_id must be a non-empty string when given")
            set_(self, "hts_id", hts)
        if self.rest_url is _UNSET or not self.rest_url:
            set_(self, "rest_url", DEFAULT_REST_URLS[mode])
        if self.ws_url is _UNSET or not self.ws_url:
            set_(self, "ws_url", DEFAULT_WS_URLS[mode])
        set_(self, "rest_url", str(self.rest_url).rstrip("/"))
        for name in ("rest_url", "ws_url"):
            url = str(getattr(self, name))
            scheme = ("http://", "https://") if name == "rest_url" else ("ws://", "wss://")
            if not url.startswith(scheme):
                raise ValueError(f"KISConfig.{name} must start with {' or '.join(scheme)}")
        if self.requests_per_second is _UNSET:
            set_(self, "requests_per_second", DEFAULT_REQUESTS_PER_SECOND[mode])
        rps = self.requests_per_second
        if rps is not None and (not isinstance(rps, int | float) or rps <= 0):
            raise ValueError("KISConfig.requests_per_second must be a positive number or None")
        if not isinstance(self.timeout, int | float) or self.timeout <= 0:
            raise ValueError("KISConfig.timeout must be a positive number of seconds")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError("KISConfig.max_retries must be an integer >= 0")
        if self.customer_type not in ("P", "B"):
            raise ValueError("KISConfig.customer_type must be 'P' or 'B'")
        if self.token_refresh_margin < 0:
            raise ValueError("KISConfig.token_refresh_margin must be >= 0")
        if self.token_cache_dir is not None:
            set_(self, "token_cache_dir", Path(self.token_cache_dir).expanduser())
        cap = self.max_response_bytes
        if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
            raise ValueError("KISConfig.max_response_bytes must be a positive integer")
        if not isinstance(self.log_traffic, bool):
            raise ValueError("KISConfig.log_traffic must be True or False")
        rate = self.log_traffic_frames
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or not 0.0 <= rate <= 1.0
        ):
            raise ValueError("KISConfig.log_traffic_frames must be a number from 0.0 to 1.0")

    # -- derived values ---------------------------------------------------------------------

    @property
    def cano(self) -> str:
        """The 8-digit account number (``CANO``)."""
        return self.account_id[:8]

    @property
    def product_code(self) -> str:
        """The 2-digit account product code (``ACNT_PRDT_CD``, ``01`` for 종합)."""
        return self.account_id[8:]

    @property
    def masked_account(self) -> str:
        """The account number in a masked form safe for logs."""
        return mask_account(self.account_id)

    @property
    def masked_app_key(self) -> str:
        """The app key's first 4 characters plus ``...``, safe for logs."""
        return self.app_key[:4] + "..."

    @property
    def is_paper(self) -> bool:
        """True in paper (모의투자) mode."""
        return self.mode is Mode.PAPER

    def __repr__(self) -> str:
        return (
            f"KISConfig(app_key={self.masked_app_key!r}, app_secret=SecretStr('**********'), "
            f"account_id={self.masked_account!r}, hts_id={'set' if self.hts_id else None!r}, "
            f"mode={self.mode.value!r}, rest_url={self.rest_url!r}, ws_url={self.ws_url!r})"
        )

    __str__ = __repr__

    def replace(self, **changes: Any) -> KISConfig:
        """Return a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> KISConfig:
        """Build a configuration from ``KIS_*`` environment variables.

        Reads ``KIS_APP_KEY``, ``KIS_APP_SECRET``, ``KIS_ACCOUNT_ID``, ``KIS_HTS_ID``,
        ``KIS_MODE`` (``paper``/``live``, any case), ``KIS_REST_URL``, ``KIS_WS_URL`` and
        ``KIS_TOKEN_CACHE_DIR``. Keyword ``overrides`` win over the environment.

        Args:
            environ: the mapping to read instead of ``os.environ`` (for tests).
            **overrides: any :class:`KISConfig` field.

        Raises:
            ValueError: a required variable is missing or a value is malformed.
        """
        env = os.environ if environ is None else environ
        names = {
            "app_key": "KIS_APP_KEY",
            "app_secret": "KIS_APP_SECRET",
            "account_id": "KIS_ACCOUNT_ID",
            "hts_id": "KIS_HTS_ID",
            "mode": "KIS_MODE",
            "rest_url": "KIS_REST_URL",
            "ws_url": "KIS_WS_URL",
            "token_cache_dir": "KIS_TOKEN_CACHE_DIR",
        }
        values: dict[str, Any] = {}
        for attr, var in names.items():
            raw = env.get(var)
            if raw is not None and raw.strip():
                values[attr] = raw.strip()
        if "mode" in values:
            values["mode"] = values["mode"].lower()
        if "token_cache_dir" in values:
            values["token_cache_dir"] = Path(values["token_cache_dir"])
        values.update(overrides)
        for required in ("app_key", "app_secret", "account_id"):
            if required not in values:
                raise ValueError(
                    f"KISConfig.{required} is required: set {names[required]} or pass {required}="
                )
        return cls(**values)
