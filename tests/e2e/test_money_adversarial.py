"""The daily cap across real processes: two stdio servers of one user share one SQLite journal and race creates
right at the cap's boundary; the journal's lock makes the check and the record one step, so only what the cap
allows leaves, whichever process asks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env, stdio_client
from tests.stdio_support import structured, text_of

pytestmark = pytest.mark.anyio


async def test_two_processes_on_one_journal_racing_at_the_cap_send_only_what_it_allows(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = server_env(sandbox, tmp_path, PIXVERSE_MCP_DAILY_BUDGET_USD="1.00")  # $0.42 a video: two leave
    results: list[Any] = []
    with anyio.fail_after(180):
        async with stdio_client(env) as first, stdio_client(env) as second:
            await first.call_tool("list_videos", {})
            await second.call_tool("list_videos", {})

            async def create(client: Any, index: int) -> None:
                prompt = f"racing process {index} {time.time_ns()}"
                results.append(await client.call_tool("create_video", {"prompt": prompt}))

            async with anyio.create_task_group() as group:
                for index in range(6):
                    group.start_soon(create, first if index % 2 else second, index)
            account = structured(await first.call_tool("account_status", {}))

    made = [result for result in results if not result.is_error]
    assert sandbox.state.stats()["creates"] == len(made) == 2, [text_of(result) for result in results]
    assert account["spent_today_usd"] == pytest.approx(0.84)
    assert all("spending cap" in text_of(result) for result in results if result.is_error)
