"""kis_async's decoder and kis-trader's, alternating in one process: a steadier ratio than the
full table on a noisy machine (a diagnostic, not a target check).

Run with the peer venv (``bench_decode.py`` creates it)::

    benchmarks/.bench-env/bin/python benchmarks/decode_head_to_head.py [SET] [--top]

``SET`` is a key of ``_frames.frame_sets`` (``book1_63`` by default); ``--top`` reads only
the book attributes kis-trader types (symbol, time, best ask/bid, totals, expected price and
quantity) instead of every typed attribute.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _frames
import decode_worker


def main() -> None:
    """Print the median speed ratio of kis_async (built+read) over kis-trader."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", nargs="?", default="book1_63")
    parser.add_argument("--top", action="store_true", help="top-of-book attributes only")
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if args.top:
        decode_worker.BOOK_ATTRS = (
            "symbol", "time", "best_ask", "best_bid", "total_ask_qty", "total_bid_qty",
            "expected_price", "expected_qty",
        )  # fmt: skip
    frames = _frames.frame_sets(args.frames)[args.set]
    ours, _ = decode_worker._our_decoder(read=True)
    peer, why = decode_worker._kis_trader_decoder()
    if ours is None or peer is None:
        raise SystemExit(f"a decoder is missing: {why}")
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(args.reps):
        start = time.perf_counter()
        ours(frames)
        mine.append(time.perf_counter() - start)
        start = time.perf_counter()
        peer(frames)
        theirs.append(time.perf_counter() - start)
    ratio = statistics.median(theirs) / statistics.median(mine)
    what = "top of book" if args.top else "every typed attribute"
    print(f"{args.set} ({what}): kis_async {ratio:.2f}x kis-trader")


if __name__ == "__main__":
    main()
