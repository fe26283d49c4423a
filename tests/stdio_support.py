"""Helpers for the stdio integration tests: checked tool calls through the SDK's `Client`, and a raw JSON-RPC session
over the server's own pipes (for the tests that must see every byte, or kill the process mid-call).

Every test here drives the real server (`python -m pixverse_mcp`) as a subprocess, talking real HTTP to a sandbox.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import anyio
import anyio.abc
from mcp import Client
from mcp_types import CallToolResult, TextContent

from pixverse_mcp.sandbox import RunningSandbox
from tests.result_schemas import check_raw

# MCP results must stay small: hosts put them in the model's context. Every result in these tests is checked.
MAX_RESULT_BYTES = 1_000_000
# Read timeout for every SDK client in these tests: what independent hosts use (60 s); no call should get near it.
HOST_READ_TIMEOUT_SECONDS = 60.0
# A generous bound for protocol events that must happen "soon" (a response, a notification, an exit).
PROTOCOL_BOUND_SECONDS = 30.0


def assert_small(result: CallToolResult) -> CallToolResult:
    """Fail unless the whole result serialises to less than 1 MB; return it."""
    size = len(result.model_dump_json().encode())
    assert size < MAX_RESULT_BYTES, f"tool result is {size} bytes"
    return result


async def call(client: Client, name: str, arguments: dict[str, Any], **options: Any) -> CallToolResult:
    """`client.call_tool`, with the result-size check every test result gets."""
    return assert_small(await client.call_tool(name, arguments, **options))


def text_of(result: CallToolResult) -> str:
    """The text content of a result, joined."""
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def structured(result: CallToolResult) -> dict[str, Any]:
    """The structured content (asserted present)."""
    content = result.structured_content
    assert isinstance(content, dict), text_of(result)
    return content


def assert_no_traceback(message: str) -> None:
    """An agent-facing message must never carry a Python traceback."""
    assert "Traceback" not in message, message
    assert 'File "' not in message, message


def strictly_increasing(values: list[float]) -> bool:
    """Whether each value is greater than the one before."""
    return all(later > earlier for earlier, later in pairwise(values))


def longest_gap(moments: list[float]) -> float:
    """The longest time between consecutive moments."""
    return max(later - earlier for earlier, later in pairwise(moments))


def creates(sandbox: RunningSandbox) -> int:
    """How many create requests (POSTs) reached the sandbox."""
    return sandbox.state.stats()["creates"]


class RawSession:
    """A JSON-RPC session spoken by hand: every message received is kept (`messages`), requests are matched to
    their responses, and every tool result is checked against its published outputSchema.

    A transport subclass delivers what arrives to `_take` and calls `_ended` when the peer is gone, and implements
    `send`. `RawStdioServer` speaks over a subprocess's pipes; `tests.in_process.raw_in_process` over memory streams
    to the server in this process.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._arrived = anyio.Event()
        self._ended_event = anyio.Event()
        self._next_id = 0
        self._tool_calls: dict[int, str] = {}

    async def send(self, message: dict[str, Any]) -> None:
        """Write one JSON-RPC message."""
        raise NotImplementedError

    def _take(self, message: object) -> None:
        if isinstance(message, dict):
            self.messages.append(message)
            self._arrived.set()
            self._arrived = anyio.Event()

    def _ended(self) -> None:
        self._ended_event.set()

    async def send_request(self, method: str, params: dict[str, Any] | None = None) -> int:
        """Send a request; return its id (see `response`)."""
        self._next_id += 1
        if method == "tools/call" and params is not None:
            self._tool_calls[self._next_id] = str(params.get("name"))
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return self._next_id

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)

    async def wait_for(self, description: str, predicate: Any) -> dict[str, Any]:
        """The first message received (so far or later) for which `predicate(message)` is true."""
        with anyio.fail_after(PROTOCOL_BOUND_SECONDS):
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                if self._ended_event.is_set():
                    raise AssertionError(f"the server ended before {description}")
                arrived = self._arrived
                await arrived.wait()

    async def response(self, request_id: int) -> dict[str, Any]:
        """The response to request `request_id` (a tool result checked against its published outputSchema)."""
        response = await self.wait_for(
            f"the response to request {request_id}",
            lambda message: message.get("id") == request_id and ("result" in message or "error" in message),
        )
        tool = self._tool_calls.get(request_id)
        if tool is not None and isinstance(response.get("result"), dict):
            check_raw(tool, response["result"])
        return response

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its response."""
        return await self.response(await self.send_request(method, params))

    async def initialize(
        self, protocol_version: str = "2025-11-25", capabilities: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The handshake: `initialize` (declaring `capabilities`), then `notifications/initialized`."""
        response = await self.request(
            "initialize",
            {
                "protocolVersion": protocol_version,
                "capabilities": capabilities or {},
                "clientInfo": {"name": "pixverse-mcp-raw-test", "version": "0"},
            },
        )
        assert "result" in response, response
        await self.notify("notifications/initialized")
        return response

    def progress(self, token: str | int) -> list[dict[str, Any]]:
        """The params of every progress notification received for `token`."""
        return [
            message["params"]
            for message in self.messages
            if message.get("method") == "notifications/progress" and message["params"].get("progressToken") == token
        ]


