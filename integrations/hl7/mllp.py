"""MLLP, the Minimal Lower Layer Protocol: HL7 messages framed as 0x0B <message> 0x1C 0x0D.

`FrameDecoder` turns whatever TCP hands us (half a frame, three frames, garbage between
frames) into whole messages. `MLLPServer` serves many keep-alive connections, one message
at a time per connection so a sender's order is the order we apply. `MLLPClient` sends a
frame and waits for the acknowledgement frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("bedside.hl7.mllp")

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
READ_CHUNK = 64 * 1024


def frame(payload: bytes) -> bytes:
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


class FrameTooLarge(Exception):
    pass


class FrameDecoder:
    """Incremental MLLP decoder.

    Bytes outside a frame (keep-alive newlines, noise) are dropped. A start block inside
    an open frame means the sender gave up on the previous frame: the truncated part is
    dropped and the new frame starts. The trailing 0x0D after 0x1C is optional, since some
    senders omit it; a stray 0x0D outside a frame is dropped as noise anyway.
    """

    def __init__(self, max_frame_bytes: int = 1024 * 1024) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._in_frame = False
        self.truncated = 0  # frames abandoned by a new start block, for the log

    @property
    def pending(self) -> bool:
        """True while a frame has started but not ended (a close now truncates it)."""
        return self._in_frame

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        view = memoryview(data)
        position = 0
        while position < len(view):
            if not self._in_frame:
                start = data.find(START_BLOCK, position)
                if start < 0:
                    return frames  # all noise
                self._in_frame = True
                self._buffer.clear()
                position = start + 1
                continue
            end = data.find(END_BLOCK, position)
            restart = data.find(START_BLOCK, position)
            if restart >= 0 and (end < 0 or restart < end):
                self.truncated += 1
                self._buffer.clear()
                position = restart + 1
                continue
            chunk_end = end if end >= 0 else len(data)
            self._buffer += view[position:chunk_end]
            if len(self._buffer) > self.max_frame_bytes:
                self._buffer.clear()
                self._in_frame = False
                raise FrameTooLarge(f"frame exceeds {self.max_frame_bytes} bytes")
            if end < 0:
                return frames
            frames.append(bytes(self._buffer))
            self._buffer.clear()
            self._in_frame = False
            position = end + 1
            if position < len(data) and data[position : position + 1] == CARRIAGE_RETURN:
                position += 1
        return frames


# One reply frame, several (enhanced mode: the accept ack, then the application ack), or none.
FrameHandler = Callable[[bytes], Awaitable[bytes | list[bytes] | None]]


class MLLPServer:
    """An asyncio MLLP listener; `handler(frame) -> reply frame payload` for each message."""

    def __init__(
        self,
        handler: FrameHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        max_frame_bytes: int = 1024 * 1024,
        idle_timeout: float = 600.0,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_frame_bytes = max_frame_bytes
        self.idle_timeout = idle_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> MLLPServer:
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, self.port, limit=READ_CHUNK
        )
        # Port 0 asks the kernel for a free port; report the real one.
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("mllp listening", extra={"fields": {"host": self.host, "port": self.port}})
        return self

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> MLLPServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        decoder = FrameDecoder(self.max_frame_bytes)
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(READ_CHUNK), self.idle_timeout)
                except TimeoutError:
                    log.info("mllp idle connection closed", extra={"fields": {"peer": str(peer)}})
                    break
                if not data:
                    if decoder.pending:
                        log.warning(
                            "mllp connection closed inside a frame; partial message dropped",
                            extra={"fields": {"peer": str(peer)}},
                        )
                    break
                try:
                    frames = decoder.feed(data)
                except FrameTooLarge as exc:
                    log.warning(
                        "mllp frame too large; connection closed",
                        extra={"fields": {"peer": str(peer), "error": str(exc)}},
                    )
                    break
                for payload in frames:
                    reply = await self.handler(payload)
                    replies = [reply] if isinstance(reply, bytes) else reply or []
                    for one in replies:
                        writer.write(frame(one))
                    if replies:
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info(
                "mllp connection lost",
                extra={"fields": {"peer": str(peer), "error": type(exc).__name__}},
            )
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class MLLPClient:
    """Sends frames over one kept-alive connection and reads each acknowledgement."""

    def __init__(
        self, host: str, port: int, *, timeout: float = 10.0, max_frame_bytes: int = 1024 * 1024
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._decoder = FrameDecoder(max_frame_bytes)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ready: list[bytes] = []

    async def connect(self) -> None:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
            self._decoder = FrameDecoder(self._decoder.max_frame_bytes)
            self._ready = []

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests use it to send broken frames)."""
        await self.connect()
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    async def read_frame(self) -> bytes:
        assert self._reader is not None
        while not self._ready:
            data = await asyncio.wait_for(self._reader.read(READ_CHUNK), self.timeout)
            if not data:
                await self.close()
                raise ConnectionError("connection closed before the acknowledgement arrived")
            self._ready.extend(self._decoder.feed(data))
        return self._ready.pop(0)

    async def send(self, payload: bytes) -> bytes:
        """Send one message and return the reply frame's payload.

        A failure closes the connection, so the next call starts on a fresh one and never
        reads a stale acknowledgement meant for an earlier message.
        """
        try:
            await self.send_raw(frame(payload))
            return await self.read_frame()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def __aenter__(self) -> MLLPClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
