"""Long waits (issues 3 and 8): a video can take longer than a host lets a call run (about 60 s). No call waits past
its budget; a video not ready by then comes back as a normal result with its id and the call to continue with,
and blocking waits keep the client informed with a progress heartbeat.

The real server in process with the SDK's `Client` (read timeout 60 s, as independent hosts use), against a
sandbox whose videos take longer than the server's (small) wait budget.
"""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import ServeFactory
from tests.stdio_support import (
    HOST_READ_TIMEOUT_SECONDS,
    ProgressRecorder,
    call,
    creates,
    longest_gap,
    strictly_increasing,
    structured,
    text_of,
)

pytestmark = pytest.mark.anyio

# The sandbox's videos take 2.3 s: longer than the small budget below, short enough for a test.
SANDBOX = SandboxConfig(queued_seconds=0.3, generating_seconds=2.0)
SMALL_BUDGET_SECONDS = 1
ROOMY_BUDGET_SECONDS = 20
MAX_WAIT_SECONDS = 20
# How far past its own limit a call may answer (the server's measure), generously.
SLACK_SECONDS = 2.0
# Progress must arrive at least every 5 s while a blocking call waits; allow generous scheduling slack.
HEARTBEAT_BOUND_SECONDS = 7.0
# The module's server (`client`): blocking calls wait 1 s by default, and at most 20 s when asked.
SERVER_SETTINGS = {"wait_budget_seconds": SMALL_BUDGET_SECONDS, "max_wait_seconds": MAX_WAIT_SECONDS}
CLIENT_OPTIONS = {"read_timeout_seconds": HOST_READ_TIMEOUT_SECONDS}


def continue_call(generation_id: str, wait_seconds: float) -> str:
    return f'get_video_status(generation_id="{generation_id}", wait_seconds={wait_seconds:g})'


async def test_blocking_call_past_its_budget_returns_the_id_and_the_call_to_continue_with(
    client: Client, shared_sandbox: RunningSandbox
) -> None:
    before = creates(shared_sandbox)

    result = await call(client, "generate_video_blocking", {"prompt": "a glacier calving into the sea"})

    assert not result.is_error, text_of(result)
    data = structured(result)
    generation_id = data["generation_id"]
    assert generation_id in shared_sandbox.state.generations
    assert data["done"] is False
    assert data["status"] in ("queued", "generating")
    assert data["video_url"] is None
    assert data["elapsed_seconds"] is not None
    assert 0 < data["elapsed_seconds"] <= SMALL_BUDGET_SECONDS + SLACK_SECONDS
    assert continue_call(generation_id, SMALL_BUDGET_SECONDS) in data["next_step"]
    assert generation_id in text_of(result)
    usage = data["usage"]
    assert usage, "the cost reported by the create response is part of every result"

    # Follow the advice, each call within the budget, until the video is done.
    for _ in range(30):
        status = await call(
            client, "get_video_status", {"generation_id": generation_id, "wait_seconds": SMALL_BUDGET_SECONDS}
        )
        assert not status.is_error, text_of(status)
        data = structured(status)
        assert data["generation_id"] == generation_id
        assert data["elapsed_seconds"] <= SMALL_BUDGET_SECONDS + SLACK_SECONDS
        if data["done"]:
            break
        assert continue_call(generation_id, SMALL_BUDGET_SECONDS) in data["next_step"]
    assert data["status"] == "completed"
    assert data["video_url"]
    assert data["usage"] == usage
    assert creates(shared_sandbox) - before == 1, "continuing must never create the video again"


async def test_timeout_seconds_shorter_than_the_budget_is_honoured(
    shared_sandbox: RunningSandbox, serve: ServeFactory
) -> None:
    roomy = {"wait_budget_seconds": ROOMY_BUDGET_SECONDS, "max_wait_seconds": MAX_WAIT_SECONDS}
    async with serve(shared_sandbox, client_options=CLIENT_OPTIONS, **roomy) as served:
        result = await call(
            served.client, "generate_video_blocking", {"prompt": "a kite above a windy beach", "timeout_seconds": 1}
        )

    assert not result.is_error, text_of(result)
    data = structured(result)
    # The video takes 2.3 s and the budget is 20 s: only the 1 s asked for can have ended this call early.
    assert data["done"] is False
    assert data["elapsed_seconds"] < ROOMY_BUDGET_SECONDS
    assert "get_video_status" in data["next_step"]


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("generate_video_blocking", {"prompt": "a kite", "timeout_seconds": MAX_WAIT_SECONDS + 1}, "timeout_seconds"),
        ("get_video_status", {"generation_id": "some-id", "wait_seconds": MAX_WAIT_SECONDS + 1}, "wait_seconds"),
    ],
)
async def test_a_wait_above_the_maximum_is_refused_without_any_request(
    client: Client, shared_sandbox: RunningSandbox, tool: str, arguments: dict[str, object], field: str
) -> None:
    before = shared_sandbox.state.stats()

    result = await call(client, tool, arguments)

    assert result.is_error is True
    message = text_of(result)
    assert field in message
    assert str(MAX_WAIT_SECONDS) in message
    assert shared_sandbox.state.stats() == before


@pytest.mark.slow  # 11 s of real time: the heartbeat's own pace
async def test_a_long_wait_sends_progress_at_least_every_five_seconds(
    shared_sandbox: RunningSandbox, serve: ServeFactory
) -> None:
    # The real polling schedule (no time scale): the first status request is due 14 s in (half of the 28 s at which
    # 720p completions start), so for these 11 s only the heartbeat can keep notifications within 5 s of each other.
    recorder = ProgressRecorder()
    async with serve(shared_sandbox, poll_time_scale=1.0, client_options=CLIENT_OPTIONS) as served:
        started = anyio.current_time()
        result = await call(
            served.client,
            "generate_video_blocking",
            {"prompt": "a lighthouse beam sweeping the fog [sandbox:fault=never_completes]", "timeout_seconds": 11},
            progress_callback=recorder,
        )
        ended = anyio.current_time()

    assert not result.is_error, text_of(result)
    assert structured(result)["done"] is False
    moments = [started, *(event.at for event in recorder.events), ended]
    assert len(recorder.events) >= 3, recorder.messages  # the create's answer at once, then heartbeats
    silence = longest_gap(moments)
    assert silence <= HEARTBEAT_BOUND_SECONDS, f"a silence of {silence:.1f} s: {recorder.messages}"
    values = [event.progress for event in recorder.events]
    assert strictly_increasing(values), values
