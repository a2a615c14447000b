"""The simulated exchange: determinism, matching rules and account invariants."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kis_async.models.common import KST, tick_size
from kis_async.sim import SimClock, SimExchange, SimInvariantError
from kis_async.sim.exchange import DEFAULT_SYMBOLS, NoticeEvent, NoticeKind, SimRejectionError

START = datetime(2026, 11, 25, 10, 0, tzinfo=KST)


def _exchange(seed: int = 11, **kwargs: object) -> SimExchange:
    kwargs.setdefault("starting_cash", 1_000_000_000)
    return SimExchange(seed=seed, clock=SimClock(START), **kwargs)  # type: ignore[arg-type]


def test_listing_has_real_krx_symbols_on_the_tick_grid() -> None:
    """At least 10 real KRX names, each priced on the tick grid with a 10-level book."""
    ex = _exchange()
    assert len(ex.symbols) >= 10
    names = {code: name for code, name, _ in DEFAULT_SYMBOLS}
    assert names["005930"] == "삼성전자"
    assert names["000660"] == "SK하이닉스"
    for symbol in ex.symbols:
        price = ex.price(symbol)
        assert price % tick_size(price) == 0
        asks, bids = ex.book(symbol)
        assert len(asks) == len(bids) == 10


def test_same_seed_same_market() -> None:
    """Two exchanges with the same seed produce identical prices; another seed differs."""
    a, b, c = _exchange(5), _exchange(5), _exchange(6)
    path_a = [t.price for t in a.step(200)]
    path_b = [t.price for t in b.step(200)]
    path_c = [t.price for t in c.step(200)]
    assert path_a == path_b
    assert path_a != path_c
    assert a.book("005930") == b.book("005930")
    assert all(p % tick_size(p) == 0 for p in path_a)


def test_marketable_limit_fills_partially_when_depth_is_short() -> None:
    """A buy limit at the 2nd ask takes levels 1-2 and rests the remainder at its price."""
    ex = _exchange()
    asks, _ = ex.book("005930")
    depth = asks[0].qty + asks[1].qty
    order = ex.place_order(
        symbol="005930", side="02", qty=depth + 7, order_type="00", price=asks[1].price
    )
    assert order.filled_qty == depth
    assert order.remaining_qty == 7
    assert [f.price for f in ex.fills] == [asks[0].price, asks[1].price]
    assert ex.book("005930")[0][0].price == asks[2].price
    ex.check_invariants()


def test_resting_limit_fills_when_the_market_crosses_it() -> None:
    """A resting buy fills at its own price once a forced move crosses it."""
    ex = _exchange()
    _, bids = ex.book("035720")
    limit = bids[3].price
    order = ex.place_order(symbol="035720", side="02", qty=10, order_type="00", price=limit)
    assert order.filled_qty == 0
    ex.step(3)
    ex.set_price("035720", limit - 3 * tick_size(limit))
    assert order.filled_qty == 10
    assert {f.price for f in ex.fills} == {limit}
    assert ex.holding_qty("035720") == 10
    ex.check_invariants()


def test_ioc_cancels_the_rest_and_fok_kills_all() -> None:
    """IOC fills what it can and cancels the rest; FOK fills nothing when depth is short."""
    ex = _exchange()
    asks, _ = ex.book("005930")
    ioc = ex.place_order(
        symbol="005930", side="02", qty=asks[0].qty + 5, order_type="11", price=asks[0].price
    )
    assert (ioc.filled_qty, ioc.cancelled_qty, ioc.remaining_qty) == (asks[0].qty, 5, 0)
    asks, _ = ex.book("005930")
    fok = ex.place_order(
        symbol="005930", side="02", qty=asks[0].qty + 1, order_type="12", price=asks[0].price
    )
    assert (fok.filled_qty, fok.cancelled_qty) == (0, fok.qty)
    fok_ok = ex.place_order(
        symbol="005930", side="02", qty=asks[0].qty, order_type="12", price=asks[0].price
    )
    assert fok_ok.filled_qty == fok_ok.qty
    ex.check_invariants()


def test_notices_for_every_event() -> None:
    """Acceptance, fill, auto-cancel, modify and cancel each emit a notice event."""
    ex = _exchange()
    events: list[NoticeEvent] = []
    remove = ex.add_notice_listener(events.append)
    ex.place_order(symbol="005930", side="02", qty=1, order_type="13", price=0)
    low = ex.book("005930")[1][9].price
    resting = ex.place_order(symbol="005930", side="02", qty=3, order_type="00", price=low)
    revised = ex.modify_order(resting.order_id, qty=2, order_type="00", price=low - 100)
    ex.cancel_order(revised.order_id)
    remove()
    kinds = [e.kind for e in events]
    assert kinds == [
        NoticeKind.ACCEPTED,
        NoticeKind.FILLED,
        NoticeKind.ACCEPTED,
        NoticeKind.MODIFIED,
        NoticeKind.CANCELLED,
    ]
    assert resting.remaining_qty == 1
    ex.check_invariants()


def test_sells_need_holdings_and_release_cost() -> None:
    """Selling needs shares; a full sell clears the cost basis and credits cash."""
    ex = _exchange(starting_holdings={"005930": 10})
    with pytest.raises(SimRejectionError) as caught:
        ex.place_order(symbol="005930", side="01", qty=11, order_type="01", price=0)
    assert caught.value.reason == "insufficient_holdings"
    bid = ex.book("005930")[1][0]
    ex.place_order(symbol="005930", side="01", qty=min(10, bid.qty), order_type="01", price=0)
    ex.check_invariants()


def test_invariant_checker_catches_corruption() -> None:
    """The checker is not vacuous: tampering with cash is reported."""
    ex = _exchange()
    ex.place_order(symbol="005930", side="02", qty=1, order_type="01", price=0)
    ex.cash += 1
    with pytest.raises(SimInvariantError, match="cash"):
        ex.check_invariants()


def _moved(ex: SimExchange, symbol: str, ticks: int) -> int:
    """The price ``ticks`` ticks away from the last, clamped to the daily band."""
    inst = ex.instrument(symbol)
    price = inst.price
    for _ in range(abs(ticks)):
        price = price + tick_size(price) if ticks > 0 else price - tick_size(price - 1)
    price -= price % tick_size(price)
    return min(max(price, inst.lower_limit), inst.upper_limit)


_SYMBOLS = ["005930", "035720", "001440", "051910"]
_op = st.one_of(
    st.tuples(
        st.just("place"),
        st.sampled_from(_SYMBOLS),
        st.sampled_from(["01", "02"]),
        st.integers(min_value=-1, max_value=4_000),
        st.sampled_from(["00", "01", "03", "04", "11", "12", "13", "14", "15", "16", "05"]),
        st.integers(min_value=-12, max_value=12),
    ),
    st.tuples(st.just("step"), st.integers(min_value=1, max_value=5)),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=50), st.booleans()),
    st.tuples(
        st.just("modify"),
        st.integers(min_value=0, max_value=50),
        st.integers(min_value=-6, max_value=6),
        st.booleans(),
    ),
    st.tuples(st.just("jump"), st.sampled_from(_SYMBOLS), st.integers(min_value=-20, max_value=20)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**16), ops=st.lists(_op, min_size=20, max_size=80))
def test_invariants_hold_over_random_order_flow(seed: int, ops: list[tuple[object, ...]]) -> None:
    """Cash, holdings, reservations, order quantities and books stay consistent after every
    event of a long random sequence of orders, modifies, cancels and market moves."""
    ex = SimExchange(
        seed=seed,
        clock=SimClock(START),
        starting_cash=30_000_000,
        starting_holdings={"005930": 50, "001440": 2_000},
    )
    for op in ops:
        try:
            if op[0] == "place":
                _, symbol, side, qty, kind, offset = op
                assert isinstance(symbol, str)
                assert isinstance(offset, int)
                price = 0
                if kind in ("00", "11", "12", "05"):
                    base = ex.price(symbol)
                    price = base + int(offset) * tick_size(base)
                ex.place_order(
                    symbol=symbol, side=str(side), qty=int(qty),  # type: ignore[call-overload]
                    order_type=str(kind), price=price,
                )  # fmt: skip
            elif op[0] == "step":
                ex.step(int(op[1]))  # type: ignore[call-overload]
            elif op[0] in ("cancel", "modify"):
                orders = ex.orders
                if not orders:
                    continue
                target = orders[int(op[1]) % len(orders)]  # type: ignore[call-overload]
                whole = bool(op[-1])
                qty = None if whole else max(1, target.remaining_qty // 2)
                if op[0] == "cancel":
                    ex.cancel_order(target.order_id, qty=qty)
                else:
                    base = ex.price(target.symbol)
                    new_price = base + int(op[2]) * tick_size(base)  # type: ignore[call-overload]
                    ex.modify_order(target.order_id, qty=qty, order_type="00", price=new_price)
            else:
                _, symbol, ticks = op
                assert isinstance(symbol, str)
                assert isinstance(ticks, int)
                ex.set_price(symbol, _moved(ex, symbol, ticks))
        except SimRejectionError:
            pass
        ex.check_invariants()
