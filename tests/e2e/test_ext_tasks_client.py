"""Interop with the Tasks extension's own client: `@modelcontextprotocol/ext-tasks` 0.2.2 on the TypeScript SDK v2
client 2.3.1 (`tests/interop/ext_tasks_client.mjs`), in the 2026-07-28 era, over stdio and Streamable HTTP
(stateful and stateless, with a bearer token).

The client declares `io.modelcontextprotocol/tasks`, calls `generate_video_blocking` as a task and follows it with
`tasks/get` until it settles; the final result must be the blocking call's own (valid against the published
outputSchema) after exactly one create upstream. `tasks/cancel` stops the waiting and says the generation goes on.
A task started on one server process is taken up again, after a restart on the same state directory, by a new
connection (`session.resumeTask`), and completes without a second create. Over stdio, the round trips of one task
are set against the blocking call's single request.

The sandbox's videos take about 4 s (1 s queued, 3 s generating), so each task is seen `working` before it ends.
The Node packages are pinned in tests/interop/package-lock.json and installed on first use (`npm ci`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import server_env
from tests.http_server import STATEFUL, STATELESS, Mode, served
from tests.interop_support import interop_folder, node, run_bounded
from tests.result_schemas import check_raw

pytestmark = pytest.mark.slow

TOOL = "generate_video_blocking"
# What the client script may take, start to end (a task settles in about 5 s here); the script gives up itself a
# little earlier, so a hang still ends with its report.
CLIENT_TIMEOUT_SECONDS = 120.0
CLIENT_DEADLINE_MS = 100_000
# 32 characters: the shortest token the server accepts.
TOKEN = "ext-tasks-interop-token-32-chars"
# The server's log reaches the client's stderr over stdio (and so a failure's message): INFO keeps it readable.
SERVER_LOG_LEVEL = "INFO"
HTTP_MODES = {"streamable-http": STATEFUL, "streamable-http-stateless": STATELESS}
TRANSPORTS = ("stdio", *HTTP_MODES)
CANCELLED_MARKERS = ("cannot be cancelled upstream", "goes on")
# Each test's `sandbox`: videos take a few seconds, long enough to see a task working, short enough for a test.
SANDBOX = SandboxConfig(queued_seconds=1.0, generating_seconds=3.0)


@pytest.fixture(scope="module")
def interop() -> Path:
    """tests/interop with its pinned packages (ext-tasks among them) installed."""
    return interop_folder()


def environment(sandbox: RunningSandbox, tmp_path: Path) -> dict[str, str]:
    """The server's environment (one state directory per test, so a restarted server finds the task)."""
    return server_env(sandbox, tmp_path, PIXVERSE_MCP_LOG_LEVEL=SERVER_LOG_LEVEL, PIXVERSE_MCP_AUTH_TOKEN=TOKEN)


