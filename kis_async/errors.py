"""The one exception tree of kis_async.

::

    BrokerError                          root of everything this library raises on purpose
    ├── InvalidOrderError (ValueError)   bad input, raised before any network call
    │   └── HistoryRequestError          a bar request KIS cannot serve (interval, range,
    │                                    depth, paper mode), raised before any request
    │   └── PaperModeError               not available on the paper servers (NXT/SOR, NX/UN)
    ├── BrokerConnectionError (ConnectionError)
    │   │                                no usable answer from KIS (connect/transport failure,
    │   │                                WebSocket session given up after max retries);
    │   │                                ``request_sent`` says whether KIS may have the request
    │   ├── BrokerTimeoutError           timed out (connect, or the whole-request deadline)
    │   └── BrokerClosedError            the broker was closed while the call was in flight
    ├── BrokerAPIError                   KIS answered with a failure (status_code, rt_cd,
    │   │                                msg_cd, msg, tr_id)
    │   ├── AuthenticationError          EGW00103/105/121/122/123 (after one refresh), EGW00133
    │   ├── RateLimitError               EGW00201 / EGW00215 once retries are spent
    │   ├── OrderRejectedError           order / modify / cancel business rejection
    │   ├── ServerError                  5xx with no business code
    │   └── ResponseTooLargeError        a body over ``KISConfig.max_response_bytes``
    ├── SubscriptionError                a real-time registration was refused or over the cap
    ├── StreamOverflowError              a lossless stream's consumer fell too far behind
    └── OrderStateUnknownError           an order may or may not be booked (see README)

Lower-level exceptions (httpx, websockets, pydantic, json) are translated at exactly one
boundary per layer and chained with ``raise ... from``. No message or attribute of these
exceptions carries an app secret, token, approval key or full account number, and they pickle
without losing their attributes.
"""

from __future__ import annotations

from typing import Any, Final

from kis_async.messages import meaning

__all__ = [
    "AUTH_MSG_CODES",
    "RATE_LIMIT_MSG_CODES",
    "TOKEN_EXPIRED_MSG_CODES",
    "AuthenticationError",
    "BrokerAPIError",
    "BrokerClosedError",
    "BrokerConnectionError",
    "BrokerError",
    "BrokerTimeoutError",
    "HistoryRequestError",
    "InvalidOrderError",
    "OrderRejectedError",
    "OrderStateUnknownError",
    "PaperModeError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ServerError",
    "StreamOverflowError",
    "SubscriptionError",
    "classify_api_error",
]

#: msg_cd values that mean "the token is invalid or expired": refresh once and retry once.
TOKEN_EXPIRED_MSG_CODES: Final = frozenset({"EGW00121", "EGW00122", "EGW00123"})
#: msg_cd values that map to :class:`AuthenticationError`.
AUTH_MSG_CODES: Final = frozenset(
    {"EGW00103", "EGW00105", "EGW00121", "EGW00122", "EGW00123", "EGW00133", "EGW00205"}
)
#: msg_cd values that map to :class:`RateLimitError` (retryable with backoff).
RATE_LIMIT_MSG_CODES: Final = frozenset({"EGW00201", "EGW00215"})


class BrokerError(Exception):
    """Root of every error kis_async raises on purpose."""


class InvalidOrderError(BrokerError, ValueError):
    """Bad input (order, symbol, quantity, price, key conflict), raised before any request."""


class HistoryRequestError(InvalidOrderError):
    """A price-history request KIS cannot serve: unknown interval, ``start`` after ``end``,
    minute bars older than KIS keeps, or an API the paper servers lack. Raised before any
    request."""


class PaperModeError(InvalidOrderError):
    """The request needs KIS's live servers: paper trading is KRX-only (NXT/SOR orders,
    NX/UN quotes) and lacks some APIs. Raised before any network call."""


class BrokerConnectionError(BrokerError, ConnectionError):
    """No usable answer from KIS: connection refused or dropped, or a session given up.

    Attributes:
        request_sent: True when the request may have reached KIS (an order with
            ``request_sent=True`` may have been booked); False when it certainly did not.
    """

    def __init__(self, message: str, *, request_sent: bool = False) -> None:
        super().__init__(message)
        self.request_sent = request_sent

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), {"request_sent": self.request_sent}))


class BrokerTimeoutError(BrokerConnectionError):
    """A request timed out.

    Attributes:
        request_sent: True when the request may have reached KIS (a read/write timeout or a
            dropped connection after sending). An order with ``request_sent=True`` must not be
            re-sent blindly: it may have been booked.
    """

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message, request_sent=request_sent)


class BrokerClosedError(BrokerConnectionError):
    """The broker (its HTTP client) was closed while this call was in flight.

    Never retried. ``request_sent`` tells whether KIS may have the request; a keyed order
    cut off this way surfaces as :class:`OrderStateUnknownError` and is settled by
    ``reconcile()`` on the next open.
    """


