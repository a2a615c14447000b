"""The tr_id -> decoder table the router dispatches by."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kis_async.models.market import OrderBook
from kis_async.models.stream import (
    Execution,
    Quote,
)
from kis_async.stream.protocol.books import decode_orderbooks
from kis_async.stream.protocol.frames import (
    TR_NOTICE_LIVE,
    TR_NOTICE_PAPER,
    TR_ORDERBOOK,
    TR_ORDERBOOK_NXT,
    TR_ORDERBOOK_UNIFIED,
    TR_QUOTE,
    TR_QUOTE_NXT,
    TR_QUOTE_UNIFIED,
    DataFrame,
)
from kis_async.stream.protocol.notices import decode_executions
from kis_async.stream.protocol.quotes import decode_quotes

# -- the tr_id -> decoder table ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordDecoder:
    """How the data frames of one TR become values.

    Attributes:
        decode: ``decode(frame, crypto)`` -> the frame's values; ``crypto`` is the
            ``(key, iv)`` of this TR's latest ack, or None.
        keyed: True for market data, whose values carry ``.symbol`` and are routed to the
            subscribers of that symbol; False for account notices (one key: the HTS id),
            which go to the execution feed.
    """

    decode: Callable[[DataFrame, tuple[str, str] | None], Sequence[Any]]
    keyed: bool = True


def _quotes(frame: DataFrame, crypto: tuple[str, str] | None) -> list[Quote]:
    return decode_quotes(frame)


def _orderbooks(frame: DataFrame, crypto: tuple[str, str] | None) -> list[OrderBook]:
    return decode_orderbooks(frame)


def _notices(frame: DataFrame, crypto: tuple[str, str] | None) -> list[Execution]:
    key, iv = crypto if crypto is not None else (None, None)
    return decode_executions(frame, key, iv)


#: Every TR the client decodes: the KRX, NXT and 통합 trades and books, and the notices.
#: Adding a feed is one entry here plus the layout it decodes with; the manager routes by
#: this table only.
DECODERS: Final[Mapping[str, RecordDecoder]] = {
    TR_QUOTE: RecordDecoder(_quotes),
    TR_QUOTE_NXT: RecordDecoder(_quotes),
    TR_QUOTE_UNIFIED: RecordDecoder(_quotes),
    TR_ORDERBOOK: RecordDecoder(_orderbooks),
    TR_ORDERBOOK_NXT: RecordDecoder(_orderbooks),
    TR_ORDERBOOK_UNIFIED: RecordDecoder(_orderbooks),
    TR_NOTICE_LIVE: RecordDecoder(_notices, keyed=False),
    TR_NOTICE_PAPER: RecordDecoder(_notices, keyed=False),
}


def record_text(value: Quote | OrderBook) -> str | None:
    """The ``^``-separated record a decoded trade or book came from, or None.

    A value decoded from a frame keeps its record; this gives it back, so the record can be
    carried elsewhere (the gateway publishes it to Redis) and decoded again with the same
    decoder: ``DECODERS[tr_id].decode(DataFrame(False, tr_id, 1, text), None)``. A book gives
    the fields of its layout (extra trailing fields KIS may add are not carried). Values
    built in memory (not decoded) have no record: None.
    """
    f = getattr(value, "_f", None)
    if f is None:
        return None
    if isinstance(f, tuple):  # a book: (fields, offset, day, layout)
        fields, offset, _day, layout = f
        return "^".join(fields[offset : offset + len(layout.names)])
    offset = value._o  # type: ignore[union-attr]
    return "^".join(f[offset : offset + value._n])  # type: ignore[union-attr]
