"""Shared by the examples: connect to a real KIS account when ``KIS_*`` is set, else to the
embedded simulator.

    async with connect() as broker:
        ...

With ``KIS_APP_KEY`` (and the other ``KIS_*`` variables, see the README) in the environment,
the examples use that account. Examples that place orders refuse a LIVE-mode account unless
``KIS_EXAMPLES_ALLOW_LIVE_ORDERS=1`` is also set: they trade real money there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kis_async import KISBroker, KISConfig, Mode


def using_simulator() -> bool:
    """True when no account is configured, so the examples start the simulator."""
    return not os.environ.get("KIS_APP_KEY")


@asynccontextmanager
async def connect(*, places_orders: bool = False, seed: int = 1234) -> AsyncIterator[KISBroker]:
    """Yield an open :class:`KISBroker`: the configured account, or a fresh simulator."""
    if not using_simulator():
        config = KISConfig.from_env()
        if (
            places_orders
            and config.mode is Mode.LIVE
            and os.environ.get("KIS_EXAMPLES_ALLOW_LIVE_ORDERS") != "1"
        ):
            sys.exit(
                "this example places orders; on a LIVE account set "
                "KIS_EXAMPLES_ALLOW_LIVE_ORDERS=1 if you really mean it"
            )
        async with KISBroker(config) as broker:
            yield broker
        return

    # Imported here: the simulator needs the optional `sim` extra, a real account does not.
    from kis_async.sim import KISSimulator  # noqa: PLC0415

    async with (
        KISSimulator(seed=seed, mode=Mode.PAPER).serve(port=0) as sim,
        KISBroker(sim.config()) as broker,
    ):
        print(f"(no KIS_APP_KEY set: using the embedded simulator at {sim.rest_url})")
        yield broker
