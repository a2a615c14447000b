"""Shared model plumbing: the KST zone, KIS string parsing, the KRX tick grid."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = [
    "KST",
    "KISModel",
    "is_on_tick",
    "is_valid_symbol",
    "kis_datetime",
    "normalize_order_id",
    "parse_decimal",
    "parse_int",
    "tick_size",
]

#: Korea Standard Time (no daylight saving time since 1988).
KST: Final = timezone(timedelta(hours=9), "KST")

_SYMBOL_RE: Final = re.compile(r"^(?:[0-9][0-9A-Z]{5}|Q[0-9]{6})$")

# Protocol doc §8: the unified KOSPI/KOSDAQ tick table since 2023-01-25, as (upper bound, tick).
_STOCK_TICKS: Final[tuple[tuple[int, int], ...]] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
)


def normalize_order_id(order_id: str) -> str:
    """KIS pads ODNO with zeros in some places and not in others; compare without them."""
    text = order_id.strip()
    stripped = text.lstrip("0")
    return stripped or ("0" if text else "")


def is_valid_symbol(symbol: object) -> bool:
    """True for a 6-character KRX short code or a 7-character ETN code starting with ``Q``."""
    return isinstance(symbol, str) and _SYMBOL_RE.match(symbol) is not None


def tick_size(price: Decimal | int, *, symbol: str | None = None) -> int:
    """The KRX tick size (호가단위) in won for ``price``.

    Stocks follow the 2023 unified table. ETNs (``Q`` codes) use 5 won, or 1 won below
    2,000 won; the ETF/ETN rule is not confirmed by KIS, see protocol doc §8.
    """
    value = int(price)
    if symbol is not None and symbol.startswith("Q"):
        return 1 if value < 2_000 else 5
    for bound, tick in _STOCK_TICKS:
        if value < bound:
            return tick
    return 1_000


def is_on_tick(price: Decimal, *, symbol: str | None = None) -> bool:
    """True when ``price`` is a positive whole number of won on the tick grid."""
    if price <= 0 or price != price.to_integral_value():
        return False
    return int(price) % tick_size(price, symbol=symbol) == 0


def parse_decimal(value: Any) -> Decimal | None:
    """Parse a KIS numeric string (possibly blank, zero-padded or signed) to Decimal."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def parse_int(value: Any) -> int | None:
    """Parse a KIS integer string (possibly blank or zero-padded) to int."""
    dec = parse_decimal(value)
    if dec is None:
        return None
    return int(dec)


def kis_datetime(day: str | date | None, hhmmss: str | None) -> datetime | None:
    """Combine KIS ``YYYYMMDD`` and ``HHMMSS`` strings into an aware KST datetime.

    A missing day means today in KST; a missing or malformed time gives None.
    """
    if not hhmmss:
        return None
    text = hhmmss.strip()
    if len(text) < 6 or not text[:6].isdigit():
        return None
    try:
        clock = time(int(text[0:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return None
    if isinstance(day, date):
        base = day
    elif day and len(day.strip()) == 8 and day.strip().isdigit():
        d = day.strip()
        try:
            base = date(int(d[0:4]), int(d[4:6]), int(d[6:8]))
        except ValueError:
            return None
    else:
        base = datetime.now(KST).date()
    return datetime.combine(base, clock, tzinfo=KST)


class KISModel(BaseModel):
    """Base for REST models: frozen, KIS field names as aliases, blank strings as None."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _blank_to_none(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                k: (None if isinstance(v, str) and not v.strip() else v) for k, v in data.items()
            }
        return data
