"""The stdio handshake when a client probes with `server/discover`, then falls back to `initialize` (`serve_stdio`).

A client on a short probe timeout (the TypeScript SDK probing in place, Copilot CLI) sends `server/discover`, gives up
while the server is still starting, and sends `initialize` on the same pipe. The SDK's own stdio loop refuses that
`initialize` with -32022, because the first request made the connection modern. `serve_stdio` serves it, like the
TypeScript SDK's `serveStdio`, as long as every earlier request was a probe. Otherwise nothing changes.

Each test starts a stand-in (an `MCPServer` with one tool, served by `serve_stdio`; the real CLI is wired to it
separately) and speaks raw JSON-RPC over its pipes, checking every message it writes, in order. The tests also guard
what `serve_stdio` borrows from the SDK's internals (`MCPServer._lowlevel_server`, how `serve_dual_era_loop` treats
its streams): an SDK upgrade that breaks either fails them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.stdio_support import PROTOCOL_BOUND_SECONDS

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
STAND_IN = '''
import anyio
from mcp.server import MCPServer

from pixverse_mcp.stdio import serve_stdio

server = MCPServer("stand-in")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


anyio.run(serve_stdio, server)
'''

CLIENT_INFO = {"name": "handshake-test", "version": "0"}
# The 2026-07-28 per-request envelope, as the TypeScript SDK's probe carries it.
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
    "io.modelcontextprotocol/clientCapabilities": {},
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT_INFO},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def probe(number: int) -> dict[str, Any]:
    """The TypeScript SDK's probe (`server-discover-probe-N`)."""
    request_id = f"server-discover-probe-{number}"
    return {"jsonrpc": "2.0", "id": request_id, "method": "server/discover", "params": {"_meta": ENVELOPE}}


def tools_list(request_id: int, *, modern: bool) -> dict[str, Any]:
    """`tools/list`, with the 2026-07-28 envelope or (handshake era) without."""
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/list", "params": {"_meta": ENVELOPE} if modern else {}}


@dataclass
class StandIn:
    """The stand-in on raw pipes: `next()` returns what it wrote to stdout, one message at a time, in order."""

    process: anyio.abc.Process
    written: list[Any] = field(default_factory=list)  # every stdout line, parsed (or the raw line if not JSON)
    stderr: bytearray = field(default_factory=bytearray)
    taken: int = 0
    stdout_closed: anyio.Event = field(default_factory=anyio.Event)
    _arrived: anyio.Event = field(default_factory=anyio.Event)

    async def write(self, *messages: dict[str, Any]) -> None:
        """Write the messages in one write, one line each (so the server may read them all at once)."""
        assert self.process.stdin is not None
        await self.process.stdin.send(b"".join(json.dumps(message).encode() + b"\n" for message in messages))

    async def next(self) -> dict[str, Any]:
        """The next message the server wrote (waiting for it)."""
        with anyio.fail_after(PROTOCOL_BOUND_SECONDS):
            while self.taken == len(self.written):
                if self.stdout_closed.is_set():
                    raise AssertionError(f"the server closed stdout; stderr:\n{self.stderr.decode()[-3000:]}")
                await self._arrived.wait()
        message = self.written[self.taken]
        self.taken += 1
        assert isinstance(message, dict), f"not a JSON-RPC message on stdout: {message!r}"
        return message

    async def finish(self) -> None:
        """Close stdin: the server exits cleanly, having written nothing more and logged no traceback."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with anyio.fail_after(PROTOCOL_BOUND_SECONDS):
            await self.process.wait()
            await self.stdout_closed.wait()
        assert self.process.returncode == 0, self.stderr.decode()[-3000:]
        assert "Traceback" not in self.stderr.decode(), self.stderr.decode()[-3000:]
        assert self.written[self.taken :] == []

    async def read_stdout(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        with suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            async for chunk in self.process.stdout:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._take(line)
        if pending:
            self._take(pending)
        self.stdout_closed.set()
        self._arrived.set()

    def _take(self, line: bytes) -> None:
        try:
            self.written.append(json.loads(line))
        except ValueError:
            self.written.append(line)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def read_stderr(self) -> None:
        assert self.process.stderr is not None
        with suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            async for chunk in self.process.stderr:
                self.stderr.extend(chunk)


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    script = tmp_path / "server_script.py"
    script.write_text(STAND_IN)
    return script


@asynccontextmanager
async def started(script: Path) -> AsyncIterator[StandIn]:
    """Start the stand-in; whatever happens, it is killed (if still running) and reaped on the way out."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    process = await anyio.open_process([sys.executable, str(script)], env=env)
    try:
        server = StandIn(process)
        async with anyio.create_task_group() as readers:
            readers.start_soon(server.read_stdout)
            readers.start_soon(server.read_stderr)
            try:
                yield server
            finally:
                readers.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                with suppress(ProcessLookupError):
                    process.kill()
            await process.aclose()


