"""`kis-async record` and `kis-async sim --replay`: a recorded session file, masked, that the
simulator replays."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from kis_async.cli import EXIT_OK, EXIT_USAGE
from kis_async.recording import read_recording
from kis_async.sim import KISSimulator
from kis_async.sim.replay import load_market

RunCLI = Any


async def test_record_writes_a_masked_replayable_file(
    cli: RunCLI, paper_sim: KISSimulator, tmp_path: Path
) -> None:
    """`record --symbols A,B --minutes M` subscribes trades and books, writes every frame and
    REST exchange masked, and the simulator can replay the file."""
    path = tmp_path / "out" / "session.jsonl.gz"
    path.parent.mkdir()
    result = await cli(
        "record", "--symbols", "005930,000660", "--minutes", "0.03", "--out", str(path), "--json"
    )
    assert result.code == EXIT_OK, result.err
    summary = json.loads(result.out)
    assert summary["symbols"] == ["005930", "000660"]
    events = list(read_recording(path))
    assert summary["events"] == len(events)
    kinds = {e["event"] for e in events}
    assert {"rest.request", "rest.response", "ws.send.subscribe", "ws.recv.ack"} <= kinds
    data = {
        (e["tr_id"], e["payload"].split("^")[0]) for e in events if e["event"] == "ws.recv.data"
    }
    assert data == {(tr, s) for tr in ("H0STCNT0", "H0STASP0") for s in ("005930", "000660")}
    times = [e["t"] for e in events]
    assert times == sorted(times)
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    assert paper_sim.app_secret not in text
    assert paper_sim.account_id[:8] not in text
    for token in paper_sim.rest.tokens:
        assert token not in text
    replay = KISSimulator(replay=path)
    assert sorted(replay.exchange.symbols) == ["000660", "005930"]
    assert len(load_market(path)) == sum(1 for e in events if e["event"] == "ws.recv.data")


async def test_record_and_replay_usage_errors(cli: RunCLI, tmp_path: Path) -> None:
    """A bad symbol, --speed without --replay, --with-live in live mode and a file that is not
    a recording exit 2
    before anything is sent or served."""
    path = tmp_path / "bad.jsonl.gz"
    bad = await cli("record", "--symbols", "00593", "--minutes", "1", "--out", str(path))
    assert bad.code == EXIT_USAGE
    assert not path.exists()
    speed = await cli("sim", "--port", "0", "--speed", "10")
    assert speed.code == EXIT_USAGE
    assert "--replay" in speed.err
    live = await cli("sim", "--port", "0", "--mode", "live", "--with-live")
    assert live.code == EXIT_USAGE
    assert "--mode paper" in live.err
    path.write_bytes(gzip.compress(b"{}\n"))
    wrong = await cli("sim", "--port", "0", "--replay", str(path))
    assert wrong.code == EXIT_USAGE
    assert "not a kis_async session recording" in wrong.err
