"""The exception tree: hierarchy, classification table, pickling, and message hygiene."""

from __future__ import annotations

import pickle

import pytest

from kis_async import errors
from kis_async.errors import (
    AuthenticationError,
    BrokerAPIError,
    BrokerConnectionError,
    BrokerError,
    BrokerTimeoutError,
    InvalidOrderError,
    OrderRejectedError,
    OrderStateUnknownError,
    RateLimitError,
    ServerError,
    SubscriptionError,
    classify_api_error,
)


def test_hierarchy_matches_the_documented_tree() -> None:
    """Every class sits where the module docstring draws it, with the builtin mix-ins."""
    assert issubclass(InvalidOrderError, BrokerError)
    assert issubclass(InvalidOrderError, ValueError)
    assert issubclass(BrokerConnectionError, ConnectionError)
    assert issubclass(BrokerTimeoutError, BrokerConnectionError)
    for cls in (AuthenticationError, RateLimitError, OrderRejectedError, ServerError):
        assert issubclass(cls, BrokerAPIError)
    for cls in (SubscriptionError, OrderStateUnknownError, BrokerAPIError):
        assert issubclass(cls, BrokerError)
    for name in errors.__all__:
        if name[0].isupper() and name.endswith("Error"):
            assert name in (errors.__doc__ or ""), name


@pytest.mark.parametrize(
    ("status", "msg_cd", "is_order", "expected"),
    [
        (500, "EGW00201", False, RateLimitError),
        (200, "EGW00201", False, RateLimitError),
        (500, "EGW00215", False, RateLimitError),
        (500, "EGW00123", False, AuthenticationError),
        (200, "EGW00123", False, AuthenticationError),
        (403, "EGW00133", False, AuthenticationError),
        (403, "EGW00103", False, AuthenticationError),
        (403, "EGW00105", False, AuthenticationError),
        (500, "EGW00121", False, AuthenticationError),
        (500, "EGW00122", False, AuthenticationError),
        (200, "APBK0918", True, OrderRejectedError),
        (500, "40310000", True, OrderRejectedError),
        (200, "EGW00201", True, RateLimitError),
        (500, None, False, ServerError),
        (502, None, True, ServerError),
        (401, None, False, AuthenticationError),
        (200, "OPSQ0002", False, BrokerAPIError),
        (500, "EGW00213", False, BrokerAPIError),
    ],
)
def test_classification_table(
    status: int, msg_cd: str | None, is_order: bool, expected: type[BrokerAPIError]
) -> None:
    """msg_cd decides first, then the HTTP status."""
    err = classify_api_error(
        status_code=status, rt_cd="1", msg_cd=msg_cd, msg="m", tr_id="T", is_order=is_order
    )
    assert type(err) is expected
    assert err.status_code == status
    assert err.msg_cd == msg_cd
    assert err.tr_id == "T"


def test_message_carries_code_message_and_tr_id() -> None:
    """The default message names the code, KIS's text and where it happened."""
    err = BrokerAPIError(
        status_code=500,
        rt_cd="1",
        msg_cd="EGW00201",
        msg="초당 거래건수를 초과하였습니다.",
        tr_id="FHKST01010100",
    )
    text = str(err)
    assert "EGW00201" in text
    assert "초당" in text
    assert "FHKST01010100" in text


@pytest.mark.parametrize(
    "err",
    [
        BrokerTimeoutError("timed out", request_sent=True),
        RateLimitError(status_code=500, rt_cd="1", msg_cd="EGW00201", msg="x", tr_id="T"),
        OrderRejectedError(status_code=200, rt_cd="1", msg_cd="APBK0918", msg="y", tr_id="U"),
        SubscriptionError("refused", tr_id="H0STCNT0", tr_key="005930", msg_cd="OPSP0008"),
        OrderStateUnknownError("unknown", idempotency_key="k-1"),
    ],
)
def test_errors_pickle_with_their_attributes(err: BrokerError) -> None:
    """Errors cross process boundaries intact (type, message and attributes)."""
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is type(err)
    assert str(clone) == str(err)
    assert vars(clone) == vars(err)
