"""A journal that scales: every statement on a hot path reads through an index (asserted from SQLite's query plans,
never from timings), journals of the previous schema are upgraded in place on both backends, and what a create
reads is never stale across processes sharing the journal.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from pixverse_mcp.models import Generation, GenerationStatus
from pixverse_mcp.storage import AnsweredCreate, Budget, CreateClaim, OverBudget, Proceed, Storage, utc_midnight
from pixverse_mcp.storage import postgres as postgres_backend
from pixverse_mcp.storage import sqlite as sqlite_backend
from pixverse_mcp.storage.postgres import PostgresStorage
from pixverse_mcp.storage.sqlite import SqliteStorage
from tests.postgres_server import RunningPostgres

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("postgres")]

BODY = {"model": "pixverse/v5/text-to-video", "prompt": "a paper boat", "resolution": "720p", "duration": 5}
# The indexes the migration for issue 23 adds.
NEW_INDEXES = {"generations_charged", "create_intents_by_state"}
# A plan line that reads a whole table: "SCAN generations" (SQLite says "SCAN t USING INDEX i" for an ordered walk).
FULL_SCAN = re.compile(r"\bSCAN (generations|create_intents|status_changes)\b(?! USING)")


async def create(storage: Storage, number: int, *, cap: float | None = None) -> Proceed | OverBudget:
    claim = CreateClaim(
        BODY,
        f"key-{number}",
        sender="test",
        reattach_since=time.time() - 600,
        budget=Budget(cap, 0.42) if cap is not None else None,
        estimate_usd=0.42,
    )
    claimed = await storage.claim_create(claim)
    assert isinstance(claimed, Proceed | OverBudget)
    if isinstance(claimed, Proceed):
        generation = Generation(id=f"gen-{number}", status=GenerationStatus.QUEUED, usage={"tokens_used": 840_000})
        await storage.complete_create(
            AnsweredCreate(claimed.intent_id, generation, BODY, f"key-{number}", time.time(), 0.42)
        )
    return claimed


async def hot_paths(storage: Storage) -> None:
    """What create_video, get_video_status, list_videos, a wait and retention run, once each."""
    await storage.last_cost("pixverse/v5/text-to-video", "720p", 5)
    await storage.spent_since(utc_midnight(time.time()))
    await create(storage, 99, cap=100.0)
    await storage.ready_times(limit=200)
    await storage.get("gen-1")
    await storage.record_status(Generation(id="gen-1", status=GenerationStatus.COMPLETED, video_url="https://v"))
    await storage.status_history("gen-1")
    await storage.recent(limit=20)
    await storage.recent(limit=20, status=GenerationStatus.GENERATING)
    await storage.pending_creates(limit=20)
    await storage.settling_creates(limit=20)
    await storage.daily_spend(days=7)
    await storage.prune(before=time.time() - 86_400)


async def test_every_statement_on_a_hot_path_reads_through_an_index(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    storage = SqliteStorage(path)
    statements: list[str] = []
    try:
        for number in range(5):
            await create(storage, number)
        storage._connect().set_trace_callback(statements.append)
        await hot_paths(storage)
    finally:
        await storage.close()

    with sqlite3.connect(path) as db:
        plans = {
            sql: [str(line[3]) for line in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for sql in statements
            if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT"))
        }
    assert len(plans) > 20
    scans = {sql: plan for sql, plan in plans.items() if any(FULL_SCAN.search(line) for line in plan)}
    assert scans == {}


async def test_the_spending_cap_sees_another_process_spend_at_once(tmp_path: Path) -> None:
    # Nothing a claim reads is cached: the cap holds across processes sharing one journal (two storages, one file).
    first, second = SqliteStorage(tmp_path / "journal.sqlite3"), SqliteStorage(tmp_path / "journal.sqlite3")
    try:
        assert await second.spent_since(utc_midnight(time.time())) == 0
        await create(first, 1)

        assert await second.spent_since(utc_midnight(time.time())) == pytest.approx(0.42)
        assert isinstance(await create(second, 2, cap=0.5), OverBudget)
    finally:
        await first.close()
        await second.close()


async def assert_the_old_row_reads_as_before(storage: Any) -> None:
    """The upgraded journal still lists the previous schema's video, and the cap still counts its cost."""
    try:
        [entry] = await storage.recent()
        spent = await storage.spent_since(utc_midnight(time.time()))
    finally:
        await storage.close()
    assert (entry.generation_id, entry.cost_usd, entry.model) == ("gen-old", 0.42, BODY["model"])
    assert spent == pytest.approx(0.42)


async def test_a_journal_of_the_previous_schema_is_upgraded_with_its_rows_intact_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    previous = sqlite_backend.SCHEMA_VERSION - 1
    with sqlite3.connect(path) as db:
        for migration in sqlite_backend.MIGRATIONS[:previous]:
            db.executescript(migration)
        db.execute(
            "INSERT INTO generations (id, created_at, updated_at, request_json, request_key, status, model,"
            " resolution, duration, cost_usd) VALUES ('gen-old', ?, ?, '{}', 'k', 'completed', ?, '720p', 5, 0.42)",
            (time.time(), time.time(), BODY["model"]),
        )
        db.execute(f"PRAGMA user_version = {previous}")

    await assert_the_old_row_reads_as_before(SqliteStorage(path))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_backend.SCHEMA_VERSION
        indexes = {str(name) for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert indexes >= NEW_INDEXES


async def test_a_database_of_the_previous_schema_is_upgraded_with_its_rows_intact_on_postgres(
    postgres: RunningPostgres,
) -> None:
    import asyncpg

    url = postgres.new_database()
    previous = postgres_backend.SCHEMA_VERSION - 1
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE TABLE pixverse_schema (version INTEGER NOT NULL)")
        for number, migration in enumerate(postgres_backend.MIGRATIONS[:previous], start=1):
            await connection.execute(migration)
            await connection.execute("INSERT INTO pixverse_schema (version) VALUES ($1)", number)
        await connection.execute(
            "INSERT INTO generations (id, created_at, updated_at, request_json, request_key, status, model,"
            " resolution, duration, cost_usd) VALUES ('gen-old', $1, $1, '{}', 'k', 'completed', $2, '720p', 5, 0.42)",
            time.time(),
            BODY["model"],
        )
    finally:
        await connection.close()

    await assert_the_old_row_reads_as_before(PostgresStorage(url))
    connection = await asyncpg.connect(url)
    try:
        version = await connection.fetchval("SELECT max(version) FROM pixverse_schema")
        indexes = {str(found["indexname"]) for found in await connection.fetch("SELECT indexname FROM pg_indexes")}
    finally:
        await connection.close()
    assert version == postgres_backend.SCHEMA_VERSION
    assert indexes >= NEW_INDEXES
