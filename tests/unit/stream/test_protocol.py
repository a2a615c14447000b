"""Sans-I/O protocol: messages, frame classification, decoders, decryption, acks."""

from __future__ import annotations

import json
import pickle
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kis_async.models import KST, ExecutionKind, Market, OrderBook, OrderType, Quote, Session, Side
from kis_async.stream.protocol import (
    ACK_CODES,
    Ack,
    AckStatus,
    DataFrame,
    FrameError,
    PingPong,
    decode_execution_plaintext,
    decode_executions,
    decode_orderbooks,
    decode_quotes,
    decrypt_payload,
    encrypt_payload,
    is_pingpong,
    parse_frame,
    subscribe_message,
    unsubscribe_message,
)

# Protocol doc §7.1, the PORTAL-MD example record (46 fields).
SAMPLE_46 = (
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^"
    "219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^"
    "-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
)
SAMPLE_47 = SAMPLE_46 + "^2"
# Protocol doc §7.3, the PORTAL example plaintexts (23-field era).
ACCEPT_23 = (
    "HTSID^1234567801^0000002891^^02^0^01^0^136480^0000000001^000000000^094941^0^1^1^06010^"
    "000000001^김한투^하림^10^^하림^"
)
FILL_23 = (
    "HTSID^1234567801^0000002891^^02^0^00^0^136480^0000000001^000003190^094941^0^2^2^06010^"
    "000000001^김한투^하림^10^^하림^000000000"
)
# The same fill in the current 26-field layout.
FILL_26 = (
    "HTSID^1234567801^0000002891^^02^0^00^0^136480^0000000001^000003190^094941^0^2^2^06010^"
    "000000001^김한투^^1^N^^10^^하림^000003190"
)
KEY = "abcdefghijklmnopqrstuvwxyz012345"  # 32 chars, as KIS sends
IV = "0123456789abcdef"


def book_record(symbol: str = "005930") -> str:
    asks = [str(72_000 + 100 * i) for i in range(10)]
    bids = [str(71_900 - 100 * i) for i in range(10)]
    ask_qty = [str(10 + i) for i in range(10)]
    bid_qty = [str(20 + i) for i in range(10)]
    tail = ["145", "245", "0", "0", "71950", "1200", "1200", "50", "2", "0.07", "3052507"]
    tail += ["0", "0", "0", "0", "0"]
    fields = [symbol, "093354", "0", *asks, *bids, *ask_qty, *bid_qty, *tail]
    assert len(fields) == 59
    return "^".join(fields)


# -- messages ---------------------------------------------------------------------------------


def test_subscribe_message_shape() -> None:
    """The registration message carries the approval key, custtype, tr_type 1, tr_id, tr_key."""
    doc = json.loads(subscribe_message("key-123", "H0STCNT0", "005930", customer_type="B"))
    assert doc["header"] == {
        "approval_key": "key-123",
        "custtype": "B",
        "tr_type": "1",
        "content-type": "utf-8",
    }
    assert doc["body"] == {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}}


def test_unsubscribe_message_uses_tr_type_2() -> None:
    """Removal is tr_type "2" (the official code, not the "0" of some docstrings)."""
    doc = json.loads(unsubscribe_message("key-123", "H0STASP0", "000660"))
    assert doc["header"]["tr_type"] == "2"
    assert doc["header"]["custtype"] == "P"
    assert doc["body"]["input"] == {"tr_id": "H0STASP0", "tr_key": "000660"}


# -- frame classification -------------------------------------------------------------------


def test_parse_data_frame() -> None:
    """A data frame splits into flag, TR id, record count and payload (payload keeps '|')."""
    frame = parse_frame("0|H0STCNT0|002|a^b|c")
    assert frame == DataFrame(False, "H0STCNT0", 2, "a^b|c")
    enc = parse_frame("1|H0STCNI9|001|QUJD")
    assert isinstance(enc, DataFrame)
    assert enc.encrypted
    assert enc.record_count == 1