class BrokerAPIError(BrokerError):
    """KIS answered with a failure.

    The message keeps KIS's Korean ``msg1`` and adds the English meaning of known codes
    (:mod:`kis_async.messages`): ``[40250000] 모의투자 주문가능금액을 초과 했습니다. (order amount
    exceeds buying power) (tr_id=VTTC0012U, HTTP 200)``.

    Attributes:
        status_code: the HTTP status (KIS sends business errors with 200 and 500 alike).
        rt_cd: KIS's result code (``"0"`` success, anything else failure), if any.
        msg_cd: KIS's message code (``EGW00201``, ``APBK0918``, ...), if any.
        msg: KIS's human message (``msg1`` or ``error_description``), stripped.
        tr_id: the TR id of the call that failed, if any.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        rt_cd: str | None = None,
        msg_cd: str | None = None,
        msg: str | None = None,
        tr_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.rt_cd = rt_cd
        self.msg_cd = msg_cd
        self.msg = msg
        self.tr_id = tr_id
        if message is None:
            english = meaning(msg_cd)
            parts = [f"[{msg_cd}]" if msg_cd else None, msg or None]
            parts.append(f"({english})" if english else None)
            detail = " ".join(p for p in parts if p) or "KIS returned an error"
            where = f" (tr_id={tr_id}, HTTP {status_code})" if tr_id else f" (HTTP {status_code})"
            message = detail + (where if status_code is not None or tr_id else "")
        super().__init__(message)

    @property
    def meaning(self) -> str | None:
        """The English meaning of :attr:`msg_cd`, when the code is a known one."""
        return meaning(self.msg_cd)

    def __reduce__(self) -> tuple[Any, ...]:
        attrs = {
            "status_code": self.status_code,
            "rt_cd": self.rt_cd,
            "msg_cd": self.msg_cd,
            "msg": self.msg,
            "tr_id": self.tr_id,
        }
        return (_rebuild, (type(self), str(self), attrs))


class AuthenticationError(BrokerAPIError):
    """Credentials, token or approval key refused (after one refresh where that can help)."""


class RateLimitError(BrokerAPIError):
    """KIS refused the call as over its rate limit (EGW00201/EGW00215) and retries ran out."""


class OrderRejectedError(BrokerAPIError):
    """KIS refused an order, modification or cancellation as a business matter."""


class ServerError(BrokerAPIError):
    """KIS failed with a 5xx status and no business code."""


class ResponseTooLargeError(BrokerAPIError):
    """KIS's response body was longer than ``KISConfig.max_response_bytes``; it was abandoned
    after reading at most that much (KIS bodies are tens of kilobytes)."""


class SubscriptionError(BrokerError):
    """A real-time registration failed: refused by KIS, not acknowledged, or over the cap.

    Attributes:
        tr_id: the real-time TR id.
        tr_key: the symbol (or ``"<hts id>"`` placeholder for notices; never the raw HTS id).
        msg_cd: the KIS ack code (``OPSP0008``...), or None when no ack came.
    """

    def __init__(
        self,
        message: str,
        *,
        tr_id: str | None = None,
        tr_key: str | None = None,
        msg_cd: str | None = None,
    ) -> None:
        super().__init__(message)
        self.tr_id = tr_id
        self.tr_key = tr_key
        self.msg_cd = msg_cd

    def __reduce__(self) -> tuple[Any, ...]:
        attrs = {"tr_id": self.tr_id, "tr_key": self.tr_key, "msg_cd": self.msg_cd}
        return (_rebuild, (type(self), str(self), attrs))


class StreamOverflowError(BrokerError):
    """A lossless stream (execution notices) passed its high-water mark.

    Raised instead of silently dropping data. Nothing was lost: the events are still queued,
    but the consumer must catch up (or open a new stream and reconcile).
    """


class OrderStateUnknownError(BrokerError):
    """An order may or may not have been booked by KIS and reconciliation could not tell.

    The order was not re-sent. Call :meth:`KISBroker.reconcile` later; then calling
    ``place_order`` again with the same idempotency key returns the bound order id, or sends
    the order if reconciliation proved it was never booked.

    Attributes:
        idempotency_key: the key of the journal entry that stays ``unknown``.
    """

    def __init__(self, message: str, *, idempotency_key: str | None) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), {"idempotency_key": self.idempotency_key}))


def _rebuild(cls: type[BaseException], message: str, attrs: dict[str, Any]) -> BaseException:
    err = cls.__new__(cls)
    BaseException.__init__(err, message)
    for key, value in attrs.items():
        setattr(err, key, value)
    return err


def classify_api_error(
    *,
    status_code: int | None,
    rt_cd: str | None,
    msg_cd: str | None,
    msg: str | None,
    tr_id: str | None,
    is_order: bool = False,
) -> BrokerAPIError:
    """Choose the :class:`BrokerAPIError` subclass for a failed KIS answer.

    The table is keyed on ``msg_cd`` first, then on the HTTP status:

    ============================================  =========================
    msg_cd / status                               class
    ============================================  =========================
    EGW00103/105/121/122/123/133/205              AuthenticationError
    EGW00201, EGW00215                            RateLimitError
    any other code on an order/modify/cancel TR   OrderRejectedError
    no code and status >= 500                     ServerError
    no code and status 401/403                    AuthenticationError
    anything else                                 BrokerAPIError
    ============================================  =========================
    """
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "rt_cd": rt_cd,
        "msg_cd": msg_cd,
        "msg": msg,
        "tr_id": tr_id,
    }
    cls: type[BrokerAPIError]
    if msg_cd in AUTH_MSG_CODES:
        cls = AuthenticationError
    elif msg_cd in RATE_LIMIT_MSG_CODES:
        cls = RateLimitError
    elif msg_cd and is_order:
        cls = OrderRejectedError
    elif not msg_cd and status_code is not None and status_code >= 500:
        cls = ServerError
    elif not msg_cd and status_code in (401, 403):
        cls = AuthenticationError
    else:
        cls = BrokerAPIError
    return cls(**kwargs)
