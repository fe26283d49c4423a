"""The storage contract, on both backends: the SQLite journal and a real PostgreSQL started by the test session.

Each test runs twice (`backend` is `sqlite` or `postgres`) against a fresh, empty store.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import anyio
import pytest

from pixverse_mcp.models import Generation, GenerationStatus
from pixverse_mcp.storage import (
    Budget,
    CreateInProgress,
    OverBudget,
    Proceed,
    Reattach,
    Storage,
    StorageError,
    TaskRecord,
    open_storage,
)
from pixverse_mcp.storage import sqlite as sqlite_backend
from tests.postgres_server import RunningPostgres

pytestmark = pytest.mark.anyio

BODY = {"model": "pixverse/v5/text-to-video", "prompt": "a paper boat", "resolution": "720p", "duration": 5}
KEY = "key-of-a-paper-boat"
USAGE = {"tokens_used": 840_000}  # $0.42


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "sqlite":
        store = open_storage(None, tmp_path / "journal.sqlite3")
    else:
        postgres: RunningPostgres = request.getfixturevalue("postgres")
        store = open_storage(postgres.new_database(), tmp_path / "unused.sqlite3")
    try:
        yield store
    finally:
        await store.close()


def created(generation_id: str = "gen-1:pixverse/v5/text-to-video", **fields: object) -> Generation:
    return Generation.model_validate({"id": generation_id, "status": "queued", "usage": USAGE, **fields})


async def create(storage: Storage, generation: Generation, *, key: str = KEY, budget: Budget | None = None) -> None:
    claim = await storage.claim_create(BODY, key, reattach_since=None, budget=budget)
    assert isinstance(claim, Proceed)
    await storage.complete_create(claim.intent_id, generation, BODY, key, created_at=time.time())


async def test_a_completed_create_is_journaled_with_its_request_cost_and_size(storage: Storage) -> None:
    await create(storage, created())

    entry = await storage.get("gen-1:pixverse/v5/text-to-video")
    assert entry is not None
    assert entry.status is GenerationStatus.QUEUED
    assert entry.request == BODY
    assert entry.cost_usd == pytest.approx(0.42)
    assert await storage.pending_creates() == []


async def test_an_identical_request_in_flight_is_reattached_to(storage: Storage) -> None:
    await create(storage, created())

    claim = await storage.claim_create(BODY, KEY, reattach_since=time.time() - 600, budget=None)

    assert isinstance(claim, Reattach)
    assert claim.entry.generation_id == "gen-1:pixverse/v5/text-to-video"


async def test_a_finished_generation_is_never_reattached_to(storage: Storage) -> None:
    await create(storage, created())
    await storage.record_status(created(status="completed", video_url="https://cdn.example/v.mp4"))

    claim = await storage.claim_create(BODY, KEY, reattach_since=time.time() - 600, budget=None)

    assert isinstance(claim, Proceed)


async def test_an_identical_create_being_sent_is_joined_not_sent_again(storage: Storage) -> None:
    first = await storage.claim_create(BODY, KEY, reattach_since=time.time() - 600, budget=None)
    second = await storage.claim_create(BODY, KEY, reattach_since=time.time() - 600, budget=None)

    assert isinstance(first, Proceed)
    assert second == CreateInProgress(first.intent_id)
    await storage.complete_create(first.intent_id, created(), BODY, KEY, created_at=time.time())
    assert (await storage.created_by(first.intent_id)) is not None


async def test_concurrent_identical_claims_make_exactly_one_proceed(storage: Storage) -> None:
    claims: list[object] = []

    async def claim() -> None:
        claims.append(await storage.claim_create(BODY, KEY, reattach_since=time.time() - 600, budget=None))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(claim)

    assert sum(isinstance(claim, Proceed) for claim in claims) == 1
    assert sum(isinstance(claim, CreateInProgress) for claim in claims) == 7


async def test_claims_racing_a_create_that_completes_never_send_it_twice(storage: Storage) -> None:
    # The create completes while identical claims are being decided, in every interleaving the rounds happen to
    # produce: each claim proceeds (once), joins the intent or re-attaches to the generation; never a second send.
    for round_number in range(30):
        key = f"{KEY}-race-{round_number}"
        outcomes: list[object] = []
        first = await storage.claim_create(BODY, key, reattach_since=time.time() - 600, budget=None)
        assert isinstance(first, Proceed)

        async def claim(key: str, outcomes: list[object]) -> None:
            outcomes.append(await storage.claim_create(BODY, key, reattach_since=time.time() - 600, budget=None))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(claim, key, outcomes)
            complete = partial(storage.complete_create, created_at=time.time())
            group.start_soon(complete, first.intent_id, created(f"gen-{round_number}"), BODY, key)
            for _ in range(4):
                group.start_soon(claim, key, outcomes)

        assert not [outcome for outcome in outcomes if isinstance(outcome, Proceed)], round_number
        assert all(isinstance(outcome, CreateInProgress | Reattach) for outcome in outcomes)


async def test_an_identical_request_after_a_create_of_unknown_outcome_is_not_sent_again(storage: Storage) -> None:
    sent = await storage.claim_create(BODY, KEY, reattach_since=time.time() - 600, budget=None)
    assert isinstance(sent, Proceed)
    await storage.abandon_create(sent.intent_id, outcome_unknown=True, detail="the connection was reset")

    again = await storage.claim_create(BODY, KEY, reattach_since=time.time() - 600, budget=None)
    forced = await storage.claim_create(BODY, KEY, reattach_since=None, budget=None)
    later = await storage.claim_create(BODY, KEY, reattach_since=time.time() + 1, budget=None)

    assert again == CreateInProgress(sent.intent_id)  # joined: the service then says it may have been charged
    assert isinstance(forced, Proceed)  # force_new: the user asked for another
    assert isinstance(later, Proceed)  # outside the re-attach window it is a new request


async def test_a_create_without_an_answer_stays_listed_as_outcome_unknown(storage: Storage) -> None:
    claim = await storage.claim_create(BODY, KEY, reattach_since=None, budget=None)
    assert isinstance(claim, Proceed)

    await storage.abandon_create(claim.intent_id, outcome_unknown=True, detail="the connection was reset")

    [pending] = await storage.pending_creates()
    assert pending.outcome_unknown is True
    assert pending.request == BODY
    assert pending.detail == "the connection was reset"


async def test_a_refused_create_leaves_nothing_behind(storage: Storage) -> None:
    claim = await storage.claim_create(BODY, KEY, reattach_since=None, budget=None)
    assert isinstance(claim, Proceed)

    await storage.abandon_create(claim.intent_id, outcome_unknown=False, detail="HTTP 400")

    assert await storage.pending_creates() == []
    assert await storage.pending_create(claim.intent_id) is None


async def test_the_spending_cap_refuses_the_create_that_would_pass_it(storage: Storage) -> None:
    budget = Budget(cap_usd=1.0, default_estimate_usd=0.5, day_start=time.time() - 60)
    await create(storage, created("gen-1"), budget=budget)
    await create(storage, created("gen-2"), budget=budget)

    third = await storage.claim_create(BODY, KEY, reattach_since=None, budget=budget)

    assert isinstance(third, OverBudget)
    assert third.spent_usd == pytest.approx(0.84)
    assert third.estimate_usd == pytest.approx(0.42)  # the last observed price of this size


async def test_creates_still_without_an_answer_count_against_the_cap(storage: Storage) -> None:
    budget = Budget(cap_usd=1.0, default_estimate_usd=0.6, day_start=time.time() - 60)
    first = await storage.claim_create(BODY, KEY, reattach_since=None, budget=budget)
    second = await storage.claim_create(BODY, KEY, reattach_since=None, budget=budget)

    assert isinstance(first, Proceed)
    assert isinstance(second, OverBudget)  # 0.6 reserved + 0.6 > 1.0


async def test_status_changes_are_kept_in_order_with_the_first_completion_time(storage: Storage) -> None:
    await create(storage, created())
    await storage.record_status(created(status="generating"))
    await storage.record_status(created(status="generating"))
    await storage.record_status(created(status="completed", video_url="https://cdn.example/v.mp4"))

    history = [status for _, status in await storage.status_history("gen-1:pixverse/v5/text-to-video")]
    entry = await storage.get("gen-1:pixverse/v5/text-to-video")
    assert history == ["queued", "generating", "completed"]
    assert entry is not None
    assert entry.video_url == "https://cdn.example/v.mp4"
    assert entry.completed_at is not None
    # Never seen running after the create: ready somewhere between the create and the first done look.
    took = entry.completed_at - entry.created_at
    [ready] = await storage.ready_times(limit=10)
    assert ready == ("720p", 5, pytest.approx(took / 2, abs=1e-3), pytest.approx(took, abs=1e-3))


async def test_a_ready_time_is_the_middle_of_the_last_pending_look_and_the_first_done_one(storage: Storage) -> None:
    await create(storage, created())
    entry = await storage.get("gen-1:pixverse/v5/text-to-video")
    assert entry is not None
    pending_until = entry.created_at + 0.5

    await storage.record_status(
        created(status="completed", video_url="https://cdn.example/v.mp4"), pending_until=pending_until
    )

    finished = await storage.get("gen-1:pixverse/v5/text-to-video")
    assert finished is not None
    assert finished.completed_at is not None
    [(_, _, took, span)] = await storage.ready_times(limit=10)
    assert took == pytest.approx((pending_until + finished.completed_at) / 2 - finished.created_at)
    assert span == pytest.approx(abs(finished.completed_at - pending_until))


async def test_text_no_store_can_hold_is_stored_replaced_not_refused(storage: Storage) -> None:
    odd = "gen-\udfff-\x00"
    await storage.record_status(Generation(id=odd, status=GenerationStatus.FAILED, error="bad \ud800 thing \x00"))

    [entry] = await storage.recent()
    assert entry.generation_id == "gen-\ufffd-\ufffd"
    assert entry.error == "bad \ufffd thing \ufffd"
    assert await storage.get(odd) is not None


async def test_one_lease_holder_at_a_time_until_it_expires_or_is_released(storage: Storage) -> None:
    assert await storage.hold_lease("gen-1", "a", ttl_seconds=30) is None
    assert await storage.hold_lease("gen-1", "a", ttl_seconds=30) is None  # renewed
    assert await storage.hold_lease("gen-1", "b", ttl_seconds=30) == "a"
    assert await storage.hold_lease("gen-1", "b", ttl_seconds=30, replacing="a") is None  # a was known dead
    await storage.release_lease("gen-1", "b")
    assert await storage.hold_lease("gen-1", "c", ttl_seconds=0.01) is None
    await anyio.sleep(0.05)
    assert await storage.hold_lease("gen-1", "d", ttl_seconds=30) is None  # c's lease ran out


async def test_tasks_are_kept_until_their_time_to_live(storage: Storage) -> None:
    now = time.time()
    task = TaskRecord("task-1", "principal", now, now, ttl_seconds=60, generation_id="gen-1")
    await storage.save_task(task)
    await storage.save_task(TaskRecord("task-2", "", now - 120, now - 120, ttl_seconds=60))

    assert await storage.get_task("task-1") == task
    assert await storage.delete_expired_tasks(now) == 1
    assert await storage.get_task("task-2") is None


async def test_daily_spend_sums_charged_videos_per_utc_day(storage: Storage) -> None:
    await create(storage, created("gen-1"))
    await create(storage, created("gen-2"))

    [(day, dollars, videos)] = await storage.daily_spend(days=7)

    assert day == time.strftime("%Y-%m-%d", time.gmtime())
    assert dollars == pytest.approx(0.84)
    assert videos == 2


# --- SQLite only: its file is the user's ------------------------------------------------------------------------


async def test_a_journal_of_version_0_1_is_migrated_and_keeps_its_generations(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(sqlite_backend.MIGRATIONS[0])
        db.execute(
            "INSERT INTO generations (id, created_at, updated_at, request_json, request_key, status, usage_json)"
            " VALUES ('old-1', 1, 1, '{\"resolution\": \"1080p\", \"duration\": 5}', 'k', 'queued', NULL)"
        )
        db.execute("PRAGMA user_version = 1")
    store = open_storage(None, path)
    try:
        [entry] = await store.recent()
    finally:
        await store.close()

    assert entry.generation_id == "old-1"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_backend.SCHEMA_VERSION
        assert db.execute("SELECT resolution FROM generations").fetchone()[0] == "1080p"


async def test_a_journal_from_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    store = open_storage(None, path)

    with pytest.raises(StorageError, match="newer pixverse-mcp"):
        await store.recent()
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 99


async def test_a_corrupt_journal_is_a_storage_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = open_storage(None, path)

    with pytest.raises(StorageError, match=str(path)):
        await store.recent()
    await store.close()
