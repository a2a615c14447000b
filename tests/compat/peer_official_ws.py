"""The official sample's WebSocket loop, written from its documented behaviour (protocol doc
§6): approval key from /oauth2/Approval (``secretkey``), subscribe with ``tr_type`` "1",
data frames ``0|tr|n|payload`` / ``1|...`` AES-256-CBC encrypted with the key and iv of the
ack, and PINGPONG answered with a control-frame pong carrying the frame (no text echo;
library pings off, as the legacy samples run)."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import requests
import websockets
from _flows import SYMBOL, env, report, session_seconds
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MODE = env("KIS_MODE")
REST = env("KIS_REST_URL")
NOTICE_TR = "H0STCNI9" if MODE == "paper" else "H0STCNI0"
BUY_TR = "VTTC0012U" if MODE == "paper" else "TTTC0012U"


def aes_decrypt(key: str, iv: str, text: str) -> str:
    decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    padded = decryptor.update(base64.b64decode(text)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode()


def post(path: str, body: dict[str, str], headers: dict[str, str] | None = None) -> dict:
    reply = requests.post(REST + path, json=body, headers=headers or {}, timeout=10)
    return reply.json()


def buy_one() -> None:
    token = post(
        "/oauth2/tokenP",
        {
            "grant_type": "client_credentials",
            "appkey": env("KIS_APP_KEY"),
            "appsecret": env("KIS_APP_SECRET"),
        },
    )["access_token"]
    account = env("KIS_ACCOUNT_ID")
    headers = {
        "content-type": "application/json; charset=utf-8",
        "authorization": f"Bearer {token}",
        "appkey": env("KIS_APP_KEY"),
        "appsecret": env("KIS_APP_SECRET"),
        "tr_id": BUY_TR,
        "custtype": "P",
    }
    body = {"CANO": account[:8], "ACNT_PRDT_CD": account[8:], "PDNO": SYMBOL, "ORD_DVSN": "01",
            "ORD_QTY": "1", "ORD_UNPR": "0"}  # fmt: skip
    answer = post("/uapi/domestic-stock/v1/trading/order-cash", body, headers)
    if answer.get("rt_cd") != "0":
        raise RuntimeError(f"order refused: {answer.get('msg_cd')} {answer.get('msg1')}")


async def main() -> None:
    approval = post(
        "/oauth2/Approval",
        {
            "grant_type": "client_credentials",
            "appkey": env("KIS_APP_KEY"),
            "secretkey": env("KIS_APP_SECRET"),
        },
    )["approval_key"]
    counts = {"H0STCNT0": 0, "H0STASP0": 0, NOTICE_TR: 0}
    keys: dict[str, tuple[str, str]] = {}
    pongs = 0
    async with websockets.connect(env("KIS_WS_URL"), ping_interval=None) as ws:
        for tr_id, tr_key in (
            ("H0STCNT0", SYMBOL),
            ("H0STASP0", SYMBOL),
            (NOTICE_TR, env("KIS_HTS_ID")),
        ):
            header = {
                "approval_key": approval,
                "custtype": "P",
                "tr_type": "1",
                "content-type": "utf-8",
            }
            await ws.send(
                json.dumps(
                    {"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}}
                )
            )
        reported: set[str] = set()
        ordered = False
        session_start = None
        deadline = time.monotonic() + 30 + session_seconds()
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(ws.recv(), 15)
            assert isinstance(raw, str)
            if raw[0] in "01":
                flag, tr_id, _count, payload = raw.split("|", 3)
                if flag == "1":
                    key, iv = keys[tr_id]
                    payload = aes_decrypt(key, iv, payload)
                if "^" in payload:
                    counts[tr_id] = counts.get(tr_id, 0) + 1
            else:
                message = json.loads(raw)
                tr_id = message["header"]["tr_id"]
                if tr_id == "PINGPONG":
                    await ws.pong(raw.encode())
                    pongs += 1
                    continue
                body = message.get("body", {})
                if body.get("rt_cd") != "0":
                    raise RuntimeError(f"{tr_id} refused: {body.get('msg_cd')} {body.get('msg1')}")
                if "output" in body:
                    keys[tr_id] = (body["output"]["key"], body["output"]["iv"])
            for flow, tr_id in (("realtime trades", "H0STCNT0"), ("realtime books", "H0STASP0")):
                if counts[tr_id] and flow not in reported:
                    reported.add(flow)
                    report(flow, True, f"{counts[tr_id]} records")
            if not ordered and len(keys) == 3:
                ordered = True
                await asyncio.to_thread(buy_one)
            if counts[NOTICE_TR] and "execution notices" not in reported:
                reported.add("execution notices")
                report("execution notices", True, f"{counts[NOTICE_TR]} decrypted notices")
                session_start = time.monotonic()
            if session_start is not None and time.monotonic() - session_start >= session_seconds():
                report("session", True, f"{session_seconds():.0f} s, {pongs} control pongs sent")
                return
    raise RuntimeError(f"session ended early: {counts}, {pongs} pongs")


try:
    asyncio.run(main())
except Exception as exc:
    report("session", False, f"{type(exc).__name__}: {exc}")
