"""Money the user controls: a daily spending cap that refuses a create before any request leaves, and an opt-in
confirmation (elicitation) before each paid create, on both protocol eras: through the real server in process
(the SDK's `Client` speaks the handshake era over JSON-RPC streams, the 2026-07-28 era directly). Over Streamable HTTP:
tests/e2e/test_confirmation_over_http.py.

The sandbox charges 840,000 credits ($0.42) for a 5 s 720p video, as the real API's sample answer does.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
import pytest

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import ServeFactory
from tests.stdio_support import call, creates, structured, text_of

pytestmark = pytest.mark.anyio

# Videos take 0.4 s here.
SANDBOX = SandboxConfig(queued_seconds=0.1, generating_seconds=0.3)
ERAS = ("legacy", "2026-07-28")
_numbers = itertools.count()


def prompt(what: str) -> str:
    return f"{what} {next(_numbers)} {time.time_ns()}"


def answering(action: str, asked: list[types.ElicitRequestParams]) -> Callable[..., Awaitable[types.ElicitResult]]:
    """An elicitation callback that records the question and gives `action` ("accept" ticks the box)."""

    async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        if action == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action=action)  # type: ignore[arg-type]

    return answer


async def test_a_one_dollar_cap_refuses_the_third_42_cent_video_before_sending_it(
    sandbox: RunningSandbox, serve: ServeFactory
) -> None:
    async with serve(sandbox, daily_budget_usd=1.00) as served:
        client = served.client
        first = await call(client, "create_video", {"prompt": prompt("a kite")})
        second = await call(client, "create_video", {"prompt": prompt("a kite")})
        third = await call(client, "generate_video_blocking", {"prompt": prompt("a kite")})

    assert structured(first)["cost_usd"] == pytest.approx(0.42)
    assert structured(first)["budget_left_usd"] == pytest.approx(0.58)
    assert structured(second)["budget_left_usd"] == pytest.approx(0.16)
    assert third.is_error
    refused = structured(third)
    assert refused["status"] == "not_created"
    assert refused["generation_id"] is None
    assert "spending cap" in refused["error"]
    assert "$1.00" in refused["error"]
    assert refused["budget_left_usd"] == pytest.approx(0.16)
    assert creates(sandbox) == 2  # the third never left the process


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("action", ["decline", "cancel", "accept"])
async def test_confirmation_over_stdio_creates_only_what_the_user_accepts(
    sandbox: RunningSandbox, serve: ServeFactory, era: str, action: str
) -> None:
    asked: list[types.ElicitRequestParams] = []
    options = {"mode": era, "elicitation_callback": answering(action, asked)}
    async with serve(sandbox, confirm_paid=True, client_options=options) as served:
        result = await call(
            served.client, "generate_video_blocking", {"prompt": prompt("a lantern"), "resolution": "540p"}
        )

    assert len(asked) == 1  # once, whatever the era: the question is the same on every round
    assert "540p" in asked[0].message
    assert "a lantern" in asked[0].message
    assert "$0.28" in asked[0].message  # the price list's 540p: $0.056 a second, 5 s
    if action == "accept":
        assert not result.is_error, text_of(result)
        assert structured(result)["status"] == "completed"
        assert creates(sandbox) == 1
    else:
        assert not result.is_error  # declining is an answer, not a failure
        assert structured(result)["status"] == "not_created"
        assert "declined" in structured(result)["next_step"]
        assert creates(sandbox) == 0


@pytest.mark.parametrize("era", ERAS)
async def test_a_client_that_cannot_be_asked_creates_under_the_cap(
    sandbox: RunningSandbox, serve: ServeFactory, era: str
) -> None:
    # No elicitation callback: no elicitation capability.
    async with serve(sandbox, confirm_paid=True, client_options={"mode": era}) as served:
        result = await call(served.client, "create_video", {"prompt": prompt("a teapot")})

    assert not result.is_error, text_of(result)
    assert creates(sandbox) == 1
