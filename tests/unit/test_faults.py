"""Every upstream fault, over real HTTP, through the real server (in process, with the SDK's `Client`).

Each fault of the sandbox (its docstring has the table) is thrown at the tools that talk to the API: the status tool
(`get_video_status`, one look and a wait), the blocking tool (`generate_video_blocking`, on its create and on its
status polls) and, for the create path, `create_video`. Each test says what the agent must see and counts what
reached the sandbox: a status request is retried when that is safe, a create is never sent twice unless it provably
never arrived or was refused with 429, and no odd answer crashes the server or the wait loop.

One server and one sandbox serve the module; each test starts from zeroed sandbox counters and its own prompt
(identical prompts would re-attach to an earlier generation instead of creating one).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from _pytest.mark.structures import ParameterSet
from mcp import Client
from mcp_types import CallToolResult
from pydantic import SecretStr

from pixverse_mcp._retry import RetryPolicy
from pixverse_mcp.sandbox import CREATE_FAULTS as CREATE_ONLY_FAULTS
from pixverse_mcp.sandbox import FAULTS, SANDBOX_API_KEY, RunningSandbox, SandboxConfig, SandboxState
from tests.conftest import ServeFactory
from tests.stdio_support import structured, text_of

pytestmark = pytest.mark.anyio

# A generation takes 0.15 s here; the polling schedule is scaled to match (0.15 s / 35 s). The 429 and 503 faults
# ask for no wait (`Retry-After: 0`) except where a test raises it: honouring it is the retry policy's own tests'.
# Request log rows appear after 0.3 s (not 2 s): a lost create is settled at the same pace.
SANDBOX = SandboxConfig(
    queued_seconds=0.05, generating_seconds=0.1, slow_seconds=0.2, retry_after_seconds=0, logs_delay_seconds=0.3
)
POLL_SCALE = 0.005
# Short enough that a `slow` fault can outlast it, long enough for any normal answer of a local sandbox.
READ_TIMEOUT_SECONDS = 0.5
BEYOND_READ_TIMEOUT = 0.9
# No single test here may hang the suite.
CALL_LIMIT_SECONDS = 30.0
# One server for the module (`client`).
SERVER_SETTINGS = {"poll_time_scale": POLL_SCALE, "read_timeout_seconds": READ_TIMEOUT_SECONDS}
CLIENT_OPTIONS = {"read_timeout_seconds": CALL_LIMIT_SECONDS}

PENDING = {"queued", "generating", "unknown"}
# What the SDK answers when a tool raised something it did not expect: no use to an agent.
GENERIC_CRASH = re.compile(r"^Error executing tool \w+\s*$")

RETRIED_RESPONSE_FAULTS = ("gateway_502", "server_error", "unavailable", "rate_limited", "rate_limited_date", "reset")
REFUSAL_FAULTS = {"unauthorized": "AIMLAPI_API_KEY", "no_credits": "credits"}
ODD_BODY_FAULTS = ("html_200", "incomplete_json")
# A create answered like this may have been accepted: it must not be sent again.
CREATE_OUTCOME_UNKNOWN_FAULTS = ("gateway_502", "server_error", "unavailable", "html_200", "incomplete_json", "reset")
CREATE_FAULTS = ("accepted_500", "accepted_reset")

_prompt_numbers = itertools.count(1)


@pytest.fixture
async def upstream(shared_sandbox: RunningSandbox, client: Client) -> AsyncIterator[SandboxState]:
    """The sandbox's state with zeroed counters; after the test, the server must still answer."""
    state = shared_sandbox.state
    state.reset()
    state.config.retry_after_seconds = SANDBOX.retry_after_seconds
    yield state
    state.clear_faults()
    listing = await client.call_tool("list_videos", {"limit": 1})
    assert not listing.is_error, "the server stopped answering after the fault"


def new_prompt(what: str) -> str:
    """A prompt no earlier test used (so a blocking call creates instead of re-attaching)."""
    return f"fault test {next(_prompt_numbers)} ({time.time_ns()}): {what}"


