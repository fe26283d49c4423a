"""The API key never leaves: not in a log line (at any level), an error, a tool result, a progress message or a repr.

The end-to-end test runs the real server (`python -m pixverse_mcp`) at DEBUG over stdio with raw JSON-RPC, so every
byte it writes to stdout and stderr is captured, through success, failure, every kind of upstream fault, bad input
and the missing-key path, against a sandbox that accepts only a distinctive key. The terminal commands get the same
treatment. In process, the reprs of the client and the settings and every error the client raises are checked too,
including for keys pasted with stray characters.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import PIPE
from typing import Any

import anyio
import pytest
from anyio.abc import Process, TaskGroup
from pydantic import SecretStr

from pixverse_mcp._retry import RetryPolicy
from pixverse_mcp.app import open_app
from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.config import Settings, load_settings
from pixverse_mcp.errors import PixVerseError
from pixverse_mcp.models import VideoRequest
from pixverse_mcp.polling import PollingPolicy
from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig, SandboxState
from tests.conftest import server_env

pytestmark = pytest.mark.anyio

KEY_SECRET_PART = secrets.token_hex(16)
KEY = f"sk-distinctive-{KEY_SECRET_PART}"
# Any 10 characters in a row of the secret part: a key split by a line break, escaped or cut short still shows.
SECRET_WINDOWS = tuple(KEY_SECRET_PART[start : start + 10] for start in range(len(KEY_SECRET_PART) - 9))
SECRET_SANDBOX = SandboxConfig(
    api_key=KEY, queued_seconds=0.1, generating_seconds=0.2, slow_seconds=0.2, retry_after_seconds=0
)
POLL_SCALE = "0.009"
PROTOCOL_VERSION = "2025-11-25"
REPLY_LIMIT_SECONDS = 30.0
# What the SDK answers when a tool raised something it did not expect: no use to an agent.
GENERIC_CRASH = re.compile(r"^Error executing tool \w+\s*$")
# Keys as people paste them: a newline from a file, a space, a line break inside, a zero-width space from a web page.
MALFORMED_KEYS = {
    "trailing-newline": f"{KEY}\n",
    "trailing-space": f"{KEY} ",
    "inner-newline": f"{KEY[:20]}\n{KEY[20:]}",
    "zero-width-space": f"{KEY}\u200b",
}


def assert_no_key(text: str | bytes | bytearray, where: str) -> None:
    """Neither the key nor its secret part (a truncated or re-wrapped key is still a leak)."""
    haystack = text if isinstance(text, str) else bytes(text).decode("utf-8", "replace")
    for needle in (KEY, *SECRET_WINDOWS):
        at = haystack.find(needle)
        if at >= 0:
            # Show where, without printing the key once more in the test report.
            context = haystack[max(0, at - 200) : at + 200]
            for part in (KEY_SECRET_PART, *SECRET_WINDOWS):
                context = context.replace(part, "<KEY>")
            pytest.fail(f"the API key appears in {where}: ...{context}...", pytrace=False)


@pytest.fixture(scope="module")
def _running_secret_sandbox() -> Iterator[RunningSandbox]:
    with RunningSandbox(SandboxConfig(**vars(SECRET_SANDBOX))) as running:
        yield running


@pytest.fixture
def secret_sandbox(_running_secret_sandbox: RunningSandbox) -> RunningSandbox:
    """A sandbox that accepts only the distinctive key, with zeroed counters and no queued faults."""
    _running_secret_sandbox.state.reset()
    return _running_secret_sandbox


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
    secret_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = server_env(secret_sandbox, tmp_path, PIXVERSE_MCP_POLL_TIME_SCALE=POLL_SCALE, AIMLAPI_API_KEY=KEY)
    assert env["PIXVERSE_MCP_LOG_LEVEL"] == "DEBUG"

    async with raw_server(env) as session:
        await session.initialize()
        await exercise_everything(session, secret_sandbox.state)

    # The capture is real: DEBUG lines, request lines, progress notifications and results were all written.
    assert b" DEBUG " in session.stderr
    assert b"HTTP Request" in session.stderr
    assert any(message.get("method") == "notifications/progress" for message in session.messages)
    assert secret_sandbox.state.stats()["accepted"] >= 3
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
    secret_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = server_env(secret_sandbox, tmp_path, PIXVERSE_MCP_POLL_TIME_SCALE=POLL_SCALE, AIMLAPI_API_KEY=KEY)
    command = [sys.executable, "-m", "pixverse_mcp"]

    async def run(*args: str) -> tuple[int, bytes]:
        with anyio.fail_after(REPLY_LIMIT_SECONDS):
            completed = await anyio.run_process([*command, *args], env=env, check=False)
        return completed.returncode, completed.stdout + b"\n" + completed.stderr

    code, generated = await run(
        "generate", "secrets: a paper boat", "--out", str(tmp_path / "out"), "--log-level", "DEBUG"
    )
    assert code == 0, generated
    generation_id = next(iter(secret_sandbox.state.generations))
    secret_sandbox.state.inject("unauthorized", method="GET", count=1)
    refused_code, refused = await run("status", generation_id, "--log-level", "DEBUG")
    assert refused_code == 4, refused
    secret_sandbox.state.inject("server_error", method="POST", count=1)
    # A lost create is joined while it is settled, within the call's time: a short one ends with the "uncertain" code.
    unknown_code, unknown = await run("generate", "secrets: a lost create", "--timeout", "3", "--log-level", "DEBUG")
    assert unknown_code == 5, unknown
    _, listed = await run("list", "--log-level", "DEBUG")

    for output in (generated, refused, unknown, listed):
        assert_no_key(output, "a terminal command's output")


@pytest.mark.parametrize("key", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
async def test_a_server_given_a_malformed_key_starts_explains_and_never_writes_it(
    secret_sandbox: RunningSandbox, tmp_path: Path, key: str
) -> None:
    env = server_env(secret_sandbox, tmp_path, PIXVERSE_MCP_POLL_TIME_SCALE=POLL_SCALE, AIMLAPI_API_KEY=key)

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


# --- in process --------------------------------------------------------------------------------------------------


def everything_about(error: BaseException) -> str:
    """str, repr, args, body and the formatted traceback of an error and of every error in its chain."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), str(getattr(current, "body", ""))]
        current = current.__cause__ or current.__context__
    parts.append("".join(traceback.format_exception(error)))
    return "\n".join(parts)


