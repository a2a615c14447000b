"""Market-data models: price snapshots and order books."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import Field

from kis_async.errors import InvalidOrderError, PaperModeError
from kis_async.models.common import KISModel

__all__ = ["Market", "OrderBook", "PriceLevel", "PriceSnapshot", "Session", "check_market"]


class Market(StrEnum):
    """Which market a quote comes from: KIS's ``FID_COND_MRKT_DIV_CODE`` (protocol doc §4.9).

    ``UNIFIED`` is KIS's 통합 view of KRX and NXT together.
    """

    KRX = "J"
    NXT = "NX"
    UNIFIED = "UN"

    @classmethod
    def parse(cls, value: Any) -> Market:
        """Accept a ``Market``, its name (``"nxt"``, ``"unified"``) or its code (``"UN"``).

        Raises:
            ValueError: anything else.
        """
        if isinstance(value, Market):
            return value
        text = str(value).strip().upper()
        for member in cls:
            if text in (member.name, member.value):
                return member
        raise ValueError(f"unknown market {value!r}: expected KRX, NXT or UNIFIED")


def check_market(market: Market | str, *, paper: bool) -> Market:
    """``market`` parsed; NX/UN refused in paper mode before any request or subscription.

    OTA gives the NX/UN quote codes and the H0NX*/H0UN* feeds no paper switch, a community TR
    table marks them unsupported on paper (protocol doc §12, [UNCERTAIN]) and paper trading
    is KRX-only (§8): so the SDK refuses them rather than sending what the paper server
    would reject (or, for a feed, answer with silence).

    Raises:
        InvalidOrderError: an unknown market.
        PaperModeError: NXT or UNIFIED in paper mode.
    """
    try:
        parsed = Market.parse(market)
    except ValueError as exc:
        raise InvalidOrderError(str(exc)) from None
    if paper and parsed is not Market.KRX:
        raise PaperModeError(
            f"market {parsed.name} ({parsed.value}) quotes need the live servers: "
            "KIS paper trading serves KRX quotes only"
        )
    return parsed


class Session(StrEnum):
    """A trading session of one venue (the calendar's answer, and ``Quote.session``)."""

    PRE_MARKET = "pre_market"
    OPENING_AUCTION = "opening_auction"
    REGULAR = "regular"
    CLOSING_AUCTION = "closing_auction"
    AFTER_HOURS_CLOSING_PRICE = "after_hours_closing_price"
    AFTER_HOURS_SINGLE_PRICE = "after_hours_single_price"
    AFTER_MARKET = "after_market"
    CLOSED = "closed"


class PriceSnapshot(KISModel):
    """Current price of a symbol (inquire-price ``output``)."""

    symbol: str = Field(alias="stck_shrn_iscd")
    price: Decimal = Field(alias="stck_prpr")
    change: Decimal | None = Field(default=None, alias="prdy_vrss")
    change_sign: str | None = Field(default=None, alias="prdy_vrss_sign")
    change_rate: Decimal | None = Field(default=None, alias="prdy_ctrt")
    open: Decimal | None = Field(default=None, alias="stck_oprc")
    high: Decimal | None = Field(default=None, alias="stck_hgpr")
    low: Decimal | None = Field(default=None, alias="stck_lwpr")
    upper_limit: Decimal | None = Field(default=None, alias="stck_mxpr")
    lower_limit: Decimal | None = Field(default=None, alias="stck_llam")
    base_price: Decimal | None = Field(default=None, alias="stck_sdpr")
    volume: int | None = Field(default=None, alias="acml_vol")
    turnover: Decimal | None = Field(default=None, alias="acml_tr_pbmn")
    vwap: Decimal | None = Field(default=None, alias="wghn_avrg_stck_prc")
    tick_size: int | None = Field(default=None, alias="aspr_unit")
    status_code: str | None = Field(default=None, alias="iscd_stat_cls_code")
    market_name: str | None = Field(default=None, alias="rprs_mrkt_kor_name")


class PriceLevel(NamedTuple):
    """One level of an order book."""

    price: Decimal
    qty: int


@dataclass(frozen=True, slots=True)
class OrderBook:
    """Ten ask and ten bid levels, best first.

    Built by the REST layer (inquire-asking-price-exp-ccn) and by the stream decoder
    (H0STASP0). A level KIS reports as price 0 (no quote) is left out, so a thin book has
    fewer than ten levels per side.

    Attributes:
        symbol: the KRX code.
        time: the book's time as an aware Asia/Seoul datetime, when KIS gave one.
        asks: 매도호가 levels, lowest price first.
        bids: 매수호가 levels, highest price first.
        total_ask_qty: total resting ask quantity.
        total_bid_qty: total resting bid quantity.
        expected_price: the expected auction price (예상체결가), when there is one.
        expected_qty: the expected auction quantity.
        market: the feed the book came from (KRX, NXT or UNIFIED), when known.
        session: the session KIS says the book belongs to (``MARKET_CLS_CODE`` of the
            63-field H0STASP0), when KIS sent it.
        mid_price: the mid price (중간가) of this book's own venue: ``MID_PRC`` on KRX
            books, ``NMID_PRC`` on NXT books. None on integrated books (they carry one mid
            price per venue: :attr:`krx_mid_price`, :attr:`nxt_mid_price`) and on layouts
            without mid-price fields.
        mid_qty: the resting quantity at the mid price (``MIDP_TOTAL_RSQN`` /
            ``NMID_TOTAL_RSQN``), with :attr:`mid_price`.
        krx_mid_price: KRX's mid price (``MID_PRC`` / ``KMID_PRC``), where the layout has it.
        nxt_mid_price: NXT's mid price (``NMID_PRC``), where the layout has it.
    """

    symbol: str
    time: datetime | None
    asks: tuple[PriceLevel, ...]
    bids: tuple[PriceLevel, ...]
    total_ask_qty: int | None = None
    total_bid_qty: int | None = None
    expected_price: Decimal | None = None
    expected_qty: int | None = None
    market: Market | None = None
    session: Session | None = None
    mid_price: Decimal | None = None
    mid_qty: int | None = None
    krx_mid_price: Decimal | None = None
    nxt_mid_price: Decimal | None = None

    @property
    def best_ask(self) -> PriceLevel | None:
        """The lowest ask, if any."""
        return self.asks[0] if self.asks else None

    @property
    def best_bid(self) -> PriceLevel | None:
        """The highest bid, if any."""
        return self.bids[0] if self.bids else None

    @property
    def spread(self) -> Decimal | None:
        """Best ask minus best bid, when both sides are quoted."""
        if not self.asks or not self.bids:
            return None
        return self.asks[0].price - self.bids[0].price
