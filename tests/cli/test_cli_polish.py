"""`orders` columns, `sim` export lines and .env file, busy ports, refused connections and
missing extras: one clear line each."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kis_async import KISConfig
from kis_async.cli import (
    EXIT_API,
    EXIT_OK,
    EXIT_USAGE,
    _describe_error,
    _order_table,
    main,
)
from kis_async.errors import SubscriptionError
from kis_async.models import Order, OrderStatus, OrderType, Side
from kis_async.sim import KISSimulator
from kis_async.sim.runner import run

SYMBOL = "005930"
RunCLI = Any


def table_rows(text: str) -> dict[str, dict[str, str]]:
    """The plain `orders` table as {order id: {column: cell}}."""
    lines = text.strip().splitlines()
    headers = lines[1].split()
    return {
        cells[0]: dict(zip(headers, cells, strict=True))
        for cells in (line.split() for line in lines[2:])
    }


async def test_orders_table_shows_limit_average_original_and_cancel_rows(
    cli: RunCLI, paper_sim: KISSimulator
) -> None:
    """A filled market buy shows `market` and its average fill price; a modify row names the
    order it replaced; a cancel row reads `cancel` with no price (not `limit ... market`)."""
    bought = json.loads((await cli("buy", SYMBOL, "3", "--market", "--json")).out)["order_id"]
    price = paper_sim.exchange.price(SYMBOL)
    low = price - price % 100 - 2_000
    resting = json.loads((await cli("buy", SYMBOL, "2", "--price", str(low), "--json")).out)
    first = resting["order_id"]
    modified = await cli("modify", first, "--price", str(low - 100), "--json")
    second = json.loads(modified.out)["new_order_id"]
    assert (await cli("cancel", second)).code == EXIT_OK

    result = await cli("orders")
    assert result.code == EXIT_OK, result.err
    rows = table_rows(result.out)
    assert "venue" not in result.out.splitlines()[1]  # orders carry no venue yet
    fill = next(o for o in paper_sim.exchange.orders if o.order_id == bought)
    assert rows[bought]["price"] == "market"
    assert rows[bought]["avg"] == f"{round(fill.avg_price):,}"
    assert rows[bought]["status"] == "filled"
    assert rows[first]["price"] == f"{low:,}"
    assert rows[first]["avg"] == "-"
    assert rows[first]["original"] == "-"
    assert rows[second]["original"] == first
    assert rows[second]["price"] == f"{low - 100:,}"
    cancel_rows = [r for r in rows.values() if r["original"] == second]
    assert len(cancel_rows) == 1
    assert cancel_rows[0]["type"] == "cancel"
    assert cancel_rows[0]["price"] == "-"
    assert "market" not in [r["price"] for r in rows.values() if r["order"] != bought]


async def test_orders_json_is_the_order_model(cli: RunCLI) -> None:
    """`orders --json` still prints every Order field, unchanged by the table's columns."""
    await cli("buy", SYMBOL, "1", "--market")
    data = json.loads((await cli("orders", "--json")).out)
    assert [set(row) for row in data] == [set(Order.model_fields)]
    assert data[0]["price"] is None
    assert Decimal(data[0]["avg_fill_price"]) > 0


def test_orders_table_venue_column_only_when_orders_have_one() -> None:
    """Orders that carry a venue get a venue column; the cell shows the venue's value."""

    class VenueOrder(Order):
        venue: str | None = None

    common: dict[str, Any] = {
        "broker_order_id": "0000000001",
        "symbol": SYMBOL,
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "qty": 1,
        "price": Decimal(70_000),
        "remaining_qty": 1,
        "status": OrderStatus.OPEN,
    }
    headers, rows = _order_table([VenueOrder(**common, venue="NXT")])
    assert headers[-1] == "venue"
    assert rows[0][-1] == "NXT"
    headers, rows = _order_table([Order(**common)])
    assert "venue" not in headers
    assert len(rows[0]) == len(headers)


