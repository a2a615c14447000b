"""Session recordings: every REST exchange and WebSocket frame, masked, as gzip JSON lines.

A :class:`SessionRecorder` is a traffic sink (:func:`kis_async.traffic.add_sink`): it receives
the events the masked traffic log is made of, from the same call sites (``Transport.send``
for REST, the WebSocket session for frames), already masked by
:func:`kis_async.traffic.mask`, and writes each as one JSON line. Nothing else is captured.

What a recording holds:

- line 1, a header: ``{"format": "kis_async.recording", "version": 1, "started": ISO time}``;
- then one line per event: ``{"t": seconds since the start, "event": name, ...fields}``;
  events are ``rest.request``/``rest.response`` (method, path, tr_id, masked headers, query
  and JSON body), ``ws.send.*``/``ws.recv.*`` control messages (subscribe, ack, PINGPONG,
  masked) and ``ws.recv.data`` data frames (tr_id, encrypted, records, payload).

Never in a recording: the app secret, access tokens, hashkeys, the AES key and iv of
execution notices (all ``********``), the app key and approval key beyond their first
characters, account numbers (masked as everywhere in the SDK's logs), the HTS id of a notice
registration. Execution notices are AES-encrypted on the wire and carry the account: their
payload is recorded as its length only (``"<N chars>"``), never decrypted, so a recording
cannot leak the account through them; the order side of a session is in the REST events.

A recorder made by ``broker.record(path)`` records that broker only (its REST transport and
WebSocket session tag their events with its :class:`~kis_async.config.KISConfig`); a
``SessionRecorder(path)`` made directly records every broker in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from kis_async import traffic

__all__ = ["FORMAT", "VERSION", "RecordingError", "SessionRecorder", "read_recording"]

logger = logging.getLogger("kis_async")

#: The ``format`` field of a recording's header line.
FORMAT: Final = "kis_async.recording"
#: The recording format's version.
VERSION: Final = 1
_FLUSH_EVERY: Final = 0.25


class RecordingError(ValueError):
    """A file is not a kis_async session recording (or is a newer version of one)."""


class SessionRecorder:
    """Records the SDK's masked traffic to a gzip JSON-lines file while it runs.

    Example::

        async with broker.record("session.jsonl.gz"):
            async for quote in broker.quotes(["005930"]):
                ...

    Lines are buffered in memory and written by a background task (in a worker thread) every
    quarter second and on :meth:`aclose`; the file is complete once :meth:`aclose` returns.

    Args:
        path: the file to write (created or replaced); ``.gz`` is conventional.
        source: record only the traffic tagged with this source (a broker's config, as
            ``broker.record`` passes); None records every broker in the process.
    """

    def __init__(self, path: str | os.PathLike[str], *, source: object = None) -> None:
        self.path = Path(path)
        self._source = source
        self.events = 0
        self._lines: list[str] = []
        self._file: io.TextIOWrapper | None = None
        self._remove_sink: Any = None
        self._flusher: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._started = 0.0
        self._state = "new"

    def __repr__(self) -> str:
        return f"SessionRecorder({str(self.path)!r}, {self._state}, events={self.events})"

    async def start(self) -> None:
        """Open the file and start recording.

        Raises:
            RuntimeError: started before.
            OSError: the file cannot be created.
        """
        if self._state != "new":
            raise RuntimeError("a SessionRecorder records once; create a new one")
        self._state = "starting"
        self._file = await asyncio.to_thread(_open_for_writing, self.path)
        self._started = time.monotonic()
        header = {"format": FORMAT, "version": VERSION, "started": datetime.now(UTC).isoformat()}
        self._lines.append(json.dumps(header))
        self._remove_sink = traffic.add_sink(self._sink, source=self._source)
        self._flusher = asyncio.get_running_loop().create_task(
            self._flush_loop(), name="kis_async-recorder"
        )
        self._state = "recording"

    async def aclose(self) -> None:
        """Stop recording, write what is buffered and close the file. Idempotent."""
        if self._state in ("new", "closed"):
            self._state = "closed"
            return
        self._state = "closed"
        if self._remove_sink is not None:
            self._remove_sink()
        if self._flusher is not None:
            # Not cancelled: a write in its worker thread would go on while the file closes.
            self._stop.set()
            with contextlib.suppress(Exception):
                await self._flusher
        file, self._file = self._file, None
        if file is not None:
            lines, self._lines = self._lines, []
            await asyncio.to_thread(_write_and_close, file, lines)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _sink(self, event: str, fields: Mapping[str, Any]) -> None:
        line = {"t": round(time.monotonic() - self._started, 6), "event": event, **fields}
        self._lines.append(json.dumps(line, ensure_ascii=False, default=str))
        self.events += 1

    async def _flush_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), _FLUSH_EVERY)
            file = self._file
            if self._lines and file is not None:
                lines, self._lines = self._lines, []
                try:
                    await asyncio.to_thread(_write, file, lines)
                except OSError:
                    logger.warning("session recording: writing %s failed", self.path, exc_info=True)
                    return


def _open_for_writing(path: Path) -> io.TextIOWrapper:
    return io.TextIOWrapper(gzip.open(path, "wb"), encoding="utf-8", newline="\n")


def _write(file: io.TextIOWrapper, lines: list[str]) -> None:
    file.write("".join(line + "\n" for line in lines))


def _write_and_close(file: io.TextIOWrapper, lines: list[str]) -> None:
    try:
        _write(file, lines)
    finally:
        file.close()


def read_recording(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The events of a recording, in order (the header line is checked, not returned).

    Blocking file I/O: call it at start-up or from a worker thread.

    Raises:
        RecordingError: not a gzip JSON-lines recording of a version this SDK reads.
        OSError: the file cannot be read.
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8") as file:
            first = file.readline()
            try:
                header = json.loads(first) if first else None
            except ValueError:
                header = None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise RecordingError(f"{os.fspath(path)!r} is not a kis_async session recording")
            if header.get("version") != VERSION:
                raise RecordingError(
                    f"{os.fspath(path)!r} is recording version {header.get('version')!r}; "
                    f"this SDK reads version {VERSION}"
                )
            for number, line in enumerate(file, start=2):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError as exc:
                    raise RecordingError(f"{os.fspath(path)!r} line {number} is not JSON") from exc
                if isinstance(event, dict):
                    yield event
    except (gzip.BadGzipFile, EOFError) as exc:
        raise RecordingError(f"{os.fspath(path)!r} is not a complete gzip file") from exc
