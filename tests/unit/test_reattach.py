"""Retries are free (issue 3): a blocking call identical to one still running re-attaches to it instead of paying
for a second video; `force_new` opts out; a finished generation is never re-used; identical calls at the same time
share one generation. Counted as create requests (POSTs) reaching the sandbox.

The real server in process with the SDK's `Client`, against a sandbox whose videos take 1.8 s, so that a call with
`timeout_seconds: 1` (the least a call may ask for) ends while its video is still running.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.stdio_support import HOST_READ_TIMEOUT_SECONDS, call, creates, structured, text_of

pytestmark = pytest.mark.anyio

SANDBOX = SandboxConfig(queued_seconds=0.2, generating_seconds=1.6)
CLIENT_OPTIONS = {"read_timeout_seconds": HOST_READ_TIMEOUT_SECONDS}


async def generate(client: Client, arguments: dict[str, Any]) -> CallToolResult:
    result = await call(client, "generate_video_blocking", arguments)
    assert not result.is_error, text_of(result)
    return result


async def test_retrying_an_unfinished_call_reattaches_until_the_video_is_done(
    client: Client, shared_sandbox: RunningSandbox
) -> None:
    arguments = {"prompt": "retry: a fishing boat leaving the harbour", "resolution": "540p", "timeout_seconds": 1}
    before = creates(shared_sandbox)

    first = structured(await generate(client, arguments))
    assert first["done"] is False, "the first call must end before its video (this test needs that)"
    assert first["reattached"] is False

    retries = []
    for _ in range(10):  # the host "retries" the very same call after each early end
        retry = await generate(client, arguments)
        retries.append(retry)
        if structured(retry)["done"]:
            break

    for retry in retries:
        data = structured(retry)
        assert data["generation_id"] == first["generation_id"]
        assert data["reattached"] is True
        assert "Re-attached" in text_of(retry)
    assert structured(retries[-1])["status"] == "completed"
    assert creates(shared_sandbox) - before == 1


async def test_force_new_starts_a_second_generation(client: Client, shared_sandbox: RunningSandbox) -> None:
    arguments = {"prompt": "force: a fishing boat leaving the harbour", "timeout_seconds": 1}
    before = creates(shared_sandbox)

    first = structured(await generate(client, arguments))
    assert first["done"] is False
    second = structured(await generate(client, {**arguments, "force_new": True}))

    assert second["generation_id"] != first["generation_id"]
    assert second["reattached"] is False
    assert creates(shared_sandbox) - before == 2


async def test_a_finished_generation_is_never_reused(client: Client, shared_sandbox: RunningSandbox) -> None:
    arguments = {"prompt": "again: a fishing boat leaving the harbour"}
    before = creates(shared_sandbox)

    first = structured(await generate(client, arguments))
    assert first["status"] == "completed"
    second = structured(await generate(client, {**arguments, "timeout_seconds": 1}))

    assert second["generation_id"] != first["generation_id"]
    assert second["reattached"] is False
    assert creates(shared_sandbox) - before == 2


async def test_identical_calls_at_the_same_time_share_one_generation(
    client: Client, shared_sandbox: RunningSandbox
) -> None:
    arguments = {"prompt": "together: a fishing boat leaving the harbour", "style": "clay", "seed": 7}
    before = creates(shared_sandbox)
    results: list[CallToolResult] = []

    async def one_call() -> None:
        results.append(await generate(client, arguments))

    async with anyio.create_task_group() as group:
        group.start_soon(one_call)
        group.start_soon(one_call)

    data = [structured(result) for result in results]
    assert len(data) == 2
    assert data[0]["generation_id"] == data[1]["generation_id"]
    assert sorted(item["reattached"] for item in data) == [False, True]
    assert [item["status"] for item in data] == ["completed", "completed"]
    assert creates(shared_sandbox) - before == 1