def video_url_for(sandbox: RunningSandbox, generation_id: str) -> str:
    """Where the sandbox serves the video of `generation_id`."""
    return f"{sandbox.url}/_sandbox/videos/{generation_id.split(':', 1)[0]}.mp4"


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    with anyio.fail_after(CALL_LIMIT_SECONDS):
        return await client.call_tool(tool, arguments)


async def start(client: Client, prompt: str) -> str:
    """Create a generation with `create_video` and return its id."""
    result = await call(client, "create_video", {"prompt": prompt})
    assert not result.is_error, text_of(result)
    generation_id: str = structured(result)["generation_id"]
    return generation_id


def assert_completed(result: CallToolResult, sandbox: RunningSandbox, generation_id: str | None = None) -> None:
    """Completed, with the video the sandbox serves for this very generation."""
    assert not result.is_error, text_of(result)
    content = structured(result)
    assert content["status"] == "completed"
    assert content["done"] is True
    if generation_id is not None:
        assert content["generation_id"] == generation_id
    assert content["video_url"] == video_url_for(sandbox, content["generation_id"])


def assert_clear_error(result: CallToolResult, *phrases: str) -> str:
    """An error an agent can act on: flagged, not the SDK's bare crash line, and saying what happened."""
    assert result.is_error
    message = text_of(result)
    assert not GENERIC_CRASH.match(message), message
    assert "Traceback" not in message
    for phrase in phrases:
        assert phrase in message, message
    return message


def assert_still_running_result(result: CallToolResult, generation_id: str) -> None:
    """A normal result that says the video is not ready, with the id and the exact call to continue with."""
    assert not result.is_error, text_of(result)
    content = structured(result)
    assert content["generation_id"] == generation_id
    assert content["done"] is False
    assert content["status"] in PENDING
    assert content["video_url"] is None
    assert f'get_video_status(generation_id="{generation_id}"' in content["next_step"]


def assert_lookup_failed(result: CallToolResult, generation_id: str, *phrases: str) -> None:
    """A status that could not be read: an error that keeps the id and says how to check again later."""
    message = assert_clear_error(result, *phrases)
    assert generation_id in message
    assert structured(result)["generation_id"] == generation_id
    assert "get_video_status" in message


def assert_create_outcome_unknown(result: CallToolResult) -> None:
    """The create may have been accepted: say so, and that it is being settled (and how to continue), instead of
    sending it again."""
    message = assert_clear_error(result, "accepted", "request log")
    assert re.search(r"may (or may not )?have been accepted|may already be generating", message), message
    assert "re-attaches" in structured(result)["next_step"]


def assert_safe(result: CallToolResult, generation_id: str) -> None:
    """An odd answer became either a clear error that keeps the id, or a still-pending state; never success."""
    if result.is_error:
        assert_lookup_failed(result, generation_id)
    else:
        content = structured(result)
        assert content["generation_id"] == generation_id
        assert content["status"] in PENDING
        assert content["done"] is False
        assert content["video_url"] is None


# --- get_video_status: one look, with one faulted status response ------------------------------------------------


@pytest.mark.parametrize("fault", RETRIED_RESPONSE_FAULTS)
async def test_status_look_retries_a_transient_fault_and_answers(
    client: Client, upstream: SandboxState, fault: str
) -> None:
    generation_id = await start(client, new_prompt(fault))
    upstream.inject(fault, method="GET", count=1)

    result = await call(client, "get_video_status", {"generation_id": generation_id})

    assert not result.is_error, text_of(result)
    content = structured(result)
    assert content["generation_id"] == generation_id
    assert content["status"] in {"queued", "generating", "completed"}
    assert upstream.stats()["status_requests"] == 2
    assert upstream.stats()["creates"] == 1