def test_pingpong_detected_and_kept_verbatim() -> None:
    """PINGPONG is recognised and its exact text kept for the echo."""
    text = '{"header":{"tr_id":"PINGPONG","datetime":"20240102093000"}}'
    frame = parse_frame(text)
    assert frame == PingPong(text)
    assert is_pingpong(text)
    assert not is_pingpong('{"header":{"tr_id":"H0STCNT0"},"body":{"msg_cd":"PINGPONG"}}')
    assert not is_pingpong("0|H0STCNT0|001|PINGPONG")


@pytest.mark.parametrize(
    "text",
    ["", "x", "0|H0STCNT0|001", "0|H0STCNT0|abc|x", "0||001|x", "{not json", "[1,2]", '{"a":1}'],
)
def test_malformed_frames_raise_frame_error(text: str) -> None:
    """Garbage raises FrameError (a ValueError) and nothing else."""
    with pytest.raises(FrameError):
        parse_frame(text)


def ack_text(msg_cd: str, rt_cd: str, msg1: str, *, tr_id: str = "H0STCNT0") -> str:
    return json.dumps(
        {
            "header": {"tr_id": tr_id, "tr_key": "005930", "encrypt": "N"},
            "body": {
                "rt_cd": rt_cd,
                "msg_cd": msg_cd,
                "msg1": msg1 + "   ",
                "output": {"iv": IV, "key": KEY},
            },
        }
    )


ACK_TABLE = [
    ("OPSP0000", "0", "SUBSCRIBE SUCCESS", AckStatus.SUBSCRIBED),
    ("OPSP0001", "0", "UNSUBSCRIBE SUCCESS", AckStatus.UNSUBSCRIBED),
    ("OPSP0002", "1", "ALREADY IN SUBSCRIBE", AckStatus.ALREADY_SUBSCRIBED),
    ("OPSP0003", "1", "UNSUBSCRIBE ERROR(not found!)", AckStatus.NOT_SUBSCRIBED),
    ("OPSP0007", "1", "SUBSCRIBE INTERNAL ERROR", AckStatus.FAILED),
    ("OPSP0008", "1", "MAX SUBSCRIBE OVER", AckStatus.FAILED),
    ("OPSP0009", "1", "SUBSCRIBE ERROR(mci send failed)", AckStatus.FAILED),
    ("OPSP0010", "1", "invalid appkey warning", AckStatus.FAILED),
    ("OPSP0011", "1", "invalid approval : NOT FOUND", AckStatus.FAILED),
    ("OPSP8991", "1", "invalid tr_id", AckStatus.FAILED),
    ("OPSP8992", "1", "invalid tr_key", AckStatus.FAILED),
    ("OPSP8996", "9", "ALREADY IN USE appkey", AckStatus.FAILED),
    ("OPSP8997", "1", "invalid tr_type", AckStatus.FAILED),
    ("OPSP8998", "1", "invalid custtype", AckStatus.FAILED),
    ("OPSP9990", "1", "JSON PARSING ERROR", AckStatus.FAILED),
    ("OPSP9999", "1", "JSON PARSING ERROR : invalid json format", AckStatus.FAILED),
]


@pytest.mark.parametrize(("msg_cd", "rt_cd", "msg1", "status"), ACK_TABLE)
def test_every_ack_code(msg_cd: str, rt_cd: str, msg1: str, status: AckStatus) -> None:
    """Every ack code of protocol doc §6.3 maps to its meaning; key/iv are kept."""
    ack = parse_frame(ack_text(msg_cd, rt_cd, msg1))
    assert isinstance(ack, Ack)
    assert ack.msg_cd == msg_cd
    assert ack.msg == msg1
    assert ack.status is status
    assert ack.ok is (status is not AckStatus.FAILED)
    assert ack.key == KEY
    assert ack.iv == IV
    assert ack.description


def test_ack_table_covers_the_documented_codes() -> None:
    """The code table names every documented OPSP code."""
    documented = {row[0] for row in ACK_TABLE if not row[0].startswith("OPSP999")}
    assert documented == set(ACK_CODES)


