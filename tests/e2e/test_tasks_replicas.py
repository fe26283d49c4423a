"""A protocol task cancelled on one replica stays cancelled, even when the replica that runs its wait sees the video
finish afterwards: two real servers over raw stdio on one PostgreSQL, spoken to by hand."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import server_env
from tests.e2e.test_tasks_raw import request, start_task
from tests.postgres_server import RunningPostgres
from tests.stdio_support import RawStdioServer

pytestmark = pytest.mark.anyio


async def test_a_task_cancelled_on_another_replica_stays_cancelled(postgres: RunningPostgres, tmp_path: Path) -> None:
    database = postgres.new_database()
    with RunningSandbox(SandboxConfig(queued_seconds=0.5, generating_seconds=3.0)) as sandbox:
        env_a = server_env(sandbox, tmp_path / "a", PIXVERSE_MCP_DATABASE_URL=database)
        env_b = server_env(sandbox, tmp_path / "b", PIXVERSE_MCP_DATABASE_URL=database)
        async with RawStdioServer.start(env_a) as first, RawStdioServer.start(env_b) as second:
            await request(first, "server/discover", {})
            await request(second, "server/discover", {})
            handle = await start_task(first)  # its wait runs on the first replica
            cancelled = await request(second, "tasks/cancel", {"taskId": handle["taskId"]})
            assert "error" not in cancelled, cancelled
            [generation_id] = sandbox.state.generations
            with anyio.fail_after(30):  # the video finishes; the first replica's wait ends after the cancel
                while time.monotonic() < sandbox.state.generations[generation_id].ready_at + 1.0:
                    await anyio.sleep(0.2)
                await anyio.sleep(1.0)
            seen_first = (await request(first, "tasks/get", {"taskId": handle["taskId"]}))["result"]
            seen_second = (await request(second, "tasks/get", {"taskId": handle["taskId"]}))["result"]

    assert seen_first["status"] == seen_second["status"] == "cancelled"
