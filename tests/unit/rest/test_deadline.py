"""``timeout`` bounds the whole request, and a body over the cap is abandoned: a raw HTTP
server on 127.0.0.1 that drips its answer (1 byte per 0.25 s), never stops, or sends 50 MB."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from kis_async.errors import BrokerTimeoutError, ResponseTooLargeError, ServerError
from kis_async.models import OrderRequest, Side
from kis_async.rest.http import _Progress

DRIP = 0.25
TIMEOUT = 1.5
SLACK = 0.5

Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class _Server:
    """What the raw server saw and wrote."""

    url: str = ""
    paths: list[str] = field(default_factory=list)
    written: int = 0


def _head(status: int = 200, **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} OK", "content-type: application/json; charset=utf-8"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _token() -> bytes:
    body = json.dumps(
        {
            "access_token": "DRIPTOKEN",
            "token_type": "Bearer",
            "expires_in": 86400,
            "access_token_token_expired": "2099-12-31 23:59:59",
        }
    ).encode()
    return _head(content_length=str(len(body))) + body


@asynccontextmanager
async def _serve(
    answer: Callable[[_Server, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[_Server]:
    """A keep-alive HTTP/1.1 server: tokenP answered at once, every other path by ``answer``."""
    seen = _Server()
    tasks: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode().split("\r\n")
                length = 0
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                path = request_line.split()[1].split("?")[0]
                seen.paths.append(path)
                if path == "/oauth2/tokenP":
                    writer.write(_token())
                    await writer.drain()
                    continue
                await answer(seen, writer)
                return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        except asyncio.CancelledError:
            # Ended by the fixture: end quietly (start_server logs a cancelled handler).
            return
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    seen.url = f"http://127.0.0.1:{port}"
    try:
        yield seen
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def _drip_body(seen: _Server, writer: asyncio.StreamWriter) -> None:
    """Headers at once, then a 1000-byte body one byte per 0.25 s (250 s in all)."""
    writer.write(_head(content_length="1000"))
    while True:
        writer.write(b" ")
        await writer.drain()
        seen.written += 1
        await asyncio.sleep(DRIP)


async def _drip_head(seen: _Server, writer: asyncio.StreamWriter) -> None:
    """The status line and headers themselves, one byte per 0.25 s."""
    for byte in _head(content_length="2") + b"{}":
        writer.write(bytes([byte]))
        await writer.drain()
        seen.written += 1
        await asyncio.sleep(DRIP)


async def _endless(seen: _Server, writer: asyncio.StreamWriter) -> None:
    """A chunked body that never ends: one 1-byte chunk per 0.25 s."""
    writer.write(_head(transfer_encoding="chunked"))
    while True:
        writer.write(b"1\r\n \r\n")
        await writer.drain()
        seen.written += 1
        await asyncio.sleep(DRIP)


async def _timed(call: Awaitable[Any]) -> tuple[BaseException, float]:
    started = time.monotonic()
    try:
        await call
    except Exception as exc:
        return exc, time.monotonic() - started
    raise AssertionError("the call did not fail")


@pytest.mark.parametrize(
    "answer", [_drip_body, _drip_head, _endless], ids=["body", "head", "endless"]
)
async def test_drip_fails_at_the_deadline(make_client: Any, kis: Any, answer: Any) -> None:
    """A dripping or never-ending answer fails with BrokerTimeoutError(request_sent=True) at
    ``timeout`` +- 0.5 s, though bytes keep arriving well within every read timeout."""
    async with _serve(answer) as seen:
        client = make_client(kis.make_config(rest_url=seen.url, timeout=TIMEOUT, max_retries=0))
        await client.token()
        error, elapsed = await _timed(client.get_price("005930"))
    assert isinstance(error, BrokerTimeoutError), repr(error)
    assert error.request_sent is True
    assert abs(elapsed - TIMEOUT) <= SLACK, elapsed
    assert seen.written >= 3  # the server really was dripping
    assert seen.paths.count("/uapi/domestic-stock/v1/quotations/inquire-price") == 1


async def test_order_deadline_is_uncertain_and_never_resent(make_client: Any, kis: Any) -> None:
    """An order POST cut off by the deadline after sending: request_sent=True, sent once."""
    async with _serve(_drip_body) as seen:
        client = make_client(kis.make_config(rest_url=seen.url, timeout=TIMEOUT, max_retries=3))
        await client.token()
        error, elapsed = await _timed(
            client.place_order(OrderRequest("005930", Side.BUY, 1, price=70_000))
        )
    assert isinstance(error, BrokerTimeoutError), repr(error)
    assert error.request_sent is True
    assert abs(elapsed - TIMEOUT) <= SLACK, elapsed
    assert seen.paths.count("/uapi/domestic-stock/v1/trading/order-cash") == 1


async def _big_declared(seen: _Server, writer: asyncio.StreamWriter) -> None:
    """50 MB announced in content-length, then sent as fast as the client reads."""
    await _send_big(seen, writer, _head(content_length=str(50 * 1024 * 1024)))


async def _big_chunked(seen: _Server, writer: asyncio.StreamWriter) -> None:
    """50 MB without a length (chunked), sent as fast as the client reads."""
    await _send_big(seen, writer, _head(transfer_encoding="chunked"), chunked=True)


async def _send_big(
    seen: _Server, writer: asyncio.StreamWriter, head: bytes, *, chunked: bool = False
) -> None:
    writer.write(head)
    block = b"[" + b"0," * (32 * 1024 - 1)
    for _ in range(50 * 1024 * 1024 // len(block)):
        writer.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
        await writer.drain()
        seen.written += len(block)


@pytest.mark.parametrize("answer", [_big_declared, _big_chunked], ids=["declared", "chunked"])
async def test_body_over_the_cap_is_abandoned(make_client: Any, kis: Any, answer: Any) -> None:
    """A 50 MB body against a 1 MiB cap: ResponseTooLargeError, with the server able to push
    only a fraction of it and the client's allocations bounded near the cap."""
    cap = 1024 * 1024
    async with _serve(answer) as seen:
        client = make_client(
            kis.make_config(rest_url=seen.url, max_response_bytes=cap, max_retries=0)
        )
        await client.token()
        tracemalloc.start()
        try:
            error, _ = await _timed(client.get_price("005930"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        await asyncio.sleep(0.2)  # let the server notice the closed connection
    assert isinstance(error, ResponseTooLargeError), repr(error)
    assert "1048576-byte cap" in str(error)
    assert peak < 4 * cap, peak
    # socket buffers hold a few MB at most; the 50 MB were never pulled through
    assert seen.written < 20 * 1024 * 1024, seen.written


async def test_body_at_the_cap_is_read(make_client: Any, kis: Any) -> None:
    """A body of exactly the cap is still read and decoded."""

    async def exact(seen: _Server, writer: asyncio.StreamWriter) -> None:
        body = json.dumps({"rt_cd": "0", "msg_cd": "X", "msg1": "", "output": {"stck_prpr": "5"}})
        padded = body.encode() + b" " * (4096 - len(body))
        writer.write(_head(content_length=str(len(padded))) + padded)
        await writer.drain()

    async with _serve(exact) as seen:
        client = make_client(kis.make_config(rest_url=seen.url, max_response_bytes=4096))
        snapshot = await client.get_price("005930")
    assert snapshot.price == 5


async def test_progress_tells_connecting_from_sent() -> None:
    """Cut off while connecting: not sent; after the request headers started: sent; no
    trace at all (a pooled wait or a mock transport): counted as possibly sent."""
    progress = _Progress()
    assert progress.request_sent is True
    await progress("connection.connect_tcp.started", {})
    assert progress.request_sent is False
    await progress("connection.connect_tcp.complete", {})
    assert progress.request_sent is False
    await progress("http11.send_request_headers.started", {})
    assert progress.request_sent is True


async def test_body_nested_past_the_stack_is_a_typed_error(
    client: Any, router: Any, kis: Any
) -> None:
    """A JSON body nested deeper than the parser's stack is "not JSON", a typed error."""
    body = b"[" * 200_000 + b"]" * 200_000
    router.get("/uapi/domestic-stock/v1/quotations/inquire-price").respond(500, content=body)
    with pytest.raises(ServerError, match="not JSON"):
        await client.get_price("005930")
