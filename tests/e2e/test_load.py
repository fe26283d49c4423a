"""Load: 200 blocking generations at once through one real server (`python -m pixverse_mcp` over stdio).

Every call must come back completed with its own video, and the sandbox must have seen exactly one create per call:
no call lost, none crossed with another, none sent twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from pixverse_mcp.models import GenerationStatus
from pixverse_mcp.sandbox import RunningSandbox
from pixverse_mcp.storage.sqlite import SqliteStorage
from tests.conftest import server_env, stdio_client
from tests.stdio_support import text_of

pytestmark = pytest.mark.anyio

CONCURRENT_CALLS = 200
# Generous: the whole test normally takes a few seconds; this only stops a hang from stalling the suite.
LOAD_LIMIT_SECONDS = 120.0


async def test_200_concurrent_blocking_generations_each_complete_with_their_own_video_and_one_create_each(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    results: dict[int, CallToolResult] = {}

    async def generate(client: Client, number: int) -> None:
        # Distinct prompts: identical ones would (rightly) re-attach to one generation instead of creating 200.
        arguments: dict[str, Any] = {"prompt": f"load test video number {number}: a paper boat", "timeout_seconds": 60}
        results[number] = await client.call_tool("generate_video_blocking", arguments)

    async with stdio_client(server_env(sandbox, tmp_path, PIXVERSE_MCP_LOG_LEVEL="WARNING")) as client:
        with anyio.fail_after(LOAD_LIMIT_SECONDS):
            async with anyio.create_task_group() as group:
                for number in range(CONCURRENT_CALLS):
                    group.start_soon(generate, client, number)

    assert len(results) == CONCURRENT_CALLS
    generation_ids = set()
    for number, result in results.items():
        assert not result.is_error, f"call {number}: {text_of(result)}"
        content = result.structured_content
        assert content is not None
        assert content["status"] == "completed", f"call {number}: {text_of(result)}"
        assert content["reattached"] is False
        generation_id = content["generation_id"]
        # Its own video: the URL the sandbox serves for this very generation, and the prompt this call sent.
        assert content["video_url"] == f"{sandbox.url}/_sandbox/videos/{generation_id.split(':', 1)[0]}.mp4"
        assert sandbox.state.generations[generation_id].body["prompt"].startswith(f"load test video number {number}:")
        generation_ids.add(generation_id)
    assert len(generation_ids) == CONCURRENT_CALLS
    stats = sandbox.state.stats()
    assert stats["creates"] == stats["accepted"] == CONCURRENT_CALLS
    assert stats["rejected"] == 0
    # Nothing lost: every one of them is journaled, as completed.
    journal = SqliteStorage(tmp_path / "state" / "journal.sqlite3")
    try:
        entries = await journal.recent(limit=CONCURRENT_CALLS * 2)
    finally:
        await journal.close()
    assert {entry.generation_id for entry in entries} == generation_ids
    assert {entry.status for entry in entries} == {GenerationStatus.COMPLETED}
