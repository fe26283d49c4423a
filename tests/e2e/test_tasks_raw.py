"""The Tasks extension, spoken by hand over the real server's stdio: a task survives the server being killed, and the
first `tasks/get` of a new server on the same state folder resumes its wait. (The rest of the extension is tested in
process: tests/unit/test_tasks.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import server_env
from tests.stdio_support import RawStdioServer
from tests.unit.test_tasks import poll_until_done, request, start_task

pytestmark = pytest.mark.anyio

# A generation that takes a few seconds: long enough to kill the server while its task works.
SANDBOX = SandboxConfig(queued_seconds=1.0, generating_seconds=3.0)


async def test_a_task_survives_a_restart_and_the_first_tasks_get_resumes_its_wait(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = server_env(sandbox, tmp_path)
    async with RawStdioServer.start(env) as first:
        await request(first, "server/discover", {})
        handle = await start_task(first)
        first.process.kill()  # no goodbye: the task is in storage, the wait is gone with the process

    async with RawStdioServer.start(env) as second:
        await request(second, "server/discover", {})
        done, _ = await poll_until_done(second, handle["taskId"])

    assert done["status"] == "completed"
    assert done["result"]["structuredContent"]["status"] == "completed"
    assert sandbox.state.stats()["creates"] == 1
