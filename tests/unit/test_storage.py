"""The storage contract, on both backends: the SQLite journal and a real PostgreSQL started by the test session.

Each test runs twice (`backend` is `sqlite` or `postgres`) against a fresh, empty store.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest

from pixverse_mcp.models import Generation, GenerationStatus
from pixverse_mcp.storage import (
    AnsweredCreate,
    Budget,
    CachedDocument,
    Claim,
    CreateClaim,
    CreateInProgress,
    OverBudget,
    Proceed,
    Reattach,
    Storage,
    StorageError,
    TaskRecord,
    open_storage,
)
from pixverse_mcp.storage import postgres as postgres_backend
from pixverse_mcp.storage import sql as sql_module
from pixverse_mcp.storage import sqlite as sqlite_backend
from tests.postgres_server import RunningPostgres

# One worker runs these under `scripts/test --fast` (pytest-xdist's loadgroup): it alone starts PostgreSQL.
pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("postgres")]

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


async def claim(
    storage: Storage,
    key: str = KEY,
    *,
    since: float | None = None,
    budget: Budget | None = None,
    confirmation: str | None = None,
    estimate: float = 0.42,
) -> Claim:
    return await storage.claim_create(
        CreateClaim(
            BODY,
            key,
            sender="host/1/test",
            reattach_since=since,
            budget=budget,
            confirmation=confirmation,
            estimate_usd=estimate,
        )
    )


def answered(intent_id: str, generation: Generation, key: str = KEY, cost: float | None = 0.42) -> AnsweredCreate:
    return AnsweredCreate(intent_id, generation, BODY, key, time.time(), cost)


async def create(storage: Storage, generation: Generation, *, key: str = KEY, budget: Budget | None = None) -> None:
    claimed = await claim(storage, key, budget=budget)
    assert isinstance(claimed, Proceed)
    await storage.complete_create(answered(claimed.intent_id, generation, key))


def window() -> float:
    return time.time() - 600


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

    claimed = await claim(storage, since=window())

    assert isinstance(claimed, Reattach)
    assert claimed.entry.generation_id == "gen-1:pixverse/v5/text-to-video"


async def test_a_finished_generation_is_never_reattached_to(storage: Storage) -> None:
    await create(storage, created())
    await storage.record_status(created(status="completed", video_url="https://cdn.example/v.mp4"))

    claimed = await claim(storage, since=window())

    assert isinstance(claimed, Proceed)


async def test_an_identical_create_being_sent_is_joined_not_sent_again(storage: Storage) -> None:
    first = await claim(storage, since=window())
    second = await claim(storage, since=window())

    assert isinstance(first, Proceed)
    assert second == CreateInProgress(first.intent_id)
    await storage.complete_create(answered(first.intent_id, created()))
    assert (await storage.created_by(first.intent_id)) is not None


async def test_concurrent_identical_claims_make_exactly_one_proceed(storage: Storage) -> None:
    claims: list[object] = []

    async def one() -> None:
        claims.append(await claim(storage, since=window()))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(one)

    assert sum(isinstance(claim, Proceed) for claim in claims) == 1
    assert sum(isinstance(claim, CreateInProgress) for claim in claims) == 7


async def test_claims_racing_a_create_that_completes_never_send_it_twice(storage: Storage) -> None:
    # The create completes while identical claims are being decided, in every interleaving the rounds happen to
    # produce: each claim proceeds (once), joins the intent or re-attaches to the generation; never a second send.
    for round_number in range(30):
        key = f"{KEY}-race-{round_number}"
        outcomes: list[object] = []
        first = await claim(storage, key, since=window())
        assert isinstance(first, Proceed)

        async def one(key: str, outcomes: list[object]) -> None:
            outcomes.append(await claim(storage, key, since=window()))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(one, key, outcomes)
            complete = partial(storage.complete_create, answered(first.intent_id, created(f"gen-{round_number}"), key))
            group.start_soon(complete)
            for _ in range(4):
                group.start_soon(one, key, outcomes)

        assert not [outcome for outcome in outcomes if isinstance(outcome, Proceed)], round_number
        assert all(isinstance(outcome, CreateInProgress | Reattach) for outcome in outcomes)


async def test_an_identical_request_after_a_create_of_unknown_outcome_is_not_sent_again(storage: Storage) -> None:
    sent = await claim(storage, since=window())
    assert isinstance(sent, Proceed)
    await storage.abandon_create(sent.intent_id, outcome_unknown=True, detail="the connection was reset")

    again = await claim(storage, since=window())
    forced = await claim(storage)
    later = await claim(storage, since=time.time() + 1)

    assert again == CreateInProgress(sent.intent_id)  # joined: it is being settled, it may have been charged
    assert isinstance(forced, Proceed)  # force_new: the user asked for another
    assert isinstance(later, Proceed)  # outside the re-attach window it is a new request


async def test_a_create_without_an_answer_is_listed_as_settling_until_settled(storage: Storage) -> None:
    claimed = await claim(storage)
    assert isinstance(claimed, Proceed)

    await storage.abandon_create(
        claimed.intent_id, outcome_unknown=True, detail="the connection was reset", settle_until=time.time() + 600
    )

    [pending] = await storage.pending_creates()
    assert pending.state == "settling"
    assert pending.outcome_unknown is True
    assert pending.request == BODY
    assert pending.detail == "the connection was reset"
    assert pending.client_request_id == claimed.client_request_id
    assert [create.intent_id for create in await storage.settling_creates()] == [claimed.intent_id]


async def test_a_create_settled_as_never_received_is_created_again_by_an_identical_call(storage: Storage) -> None:
    sent = await claim(storage, since=window())
    assert isinstance(sent, Proceed)
    await storage.abandon_create(sent.intent_id, outcome_unknown=True, detail="reset", settle_until=time.time())

    await storage.settle_absent(sent.intent_id, detail="not in the request log")

    again = await claim(storage, since=window())
    assert isinstance(again, Proceed)
    [listed, _] = await storage.pending_creates()
    assert {listed.state} <= {"never_received", "sending"}
    assert await storage.settling_creates() == [await storage.pending_create(again.intent_id)]


async def test_a_create_settled_as_received_is_reattached_to(storage: Storage) -> None:
    sent = await claim(storage, since=window())
    assert isinstance(sent, Proceed)
    await storage.abandon_create(sent.intent_id, outcome_unknown=True, detail="reset", settle_until=time.time())

    await storage.complete_create(answered(sent.intent_id, created(), cost=None))

    again = await claim(storage, since=window())
    assert isinstance(again, Reattach)
    assert again.entry.cost_usd is None
    assert await storage.pending_creates() == []


async def test_a_refused_create_leaves_nothing_behind(storage: Storage) -> None:
    claimed = await claim(storage)
    assert isinstance(claimed, Proceed)

    await storage.abandon_create(claimed.intent_id, outcome_unknown=False, detail="HTTP 400")

    assert await storage.pending_creates() == []
    assert await storage.pending_create(claimed.intent_id) is None


async def test_the_spending_cap_refuses_the_create_that_would_pass_it(storage: Storage) -> None:
    budget = Budget(cap_usd=1.0, estimate_usd=0.42, day_start=time.time() - 60)
    await create(storage, created("gen-1"), budget=budget)
    await create(storage, created("gen-2"), budget=budget)

    third = await claim(storage, budget=budget)

    assert isinstance(third, OverBudget)
    assert third.spent_usd == pytest.approx(0.84)
    assert third.estimate_usd == pytest.approx(0.42)


async def test_a_failed_generation_costs_nothing_against_the_cap(storage: Storage) -> None:
    budget = Budget(cap_usd=1.0, estimate_usd=0.42, day_start=time.time() - 60)
    await create(storage, created("gen-1"), budget=budget)
    await create(storage, created("gen-2"), budget=budget)
    await storage.record_status(created("gen-1", status="failed"))

    assert await storage.spent_since(time.time() - 60) == pytest.approx(0.42)
    assert isinstance(await claim(storage, budget=budget), Proceed)


async def test_creates_still_without_an_answer_count_against_the_cap(storage: Storage) -> None:
    budget = Budget(cap_usd=1.0, estimate_usd=0.6, day_start=time.time() - 60)
    first = await claim(storage, budget=budget, estimate=0.6)
    second = await claim(storage, budget=budget, estimate=0.6)

    assert isinstance(first, Proceed)
    assert isinstance(second, OverBudget)  # 0.6 reserved + 0.6 > 1.0


async def test_one_confirmation_pays_for_one_create(storage: Storage) -> None:
    first = await claim(storage, confirmation="answer-1")
    assert isinstance(first, Proceed)
    while_sending = await claim(storage, confirmation="answer-1")
    await storage.complete_create(answered(first.intent_id, created()))
    replayed = await claim(storage, confirmation="answer-1")
    another_answer = await claim(storage, confirmation="answer-2")

    assert while_sending == CreateInProgress(first.intent_id)
    assert await storage.confirmation_used("answer-1") is True
    assert await storage.confirmation_used("never-given") is False
    assert isinstance(replayed, Reattach)
    assert replayed.entry.generation_id == "gen-1:pixverse/v5/text-to-video"
    assert isinstance(another_answer, Proceed)


async def test_an_answered_create_is_journaled_even_when_its_intent_is_gone(storage: Storage) -> None:
    # The spool's case: the database came back without the intent (recreated empty, say).
    await storage.complete_create(answered("an-intent-that-does-not-exist", created("gen-spooled")))

    entry = await storage.get("gen-spooled")
    assert entry is not None
    assert entry.request == BODY
    assert entry.model == "pixverse/v5/text-to-video"


async def test_the_last_cost_is_a_reported_one_never_an_estimate(storage: Storage) -> None:
    first = await claim(storage)
    assert isinstance(first, Proceed)
    await storage.complete_create(answered(first.intent_id, created("gen-1"), cost=0.50))
    second = await claim(storage)
    assert isinstance(second, Proceed)
    estimated = AnsweredCreate(second.intent_id, created("gen-2"), BODY, KEY, time.time(), 0.99, cost_estimated=True)
    await storage.complete_create(estimated)

    assert await storage.last_cost("pixverse/v5/text-to-video", "720p", 5) == pytest.approx(0.50)
    assert await storage.last_cost("pixverse/v5/text-to-video", "1080p", 5) is None


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
    assert ready == ("720p", 5, pytest.approx(took / 2, abs=1e-3), pytest.approx(took, abs=1e-3), BODY["model"])


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
    [(_, _, took, span, model)] = await storage.ready_times(limit=10)
    assert model == "pixverse/v5/text-to-video"
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


async def test_a_cancelled_task_stays_cancelled_when_its_wait_ends_elsewhere(storage: Storage) -> None:
    now = time.time()
    task = TaskRecord("task-1", "principal", now, now, ttl_seconds=60, generation_id="gen-1")
    await storage.save_task(task)

    assert await storage.finish_task(TaskRecord(**{**vars(task), "status": "cancelled"})) is True
    assert await storage.finish_task(TaskRecord(**{**vars(task), "status": "completed", "result": {}})) is False

    kept = await storage.get_task("task-1")
    assert kept is not None
    assert kept.status == "cancelled"


async def test_a_provider_document_is_kept_with_its_etag(storage: Storage) -> None:
    document = CachedDocument({"720p": [0.084, 1.0, True]}, 'W/"abc"', time.time())
    await storage.cache("prices:pixverse/v5/text-to-video", document)

    assert await storage.cached("prices:pixverse/v5/text-to-video") == document
    assert await storage.cached("prices:another") is None


async def test_retention_drops_old_finished_generations_only(storage: Storage) -> None:
    await create(storage, created("gen-old-done"))
    await create(storage, created("gen-old-running"))
    await storage.record_status(created("gen-old-done", status="completed", video_url="https://cdn.example/v.mp4"))

    removed = await storage.prune(before=time.time() + 60)

    assert removed == 1
    assert await storage.get("gen-old-done") is None
    assert await storage.get("gen-old-running") is not None


async def test_retention_goes_in_batches_until_every_old_finished_generation_is_gone(storage: Storage) -> None:
    for number in range(5):
        await create(storage, created(f"gen-{number}"), key=f"key-{number}")
        await storage.record_status(created(f"gen-{number}", status="completed", video_url="https://cdn.example/v"))

    removed = await storage.prune(before=time.time() + 60, batch=2)

    assert removed == 5
    assert await storage.recent() == []
    assert await storage.status_history("gen-0") == []


async def test_retention_never_drops_a_create_that_may_still_be_charged(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_days_ago = time.time() - 3 * 86_400
    monkeypatch.setattr(sql_module, "time", SimpleNamespace(time=lambda: three_days_ago))
    sending, settling, done = [await claim(storage, f"key-{name}") for name in ("sending", "settling", "done")]
    monkeypatch.undo()
    assert isinstance(sending, Proceed)
    assert isinstance(settling, Proceed)
    assert isinstance(done, Proceed)
    await storage.abandon_create(settling.intent_id, outcome_unknown=True, detail="no answer")
    await storage.complete_create(answered(done.intent_id, created("gen-done", status="completed"), "key-done"))

    await storage.prune(before=time.time() + 60, batch=1)

    assert {create.intent_id for create in await storage.pending_creates()} == {sending.intent_id, settling.intent_id}
    assert await storage.created_by(done.intent_id) is None  # settled, three days old: gone with its generation
    assert await storage.spent_since(three_days_ago) == pytest.approx(0.84)  # both still count against the cap


async def test_retention_keeps_a_used_confirmation_for_a_day_whatever_the_setting(storage: Storage) -> None:
    claimed = await claim(storage, confirmation="yes-once")
    assert isinstance(claimed, Proceed)
    await storage.complete_create(answered(claimed.intent_id, created(status="completed")))

    await storage.prune(before=time.time() + 60)

    assert await storage.get("gen-1:pixverse/v5/text-to-video") is None
    assert await storage.confirmation_used("yes-once")


async def test_daily_spend_sums_charged_videos_per_utc_day(storage: Storage) -> None:
    await create(storage, created("gen-1"))
    await create(storage, created("gen-2"))

    [(day, dollars, videos)] = await storage.daily_spend(days=7)

    assert day == time.strftime("%Y-%m-%d", time.gmtime())
    assert dollars == pytest.approx(0.84)
    assert videos == 2


# --- SQLite only: its file is the user's ------------------------------------------------------------------------


async def test_processes_opening_a_new_journal_at_once_all_open_it(tmp_path: Path) -> None:
    # SQLite answers "locked" to all but one connection switching a new file to WAL at the same moment, without
    # waiting: before the fix, about 1 new journal in 40 refused one of 8 openers. 40 journals, 8 openers each.
    for trial in range(40):
        stores = [open_storage(None, tmp_path / f"journal-{trial}.sqlite3") for _ in range(8)]
        try:
            async with anyio.create_task_group() as group:
                for store in stores:
                    group.start_soon(store.recent)
        finally:
            for store in stores:
                await store.close()


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


async def test_a_journal_with_a_damaged_page_takes_no_more_creates(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    store = open_storage(None, path)
    for index in range(300):
        await create(store, created(f"gen-{index}", error="x" * 200), key=f"key-{index}")
    await store.close()
    size = path.stat().st_size
    with path.open("r+b") as journal:  # one page in the middle, overwritten as a failing disk would
        journal.seek((size // 4096 // 2) * 4096)
        journal.write(b"\xde\xad\xbe\xef" * 1024)
    damaged = open_storage(None, path)

    async def claim_until_refused() -> None:
        with anyio.fail_after(10):
            while True:  # the background check (or the first read of the bad page) marks it damaged
                await claim(damaged, "key-after-damage")
                await anyio.sleep(0.1)

    try:
        with pytest.raises(StorageError):
            await claim_until_refused()
    finally:
        await damaged.close()


async def test_a_database_recreated_empty_is_migrated_again_without_a_restart(
    postgres: RunningPostgres, tmp_path: Path
) -> None:
    import asyncpg

    url = postgres.new_database()
    store = open_storage(url, tmp_path / "unused.sqlite3")
    try:
        await create(store, created("gen-before"))
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await connection.close()

        await create(store, created("gen-after"))

        assert await store.get("gen-after") is not None
        assert await store.get("gen-before") is None
    finally:
        await store.close()


async def test_a_row_with_unreadable_json_and_an_unknown_status_is_read_tolerantly(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    store = open_storage(None, path)
    try:
        await create(store, created("gen-odd"))
        with sqlite3.connect(path) as db:  # what another program, or a torn write, may leave behind
            db.execute("UPDATE generations SET request_json = '{\"cut', status = 'paused-forever' WHERE id = 'gen-odd'")
        entry = await store.get("gen-odd")
    finally:
        await store.close()

    assert entry is not None
    assert entry.request is None
    assert entry.status is GenerationStatus.UNKNOWN
    assert entry.usage == USAGE  # the readable columns are kept


# PostgreSQL only: replicas, a database that is down or newer, the driver.


async def test_a_replica_waiting_for_a_change_hears_another_replicas_status_at_once(
    postgres: RunningPostgres, tmp_path: Path
) -> None:
    url = postgres.new_database()
    waiting, writing = open_storage(url, tmp_path / "a.sqlite3"), open_storage(url, tmp_path / "b.sqlite3")
    try:
        await create(writing, created("gen-heard"))
        await waiting.get("gen-heard")  # connected, and listening
        async with anyio.create_task_group() as group:
            heard = anyio.Event()

            async def wait() -> None:
                await waiting.wait_for_change("gen-heard", timeout=120)
                heard.set()

            group.start_soon(wait)
            await anyio.sleep(0.1)
            await writing.record_status(created("gen-heard", status="generating"))
            with anyio.fail_after(30):  # long before the waiter's own 120 s are up
                await heard.wait()
    finally:
        await waiting.close()
        await writing.close()


async def test_before_it_connects_a_wait_for_change_returns_within_its_timeout(postgres: RunningPostgres) -> None:
    store = open_storage(postgres.new_database(), Path("unused.sqlite3"))
    with anyio.fail_after(30):
        await store.wait_for_change("gen-not-listened-for", timeout=0.05)
    await store.close()  # never opened: nothing to close


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_database_that_is_down_is_a_storage_error_that_names_it_without_its_password(tmp_path: Path) -> None:
    store = open_storage(f"postgresql://pixverse:s3cret-pw@127.0.0.1:{unused_port()}/journal", tmp_path / "x.db")

    with pytest.raises(StorageError) as refused:
        await store.recent()

    assert "postgresql://pixverse:***@127.0.0.1" in str(refused.value)
    assert "s3cret-pw" not in str(refused.value)
    await store.close()


async def test_a_database_from_a_newer_version_is_refused_and_left_alone(
    postgres: RunningPostgres, tmp_path: Path
) -> None:
    import asyncpg

    url = postgres.new_database()
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE TABLE pixverse_schema (version INTEGER NOT NULL)")
        await connection.execute("INSERT INTO pixverse_schema (version) VALUES (99)")
        store = open_storage(url, tmp_path / "unused.sqlite3")
        with pytest.raises(StorageError, match="newer pixverse-mcp"):
            await store.recent()
        await store.close()
        tables = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert [row["tablename"] for row in tables] == ["pixverse_schema"]
        assert await connection.fetchval("SELECT max(version) FROM pixverse_schema") == 99
    finally:
        await connection.close()


async def test_without_the_driver_a_database_url_is_refused_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_backend, "asyncpg", None)
    store = open_storage("postgresql://127.0.0.1/journal", tmp_path / "unused.sqlite3")

    with pytest.raises(StorageError, match=r"pip install 'aimlapi-pixverse-mcp\[postgres\]'"):
        await store._open()  # type: ignore[attr-defined]
