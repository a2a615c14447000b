"""The KIS WebSocket wire protocol, sans I/O (protocol doc §6-7).

Nothing here touches a socket or the event loop; every function maps text to values or
values to text, so it is tested against recorded frames and benchmarked in isolation.

Client to server::

    subscribe_message(approval_key, tr_id, tr_key, customer_type="P") -> str
    unsubscribe_message(approval_key, tr_id, tr_key, customer_type="P") -> str

Server to client: :func:`parse_frame` classifies a text frame::

    frame = parse_frame(text)      # DataFrame | Ack | PingPong, or raises FrameError

Decoders (what the benchmarks should call; each returns one value per record of the frame)::

    decode_quotes(frame) -> list[Quote]              # H0STCNT0 / H0NXCNT0 / H0UNCNT0
    decode_orderbooks(frame) -> list[OrderBook]      # H0STASP0 / H0NXASP0 / H0UNASP0
    decode_executions(frame, key, iv) -> list[Execution]         # H0STCNI0 / H0STCNI9
    decrypt_payload(payload, key, iv) -> str                     # AES-256-CBC + PKCS7
    decode_execution_plaintext(text) -> list[Execution]          # an already decrypted payload

Per record a decoder splits once, checks the record's shape and the fields that can fail
(symbol, price, order id), and wraps the split list; the remaining fields are converted when
read (see :mod:`kis_async.models.stream`). A malformed frame raises :class:`FrameError`; no
other exception escapes :func:`parse_frame` or a decoder.

The package splits the work by job: :mod:`.frames` (control messages, acks, PINGPONG,
:func:`parse_frame`), :mod:`.layouts` (the field-name tables of every TR), :mod:`.fields`
(record splitting and the shared parsing caches), :mod:`.crypto` (AES of notices), the
decoders :mod:`.quotes`, :mod:`.books` and :mod:`.notices`, and :mod:`.decoders` (the
tr_id -> decoder table). Import from this package; the submodules are internal.
"""

from __future__ import annotations

from kis_async.stream.protocol.books import decode_orderbooks
from kis_async.stream.protocol.crypto import decrypt_payload, encrypt_payload
from kis_async.stream.protocol.decoders import DECODERS, RecordDecoder, record_text
from kis_async.stream.protocol.fields import RawFields
from kis_async.stream.protocol.frames import (
    ACK_CODES,
    NOTICE_TR_IDS,
    ORDERBOOK_TR_IDS,
    PINGPONG,
    QUOTE_TR_IDS,
    TR_NOTICE_LIVE,
    TR_NOTICE_PAPER,
    TR_ORDERBOOK,
    TR_ORDERBOOK_NXT,
    TR_ORDERBOOK_UNIFIED,
    TR_QUOTE,
    TR_QUOTE_NXT,
    TR_QUOTE_UNIFIED,
    Ack,
    AckStatus,
    DataFrame,
    FrameError,
    PingPong,
    is_pingpong,
    parse_frame,
    subscribe_message,
    unsubscribe_message,
)
from kis_async.stream.protocol.layouts import (
    BOOK_LAYOUTS,
    MARKET_CLS_SESSIONS,
    NOTICE_FIELD_NAMES_23,
    NOTICE_FIELD_NAMES_26,
    ORD_EXG_GB,
    ORDERBOOK_FIELD_NAMES,
    QUOTE_FIELD_NAMES,
    QUOTE_FIELD_NAMES_NX,
    BookLayout,
)
from kis_async.stream.protocol.notices import decode_execution_plaintext, decode_executions
from kis_async.stream.protocol.quotes import decode_quotes

__all__ = [
    "ACK_CODES",
    "BOOK_LAYOUTS",
    "DECODERS",
    "MARKET_CLS_SESSIONS",
    "NOTICE_FIELD_NAMES_23",
    "NOTICE_FIELD_NAMES_26",
    "NOTICE_TR_IDS",
    "ORDERBOOK_FIELD_NAMES",
    "ORDERBOOK_TR_IDS",
    "ORD_EXG_GB",
    "PINGPONG",
    "QUOTE_FIELD_NAMES",
    "QUOTE_FIELD_NAMES_NX",
    "QUOTE_TR_IDS",
    "TR_NOTICE_LIVE",
    "TR_NOTICE_PAPER",
    "TR_ORDERBOOK",
    "TR_ORDERBOOK_NXT",
    "TR_ORDERBOOK_UNIFIED",
    "TR_QUOTE",
    "TR_QUOTE_NXT",
    "TR_QUOTE_UNIFIED",
    "Ack",
    "AckStatus",
    "BookLayout",
    "DataFrame",
    "FrameError",
    "PingPong",
    "RawFields",
    "RecordDecoder",
    "decode_execution_plaintext",
    "decode_executions",
    "decode_orderbooks",
    "decode_quotes",
    "decrypt_payload",
    "encrypt_payload",
    "is_pingpong",
    "parse_frame",
    "record_text",
    "subscribe_message",
    "unsubscribe_message",
]
