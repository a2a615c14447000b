"""Shared model plumbing: the KST zone and KIS string parsing (the KRX tick grid and the
symbol rule live in :mod:`kis_async.validation` and are re-exported here)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, model_validator

from kis_async.validation import is_on_tick, is_valid_symbol, tick_size

__all__ = [
    "KST",
    "KISModel",
    "is_on_tick",
    "is_valid_symbol",
    "kis_datetime",
    "parse_decimal",
    "parse_int",
    "tick_size",
]

#: Korea Standard Time (no daylight saving time since 1988).
KST: Final = timezone(timedelta(hours=9), "KST")


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


def _input_keys(model: type[BaseModel]) -> tuple[str, ...] | None:
    """The input keys ``model`` reads (field names and plain aliases), or None when an alias
    is not a plain string (then every key is checked)."""
    keys: list[str] = []
    for name, info in model.model_fields.items():
        keys.append(name)
        for alias in (info.alias, info.validation_alias):
            if alias is None:
                continue
            if not isinstance(alias, str):
                return None
            keys.append(alias)
    return tuple(dict.fromkeys(keys))


#: Per model class: the keys :meth:`KISModel._blank_to_none` looks at (see _input_keys).
_BLANK_KEYS: dict[type[BaseModel], tuple[str, ...] | None] = {}


class KISModel(BaseModel):
    """Base for REST models: frozen, KIS field names as aliases, blank strings as None."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _blank_to_none(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # Only the keys the model reads matter (the rest are ignored, extra="ignore"), so
        # look at those (~20) rather than rebuilding KIS's 80-field output; copy the dict
        # only when one of them is blank.
        try:
            keys = _BLANK_KEYS[cls]
        except KeyError:
            keys = _BLANK_KEYS[cls] = _input_keys(cls)
        if keys is None:
            keys = tuple(data)
        blank = [k for k in keys if isinstance(v := data.get(k), str) and not v.strip()]
        if not blank:
            return data
        cleaned = dict(data)
        for key in blank:
            cleaned[key] = None
        return cleaned
