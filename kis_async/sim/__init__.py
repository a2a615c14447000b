"""A faithful local KIS: REST + WebSocket + a simulated KRX exchange + fault injection.

::

    from kis_async import Mode
    from kis_async.sim import KISSimulator

    async with KISSimulator(seed=1234, mode=Mode.PAPER).serve(port=0) as sim:
        config = sim.config()          # credentials the simulator accepts, its URLs
        sim.exchange.set_price("005930", 70_000)
        sim.faults.fail_next(2)

Needs the ``sim`` extra (starlette, uvicorn).
"""

from kis_async.sim.exchange import SimClock, SimExchange, SimInvariantError, SimOrder
from kis_async.sim.faults import SimFaults, SimStats
from kis_async.sim.options import SimOptions
from kis_async.sim.simulator import KISSimulator

__all__ = [
    "KISSimulator",
    "SimClock",
    "SimExchange",
    "SimFaults",
    "SimInvariantError",
    "SimOptions",
    "SimOrder",
    "SimStats",
]
