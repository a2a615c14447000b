"""A faithful local KIS: REST + WebSocket + a simulated KRX exchange + fault injection.

::

    from kis_async import Mode
    from kis_async.sim import KISSimulator

    async with KISSimulator(seed=1234, mode=Mode.PAPER).serve(port=0) as sim:
        config = sim.config()          # credentials the simulator accepts, its URLs
        sim.exchange.set_price("005930", 70_000)
        sim.faults.fail_next(2)

Faults (``sim.faults``; also ``POST /__sim__/faults`` with ``{"fault": name, ...}``):
``fail_next(count, kind="rate_limit"|"server_error")``, ``delay_responses(seconds, count=None)``,
``drop_next_order_response(count=1)``, ``expire_tokens()``, ``drop_sessions(after_frames=None)``,
``mute(muted=True)``, ``refuse_connections(seconds)``, ``clear()``. Inspection: ``sim.stats``
(``GET /__sim__/stats``) and ``sim.exchange`` (``GET /__sim__/state``, ``/__sim__/orders``).

Venues and sessions: each symbol has a KRX and a thinner NXT book; SOR orders go to the better
price; sessions follow ``sim.market_now()`` (a trading day at 10:00 by default), moved with
``KISSimulator(clock=...)`` or ``sim.set_time(...)``; ``sim.calendar`` is the deterministic
trading calendar behind ``chk-holiday``.

Needs the ``sim`` extra (starlette, uvicorn).
"""

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ModuleNotFoundError as exc:  # a base install: name the extra, keep the module name
    raise ModuleNotFoundError(
        f"kis_async.sim needs the 'sim' extra: pip install 'kis-async[sim]' "
        f"(no module named {exc.name!r})",
        name=exc.name,
    ) from exc

from kis_async.sim.clock import SimClock
from kis_async.sim.exchange import SimExchange, SimInvariantError, SimOrder
from kis_async.sim.faults import SimFaults, SimStats
from kis_async.sim.options import SimOptions
from kis_async.sim.simulator import KISSimulator
from kis_async.sim.venues import SimCalendar

__all__ = [
    "KISSimulator",
    "SimCalendar",
    "SimClock",
    "SimExchange",
    "SimFaults",
    "SimInvariantError",
    "SimOptions",
    "SimOrder",
    "SimStats",
]
