"""Adversarial checks of the money promises, beyond `test_money.py`: the cap at its edges (a cap of 0, two journals
on one SQLite file racing at the boundary, UTC midnight, answers and request logs whose figures are absurd, a price
list kept broken), one payment per confirmation when the answer is replayed concurrently or on another replica, a
paid id kept through the spool when the answer's cost is unreadable, a create cancelled mid-flight then retried,
settling when the log shows the request failed or without its id, and waits that keep to their budget.

Every test is in process, with the SDK's in-memory Client over the real server, against the sandbox or the hostile
upstream. Bounds on time are generous `fail_after`s (a broken promise would wait for minutes, not seconds).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import SecretStr

from pixverse_mcp.app import open_app
from pixverse_mcp.config import Settings
from pixverse_mcp.models import Generation, GenerationStatus
from pixverse_mcp.sandbox import LIP_SYNC_MODEL, MODEL, SANDBOX_API_KEY, RunningSandbox, SandboxConfig
from pixverse_mcp.server import build_server
from pixverse_mcp.storage import (
    AnsweredCreate,
    Budget,
    CachedDocument,
    CreateClaim,
    OverBudget,
    Proceed,
    StorageError,
    utc_midnight,
)
from pixverse_mcp.storage import sql as sql_module
from pixverse_mcp.storage.sqlite import SqliteStorage
from tests.hostile_upstream import HostileUpstream
from tests.stdio_support import structured, text_of
from tests.unit.test_money import (
    FAST,
    ROUND_TRIP,
    answering,
    created_answer,
    creates,
    fresh,
    served,
    settings_for,
)

pytestmark = pytest.mark.anyio

SHARED_KEY = "an-adversarial-request-state-key-of-32-characters-or-more"


@pytest.fixture
def fast_sandbox() -> AsyncIterator[RunningSandbox]:
    with RunningSandbox(SandboxConfig(**FAST)) as running:
        yield running  # type: ignore[misc]


def accepted(sandbox: RunningSandbox) -> int:
    return sandbox.state.stats()["accepted"]


# 1. The cap at its edges.


async def test_a_cap_of_zero_refuses_every_create_and_asks_nobody(fast_sandbox: RunningSandbox, tmp_path: Path) -> None:
    asked: list[str] = []
    settings = settings_for(fast_sandbox.url, SANDBOX_API_KEY, tmp_path, daily_budget_usd=0.0, confirm_paid=True)
    async with served(settings, elicitation_callback=answering({"confirm": True}, seen=asked)) as (client, _):
        results = [
            await client.call_tool("create_video", {"prompt": fresh("zero cap")}),
            await client.call_tool("generate_video_blocking", {"prompt": fresh("zero cap")}),
            await client.call_tool("lip_sync_video", {"video": "https://example.com/v.mp4", "lip_sync_text": "hi"}),
        ]
        account = structured(await client.call_tool("account_status", {}))

    assert creates(fast_sandbox) == 0
    assert asked == []
    for result in results:
        assert structured(result)["status"] == "not_created", text_of(result)
        assert "spending cap" in text_of(result)
    assert account["budget_left_usd"] == 0


async def test_two_journals_on_one_sqlite_file_racing_at_the_cap_send_only_what_it_allows(
    fast_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Two servers of one user (two connections to one journal file, as two stdio processes have) each fire four
    different creates at once under a $1 cap at $0.42 each: two leave, in all."""
    settings = settings_for(fast_sandbox.url, SANDBOX_API_KEY, tmp_path, daily_budget_usd=1.0)
    results: list[Any] = []
    with anyio.fail_after(120):
        async with (
            open_app(settings) as first_app,
            open_app(settings) as second_app,
            Client(build_server(settings, first_app)) as first,
            Client(build_server(settings, second_app)) as second,
        ):
            assert first_app.storage is not second_app.storage

            async def create(client: Client, index: int) -> None:
                results.append(await client.call_tool("create_video", {"prompt": fresh(f"race {index}")}))

            async with anyio.create_task_group() as group:
                for index in range(8):
                    group.start_soon(create, first if index % 2 else second, index)
            spent = await first_app.storage.spent_since(0)

    made = [result for result in results if not result.is_error]
    assert creates(fast_sandbox) == len(made) == 2, [text_of(result) for result in results]
    assert spent == pytest.approx(0.84)


