"""Decoders of the NXT and integrated (통합) feeds, every record width of §12, and the venue
of execution notices (ORD_EXG_GB)."""

from __future__ import annotations

import base64
import pickle
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kis_async.models import Exchange, Market, OrderBook, Session
from kis_async.stream.protocol import (
    DECODERS,
    ORDERBOOK_TR_IDS,
    QUOTE_TR_IDS,
    DataFrame,
    FrameError,
    decode_execution_plaintext,
    decode_executions,
    decode_orderbooks,
    decode_quotes,
    decrypt_payload,
    encrypt_payload,
    parse_frame,
)

# Protocol doc §7.1, the PORTAL-MD example record (46 fields).
SAMPLE_46 = (
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^"
    "219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^"
    "-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
)
# The 26-field notice (fill) with ORD_EXG_GB (field 20) to be filled in.
FILL_26 = (
    "HTSID^1234567801^0000002891^^02^0^00^0^136480^0000000001^000003190^094941^0^2^2^06010^"
    "000000001^김한투^^{exg}^N^^10^^하림^000003190"
)
FILL_23 = (
    "HTSID^1234567801^0000002891^^02^0^00^0^136480^0000000001^000003190^094941^0^2^2^06010^"
    "000000001^김한투^하림^10^^하림^000000000"
)
KEY = "abcdefghijklmnopqrstuvwxyz012345"
IV = "0123456789abcdef"


def base_book(symbol: str = "005930") -> list[str]:
    """The 59 fields every book layout starts with (asks 72,000+, bids 71,900-)."""
    asks = [str(72_000 + 100 * i) for i in range(10)]
    bids = [str(71_900 - 100 * i) for i in range(10)]
    qtys = [str(10 + i) for i in range(20)]
    tail = ["145", "245", "0", "0", "71950", "1200", "1200", "50", "2", "0.07", "3052507"]
    tail += ["0", "0", "0", "0", ""]
    fields = [symbol, "093354", "0", *asks, *bids, *qtys, *tail]
    assert len(fields) == 59
    return fields


KMID = ["71950", "300", "0"]
NMID = ["71900", "40", "0"]


def book(tr_id: str, extra: list[str], *, records: int = 1) -> OrderBook:
    payload = "^".join("^".join(base_book() + extra) for _ in range(records))
    frame = parse_frame(f"0|{tr_id}|{records:03d}|{payload}")
    assert isinstance(frame, DataFrame)
    books = decode_orderbooks(frame, day=date(2026, 12, 1))
    assert len(books) == records
    return books[0]


# -- trades -----------------------------------------------------------------------------------


@pytest.mark.parametrize("market", list(Market))
@pytest.mark.parametrize("width", [46, 47, 49])
def test_trades_of_every_market_and_width(market: Market, width: int) -> None:
    """H0STCNT0/H0NXCNT0/H0UNCNT0 decode in 46 (OTA), 47 (kis-trader) and wider records;
    the quote carries its market and, from field 47, its session."""
    fields = SAMPLE_46.split("^") + ["3", "X", "Y"][: width - 46]
    tr_id = QUOTE_TR_IDS[market]
    frame = DataFrame(False, tr_id, 2, "^".join(fields + fields))
    first, second = decode_quotes(frame)
    assert first.market is second.market is market
    assert first.price == Decimal(71900)
    assert first.session is (None if width == 46 else Session.AFTER_MARKET)
    assert second.symbol == "005930"
    # Field 22 is CCLD_DVSN on KRX and CNTG_CLS_CODE on the NXT/통합 feeds (§7.1).
    name = "CCLD_DVSN" if market is Market.KRX else "CNTG_CLS_CODE"
    assert first.raw[name] == "1"
    assert len(first.raw) == width


@pytest.mark.parametrize(
    ("code", "session"),
    [
        ("1", Session.PRE_MARKET),
        ("2", Session.REGULAR),
        ("3", Session.AFTER_MARKET),
        ("5", Session.CLOSING_AUCTION),
        ("9", None),
        ("", None),
    ],
)
def test_market_cls_code_to_session(code: str, session: Session | None) -> None:
    """MARKET_CLS_CODE 1/2/3/5 read as sessions; anything else as None."""
    [quote] = decode_quotes(DataFrame(False, "H0UNCNT0", 1, SAMPLE_46 + "^" + code))
    assert quote.session is session