async def test_status_look_survives_a_slow_answer_within_the_read_timeout(
    client: Client, upstream: SandboxState
) -> None:
    generation_id = await start(client, new_prompt("slow"))
    upstream.inject("slow", method="GET", count=1, seconds=0.2)

    result = await call(client, "get_video_status", {"generation_id": generation_id})

    assert not result.is_error, text_of(result)
    assert structured(result)["generation_id"] == generation_id
    assert upstream.stats()["status_requests"] == 1


async def test_status_look_retries_after_a_read_timeout(client: Client, upstream: SandboxState) -> None:
    generation_id = await start(client, new_prompt("slow beyond the read timeout"))
    upstream.inject("slow", method="GET", count=1, seconds=BEYOND_READ_TIMEOUT)

    result = await call(client, "get_video_status", {"generation_id": generation_id})

    assert not result.is_error, text_of(result)
    assert structured(result)["generation_id"] == generation_id
    assert upstream.stats()["status_requests"] == 2


@pytest.mark.parametrize(("fault", "phrase"), REFUSAL_FAULTS.items())
async def test_status_look_refused_by_the_api_is_a_clear_error_never_retried(
    client: Client, upstream: SandboxState, fault: str, phrase: str
) -> None:
    generation_id = await start(client, new_prompt(fault))
    upstream.inject(fault, method="GET", count=5)

    result = await call(client, "get_video_status", {"generation_id": generation_id})

    assert_lookup_failed(result, generation_id, phrase)
    assert upstream.stats()["status_requests"] == 1


@pytest.mark.parametrize("fault", ODD_BODY_FAULTS)
async def test_status_look_with_an_odd_body_is_a_clear_error_or_still_pending(
    client: Client, upstream: SandboxState, fault: str
) -> None:
    generation_id = await start(client, new_prompt(fault))
    upstream.inject(fault, method="GET", count=1)

    result = await call(client, "get_video_status", {"generation_id": generation_id})

    assert_safe(result, generation_id)


@pytest.mark.parametrize("fault", ["gateway_502", "reset"])
async def test_status_look_that_keeps_failing_gives_up_with_the_id_and_how_to_check_later(
    client: Client, upstream: SandboxState, fault: str
) -> None:
    generation_id = await start(client, new_prompt(fault))
    upstream.inject(fault, method="GET", count=50)

    result = await call(client, "get_video_status", {"generation_id": generation_id})

    assert_lookup_failed(result, generation_id)
    # Bounded: the policy's attempts, not one request per second until someone gives up.
    assert 2 <= upstream.stats()["status_requests"] <= RetryPolicy().max_attempts


# --- get_video_status: one look at a generation whose status is odd ----------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "raw_status", "error"),
    [
        ("fail", "failed", "error", "Generation failed"),
        ("fail_string", "failed", "failed", "the prompt was rejected"),
        ("unknown_status", "unknown", "paused", None),
        ("never_completes", "generating", "generating", None),
    ],
)
async def test_status_look_reports_the_generation_state_as_the_api_words_it(
    client: Client, upstream: SandboxState, fault: str, status: str, raw_status: str, error: str | None
) -> None:
    generation_id = await start(client, new_prompt(fault))
    upstream.inject(fault, method="GET", count=1)

    result = await call(client, "get_video_status", {"generation_id": generation_id})

    content = structured(result)
    assert content["generation_id"] == generation_id
    assert content["status"] == status
    assert content["raw_status"] == raw_status
    assert content["done"] is (status == "failed")
    assert content["video_url"] is None
    assert result.is_error is (status == "failed")
    if error is not None:
        assert error in content["error"]
        assert error in text_of(result)


async def test_status_look_reads_the_old_succeeded_spelling_as_completed(
    client: Client, upstream: SandboxState, shared_sandbox: RunningSandbox
) -> None:
    generation_id = await start(client, new_prompt("succeeded"))
    upstream.inject("succeeded", method="GET", count=1)

    result = await call(client, "get_video_status", {"generation_id": generation_id})

    assert_completed(result, shared_sandbox, generation_id)
    assert structured(result)["raw_status"] == "succeeded"


