"""python-kis 2.1.6 against ``kis-async sim``: its ordinary flows, only its domain constants
patched. python-kis parses the legacy record layouts (46-field trades, 23-field notices), so
``run.py`` serves it a ``--layout legacy`` simulator."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

import pykis.client.websocket as pykis_ws
import pykis.kis as pykis_kis
from _flows import SYMBOL, env, report, session_seconds, step, wait_for
from pykis import KisAuth, PyKis

# The only patch: every domain python-kis knows points at the simulator (the modules copy the
# constants of pykis.__env__ at import, so the copies are what is patched). python-kis sends
# quotes to the live domain even in paper mode (protocol doc §4.0), so both are the simulator;
# it appends /tryitout to the WebSocket domain itself.
# In paper mode python-kis needs a live app key too (its quotes and their socket are the live
# domain's), so run.py starts `kis-async sim --mode paper --with-live`: a linked live
# simulator (KIS_LIVE_* variables), whose approval key python-kis asks the paper host for.
live_rest = os.environ.get("KIS_LIVE_REST_URL", env("KIS_REST_URL"))
live_ws = os.environ.get("KIS_LIVE_WS_URL", env("KIS_WS_URL"))
pykis_kis.REAL_DOMAIN = live_rest
pykis_kis.VIRTUAL_DOMAIN = env("KIS_REST_URL")
pykis_ws.WEBSOCKET_REAL_DOMAIN = live_ws.removesuffix("/tryitout")
pykis_ws.WEBSOCKET_VIRTUAL_DOMAIN = env("KIS_WS_URL").removesuffix("/tryitout")

KST = timezone(timedelta(hours=9))
MODE = env("KIS_MODE")
account_id = env("KIS_ACCOUNT_ID")
paper = KisAuth(
    id=env("KIS_HTS_ID"),
    account=f"{account_id[:8]}-{account_id[8:]}",
    appkey=env("KIS_APP_KEY"),
    secretkey=env("KIS_APP_SECRET"),
    virtual=MODE == "paper",
)
tokens = tempfile.mkdtemp(prefix="compat-pk-")
if MODE == "paper":
    live_account = env("KIS_LIVE_ACCOUNT_ID")
    live = KisAuth(
        id=paper.id,
        account=f"{live_account[:8]}-{live_account[8:]}",
        appkey=env("KIS_LIVE_APP_KEY"),
        secretkey=env("KIS_LIVE_APP_SECRET"),
        virtual=False,
    )
    kis = PyKis(live, paper, keep_token=tokens)
else:
    kis = PyKis(paper, keep_token=tokens)


def need(value: object, what: str) -> object:
    """``value``, or an error naming the earlier step it depends on."""
    if value is None:
        raise RuntimeError(f"needs {what}")
    return value


stock = step("stock lookup", lambda: kis.stock(SYMBOL))
quote = step("quote", lambda: need(stock, "stock lookup").quote())
step("order book", lambda: need(stock, "stock lookup").orderbook())
account = kis.account()
# Domestic scope: the integrated account calls take country="KR" (without it python-kis also
# queries the overseas-stock endpoints, which the simulator does not serve).
balance = step("balance", lambda: account.balance(country="KR"))
step("deposit", lambda: need(balance, "balance").deposits["KRW"].amount)
step("orderable amount", lambda: stock.orderable_amount(price=int(need(quote, "quote").price)))
step("buy (market)", lambda: stock.buy(qty=1))
limit = (int(quote.price) * 95 // 100) // 100 * 100 if quote is not None else 68_000
order = step("buy (limit, resting)", lambda: stock.buy(price=limit, qty=2))
step(
    "pending orders", lambda: [o.order_number for o in account.pending_orders(country="KR").orders]
)
today = datetime.now(KST).date()
step("today's orders", lambda: len(account.daily_orders(start=today, country="KR").orders))
if order is not None:
    modified = step("modify", lambda: order.modify(price=limit - 100))
    step("cancel", lambda: (modified or order).cancel())
else:
    report("modify", False, "no resting order to modify")
    report("cancel", False, "no resting order to cancel")

seen = {"price": 0, "orderbook": 0, "execution": 0}
lock = threading.Lock()


def _counter(kind: str):  # type: ignore[no-untyped-def]
    def count(_sender, _event) -> None:  # type: ignore[no-untyped-def]
        with lock:
            seen[kind] += 1

    return count


def _realtime() -> str:
    tickets = [
        stock.on("price", _counter("price")),
        stock.on("orderbook", _counter("orderbook")),
        account.on("execution", _counter("execution")),
    ]
    try:
        wait_for(lambda: seen["price"] > 0, 20, "a trade")
        report("realtime trades", True, f"{seen['price']} records")
        wait_for(lambda: seen["orderbook"] > 0, 20, "a book")
        report("realtime books", True, f"{seen['orderbook']} records")
        stock.buy(qty=1)
        wait_for(lambda: seen["execution"] > 0, 20, "an execution notice")
        report("execution notices", True, f"{seen['execution']} notices")
        started, before = time.monotonic(), seen["price"]
        while time.monotonic() - started < session_seconds():
            time.sleep(1)
        wait_for(lambda: seen["price"] > before + 1, 10, "trades after the session")
        return f"{session_seconds():.0f} s, {seen['price'] - before} trades meanwhile"
    finally:
        for ticket in tickets:
            ticket.unsubscribe()


try:
    report("session", True, _realtime())
except Exception as exc:
    report("session", False, f"{type(exc).__name__}: {exc}")
kis.websocket.disconnect()