def test_the_six_feeds_are_in_the_decoder_table() -> None:
    """Every market's trade and book TR has a keyed decoder."""
    for table in (QUOTE_TR_IDS, ORDERBOOK_TR_IDS):
        for tr_id in table.values():
            assert DECODERS[tr_id].keyed
    assert set(QUOTE_TR_IDS.values()) == {"H0STCNT0", "H0NXCNT0", "H0UNCNT0"}
    assert set(ORDERBOOK_TR_IDS.values()) == {"H0STASP0", "H0NXASP0", "H0UNASP0"}


# -- books ------------------------------------------------------------------------------------


def test_krx_book_59_and_63() -> None:
    """H0STASP0: 59 fields carry no mid price; 63 (kis-trader, expected) carry MID_PRC,
    MIDP_TOTAL_RSQN and MARKET_CLS_CODE; wider records are tolerated."""
    old = book("H0STASP0", [])
    assert (old.market, old.mid_price, old.mid_qty, old.session) == (Market.KRX, None, None, None)
    new = book("H0STASP0", ["71950", "500", "0", "2"], records=2)
    assert new.mid_price == new.krx_mid_price == Decimal(71950)
    assert new.mid_qty == 500
    assert new.nxt_mid_price is None
    assert new.session is Session.REGULAR
    wider = book("H0STASP0", ["71950", "500", "0", "1", "EXTRA", "MORE"])
    assert wider.mid_price == Decimal(71950)
    assert wider.session is Session.PRE_MARKET
    assert wider.best_ask == (Decimal(72000), 10)


def test_nxt_book_59_62_and_65() -> None:
    """H0NXASP0: 62 fields (kis-trader, expected) carry NMID_*; 65 (OTA) KMID_* then
    NMID_*; the book's own mid price is NXT's in both."""
    plain = book("H0NXASP0", [])
    assert plain.market is Market.NXT
    assert plain.mid_price is None
    kt = book("H0NXASP0", NMID)
    assert kt.mid_price == kt.nxt_mid_price == Decimal(71900)
    assert kt.mid_qty == 40
    assert kt.krx_mid_price is None
    ota = book("H0NXASP0", KMID + NMID, records=3)
    assert ota.mid_price == ota.nxt_mid_price == Decimal(71900)
    assert ota.mid_qty == 40
    assert ota.krx_mid_price == Decimal(71950)
    assert ota.session is None


def test_unified_book_65_and_66() -> None:
    """H0UNASP0: 65 (OTA) and 66 (kis-trader, expected) carry both venues' mid prices; the
    integrated book has no single mid price of its own."""
    for extra in (KMID + NMID, [*KMID, *NMID, "2"]):
        unified = book("H0UNASP0", extra)
        assert unified.market is Market.UNIFIED
        assert unified.mid_price is None
        assert unified.mid_qty is None
        assert unified.krx_mid_price == Decimal(71950)
        assert unified.nxt_mid_price == Decimal(71900)
    assert book("H0UNASP0", []).krx_mid_price is None


def test_zero_mid_price_reads_as_none() -> None:
    """A mid price of 0 (one side empty) is None, not Decimal(0)."""
    assert book("H0STASP0", ["0", "0", "0", "2"]).mid_price is None


def test_book_best_levels_without_building_the_side() -> None:
    """best_ask/best_bid/spread read level 1; a blank level 1 falls back to the first quoted
    level; a non-numeric quantity reads as 0."""
    fields = base_book()
    fields[23] = "n/a"  # ASKP_RSQN1
    [fast] = decode_orderbooks(DataFrame(False, "H0STASP0", 1, "^".join(fields)))
    assert fast.best_ask == (Decimal(72000), 0)
    assert fast.spread == Decimal(100)
    assert fast.asks[0] == (Decimal(72000), 0)
    fields = base_book()
    fields[3] = "0"  # ASKP1 not quoted
    fields[13] = ""  # BIDP1 blank
    [thin] = decode_orderbooks(DataFrame(False, "H0STASP0", 1, "^".join(fields)))
    assert thin.best_ask == (Decimal(72100), 11)
    assert thin.best_bid == (Decimal(71800), 21)
    assert len(thin.asks) == len(thin.bids) == 9