async def test_status_look_at_completed_without_a_video_url_is_never_success(
    client: Client, upstream: SandboxState
) -> None:
    generation_id = await start(client, new_prompt("no video url"))
    upstream.inject("no_video_url", method="GET", count=1)

    result = await call(client, "get_video_status", {"generation_id": generation_id})

    assert_safe(result, generation_id)
    if result.is_error:
        assert "video URL" in text_of(result)


# --- get_video_status: waiting, with faulted status responses -----------------------------------------------------


@pytest.mark.parametrize("fault", [*RETRIED_RESPONSE_FAULTS, *ODD_BODY_FAULTS, "slow"])
async def test_status_wait_rides_out_faulted_status_responses_to_the_video(
    client: Client, upstream: SandboxState, shared_sandbox: RunningSandbox, fault: str
) -> None:
    generation_id = await start(client, new_prompt(f"[sandbox:fault={fault}:2]"))

    result = await call(client, "get_video_status", {"generation_id": generation_id, "wait_seconds": 15})

    assert_completed(result, shared_sandbox, generation_id)
    assert upstream.stats()["creates"] == 1


@pytest.mark.parametrize(("fault", "phrase"), REFUSAL_FAULTS.items())
async def test_status_wait_ends_at_a_refusal_with_the_id(
    client: Client, upstream: SandboxState, fault: str, phrase: str
) -> None:
    generation_id = await start(client, new_prompt(f"[sandbox:fault={fault}]"))

    result = await call(client, "get_video_status", {"generation_id": generation_id, "wait_seconds": 15})

    assert_lookup_failed(result, generation_id, phrase)
    assert upstream.stats()["status_requests"] == 1


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        ("fail", "failed", "Generation failed"),
        ("fail_string", "failed", "the prompt was rejected"),
        ("succeeded", "completed", None),
        ("unknown_status", "completed", None),
    ],
)
async def test_status_wait_follows_the_generation_to_its_end(
    client: Client,
    upstream: SandboxState,
    shared_sandbox: RunningSandbox,
    fault: str,
    status: str,
    error: str | None,
) -> None:
    generation_id = await start(client, new_prompt(f"[sandbox:fault={fault}]"))

    result = await call(client, "get_video_status", {"generation_id": generation_id, "wait_seconds": 15})

    if status == "completed":
        assert_completed(result, shared_sandbox, generation_id)
    else:
        assert result.is_error
        content = structured(result)
        assert (content["generation_id"], content["status"], content["done"]) == (generation_id, "failed", True)
        assert error is not None
        assert error in content["error"]


@pytest.mark.parametrize("fault", ["never_completes", "no_video_url", "html_200", "incomplete_json"])
async def test_status_wait_that_never_sees_a_usable_end_returns_the_id_to_continue_with(
    client: Client, upstream: SandboxState, fault: str
) -> None:
    generation_id = await start(client, new_prompt(f"[sandbox:fault={fault}]"))

    result = await call(client, "get_video_status", {"generation_id": generation_id, "wait_seconds": 0.5})

    assert_still_running_result(result, generation_id)
    assert upstream.stats()["creates"] == 1


# --- generate_video_blocking: faulted status polls ---------------------------------------------------------------


@pytest.mark.parametrize("fault", [*RETRIED_RESPONSE_FAULTS, *ODD_BODY_FAULTS, "slow"])
async def test_blocking_rides_out_faulted_status_polls_without_creating_twice(
    client: Client, upstream: SandboxState, shared_sandbox: RunningSandbox, fault: str
) -> None:
    result = await call(
        client, "generate_video_blocking", {"prompt": new_prompt(f"[sandbox:fault={fault}:2]"), "timeout_seconds": 15}
    )

    assert_completed(result, shared_sandbox)
    assert upstream.stats()["creates"] == upstream.stats()["accepted"] == 1


