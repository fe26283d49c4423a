"""The default storage: one SQLite file (`journal.sqlite3` in the state directory), for one user.

SQLite runs in a worker thread (one connection, one operation at a time), so the event loop never blocks on disk,
and each operation is one transaction. A transaction that must see and write atomically (a create's claim, a lease)
begins IMMEDIATE, which locks the file for writers, so several server processes of one user sharing the file still
pay once and poll once. WAL lets them read meanwhile. The file is opened on first use, not at start-up.

Migrations are numbered; the file's `user_version` says which have run. A file from a newer version of this program
is never touched (a `StorageError` says so), and an unreadable file is never reset: the error names it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread

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

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

# Version 1 is the journal of pixverse-mcp 0.1 (generations and their status changes); later ones only add.
MIGRATIONS: Final[Sequence[str]] = (
    """
    CREATE TABLE generations (
        id           TEXT PRIMARY KEY,
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL,
        request_json TEXT,
        request_key  TEXT,
        status       TEXT NOT NULL,
        raw_status   TEXT,
        video_url    TEXT,
        error        TEXT,
        usage_json   TEXT,
        local_path   TEXT,
        file_size    INTEGER
    );
    CREATE INDEX generations_by_request ON generations (request_key, created_at);
    CREATE INDEX generations_by_time ON generations (created_at);
    CREATE TABLE status_changes (
        generation_id TEXT NOT NULL REFERENCES generations (id),
        at            REAL NOT NULL,
        status        TEXT NOT NULL,
        raw_status    TEXT
    );
    CREATE INDEX status_changes_by_generation ON status_changes (generation_id, at);
    """,
    """
    ALTER TABLE generations ADD COLUMN resolution TEXT;
    ALTER TABLE generations ADD COLUMN duration INTEGER;
    ALTER TABLE generations ADD COLUMN cost_usd REAL;
    ALTER TABLE generations ADD COLUMN completed_at REAL;
    UPDATE generations SET
        resolution = COALESCE(json_extract(request_json, '$.resolution'), '720p'),
        duration = COALESCE(json_extract(request_json, '$.duration'), 5)
        WHERE request_json IS NOT NULL AND json_valid(request_json);
    UPDATE generations SET completed_at = (
        SELECT MIN(at) FROM status_changes WHERE generation_id = generations.id AND status = 'completed'
    ) WHERE status = 'completed';
    CREATE INDEX generations_by_size ON generations (resolution, duration, completed_at);
    CREATE TABLE create_intents (
        id            TEXT PRIMARY KEY,
        created_at    REAL NOT NULL,
        request_key   TEXT NOT NULL,
        request_json  TEXT NOT NULL,
        estimate_usd  REAL,
        outcome_unknown INTEGER NOT NULL DEFAULT 0,
        detail        TEXT,
        generation_id TEXT
    );
    CREATE INDEX create_intents_by_request ON create_intents (request_key, created_at);
    CREATE TABLE leases (
        generation_id TEXT PRIMARY KEY,
        holder        TEXT NOT NULL,
        expires_at    REAL NOT NULL
    );
    CREATE TABLE tasks (
        id            TEXT PRIMARY KEY,
        principal     TEXT NOT NULL,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL,
        ttl_seconds   REAL NOT NULL,
        generation_id TEXT,
        status        TEXT NOT NULL,
        status_message TEXT,
        result_json   TEXT,
        arguments_json TEXT
    );
    """,
    # When a generation was last seen not ready: its ready time is between that and `completed_at`.
    """
    ALTER TABLE generations ADD COLUMN pending_until REAL;
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
# Reads of a generation's row by waiters that do not poll the API (another process holds the lease).
_CHANGE_POLL_SECONDS: Final = 0.25
_FINAL: Final = (GenerationStatus.COMPLETED.value, GenerationStatus.FAILED.value)


