"""Deterministic KIS real-time frames for the decode benchmark (protocol doc §6.5-7.3).

Standard library plus ``cryptography`` only, so the peer venv's interpreter can import it.
"""

from __future__ import annotations

import base64
import random

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

#: The session key/iv the encrypted notices are made with (as a KIS ack would carry them).
NOTICE_KEY = "0123456789abcdef0123456789abcdef"
NOTICE_IV = "fedcba9876543210"

SYMBOLS = ("005930", "000660", "035420", "051910", "005380", "035720", "068270", "105560")

# The PORTAL sample record (46 fields) is the template; prices and volumes vary per record.
# The protocol doc's H0STCNT0 sample record (46 fields).
_SAMPLE_RECORD = (
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^"
    "219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^"
    "-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
    ""
)
_TRADE_TEMPLATE = _SAMPLE_RECORD.split("^")
assert len(_TRADE_TEMPLATE) == 46


def trade_record(rng: random.Random, *, fields: int = 47) -> str:
    """One H0STCNT0 record with ``fields`` fields (46 = legacy, 47 = current layout)."""
    rec = list(_TRADE_TEMPLATE)
    price = 70_000 + 100 * rng.randint(-50, 50)
    rec[0] = rng.choice(SYMBOLS)
    rec[1] = f"{9 + rng.randint(0, 5):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
    rec[2] = str(price)
    rec[4] = str(price - 72_000)
    rec[10] = str(price + 100)
    rec[11] = str(price)
    rec[12] = str(rng.randint(1, 500))
    rec[13] = str(3_000_000 + rng.randint(0, 999_999))
    rec[21] = rng.choice(("1", "5"))
    if fields >= 47:
        rec.append("2")  # MARKET_CLS_CODE, appended since 2026-09-14
    return "^".join(rec)


def orderbook_record(rng: random.Random, *, fields: int = 59) -> str:
    """One H0STASP0 record: 59 fields (protocol doc §7.2) or 63 (kis-trader 0.12.2's layout,
    which appends MID_PRC, MIDP_TOTAL_RSQN, MIDP_CLS_CODE and MARKET_CLS_CODE)."""
    base = 70_000 + 100 * rng.randint(-50, 50)
    asks = [str(base + 100 * (i + 1)) for i in range(10)]
    bids = [str(base - 100 * i) for i in range(10)]
    ask_q = [str(rng.randint(1, 90_000)) for _ in range(10)]
    bid_q = [str(rng.randint(1, 90_000)) for _ in range(10)]
    hhmmss = f"{9 + rng.randint(0, 5):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
    tail = [
        str(sum(int(q) for q in ask_q)),
        str(sum(int(q) for q in bid_q)),
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "3",
        "0.00",
        str(3_000_000 + rng.randint(0, 999_999)),
        "12",
        "-7",
        "0",
        "0",
        "0",
    ]
    rec = [rng.choice(SYMBOLS), hhmmss, "0", *asks, *bids, *ask_q, *bid_q, *tail]
    if fields == 63:
        rec += ["0", "0", "0", "2"]
    assert len(rec) == fields
    return "^".join(rec)


def notice_plain(rng: random.Random, *, fields: int = 26) -> str:
    """One execution-notice plaintext: a fill, 26-field (current) or 23-field (legacy)."""
    qty = rng.randint(1, 50)
    price = 70_000 + 100 * rng.randint(-50, 50)
    head = [
        "HTSUSER1",
        "5012345601",
        f"{rng.randint(1, 99_999):010d}",
        "",
        rng.choice(("01", "02")),
        "0",
        "00",
        "0",
        rng.choice(SYMBOLS),
        f"{qty:010d}",
        f"{price:09d}",
        "094941",
        "0",
        "2",
        "2",
        "00950",
        f"{qty:09d}",
        "홍길동",
    ]
    if fields == 26:
        tail = ["0", "1", "N", "", "", "", "삼성전자", f"{price:09d}"]
    else:
        tail = ["삼성전자", "", "", "삼성전자", f"{price:09d}"]
    rec = head + tail
    assert len(rec) == fields
    return "^".join(rec)


def encrypt(plain: str, *, key: str = NOTICE_KEY, iv: str = NOTICE_IV) -> str:
    """AES-256-CBC + PKCS7 + base64, as KIS encrypts notices (protocol doc §6.6)."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(key.encode("utf-8")), modes.CBC(iv.encode("utf-8"))).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode("ascii")


def frame(tr_id: str, records: list[str], *, encrypted: bool = False) -> str:
    """``<flag>|<TR_ID>|<count>|<payload>``."""
    payload = "^".join(records)
    if encrypted:
        payload = encrypt(payload)
    return f"{1 if encrypted else 0}|{tr_id}|{len(records):03d}|{payload}"


def frame_sets(n_frames: int, *, seed: int = 7) -> dict[str, list[str]]:
    """Every frame set the decode benchmark uses, ``n_frames`` frames each.

    Keys: ``trade1`` / ``trade4`` (H0STCNT0 47 fields, 1 or 4 records per frame),
    ``trade1_46`` / ``trade4_46`` (the legacy 46-field layout), ``book1`` / ``book1_63``
    (H0STASP0, 59 or 63 fields),
    ``notice26`` / ``notice23`` (encrypted H0STCNI9 notices, current and legacy layouts).
    """
    rng = random.Random(seed)
    sets: dict[str, list[str]] = {}
    for per in (1, 4):
        recs = [[trade_record(rng) for _ in range(per)] for _ in range(n_frames)]
        sets[f"trade{per}"] = [frame("H0STCNT0", r) for r in recs]
        legacy = [[trade_record(rng, fields=46) for _ in range(per)] for _ in range(n_frames)]
        sets[f"trade{per}_46"] = [frame("H0STCNT0", r) for r in legacy]
    sets["book1"] = [frame("H0STASP0", [orderbook_record(rng)]) for _ in range(n_frames)]
    sets["book1_63"] = [
        frame("H0STASP0", [orderbook_record(rng, fields=63)]) for _ in range(n_frames)
    ]
    for width in (26, 23):
        sets[f"notice{width}"] = [
            frame("H0STCNI9", [notice_plain(rng, fields=width)], encrypted=True)
            for _ in range(n_frames)
        ]
    return sets
