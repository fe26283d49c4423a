"""The API key never leaves: not in a log line (at any level), an error, a tool result or a progress message.

The end-to-end test runs the real server (`python -m pixverse_mcp`) at DEBUG over stdio with raw JSON-RPC, so every
byte it writes to stdout and stderr is captured, through success, failure, every kind of upstream fault, bad input
and the missing-key path, against a sandbox that accepts only a distinctive key. The terminal commands get the same
treatment. (The reprs of the client and the settings, and every error the client raises, are checked in process:
tests/unit/test_secrets.py.)
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import PIPE
from typing import Any

import anyio
import pytest
from anyio.abc import Process, TaskGroup

from pixverse_mcp.sandbox import RunningSandbox, SandboxState
from tests.conftest import server_env
from tests.unit.test_secrets import KEY, KEY_SECRET_PART, MALFORMED_KEYS, SECRET_SANDBOX, assert_no_key

pytestmark = pytest.mark.anyio

POLL_SCALE = "0.009"
PROTOCOL_VERSION = "2025-11-25"
REPLY_LIMIT_SECONDS = 30.0
# What the SDK answers when a tool raised something it did not expect: no use to an agent.
GENERIC_CRASH = re.compile(r"^Error executing tool \w+\s*$")
# The module's sandbox (`reset_sandbox` for each test): it accepts only the distinctive key.
SANDBOX = SECRET_SANDBOX


class RawSession:
    """The server as a subprocess spoken to in raw JSON-RPC over stdio; every byte of stdout and stderr is kept."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.messages: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._replies: dict[int, dict[str, Any]] = {}
        self._arrived: dict[int, anyio.Event] = {}
        self._closed = False

    async def pump_stdout(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        async for chunk in self.process.stdout:
            self.stdout += chunk
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    self._receive(json.loads(line))
        # The server is gone: nobody waits for an answer that cannot come.
        self._closed = True
        for arrived in self._arrived.values():
            arrived.set()

    async def pump_stderr(self) -> None:
        assert self.process.stderr is not None
        async for chunk in self.process.stderr:
            self.stderr += chunk

    def _receive(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if "method" not in message and isinstance(message.get("id"), int):
            self._replies[message["id"]] = message
            self._arrived[message["id"]].set()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send((json.dumps(message) + "\n").encode())

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = next(self._ids)
        self._arrived[request_id] = anyio.Event()
        if not self._closed:
            await self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
            with anyio.fail_after(REPLY_LIMIT_SECONDS):
                await self._arrived[request_id].wait()
        if request_id not in self._replies:
            tail = bytes(self.stderr[-600:]).decode("utf-8", "replace").replace(KEY_SECRET_PART, "<key>")
            raise AssertionError(f"the server exited instead of answering {method}; its stderr ends with:\n{tail}")
        return self._replies.pop(request_id)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self._send({"jsonrpc": "2.0", "method": method, "params": params or {}})

    async def initialize(self) -> None:
        reply = await self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "secrets-test", "version": "1"},
            },
        )
        assert "result" in reply, reply
        await self.notify("notifications/initialized")

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A tools/call with a progress token (so progress notifications are part of what is checked)."""
        reply = await self.request(
            "tools/call", {"name": name, "arguments": arguments, "_meta": {"progressToken": f"progress-{name}"}}
        )
        assert "result" in reply, reply
        result: dict[str, Any] = reply["result"]
        return result

    def output(self) -> bytes:
        return bytes(self.stdout) + b"\n" + bytes(self.stderr)


@asynccontextmanager
async def raw_server(env: dict[str, str]) -> AsyncIterator[RawSession]:
    """Start `python -m pixverse_mcp`; on exit close its stdin, let it finish, and collect everything it wrote."""
    process = await anyio.open_process(
        [sys.executable, "-m", "pixverse_mcp"], env=env, stdin=PIPE, stdout=PIPE, stderr=PIPE, start_new_session=True
    )
    session = RawSession(process)
    task_group: TaskGroup
    async with process, anyio.create_task_group() as task_group:
        task_group.start_soon(session.pump_stdout)
        task_group.start_soon(session.pump_stderr)
        try:
            yield session
        finally:
            assert process.stdin is not None
            await process.stdin.aclose()
            with anyio.move_on_after(10) as patience:
                await process.wait()
            if patience.cancelled_caught:
                process.kill()
                await process.wait()


def tool_text(result: dict[str, Any]) -> str:
    return "\n".join(block.get("text", "") for block in result.get("content", []))


async def exercise_everything(session: RawSession, state: SandboxState) -> None:
    """Success, failure, every kind of fault on both methods, bad input and lookups, in one session."""
    tools = await session.request("tools/list")
    assert {tool["name"] for tool in tools["result"]["tools"]} >= {"create_video", "get_video_status"}

    done = await session.call_tool(
        "generate_video_blocking", {"prompt": "secrets: a lighthouse at dusk", "save_to_disk": True}
    )
    assert done["structuredContent"]["status"] == "completed", tool_text(done)
    generation_id = done["structuredContent"]["generation_id"]

    started = await session.call_tool("create_video", {"prompt": "secrets: a kite over a beach"})
    waited = await session.call_tool(
        "get_video_status", {"generation_id": started["structuredContent"]["generation_id"], "wait_seconds": 10}
    )
    assert waited["structuredContent"]["status"] == "completed", tool_text(waited)

    failed = await session.call_tool("generate_video_blocking", {"prompt": "secrets: doomed [sandbox:fail]"})
    assert failed["isError"] is True

    for fault in ("unauthorized", "no_credits", "server_error", "gateway_502", "reset", "html_200", "rate_limited"):
        state.inject(fault, method="POST", count=1)
        await session.call_tool("create_video", {"prompt": f"secrets: create meets {fault}"})
        state.inject(fault, method="GET", count=1)
        await session.call_tool("get_video_status", {"generation_id": generation_id})
    for fault in ("accepted_500", "accepted_reset"):
        state.inject(fault, method="POST", count=1)
        unknown = await session.call_tool("create_video", {"prompt": f"secrets: create meets {fault}"})
        assert unknown["isError"] is True
    refused = await session.call_tool(
        "generate_video_blocking", {"prompt": "secrets: key refused mid-wait [sandbox:fault=unauthorized]"}
    )
    assert refused["isError"] is True

    for bad in (
        {"prompt": "secrets: bad", "bogus": True},
        {"prompt": "secrets: bad", "resolution": "4k"},
        {"prompt": "x" * 3000},
        {"prompt": "secrets: bad", "resolution": "1080p", "duration": 8},
    ):
        assert (await session.call_tool("create_video", bad))["isError"] is True
    for lookup in ({"generation_id": " "}, {"generation_id": "no-such-generation"}, {"generation_id": ""}):
        await session.call_tool("get_video_status", lookup)

    await session.call_tool("list_videos", {})
    resource = await session.request("resources/read", {"uri": f"pixverse://generations/{generation_id}"})
    assert "result" in resource, resource


async def test_a_full_debug_session_of_the_real_server_never_writes_the_key(
    reset_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = server_env(reset_sandbox, tmp_path, PIXVERSE_MCP_POLL_TIME_SCALE=POLL_SCALE, AIMLAPI_API_KEY=KEY)
    assert env["PIXVERSE_MCP_LOG_LEVEL"] == "DEBUG"

    async with raw_server(env) as session:
        await session.initialize()
        await exercise_everything(session, reset_sandbox.state)

    # The capture is real: DEBUG lines, request lines, progress notifications and results were all written.
    assert b" DEBUG " in session.stderr
    assert b"HTTP Request" in session.stderr
    assert any(message.get("method") == "notifications/progress" for message in session.messages)
    assert reset_sandbox.state.stats()["accepted"] >= 3
    assert_no_key(session.stdout, "the server's stdout")
    assert_no_key(session.stderr, "the server's stderr")


async def test_the_missing_key_path_explains_itself_and_writes_no_key(tmp_path: Path) -> None:
    env = server_env(None, tmp_path, PIXVERSE_MCP_POLL_TIME_SCALE=POLL_SCALE)
    assert "AIMLAPI_API_KEY" not in env

    async with raw_server(env) as session:
        await session.initialize()
        for tool, arguments in (
            ("create_video", {"prompt": "no key"}),
            ("generate_video_blocking", {"prompt": "no key"}),
            ("get_video_status", {"generation_id": "no-key"}),
        ):
            result = await session.call_tool(tool, arguments)
            assert result["isError"] is True
            assert "AIMLAPI_API_KEY" in tool_text(result)
        assert (await session.call_tool("list_videos", {}))["isError"] is False

    assert_no_key(session.output(), "the output of a server without a key")


async def test_the_terminal_commands_at_debug_never_write_the_key(
    reset_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = server_env(reset_sandbox, tmp_path, PIXVERSE_MCP_POLL_TIME_SCALE=POLL_SCALE, AIMLAPI_API_KEY=KEY)
    command = [sys.executable, "-m", "pixverse_mcp"]

    async def run(*args: str) -> tuple[int, bytes]:
        with anyio.fail_after(REPLY_LIMIT_SECONDS):
            completed = await anyio.run_process([*command, *args], env=env, check=False)
        return completed.returncode, completed.stdout + b"\n" + completed.stderr

    code, generated = await run(
        "generate", "secrets: a paper boat", "--out", str(tmp_path / "out"), "--log-level", "DEBUG"
    )
    assert code == 0, generated
    generation_id = next(iter(reset_sandbox.state.generations))
    reset_sandbox.state.inject("unauthorized", method="GET", count=1)
    refused_code, refused = await run("status", generation_id, "--log-level", "DEBUG")
    assert refused_code == 4, refused
    reset_sandbox.state.inject("server_error", method="POST", count=1)
    # A lost create is joined while it is settled, within the call's time: a short one ends with the "uncertain" code.
    unknown_code, unknown = await run("generate", "secrets: a lost create", "--timeout", "3", "--log-level", "DEBUG")
    assert unknown_code == 5, unknown
    _, listed = await run("list", "--log-level", "DEBUG")

    for output in (generated, refused, unknown, listed):
        assert_no_key(output, "a terminal command's output")


@pytest.mark.parametrize("key", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
async def test_a_server_given_a_malformed_key_starts_explains_and_never_writes_it(
    reset_sandbox: RunningSandbox, tmp_path: Path, key: str
) -> None:
    env = server_env(reset_sandbox, tmp_path, PIXVERSE_MCP_POLL_TIME_SCALE=POLL_SCALE, AIMLAPI_API_KEY=key)

    async with raw_server(env) as session:
        await session.initialize()
        created = await session.call_tool("create_video", {"prompt": "a malformed key"})
        looked = await session.call_tool("get_video_status", {"generation_id": "some-generation"})

    assert_no_key(session.output(), "the output of a server given a malformed key")
    # A key that is only padded works once trimmed; one that cannot be sent is refused with a clear message.
    for result in (created, looked):
        text = tool_text(result)
        assert not GENERIC_CRASH.match(text), "the tool crashed instead of explaining"
        if result["isError"] and "no such generation" not in text:
            assert "AIMLAPI_API_KEY" in text, text
            assert "may have been accepted" not in text, "a request that never left cannot have been accepted"