def test_book_with_new_fields_pickles_and_compares() -> None:
    """The new fields survive pickling into a plain OrderBook and take part in equality."""
    decoded = book("H0NXASP0", KMID + NMID)
    plain = pickle.loads(pickle.dumps(decoded))
    assert type(plain) is OrderBook
    assert plain == decoded
    assert plain.market is Market.NXT
    assert plain.krx_mid_price == Decimal(71950)
    assert book("H0UNASP0", KMID + NMID) != decoded
    assert "mid_price" in repr(decoded)


# -- execution notices --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exchange", "venue"),
    [
        ("1", Exchange.KRX, Exchange.KRX),
        ("2", Exchange.NXT, Exchange.NXT),
        ("3", Exchange.SOR, Exchange.KRX),
        ("4", Exchange.SOR, Exchange.NXT),
        ("", None, None),
        ("7", None, None),
    ],
)
def test_notice_venue(code: str, exchange: Exchange | None, venue: Exchange | None) -> None:
    """ORD_EXG_GB gives the exchange the order was placed with and the venue it went to
    (SOR -> KRX/NXT); blank or unknown codes read as None."""
    [event] = decode_execution_plaintext(FILL_26.format(exg=code), day=date(2026, 12, 1))
    assert event.exchange is exchange
    assert event.venue is venue
    assert pickle.loads(pickle.dumps(event)).venue is venue
    assert event.replace(qty=1).exchange is exchange


def test_legacy_notice_has_no_venue() -> None:
    """The 23-field layout has no ORD_EXG_GB: exchange and venue are None."""
    [event] = decode_execution_plaintext(FILL_23)
    assert (event.exchange, event.venue) == (None, None)


def _seal_raw(block: bytes) -> str:
    """AES-CBC of ``block`` with no padding added (to forge bad padding)."""
    enc = Cipher(algorithms.AES(KEY.encode()), modes.CBC(IV.encode())).encryptor()
    return base64.b64encode(enc.update(block) + enc.finalize()).decode()


def test_decrypt_roundtrip_cache_and_bad_padding() -> None:
    """Encrypted notices decrypt under two keys in turn (the cached cipher is per key/iv);
    a payload whose padding is wrong is a FrameError."""
    text = FILL_26.format(exg="4")
    other_key = "ZYXWVUTSRQPONMLKJIHGFEDCBA543210"
    for key in (KEY, other_key, KEY):
        sealed = encrypt_payload(text, key, IV)
        [event] = decode_executions(DataFrame(True, "H0STCNI0", 1, sealed), key, IV)
        assert event.venue is Exchange.NXT
        assert event.name == "하림"
    with pytest.raises(FrameError):
        decrypt_payload(encrypt_payload(text, KEY, IV), other_key, IV)
    assert decrypt_payload(encrypt_payload("A" * 15, KEY, IV), KEY, IV) == "A" * 15
    assert decrypt_payload(encrypt_payload("가" * 16, KEY, IV), KEY, IV) == "가" * 16
    # Blocks whose last byte is not valid PKCS#7: 0, 17, and 2 after a non-2 byte.
    for block in (b"A" * 15 + b"\x00", b"A" * 15 + b"\x11", b"A" * 14 + b"\x01\x02"):
        with pytest.raises(FrameError, match="padding"):
            decrypt_payload(_seal_raw(block), KEY, IV)
    with pytest.raises(FrameError):
        decrypt_payload("", KEY, IV)
    with pytest.raises(FrameError):
        decrypt_payload(encrypt_payload("x", KEY, IV), "short", IV)


def test_decrypt_from_many_threads() -> None:
    """Notices decrypt correctly from several threads at once (block contexts are per
    thread), under two keys."""
    other_key = "ZYXWVUTSRQPONMLKJIHGFEDCBA543210"
    texts = [FILL_26.format(exg=str(1 + i % 4)) + "^" + "가" * i for i in range(40)]
    sealed = [(encrypt_payload(t, k, IV), k, t) for t in texts for k in (KEY, other_key)]

    def work() -> bool:
        return all(decrypt_payload(s, k, IV) == t for s, k, t in sealed * 5)

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(lambda _: work(), range(8)))