def test_ack_conflicts_and_unknown_codes() -> None:
    """OPSP0001 with ALREADY IN SUBSCRIBE counts as already subscribed; unknown codes by rt_cd."""
    odd = parse_frame(ack_text("OPSP0001", "1", "ALREADY IN SUBSCRIBE"))
    assert isinstance(odd, Ack)
    assert odd.status is AckStatus.ALREADY_SUBSCRIBED
    ok = parse_frame(ack_text("OPSP1234", "0", "SUBSCRIBE SUCCESS"))
    assert isinstance(ok, Ack)
    assert ok.status is AckStatus.SUBSCRIBED
    bad = parse_frame(ack_text("OPSP1234", "1", "SOMETHING"))
    assert isinstance(bad, Ack)
    assert bad.status is AckStatus.FAILED


def test_ack_null_tr_id_and_encrypt_flag() -> None:
    """OPSP8996 comes with tr_id "(null)"; notice acks carry encrypt "Y"."""
    ack = parse_frame(ack_text("OPSP8996", "9", "ALREADY IN USE appkey", tr_id="(null)"))
    assert isinstance(ack, Ack)
    assert ack.tr_id == "(null)"
    notice = json.loads(ack_text("OPSP0000", "0", "SUBSCRIBE SUCCESS", tr_id="H0STCNI0"))
    notice["header"]["encrypt"] = "Y"
    parsed = parse_frame(json.dumps(notice))
    assert isinstance(parsed, Ack)
    assert parsed.encrypted


# -- H0STCNT0 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("record", [SAMPLE_46, SAMPLE_47, SAMPLE_47 + "^X^Y"])
def test_quote_sample_record(record: str) -> None:
    """The doc's sample record decodes to typed values, with 46, 47 or more fields."""
    frame = parse_frame(f"0|H0STCNT0|001|{record}")
    assert isinstance(frame, DataFrame)
    [quote] = decode_quotes(frame)
    assert quote.symbol == "005930"
    assert quote.time == datetime(2023, 6, 12, 9, 33, 54, tzinfo=KST)
    assert quote.price == Decimal(71900)
    assert quote.change == Decimal(-100)
    assert quote.change_rate == Decimal("-0.14")
    assert quote.vwap == Decimal("72023.83")
    assert (quote.open, quote.high, quote.low) == (Decimal(72100), Decimal(72400), Decimal(71700))
    assert (quote.ask, quote.bid) == (Decimal(71900), Decimal(71800))
    assert quote.volume == 1
    assert quote.cum_volume == 3052507
    assert quote.cum_turnover == Decimal(219853241700)
    assert quote.side is Side.BUY
    assert quote.raw["CTTR"] == "84.90"
    assert quote["VI_STND_PRC"] == "72100"
    assert quote.raw["MRKT_TRTM_CLS_CODE"] == ""
    assert len(quote.raw) == len(record.split("^"))


def test_quote_47th_and_extra_fields_by_name() -> None:
    """The 47th field is MARKET_CLS_CODE; fields past the layout are FIELD<n>."""
    [quote] = decode_quotes(DataFrame(False, "H0STCNT0", 1, SAMPLE_47 + "^X"))
    assert quote.raw["MARKET_CLS_CODE"] == "2"
    assert quote.raw["FIELD48"] == "X"
    assert list(quote.raw)[-1] == "FIELD48"
    with pytest.raises(KeyError):
        quote.raw["FIELD49"]
    [short] = decode_quotes(DataFrame(False, "H0STCNT0", 1, SAMPLE_46))
    with pytest.raises(KeyError):
        short.raw["MARKET_CLS_CODE"]


def test_multi_record_quote_frame() -> None:
    """count > 1: records are concatenated with '^' and split by count."""
    second = SAMPLE_47.replace("005930", "000660", 1).replace("^71900^5^", "^71950^5^", 1)
    payload = "^".join([SAMPLE_47, second, SAMPLE_47])
    quotes = decode_quotes(DataFrame(False, "H0STCNT0", 3, payload))
    assert [q.symbol for q in quotes] == ["005930", "000660", "005930"]
    assert quotes[1].price == Decimal(71950)
    assert quotes[2].raw["MARKET_CLS_CODE"] == "2"
    assert all(len(q.raw) == 47 for q in quotes)


