"""The Tasks extension, spoken by hand: raw JSON-RPC to the real server in process (framed as stdio frames it, no
SDK on the client side).

A 2026-07-28 client that declares `io.modelcontextprotocol/tasks` on its request gets a task handle for
`generate_video_blocking`; `tasks/get` reports the live status, then the very result the blocking call would have
returned (valid against its outputSchema); a client that does not declare the extension gets today's result;
`tasks/cancel` stops the waiting only. (That a task survives the server being killed is
tests/e2e/test_tasks_raw.py's: it needs a process to kill.)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from pixverse_mcp.app import open_app
from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from pixverse_mcp.server import build_server
from tests.in_process import InProcessRawSession, raw_in_process, settings_for
from tests.result_schemas import check_raw
from tests.stdio_support import RawSession

pytestmark = pytest.mark.anyio

REVISION = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
# A generation that takes 1.5 s: long enough to see a task working, short enough for a test.
SANDBOX = SandboxConfig(queued_seconds=0.5, generating_seconds=1.0)
POLL_LIMIT_SECONDS = 60.0
_prompts = itertools.count()

RawServer = Callable[..., AbstractAsyncContextManager[InProcessRawSession]]


@pytest.fixture
def raw_server(tmp_path: Path) -> RawServer:
    """`async with raw_server(sandbox, **setting_overrides) as session`: the server in process, spoken to by hand."""

    @asynccontextmanager
    async def start(sandbox: RunningSandbox, **overrides: Any) -> AsyncIterator[InProcessRawSession]:
        settings = settings_for(sandbox, tmp_path, **overrides)
        async with open_app(settings) as app, raw_in_process(build_server(settings, app)) as session:
            yield session

    return start


def envelope(*, tasks: bool) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"extensions": {TASKS: {}}} if tasks else {}
    return {
        "io.modelcontextprotocol/protocolVersion": REVISION,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-tasks-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }


async def request(server: RawSession, method: str, params: dict[str, Any], *, tasks: bool = True) -> Any:
    return await server.request(method, {**params, "_meta": envelope(tasks=tasks)})


def prompt() -> str:
    return f"a slow river at dawn {next(_prompts)} {time.time_ns()}"


async def start_task(server: RawSession) -> dict[str, Any]:
    response = await request(
        server, "tools/call", {"name": "generate_video_blocking", "arguments": {"prompt": prompt()}}
    )
    handle: dict[str, Any] = response["result"]
    assert handle["resultType"] == "task", handle
    return handle


async def poll_until_done(server: RawSession, task_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    with anyio.fail_after(POLL_LIMIT_SECONDS):
        while True:
            got: dict[str, Any] = (await request(server, "tasks/get", {"taskId": task_id}))["result"]
            seen.append(got)
            if got["status"] != "working":
                return got, seen
            await anyio.sleep(got["pollIntervalMs"] / 1000)


async def test_the_server_advertises_the_extension_with_no_settings(
    sandbox: RunningSandbox, raw_server: RawServer
) -> None:
    async with raw_server(sandbox) as server:
        discovered = await request(server, "server/discover", {})

    assert discovered["result"]["capabilities"]["extensions"][TASKS] == {}


async def test_a_declaring_client_gets_a_task_that_ends_with_the_blocking_result(
    sandbox: RunningSandbox, raw_server: RawServer
) -> None:
    async with raw_server(sandbox) as server:
        await request(server, "server/discover", {})
        handle = await start_task(server)
        done, seen = await poll_until_done(server, handle["taskId"])

    assert handle["status"] == "working"
    assert len(handle["taskId"]) >= 32  # unguessable
    assert handle["ttlMs"] == 86_400_000
    assert {"createdAt", "lastUpdatedAt", "pollIntervalMs"} <= set(handle)
    assert sandbox.state.stats()["creates"] == 1  # the create happened before the handle came back
    working = [got for got in seen if got["status"] == "working"]
    assert working, "the task finished before the first tasks/get"
    assert all("elapsed" in got["statusMessage"] for got in working)
    assert all(got["pollIntervalMs"] >= 1000 for got in working)
    assert done["status"] == "completed"
    assert done["resultType"] == "complete"
    result = done["result"]
    check_raw("generate_video_blocking", result)
    assert result["isError"] is False
    assert result["structuredContent"]["status"] == "completed"
    assert result["structuredContent"]["video_url"].startswith(sandbox.url)
    assert sandbox.state.stats()["creates"] == 1


async def test_a_client_that_does_not_declare_tasks_gets_the_result_inline(
    sandbox: RunningSandbox, raw_server: RawServer
) -> None:
    async with raw_server(sandbox) as server:
        await request(server, "server/discover", {}, tasks=False)
        response = await request(
            server, "tools/call", {"name": "generate_video_blocking", "arguments": {"prompt": prompt()}}, tasks=False
        )
        task_get = await request(server, "tasks/get", {"taskId": "anything"}, tasks=False)

    result = response["result"]
    assert result.get("resultType", "complete") == "complete"
    assert result["structuredContent"]["status"] == "completed"
    assert task_get["error"]["code"] == -32021  # tasks/get without declaring the extension


async def test_cancel_stops_waiting_and_says_the_generation_goes_on(
    sandbox: RunningSandbox, raw_server: RawServer
) -> None:
    async with raw_server(sandbox) as server:
        await request(server, "server/discover", {})
        handle = await start_task(server)
        cancelled = await request(server, "tasks/cancel", {"taskId": handle["taskId"]})
        after = (await request(server, "tasks/get", {"taskId": handle["taskId"]}))["result"]
        generation_id = next(iter(sandbox.state.generations))
        listing = await request(server, "tools/call", {"name": "list_videos", "arguments": {}})

    assert cancelled["result"]["resultType"] == "complete"
    assert after["status"] == "cancelled"
    assert "cannot be cancelled upstream" in after["statusMessage"]
    assert generation_id in after["statusMessage"]
    ids = [video["generation_id"] for video in listing["result"]["structuredContent"]["videos"]]
    assert generation_id in ids  # still in the journal


async def test_an_unknown_task_id_is_invalid_params(sandbox: RunningSandbox, raw_server: RawServer) -> None:
    async with raw_server(sandbox) as server:
        await request(server, "server/discover", {})
        missing = await request(server, "tasks/get", {"taskId": "no-such-task"})

    assert missing["error"]["code"] == -32602
