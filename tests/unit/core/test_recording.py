"""Traffic sinks and the session recorder: the same masked events as the traffic log, every
data frame, written as gzip JSON lines."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from kis_async import traffic
from kis_async.recording import FORMAT, RecordingError, SessionRecorder, read_recording
from kis_async.stream.protocol import subscribe_message
from kis_async.stream.traffic import log_frame

ACCOUNT = "5012345601"
APPROVAL = "APPROVAL-0123456789-abcdef"


def test_a_sink_gets_every_data_frame_with_logging_off(caplog: pytest.LogCaptureFixture) -> None:
    """With the logger off and no sampling, a sink still receives every frame, masked, and the
    log stays empty; a notice's payload (it carries the account) is only its length."""
    got: list[tuple[str, dict[str, Any]]] = []
    remove = traffic.add_sink(lambda event, fields: got.append((event, dict(fields))))
    try:
        assert traffic.on()
        assert not traffic.logging_on()
        with caplog.at_level(logging.INFO, logger="kis_async.traffic"):
            for n in range(5):
                log_frame("recv", f"0|H0STCNT0|001|005930^09000{n}^70000")
            log_frame("recv", f"0|H0STCNI9|001|myhtsid^{ACCOUNT}^0000012345")
            log_frame("send", subscribe_message(APPROVAL, "H0STCNI9", "myhtsid"))
            traffic.rest_request(
                "GET", "/inquire-balance", tr_id="VTTC8434R",
                headers={"authorization": "Bearer tok", "appsecret": "S" * 40},
                params={"CANO": ACCOUNT[:8], "ACNT_PRDT_CD": "01"}, body=None,
            )  # fmt: skip
        assert caplog.records == []
    finally:
        remove()
    assert not traffic.on()
    events = [e for e, _ in got]
    assert events == ["ws.recv.data"] * 6 + ["ws.send.subscribe", "rest.request"]
    assert [f["payload"].split("^")[1] for _, f in got[:5]] == [f"09000{n}" for n in range(5)]
    assert got[5][1]["payload"].startswith("<")
    assert ACCOUNT not in got[5][1]["payload"]
    text = json.dumps(got)
    for secret in (ACCOUNT[:8], APPROVAL, "myhtsid", "S" * 40, "Bearer tok"):
        assert secret not in text


def test_a_failing_sink_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    """A sink that raises is logged; the frame is still handled and other sinks still run."""
    kept: list[str] = []

    def broken(event: str, fields: Mapping[str, Any]) -> None:
        raise RuntimeError("disk full")

    removers = [traffic.add_sink(broken), traffic.add_sink(lambda e, f: kept.append(e))]
    try:
        log_frame("recv", "0|H0STCNT0|001|005930^090000^70000")
    finally:
        for remove in removers:
            remove()
    assert kept == ["ws.recv.data"]
    assert "a traffic sink failed" in caplog.text


async def test_recorder_writes_header_and_timestamped_lines(tmp_path: Path) -> None:
    """The file starts with the format header; each event line has a monotonic ``t``; the
    recorder stops receiving when closed and cannot be started twice."""
    path = tmp_path / "s.jsonl.gz"
    recorder = SessionRecorder(path)
    async with recorder:
        for n in range(3):
            log_frame("recv", f"0|H0STCNT0|001|005930^09000{n}^7000{n}")
    log_frame("recv", "0|H0STCNT0|001|005930^095959^71000")  # after the end: not recorded
    await recorder.aclose()  # idempotent
    with pytest.raises(RuntimeError):
        await recorder.start()
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert json.loads(lines[0])["format"] == FORMAT
    events = list(read_recording(path))
    assert [e["payload"] for e in events] == [f"005930^09000{n}^7000{n}" for n in range(3)]
    assert recorder.events == 3
    times = [e["t"] for e in events]
    assert times == sorted(times)
    assert times[0] >= 0


def test_read_recording_refuses_other_versions(tmp_path: Path) -> None:
    """A newer format version and a line that is not JSON are typed errors."""
    newer = tmp_path / "newer.gz"
    newer.write_bytes(gzip.compress(json.dumps({"format": FORMAT, "version": 99}).encode()))
    with pytest.raises(RecordingError, match="version 99"):
        list(read_recording(newer))
    broken = tmp_path / "broken.gz"
    header = json.dumps({"format": FORMAT, "version": 1})
    broken.write_bytes(gzip.compress(f"{header}\n{{not json\n".encode()))
    with pytest.raises(RecordingError, match="line 2"):
        list(read_recording(broken))