def test_multi_record_46_field_frame() -> None:
    """Multi-record frames in the 46-field layout split at 46."""
    quotes = decode_quotes(DataFrame(False, "H0STCNT0", 2, SAMPLE_46 + "^" + SAMPLE_46))
    assert len(quotes) == 2
    assert quotes[1].time == datetime(2023, 6, 12, 9, 33, 54, tzinfo=KST)


def test_quote_blank_optional_fields_read_as_none() -> None:
    """Blank or unparsable optional fields read as None, never raise."""
    fields = SAMPLE_47.split("^")
    fields[4] = ""
    fields[6] = "abc"
    fields[1] = "99"
    fields[21] = "3"
    [quote] = decode_quotes(DataFrame(False, "H0STCNT0", 1, "^".join(fields)))
    assert quote.change is None
    assert quote.vwap is None
    assert quote.time is None
    assert quote.side is None


@pytest.mark.parametrize(
    "payload",
    [
        "005930^1^2",
        "^" + SAMPLE_47.split("^", 1)[1],
        SAMPLE_47.replace("^71900^5^", "^x^5^", 1),
        SAMPLE_47.replace("^71900^5^", "^NaN^5^", 1),
        SAMPLE_47.replace("^71900^5^", "^Infinity^5^", 1),
    ],
)
def test_bad_quote_records_raise_frame_error(payload: str) -> None:
    """Too few fields, no symbol or an unparsable price (NaN and Infinity included, which
    Decimal would parse) is a FrameError."""
    with pytest.raises(FrameError):
        decode_quotes(DataFrame(False, "H0STCNT0", 1, payload))


def test_quote_value_semantics() -> None:
    """A decoded quote equals the same quote built by keywords, hashes, pickles, is read-only."""
    [quote] = decode_quotes(DataFrame(False, "H0STCNT0", 1, SAMPLE_47))
    built = Quote(
        symbol="005930",
        time=datetime(2023, 6, 12, 9, 33, 54, tzinfo=KST),
        price=Decimal(71900),
        change=Decimal(-100),
        change_rate=Decimal("-0.14"),
        volume=1,
        cum_volume=3052507,
        cum_turnover=Decimal(219853241700),
        open=Decimal(72100),
        high=Decimal(72400),
        low=Decimal(71700),
        ask=Decimal(71900),
        bid=Decimal(71800),
        vwap=Decimal("72023.83"),
        side=Side.BUY,
        raw={"CTTR": "84.90"},
        session=Session.REGULAR,
        market=Market.KRX,
    )
    assert quote == built
    assert hash(quote) == hash(built)
    assert built["CTTR"] == "84.90"
    restored = pickle.loads(pickle.dumps(quote))
    assert restored == quote
    assert restored.raw["CTTR"] == "84.90"
    with pytest.raises(AttributeError):
        quote.price = Decimal(1)  # type: ignore[misc]
    assert "005930" in repr(quote)


# -- H0STASP0 ---------------------------------------------------------------------------------


def test_orderbook_record() -> None:
    """A 59-field book decodes to ten levels per side, totals and the expected price."""
    frame = parse_frame("0|H0STASP0|001|" + book_record())
    assert isinstance(frame, DataFrame)
    [book] = decode_orderbooks(frame, day=date(2024, 1, 2))
    assert isinstance(book, OrderBook)
    assert book.symbol == "005930"
    assert book.time == datetime(2024, 1, 2, 9, 33, 54, tzinfo=KST)
    assert len(book.asks) == 10
    assert len(book.bids) == 10
    assert book.best_ask == (Decimal(72000), 10)
    assert book.best_bid == (Decimal(71900), 20)
    assert book.bids[-1] == (Decimal(71000), 29)
    assert book.spread == Decimal(100)
    assert (book.total_ask_qty, book.total_bid_qty) == (145, 245)
    assert book.expected_price == Decimal(71950)
    assert book.expected_qty == 1200


