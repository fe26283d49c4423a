"""Graceful shutdown over HTTP: on SIGTERM the server stops accepting calls, an in-flight blocking call ends with a
normal result carrying its (journaled) generation id, and the process exits within seconds.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp_types import CallToolResult

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env
from tests.http_server import HTTP_MODES, HttpServer, Mode, sdk_client, served

pytestmark = pytest.mark.anyio

TOKEN = "shutdown-test-token"
SLOW_PROMPT = "a glacier calving into the sea [sandbox:fault=never_completes]"
# Generous protocol bounds, not performance targets.
CALL_RETURNS_WITHIN_SECONDS = 8.0
PROCESS_EXITS_WITHIN_SECONDS = 10.0
CALL_STARTS_WITHIN_SECONDS = 20.0


async def wait_for_exit(server: HttpServer, deadline: float) -> int | None:
    """The process's exit code once it has exited, or None if it is still running at `deadline` (monotonic)."""
    while server.process.poll() is None and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    return server.process.poll()


async def refuses_connections(server: HttpServer, deadline: float) -> bool:
    """Whether a fresh connection to the server is refused before `deadline` (monotonic)."""
    async with httpx2.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            try:
                await http.get(server.base_url + "/healthz", headers={"Connection": "close"})
            except httpx2.TransportError:
                return True
            await anyio.sleep(0.05)
    return False


@pytest.mark.parametrize("mode", HTTP_MODES, ids=[mode.id for mode in HTTP_MODES])
async def test_sigterm_ends_in_flight_call_with_its_generation_id_and_exits(
    sandbox: RunningSandbox, tmp_path: Path, mode: Mode
) -> None:
    env = server_env(sandbox, tmp_path, PIXVERSE_MCP_AUTH_TOKEN=TOKEN)
    results: list[CallToolResult] = []
    first_progress = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        first_progress.set()

    with served(env, tmp_path, mode) as server:
        async with (
            sdk_client(server, token=TOKEN, server_may_be_gone=True) as client,
            anyio.create_task_group() as tasks,
        ):

            async def call() -> None:
                arguments = {"prompt": SLOW_PROMPT, "timeout_seconds": 30}
                result = await client.call_tool("generate_video_blocking", arguments, progress_callback=on_progress)
                results.append(result)

            tasks.start_soon(call)
            with anyio.fail_after(CALL_STARTS_WITHIN_SECONDS):
                if mode.stateless:
                    # Stateless JSON responses carry no progress: wait until the server polls the generation.
                    while sandbox.state.stats()["status_requests"] < 1:
                        await anyio.sleep(0.02)
                else:
                    await first_progress.wait()
            assert not results, "the call ended before the shutdown"

            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            with anyio.fail_after(CALL_RETURNS_WITHIN_SECONDS):
                while not results:
                    await anyio.sleep(0.02)
            refused = await refuses_connections(server, signalled + PROCESS_EXITS_WITHIN_SECONDS)
            returncode = await wait_for_exit(server, signalled + PROCESS_EXITS_WITHIN_SECONDS)
            tasks.cancel_scope.cancel()

    assert returncode is not None, "the server was still running 10 s after SIGTERM"
    # uvicorn re-raises the captured signal once shut down, so a clean exit reads as 0 or "ended by SIGTERM".
    assert returncode in (0, -signal.SIGTERM), server.log()
    assert "Application shutdown complete" in server.log()
    assert refused, "the server still accepted connections after SIGTERM"

    [result] = results
    assert not result.is_error, result.content
    state = result.structured_content
    assert state is not None
    generation_id = state["generation_id"]
    assert generation_id
    assert state["done"] is False
    assert state["status"] in ("queued", "generating")
    assert generation_id in state["next_step"]
    assert sandbox.state.stats()["creates"] == 1

    with sqlite3.connect(tmp_path / "state" / "journal.sqlite3") as journal:
        rows = journal.execute("SELECT id, status FROM generations").fetchall()
    assert [row[0] for row in rows] == [generation_id]