async def test_blocking_rides_out_a_status_poll_beyond_the_read_timeout(
    client: Client, upstream: SandboxState, shared_sandbox: RunningSandbox
) -> None:
    # The create goes through first; then the next status request outlasts the read timeout.
    upstream.inject("slow", method="POST", count=1, seconds=0)
    upstream.inject("slow", method="GET", count=1, seconds=BEYOND_READ_TIMEOUT)

    result = await call(client, "generate_video_blocking", {"prompt": new_prompt("slow poll"), "timeout_seconds": 15})

    assert_completed(result, shared_sandbox)
    assert upstream.stats()["creates"] == 1


@pytest.mark.parametrize(("fault", "phrase"), REFUSAL_FAULTS.items())
async def test_blocking_refused_while_polling_returns_the_id_and_how_to_continue(
    client: Client, upstream: SandboxState, fault: str, phrase: str
) -> None:
    result = await call(
        client, "generate_video_blocking", {"prompt": new_prompt(f"[sandbox:fault={fault}]"), "timeout_seconds": 15}
    )

    generation_id = structured(result).get("generation_id")
    assert isinstance(generation_id, str)
    assert_lookup_failed(result, generation_id, phrase)
    assert upstream.stats()["creates"] == 1
    assert upstream.stats()["status_requests"] == 1
    # Nothing lost: the paid generation is in the journal.
    listing = await call(client, "list_videos", {"limit": 100})
    assert generation_id in {video["generation_id"] for video in structured(listing)["videos"]}


@pytest.mark.parametrize("fault", ["gateway_502", "html_200", "incomplete_json", "never_completes", "no_video_url"])
async def test_blocking_that_never_gets_a_usable_answer_returns_the_id_to_continue_with(
    client: Client, upstream: SandboxState, fault: str
) -> None:
    result = await call(
        client, "generate_video_blocking", {"prompt": new_prompt(f"[sandbox:fault={fault}]"), "timeout_seconds": 1}
    )

    generation_id = structured(result)["generation_id"]
    assert_still_running_result(result, generation_id)
    assert upstream.stats()["creates"] == upstream.stats()["accepted"] == 1


@pytest.mark.parametrize(
    ("fault", "error"), [("fail", "Generation failed"), ("fail_string", "the prompt was rejected")]
)
async def test_blocking_reports_a_failed_generation_as_an_error_with_its_id(
    client: Client, upstream: SandboxState, fault: str, error: str
) -> None:
    result = await call(
        client, "generate_video_blocking", {"prompt": new_prompt(f"[sandbox:fault={fault}]"), "timeout_seconds": 15}
    )

    assert result.is_error
    content = structured(result)
    assert content["status"] == "failed"
    assert content["done"] is True
    assert error in content["error"]
    assert content["generation_id"] in text_of(result)
    assert upstream.stats()["creates"] == 1


@pytest.mark.parametrize("fault", ["succeeded", "unknown_status"])
async def test_blocking_completes_through_odd_status_spellings(
    client: Client, upstream: SandboxState, shared_sandbox: RunningSandbox, fault: str
) -> None:
    result = await call(
        client, "generate_video_blocking", {"prompt": new_prompt(f"[sandbox:fault={fault}]"), "timeout_seconds": 15}
    )

    assert_completed(result, shared_sandbox)
    assert upstream.stats()["creates"] == 1


# --- the create path: generate_video_blocking and create_video with a faulted create -----------------------------

CREATING_TOOLS = ("generate_video_blocking", "create_video")
# The blocking call waits out its whole timeout for a create that may have been accepted but is not in the request
# log: real time, so outside the fast loop.
WAITING_OUT_ITS_TIMEOUT = (pytest.param("generate_video_blocking", marks=pytest.mark.slow), "create_video")


def creating_arguments(tool: str, prompt: str) -> dict[str, Any]:
    return {"prompt": prompt, "timeout_seconds": 15} if tool == "generate_video_blocking" else {"prompt": prompt}