def assert_discover_result(message: dict[str, Any], request_id: str) -> None:
    assert message["id"] == request_id, message
    assert message["result"]["supportedVersions"] == ["2026-07-28"], message


def assert_initialize_result(message: dict[str, Any]) -> None:
    assert message["id"] == 0, message
    assert "result" in message, message
    assert message["result"]["protocolVersion"] == "2025-11-25"
    assert message["result"]["serverInfo"]["name"] == "stand-in"


def assert_tools_result(message: dict[str, Any], request_id: int) -> None:
    assert message["id"] == request_id, message
    assert "result" in message, message
    assert [tool["name"] for tool in message["result"]["tools"]] == ["echo"]


async def test_discover_and_initialize_written_together_connect_on_the_handshake(stand_in: Path) -> None:
    async with started(stand_in) as server:
        await server.write(probe(1), INITIALIZE)
        assert_discover_result(await server.next(), "server-discover-probe-1")
        assert_initialize_result(await server.next())
        await server.write(INITIALIZED, tools_list(1, modern=False))
        assert_tools_result(await server.next(), 1)
        await server.finish()


async def test_initialize_a_second_after_the_discover_answer_connects_on_the_handshake(stand_in: Path) -> None:
    async with started(stand_in) as server:
        await server.write(probe(1))
        assert_discover_result(await server.next(), "server-discover-probe-1")
        await anyio.sleep(1.0)  # the client's probe timer ran out before the answer came
        await server.write(INITIALIZE)
        assert_initialize_result(await server.next())
        await server.write(INITIALIZED, tools_list(1, modern=False))
        assert_tools_result(await server.next(), 1)
        await server.finish()


async def test_after_a_modern_request_initialize_is_refused_as_before(stand_in: Path) -> None:
    async with started(stand_in) as server:
        await server.write(probe(1))
        assert_discover_result(await server.next(), "server-discover-probe-1")
        await server.write(tools_list(1, modern=True))
        assert_tools_result(await server.next(), 1)
        await server.write(INITIALIZE)
        refused = await server.next()
        assert refused["id"] == 0, refused
        assert refused["error"]["code"] == -32022, refused
        assert refused["error"]["data"] == {"supported": ["2026-07-28"], "requested": "2025-11-25"}
        await server.write(tools_list(2, modern=True))  # the connection stays modern and working
        assert_tools_result(await server.next(), 2)
        await server.finish()


async def test_discover_alone_opens_a_modern_connection(stand_in: Path) -> None:
    async with started(stand_in) as server:
        await server.write(probe(1))
        assert_discover_result(await server.next(), "server-discover-probe-1")
        await server.write(tools_list(1, modern=True))
        assert_tools_result(await server.next(), 1)
        await server.finish()


async def test_initialize_alone_opens_the_usual_handshake_session(stand_in: Path) -> None:
    async with started(stand_in) as server:
        await server.write(INITIALIZE)
        assert_initialize_result(await server.next())
        await server.write(INITIALIZED, tools_list(1, modern=False))
        assert_tools_result(await server.next(), 1)
        await server.write(probe(1))  # a handshake connection refuses enveloped requests, as the SDK does
        refused = await server.next()
        assert refused["id"] == "server-discover-probe-1", refused
        assert refused["error"]["code"] == -32600, refused
        await server.finish()


async def test_two_pipelined_discovers_are_both_answered_before_the_initialize_result(stand_in: Path) -> None:
    async with started(stand_in) as server:
        await server.write(probe(1), probe(2), INITIALIZE)
        first, second = await server.next(), await server.next()
        answers = {first["id"]: first, second["id"]: second}
        assert set(answers) == {"server-discover-probe-1", "server-discover-probe-2"}
        for request_id, answer in answers.items():
            assert_discover_result(answer, request_id)
        assert_initialize_result(await server.next())
        await server.write(INITIALIZED, tools_list(1, modern=False))
        assert_tools_result(await server.next(), 1)
        await server.finish()
