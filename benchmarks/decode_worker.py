"""Times every frame decoder in ONE process and prints the results as JSON.

Run by ``bench_decode.py`` with the peer venv's interpreter (so python-kis and kis-trader are
importable next to kis_async from the work tree), or with the project interpreter when the
peers are absent. Decoders are interleaved round-robin within each repetition so that noise
on the shared machine hits them alike; the figure per decoder is the median over repetitions.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _frames  # noqa: E402

#: A decoder takes a list of raw frames and returns how many records it produced.
Decoder = Callable[[list[str]], int]


def _floor_decoder() -> Decoder:
    """The floor: split the frame and the fields, decrypting first when flagged; no typing."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = _frames.NOTICE_KEY.encode()
    iv = _frames.NOTICE_IV.encode()

    def decrypt(payload: str) -> str:
        dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        data = dec.update(base64.b64decode(payload)) + dec.finalize()
        unpad = padding.PKCS7(128).unpadder()
        return (unpad.update(data) + unpad.finalize()).decode("utf-8")

    def run(frames: list[str]) -> int:
        n = 0
        for raw in frames:
            flag, _tr, count, payload = raw.split("|", 3)
            if flag == "1":
                payload = decrypt(payload)
            payload.split("^")
            n += int(count)
        return n

    return run


QUOTE_ATTRS = (
    "symbol", "time", "price", "change", "change_rate", "volume", "cum_volume", "cum_turnover",
    "open", "high", "low", "ask", "bid", "vwap", "side",
)  # fmt: skip
BOOK_ATTRS = (
    "symbol", "time", "asks", "bids", "total_ask_qty", "total_bid_qty", "expected_price",
    "expected_qty",
)  # fmt: skip
EXECUTION_ATTRS = (
    "kind", "broker_order_id", "original_order_id", "branch_no", "symbol", "side", "order_type",
    "qty", "price", "order_qty", "time", "name",
)  # fmt: skip


def _our_decoder(*, read: bool) -> tuple[Decoder | None, str]:
    """kis_async: raw frame -> ``Quote`` / ``OrderBook`` / ``Execution``.

    kis_async's stream models convert most fields when first read, so ``read=True`` also reads
    every typed attribute once: that is the fair comparison with peers that convert eagerly.
    """
    try:
        from kis_async.stream import protocol
    except Exception as exc:
        return None, f"kis_async.stream.protocol not importable: {type(exc).__name__}: {exc}"
    parse = protocol.parse_frame
    quotes = protocol.decode_quotes
    books = protocol.decode_orderbooks
    executions = protocol.decode_executions
    key, iv = _frames.NOTICE_KEY, _frames.NOTICE_IV
    attrs = {"H0STCNT0": QUOTE_ATTRS, "H0STASP0": BOOK_ATTRS, "H0STCNI9": EXECUTION_ATTRS}

    def decode(raw: str) -> list[Any]:
        frame = parse(raw)
        tr_id = frame.tr_id  # type: ignore[union-attr]
        if tr_id == "H0STCNT0":
            return quotes(frame)  # type: ignore[arg-type]
        if tr_id == "H0STASP0":
            return books(frame)  # type: ignore[arg-type]
        return executions(frame, key, iv)  # type: ignore[arg-type]

    def run(frames: list[str]) -> int:
        n = 0
        for raw in frames:
            n += len(decode(raw))
        return n

    def run_and_read(frames: list[str]) -> int:
        n = 0
        for raw in frames:
            values = decode(raw)
            names = attrs[raw[2:10]]
            for value in values:
                for name in names:
                    getattr(value, name)
            n += len(values)
        return n

    return (run_and_read if read else run), ""


