"""kis-trader 0.12.2 against ``kis-async sim``: its ordinary flows, only its URL table patched."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

from _flows import SYMBOL, env, report, session_seconds, step, wait_for
from kis_trader import KISClient
from kis_trader._internal import _endpoints

KST = timezone(timedelta(hours=9))
MODE = env("KIS_MODE")  # paper | live
ENVIRONMENT = "paper" if MODE == "paper" else "real"
# The only patch: the peer's base URLs point at the simulator.
_endpoints._BASE_URL_BY_ENVIRONMENT[ENVIRONMENT] = env("KIS_REST_URL")
_endpoints._WEBSOCKET_URL_BY_ENVIRONMENT[ENVIRONMENT] = env("KIS_WS_URL")

account = env("KIS_ACCOUNT_ID")
tmp = tempfile.mkdtemp(prefix="compat-kt-")
os.environ["XDG_CONFIG_HOME"] = tmp
os.environ["XDG_CACHE_HOME"] = tmp
os.environ["XDG_STATE_HOME"] = tmp
kis = KISClient(
    app_key=env("KIS_APP_KEY"),
    app_secret=env("KIS_APP_SECRET"),
    account=f"{account[:8]}-{account[8:]}",
    environment=ENVIRONMENT,
    hts_id=env("KIS_HTS_ID"),
    config_dir=tmp,
    token_cache_dir=tmp,
)
stock = kis.domestic.stock(SYMBOL)

quote = step("quote", stock.quote)
book = step("order book", stock.order_book)
step("stock lookup", lambda: kis.domestic.product_info(SYMBOL).name)
step("balance", lambda: kis.account.domestic.balance())


def _limit_below() -> int:
    """A limit ~5 % under the last price on the 100-won tick of 50,000-200,000 won stocks."""
    last = int(quote.current_price) if quote is not None else 70_000
    return (last * 95 // 100) // 100 * 100


step("deposit/buyable", lambda: stock.buyable())
step("buy (market)", lambda: stock.buy(quantity=1))
resting = step("buy (limit, resting)", lambda: stock.buy(quantity=2, limit_price=_limit_below()))
today = datetime.now(KST).strftime("%Y%m%d")
history = kis.account.domestic.order_history
if ENVIRONMENT == "real":
    step("pending orders", lambda: [o.order_id for o in kis.account.domestic.open_orders()])
else:
    # inquire-psbl-rvsecncl is live only on KIS; kis-trader refuses it in paper mode and points
    # to the daily order history with unfilled_only instead.
    step("pending orders", lambda: history(start=today, end=today, unfilled_only=True))
step("today's orders", lambda: history(start=today, end=today))
if resting is not None:
    step(
        "modify",
        lambda: kis.orders.modify(resting.client_order_id, limit_price=_limit_below() - 100),
    )
    step("cancel", lambda: kis.orders.cancel(resting.client_order_id))
else:
    report("modify", False, "no resting order to modify")
    report("cancel", False, "no resting order to cancel")

# Real-time: trades, books and execution notices over one session, answering PINGPONG the way
# the peer does (a control-frame pong).
notice_tr = "H0STCNI9" if ENVIRONMENT == "paper" else "H0STCNI0"
seen: dict[str, int] = {"H0STCNT0": 0, "H0STASP0": 0, notice_tr: 0, "H0NXCNT0": 0, "H0UNCNT0": 0}
lock = threading.Lock()


def _count(message: object) -> None:
    with lock:
        tr = getattr(message, "tr_id", "")
        if tr in seen:
            seen[tr] += 1


def _realtime() -> str:
    ws = kis.realtime(reconnect=False)
    ws.subscribe(tr_id="H0STCNT0", tr_key=SYMBOL, on=_count)
    ws.subscribe(tr_id="H0STASP0", tr_key=SYMBOL, on=_count)
    ws.subscribe(tr_id=notice_tr, tr_key=env("KIS_HTS_ID"), on=_count)
    if ENVIRONMENT == "real":  # paper trading is KRX only
        ws.subscribe(tr_id="H0NXCNT0", tr_key=SYMBOL, on=_count)
        ws.subscribe(tr_id="H0UNCNT0", tr_key=SYMBOL, on=_count)
    ws.start()
    try:
        wait_for(lambda: seen["H0STCNT0"] > 0, 20, "a trade")
        report("realtime trades", True, f"{seen['H0STCNT0']} records")
        wait_for(lambda: seen["H0STASP0"] > 0, 20, "a book")
        report("realtime books", True, f"{seen['H0STASP0']} records")
        if ENVIRONMENT == "real":
            wait_for(lambda: seen["H0NXCNT0"] > 0 and seen["H0UNCNT0"] > 0, 20, "NXT/UN trades")
            report("NXT/UN trades", True, f"{seen['H0NXCNT0']} NXT, {seen['H0UNCNT0']} UN")
        stock.buy(quantity=1)
        wait_for(lambda: seen[notice_tr] > 0, 20, "an execution notice")
        report("execution notices", True, f"{seen[notice_tr]} notices")
        started, before = time.monotonic(), seen["H0STCNT0"]
        while time.monotonic() - started < session_seconds():
            time.sleep(1)
        if seen["H0STCNT0"] == before:
            raise RuntimeError("no trades during the session: the socket went quiet")
        wait_for(lambda: seen["H0STCNT0"] > before + 1, 10, "trades after the session")
        return f"{session_seconds():.0f} s, {seen['H0STCNT0'] - before} trades meanwhile"
    finally:
        ws.stop()


def _realtime_flow() -> None:
    try:
        note = _realtime()
    except Exception as exc:
        report("session", False, f"{type(exc).__name__}: {exc}")
        return
    report("session", True, note)


_realtime_flow()
kis.close()
