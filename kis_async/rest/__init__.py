"""The KIS REST layer: HTTP and errors, auth, rate limiting, retries, TR ids, endpoints.

:class:`RestClient` composes it; :class:`~kis_async.KISBroker` uses one per broker.
"""

from kis_async.rest.client import RestClient
from kis_async.rest.orders import PlacedOrder
from kis_async.rest.retry import set_wait_scale

__all__ = ["PlacedOrder", "RestClient", "set_wait_scale"]
