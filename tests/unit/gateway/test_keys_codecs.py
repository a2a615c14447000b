"""The gateway's Redis entries carry exactly what a direct socket would decode (no server)."""

from __future__ import annotations

import pickle
from datetime import date, datetime
from decimal import Decimal

import pytest

from kis_async.config import KISConfig
from kis_async.gateway.keys import (
    GatewayKeys,
    decode_execution,
    decode_market,
    encode_execution,
    encode_market,
    field_of,
    published_ns,
    reg_field,
)
from kis_async.models import KST, Exchange, Execution, ExecutionKind, OrderType, Side
from kis_async.stream.protocol import (
    DataFrame,
    decode_execution_plaintext,
    decode_orderbooks,
    decode_quotes,
    record_text,
)

SAMPLE_46 = (
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^"
    "219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^"
    "-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
)
FILL_26 = (
    "HTSID^1234567801^0000002891^^02^0^00^0^136480^0000000001^000003190^094941^0^2^2^06010^"
    "000000001^김한투^^1^N^^10^^하림^000003190"
)


def _book(width: int, symbol: str = "005930") -> str:
    asks = [str(72_000 + 100 * i) for i in range(10)]
    bids = [str(71_900 - 100 * i) for i in range(10)]
    qty = [str(10 + i) for i in range(20)]
    tail = ["145", "245", "0", "0", "71950", "1200", "1200", "50", "2", "0.07", "3052507"]
    fields = [symbol, "093354", "0", *asks, *bids, *qty, *tail]
    fields += ["0"] * (width - len(fields))
    return "^".join(fields)


def _bytes(entry: dict[str, str]) -> dict[bytes, bytes]:
    # redis-py returns bytes unless decode_responses is set: both forms must decode.
    return {k.encode(): v.encode() for k, v in entry.items()}


@pytest.mark.parametrize("tr_id", ["H0STCNT0", "H0NXCNT0", "H0UNCNT0"])
@pytest.mark.parametrize("record", [SAMPLE_46, SAMPLE_46 + "^2"])
def test_trade_entries_decode_to_the_same_quote(tr_id: str, record: str) -> None:
    """A trade in the middle of a 3-record frame travels alone and decodes equal."""
    other = record.replace("005930", "000660", 1)
    frame = DataFrame(False, tr_id, 3, "^".join([other, record, other]))
    quote = decode_quotes(frame)[1]
    assert record_text(quote) == record
    entry = encode_market(tr_id, quote)
    assert entry is not None
    for fields in (entry, _bytes(entry)):
        again = decode_market(fields)
        assert again == quote
        assert dict(again.raw) == dict(quote.raw)
        assert again.market == quote.market
        assert again.session == quote.session
    assert published_ns(entry) is not None


@pytest.mark.parametrize(("tr_id", "width"), [("H0STASP0", 59), ("H0STASP0", 63), ("H0UNASP0", 66)])
def test_book_entries_decode_to_the_same_book(tr_id: str, width: int) -> None:
    record = _book(width)
    frame = DataFrame(False, tr_id, 2, record + "^" + _book(width, "000660"))
    book = decode_orderbooks(frame, day=date(2026, 12, 1))[0]
    entry = encode_market(tr_id, book)
    assert entry is not None
    again = decode_market(_bytes(entry))
    assert again.symbol == "005930"
    assert again.asks == book.asks
    assert again.bids == book.bids
    assert again.mid_price == book.mid_price


def test_values_built_in_memory_have_no_record() -> None:
    """A value not decoded from a frame (pickled, or built by hand) is not published."""
    book = decode_orderbooks(DataFrame(False, "H0STASP0", 1, _book(59)), day=date(2026, 12, 1))[0]
    plain_book = pickle.loads(pickle.dumps(book))
    assert plain_book == book
    assert record_text(plain_book) is None
    assert encode_market("H0STASP0", plain_book) is None
    assert record_text(book) is not None


def test_execution_entries_round_trip() -> None:
    """A decoded notice (Korean names, raw fields) and a REST-found fill both survive."""
    [notice] = decode_execution_plaintext(FILL_26)
    found = Execution(
        kind=ExecutionKind.FILLED,
        broker_order_id="0000000042",
        original_order_id=None,
        branch_no="06010",
        symbol="005930",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        qty=7,
        price=Decimal("71900"),
        order_qty=10,
        time=datetime(2026, 12, 1, 9, 30, 1, tzinfo=KST),
        source="reconcile",
        exchange=Exchange.SOR,
        venue=Exchange.NXT,
    )
    names = [
        "kind",
        "broker_order_id",
        "original_order_id",
        "branch_no",
        "symbol",
        "side",
        "order_type",
        "qty",
        "price",
        "order_qty",
        "time",
        "source",
        "name",
        "raw",
        "exchange",
        "venue",
    ]
    for event, cum in ((notice, 1), (found, 7)):
        entry = encode_execution(event, cum)
        again, cum_again = decode_execution(_bytes(entry))
        assert cum_again == cum
        for name in names:
            assert getattr(again, name) == getattr(event, name), name
    accepted, cum = decode_execution(encode_execution(found, None))
    assert cum is None
    assert accepted.kind is ExecutionKind.FILLED


def test_key_names_carry_no_secret() -> None:
    config = KISConfig(
        app_key="PSxxAPPKEYxx0123456789",
        app_secret="s" * 40,
        account_id="12345678-01",
        mode="paper",
    )
    keys = GatewayKeys.for_config(config)
    names = [keys.lease, keys.workers, keys.executions, keys.market("H0STCNT0", "005930")]
    for name in names:
        assert "12345678" not in name
        assert "APPKEY" not in name
    assert keys.ns == GatewayKeys.for_config(config).ns
    assert field_of(reg_field("H0STCNT0", "005930").encode()) == ("H0STCNT0", "005930")
    with pytest.raises(ValueError, match="namespace"):
        GatewayKeys("bad name\n")
