"""Storage on PostgreSQL, for several replicas behind a load balancer (`PIXVERSE_MCP_DATABASE_URL`).

Needs the extra `aimlapi-pixverse-mcp[postgres]` (asyncpg, the maintained asyncio driver with its own pool and LISTEN
support). The same tables as the SQLite journal; what differs is how replicas agree:
- a create's claim runs in one transaction under advisory locks (one per request key, one for the spending cap), so
  identical calls arriving on different replicas at once make one POST and the cap holds across replicas;
- a status change is announced with NOTIFY, so waiters on replicas that do not poll hear it at once (LISTEN), with a
  short read loop as the fallback while the listening connection is down.

The pool is created on first use: a server whose database is down still starts, and its tools say so. Migrations
run once per database (under an advisory lock), numbered in `pixverse_schema`; a newer schema is never touched.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio

from pixverse_mcp.models import Generation, GenerationStatus, clean_text, request_size, usage_cost_usd
from pixverse_mcp.polling import ReadyTime
from pixverse_mcp.storage import (
    Budget,
    Claim,
    CreateInProgress,
    JournalEntry,
    OverBudget,
    PendingCreate,
    Proceed,
    Reattach,
    StorageError,
    TaskRecord,
    _rows,
)

try:
    import asyncpg
except ImportError:  # pragma: no cover - the message below says what to install
    asyncpg = None

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

MIGRATIONS: Final[Sequence[str]] = (
    """
    CREATE TABLE generations (
        id            TEXT PRIMARY KEY,
        created_at    DOUBLE PRECISION NOT NULL,
        updated_at    DOUBLE PRECISION NOT NULL,
        request_json  TEXT,
        request_key   TEXT,
        status        TEXT NOT NULL,
        raw_status    TEXT,
        video_url     TEXT,
        error         TEXT,
        usage_json    TEXT,
        local_path    TEXT,
        file_size     BIGINT,
        resolution    TEXT,
        duration      INTEGER,
        cost_usd      DOUBLE PRECISION,
        completed_at  DOUBLE PRECISION
    );
    CREATE INDEX generations_by_request ON generations (request_key, created_at);
    CREATE INDEX generations_by_time ON generations (created_at);
    CREATE INDEX generations_by_size ON generations (resolution, duration, completed_at);
    CREATE TABLE status_changes (
        id            BIGSERIAL PRIMARY KEY,
        generation_id TEXT NOT NULL REFERENCES generations (id),
        at            DOUBLE PRECISION NOT NULL,
        status        TEXT NOT NULL,
        raw_status    TEXT
    );
    CREATE INDEX status_changes_by_generation ON status_changes (generation_id, at);
    CREATE TABLE create_intents (
        id              TEXT PRIMARY KEY,
        created_at      DOUBLE PRECISION NOT NULL,
        request_key     TEXT NOT NULL,
        request_json    TEXT NOT NULL,
        estimate_usd    DOUBLE PRECISION,
        outcome_unknown BOOLEAN NOT NULL DEFAULT FALSE,
        detail          TEXT,
        generation_id   TEXT
    );
    CREATE INDEX create_intents_by_request ON create_intents (request_key, created_at);
    CREATE TABLE leases (
        generation_id TEXT PRIMARY KEY,
        holder        TEXT NOT NULL,
        expires_at    DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE tasks (
        id             TEXT PRIMARY KEY,
        principal      TEXT NOT NULL,
        created_at     DOUBLE PRECISION NOT NULL,
        updated_at     DOUBLE PRECISION NOT NULL,
        ttl_seconds    DOUBLE PRECISION NOT NULL,
        generation_id  TEXT,
        status         TEXT NOT NULL,
        status_message TEXT,
        result_json    TEXT,
        arguments_json TEXT
    );
    """,
    # When a generation was last seen not ready: its ready time is between that and `completed_at`.
    """
    ALTER TABLE generations ADD COLUMN pending_until DOUBLE PRECISION;
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
CHANNEL: Final = "pixverse_generations"
# Advisory lock ids (any 64-bit numbers, fixed): migrations, and the spending cap's one-at-a-time check.
_MIGRATION_LOCK: Final = 0x70697876_00000001
_BUDGET_LOCK: Final = 0x70697876_00000002
# Without a listening connection, waiters that do not poll read the row this often.
_CHANGE_POLL_SECONDS: Final = 0.25
_FINAL: Final = (GenerationStatus.COMPLETED.value, GenerationStatus.FAILED.value)


def redacted(url: str) -> str:
    """The database URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStorage:
    """Storage in the PostgreSQL database at `url` (a pool of connections, opened on first use)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._url = url
        self.location = redacted(url)
        self._min_size = min_size
        self._max_size = max_size
        self._pool: Any = None
        self._listener: Any = None
        self._opening = anyio.Lock()
        self._changed: dict[str, anyio.Event] = {}

    async def _open(self) -> Any:
        if self._pool is not None:
            return self._pool
        if asyncpg is None:
            raise StorageError(
                "PIXVERSE_MCP_DATABASE_URL is set but the PostgreSQL driver is missing: "
                "pip install 'aimlapi-pixverse-mcp[postgres]'."
            )
        async with self._opening:
            if self._pool is None:
                pool = await asyncpg.create_pool(self._url, min_size=self._min_size, max_size=self._max_size)
                try:
                    async with pool.acquire() as connection:
                        await _migrate(connection, self.location)
                    await self._listen()
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    async def _listen(self) -> None:
        """One connection of its own that LISTENs for status changes and wakes the waiters on this replica."""
        connection = await asyncpg.connect(self._url)

        def heard(_connection: Any, _pid: int, _channel: str, generation_id: str) -> None:
            event = self._changed.pop(generation_id, None)
            if event is not None:
                event.set()

        await connection.add_listener(CHANNEL, heard)
        self._listener = connection

    async def close(self) -> None:
        if self._pool is None:
            return
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        await self._pool.close()
        self._pool = None

    async def _run(self, operation: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run `operation(connection)` in one transaction; database trouble becomes a `StorageError`."""
        try:
            pool = await self._open()
            async with pool.acquire() as connection, connection.transaction():
                return await operation(connection)
        except StorageError:
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageError(
                f"The database at {self.location} cannot be used right now ({type(exc).__name__}: {exc}). "
                "Nothing was sent to the AI/ML API for this call; try again once the database is back."
            ) from exc

    async def claim_create(
        self, request: dict[str, Any], key: str, *, reattach_since: float | None, budget: Budget | None
    ) -> Claim:
        now = time.time()

        async def claim(db: Any) -> Claim:
            if reattach_since is not None:
                await db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
                # The intents before the generations: a create that completes meanwhile fills in its intent and
                # adds its generation in one transaction, so whenever it commits, one of the two reads sees it.
                # (Read the other way round, a commit between them hides it from both: a second create.)
                without_id = await db.fetchval(
                    "SELECT id FROM create_intents WHERE request_key = $1 AND created_at > $2 AND generation_id IS NULL"
                    " ORDER BY created_at DESC LIMIT 1",
                    key,
                    reattach_since,
                )
                row = await db.fetchrow(
                    "SELECT * FROM generations WHERE request_key = $1 AND created_at > $2 AND status <> ALL($3)"
                    " ORDER BY created_at DESC LIMIT 1",
                    key,
                    reattach_since,
                    list(_FINAL),
                )
                if row is not None:
                    return Reattach(_rows.entry(row))
                if without_id is not None:
                    return CreateInProgress(without_id)
            estimate = None
            if budget is not None:
                await db.execute("SELECT pg_advisory_xact_lock($1)", _BUDGET_LOCK)
                estimate = await _last_cost(db, request) or budget.default_estimate_usd
                spent = await _spent_since(db, budget.day_start)
                if spent + estimate > budget.cap_usd + 1e-9:
                    return OverBudget(spent, estimate)
            intent_id = uuid.uuid4().hex
            await db.execute(
                "INSERT INTO create_intents (id, created_at, request_key, request_json, estimate_usd)"
                " VALUES ($1, $2, $3, $4, $5)",
                intent_id,
                now,
                key,
                json.dumps(request),
                estimate,
            )
            return Proceed(intent_id, estimate)

        return await self._run(claim)

    async def complete_create(
        self, intent_id: str, generation: Generation, request: dict[str, Any], key: str, *, created_at: float
    ) -> None:
        generation_id = clean_text(generation.id)

        async def insert(db: Any) -> None:
            await db.execute(
                "INSERT INTO generations (id, created_at, updated_at, request_json, request_key, status, raw_status,"
                " usage_json, resolution, duration, cost_usd) VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                " ON CONFLICT (id) DO NOTHING",
                generation_id,
                created_at,
                json.dumps(request),
                key,
                generation.status.value,
                _rows.text(generation.raw_status),
                _rows.dumps(generation.usage),
                *request_size(request),
                usage_cost_usd(generation.usage),
            )
            await _add_status_change(db, generation, created_at)
            await db.execute("UPDATE create_intents SET generation_id = $1 WHERE id = $2", generation_id, intent_id)

        await self._run(insert)

    async def abandon_create(self, intent_id: str, *, outcome_unknown: bool, detail: str) -> None:
        async def update(db: Any) -> None:
            if outcome_unknown:
                await db.execute(
                    "UPDATE create_intents SET outcome_unknown = TRUE, detail = $1 WHERE id = $2",
                    clean_text(detail),
                    intent_id,
                )
            else:
                await db.execute("DELETE FROM create_intents WHERE id = $1", intent_id)

        await self._run(update)

    async def pending_create(self, intent_id: str) -> PendingCreate | None:
        async def select(db: Any) -> PendingCreate | None:
            row = await db.fetchrow("SELECT * FROM create_intents WHERE id = $1 AND generation_id IS NULL", intent_id)
            return _rows.pending(row, time.time()) if row is not None else None

        return await self._run(select)

    async def created_by(self, intent_id: str) -> JournalEntry | None:
        async def select(db: Any) -> JournalEntry | None:
            row = await db.fetchrow(
                "SELECT g.* FROM create_intents i JOIN generations g ON g.id = i.generation_id WHERE i.id = $1",
                intent_id,
            )
            return _rows.entry(row) if row is not None else None

        return await self._run(select)

    async def record_status(self, generation: Generation, *, pending_until: float | None = None) -> None:
        now = time.time()
        generation_id = clean_text(generation.id)
        completed = generation.status is GenerationStatus.COMPLETED

        async def upsert(db: Any) -> None:
            previous = await db.fetchval("SELECT status FROM generations WHERE id = $1 FOR UPDATE", generation_id)
            if previous is None:
                await db.execute(
                    "INSERT INTO generations (id, created_at, updated_at, status) VALUES ($1, $2, $2, $3)"
                    " ON CONFLICT (id) DO NOTHING",
                    generation_id,
                    now,
                    generation.status.value,
                )
            await db.execute(
                "UPDATE generations SET updated_at = $1, status = $2, raw_status = $3,"
                " video_url = COALESCE($4, video_url), error = COALESCE($5, error),"
                " usage_json = COALESCE($6, usage_json), cost_usd = COALESCE(cost_usd, $7),"
                " completed_at = COALESCE(completed_at, $8), pending_until = COALESCE($9, pending_until)"
                " WHERE id = $10",
                now,
                generation.status.value,
                _rows.text(generation.raw_status),
                _rows.text(generation.video_url),
                _rows.text(generation.error),
                _rows.dumps(generation.usage),
                usage_cost_usd(generation.usage),
                now if completed else None,
                pending_until,
                generation_id,
            )
            if previous != generation.status.value:
                await _add_status_change(db, generation, now)
                await db.execute("SELECT pg_notify($1, $2)", CHANNEL, generation_id[:7000])

        await self._run(upsert)

    async def record_download(self, generation_id: str, path: Path, size: int) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE generations SET local_path = $1, file_size = $2, updated_at = $3 WHERE id = $4",
                clean_text(str(path)),
                size,
                time.time(),
                clean_text(generation_id),
            )
        )

    async def get(self, generation_id: str) -> JournalEntry | None:
        async def select(db: Any) -> JournalEntry | None:
            row = await db.fetchrow("SELECT * FROM generations WHERE id = $1", clean_text(generation_id))
            return _rows.entry(row) if row is not None else None

        return await self._run(select)

    async def status_history(self, generation_id: str) -> list[tuple[float, str]]:
        async def select(db: Any) -> list[tuple[float, str]]:
            rows = await db.fetch(
                "SELECT at, status FROM status_changes WHERE generation_id = $1 ORDER BY at, id",
                clean_text(generation_id),
            )
            return [(float(row["at"]), str(row["status"])) for row in rows]

        return await self._run(select)

    async def recent(self, *, limit: int = 20, status: GenerationStatus | None = None) -> list[JournalEntry]:
        async def select(db: Any) -> list[JournalEntry]:
            if status is None:
                rows = await db.fetch("SELECT * FROM generations ORDER BY created_at DESC LIMIT $1", limit)
            else:
                rows = await db.fetch(
                    "SELECT * FROM generations WHERE status = $1 ORDER BY created_at DESC LIMIT $2",
                    status.value,
                    limit,
                )
            return [_rows.entry(row) for row in rows]

        return await self._run(select)

    async def pending_creates(self, *, limit: int = 20) -> list[PendingCreate]:
        async def select(db: Any) -> list[PendingCreate]:
            rows = await db.fetch(
                "SELECT * FROM create_intents WHERE generation_id IS NULL ORDER BY created_at DESC LIMIT $1", limit
            )
            now = time.time()
            return [_rows.pending(row, now) for row in rows]

        return await self._run(select)

    async def spent_since(self, since: float) -> float:
        return await self._run(lambda db: _spent_since(db, since))

    async def daily_spend(self, *, days: int) -> list[tuple[str, float, int]]:
        since = time.time() - days * 86_400

        async def select(db: Any) -> list[tuple[str, float, int]]:
            rows = await db.fetch(
                "SELECT to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,"
                " SUM(COALESCE(cost_usd, 0)) AS spent, COUNT(*) AS videos FROM generations"
                " WHERE created_at >= $1 AND request_key IS NOT NULL GROUP BY day ORDER BY day DESC",
                since,
            )
            return [(str(row["day"]), float(row["spent"]), int(row["videos"])) for row in rows]

        return await self._run(select)

    async def ready_times(self, *, limit: int) -> list[ReadyTime]:
        async def select(db: Any) -> list[ReadyTime]:
            rows = await db.fetch(
                "SELECT resolution, duration, created_at, pending_until, completed_at"
                " FROM generations WHERE completed_at IS NOT NULL AND request_key IS NOT NULL"
                " AND resolution IS NOT NULL AND duration IS NOT NULL ORDER BY completed_at DESC LIMIT $1",
                limit,
            )
            return [_rows.ready_time(row) for row in rows]

        return await self._run(select)

    async def hold_lease(
        self, generation_id: str, holder: str, *, ttl_seconds: float, replacing: str | None = None
    ) -> str | None:
        now = time.time()
        generation_id = clean_text(generation_id)

        async def take(db: Any) -> str | None:
            taken = await db.fetchval(
                "INSERT INTO leases (generation_id, holder, expires_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (generation_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
                " WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < $4 OR leases.holder = $5"
                " RETURNING holder",
                generation_id,
                holder,
                now + ttl_seconds,
                now,
                replacing,
            )
            if taken is not None:
                return None
            current = await db.fetchval("SELECT holder FROM leases WHERE generation_id = $1", generation_id)
            return str(current) if current is not None else None

        return await self._run(take)

    async def release_lease(self, generation_id: str, holder: str) -> None:
        await self._run(
            lambda db: db.execute(
                "DELETE FROM leases WHERE generation_id = $1 AND holder = $2", clean_text(generation_id), holder
            )
        )

    async def wait_for_change(self, generation_id: str, *, timeout: float) -> None:
        if self._listener is None:
            await anyio.sleep(min(timeout, _CHANGE_POLL_SECONDS))
            return
        event = self._changed.setdefault(clean_text(generation_id), anyio.Event())
        with anyio.move_on_after(timeout):
            await event.wait()

    async def save_task(self, task: TaskRecord) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO tasks (id, principal, created_at, updated_at, ttl_seconds, generation_id, status,"
                " status_message, result_json, arguments_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                " ON CONFLICT (id) DO UPDATE SET updated_at = EXCLUDED.updated_at, ttl_seconds = EXCLUDED.ttl_seconds,"
                " generation_id = EXCLUDED.generation_id, status = EXCLUDED.status,"
                " status_message = EXCLUDED.status_message, result_json = EXCLUDED.result_json,"
                " arguments_json = EXCLUDED.arguments_json",
                *_rows.task_values(task),
            )
        )

    async def get_task(self, task_id: str) -> TaskRecord | None:
        async def select(db: Any) -> TaskRecord | None:
            row = await db.fetchrow("SELECT * FROM tasks WHERE id = $1", clean_text(task_id))
            return _rows.task(row) if row is not None else None

        return await self._run(select)

    async def delete_expired_tasks(self, now: float) -> int:
        async def delete(db: Any) -> int:
            deleted = await db.execute("DELETE FROM tasks WHERE created_at + ttl_seconds < $1", now)
            return int(str(deleted).rsplit(" ", 1)[-1])

        return await self._run(delete)


async def _migrate(connection: Any, location: str) -> None:
    """Bring the database up to `SCHEMA_VERSION` (one replica at a time); refuse a newer schema."""
    await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await connection.execute("CREATE TABLE IF NOT EXISTS pixverse_schema (version INTEGER NOT NULL)")
        version = await connection.fetchval("SELECT max(version) FROM pixverse_schema") or 0
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"The database at {location} holds schema {version} of a newer pixverse-mcp (this one knows up to "
                f"{SCHEMA_VERSION}). Upgrade this replica; the database is left as it is."
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            async with connection.transaction():
                await connection.execute(MIGRATIONS[number - 1])
                await connection.execute("INSERT INTO pixverse_schema (version) VALUES ($1)", number)
            logger.info("database %s migrated to schema %d", location, number)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


async def _spent_since(db: Any, since: float) -> float:
    """Charged generations plus creates still without an answer (they may have been charged: count them)."""
    charged = await db.fetchval(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM generations WHERE created_at >= $1 AND request_key IS NOT NULL",
        since,
    )
    reserved = await db.fetchval(
        "SELECT COALESCE(SUM(estimate_usd), 0) FROM create_intents WHERE created_at >= $1 AND generation_id IS NULL",
        since,
    )
    return float(charged) + float(reserved)


async def _last_cost(db: Any, request: dict[str, Any]) -> float | None:
    cost = await db.fetchval(
        "SELECT cost_usd FROM generations WHERE resolution = $1 AND duration = $2 AND cost_usd IS NOT NULL"
        " ORDER BY created_at DESC LIMIT 1",
        *request_size(request),
    )
    return float(cost) if cost is not None else None


async def _add_status_change(db: Any, generation: Generation, at: float) -> None:
    await db.execute(
        "INSERT INTO status_changes (generation_id, at, status, raw_status) VALUES ($1, $2, $3, $4)",
        clean_text(generation.id),
        at,
        generation.status.value,
        _rows.text(generation.raw_status),
    )