def test_orderbook_value_semantics_and_zero_levels() -> None:
    """Levels priced 0 are left out; a decoded book equals and pickles as a plain OrderBook."""
    fields = book_record().split("^")
    for i in range(8, 13):
        fields[i] = "0"
    payload = "^".join(fields) + "^EXTRA"
    [book] = decode_orderbooks(DataFrame(False, "H0STASP0", 1, payload))
    assert len(book.asks) == 5
    plain = pickle.loads(pickle.dumps(book))
    assert type(plain) is OrderBook
    assert plain == book
    assert book == plain
    assert hash(plain) == hash(book)
    with pytest.raises(AttributeError):
        book.symbol = "x"  # type: ignore[misc]


def test_multi_record_orderbook_frame() -> None:
    """Two concatenated books split by count."""
    payload = book_record("005930") + "^" + book_record("000660")
    books = decode_orderbooks(DataFrame(False, "H0STASP0", 2, payload))
    assert [b.symbol for b in books] == ["005930", "000660"]
    with pytest.raises(FrameError):
        decode_orderbooks(DataFrame(False, "H0STASP0", 3, payload))


# -- execution notices ------------------------------------------------------------------------


def test_notice_23_field_acceptance() -> None:
    """The doc's 23-field acceptance plaintext decodes to an ACCEPTED event."""
    [event] = decode_execution_plaintext(ACCEPT_23, day=date(2024, 1, 2))
    assert event.kind is ExecutionKind.ACCEPTED
    assert event.broker_order_id == "0000002891"
    assert event.original_order_id is None
    assert event.branch_no == "06010"
    assert event.symbol == "136480"
    assert event.side is Side.BUY
    assert event.order_type is OrderType.MARKET
    assert event.qty == 1
    assert event.price is None  # market order: no price on the acceptance
    assert event.order_qty == 1
    assert event.time == datetime(2024, 1, 2, 9, 49, 41, tzinfo=KST)
    assert event.name == "하림"
    assert event.source == "websocket"
    assert event.raw["CNTG_ISNM"] == "하림"
    assert event.raw["ACNT_NAME"] == "김한투"


@pytest.mark.parametrize("plaintext", [FILL_23, FILL_26, FILL_26 + "^NEW1^NEW2"])
def test_notice_fill_both_layouts(plaintext: str) -> None:
    """23- and 26-field fills (and more trailing fields) decode to the same fill."""
    [event] = decode_execution_plaintext(plaintext)
    assert event.kind is ExecutionKind.FILLED
    assert event.qty == 1
    assert event.price == Decimal(3190)
    assert event.order_type is OrderType.LIMIT
    assert event.name == "하림"


def test_notice_layout_fields_by_name() -> None:
    """The 26-field layout names ORD_EXG_GB; the 23-field one does not have it."""
    [new] = decode_execution_plaintext(FILL_26)
    [old] = decode_execution_plaintext(FILL_23)
    assert new.raw["ORD_EXG_GB"] == "1"
    assert new.raw["ODER_PRC"] == "000003190"
    assert "ORD_EXG_GB" not in old.raw
    assert old.raw["ODER_PRC"] == "000000000"


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({12: "1"}, ExecutionKind.REJECTED),
        ({5: "1"}, ExecutionKind.MODIFIED),
        ({5: "2"}, ExecutionKind.CANCELLED),
        ({14: "3"}, ExecutionKind.CANCELLED),
        ({}, ExecutionKind.ACCEPTED),
    ],
)
def test_notice_kinds(changes: dict[int, str], kind: ExecutionKind) -> None:
    """RFUS_YN, RCTF_CLS and ACPT_YN select rejected, modified and cancelled."""
    fields = ACCEPT_23.split("^")
    for index, value in changes.items():
        fields[index] = value
    fields[3] = "0000002000" if kind is ExecutionKind.MODIFIED else ""
    [event] = decode_execution_plaintext("^".join(fields))
    assert event.kind is kind
    if kind is ExecutionKind.MODIFIED:
        assert event.original_order_id == "0000002000"