@pytest.mark.parametrize("tool", WAITING_OUT_ITS_TIMEOUT)
@pytest.mark.parametrize("fault", CREATE_OUTCOME_UNKNOWN_FAULTS)
async def test_create_answered_ambiguously_is_never_sent_again_and_says_how_to_check(
    client: Client, upstream: SandboxState, tool: str, fault: str
) -> None:
    upstream.inject(fault, method="POST", count=5)

    result = await call(client, tool, creating_arguments(tool, new_prompt(fault)))

    assert_create_outcome_unknown(result)
    assert upstream.stats()["creates"] == 1


@pytest.mark.parametrize("tool", CREATING_TOOLS)
@pytest.mark.parametrize("fault", CREATE_FAULTS)
async def test_create_accepted_but_answered_badly_is_never_sent_again(
    client: Client, upstream: SandboxState, tool: str, fault: str
) -> None:
    upstream.inject(fault, method="POST", count=5)

    result = await call(client, tool, creating_arguments(tool, new_prompt(fault)))

    if tool == "generate_video_blocking":
        # The blocking call waits for the settling: the request log has it, so the video is made, once.
        assert structured(result)["status"] == "completed", text_of(result)
    else:
        assert_create_outcome_unknown(result)
    # It was accepted (and is being paid for): exactly once.
    stats = upstream.stats()
    assert (stats["creates"], stats["accepted"]) == (1, 1), upstream.log


@pytest.mark.parametrize("tool", WAITING_OUT_ITS_TIMEOUT)
async def test_create_that_outlasts_the_read_timeout_is_never_sent_again(
    client: Client, upstream: SandboxState, tool: str
) -> None:
    upstream.inject("slow", method="POST", count=5, seconds=BEYOND_READ_TIMEOUT)

    result = await call(client, tool, creating_arguments(tool, new_prompt("slow create")))

    assert_create_outcome_unknown(result)
    # Let the sandbox finish the abandoned request: still no second create.
    await anyio.sleep(BEYOND_READ_TIMEOUT - READ_TIMEOUT_SECONDS + 0.2)
    assert upstream.stats()["creates"] == 1


@pytest.mark.parametrize("fault", ["rate_limited", "rate_limited_date"])
async def test_create_refused_with_429_is_sent_again_after_retry_after_and_completes(
    client: Client, upstream: SandboxState, shared_sandbox: RunningSandbox, fault: str
) -> None:
    upstream.config.retry_after_seconds = 1
    upstream.inject(fault, method="POST", count=1)
    started = anyio.current_time()

    result = await call(client, "generate_video_blocking", {"prompt": new_prompt(fault), "timeout_seconds": 15})

    assert_completed(result, shared_sandbox)
    # Not sooner than the server asked (a lower bound, which a slow machine cannot break).
    assert anyio.current_time() - started >= 0.9
    # The refusal accepted nothing; the second create is the only generation.
    assert upstream.stats()["creates"] == 2
    assert upstream.stats()["accepted"] == 1


@pytest.mark.parametrize("fault", ["rate_limited", "rate_limited_date"])
async def test_create_video_refused_with_429_is_sent_again_and_returns_the_id(
    client: Client, upstream: SandboxState, fault: str
) -> None:
    upstream.inject(fault, method="POST", count=1)

    result = await call(client, "create_video", {"prompt": new_prompt(fault)})

    assert not result.is_error, text_of(result)
    assert structured(result)["generation_id"] in upstream.generations
    assert (upstream.stats()["creates"], upstream.stats()["accepted"]) == (2, 1)


@pytest.mark.parametrize("tool", CREATING_TOOLS)
@pytest.mark.parametrize(("fault", "phrase"), REFUSAL_FAULTS.items())
async def test_create_refused_by_the_api_is_a_clear_error_never_retried(
    client: Client, upstream: SandboxState, tool: str, fault: str, phrase: str
) -> None:
    upstream.inject(fault, method="POST", count=5)

    result = await call(client, tool, creating_arguments(tool, new_prompt(fault)))

    message = assert_clear_error(result, phrase)
    assert "may have been accepted" not in message
    assert upstream.stats()["creates"] == 1
    assert upstream.stats()["accepted"] == 0