def test_reprs_of_the_client_and_the_settings_never_show_the_key(tmp_path: Path) -> None:
    client = PixVerseClient(api_key=KEY, base_url="http://127.0.0.1:9")
    settings = Settings(api_key=SecretStr(KEY), base_url="http://127.0.0.1:9", state_dir=tmp_path)
    loaded = load_settings({"AIMLAPI_API_KEY": KEY, "PIXVERSE_MCP_STATE_DIR": str(tmp_path)})

    assert loaded.api_key is not None
    assert loaded.api_key.get_secret_value() == KEY
    for shown in (
        repr(client),
        str(client),
        repr(settings),
        str(settings),
        repr(loaded),
        str(settings.model_dump()),
        settings.model_dump_json(),
        repr(settings.api_key),
    ):
        assert_no_key(shown, shown[:60])


async def test_the_app_repr_never_shows_the_key(tmp_path: Path) -> None:
    settings = Settings(api_key=SecretStr(KEY), base_url="http://127.0.0.1:9", state_dir=tmp_path)
    async with open_app(settings) as app:
        assert_no_key(repr(app), "the app's repr")
        assert app.service is not None
        assert_no_key(repr(app.service.client), "the service's client repr")


def fast_client(key: str, sandbox: RunningSandbox) -> PixVerseClient:
    """A client on the sandbox with retries and polling shrunk to the sandbox's pace."""
    return PixVerseClient(
        api_key=key,
        base_url=sandbox.url,
        retry_policy=RetryPolicy(base_delay=0.01, max_delay=0.05),
        polling_policy=PollingPolicy(time_scale=float(POLL_SCALE)),
    )


Scenario = Callable[[PixVerseClient, SandboxState, str], Awaitable[object]]


async def _create(client: PixVerseClient, state: SandboxState, fault: str) -> object:
    state.inject(fault, method="POST", count=10)
    return await client.create(VideoRequest(prompt=f"in process: {fault}"))


async def _get(client: PixVerseClient, state: SandboxState, fault: str) -> object:
    generation = await client.create(VideoRequest(prompt=f"in process: get meets {fault}"))
    state.inject(fault, method="GET", count=10)
    return await client.get(generation.id)


async def _wait(client: PixVerseClient, state: SandboxState, fault: str) -> object:
    generation = await client.create(VideoRequest(prompt=f"in process: wait [sandbox:fault={fault}]"))
    return await client.wait(generation.id, timeout=0.5)


RESPONSE_FAULTS = ("unauthorized", "no_credits", "server_error", "gateway_502", "unavailable", "reset", "html_200")


@pytest.mark.parametrize(
    ("scenario", "fault"),
    [(_create, fault) for fault in (*RESPONSE_FAULTS, "incomplete_json", "accepted_500", "accepted_reset")]
    + [(_get, fault) for fault in (*RESPONSE_FAULTS, "no_video_url")]
    + [(_wait, fault) for fault in ("fail", "fail_string", "never_completes", "unauthorized", "no_video_url")],
)
async def test_no_error_the_client_raises_shows_the_key(
    secret_sandbox: RunningSandbox, scenario: Scenario, fault: str
) -> None:
    async with fast_client(KEY, secret_sandbox) as client:
        with pytest.raises(PixVerseError) as raised:
            await scenario(client, secret_sandbox.state, fault)

    assert_no_key(everything_about(raised.value), f"a {type(raised.value).__name__}")


@pytest.mark.parametrize(
    "url", ["not-a-url", "http://127.0.0.1:9/refused.mp4", "{sandbox}/_sandbox/missing/video.mp4"], ids=str
)
async def test_no_download_error_shows_the_key(secret_sandbox: RunningSandbox, tmp_path: Path, url: str) -> None:
    async with fast_client(KEY, secret_sandbox) as client:
        with pytest.raises(PixVerseError) as raised:
            await client.download(url.format(sandbox=secret_sandbox.url), tmp_path, file_name="video.mp4")

    assert_no_key(everything_about(raised.value), "a download error")


async def test_an_unknown_generation_error_never_shows_the_key(secret_sandbox: RunningSandbox) -> None:
    async with fast_client(KEY, secret_sandbox) as client:
        with pytest.raises(PixVerseError) as raised:
            await client.get("no-such-generation")

    assert_no_key(everything_about(raised.value), "a not-found error")


@pytest.mark.parametrize("key", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
async def test_a_malformed_key_is_trimmed_or_refused_as_a_package_error_that_never_shows_it(
    secret_sandbox: RunningSandbox, key: str
) -> None:
    raised: Exception | None = None
    try:
        async with fast_client(key, secret_sandbox) as client:
            await client.create(VideoRequest(prompt="a malformed key"))
    except Exception as error:  # whatever it is, it must be ours and must not carry the key
        raised = error

    if raised is not None:
        assert_no_key(everything_about(raised), f"a {type(raised).__name__} for a malformed key")
        assert isinstance(raised, PixVerseError), f"{type(raised).__name__} is not a package error"
        # Nothing can have been accepted with a key that never left this process.
        assert "may have been accepted" not in str(raised)