@contextmanager
def reachable(transport: str, env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """The client script's environment for one server: over stdio the script spawns the server itself (with this
    environment); over HTTP a server is served until the block ends, and the script gets its URL and the token."""
    if transport == "stdio":
        yield {**env, "EXT_TASKS_PYTHON": sys.executable, "EXT_TASKS_DEADLINE_MS": str(CLIENT_DEADLINE_MS)}
        return
    mode: Mode = HTTP_MODES[transport]
    with served(env, tmp_path / "logs", mode) as server:
        yield {
            "PATH": env["PATH"],
            "EXT_TASKS_URL": server.url,
            "EXT_TASKS_TOKEN": TOKEN,
            "EXT_TASKS_DEADLINE_MS": str(CLIENT_DEADLINE_MS),
        }


def run_client(interop: Path, transport: str, client_env: dict[str, str], scenario: str, *args: str) -> Any:
    """One run of the script; its report (the last stdout line), which must say it went through."""
    kind = "stdio" if transport == "stdio" else "http"
    finished = run_bounded(
        [node(), str(interop / "ext_tasks_client.mjs"), kind, scenario, *args],
        env=client_env,
        timeout=CLIENT_TIMEOUT_SECONDS,
        cwd=interop,
    )
    lines = finished.stdout.strip().splitlines()
    assert lines, f"the client printed nothing (exit {finished.returncode}):\n{finished.stderr}"
    report = json.loads(lines[-1])
    assert report["ok"], f"{scenario} over {transport} failed: {report.get('error')}\n{finished.stderr}"
    assert finished.returncode == 0, finished.stderr
    assert report["era"] == "modern", report
    assert report["protocolVersion"] == "2026-07-28", report
    assert report["serverTasksExtension"] == {}, report
    return report


def assert_is_task_handle(handle: Any) -> None:
    """The raw tools/call answer: a task handle, not a tool result."""
    assert handle["resultType"] == "task", handle
    assert isinstance(handle["taskId"], str), handle
    assert len(handle["taskId"]) >= 32, handle  # unguessable
    assert isinstance(handle["ttlMs"], int), handle
    assert handle["status"] == "working", handle


def assert_is_the_blocking_result(result: Any, sandbox: RunningSandbox) -> None:
    """The very result the blocking call returns for a finished video, valid against its outputSchema."""
    check_raw(TOOL, result)
    assert result["isError"] is False, result
    assert result["structuredContent"]["status"] == "completed", result["structuredContent"]
    assert result["structuredContent"]["video_url"].startswith(sandbox.url), result["structuredContent"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_task_is_followed_to_the_blocking_calls_result(
    interop: Path, sandbox: RunningSandbox, tmp_path: Path, transport: str
) -> None:
    with reachable(transport, environment(sandbox, tmp_path), tmp_path) as client_env:
        report = run_client(interop, transport, client_env, "complete")

    assert report["kind"] == "task"
    assert_is_task_handle(report["handle"])
    assert report["executionHandle"]["taskId"] == report["handle"]["taskId"]
    working = [seen for seen in report["seen"] if seen["status"] == "working"]
    assert any(seen["statusMessage"] for seen in working), report["seen"]
    assert report["statuses"][-1] == "completed", report["statuses"]
    assert report["outcome"] == "completed"
    assert_is_the_blocking_result(report["result"], sandbox)
    assert "tasks/cancel" not in report["requests"], report["requests"]
    assert sandbox.state.stats()["creates"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cancel_stops_the_waiting_and_says_the_generation_goes_on(
    interop: Path, sandbox: RunningSandbox, tmp_path: Path, transport: str
) -> None:
    with reachable(transport, environment(sandbox, tmp_path), tmp_path) as client_env:
        report = run_client(interop, transport, client_env, "cancel")

    assert_is_task_handle(report["handle"])
    assert report["seen"][-1]["status"] == "working", report["seen"]
    assert report["outcome"] == "cancelled"
    assert report["requests"].get("tasks/cancel") == 1, report["requests"]
    after = report["afterCancel"]
    assert after.get("status") == "cancelled", after
    for marker in CANCELLED_MARKERS:
        assert marker in after["statusMessage"], after["statusMessage"]
    generation_id = next(iter(sandbox.state.generations))
    assert generation_id in after["statusMessage"]  # where to look for the video later
    assert sandbox.state.stats()["creates"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_task_started_before_a_restart_is_resumed_to_its_result(
    interop: Path, sandbox: RunningSandbox, tmp_path: Path, transport: str
) -> None:
    env = environment(sandbox, tmp_path)
    # Over stdio each run of the script spawns its own server (on the same state directory); over HTTP the first
    # server is stopped when its block ends and a new one is served for the second connection.
    with reachable(transport, env, tmp_path) as client_env:
        started = run_client(interop, transport, client_env, "start")
    assert_is_task_handle(started["handle"])
    assert "tasks/cancel" not in started["requests"], "the client cancelled the task it handed off"
    task_id = started["taskId"]
    assert started["reference"] == {
        "endpointId": "pixverse-mcp-interop",
        "generation": "v2",
        "taskId": task_id,
        "originalOperation": "tools/call",
    }

    with reachable(transport, env, tmp_path) as client_env:
        resumed = run_client(interop, transport, client_env, "resume", task_id)

    assert resumed["outcome"] == "completed", resumed
    assert resumed["statuses"][-1] == "completed", resumed["statuses"]
    assert_is_the_blocking_result(resumed["result"], sandbox)
    assert sandbox.state.stats()["creates"] == 1


def test_round_trips_of_a_task_against_the_blocking_call(
    interop: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Over stdio: the requests one task costs the client (tools/call and the tasks/get polls) against the blocking
    call's one. Reported, not bounded: the poll count follows the server's pollIntervalMs and the video's time."""
    with reachable("stdio", environment(sandbox, tmp_path), tmp_path) as client_env:
        task = run_client(interop, "stdio", client_env, "complete")
        blocking = run_client(interop, "stdio", client_env, "blocking")

    assert_is_the_blocking_result(task["result"], sandbox)
    assert_is_the_blocking_result(blocking["result"], sandbox)
    task_requests = task["requests"].get("tools/call", 0) + task["requests"].get("tasks/get", 0)
    blocking_requests = blocking["requests"].get("tools/call", 0)
    polls = [seen["pollIntervalMs"] for seen in task["seen"]]
    print(
        f"\nround trips over stdio (video of about 4 s): one task = {task_requests} requests "
        f"({json.dumps(task['requests'])}; pollIntervalMs {polls}; {task['elapsedMs']} ms to settle); "
        f"one blocking call = {blocking_requests} request ({json.dumps(blocking['requests'])}; "
        f"{blocking['elapsedMs']} ms)"
    )
    assert blocking_requests == 1
    assert task_requests >= 2
    assert sandbox.state.stats()["creates"] == 2
