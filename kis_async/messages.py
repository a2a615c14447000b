"""English meanings of KIS message codes (``msg_cd``), for readers of KIS's Korean ``msg1``.

Error messages keep KIS's own text and add the meaning from this table::

    [40250000] 모의투자 주문가능금액을 초과 했습니다. (order amount exceeds buying power)

The codes are those of the protocol reference (gateway ``EGW…`` codes, WebSocket ack ``OPSP…``
codes, the success codes it lists, ``APBK1943``/``APBK3013``) and the business codes the bundled
simulator answers with, which follow KIS's numbering for paper (``40…``) and live (``APBK…``)
accounts. A code missing here is shown with KIS's text alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["MESSAGES", "meaning"]

_TABLE: Final[dict[str, str]] = {
    # Gateway and authentication (protocol reference §2.5).
    "EGW00001": "temporary error at KIS; try again",
    "EGW00002": "KIS server error",
    "EGW00103": "invalid app key",
    "EGW00105": "invalid app secret",
    "EGW00121": "invalid access token",
    "EGW00122": "access token not found",
    "EGW00123": "access token expired",
    "EGW00131": "invalid hashkey",
    "EGW00132": "invalid Content-Type",
    "EGW00133": "access tokens can be issued once a minute; wait and retry",
    "EGW00201": "too many requests per second (rate limit)",
    "EGW00205": "invalid credentials type (must be Bearer)",
    "EGW00206": "no permission to use this API",
    "EGW00207": "missing or invalid IP address",
    "EGW00208": "invalid customer type (custtype)",
    "EGW00213": "not a paper-trading TR id (a live TR id was sent to the paper server)",
    "EGW00215": "ledger-wide requests-per-second limit exceeded",
    "EGW00301": "connection timeout at KIS; check whether the order went through",
    "EGW00302": "response timeout at KIS; check whether the order went through",
    # Success codes (protocol reference §3.2).
    "KIOK0510": "query completed",
    "MCA00000": "processed normally",
    "20310000": "paper query completed",
    "APBK0013": "order sent",
    "40600000": "paper order completed",
    "40620000": "paper modification completed",
    "40630000": "paper cancellation completed",
    # Order rejections: paper (40…) and live (APBK…) codes.
    "APBK1943": "market orders are not allowed here",
    "APBK3013": "only limit orders are allowed in this NXT session",
    "40070000": "no such symbol",
    "APBK0656": "no such symbol",
    "40090000": "check the order quantity",
    "APBK0917": "check the order quantity",
    "40100000": "price is not on the tick grid",
    "APBK0918": "price is not on the tick grid",
    "40110000": "a market order must have price 0",
    "APBK0919": "a market order must have price 0",
    "40120000": "check the order type",
    "APBK0631": "check the order type",
    "40130000": "check buy/sell",
    "APBK0632": "check buy/sell",
    "40140000": "check the exchange code",
    "APBK0633": "check the exchange code",
    "40240000": "order quantity exceeds the sellable quantity",
    "APBK0400": "order quantity exceeds the sellable quantity",
    "40250000": "order amount exceeds buying power",
    "APBK0952": "order amount exceeds buying power",
    "40330000": "nothing left to modify or cancel",
    "APBK0915": "nothing left to modify or cancel",
    # Request errors.
    "OPSQ0002": "unknown service (TR id) for this URL",
    "OPSQ2000": "invalid account number",
    "OPSQ2001": "a required input field is missing",
    # WebSocket acknowledgements (protocol reference §6.3).
    "OPSP0000": "subscribed",
    "OPSP0001": "unsubscribed",
    "OPSP0002": "already subscribed",
    "OPSP0003": "unsubscribe failed: not subscribed",
    "OPSP0007": "subscription failed: KIS internal error",
    "OPSP0008": "too many subscriptions: at most 41 per session",
    "OPSP0009": "subscription failed: KIS could not forward it",
    "OPSP0010": "invalid app key (warning)",
    "OPSP0011": "invalid approval key",
    "OPSP8991": "invalid tr_id",
    "OPSP8992": "invalid tr_key",
    "OPSP8996": "app key already in use by another WebSocket session",
    "OPSP8997": "invalid tr_type",
    "OPSP8998": "invalid custtype",
}

#: msg_cd → English meaning (read-only).
MESSAGES: Final[Mapping[str, str]] = MappingProxyType(_TABLE)


def meaning(msg_cd: str | None) -> str | None:
    """The English meaning of a KIS message code, or None when the code is not in the table."""
    if not msg_cd:
        return None
    return MESSAGES.get(msg_cd.strip().upper())
