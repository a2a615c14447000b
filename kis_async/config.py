"""Configuration: :class:`KISConfig` and :class:`Mode`.

A :class:`KISConfig` is immutable and validated at construction (the checks themselves live in
:mod:`kis_async.validation`). Invalid input raises a ``ValueError`` whose message names the
offending field but never repeats its value, because the values here are credentials and
account numbers.

``KISConfig(...)`` uses only its arguments; :meth:`KISConfig.from_env` reads ``KIS_<FIELD>``
variables and a ``.env`` file through pydantic-settings, from a settings model generated from
the dataclass's fields (a new field is loadable from the environment without more code).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr

from kis_async.validation import check_account_id, check_hts_id, check_number, check_url

__all__ = [
    "DEFAULT_REST_URLS",
    "DEFAULT_WS_URLS",
    "ENV_PREFIX",
    "KISConfig",
    "Mode",
    "mask_account",
]


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

_UNSET: Any = object()
# Sanity bounds: no KIS limit is anywhere near them; they keep NaN-like absurdities (a year of
# timeout, a million requests per second) from reaching the HTTP client and the limiter.
_MAX_SECONDS: Final = 86_400.0
_MAX_RPS: Final = 10_000.0
_MAX_RETRIES: Final = 100


def mask_account(account_id: str) -> str:
    """Return a log-safe form of an account number: only the last 2 CANO digits and the
    product code survive (``"1234567801"`` -> ``"******78-01"``).

    Args:
        account_id: a 10-digit account number, with or without the dash.
    """
    digits = account_id.replace("-", "")
    if len(digits) != 10:
        return "**********"
    return f"******{digits[6:8]}-{digits[8:]}"


def _credential(name: str, value: object) -> str:
    # Credentials go into HTTP headers and JSON bodies verbatim: printable ASCII, no spaces.
    if not isinstance(value, str) or not value:
        raise ValueError(f"KISConfig.{name} is required and must be a non-empty string")
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError(f"KISConfig.{name} must be printable ASCII without whitespace")
    return value


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
        timeout: per-request timeout in seconds (finite, > 0, at most a day).
        requests_per_second: client-side REST rate limit; defaults to 19 (live) or 2
            (paper); ``None`` disables client-side limiting.
        max_retries: retries after the first attempt for retryable failures (0 to 100).
        use_hashkey: add the ``hashkey`` header to order POSTs (KIS says it is optional).
        customer_type: ``"P"`` (individual, default) or ``"B"`` (corporate).
        token_refresh_margin: refresh the access token this many seconds before it expires.

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

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "app_key", _credential("app_key", self.app_key))
        secret = self.app_secret
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        set_(self, "app_secret", SecretStr(_credential("app_secret", raw)))
        set_(self, "account_id", check_account_id(self.account_id))
        try:
            mode = Mode(str(self.mode).lower())
        except ValueError:
            raise ValueError("KISConfig.mode must be 'paper' or 'live'") from None
        set_(self, "mode", mode)
        if self.hts_id is not None:
            set_(self, "hts_id", check_hts_id(self.hts_id))
        if self.rest_url is _UNSET or not self.rest_url:
            set_(self, "rest_url", DEFAULT_REST_URLS[mode])
        if self.ws_url is _UNSET or not self.ws_url:
            set_(self, "ws_url", DEFAULT_WS_URLS[mode])
        rest_url = check_url("KISConfig.rest_url", self.rest_url, schemes=("http", "https"))
        set_(self, "rest_url", rest_url.rstrip("/"))
        check_url("KISConfig.ws_url", self.ws_url, schemes=("ws", "wss"))
        if self.requests_per_second is _UNSET:
            set_(self, "requests_per_second", DEFAULT_REQUESTS_PER_SECOND[mode])
        if self.requests_per_second is not None:
            check_number(
                "KISConfig.requests_per_second", self.requests_per_second, maximum=_MAX_RPS
            )
        check_number("KISConfig.timeout", self.timeout, maximum=_MAX_SECONDS)
        check_number(
            "KISConfig.max_retries",
            self.max_retries,
            allow_minimum=True,
            maximum=_MAX_RETRIES,
            integer=True,
        )
        if not isinstance(self.use_hashkey, bool):
            raise ValueError("KISConfig.use_hashkey must be True or False")
        if self.customer_type not in ("P", "B"):
            raise ValueError("KISConfig.customer_type must be 'P' or 'B'")
        check_number(
            "KISConfig.token_refresh_margin",
            self.token_refresh_margin,
            allow_minimum=True,
            maximum=_MAX_SECONDS,
        )
        if self.token_cache_dir is not None:
            if not isinstance(self.token_cache_dir, str | os.PathLike):
                raise ValueError("KISConfig.token_cache_dir must be a path or None")
            text = os.fspath(self.token_cache_dir)
            if not isinstance(text, str) or not text or not text.isprintable():
                raise ValueError(
                    "KISConfig.token_cache_dir must be a non-empty path without control characters"
                )
            set_(self, "token_cache_dir", Path(text).expanduser())

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
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: str | os.PathLike[str] | None = _UNSET,
        **overrides: Any,
    ) -> KISConfig:
        """Build a configuration from ``KIS_*`` variables and a ``.env`` file.

        Loading goes through pydantic-settings: every field is read from ``KIS_<FIELD>``
        (``KIS_APP_KEY``, ``KIS_ACCOUNT_ID``, ``KIS_MODE`` in any case, ``KIS_TIMEOUT``,
        ``KIS_USE_HASHKEY``, ...). Precedence: keyword ``overrides`` > environment > ``.env``
        > defaults. Blank variables count as unset; ``none`` sets an optional field to None
        (``KIS_TOKEN_CACHE_DIR=none`` disables the disk cache).

        Args:
            environ: a mapping to read instead of ``os.environ`` (for tests and embedding).
            env_file: the ``.env`` file to read; a missing file is ignored. Defaults to
                ``./.env`` when reading ``os.environ`` and to no file when ``environ`` is
                given; ``None`` reads no file.
            **overrides: any :class:`KISConfig` field.

        Raises:
            ValueError: a required variable is missing or a value is malformed. The message
                names the field and the variable, never the value.
        """
        # Imported here: pydantic-settings (and python-dotenv) cost nothing until used.
        from kis_async._settings import read_settings  # noqa: PLC0415

        if env_file is _UNSET:
            env_file = ".env" if environ is None else None
        values = read_settings(cls, environ, env_file, prefix=ENV_PREFIX)
        values.update(overrides)
        for required in ("app_key", "app_secret", "account_id"):
            if values.get(required) is None:
                raise ValueError(
                    f"KISConfig.{required} is required: set {ENV_PREFIX}{required.upper()} "
                    f"or pass {required}="
                )
        return cls(**values)


#: The prefix of every environment variable :meth:`KISConfig.from_env` reads.
ENV_PREFIX: Final = "KIS_"
