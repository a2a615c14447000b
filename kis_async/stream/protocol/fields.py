"""Shared field parsing: record splitting, the day/time and price caches, raw field views."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any, Final

from kis_async.models.common import KST
from kis_async.models.stream import (
    _DEC_CACHE,
    _clock,
)
from kis_async.stream.protocol.frames import FrameError

_day_cache: list[Any] = [0.0, date(1970, 1, 1)]


def _today() -> date:
    """Today in KST, recomputed only when the cached day is over (cheap per frame)."""
    now = time.time()
    if now >= _day_cache[0]:
        current = datetime.now(KST)
        midnight = current.replace(hour=0, minute=0, second=0, microsecond=0)
        _day_cache[0] = midnight.timestamp() + 86_400.0
        _day_cache[1] = current.date()
    return _day_cache[1]  # type: ignore[no-any-return]


_MISSING: Final[Any] = object()
_DAY_TIMES: dict[tuple[date | None, str], datetime | None] = {}


def _day_time(day: date | None, hhmmss: str) -> datetime | None:
    """``HHMMSS`` on ``day`` as an aware KST datetime, cached (records of a second repeat it)."""
    key = (day, hhmmss)
    value = _DAY_TIMES.get(key, _MISSING)
    if value is _MISSING:
        value = _clock(day, hhmmss)
        if day is None:
            return value  # "today" moves: not cached
        if len(_DAY_TIMES) >= 65_536:
            _DAY_TIMES.clear()
        _DAY_TIMES[key] = value
    return value  # type: ignore[no-any-return]


# -- raw fields: a read-only view of one record by KIS field name -----------------------------


class RawFields(Mapping[str, str]):
    """A read-only view of one record's fields by KIS name, over the split frame.

    Fields past the known layout (KIS appends fields from time to time) are named
    ``FIELD<n>`` with ``n`` counted from 1.
    """

    __slots__ = ("_fields", "_index", "_length", "_names", "_start")

    def __init__(
        self,
        names: tuple[str, ...],
        index: Mapping[str, int],
        fields: list[str],
        start: int,
        length: int,
    ) -> None:
        self._names = names
        self._index = index
        self._fields = fields
        self._start = start
        self._length = length

    def _name(self, i: int) -> str:
        return self._names[i] if i < len(self._names) else f"FIELD{i + 1}"

    def __getitem__(self, name: str) -> str:
        i = self._index.get(name)
        if i is None and name.startswith("FIELD") and name[5:].isdigit():
            i = int(name[5:]) - 1
            if i < len(self._names):
                i = None
        if i is None or i < 0 or i >= self._length:
            raise KeyError(name)
        return self._fields[self._start + i]

    def __iter__(self) -> Iterator[str]:
        return (self._name(i) for i in range(self._length))

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"RawFields({dict(self)!r})"


# -- record splitting ---------------------------------------------------------------------------


def _split(payload: str, count: int, min_fields: int) -> tuple[list[str], int, int]:
    """Split a payload into fields; return (fields, records, fields per record).

    Records are concatenated with ``^`` (protocol doc §6.5), so a record's length is the
    field count divided by the record count. Extra trailing fields are tolerated.
    """
    fields = payload.split("^")
    records = count if count > 1 else 1
    per = len(fields) // records
    if per < min_fields:
        raise FrameError(
            f"{len(fields)} fields for {records} record(s); need {min_fields} per record"
        )
    return fields, records, per


#: ``Decimal`` of a price string through the shared cache, all in C when it hits (a miss
#: converts and caches: see ``_DecimalCache``); None for blank or unparsable text.
_cached_dec: Final = _DEC_CACHE.__getitem__
