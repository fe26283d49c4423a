"""The Tasks extension, spoken by hand: raw JSON-RPC over the real server's stdio, no SDK on the client side.

A 2026-07-28 client that declares `io.modelcontextprotocol/tasks` on its request gets a task handle for
`generate_video_blocking`; `tasks/get` reports the live status, then the very result the blocking call would have
returned (valid against its outputSchema); a task survives a restart of the server; a client that does not declare
the extension gets today's result; `tasks/cancel` stops the waiting only.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import server_env
from tests.result_schemas import check_raw
from tests.stdio_support import RawStdioServer

pytestmark = pytest.mark.anyio

REVISION = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
# A generation that takes a few seconds: long enough to see a task working, short enough for a test.
SLOW_SANDBOX = SandboxConfig(queued_seconds=1.0, generating_seconds=3.0)
POLL_LIMIT_SECONDS = 60.0
_prompts = itertools.count()


def envelope(*, tasks: bool) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"extensions": {TASKS: {}}} if tasks else {}
    return {
        "io.modelcontextprotocol/protocolVersion": REVISION,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-tasks-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }


async def request(server: RawStdioServer, method: str, params: dict[str, Any], *, tasks: bool = True) -> Any:
    return await server.request(method, {**params, "_meta": envelope(tasks=tasks)})


def prompt() -> str:
    return f"a slow river at dawn {next(_prompts)} {time.time_ns()}"


async def start_task(server: RawStdioServer) -> dict[str, Any]:
    response = await request(
        server, "tools/call", {"name": "generate_video_blocking", "arguments": {"prompt": prompt()}}
    )
    handle: dict[str, Any] = response["result"]
    assert handle["resultType"] == "task", handle
    return handle


async def poll_until_done(server: RawStdioServer, task_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    with anyio.fail_after(POLL_LIMIT_SECONDS):
        while True:
            got: dict[str, Any] = (await request(server, "tasks/get", {"taskId": task_id}))["result"]
            seen.append(got)
            if got["status"] != "working":
                return got, seen
            await anyio.sleep(got["pollIntervalMs"] / 1000)


@pytest.fixture
def slow_sandbox() -> Any:
    with RunningSandbox(SandboxConfig(**vars(SLOW_SANDBOX))) as running:
        yield running


async def test_the_server_advertises_the_extension_with_no_settings(
    slow_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    async with RawStdioServer.start(server_env(slow_sandbox, tmp_path)) as server:
        discovered = await request(server, "server/discover", {})

    assert discovered["result"]["capabilities"]["extensions"][TASKS] == {}


async def test_a_declaring_client_gets_a_task_that_ends_with_the_blocking_result(
    slow_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    async with RawStdioServer.start(server_env(slow_sandbox, tmp_path)) as server:
        await request(server, "server/discover", {})
        handle = await start_task(server)
        done, seen = await poll_until_done(server, handle["taskId"])

    assert handle["status"] == "working"
    assert len(handle["taskId"]) >= 32  # unguessable
    assert handle["ttlMs"] == 86_400_000
    assert {"createdAt", "lastUpdatedAt", "pollIntervalMs"} <= set(handle)
    assert slow_sandbox.state.stats()["creates"] == 1  # the create happened before the handle came back
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
    assert result["structuredContent"]["video_url"].startswith(slow_sandbox.url)
    assert slow_sandbox.state.stats()["creates"] == 1


async def test_a_client_that_does_not_declare_tasks_gets_the_result_inline(
    slow_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    async with RawStdioServer.start(server_env(slow_sandbox, tmp_path)) as server:
        await request(server, "server/discover", {}, tasks=False)
        response = await request(
            server, "tools/call", {"name": "generate_video_blocking", "arguments": {"prompt": prompt()}}, tasks=False
        )
        task_get = await request(server, "tasks/get", {"taskId": "anything"}, tasks=False)

    result = response["result"]
    assert result.get("resultType", "complete") == "complete"
    assert result["structuredContent"]["status"] == "completed"
    assert task_get["error"]["code"] == -32021  # tasks/get without declaring the extension


async def test_a_task_survives_a_restart_and_the_first_tasks_get_resumes_its_wait(
    slow_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = server_env(slow_sandbox, tmp_path)
    async with RawStdioServer.start(env) as first:
        await request(first, "server/discover", {})
        handle = await start_task(first)
        first.process.kill()  # no goodbye: the task is in storage, the wait is gone with the process

    async with RawStdioServer.start(env) as second:
        await request(second, "server/discover", {})
        done, _ = await poll_until_done(second, handle["taskId"])

    assert done["status"] == "completed"
    assert done["result"]["structuredContent"]["status"] == "completed"
    assert slow_sandbox.state.stats()["creates"] == 1


async def test_cancel_stops_waiting_and_says_the_generation_goes_on(
    slow_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    async with RawStdioServer.start(server_env(slow_sandbox, tmp_path)) as server:
        await request(server, "server/discover", {})
        handle = await start_task(server)
        cancelled = await request(server, "tasks/cancel", {"taskId": handle["taskId"]})
        after = (await request(server, "tasks/get", {"taskId": handle["taskId"]}))["result"]
        generation_id = next(iter(slow_sandbox.state.generations))
        listing = await request(server, "tools/call", {"name": "list_videos", "arguments": {}})

    assert cancelled["result"]["resultType"] == "complete"
    assert after["status"] == "cancelled"
    assert "cannot be cancelled upstream" in after["statusMessage"]
    assert generation_id in after["statusMessage"]
    ids = [video["generation_id"] for video in listing["result"]["structuredContent"]["videos"]]
    assert generation_id in ids  # still in the journal


async def test_an_unknown_task_id_is_invalid_params(slow_sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with RawStdioServer.start(server_env(slow_sandbox, tmp_path)) as server:
        await request(server, "server/discover", {})
        missing = await request(server, "tasks/get", {"taskId": "no-such-task"})

    assert missing["error"]["code"] == -32602