def _kis_trader_decoder() -> tuple[Decoder | None, str]:
    """kis-trader 0.12.2: its RealtimeConnection's own decode path (parse_frame + _decode)."""
    try:
        from kis_trader.realtime import parsers  # noqa: F401  (registers the TR parsers)
        from kis_trader.realtime._connection import RealtimeConnection
        from kis_trader.realtime._protocol import parse_frame
    except Exception as exc:
        return None, f"kis-trader not importable: {type(exc).__name__}"

    async def _never(url: str) -> Any:
        raise RuntimeError("no network in the decode benchmark")

    conn = RealtimeConnection("approval", "ws://127.0.0.1:9/", connect=_never, reconnect=False)
    conn._crypto["H0STCNI9"] = (_frames.NOTICE_KEY, _frames.NOTICE_IV)
    decode = conn._decode

    def run(frames: list[str]) -> int:
        n = 0
        for raw in frames:
            n += len(decode(parse_frame(raw)))  # type: ignore[arg-type]
        return n

    return run, ""


def _python_kis_decoder() -> tuple[Decoder | None, str]:
    """python-kis 2.1.6: the steps of KisWebsocketClient._handle_event, minus event dispatch."""
    try:
        from pykis.api.websocket import WEBSOCKET_RESPONSES_MAP
        from pykis.client.messaging import KisWebsocketEncryptionKey
        from pykis.responses.websocket import KisWebsocketResponse
    except Exception as exc:
        return None, f"python-kis not importable: {type(exc).__name__}"
    key = KisWebsocketEncryptionKey(
        iv=_frames.NOTICE_IV.encode("utf-8"), key=_frames.NOTICE_KEY.encode("utf-8")
    )

    def run(frames: list[str]) -> int:
        n = 0
        for raw in frames:
            flag, tr_id, count, body = raw.split("|", 3)
            if flag == "1":
                body = key.decrypt(base64.b64decode(body)).decode("utf-8")
            response_type = WEBSOCKET_RESPONSES_MAP[tr_id]
            n += len(
                list(
                    KisWebsocketResponse.parse(body, count=int(count), response_type=response_type)
                )
            )
        return n

    return run, ""


def _check(decoder: Decoder, frames: list[str], expected: int) -> str:
    """Empty when ``decoder`` decodes every record of ``frames``; else why not."""
    try:
        got = decoder(frames)
    except Exception as exc:
        return f"fails on this layout: {type(exc).__name__}: {str(exc)[:80]}"
    if got != expected:
        return f"drops frames of this layout ({got} of {expected} records decoded)"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()

    sets = _frames.frame_sets(args.frames)
    floor = _floor_decoder()
    decoders: dict[str, Decoder] = {"split": floor}
    notes: dict[str, str] = {}
    for name, factory in (
        ("kis_async", lambda: _our_decoder(read=True)),
        ("kis_async (lazy)", lambda: _our_decoder(read=False)),
        ("kis-trader", _kis_trader_decoder),
        ("python-kis", _python_kis_decoder),
    ):
        fn, why = factory()
        if fn is None:
            notes[name] = why
        else:
            decoders[name] = fn

    results: dict[str, dict[str, Any]] = {}
    for set_name, frames in sets.items():
        expected = floor(frames)
        usable: dict[str, Decoder] = {}
        per_set: dict[str, Any] = {"records": expected, "rates": {}, "notes": {}}
        for name, fn in decoders.items():
            problem = _check(fn, frames[:50], floor(frames[:50]))
            if problem:
                per_set["notes"][name] = problem
            else:
                usable[name] = fn
        samples: dict[str, list[float]] = {name: [] for name in usable}
        order = list(usable)
        for rep in range(args.reps):
            rotated = order[rep % len(order) :] + order[: rep % len(order)]
            for name in rotated:
                t0 = time.perf_counter()
                usable[name](frames)
                samples[name].append(expected / (time.perf_counter() - t0))
        per_set["rates"] = {name: statistics.median(s) for name, s in samples.items()}
        results[set_name] = per_set
    print(json.dumps({"python": sys.version.split()[0], "notes": notes, "sets": results}))


if __name__ == "__main__":
    main()
