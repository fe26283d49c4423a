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
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, MCP_METHOD_HEADER, MCP_NAME_HEADER, encode_header_value
from mcp_types import HEADER_MISMATCH
from starlette.types import Receive, Scope, Send

from pixverse_mcp import tasks
from pixverse_mcp.app import App, open_app
from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from pixverse_mcp.server import build_server
from pixverse_mcp.storage import StorageError, TaskRecord
from pixverse_mcp.tasks import TaskNameHeaderCheck, principal
from tests.conftest import SandboxFactory
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
RawServed = Callable[..., AbstractAsyncContextManager[tuple[InProcessRawSession, App]]]


@pytest.fixture
def raw_served(tmp_path: Path) -> RawServed:
    """`async with raw_served(sandbox, **setting_overrides) as (session, app)`: the server in process, spoken to by
    hand, and its app (storage, service); its state in this test's tmp_path (a second one finds the first's)."""

    @asynccontextmanager
    async def start(sandbox: RunningSandbox, **overrides: Any) -> AsyncIterator[tuple[InProcessRawSession, App]]:
        settings = settings_for(sandbox, tmp_path, **overrides)
        async with open_app(settings) as app, raw_in_process(build_server(settings, app)) as session:
            yield session, app

    return start


@pytest.fixture
def raw_server(raw_served: RawServed) -> RawServer:
    """`async with raw_server(sandbox, **setting_overrides) as session`: the same, without the app."""

    @asynccontextmanager
    async def start(sandbox: RunningSandbox, **overrides: Any) -> AsyncIterator[InProcessRawSession]:
        async with raw_served(sandbox, **overrides) as (session, _):
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