class RawStdioServer(RawSession):
    """`python -m pixverse_mcp` on raw pipes: JSON-RPC by hand, every stdout line kept verbatim.

    Background tasks read stdout (each line parsed as it arrives) and drain stderr (a DEBUG server logs a lot; an
    undrained pipe would block it).
    """

    def __init__(self, process: anyio.abc.Process) -> None:
        super().__init__()
        self.process = process
        self.stdout_lines: list[bytes] = []
        self.stderr = bytearray()
        self._open_readers = 2

    @classmethod
    @asynccontextmanager
    async def start(cls, env: dict[str, str]) -> AsyncIterator[RawStdioServer]:
        """Start the server; on exit, close stdin, wait for it a little, then kill it if it is still there."""
        process = await anyio.open_process([sys.executable, "-m", "pixverse_mcp"], env=env)
        server = cls(process)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(server._read_stdout)
                group.start_soon(server._read_stderr)
                try:
                    yield server
                finally:
                    with anyio.CancelScope(shield=True):
                        await server.close_stdin()
                        with anyio.move_on_after(10):
                            await process.wait()
                        if process.returncode is None:
                            process.kill()
                            await process.wait()
                        # Both pipes end with the process; the readers then return on their own.
                        with anyio.move_on_after(5):
                            await server._ended_event.wait()
                        group.cancel_scope.cancel()
        finally:
            await process.aclose()

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        try:
            async for chunk in self.process.stdout:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._take_line(line)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        if pending:
            self._take_line(pending)
        self._reader_done()

    def _take_line(self, line: bytes) -> None:
        self.stdout_lines.append(line)
        try:
            message = json.loads(line)
        except ValueError:
            return  # kept in stdout_lines; the hygiene test reports it
        self._take(message)

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        try:
            async for chunk in self.process.stderr:
                self.stderr.extend(chunk)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        self._reader_done()

    def _reader_done(self) -> None:
        self._open_readers -= 1
        if self._open_readers == 0:
            self._ended()

    async def send(self, message: dict[str, Any]) -> None:
        """Write one JSON-RPC message as one line."""
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")

    async def close_stdin(self) -> None:
        """End the session from the client side (the server should then exit)."""
        if self.process.stdin is not None:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                await self.process.stdin.aclose()


@dataclass(frozen=True)
class ProgressEvent:
    """One progress notification as the client heard it, with when (monotonic clock) it arrived."""

    at: float
    progress: float
    total: float | None
    message: str | None


@dataclass
class ProgressRecorder:
    """A `progress_callback` that keeps every notification; `first` is set on the first one."""

    events: list[ProgressEvent] = field(default_factory=list)
    first: anyio.Event = field(default_factory=anyio.Event)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append(ProgressEvent(anyio.current_time(), progress, total, message))
        self.first.set()

    @property
    def messages(self) -> list[str]:
        """The messages, in order (None as an empty string)."""
        return [event.message or "" for event in self.events]
