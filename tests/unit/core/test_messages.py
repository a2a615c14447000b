"""English meanings of KIS message codes, added to KIS's Korean text in error messages."""

from __future__ import annotations

import pickle

from kis_async.errors import (
    AuthenticationError,
    BrokerAPIError,
    OrderRejectedError,
    classify_api_error,
)
from kis_async.messages import MESSAGES, meaning

#: Every msg_cd the protocol reference (kis-protocol.md §2.5, §3.2, §6.3) lists.
REFERENCE_CODES = (
    *(f"EGW00{n}" for n in ("001", "002", "103", "105", "121", "122", "123", "131", "132")),
    *(f"EGW00{n}" for n in ("133", "201", "205", "206", "207", "208", "213", "215")),
    "EGW00301",
    "EGW00302",
    "KIOK0510",
    "MCA00000",
    "20310000",
    "APBK0013",
    "40600000",
    "40630000",
    "APBK1943",
    "APBK3013",
    *(f"OPSP00{n:02d}" for n in (0, 1, 2, 3, 7, 8, 9, 10, 11)),
    *(f"OPSP899{n}" for n in (1, 2, 6, 7, 8)),
)


def test_every_code_of_the_protocol_reference_has_a_meaning() -> None:
    """The table covers the reference's codes, each with a non-empty English meaning."""
    missing = [code for code in REFERENCE_CODES if code not in MESSAGES]
    assert missing == []
    for code, text in MESSAGES.items():
        assert text.strip() == text
        assert text.isascii(), code  # the English side only; KIS's msg1 carries the Korean


def test_meaning_lookup_tolerates_padding_and_case_and_unknown_codes() -> None:
    """KIS pads fields with spaces; an unknown or missing code has no meaning."""
    assert meaning(" egw00201 \n") == MESSAGES["EGW00201"]
    assert meaning("ZZZZ9999") is None
    assert meaning(None) is None
    assert meaning("") is None


def test_message_keeps_korean_and_adds_english() -> None:
    """`[code] 한국어 (English)`, then where it happened; unknown codes are left alone."""
    err = classify_api_error(
        status_code=200,
        rt_cd="1",
        msg_cd="40250000",
        msg="모의투자 주문가능금액을 초과 했습니다.",
        tr_id="VTTC0012U",
        is_order=True,
    )
    assert str(err) == (
        "[40250000] 모의투자 주문가능금액을 초과 했습니다. (order amount exceeds buying power)"
        " (tr_id=VTTC0012U, HTTP 200)"
    )
    assert err.meaning == "order amount exceeds buying power"
    unknown = BrokerAPIError(status_code=200, msg_cd="ZZZZ9999", msg="무엇", tr_id="T")
    assert str(unknown) == "[ZZZZ9999] 무엇 (tr_id=T, HTTP 200)"
    assert unknown.meaning is None
    oauth = AuthenticationError(status_code=403, msg_cd="EGW00133", msg=None)
    assert str(oauth) == f"[EGW00133] ({MESSAGES['EGW00133']}) (HTTP 403)"


def test_meaning_survives_pickling() -> None:
    """A pickled error keeps its message and meaning (derived from msg_cd)."""
    err = OrderRejectedError(status_code=200, rt_cd="1", msg_cd="40240000", msg="초과", tr_id="T")
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err)
    assert clone.meaning == MESSAGES["40240000"]