class SqliteStorage:
    """The journal at `path` (created with its folder on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._connection: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)

    async def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        await anyio.to_thread.run_sync(self.close_now, limiter=self._limiter)

    def close_now(self) -> None:
        """Close the connection from any thread (a shutdown path that cannot await)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _run(self, operation: Callable[[sqlite3.Connection], _T], *, immediate: bool = False) -> _T:
        def in_thread() -> _T:
            connection = self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
                result = operation(connection)
                connection.execute("COMMIT")
                return result
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

        try:
            return await anyio.to_thread.run_sync(in_thread, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise StorageError(
                f"The journal at {self.path} cannot be used ({type(exc).__name__}: {exc}). If it is damaged, move it "
                "aside (the server starts a new one; the old file keeps your generation ids) or restore a copy."
            ) from exc
        except OSError as exc:
            raise StorageError(
                f"The journal at {self.path} cannot be opened ({exc.strerror or exc}): check that its folder "
                "exists and is writable, or set PIXVERSE_MCP_STATE_DIR."
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN / BEGIN IMMEDIATE in `_run`).
            connection = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
            try:
                connection.row_factory = sqlite3.Row
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                _migrate(connection, self.path)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    async def claim_create(
        self, request: dict[str, Any], key: str, *, reattach_since: float | None, budget: Budget | None
    ) -> Claim:
        now = time.time()

        def claim(db: sqlite3.Connection) -> Claim:
            if reattach_since is not None:
                without_id = db.execute(
                    "SELECT id FROM create_intents WHERE request_key = ? AND created_at > ? AND generation_id IS NULL"
                    " ORDER BY created_at DESC LIMIT 1",
                    (key, reattach_since),
                ).fetchone()
                row = db.execute(
                    "SELECT * FROM generations WHERE request_key = ? AND created_at > ? AND status NOT IN (?, ?)"
                    " ORDER BY created_at DESC LIMIT 1",
                    (key, reattach_since, *_FINAL),
                ).fetchone()
                if row is not None:
                    return Reattach(_rows.entry(row))
                if without_id is not None:
                    return CreateInProgress(without_id["id"])
            estimate = None
            if budget is not None:
                estimate = _last_cost(db, request) or budget.default_estimate_usd
                spent = _spent_since(db, budget.day_start)
                if spent + estimate > budget.cap_usd + 1e-9:
                    return OverBudget(spent, estimate)
            intent_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO create_intents (id, created_at, request_key, request_json, estimate_usd)"
                " VALUES (?, ?, ?, ?, ?)",
                (intent_id, now, key, _rows.dumps(request), estimate),
            )
            return Proceed(intent_id, estimate)

        return await self._run(claim, immediate=True)

    async def complete_create(
        self, intent_id: str, generation: Generation, request: dict[str, Any], key: str, *, created_at: float
    ) -> None:

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO generations (id, created_at, updated_at, request_json, request_key, status,"
                " raw_status, usage_json, resolution, duration, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    clean_text(generation.id),
                    created_at,
                    created_at,
                    _rows.dumps(request),
                    key,
                    generation.status.value,
                    _rows.text(generation.raw_status),
                    _rows.dumps(generation.usage),
                    *request_size(request),
                    usage_cost_usd(generation.usage),
                ),
            )
            _add_status_change(db, generation, created_at)
            db.execute(
                "UPDATE create_intents SET generation_id = ? WHERE id = ?", (clean_text(generation.id), intent_id)
            )

        await self._run(insert)

    async def abandon_create(self, intent_id: str, *, outcome_unknown: bool, detail: str) -> None:
        def update(db: sqlite3.Connection) -> None:
            if outcome_unknown:
                db.execute(
                    "UPDATE create_intents SET outcome_unknown = 1, detail = ? WHERE id = ?",
                    (clean_text(detail), intent_id),
                )
            else:
                db.execute("DELETE FROM create_intents WHERE id = ?", (intent_id,))

        await self._run(update)

    async def pending_create(self, intent_id: str) -> PendingCreate | None:
        def select(db: sqlite3.Connection) -> PendingCreate | None:
            row = db.execute(
                "SELECT * FROM create_intents WHERE id = ? AND generation_id IS NULL", (intent_id,)
            ).fetchone()
            return _rows.pending(row, time.time()) if row is not None else None

        return await self._run(select)

    async def created_by(self, intent_id: str) -> JournalEntry | None:
        def select(db: sqlite3.Connection) -> JournalEntry | None:
            row = db.execute(
                "SELECT g.* FROM create_intents i JOIN generations g ON g.id = i.generation_id WHERE i.id = ?",
                (intent_id,),
            ).fetchone()
            return _rows.entry(row) if row is not None else None

        return await self._run(select)

    async def record_status(self, generation: Generation, *, pending_until: float | None = None) -> None:
        now = time.time()
        generation_id = clean_text(generation.id)

        def upsert(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT status FROM generations WHERE id = ?", (generation_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO generations (id, created_at, updated_at, status) VALUES (?, ?, ?, ?)",
                    (generation_id, now, now, generation.status.value),
                )
            completed = generation.status is GenerationStatus.COMPLETED
            db.execute(
                "UPDATE generations SET updated_at = ?, status = ?, raw_status = ?,"
                " video_url = COALESCE(?, video_url), error = COALESCE(?, error),"
                " usage_json = COALESCE(?, usage_json), cost_usd = COALESCE(cost_usd, ?),"
                " completed_at = COALESCE(completed_at, ?), pending_until = COALESCE(?, pending_until) WHERE id = ?",
                (
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
                ),
            )
            if row is None or row["status"] != generation.status.value:
                _add_status_change(db, generation, now)

        await self._run(upsert)

    async def record_download(self, generation_id: str, path: Path, size: int) -> None:
        def update(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE generations SET local_path = ?, file_size = ?, updated_at = ? WHERE id = ?",
                (clean_text(str(path)), size, time.time(), clean_text(generation_id)),
            )

        await self._run(update)

    async def get(self, generation_id: str) -> JournalEntry | None:
        def select(db: sqlite3.Connection) -> JournalEntry | None:
            row = db.execute("SELECT * FROM generations WHERE id = ?", (clean_text(generation_id),)).fetchone()
            return _rows.entry(row) if row is not None else None

        return await self._run(select)

    async def status_history(self, generation_id: str) -> list[tuple[float, str]]:
        def select(db: sqlite3.Connection) -> list[tuple[float, str]]:
            rows = db.execute(
                "SELECT at, status FROM status_changes WHERE generation_id = ? ORDER BY at, rowid",
                (clean_text(generation_id),),
            ).fetchall()
            return [(row["at"], row["status"]) for row in rows]

        return await self._run(select)

    async def recent(self, *, limit: int = 20, status: GenerationStatus | None = None) -> list[JournalEntry]:
        def select(db: sqlite3.Connection) -> list[JournalEntry]:
            if status is None:
                rows = db.execute("SELECT * FROM generations ORDER BY created_at DESC LIMIT ?", (limit,))
            else:
                rows = db.execute(
                    "SELECT * FROM generations WHERE status = ? ORDER BY created_at DESC LIMIT ?",
                    (status.value, limit),
                )
            return [_rows.entry(row) for row in rows.fetchall()]

        return await self._run(select)

    async def pending_creates(self, *, limit: int = 20) -> list[PendingCreate]:
        def select(db: sqlite3.Connection) -> list[PendingCreate]:
            rows = db.execute(
                "SELECT * FROM create_intents WHERE generation_id IS NULL ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
            now = time.time()
            return [_rows.pending(row, now) for row in rows]

        return await self._run(select)

    async def spent_since(self, since: float) -> float:
        return await self._run(lambda db: _spent_since(db, since))

    async def daily_spend(self, *, days: int) -> list[tuple[str, float, int]]:
        since = time.time() - days * 86_400

        def select(db: sqlite3.Connection) -> list[tuple[str, float, int]]:
            rows = db.execute(
                "SELECT date(created_at, 'unixepoch') AS day, SUM(COALESCE(cost_usd, 0)) AS spent, COUNT(*) AS videos"
                " FROM generations WHERE created_at >= ? AND request_key IS NOT NULL"
                " GROUP BY day ORDER BY day DESC",
                (since,),
            ).fetchall()
            return [(row["day"], float(row["spent"]), int(row["videos"])) for row in rows]

        return await self._run(select)

    async def ready_times(self, *, limit: int) -> list[ReadyTime]:
        def select(db: sqlite3.Connection) -> list[ReadyTime]:
            rows = db.execute(
                "SELECT resolution, duration, created_at, pending_until, completed_at"
                " FROM generations WHERE completed_at IS NOT NULL AND request_key IS NOT NULL"
                " AND resolution IS NOT NULL AND duration IS NOT NULL ORDER BY completed_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [_rows.ready_time(row) for row in rows]

        return await self._run(select)

    async def hold_lease(
        self, generation_id: str, holder: str, *, ttl_seconds: float, replacing: str | None = None
    ) -> str | None:
        now = time.time()
        generation_id = clean_text(generation_id)

        def take(db: sqlite3.Connection) -> str | None:
            taken = db.execute(
                "INSERT INTO leases (generation_id, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (generation_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE leases.holder = excluded.holder OR leases.expires_at < ? OR leases.holder = ?"
                " RETURNING holder",
                (generation_id, holder, now + ttl_seconds, now, replacing),
            ).fetchone()
            if taken is not None:
                return None
            row = db.execute("SELECT holder FROM leases WHERE generation_id = ?", (generation_id,)).fetchone()
            return str(row["holder"]) if row is not None else None

        return await self._run(take, immediate=True)

    async def release_lease(self, generation_id: str, holder: str) -> None:
        await self._run(
            lambda db: db.execute(
                "DELETE FROM leases WHERE generation_id = ? AND holder = ?", (clean_text(generation_id), holder)
            )
        )

    async def wait_for_change(self, generation_id: str, *, timeout: float) -> None:
        # No notifications between SQLite processes: a short read loop is the honest answer.
        await anyio.sleep(min(timeout, _CHANGE_POLL_SECONDS))

    async def save_task(self, task: TaskRecord) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO tasks (id, principal, created_at, updated_at, ttl_seconds, generation_id,"
                " status, status_message, result_json, arguments_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _rows.task_values(task),
            )
        )

    async def get_task(self, task_id: str) -> TaskRecord | None:
        def select(db: sqlite3.Connection) -> TaskRecord | None:
            row = db.execute("SELECT * FROM tasks WHERE id = ?", (clean_text(task_id),)).fetchone()
            return _rows.task(row) if row is not None else None

        return await self._run(select)

    async def delete_expired_tasks(self, now: float) -> int:
        def delete(db: sqlite3.Connection) -> int:
            return db.execute("DELETE FROM tasks WHERE created_at + ttl_seconds < ?", (now,)).rowcount

        return await self._run(delete)


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    """Bring the file up to `SCHEMA_VERSION`, one migration per transaction (re-reading the version under the lock,
    so two processes opening a new file at once migrate it once); refuse a file a newer program wrote."""
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'generations'").fetchone():
                version = 1  # pixverse-mcp 0.1 created its tables before it wrote user_version
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"The journal at {path} was written by a newer pixverse-mcp (schema {version}; this one knows up "
                    f"to {SCHEMA_VERSION}). Upgrade pixverse-mcp, or point PIXVERSE_MCP_STATE_DIR elsewhere; the "
                    "file is left as it is."
                )
            if version == SCHEMA_VERSION:
                connection.execute("COMMIT")
                return
            # `executescript` would commit on its own: run the statements inside this transaction instead.
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        logger.info("journal %s migrated to schema %d", path, version + 1)


def _spent_since(db: sqlite3.Connection, since: float) -> float:
    """Charged generations plus creates still without an answer (they may have been charged: count them)."""
    charged = db.execute(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM generations WHERE created_at >= ? AND request_key IS NOT NULL",
        (since,),
    ).fetchone()[0]
    reserved = db.execute(
        "SELECT COALESCE(SUM(estimate_usd), 0) FROM create_intents WHERE created_at >= ? AND generation_id IS NULL",
        (since,),
    ).fetchone()[0]
    return float(charged) + float(reserved)


def _last_cost(db: sqlite3.Connection, request: dict[str, Any]) -> float | None:
    row = db.execute(
        "SELECT cost_usd FROM generations WHERE resolution = ? AND duration = ? AND cost_usd IS NOT NULL"
        " ORDER BY created_at DESC LIMIT 1",
        request_size(request),
    ).fetchone()
    return float(row[0]) if row is not None else None


def _add_status_change(db: sqlite3.Connection, generation: Generation, at: float) -> None:
    db.execute(
        "INSERT INTO status_changes (generation_id, at, status, raw_status) VALUES (?, ?, ?, ?)",
        (clean_text(generation.id), at, generation.status.value, _rows.text(generation.raw_status)),
    )
