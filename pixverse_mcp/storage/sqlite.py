"""The default storage: one SQLite file (`journal.sqlite3` in the state directory), for one user.

SQLite runs in a worker thread (one connection, one operation at a time), so the event loop never blocks on disk,
and each operation is one transaction. A transaction that must see and write atomically (a create's claim, a lease)
begins IMMEDIATE, which locks the file for writers, so several server processes of one user sharing the file still
pay once and poll once. WAL lets them read meanwhile. The file is opened on first use, not at start-up.

Migrations are numbered; the file's `user_version` says which have run. A file from a newer version of this program
is never touched (a `StorageError` says so), and an unreadable file is never reset: the error names it. A file that
reports damage (an operation that hits a bad page, or the integrity check run in the background when the file is
first opened) takes no more creates in this process: no paid id may depend on it (an id already answered goes to
the spool).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread

from pixverse_mcp.storage import StorageError
from pixverse_mcp.storage.sql import SHARED_MIGRATIONS, Dialect, Op, Query, SqlStorage

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
    *SHARED_MIGRATIONS,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
# Reads of a generation's row by waiters that do not poll the API (another process holds the lease).
_CHANGE_POLL_SECONDS: Final = 0.25
# How long a statement waits for another process's lock on the file before it gives up (a StorageError).
_BUSY_SECONDS: Final = 10.0


class SqliteStorage(SqlStorage):
    """The journal at `path` (created with its folder on first use)."""

    dialect = Dialect("sqlite")

    def __init__(self, path: Path, *, busy_seconds: float = _BUSY_SECONDS) -> None:
        self.path = path
        self.location = str(path)
        self._busy_seconds = busy_seconds
        self._connection: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._damage: str | None = None

    async def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        await anyio.to_thread.run_sync(self.close_now, limiter=self._limiter)

    def close_now(self) -> None:
        """Close the connection from any thread (a shutdown path that cannot await)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _run(self, operation: Callable[[], Op[_T]], *, exclusive: bool = False) -> _T:
        def in_thread() -> _T:
            connection = self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE" if exclusive else "BEGIN")
                result = _drive(connection, operation())
                connection.execute("COMMIT")
                return result
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

        if exclusive and self._damage is not None:
            raise StorageError(self._damage)
        try:
            return await anyio.to_thread.run_sync(in_thread, limiter=self._limiter)
        except sqlite3.Error as exc:
            message = (
                f"The journal at {self.path} cannot be used ({type(exc).__name__}: {exc}). If it is damaged, move it "
                "aside (the server starts a new one; the old file keeps your generation ids) or restore a copy."
            )
            if isinstance(exc, sqlite3.DatabaseError) and "malformed" in str(exc):
                self._damage = message  # no more creates on a file that lost a page
            raise StorageError(message) from exc
        except OSError as exc:
            raise StorageError(
                f"The journal at {self.path} cannot be opened ({exc.strerror or exc}): check that its folder "
                "exists and is writable, or set PIXVERSE_MCP_STATE_DIR."
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN / BEGIN IMMEDIATE in `_run`).
            connection = sqlite3.connect(
                self.path, timeout=self._busy_seconds, check_same_thread=False, isolation_level=None
            )
            try:
                connection.row_factory = sqlite3.Row
                _enter_wal(connection, self._busy_seconds)
                connection.execute("PRAGMA synchronous=NORMAL")
                _migrate(connection, self.path)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
            threading.Thread(target=self._check_integrity, name="journal-check", daemon=True).start()
        return self._connection

    def _check_integrity(self) -> None:
        """`PRAGMA quick_check` on a connection of its own (a big journal takes a moment; nothing waits for it)."""
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=self._busy_seconds)) as checker:
                verdict = [str(row[0]) for row in checker.execute("PRAGMA quick_check(5)")]
        except sqlite3.Error as exc:
            verdict = [str(exc)]
        if verdict != ["ok"]:
            logger.error("the journal at %s is damaged: %s", self.path, "; ".join(verdict))
            self._damage = (
                f"The journal at {self.path} is damaged ({verdict[0]}): no video is created until it is replaced. "
                "Move it aside (the server starts a new one; the old file keeps your generation ids) or restore a copy."
            )

    async def wait_for_change(self, generation_id: str, *, timeout: float) -> None:
        # No notifications between SQLite processes: a short read loop is the honest answer.
        await anyio.sleep(min(timeout, _CHANGE_POLL_SECONDS))


def _drive(connection: sqlite3.Connection, operation: Op[_T]) -> _T:
    """Run an operation's statements in order, sending each one's result back to it."""
    result: Any = None
    try:
        while True:
            query = operation.send(result)
            result = None if query is None else _execute(connection, query)
    except StopIteration as done:
        value: _T = done.value
        return value


def _execute(connection: sqlite3.Connection, query: Query) -> Any:
    cursor = connection.execute(query.sql, query.args)
    if query.fetch == "row":
        return cursor.fetchone()
    if query.fetch == "rows":
        return cursor.fetchall()
    if query.fetch == "count":
        return cursor.rowcount
    return None


def _enter_wal(connection: sqlite3.Connection, busy_seconds: float) -> None:
    """Switch the file to WAL, waiting out the other processes doing the same: on a new file, SQLite answers "locked"
    to all but one of them at once, without its busy handler (4 in 200 trials of 8 openers)."""
    deadline = time.monotonic() + busy_seconds
    pause = 0.005
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(0.1, pause * 2)


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
