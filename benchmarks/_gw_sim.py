"""The simulator process of ``bench_gateway.py``: a KISSimulator with a paced market, and
(for the fan-out run) a second app key and a sequence number in every trade record.

Prints one JSON line (URLs, credentials) when serving; then reads commands on standard input,
one per line: ``start RATE`` paces the market at RATE trade records per second over every
listed symbol (one market step sends one record per registered symbol), ``stop`` stops it,
``stats`` prints the simulator's counters as one JSON line. It ends when its standard input
closes.

Benchmark-only changes, made here and nowhere in the library:

* ``--second-key``: the REST layer also accepts a second (app key, secret) pair. KIS allows
  one WebSocket session per app key (a second one is refused with OPSP8996, and so is it by
  the simulator); an account may hold several app keys, each with its own session, and both
  sessions get the same market feed. The direct broker measured against the gateway uses
  that second key, so both are served the very same frames by one simulator.
* ``--seq``: the cumulative volume (ACML_VOL, H0STCNT0 field 14, ``Quote.cum_volume``) of
  each trade record carries a sequence number. A record is built once per (TR, symbol) and
  step and the same text goes to every session, so the number names the record in every
  process that receives it, through the gateway or not.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from typing import Any

#: 0-based index of ACML_VOL in H0STCNT0 (protocol doc §7.1).
SEQ_FIELD = 13


def symbols(count: int) -> tuple[tuple[str, str, int], ...]:
    """The 15 default listings, then made-up ones, ``count`` in all."""
    from kis_async.sim.records import DEFAULT_SYMBOLS

    listed = list(DEFAULT_SYMBOLS[:count])
    for i in range(count - len(listed)):
        listed.append((f"{900_000 + 17 * i:06d}", f"벤치{i:02d}", 10_000 + 500 * i))
    return tuple(listed)


def _install_second_key(sim: Any, app_key: str, app_secret: str) -> None:
    from kis_async.sim.rest_auth import AuthMixin

    # Approval keys: the desk knows every app key it issues them for (as for linked
    # simulators); tokens: the OAuth credential check.
    sim.rest.desk.secrets[app_key] = app_secret
    original_check = AuthMixin._check_oauth_credentials
    original_owner = AuthMixin.approval_app_key

    def check(self: Any, key: Any, secret: Any) -> None:
        if key == app_key and secret == app_secret:
            return
        original_check(self, key, secret)

    def owner(self: Any, approval_key: str) -> str | None:
        # A socket opened with the second key's approval key is that app key's own session.
        entry = self.desk.keys.get(approval_key)
        if entry is not None and entry[0] == app_key:
            _, clock, expiry = entry
            return app_key if clock.monotonic() < expiry else None
        result: str | None = original_owner(self, approval_key)
        return result

    AuthMixin._check_oauth_credentials = check  # type: ignore[method-assign]
    AuthMixin.approval_app_key = owner  # type: ignore[method-assign]


def _install_seq() -> None:
    import kis_async.sim.ws as sim_ws

    counter = itertools.count(1)
    original = sim_ws.trade_record

    def numbered(*args: Any, **kwargs: Any) -> list[str]:
        record = original(*args, **kwargs)
        record[SEQ_FIELD] = str(next(counter))
        return record

    sim_ws.trade_record = numbered  # type: ignore[assignment]


async def _pace(sim: Any, rate: float, count: int) -> None:
    """Step the market so that ``rate`` trade records per second go out (``count`` symbols
    per step); late steps are caught up at once, as KIS bursts do."""
    steps_per_second = rate / count
    t0 = time.perf_counter()
    done = 0
    while True:
        due = int((time.perf_counter() - t0) * steps_per_second) + 1
        while done < due:
            sim.exchange.step(1)
            done += 1
        await asyncio.sleep(0.001)


async def _serve(options: dict[str, Any], args: argparse.Namespace) -> None:
    from kis_async.sim import KISSimulator

    count = int(options.pop("symbol_count", 15))
    sim = KISSimulator(**options, symbols=symbols(count))
    second = {"app_key": "PS" + "B" * 34, "app_secret": "b" * 180} if args.second_key else None
    if second is not None:
        _install_second_key(sim, second["app_key"], second["app_secret"])
    if args.seq:
        _install_seq()
    async with sim.serve(port=0) as running:
        info = {
            "rest_url": running.rest_url,
            "ws_url": running.ws_url,
            "app_key": running.app_key,
            "app_secret": running.app_secret,
            "account_id": running.account_id,
            "hts_id": running.hts_id,
            "mode": running.mode.value,
            "symbols": list(running.exchange.symbols),
            "second": second,
        }
        print(json.dumps(info), flush=True)
        loop = asyncio.get_running_loop()
        pacer: asyncio.Task[None] | None = None
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command, _, arg = line.strip().partition(" ")
            if command == "start":
                if pacer is None:
                    pacer = asyncio.create_task(_pace(running, float(arg), count))
            elif command == "stop":
                if pacer is not None:
                    pacer.cancel()
                    pacer = None
            elif command == "stats":
                print(json.dumps(running.stats.as_dict()), flush=True)
        if pacer is not None:
            pacer.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--options", default="{}", help="KISSimulator keywords as JSON")
    parser.add_argument("--second-key", action="store_true", help="accept a second app key")
    parser.add_argument("--seq", action="store_true", help="number every trade record")
    args = parser.parse_args()
    asyncio.run(_serve(json.loads(args.options), args))


if __name__ == "__main__":
    main()
