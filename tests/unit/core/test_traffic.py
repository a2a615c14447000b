"""The one masking implementation (kis_async.traffic.mask) and the WebSocket frame records."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from kis_async import traffic
from kis_async.config import KISConfig, mask_account
from kis_async.stream.protocol import subscribe_message, unsubscribe_message
from kis_async.stream.traffic import log_frame

ACCOUNT = "5012345601"
SECRET = "S" * 40


@pytest.fixture
def traffic_on() -> Iterator[list[logging.LogRecord]]:
    """Traffic logging on for one test; the records written; the switch restored after."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    level = traffic.logger.level
    rate = traffic.frame_sample_rate()
    traffic.logger.addHandler(handler)
    traffic.logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        traffic.logger.removeHandler(handler)
        traffic.logger.setLevel(level)
        traffic._frame_rate[0] = rate


def test_mask_at_any_depth_and_any_case() -> None:
    """Secret fields are masked in nested dicts and lists, whatever their case or dashes."""
    doc = {
        "header": {"AppSecret": SECRET, "APPROVAL-KEY": "abcdefgh-1234-5678", "tr_id": "X"},
        "body": [
            {"input": {"CANO": ACCOUNT[:8], "acnt_prdt_cd": "01", "Access_Token": "t" * 30}},
            {"output": {"key": "k" * 32, "iv": "i" * 16, "HASH": "h" * 64}},
        ],
        "authorization": "Bearer xyz",
        "appkey": "PSAPPKEY0123",
        "ACNT_NO": ACCOUNT,
        "token": "revoked-token-value",
        "secretkey": SECRET,
        "hashkey": "h" * 64,
    }
    masked = traffic.mask(doc)
    text = json.dumps(masked)
    for secret in (
        SECRET,
        "abcdefgh-1234-5678",
        ACCOUNT,
        ACCOUNT[:8],
        "t" * 30,
        "k" * 32,
        "i" * 16,
        "h" * 64,
        "xyz",
        "PSAPPKEY0123",
        "revoked-token-value",
    ):
        assert secret not in text, secret
    assert masked["header"]["APPROVAL-KEY"] == "abcdefgh..."
    assert masked["header"]["tr_id"] == "X"
    assert masked["body"][0]["input"]["CANO"] == mask_account(ACCOUNT[:8]) == "******56"
    assert masked["body"][0]["input"]["acnt_prdt_cd"] == "01"
    assert masked["ACNT_NO"] == mask_account(ACCOUNT) == "******56-01"
    assert masked["appkey"] == "PSAP..."
    assert doc["header"]["AppSecret"] == SECRET  # the input is not changed


def test_paging_keys_and_urls_lose_the_account() -> None:
    """The account at the start of ctx_area_fk100 is masked, in bodies and in URL text."""
    fk = f"{ACCOUNT[:8]}^01^N^N^02^01^N^" + " " * 20
    masked = traffic.mask({"ctx_area_fk100": fk, "CTX_AREA_NK100": "005930    "})
    assert ACCOUNT[:8] not in masked["ctx_area_fk100"]
    assert masked["ctx_area_fk100"].startswith("******56^01^N^N^02^01^N^")
    assert masked["CTX_AREA_NK100"] == "005930    "
    url = f"GET /x?CANO={ACCOUNT[:8]}&ACNT_PRDT_CD=01&CTX_AREA_FK100={ACCOUNT[:8]}%5E01&PDNO=005930"
    text = traffic.mask_text(url)
    assert ACCOUNT[:8] not in text
    assert "CANO=******56" in text
    assert "PDNO=005930" in text


def test_httpx_url_log_lines_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    """httpx's request log line keeps no account number (the filter is installed at import)."""
    caplog.set_level(logging.INFO, logger="httpx")
    logging.getLogger("httpx").info(
        "HTTP Request: %s %s", "GET", f"http://h/x?CANO={ACCOUNT[:8]}&CTX_AREA_FK100={ACCOUNT[:8]}"
    )
    assert ACCOUNT[:8] not in caplog.text
    assert "CANO=******56" in caplog.text


def test_rest_records_carry_masked_structured_fields(traffic_on: list[logging.LogRecord]) -> None:
    """A request and a response record: masked text and a masked ``record.traffic`` dict."""
    traffic.rest_request(
        "POST",
        "/uapi/domestic-stock/v1/trading/order-cash",
        tr_id="VTTC0012U",
        headers={"appsecret": SECRET, "authorization": "Bearer tok", "hashkey": "h" * 64},
        params=None,
        body={"CANO": ACCOUNT[:8], "PDNO": "005930"},
    )
    traffic.rest_response(
        "POST", "/p", tr_id="VTTC0012U", status=200, latency_ms=12.345, body={"ODNO": "1"}
    )
    request, response = traffic_on
    assert request.levelno == logging.DEBUG
    assert request.traffic["event"] == "rest.request"  # type: ignore[attr-defined]
    assert request.traffic["body"]["CANO"] == "******56"  # type: ignore[attr-defined]
    for secret in (SECRET, "tok", "h" * 64, ACCOUNT[:8]):
        assert secret not in request.getMessage()
        assert secret not in json.dumps(request.traffic)  # type: ignore[attr-defined]
    assert 'tr_id="VTTC0012U"' in response.getMessage()
    assert "latency_ms=12.3" in response.getMessage()


