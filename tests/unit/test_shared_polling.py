"""One poller per generation id: concurrent waits on one id share one polling loop and all get the result."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.models import Generation, VideoRequest
from pixverse_mcp.polling import PollingPolicy
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox
from tests.conftest import FAST_POLL_SCALE, server_env, stdio_client

pytestmark = pytest.mark.anyio


def _client(sandbox: RunningSandbox) -> PixVerseClient:
    policy = PollingPolicy(time_scale=float(FAST_POLL_SCALE))
    return PixVerseClient(api_key=SANDBOX_API_KEY, base_url=sandbox.url, polling_policy=policy)


async def _status_requests_for_waiters(sandbox: RunningSandbox, waiters: int) -> tuple[int, list[Generation]]:
    async with _client(sandbox) as client:
        generation = await client.create(VideoRequest(prompt=f"shared by {waiters}"))
        before = sandbox.state.stats()["status_requests"]
        results: list[Generation] = []

        async def wait() -> None:
            results.append(await client.wait(generation.id, timeout=30))

        async with anyio.create_task_group() as group:
            for _ in range(waiters):
                group.start_soon(wait)
    return sandbox.state.stats()["status_requests"] - before, results


@pytest.mark.slow  # real polling at the sandbox's pace: about 3 s
async def test_ten_concurrent_waits_cost_no_more_requests_than_one(sandbox: RunningSandbox) -> None:
    alone, _ = await _status_requests_for_waiters(sandbox, 1)
    shared, results = await _status_requests_for_waiters(sandbox, 10)

    assert len(results) == 10
    assert {result.status.value for result in results} == {"completed"}
    assert len({result.video_url for result in results}) == 1
    # Same schedule, one loop: at most one extra look for the timing of the two runs.
    assert shared <= alone + 1


async def test_a_waiter_that_gives_up_hands_the_polling_to_the_others(sandbox: RunningSandbox) -> None:
    async with _client(sandbox) as client:
        generation = await client.create(VideoRequest(prompt="hand-over"))
        outcomes: dict[str, object] = {}

        async def impatient() -> None:
            try:
                await client.wait(generation.id, timeout=0.2)
            except Exception as exc:
                outcomes["impatient"] = type(exc).__name__

        async def patient() -> None:
            outcomes["patient"] = (await client.wait(generation.id, timeout=30)).status.value

        async with anyio.create_task_group() as group:
            group.start_soon(impatient)
            group.start_soon(patient)

    assert outcomes == {"impatient": "WaitTimeoutError", "patient": "completed"}


@pytest.mark.slow  # real polling at the sandbox's pace: about 3 s
async def test_two_agents_waiting_on_one_id_through_mcp_share_one_poller(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    async with stdio_client(server_env(sandbox, tmp_path)) as client:
        created = await client.call_tool("create_video", {"prompt": "watched twice"})
        generation_id = created.structured_content["generation_id"]  # type: ignore[index]
        results = []

        async def watch() -> None:
            arguments = {"generation_id": generation_id, "wait_seconds": 30}
            results.append(await client.call_tool("get_video_status", arguments))

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            group.start_soon(watch)

    single_waiter = await _status_requests_for_waiters(sandbox, 1)
    assert [result.structured_content["status"] for result in results] == ["completed", "completed"]  # type: ignore[index]
    requests_for_both = sandbox.state.stats()["status_requests"] - single_waiter[0]
    assert requests_for_both <= single_waiter[0] + 1