def test_encrypted_notice_with_known_key() -> None:
    """A notice encrypted with a known key/iv decrypts (AES-256-CBC, PKCS7) and decodes."""
    payload = encrypt_payload(FILL_26, KEY, IV)
    assert decrypt_payload(payload, KEY, IV) == FILL_26
    frame = parse_frame(f"1|H0STCNI9|001|{payload}")
    assert isinstance(frame, DataFrame)
    [event] = decode_executions(frame, KEY, IV)
    assert event.kind is ExecutionKind.FILLED
    assert event.broker_order_id == "0000002891"


def test_encrypted_multi_record_notice() -> None:
    """Two encrypted notices in one frame split by count after decryption."""
    payload = encrypt_payload(FILL_26 + "^" + FILL_26.replace("0000002891", "0000002892"), KEY, IV)
    events = decode_executions(DataFrame(True, "H0STCNI0", 2, payload), KEY, IV)
    assert [e.broker_order_id for e in events] == ["0000002891", "0000002892"]


def test_plain_notice_frame_needs_no_key() -> None:
    """Flag 0 notices (seen in portal examples) decode without a key."""
    [event] = decode_executions(DataFrame(False, "H0STCNI9", 1, FILL_23), None, None)
    assert event.qty == 1


@pytest.mark.parametrize(
    ("payload", "key", "iv"),
    [
        ("not base64!!", KEY, IV),
        (encrypt_payload(FILL_26, KEY, IV), "x" * 32, IV),
        (encrypt_payload(FILL_26, KEY, IV), None, None),
        (encrypt_payload("short^record", KEY, IV), KEY, IV),
    ],
)
def test_bad_encrypted_notices_raise_frame_error(
    payload: str, key: str | None, iv: str | None
) -> None:
    """Wrong key, no key, bad base64 or a short record: FrameError."""
    with pytest.raises(FrameError):
        decode_executions(DataFrame(True, "H0STCNI9", 1, payload), key, iv)


def test_execution_value_semantics() -> None:
    """Decoded executions compare, pickle and replace like the keyword-built ones."""
    [event] = decode_execution_plaintext(FILL_26, day=date(2024, 1, 2))
    restored = pickle.loads(pickle.dumps(event))
    assert restored == event
    partial = event.replace(qty=5)
    assert partial.qty == 5
    assert partial.broker_order_id == event.broker_order_id
    assert partial != event
    assert partial.raw["CNTG_QTY"] == "0000000001"
    with pytest.raises(AttributeError):
        event.qty = 3  # type: ignore[misc]


# -- fuzzing ----------------------------------------------------------------------------------

frame_texts = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda flag, tr, count, fields: f"{flag}|{tr}|{count}|{'^'.join(fields)}",
        st.sampled_from(["0", "1", "2"]),
        st.sampled_from(["H0STCNT0", "H0STASP0", "H0STCNI0", "H0STCNI9", "", "X"]),
        st.one_of(st.integers(-5, 200).map(str), st.text(max_size=4)),
        st.lists(st.text(alphabet="0123456789.-^ab", max_size=8), max_size=140),
    ),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    ).map(json.dumps),
    st.builds(
        lambda tr, body: json.dumps({"header": {"tr_id": tr}, "body": body}),
        st.one_of(st.none(), st.text(max_size=10), st.just("PINGPONG")),
        st.dictionaries(
            st.sampled_from(["rt_cd", "msg_cd", "msg1", "output"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=8), st.just({"key": 1})),
        ),
    ),
)


@settings(max_examples=400, deadline=None)
@given(frame_texts)
def test_fuzzed_frames_never_raise_unexpected(text: str) -> None:
    """Any text gives a typed frame or FrameError; decoding a data frame likewise."""
    try:
        frame = parse_frame(text)
    except FrameError:
        return
    assert isinstance(frame, DataFrame | Ack | PingPong)
    if isinstance(frame, Ack):
        assert isinstance(frame.status, AckStatus)
        return
    if not isinstance(frame, DataFrame):
        return
    try:
        if frame.tr_id == "H0STCNT0":
            values: list[object] = list(decode_quotes(frame))
        elif frame.tr_id == "H0STASP0":
            values = list(decode_orderbooks(frame))
        else:
            values = list(decode_executions(frame, KEY, IV))
    except FrameError:
        return
    for value in values:
        repr(value)  # every lazily converted attribute reads without raising