async def test_sim_prints_export_lines_and_writes_env_file(tmp_path: Path) -> None:
    """`sim` prints `export KIS_*=...` lines a shell can source, and --env-file writes the
    same variables as a .env file that account commands read."""
    out = io.StringIO()
    env_file = tmp_path / "sim.env"
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[KISSimulator] = loop.create_future()
    task = asyncio.create_task(
        run(port=0, seed=4, out=out, on_ready=ready.set_result, env_file=env_file)
    )
    try:
        sim = await asyncio.wait_for(ready, 20)
        exports = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
        assert len(exports) == 7
        assert all(line.startswith("export KIS_") for line in exports)
        shell = await asyncio.to_thread(
            subprocess.run,
            ["sh", "-c", "\n".join([*exports, 'printf %s "$KIS_REST_URL"'])],
            capture_output=True,
            text=True,
            check=True,
            timeout=20,
        )
        assert shell.stdout == sim.rest_url
        assert KISConfig.from_env({}, env_file=env_file).rest_url == sim.rest_url

        def price() -> int:
            with contextlib.redirect_stdout(io.StringIO()) as printed:
                code = main(["price", SYMBOL, "--json", "--env-file", str(env_file)])
            assert json.loads(printed.getvalue())["symbol"] == SYMBOL
            return code

        env_before = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("KIS_")}
        try:
            os.environ["KIS_TOKEN_CACHE_DIR"] = str(tmp_path / "tokens")
            assert await asyncio.to_thread(price) == EXIT_OK
        finally:
            os.environ.pop("KIS_TOKEN_CACHE_DIR", None)
            os.environ.update(env_before)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_sim_on_a_busy_port_suggests_port_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """A port already in use gives exit 2 and one line suggesting --port 0, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["sim", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.count("\n") == 1
    assert f"127.0.0.1:{port}" in err
    assert "--port 0" in err
    assert "Traceback" not in err


def test_refused_connection_names_the_url_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listening at KIS_REST_URL: exit 1, the URL and a hint on one line."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    for name in list(os.environ):
        if name.startswith("KIS_"):
            monkeypatch.delenv(name)
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("KIS_APP_KEY", "PSsimulatorkey")
    monkeypatch.setenv("KIS_APP_SECRET", "sim-secret")
    monkeypatch.setenv("KIS_ACCOUNT_ID", "12345678-01")
    monkeypatch.setenv("KIS_REST_URL", url)
    monkeypatch.setenv("KIS_WS_URL", f"ws://127.0.0.1:{port}")
    monkeypatch.setenv("KIS_TOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code = main(["price", SYMBOL])
    err = capsys.readouterr().err
    assert code == EXIT_API
    assert err.count("\n") == 1
    assert url in err
    assert "is `kis-async sim` running / is KIS_REST_URL right?" in err
    assert "sim-secret" not in err


@pytest.mark.parametrize(
    ("argv", "missing", "line"),
    [
        (["demo", "--duration", "1"], "uvicorn", "kis-async demo needs the 'cli' extra: "),
        (["demo"], "starlette", "kis-async demo needs the 'cli' extra: "),
        (["sim", "--port", "0"], "uvicorn", "kis-async sim needs the 'sim' extra: "),
    ],
)
def test_missing_extra_is_one_line_naming_it(
    argv: list[str], missing: str, line: str, tmp_path: Path
) -> None:
    """Without the optional packages (their import made to fail, as in a base install) the
    demo and the simulator exit 2 with one line naming the extra to install."""
    code = (
        "import sys\n"
        f"sys.modules[{missing!r}] = None  # what a base install without the extra looks like\n"
        "from kis_async.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    result = subprocess.run(  # noqa: S603  (our own interpreter)
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_USAGE, result.stderr
    extra = line.split("'")[1]
    assert result.stderr == f"error: {line}pip install 'kis-async[{extra}]'\n"
    assert result.stdout == ""


def test_simulator_import_names_the_extra(tmp_path: Path) -> None:
    """`import kis_async.sim` without uvicorn says which extra to install."""
    code = (
        "import sys\n"
        "sys.modules['uvicorn'] = None\n"
        "try:\n"
        "    import kis_async.sim\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name, exc)\n"
    )
    result = subprocess.run(  # noqa: S603  (our own interpreter)
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith("uvicorn kis_async.sim needs the 'sim' extra: ")
    assert "pip install 'kis-async[sim]'" in result.stdout


async def test_business_error_line_adds_the_english_meaning(cli: RunCLI) -> None:
    """A rejection shows KIS's code, its Korean text and the English meaning on one line."""
    result = await cli("sell", SYMBOL, "1000000", "--market")
    assert result.code == EXIT_API
    assert result.err.startswith("error: KIS error [")
    assert result.err.rstrip().endswith("(order quantity exceeds the sellable quantity)")
    assert result.err.count("\n") == 1
    as_json = json.loads((await cli("sell", SYMBOL, "1000000", "--market", "--json")).err)
    assert as_json["error"]["meaning"] == "order quantity exceeds the sellable quantity"


def test_subscription_refusal_line_adds_the_english_meaning() -> None:
    """A refused WebSocket registration names KIS's ack code and what it means."""
    err = SubscriptionError(
        "H0STCNT0 005930 refused: MAX SUBSCRIBE OVER",
        tr_id="H0STCNT0",
        tr_key="005930",
        msg_cd="OPSP0008",
    )
    text, info = _describe_error(err)
    assert text == (
        "subscription refused: H0STCNT0 005930 refused: MAX SUBSCRIBE OVER "
        "(too many subscriptions: at most 41 per session)"
    )
    assert info["meaning"] == "too many subscriptions: at most 41 per session"
    unknown, _ = _describe_error(SubscriptionError("no ack", msg_cd=None))
    assert unknown == "subscription refused: no ack"