async def test_create_that_is_slow_but_within_the_read_timeout_completes_once(
    client: Client, upstream: SandboxState, shared_sandbox: RunningSandbox
) -> None:
    upstream.inject("slow", method="POST", count=1, seconds=0.2)

    result = await call(client, "generate_video_blocking", {"prompt": new_prompt("slow create"), "timeout_seconds": 15})

    assert_completed(result, shared_sandbox)
    assert upstream.stats()["creates"] == upstream.stats()["accepted"] == 1


@pytest.mark.parametrize(("fault", "status"), [("fail", "failed"), ("succeeded", "completed")])
async def test_an_outcome_fault_on_the_create_shapes_the_generation_without_a_second_create(
    client: Client, upstream: SandboxState, fault: str, status: str
) -> None:
    upstream.inject(fault, method="POST", count=1)

    result = await call(client, "generate_video_blocking", {"prompt": new_prompt(fault), "timeout_seconds": 15})

    assert structured(result)["status"] == status
    assert upstream.stats()["creates"] == upstream.stats()["accepted"] == 1


async def test_blocking_keeps_its_deadline_while_status_polls_are_told_to_retry_later(
    client: Client, upstream: SandboxState
) -> None:
    # Every status request answers 429 with a Retry-After far beyond the call's own deadline. A host drops a call
    # that outlives its limit, so the wait must end on time (with the id), not sit out each Retry-After.
    upstream.config.retry_after_seconds = 10
    timeout = 2.0

    with anyio.fail_after(timeout + 5):  # far less than even one Retry-After
        result = await client.call_tool(
            "generate_video_blocking",
            {"prompt": new_prompt("[sandbox:fault=rate_limited]"), "timeout_seconds": timeout},
        )

    assert_still_running_result(result, structured(result)["generation_id"])
    assert upstream.stats()["creates"] == 1


# --- generation ids with unusual characters ----------------------------------------------------------------------

UNUSUAL_IDS = (
    "a b/c?d=e&generation_id=other#frag:pixverse/v5/text-to-video",
    "100%25 done+plus;semi:pixverse/v5/text-to-video",
    "ünïcødé-🎬-视频:pixverse/v5/text-to-video",
    "quote\"'<tag>\\back`tick:pixverse/v5/text-to-video",
)


@pytest.mark.parametrize("unusual_id", UNUSUAL_IDS)
async def test_an_id_with_unusual_characters_reaches_the_api_intact_and_comes_back_intact(
    client: Client, upstream: SandboxState, shared_sandbox: RunningSandbox, unusual_id: str
) -> None:
    generation_id = await start(client, new_prompt("unusual id"))
    # The sandbox now also knows this generation under the unusual id: only an exactly encoded query finds it.
    upstream.generations[unusual_id] = dataclasses.replace(upstream.generations[generation_id], id=unusual_id)
    await anyio.sleep(SANDBOX.queued_seconds + SANDBOX.generating_seconds)

    result = await call(client, "get_video_status", {"generation_id": unusual_id})

    assert_completed(result, shared_sandbox, unusual_id)
    assert upstream.stats()["status_requests"] == 1


@pytest.mark.parametrize("unknown_id", [*UNUSUAL_IDS, "x", "%00", "../../etc/passwd"])
async def test_an_unknown_id_is_a_clear_not_found_error_never_retried(
    client: Client, upstream: SandboxState, unknown_id: str
) -> None:
    result = await call(client, "get_video_status", {"generation_id": unknown_id})

    message = assert_clear_error(result, "no such generation")
    assert unknown_id in message
    assert upstream.stats()["status_requests"] == 1


