"""Serve an `MCPServer` over stdio, letting a client that probed with `server/discover` fall back to `initialize`.

Why this exists: mcp 2.3 fixes a stdio connection's protocol era from the client's first request, once
(`serve_dual_era_loop`). A client that probes with `server/discover` (2026-07-28) on a short timeout, gives up while
we are still starting, and falls back to the `initialize` handshake on the same pipe, is refused with -32022 and fails
to connect. The TypeScript SDK's client does exactly that when it probes in place, and the spec's stdio
backward-compatibility flow allows it.

What it does: the "probe phase" of the TypeScript SDK server's `serveStdio` (`@modelcontextprotocol/server`,
`src/server/serveStdio.ts`). While every request so far has been an enveloped `server/discover`, the era is not final:
an `initialize` ends the modern serving loop (once the probes' answers are written, waiting at most
`PROBE_ANSWER_WAIT_SECONDS`), and a fresh `serve_dual_era_loop` serves the rest of the connection starting from that
`initialize`, in the handshake era. Any other request makes the era final, and from then on the SDK's rules apply
unchanged: an `initialize` on a confirmed modern connection still gets -32022, as the spec requires.

It relies on the private `MCPServer._lowlevel_server` (mcp 2.3 has no public accessor) and on how
`serve_dual_era_loop` treats its streams (it closes them, and cancels in-flight handlers at EOF);
tests/e2e/test_stdio_handshake.py guards both. Drop this module once the Python SDK has a probe phase of its own.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from mcp.server import MCPServer
from mcp.server.runner import serve_dual_era_loop
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import (
    PROTOCOL_VERSION_META_KEY,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)

__all__ = ["PROBE_ANSWER_WAIT_SECONDS", "serve_stdio"]

logger = logging.getLogger(__name__)

# After a fallback `initialize`: how long the probes' answers may take to be written before the modern loop ends.
# The loop cancels what is still in flight when it ends, and a request cancelled before it ran is never answered.
# A discover answer takes milliseconds once the server runs; the TypeScript SDK waits up to 3 s.
PROBE_ANSWER_WAIT_SECONDS = 2.0

# An item read from the connection, with the sender's context the SDK reads from `last_context`.
_Held = tuple[contextvars.Context | None, SessionMessage]


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve `server` on stdin/stdout until stdin closes: `server.run_stdio_async()` plus the probe phase.

    The server's lifespan is entered once for the whole connection, also when a fallback starts a second loop.
    """
    lowlevel = server._lowlevel_server  # private, see the module docstring
    options = lowlevel.create_initialization_options()
    async with stdio_server() as (read_stream, write_stream):
        try:
            async with lowlevel.lifespan(lowlevel) as lifespan_state:

                async def serve_loop(opening: _Held | None) -> _Held | None:
                    """One serving loop; returns the `initialize` it ended at if the client fell back, else None."""
                    writer = _LentWriter(write_stream)
                    reader = _ProbePhaseReader(read_stream, writer, opening)
                    await serve_dual_era_loop(
                        lowlevel, reader, writer, lifespan_state=lifespan_state, init_options=options
                    )
                    return reader.fallback

                fallback = await serve_loop(None)
                if fallback is not None:
                    logger.info("the client probed with server/discover, then sent initialize: serving the handshake")
                    # This loop starts from an `initialize`, which makes its era final: it cannot fall back again.
                    await serve_loop(fallback)
        finally:
            # The loops close only the wrappers they were lent; the connection's streams are closed here.
            await write_stream.aclose()
            await read_stream.aclose()


def _is_probe(request: JSONRPCRequest) -> bool:
    """An enveloped `server/discover`: it opens a modern connection (the SDK's rule) without committing the client."""
    meta = (request.params or {}).get("_meta")
    return request.method == "server/discover" and isinstance(meta, Mapping) and PROTOCOL_VERSION_META_KEY in meta


class _LentWriter:
    """The connection's write stream, lent to one serving loop: closing it leaves the connection open.

    It also notes which probes have been answered, so a fallback can let those answers out first.
    """

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self.owed: set[RequestId] = set()  # ids of the probes not answered yet
        self._answer_written = anyio.Event()

    async def send(self, item: SessionMessage, /) -> None:
        await self._sink.send(item)
        message = item.message
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id in self.owed:
            self.owed.discard(message.id)
            self._answer_written.set()

    async def all_answered(self) -> None:
        """Return once every probe still owed an answer has one."""
        while self.owed:
            self._answer_written = anyio.Event()
            await self._answer_written.wait()

    async def aclose(self) -> None:
        pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        pass


class _ProbePhaseReader:
    """The connection's read stream as one serving loop sees it, starting with `opening` if given.

    While every request so far is an enveloped `server/discover`, an `initialize` ends this stream (EOF, so the
    modern loop ends) and is kept in `fallback` for the next loop. Closing it leaves the connection open.
    """

    def __init__(self, source: Any, writer: _LentWriter, opening: _Held | None) -> None:
        self._source = source
        self._writer = writer
        self._opening = opening
        self._phase: Literal["opening", "probe", "final"] = "opening"
        self.fallback: _Held | None = None
        # The SDK reads each item's sender context from here (`getattr(stream, "last_context", None)`).
        self.last_context: contextvars.Context | None = None

    async def receive(self) -> SessionMessage | Exception:
        if self.fallback is not None:
            raise anyio.EndOfStream
        if self._opening is not None:
            (context, item), self._opening = self._opening, None
        else:
            item = await self._source.receive()  # raises EndOfStream when stdin closes
            context = getattr(self._source, "last_context", None)
        if self._phase != "final" and isinstance(item, SessionMessage):
            message = item.message
            if isinstance(message, JSONRPCRequest):
                if _is_probe(message):
                    self._phase = "probe"
                    self._writer.owed.add(message.id)
                elif message.method == "initialize" and self._phase == "probe":
                    await self._fall_back((context, item))
                    raise anyio.EndOfStream
                else:
                    self._phase = "final"
                    self._writer.owed.clear()
            elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
                # A cancelled request may go unanswered (spec), so a fallback does not wait for it.
                self._writer.owed.discard((message.params or {}).get("requestId"))
        self.last_context = context
        return item

    async def _fall_back(self, initialize: _Held) -> None:
        """Keep the `initialize` for the next loop, once the probes' answers are out (or the wait is over)."""
        self.fallback = initialize
        with anyio.move_on_after(PROBE_ANSWER_WAIT_SECONDS) as wait:
            await self._writer.all_answered()
        if wait.cancelled_caught:
            logger.warning(
                "server/discover requests %s not answered within %.0f s of the fallback initialize; going on",
                sorted(map(str, self._writer.owed)),
                PROBE_ANSWER_WAIT_SECONDS,
            )

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        pass