def test_ws_control_frames_are_masked(traffic_on: list[logging.LogRecord]) -> None:
    """Subscribe/unsubscribe, an ack with the AES key and PINGPONG: one record each, with the
    approval key shortened and the HTS id of a notice registration replaced."""
    approval = "APPROVAL-0123456789-abcdef"
    log_frame("send", subscribe_message(approval, "H0STCNI9", "myhtsid"))
    log_frame("send", unsubscribe_message(approval, "H0STCNT0", "005930"))
    ack = {
        "header": {"tr_id": "H0STCNI9", "tr_key": "myhtsid", "encrypt": "Y"},
        "body": {
            "rt_cd": "0",
            "msg_cd": "OPSP0000",
            "msg1": "SUBSCRIBE SUCCESS",
            "output": {"iv": "I" * 16, "key": "K" * 32},
        },
    }
    log_frame("recv", json.dumps(ack))
    log_frame("recv", '{"header":{"tr_id":"PINGPONG","datetime":"20260101090000"}}')
    events = [r.traffic["event"] for r in traffic_on]  # type: ignore[attr-defined]
    assert events == ["ws.send.subscribe", "ws.send.unsubscribe", "ws.recv.ack", "ws.recv.pingpong"]
    text = "\n".join(r.getMessage() for r in traffic_on)
    for secret in (approval, "myhtsid", "I" * 16, "K" * 32):
        assert secret not in text
    assert "APPROVAL..." in text
    assert '"tr_key":"<hts id>"' in text
    assert '"tr_key":"005930"' in text  # a symbol is not a secret


def test_data_frames_follow_the_sampling_rate(traffic_on: list[logging.LogRecord]) -> None:
    """Data frames: none at rate 0, every 4th at 0.25; notice and encrypted payloads hidden."""
    quote = "0|H0STCNT0|001|005930^090000^70000"
    for _ in range(8):
        log_frame("recv", quote)
    assert traffic_on == []
    traffic._frame_rate[0] = 0.25
    for _ in range(8):
        log_frame("recv", quote)
    assert len(traffic_on) == 2
    assert traffic_on[0].traffic["payload"] == "005930^090000^70000"  # type: ignore[attr-defined]
    traffic._frame_rate[0] = 1.0
    notice = f"myhtsid^{ACCOUNT}^0000012345"
    log_frame("recv", f"0|H0STCNI9|001|{notice}")
    log_frame("recv", "1|H0STCNI0|001|c2VjcmV0Y2lwaGVydGV4dA==")
    hidden = [r.traffic["payload"] for r in traffic_on[2:]]  # type: ignore[attr-defined]
    assert hidden == [f"<{len(notice)} chars>", "<24 chars>"]


def test_enable_from_config_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """log_traffic=True or KIS_LOG_TRAFFIC=1 switch the logger on; neither leaves it off."""
    level = traffic.logger.level
    rate = traffic.frame_sample_rate()
    base = {"app_key": "k", "app_secret": "s", "account_id": ACCOUNT, "token_cache_dir": None}
    try:
        monkeypatch.delenv("KIS_LOG_TRAFFIC", raising=False)
        traffic.logger.setLevel(logging.INFO)
        assert traffic.enable_traffic_logging(KISConfig(**base)) is False
        assert traffic.enable_traffic_logging(KISConfig(**base, log_traffic=True)) is True
        traffic.logger.setLevel(logging.INFO)
        monkeypatch.setenv("KIS_LOG_TRAFFIC", "1")
        assert traffic.enable_traffic_logging(KISConfig(**base)) is True
    finally:
        traffic.logger.setLevel(level)
        traffic._frame_rate[0] = rate


def test_root_debug_does_not_switch_it_on() -> None:
    """The logger is pinned at INFO: DEBUG on the root or kis_async logger leaves it silent."""
    assert traffic.logger.level == logging.INFO or traffic.on()
    root = logging.getLogger()
    parent = logging.getLogger("kis_async")
    saved = (root.level, parent.level, traffic.logger.level)
    try:
        traffic.logger.setLevel(logging.INFO)
        root.setLevel(logging.DEBUG)
        parent.setLevel(logging.DEBUG)
        assert traffic.on() is False
    finally:
        root.setLevel(saved[0])
        parent.setLevel(saved[1])
        traffic.logger.setLevel(saved[2])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_response_bytes", 0),
        ("max_response_bytes", -1),
        ("max_response_bytes", 1.5),
        ("max_response_bytes", True),
        ("log_traffic", "yes"),
        ("log_traffic_frames", float("nan")),
        ("log_traffic_frames", float("inf")),
        ("log_traffic_frames", -0.1),
        ("log_traffic_frames", 1.5),
    ],
)
def test_new_config_fields_are_validated(field: str, value: object) -> None:
    """The new fields refuse bad values with a message naming the field only."""
    with pytest.raises(ValueError, match=f"KISConfig.{field}"):
        KISConfig(app_key="k", app_secret="s", account_id=ACCOUNT, **{field: value})


def test_a_hostile_nesting_never_fails_a_record(traffic_on: list[logging.LogRecord]) -> None:
    """A body or frame nested deeper than the stack gives a placeholder, not an exception."""
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    traffic.rest_response("GET", "/p", tr_id=None, status=200, latency_ms=1.0, body=deep)
    log_frame("recv", "{" + '"a":[' * 100_000 + "]" * 100_000 + "}")
    assert len(traffic_on) == 2
    assert "nested too deep" in traffic_on[0].getMessage()