async def test_identical_claims_through_two_connections_to_one_journal_make_one_create(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    first, second = SqliteStorage(path), SqliteStorage(path)
    request = {"model": MODEL, "prompt": "one video, two processes"}
    claims: list[object] = []

    async def claim(storage: SqliteStorage) -> None:
        claims.append(
            await storage.claim_create(
                CreateClaim(request, "same-key", "sender", reattach_since=0.0, estimate_usd=0.42)
            )
        )

    try:
        # Each connection opened (and the journal migrated) first: the race under test is the claims'. (Once, in a
        # full run, this test failed without the warm-up; it could not be reproduced: see the branch's report.)
        await first.pending_creates()
        await second.pending_creates()
        async with anyio.create_task_group() as group:
            for index in range(12):
                group.start_soon(claim, first if index % 2 else second)
    finally:
        await first.close()
        await second.close()
    assert sum(isinstance(claimed, Proceed) for claimed in claims) == 1


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


async def test_a_create_claimed_before_utc_midnight_and_answered_after_it_cannot_overspend_the_new_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$1 a day at $0.42 a video. One create is claimed at 23:59:59 and answered at 00:00:02: it lands in the new
    day. Claims made in the new day while it was still out must count it, or the new day ends at $1.26."""
    midnight = utc_midnight(1_700_000_000) + 86_400
    clock = _Clock(midnight - 1)
    monkeypatch.setattr(sql_module, "time", clock)
    storage = SqliteStorage(tmp_path / "journal.sqlite3")
    request = {"model": MODEL, "prompt": "p", "resolution": "720p", "duration": 5}

    async def claim(prompt: str, day_start: float) -> object:
        budget = Budget(1.0, 0.42, day_start)
        return await storage.claim_create(
            CreateClaim({**request, "prompt": prompt}, prompt, "sender", budget=budget, estimate_usd=0.42)
        )

    try:
        late = await claim("late yesterday", midnight - 86_400)
        assert isinstance(late, Proceed)
        clock.now = midnight + 1
        early = [await claim(f"early today {index}", midnight) for index in range(3)]
        sent = [late] + [claimed for claimed in early if isinstance(claimed, Proceed)]
        for at, claimed in enumerate(sent, start=2):
            assert isinstance(claimed, Proceed)
            generation = Generation(id=f"gen-{claimed.intent_id}", status=GenerationStatus.QUEUED, cost_usd=0.42)
            await storage.complete_create(
                AnsweredCreate(claimed.intent_id, generation, request, claimed.intent_id, midnight + at, 0.42)
            )
        spent_today = await storage.spent_since(midnight)
    finally:
        await storage.close()

    assert spent_today <= 1.0 + 1e-9, f"the new UTC day spent ${spent_today:.2f} under a $1.00 cap"
    assert isinstance(early[-1], OverBudget)


@pytest.mark.parametrize(
    ("shape", "meta", "header"),
    [
        ("credits given in dollars (0.42 credits)", {"usage": {"credits_used": 0.42}}, None),
        ("a millionth of a dollar", {"usage": {"usd_spent": 0.000001}}, None),
        ("a header of 1e-9", None, "1e-9"),
    ],
)
async def test_an_absurdly_small_reported_cost_does_not_disarm_the_cap(
    tmp_path: Path, shape: str, meta: Any, header: str | None
) -> None:
    """The first answer reports a cost no video has (a unit mixed up); the next ones report nothing. Counted as
    reported, it would become the estimate for that size, and every unreadable answer after it would count at it:
    a $1 cap would let everything through."""
    with HostileUpstream() as up:
        answers = iter([created_answer(meta, usd_header=header)])
        up.on_create(lambda _: next(answers, None) or created_answer(None), repeat=True)
        settings = settings_for(up.url, up.api_key, tmp_path, daily_budget_usd=1.0, cost_estimate_usd=0.42)
        async with served(settings) as (client, app):
            results = [await client.call_tool("create_video", {"prompt": fresh(shape)}) for _ in range(6)]
            spent = await app.storage.spent_since(0)

    assert up.creates == 2, [text_of(result) for result in results]
    assert spent == pytest.approx(0.84)


@pytest.mark.parametrize(
    ("shape", "meta", "header", "leave"),
    [
        ("a header of 1e12", None, "1e12", 2),
        ("1e20 credits", {"usage": {"credits_used": 1e20}}, None, 2),
        ("$101 (past the plausible)", {"usage": {"usd_spent": 101}}, None, 2),
        ("$60 (plausible, past the cap)", {"usage": {"usd_spent": 60}}, None, 1),
        ("a header of 'inf'", None, "inf", 2),
        ("a header of '-0.42'", None, "-0.42", 2),
        ("a list", {"usage": {"usd_spent": [0.42]}}, None, 2),
        ("usage not an object", {"usage": "0.42"}, None, 2),
        ("meta a list", [1, 2], None, 2),
    ],
)
async def test_huge_or_odd_reported_costs_never_let_more_through(
    tmp_path: Path, shape: str, meta: Any, header: str | None, leave: int
) -> None:
    with HostileUpstream() as up:
        up.on_create(lambda _: created_answer(meta, usd_header=header), repeat=True)
        settings = settings_for(up.url, up.api_key, tmp_path, daily_budget_usd=1.0, cost_estimate_usd=0.42)
        async with served(settings) as (client, _):
            results = [await client.call_tool("create_video", {"prompt": fresh(shape)}) for _ in range(4)]

    assert up.creates == leave, [text_of(result) for result in results]
    assert "spending cap" in text_of(results[leave])


# 6. The estimate before any observed cost.


@pytest.mark.parametrize(
    "kept",
    [
        {"720p": [0, 1, True]},
        {"720p": [-0.084, 1, True]},
        {"*": [-1, 1, False]},
        {"720p": [True, 1, True]},
        {"720p": [1e-12, 1, True]},
    ],
)
async def test_a_kept_price_list_that_is_broken_never_makes_the_estimate_free(
    fast_sandbox: RunningSandbox, tmp_path: Path, kept: dict[str, Any]
) -> None:
    """The price list kept in the journal (shared by replicas, possibly written by another version) is odd: the
    estimate falls back to the default, never to $0 or less (a $0 estimate lets any number of racing creates pass
    the cap, and makes an unreadable answer count at $0)."""
    settings = settings_for(fast_sandbox.url, SANDBOX_API_KEY, tmp_path, daily_budget_usd=1.0)
    async with served(settings) as (_, app):
        await app.storage.cache(f"prices:{MODEL}", CachedDocument(kept, None, time.time()))
        estimate = await app.require_service().spending.estimate(MODEL, "720p", 5)

    assert estimate.usd >= 0.01, estimate


async def test_a_price_list_that_is_not_served_gives_the_default_estimate(tmp_path: Path) -> None:
    with HostileUpstream() as up:  # every other path is a 404: no price list
        settings = settings_for(up.url, up.api_key, tmp_path, cost_estimate_usd=0.37)
        async with served(settings) as (_, app):
            estimate = await app.require_service().spending.estimate(MODEL, "1080p", 8)

    assert (estimate.usd, estimate.source) == (0.37, "default")


async def test_a_lip_sync_is_estimated_at_its_flat_listed_price_and_capped(tmp_path: Path) -> None:
    asked: list[str] = []
    with RunningSandbox(SandboxConfig(**FAST)) as sandbox:
        settings = settings_for(sandbox.url, SANDBOX_API_KEY, tmp_path, daily_budget_usd=0.50, confirm_paid=True)
        async with served(settings, elicitation_callback=answering({"confirm": True}, seen=asked)) as (client, app):
            estimate = await app.require_service().spending.estimate(LIP_SYNC_MODEL, "720p", 5)
            arguments = {"video": "https://example.com/talk.mp4", "lip_sync_text": fresh("hello")}
            first = await client.call_tool("lip_sync_video", {**arguments, "timeout_seconds": 1})
            second = await client.call_tool(
                "lip_sync_video", {"video": "https://example.com/talk.mp4", "lip_sync_text": fresh("again")}
            )
        assert creates(sandbox) == 1

    assert (estimate.usd, estimate.source) == (pytest.approx(0.30), "price_list")
    assert "about $0.30" in asked[0]
    assert not first.is_error, text_of(first)
    assert structured(second)["status"] == "not_created"
    assert "spending cap" in text_of(second)


# 2. One confirmation, one payment.


async def asked_question(client: Client, arguments: dict[str, Any]) -> tuple[str, dict[str, types.ElicitResult]]:
    asked = await client.session.call_tool("create_video", arguments, allow_input_required=True)
    assert isinstance(asked, types.InputRequiredResult)
    [key] = asked.input_requests
    assert asked.request_state is not None
    return asked.request_state, {key: types.ElicitResult(action="accept", content={"confirm": True})}


async def test_an_answer_replayed_concurrently_pays_once(tmp_path: Path) -> None:
    with RunningSandbox(SandboxConfig(**FAST)) as sandbox:
        sandbox.state.inject("slow", method="POST", seconds=1.0)  # every replay arrives while the first is out
        settings = settings_for(sandbox.url, SANDBOX_API_KEY, tmp_path, confirm_paid=True)
        arguments = {"prompt": fresh("replayed at once")}
        results: list[Any] = []
        async with served(settings, mode=ROUND_TRIP, elicitation_callback=answering({"confirm": True})) as (client, _):
            state, answer = await asked_question(client, arguments)

            async def replay() -> None:
                results.append(
                    await client.session.call_tool(
                        "create_video", arguments, input_responses=answer, request_state=state
                    )
                )

            async with anyio.create_task_group() as group:
                for _ in range(6):
                    group.start_soon(replay)
        assert creates(sandbox) == 1
    ids = {structured(result)["generation_id"] for result in results}
    assert len(ids) == 1, [text_of(result) for result in results]
    assert None not in ids


@asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncExitStack() as stack:
        app = await stack.enter_async_context(open_app(settings))
        client = Client(build_server(settings, app), mode=ROUND_TRIP, elicitation_callback=answering(None))
        yield await stack.enter_async_context(client)


async def replayed_on_two_replicas(sandbox: RunningSandbox, first: Settings, second: Settings) -> list[Any]:
    arguments = {"prompt": fresh("replayed on two replicas")}
    results: list[Any] = []
    with anyio.fail_after(120):
        async with replica(first) as one, replica(second) as two:
            state, answer = await asked_question(one, arguments)

            async def replay(client: Client) -> None:
                results.append(
                    await client.session.call_tool(
                        "create_video", arguments, input_responses=answer, request_state=state
                    )
                )

            async with anyio.create_task_group() as group:
                for index in range(6):
                    group.start_soon(replay, one if index % 2 else two)
            results.append(
                await two.session.call_tool("create_video", arguments, input_responses=answer, request_state=state)
            )
    return results


def replica_settings(sandbox: RunningSandbox, state_dir: Path, **overrides: Any) -> Settings:
    return settings_for(
        sandbox.url,
        SANDBOX_API_KEY,
        state_dir,
        confirm_paid=True,
        request_state_keys=(SecretStr(SHARED_KEY),),
        **overrides,
    )


async def test_an_answer_replayed_on_two_replicas_sharing_one_sqlite_journal_pays_once(tmp_path: Path) -> None:
    with RunningSandbox(SandboxConfig(**FAST)) as sandbox:
        sandbox.state.inject("slow", method="POST", seconds=1.0)
        settings = replica_settings(sandbox, tmp_path)
        results = await replayed_on_two_replicas(sandbox, settings, settings)
        assert creates(sandbox) == 1
    assert len({structured(result)["generation_id"] for result in results}) == 1


async def test_an_answer_replayed_on_two_replicas_sharing_postgresql_pays_once(postgres: Any, tmp_path: Path) -> None:
    with RunningSandbox(SandboxConfig(**FAST)) as sandbox:
        sandbox.state.inject("slow", method="POST", seconds=1.0)
        database = SecretStr(postgres.new_database())
        first = replica_settings(sandbox, tmp_path / "a", database_url=database)
        second = replica_settings(sandbox, tmp_path / "b", database_url=database)
        results = await replayed_on_two_replicas(sandbox, first, second)
        assert creates(sandbox) == 1
    assert len({structured(result)["generation_id"] for result in results}) == 1


async def test_an_answer_sent_back_with_other_arguments_does_not_pay_for_them(
    fast_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """The user said yes to a 5 s 720p video; the client sends that answer and its state with the arguments of an
    8 s 1080p one. The question was about another video: nothing is made without asking about this one."""
    settings = settings_for(fast_sandbox.url, SANDBOX_API_KEY, tmp_path, confirm_paid=True)
    asked_for = {"prompt": fresh("the cheap one")}
    async with served(settings, mode=ROUND_TRIP, elicitation_callback=answering({"confirm": True})) as (client, _):
        state, answer = await asked_question(client, asked_for)
        try:
            other: object = await client.session.call_tool(
                "create_video",
                {"prompt": fresh("the dear one"), "resolution": "1080p", "duration": 8},
                input_responses=answer,
                request_state=state,
                allow_input_required=True,
            )
        except MCPError as refused:  # the sealed state names the arguments it was asked about
            other = refused

    assert creates(fast_sandbox) == 0
    assert isinstance(other, MCPError | types.InputRequiredResult), other


async def test_a_2025_answer_that_never_comes_ends_the_call_within_its_budget(
    fast_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    async def never(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        await anyio.sleep_forever()
        raise AssertionError

    settings = settings_for(fast_sandbox.url, SANDBOX_API_KEY, tmp_path, confirm_paid=True, wait_budget_seconds=2.0)
    async with served(settings, mode="legacy", elicitation_callback=never) as (client, _):
        with anyio.fail_after(30):
            result = await client.call_tool("generate_video_blocking", {"prompt": fresh("unanswered")})

    assert structured(result)["status"] == "not_created"
    assert creates(fast_sandbox) == 0


# 3, 5, 7. Creates never sent twice; uncertain ones settled by the request log; waits within their budget.


def rewriting_the_log(sandbox: RunningSandbox, **changes: Any) -> None:
    """Make the sandbox's request log show each create with `changes` (status, cost_usd, inference_id)."""
    original = sandbox.state.record

    def record(request: Any, *, status: str, model: str | None, cost_usd: float, inference_id: str) -> None:
        if request.method == "POST":
            status = changes.get("status", status)
            cost_usd = changes.get("cost_usd", cost_usd)
            inference_id = changes.get("inference_id", inference_id)
        original(request, status=status, model=model, cost_usd=cost_usd, inference_id=inference_id)

    sandbox.state.record = record  # type: ignore[method-assign]


@pytest.mark.parametrize("logged_cost", [5e6, 3e-6, 150.0])
async def test_a_settled_create_with_an_absurd_logged_cost_counts_its_estimate(
    tmp_path: Path, logged_cost: float
) -> None:
    """The answer was lost; the request log has the create, with a cost no video has. Journaled as reported, $5M
    would become the estimate of that size for good (every later create refused), 1e-7 would disarm the cap."""
    with RunningSandbox(SandboxConfig(**FAST)) as sandbox:
        sandbox.state.inject("accepted_reset", method="POST")
        rewriting_the_log(sandbox, cost_usd=logged_cost)
        settings = settings_for(sandbox.url, SANDBOX_API_KEY, tmp_path, daily_budget_usd=5.0)
        async with served(settings) as (client, app):
            result = await client.call_tool("generate_video_blocking", {"prompt": fresh("lost answer")})
            entry = await app.storage.get(str(structured(result)["generation_id"]))
            estimate = await app.require_service().spending.estimate(MODEL, "720p", 5)
        assert accepted(sandbox) == 1
    assert structured(result)["status"] == "completed", text_of(result)
    assert entry is not None
    assert (entry.cost_usd, entry.cost_estimated) == (pytest.approx(0.42), True)
    assert estimate.usd == pytest.approx(0.42)


async def test_a_create_the_log_shows_failed_is_never_received_and_costs_nothing(tmp_path: Path) -> None:
    with RunningSandbox(SandboxConfig(**FAST)) as sandbox:
        sandbox.state.inject("accepted_reset", method="POST")
        rewriting_the_log(sandbox, status="failed")
        settings = settings_for(sandbox.url, SANDBOX_API_KEY, tmp_path, daily_budget_usd=5.0)
        async with served(settings) as (client, app):
            lost = await client.call_tool("create_video", {"prompt": fresh("logged as failed")})
            with anyio.fail_after(30):
                while True:
                    listing = structured(await client.call_tool("list_videos", {}))
                    if [entry["state"] for entry in listing["uncertain_creates"]] == ["never_received"]:
                        break
                    await anyio.sleep(0.2)
            spent = await app.storage.spent_since(0)

    assert structured(lost)["status"] == "unknown", text_of(lost)
    assert spent == 0


@pytest.mark.slow  # sits out a settle window or two wait budgets, in real time
async def test_a_create_the_log_shows_succeeded_without_its_id_is_never_sent_again(tmp_path: Path) -> None:
    """The log has the create as succeeded (so charged) but without the generation id. Settling cannot journal it;
    concluding "failed there, nothing charged" lets an identical call pay for it a second time."""
    with RunningSandbox(SandboxConfig(**FAST)) as sandbox:
        sandbox.state.inject("accepted_reset", method="POST")
        rewriting_the_log(sandbox, inference_id="")
        settings = settings_for(sandbox.url, SANDBOX_API_KEY, tmp_path, wait_budget_seconds=4.0)
        arguments = {"prompt": fresh("logged without its id")}
        async with served(settings) as (client, app):
            first = await client.call_tool("generate_video_blocking", arguments)
            again = await client.call_tool("generate_video_blocking", arguments)
            listing = structured(await client.call_tool("list_videos", {}))
            spent = await app.storage.spent_since(0)
        assert accepted(sandbox) == 1, (text_of(first), text_of(again))
    assert [create["state"] for create in listing["uncertain_creates"]] == ["outcome_unknown"]
    assert spent == pytest.approx(0.42)  # charged: it counts, at its estimate


async def test_an_identical_call_joining_a_create_being_settled_keeps_to_its_own_budget(tmp_path: Path) -> None:
    config = SandboxConfig(**{**FAST, "logs_delay_seconds": 3_600})  # the log never shows it in time
    with RunningSandbox(config) as sandbox:
        sandbox.state.inject("accepted_reset", method="POST")
        settings = settings_for(sandbox.url, SANDBOX_API_KEY, tmp_path, wait_budget_seconds=2.0, settle_seconds=600)
        arguments = {"prompt": fresh("settling for long")}
        async with served(settings) as (client, _):
            with anyio.fail_after(40):
                first = await client.call_tool("create_video", arguments)
                joined = await client.call_tool("generate_video_blocking", {**arguments, "timeout_seconds": 2})
                forced = await client.call_tool("generate_video_blocking", {**arguments, "timeout_seconds": 1})
        assert creates(sandbox) == 1, [text_of(result) for result in (first, joined, forced)]
    for result in (first, joined, forced):
        assert structured(result)["status"] == "unknown", text_of(result)


@pytest.mark.slow  # sits out a settle window or two wait budgets, in real time
async def test_a_call_cancelled_while_its_create_is_out_then_retried_pays_once(tmp_path: Path) -> None:
    with RunningSandbox(SandboxConfig(**{**FAST, "logs_delay_seconds": 0.2})) as sandbox:
        sandbox.state.inject("slow", method="POST", seconds=1.0)
        settings = settings_for(sandbox.url, SANDBOX_API_KEY, tmp_path, settle_seconds=4.0, wait_budget_seconds=20)
        arguments = {"prompt": fresh("cancelled mid-create")}
        async with served(settings) as (client, app):
            with anyio.move_on_after(0.5):  # the create is out (the sandbox answers after 1 s)
                await client.call_tool("generate_video_blocking", arguments)
            with anyio.fail_after(60):
                again = await client.call_tool("generate_video_blocking", arguments)
            pending = await app.storage.pending_creates()
        assert accepted(sandbox) == 1
    assert structured(again)["status"] == "completed", text_of(again)
    assert all(create.state == "never_received" for create in pending)


# 4. A paid id is never lost, whatever its answer's cost says.


async def test_a_spooled_answer_with_an_unreadable_cost_is_written_as_an_estimate_and_counted_meanwhile(
    tmp_path: Path,
) -> None:
    with HostileUpstream() as up:
        up.on_create(lambda _: created_answer({"usage": {"usd_spent": float("nan"), "big": 10**30}}), repeat=True)
        settings = settings_for(up.url, up.api_key, tmp_path, daily_budget_usd=1.0, cost_estimate_usd=0.42)
        async with served(settings) as (client, app):
            storage = app.storage
            journal_down = True
            real_complete = storage.complete_create

            async def complete(answered: AnsweredCreate) -> None:
                if journal_down:
                    raise StorageError("the journal is down (test)")
                await real_complete(answered)

            storage.complete_create = complete  # type: ignore[method-assign]
            result = await client.call_tool("create_video", {"prompt": fresh("spooled")})
            generation_id = str(structured(result)["generation_id"])
            spent_while_spooled = await storage.spent_since(0)
            refused = [await client.call_tool("create_video", {"prompt": fresh("more")}) for _ in range(2)]
            journal_down = False
            with anyio.fail_after(20):
                while (entry := await storage.get(generation_id)) is None:
                    await anyio.sleep(0.2)
            spent_after = await storage.spent_since(0)
            observed = await storage.last_cost(MODEL, "720p", 5)

    assert "spool" in str(structured(result)["journal_error"])
    assert spent_while_spooled == pytest.approx(0.42)  # its reservation still counts
    assert up.creates == 2, [text_of(other) for other in refused]
    assert (entry.cost_usd, entry.cost_estimated) == (pytest.approx(0.42), True)
    assert spent_after == pytest.approx(0.84)
    assert observed is None  # an estimate never becomes "what the provider charges"


async def test_a_spool_left_by_a_stopped_server_is_written_by_the_next_one(tmp_path: Path) -> None:
    with HostileUpstream() as up:
        up.on_create(lambda _: created_answer({"usage": {"usd_spent": float("inf")}}), repeat=True)
        settings = settings_for(up.url, up.api_key, tmp_path, cost_estimate_usd=0.42)
        async with served(settings) as (client, app):

            async def down(answered: AnsweredCreate) -> None:
                raise StorageError("the journal is down (test)")

            app.storage.complete_create = down  # type: ignore[method-assign]
            result = await client.call_tool("create_video", {"prompt": fresh("left in the spool")})
        generation_id = str(structured(result)["generation_id"])
        assert (tmp_path / "state" / "spool.jsonl").is_file()
        async with served(settings) as (_, app):
            with anyio.fail_after(20):
                while (entry := await app.storage.get(generation_id)) is None:
                    await anyio.sleep(0.2)
    assert (entry.cost_usd, entry.cost_estimated) == (pytest.approx(0.42), True)
    assert up.creates == 1