@pytest.mark.parametrize("blank_id", [" ", "\t", "  \n  "])
async def test_a_blank_id_is_refused_with_a_clear_message_and_nothing_sent(
    client: Client, upstream: SandboxState, blank_id: str
) -> None:
    for wait_seconds in (0, 1):
        result = await call(client, "get_video_status", {"generation_id": blank_id, "wait_seconds": wait_seconds})

        assert_clear_error(result, "generation_id")
    assert upstream.stats()["status_requests"] == 0


# --- creates that provably never reached the API -----------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class RecordingSleep:
    """The client's sleep between attempts: records each delay, runs `before_first` once, and sleeps for real."""

    def __init__(self, before_first: Any = None) -> None:
        self.delays: list[float] = []
        self._before_first = before_first

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._before_first is not None:
            hook, self._before_first = self._before_first, None
            await anyio.to_thread.run_sync(hook)
        await anyio.sleep(min(seconds, 0.05))


def served_on(serve: ServeFactory, base_url: str, sleep: RecordingSleep, *, connect_timeout: float = 2.0) -> Any:
    """The server on `base_url`, over a client whose retry sleeps the test observes."""
    return serve(
        None,
        api_key=SecretStr(SANDBOX_API_KEY),
        base_url=base_url,
        connect_timeout_seconds=connect_timeout,
        read_timeout_seconds=READ_TIMEOUT_SECONDS,
        poll_time_scale=POLL_SCALE,
        sleep=sleep,
    )


async def test_create_refused_at_connect_is_sent_again_once_the_api_listens_and_arrives_once(
    serve: ServeFactory,
) -> None:
    port = free_port()
    started: list[RunningSandbox] = []

    def start_listening() -> None:
        started.append(RunningSandbox(dataclasses.replace(SANDBOX), port=port).start())

    sleep = RecordingSleep(before_first=start_listening)
    try:
        async with served_on(serve, f"http://127.0.0.1:{port}", sleep) as served:
            result = await call(served.client, "create_video", {"prompt": new_prompt("connection refused first")})
    finally:
        for running in started:
            running.stop()

    assert not result.is_error, text_of(result)
    assert len(sleep.delays) == 1
    assert started[0].state.stats()["creates"] == started[0].state.stats()["accepted"] == 1
    assert structured(result)["generation_id"] in started[0].state.generations


@pytest.mark.parametrize("failure", ["connection-refused", "dns-failure"])
async def test_create_that_never_connects_is_retried_to_the_limit_then_says_the_api_is_unreachable(
    serve: ServeFactory, failure: str
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}" if failure == "connection-refused" else "http://pixverse-mcp.invalid"
    sleep = RecordingSleep()
    async with served_on(serve, base_url, sleep) as served:
        result = await call(served.client, "create_video", {"prompt": new_prompt("never connects")})

    message = assert_clear_error(result, "Could not reach the AI/ML API")
    # Nothing was sent, so nothing can have been accepted: no "check before retrying" warning.
    assert "may have been accepted" not in message
    assert len(sleep.delays) == RetryPolicy().max_attempts - 1


# --- the matrix is complete --------------------------------------------------------------------------------------


def parameter_values(test: Any) -> set[str]:
    """Every value a test is parametrized with (a tuple of values counts each of them, a `pytest.param` its values)."""
    values: set[str] = set()
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize":
            for case in mark.args[1]:
                case = case.values if isinstance(case, ParameterSet) else case
                values.update(str(value) for value in (case if isinstance(case, tuple) else (case,)))
    return values


def test_every_sandbox_fault_is_thrown_at_the_status_tool_and_the_blocking_tool() -> None:
    """A fault added to the sandbox fails this test until it has its tests here (create faults: creates only)."""
    covered: dict[str, set[str]] = {"status": set(), "blocking": set()}
    for name, test in globals().items():
        if not name.startswith("test_"):
            continue
        values = parameter_values(test)
        if name.startswith("test_status"):
            covered["status"] |= values
        elif "blocking" in name or "generate_video_blocking" in values:
            covered["blocking"] |= values

    assert FAULTS - CREATE_ONLY_FAULTS - covered["status"] == set()
    assert FAULTS - covered["blocking"] == set()
