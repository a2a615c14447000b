"""Models: OrderRequest validation (before any network call), tick grid, KIS row mapping."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from kis_async import InvalidOrderError, Order, OrderRequest, OrderType, Position, Side
from kis_async.models import AuthenticationToken, OrderBook, PriceLevel, PriceSnapshot, tick_size
from kis_async.models.common import KST, is_on_tick, kis_datetime, parse_decimal, parse_int

BAD_REQUESTS: list[tuple[str, dict[str, object]]] = [
    ("empty symbol", {"symbol": ""}),
    ("5-digit symbol", {"symbol": "05930"}),
    ("7-digit symbol", {"symbol": "0059300"}),
    ("lowercase", {"symbol": "abcdef"}),
    ("symbol not str", {"symbol": 5930}),
    ("ETN without Q", {"symbol": "X500001"}),
    ("bad side", {"side": "hold"}),
    ("qty zero", {"qty": 0}),
    ("qty negative", {"qty": -5}),
    ("qty float", {"qty": 1.0}),
    ("qty str", {"qty": "10"}),
    ("qty bool", {"qty": True}),
    ("qty huge", {"qty": 10**12}),
    ("limit no price", {"price": None}),
    ("price zero", {"price": 0}),
    ("price negative", {"price": -100}),
    ("price fractional float", {"price": 71900.5}),
    ("price nan", {"price": float("nan")}),
    ("price garbage", {"price": "abc"}),
    ("price off tick 50k band", {"price": 71950}),
    ("price off tick 10 band", {"price": 10005}),
    ("price off tick 1000 band", {"price": 500_500}),
    ("price fraction decimal", {"price": Decimal("1999.5")}),
    ("market with price", {"order_type": OrderType.MARKET, "price": 71900}),
    ("best-limit with price", {"order_type": "03", "price": 71900}),
    ("unknown order type", {"order_type": "99"}),
    ("empty idempotency key", {"idempotency_key": ""}),
    ("huge idempotency key", {"idempotency_key": "k" * 500}),
    ("control chars in key", {"idempotency_key": "a\nb"}),
    ("price list", {"price": [71900]}),
]


def request(**overrides: object) -> OrderRequest:
    values: dict[str, object] = {"symbol": "005930", "side": "buy", "qty": 10, "price": 71900}
    values.update(overrides)
    return OrderRequest(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("case", "overrides"), BAD_REQUESTS, ids=[c for c, _ in BAD_REQUESTS])
def test_bad_order_requests_raise_invalid_order_error(
    case: str, overrides: dict[str, object]
) -> None:
    """Every bad order is refused with InvalidOrderError (a ValueError) at construction."""
    with pytest.raises(InvalidOrderError):
        request(**overrides)
    assert len(BAD_REQUESTS) >= 20


def test_valid_requests_normalise_price_and_side() -> None:
    """Ints, numeric strings and integral floats become Decimal; sides parse from text/codes."""
    assert request(price="71900").price == Decimal(71900)
    assert request(price=71900.0).price == Decimal(71900)
    assert request(side="SELL").side is Side.SELL
    assert request(side="02").side is Side.BUY
    market = request(order_type=OrderType.MARKET, price=None)
    assert market.price is None
    assert market.price_text == "0"
    assert request(order_type="01", price=0).price is None
    etn = request(symbol="Q500001", price=2005)
    assert etn.symbol == "Q500001"
    assert request(symbol="0001A0", price=1999).price == 1999


def test_request_is_immutable_and_fingerprinted() -> None:
    """Requests cannot be mutated; the fingerprint covers what defines the order."""
    req = request(idempotency_key="k1")
    with pytest.raises(AttributeError):
        req.qty = 5  # type: ignore[misc]
    assert req.fingerprint == "005930|02|00|10|71900"
    assert req.replace(qty=11).fingerprint != req.fingerprint
    assert req == request(idempotency_key="k1")
    assert hash(req) == hash(request(idempotency_key="k1"))
    assert "k1" in repr(req)


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (1999, 1),
        (2000, 5),
        (4995, 5),
        (5000, 10),
        (19990, 10),
        (20000, 50),
        (49950, 50),
        (50000, 100),
        (199900, 100),
        (200000, 500),
        (499500, 500),
        (500000, 1000),
    ],
)
def test_tick_table(price: int, tick: int) -> None:
    """The unified KRX tick table, at each band edge."""
    assert tick_size(price) == tick
    assert is_on_tick(Decimal(price))
    assert not is_on_tick(Decimal(price + 1)) or tick == 1


def test_parsers_handle_kis_strings() -> None:
    """Blank, zero-padded and signed KIS strings parse; garbage gives None."""
    assert parse_decimal("  ") is None
    assert parse_decimal("-0.14") == Decimal("-0.14")
    assert parse_decimal("x") is None
    assert parse_int("000000001") == 1
    assert parse_int(None) is None
    stamp = kis_datetime("20230612", "093354")
    assert stamp == datetime(2023, 6, 12, 9, 33, 54, tzinfo=KST)
    assert kis_datetime("20230612", "99") is None
    assert kis_datetime("2023061", "093354") is not None
    assert kis_datetime("20231301", "093354") is None


def test_order_maps_kis_row() -> None:
    """An inquire-daily-ccld row maps to Order by KIS alias; blanks become None."""
    row = {
        "odno": "0001569157",
        "ord_gno_brno": "06010",
        "orgn_odno": "",
        "pdno": "005930",
        "prdt_name": "삼성전자",
        "sll_buy_dvsn_cd": "02",
        "ord_dvsn_cd": "00",
        "ord_qty": "10",
        "ord_unpr": "71900",
        "tot_ccld_qty": "4",
        "avg_prvs": "71900",
        "rmn_qty": "6",
        "cncl_cfrm_qty": "0",
        "rjct_qty": "0",
        "unknown_field": "x",
    }
    order = Order.model_validate(row)
    assert order.broker_order_id == "0001569157"
    assert order.original_order_id is None
    assert order.side is Side.BUY
    assert order.order_type is OrderType.LIMIT
    assert order.filled_qty == 4
    assert order.price == Decimal(71900)


def test_position_and_snapshot_map_kis_fields() -> None:
    """Balance and price rows map by alias with Decimal money."""
    pos = Position.model_validate(
        {
            "pdno": "005930",
            "prdt_name": "삼성전자",
            "hldg_qty": "3",
            "ord_psbl_qty": "3",
            "pchs_avg_pric": "71000.0000",
            "prpr": "71900",
            "evlu_pfls_rt": "1.27",
        }
    )
    assert pos.qty == 3
    assert pos.avg_price == Decimal("71000.0000")
    snap = PriceSnapshot.model_validate(
        {"stck_shrn_iscd": "005930", "stck_prpr": "71900", "aspr_unit": "100"}
    )
    assert snap.price == Decimal(71900)
    assert snap.tick_size == 100
    assert snap.open is None


def test_orderbook_helpers() -> None:
    """Best levels and spread come from the first level of each side."""
    book = OrderBook(
        symbol="005930",
        time=None,
        asks=(PriceLevel(Decimal(72000), 5), PriceLevel(Decimal(72100), 1)),
        bids=(PriceLevel(Decimal(71900), 3),),
    )
    assert book.best_ask == PriceLevel(Decimal(72000), 5)
    assert book.best_bid is not None
    assert book.spread == Decimal(100)
    assert OrderBook(symbol="005930", time=None, asks=(), bids=()).spread is None


def test_token_repr_hides_value() -> None:
    """The token value never shows in its repr; expiry checks work."""
    token = AuthenticationToken.model_validate(
        {
            "access_token": "eyJ0eXAiOiJKV1Qi.secret.value",
            "token_type": "Bearer",
            "expires_at": datetime(2030, 1, 1, tzinfo=KST),
        }
    )
    assert "secret" not in repr(token)
    assert not token.expires_within(60, now=datetime(2029, 1, 1, tzinfo=KST))
    assert token.expires_within(60, now=datetime(2030, 1, 1, tzinfo=KST))