async def poll_until_done(
    server: RawSession, task_id: str, *, every: float | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`tasks/get` until the task is no longer working: as often as the server asks (`pollIntervalMs`), or `every`
    so many seconds (a test in a hurry)."""
    seen: list[dict[str, Any]] = []
    with anyio.fail_after(POLL_LIMIT_SECONDS):
        while True:
            got: dict[str, Any] = (await request(server, "tasks/get", {"taskId": task_id}))["result"]
            seen.append(got)
            if got["status"] != "working":
                return got, seen
            await anyio.sleep(got["pollIntervalMs"] / 1000 if every is None else every)


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


# --- the extension's other paths, in process -----------------------------------------------------------------------
#
# Storage failing at each step, a wait that crashes, a shutdown, a restart, the sweep of expired tasks; and the
# parts that need no session: who owns a task, and the `Mcp-Name` check of the HTTP hosting.

# Videos that take 0.2 s, for the tests that wait for a task to end.
QUICK = SandboxConfig(queued_seconds=0.05, generating_seconds=0.15)


def failing(message: str) -> Callable[..., Any]:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise StorageError(message)

    return fail


async def test_a_task_outlives_its_server_and_the_next_ones_first_tasks_get_resumes_it(
    sandbox: RunningSandbox, raw_server: RawServer
) -> None:
    async with raw_server(sandbox) as first:
        await request(first, "server/discover", {})
        handle = await start_task(first)
    # The first server is gone (its wait with it); a new one on the same state folder finds the task in storage.
    async with raw_server(sandbox) as second:
        await request(second, "server/discover", {})
        done, _ = await poll_until_done(second, handle["taskId"], every=0.1)

    assert done["status"] == "completed"
    assert done["result"]["structuredContent"]["status"] == "completed"
    assert sandbox.state.stats()["creates"] == 1


async def test_a_task_whose_generation_is_not_in_the_journal_ends_with_the_lookup_error(
    sandbox: RunningSandbox, raw_served: RawServed
) -> None:
    missing = "00000000-0000-0000-0000-000000000000:pixverse/v5/text-to-video"
    task = TaskRecord("a-task-from-elsewhere-" + "x" * 24, "", time.time(), time.time(), 600, generation_id=missing)
    async with raw_served(sandbox) as (server, app):
        await request(server, "server/discover", {})
        await app.storage.save_task(task)
        done, _ = await poll_until_done(server, task.task_id, every=0.05)

    assert done["status"] == "completed"
    result = done["result"]
    check_raw("generate_video_blocking", result)
    assert result["isError"] is True
    assert result["structuredContent"]["generation_id"] == missing
    assert "no such generation" in result["content"][0]["text"]


async def test_a_call_refused_before_anything_is_created_answers_inline_and_makes_no_task(
    sandbox: RunningSandbox, raw_server: RawServer
) -> None:
    async with raw_server(sandbox) as server:
        await request(server, "server/discover", {})
        response = await request(
            server, "tools/call", {"name": "generate_video_blocking", "arguments": {"prompt": "a kite", "seed": -1}}
        )

    result = response["result"]
    assert result.get("resultType", "complete") == "complete"
    assert result["isError"] is True
    assert "seed" in result["content"][0]["text"]
    assert sandbox.state.stats()["creates"] == 0


async def test_when_storage_cannot_keep_the_task_the_call_waits_for_its_result_itself(
    sandbox_factory: SandboxFactory, raw_served: RawServed, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = sandbox_factory(QUICK)
    async with raw_served(sandbox) as (server, app):
        await request(server, "server/discover", {})
        monkeypatch.setattr(app.storage, "save_task", failing("the disk is full"))
        response = await request(
            server, "tools/call", {"name": "generate_video_blocking", "arguments": {"prompt": prompt()}}
        )

    result = response["result"]
    assert result.get("resultType", "complete") == "complete", result
    assert result["structuredContent"]["status"] == "completed"
    assert sandbox.state.stats()["creates"] == 1


async def test_tasks_get_when_storage_fails_is_invalid_params_saying_so(
    sandbox: RunningSandbox, raw_served: RawServed, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with raw_served(sandbox) as (server, app):
        await request(server, "server/discover", {})
        handle = await start_task(server)
        monkeypatch.setattr(app.storage, "get_task", failing("the journal is locked"))
        refused = await request(server, "tasks/get", {"taskId": handle["taskId"]})

    assert refused["error"]["code"] == -32602
    assert "Failed to retrieve task: the journal is locked" in refused["error"]["message"]


async def test_tasks_cancel_when_storage_fails_is_invalid_params_saying_so(
    sandbox: RunningSandbox, raw_served: RawServed, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with raw_served(sandbox) as (server, app):
        await request(server, "server/discover", {})
        handle = await start_task(server)
        monkeypatch.setattr(app.storage, "finish_task", failing("the journal is read-only"))
        refused = await request(server, "tasks/cancel", {"taskId": handle["taskId"]})

    assert refused["error"]["code"] == -32602
    assert "Failed to update task: the journal is read-only" in refused["error"]["message"]


async def test_a_working_task_reports_queued_while_the_journal_cannot_be_read(
    sandbox: RunningSandbox, raw_served: RawServed, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with raw_served(sandbox) as (server, app):
        await request(server, "server/discover", {})
        handle = await start_task(server)
        [generation_id] = sandbox.state.generations
        with anyio.fail_after(POLL_LIMIT_SECONDS):  # the journal has seen it generating ...
            while (entry := await app.storage.get(generation_id)) is None or entry.status != "generating":
                await anyio.sleep(0.02)
        monkeypatch.setattr(app.storage, "get", failing("the journal is locked"))  # ... and can no longer be read
        got = (await request(server, "tasks/get", {"taskId": handle["taskId"]}))["result"]

    assert got["status"] == "working"
    assert got["statusMessage"].startswith("queued")
    assert got["pollIntervalMs"] >= 1000


async def test_a_result_storage_could_not_record_is_recorded_by_the_next_tasks_get(
    sandbox_factory: SandboxFactory, raw_served: RawServed, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = sandbox_factory(QUICK)
    async with raw_served(sandbox) as (server, app):
        await request(server, "server/discover", {})
        record = app.storage.finish_task
        failed = anyio.Event()

        async def fail_once(task: TaskRecord) -> bool:
            monkeypatch.setattr(app.storage, "finish_task", record)
            failed.set()
            raise StorageError("the journal is locked")

        monkeypatch.setattr(app.storage, "finish_task", fail_once)
        handle = await start_task(server)
        with anyio.fail_after(POLL_LIMIT_SECONDS):
            await failed.wait()
        done, _ = await poll_until_done(server, handle["taskId"], every=0.05)

    assert done["status"] == "completed"
    assert done["result"]["structuredContent"]["status"] == "completed"
    assert sandbox.state.stats()["creates"] == 1


async def test_a_wait_that_crashes_fails_its_task_with_the_generation_id_and_the_server_goes_on(
    sandbox: RunningSandbox, raw_served: RawServed, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with raw_served(sandbox) as (server, app):
        await request(server, "server/discover", {})
        assert app.service is not None

        def crash(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug in the wait")

        monkeypatch.setattr(app.service, "wait", crash)
        handle = await start_task(server)
        done, _ = await poll_until_done(server, handle["taskId"], every=0.05)
        listing = await request(server, "tools/call", {"name": "list_videos", "arguments": {}})

    [generation_id] = sandbox.state.generations
    assert done["status"] == "failed"
    assert done["error"]["code"] == -32603
    assert generation_id in done["error"]["message"]
    assert "get_video_status" in done["error"]["message"]
    assert "a bug in the wait" not in done["error"]["message"]  # the details go to the log
    assert [video["generation_id"] for video in listing["result"]["structuredContent"]["videos"]] == [generation_id]


async def test_a_shutdown_leaves_a_task_working_for_the_next_process(
    sandbox_factory: SandboxFactory, raw_served: RawServed
) -> None:
    sandbox = sandbox_factory(QUICK)
    async with raw_served(sandbox) as (server, app):
        await request(server, "server/discover", {})
        assert app.service is not None
        handle = await start_task(server)
        app.service.drain()  # as on SIGTERM: every wait ends now, and what it saw is not final
        await anyio.sleep(1.0)  # five times what the video takes: undrained, the task would have completed
        stored = await app.storage.get_task(handle["taskId"])

    assert stored is not None
    assert stored.status == "working"
    assert stored.result is None


async def test_expired_tasks_are_swept_from_storage(
    sandbox: RunningSandbox, raw_served: RawServed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "_SWEEP_SECONDS", 0.05)
    async with raw_served(sandbox, task_ttl_seconds=0.2) as (server, app):
        await request(server, "server/discover", {})
        handle = await start_task(server)
        with anyio.fail_after(POLL_LIMIT_SECONDS):
            while await app.storage.get_task(handle["taskId"]) is not None:
                await anyio.sleep(0.05)
        expired = await request(server, "tasks/get", {"taskId": handle["taskId"]})

    assert expired["error"]["code"] == -32602
    assert sandbox.state.stats()["creates"] == 1  # the generation itself goes on, in the journal


async def test_tasks_update_of_a_known_task_is_answered_and_of_an_unknown_one_refused(
    sandbox: RunningSandbox, raw_server: RawServer
) -> None:
    async with raw_server(sandbox) as server:
        await request(server, "server/discover", {})
        handle = await start_task(server)
        known = await request(server, "tasks/update", {"taskId": handle["taskId"], "inputResponses": {}})
        unknown = await request(server, "tasks/update", {"taskId": "no-such-task", "inputResponses": {}})

    assert known["result"]["resultType"] == "complete"
    assert unknown["error"]["code"] == -32602


def test_a_task_belongs_to_the_bearer_token_whatever_the_scheme_is_spelt() -> None:
    def asking(authorization: str | None) -> Any:
        headers = {} if authorization is None else {"authorization": authorization}
        return SimpleNamespace(request=SimpleNamespace(headers=headers))

    assert principal(asking("Bearer secret-one")) == principal(asking("bearer  secret-one "))
    assert principal(asking("Bearer secret-one")) != principal(asking("Bearer secret-two"))
    assert len(principal(asking("Bearer secret-one"))) == 64  # a digest, never the token
    assert "secret-one" not in principal(asking("Bearer secret-one"))
    assert principal(asking(None)) == ""
    assert principal(SimpleNamespace(request=None)) == ""  # stdio: no HTTP request


# The `Mcp-Name` check, on an ASGI app that echoes what reached it.


async def echo_body(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"reached: " + body})


async def post_task_request(method: str, params: Any, headers: dict[str, str], raw: bytes | None = None) -> Any:
    body = raw if raw is not None else json.dumps({"jsonrpc": "2.0", "id": 9, "method": method, "params": params})
    transport = httpx2.ASGITransport(app=TaskNameHeaderCheck(echo_body))
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        return await http.post("/mcp", content=body, headers={MCP_METHOD_HEADER: method, **headers})


async def test_a_task_request_whose_mcp_name_is_another_task_is_refused_before_it_is_dispatched() -> None:
    answer = await post_task_request("tasks/get", {"taskId": "task-a"}, {MCP_NAME_HEADER: "task-b"})

    assert answer.status_code == ERROR_CODE_HTTP_STATUS.get(HEADER_MISMATCH, 400)
    error = answer.json()
    assert (error["id"], error["error"]["code"]) == (9, HEADER_MISMATCH)
    assert MCP_NAME_HEADER in error["error"]["message"]


@pytest.mark.parametrize("task_id", ["task-a", "ünïcødé task ✓"])
async def test_a_task_request_naming_its_task_reaches_the_server_whole(task_id: str) -> None:
    answer = await post_task_request(
        "tasks/cancel", {"taskId": task_id}, {MCP_NAME_HEADER: encode_header_value(task_id)}
    )

    assert answer.status_code == 200
    assert json.loads(answer.text.removeprefix("reached: "))["params"]["taskId"] == task_id


@pytest.mark.parametrize(
    ("method", "params", "raw"),
    [
        ("tools/call", {"name": "list_videos"}, None),  # not a task method: not read at all
        ("tasks/get", None, b"{not json"),  # the SDK's to refuse
        ("tasks/get", ["not", "an", "object"], None),
        ("tasks/get", {"taskId": 7}, None),
    ],
    ids=["other-method", "unparsable", "params-not-an-object", "task-id-not-text"],
)
async def test_other_requests_pass_the_task_check_untouched(method: str, params: Any, raw: bytes | None) -> None:
    answer = await post_task_request(method, params, {MCP_NAME_HEADER: "something-else"}, raw)

    assert answer.status_code == 200
    assert answer.text.startswith("reached: ")
