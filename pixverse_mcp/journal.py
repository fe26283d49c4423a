"""The journal: every generation id we ever received, in an embedded SQLite database.

A generation is paid for the moment the create request is accepted; if the agent loses the id (a host timeout, a
crash, a restart), the journal still has it, with its request, status history, URL and local file. It also lets a
retried blocking call re-attach to the generation already in flight instead of paying for a second one.

SQLite runs in a worker thread (one connection, one call at a time) so the event loop never blocks on disk. WAL
mode lets several server processes share one file. The database is opened on first use, not at start-up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread

from pixverse_mcp.models import Generation, GenerationStatus, VideoRequest

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

_SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS generations (
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
CREATE INDEX IF NOT EXISTS generations_by_request ON generations (request_key, created_at);
CREATE INDEX IF NOT EXISTS generations_by_time ON generations (created_at);
CREATE TABLE IF NOT EXISTS status_changes (
    generation_id TEXT NOT NULL REFERENCES generations (id),
    at            REAL NOT NULL,
    status        TEXT NOT NULL,
    raw_status    TEXT
);
CREATE INDEX IF NOT EXISTS status_changes_by_generation ON status_changes (generation_id, at);
"""


def request_key(request: VideoRequest, api: str) -> str:
    """A digest of everything that defines a video and where it was sent (`api`: the base URL, so a sandbox's
    generation is never mistaken for one of the real API's): equal requests to one API, equal keys."""
    return hashlib.sha256(json.dumps([api, request.to_body()], sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class JournalEntry:
    """One generation as the journal knows it."""

    generation_id: str
    created_at: float
    """Seconds since the epoch when we received the id (or first heard of it)."""
    updated_at: float
    request: dict[str, Any] | None
    status: GenerationStatus
    raw_status: str | None
    video_url: str | None
    error: str | None
    usage: dict[str, Any] | None
    local_path: str | None
    file_size: int | None

    def as_generation(self) -> Generation:
        """The last known state as a `Generation`."""
        return Generation(
            id=self.generation_id,
            status=self.status,
            raw_status=self.raw_status,
            video_url=self.video_url,
            error=self.error,
            usage=self.usage,
        )


class Journal:
    """The journal at `path` (created with its folder on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)

    async def _run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        def in_thread() -> _T:
            with self._connect() as connection:  # one transaction per operation
                return operation(connection)

        return await anyio.to_thread.run_sync(in_thread, limiter=self._limiter)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            self._connection = connection
        return self._connection

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def record_created(self, generation: Generation, request: VideoRequest, *, key: str) -> None:
        """Remember a new generation with the request that made it (`key`: its `request_key`)."""
        now = time.time()

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO generations (id, created_at, updated_at, request_json, request_key, status,"
                " raw_status, usage_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    generation.id,
                    now,
                    now,
                    json.dumps(request.to_body()),
                    key,
                    generation.status.value,
                    generation.raw_status,
                    _json_or_none(generation.usage),
                ),
            )
            _add_status_change(db, generation, now)

        await self._run(insert)

    async def record_status(self, generation: Generation) -> None:
        """Remember the latest state of a generation (one we created, or one an agent asked about)."""
        now = time.time()

        def upsert(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT status FROM generations WHERE id = ?", (generation.id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO generations (id, created_at, updated_at, status) VALUES (?, ?, ?, ?)",
                    (generation.id, now, now, generation.status.value),
                )
            db.execute(
                "UPDATE generations SET updated_at = ?, status = ?, raw_status = ?,"
                " video_url = COALESCE(?, video_url), error = COALESCE(?, error),"
                " usage_json = COALESCE(?, usage_json) WHERE id = ?",
                (
                    now,
                    generation.status.value,
                    generation.raw_status,
                    generation.video_url,
                    generation.error,
                    _json_or_none(generation.usage),
                    generation.id,
                ),
            )
            if row is None or row["status"] != generation.status.value:
                _add_status_change(db, generation, now)

        await self._run(upsert)

    async def record_download(self, generation_id: str, path: Path, size: int) -> None:
        """Remember where the video was saved."""

        def update(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE generations SET local_path = ?, file_size = ?, updated_at = ? WHERE id = ?",
                (str(path), size, time.time(), generation_id),
            )

        await self._run(update)

    async def get(self, generation_id: str) -> JournalEntry | None:
        """The entry for one id, if we know it."""

        def select(db: sqlite3.Connection) -> JournalEntry | None:
            row = db.execute("SELECT * FROM generations WHERE id = ?", (generation_id,)).fetchone()
            return _entry(row) if row is not None else None

        return await self._run(select)

    async def status_history(self, generation_id: str) -> list[tuple[float, str]]:
        """(time, status) for every status change we saw, oldest first."""

        def select(db: sqlite3.Connection) -> list[tuple[float, str]]:
            rows = db.execute(
                "SELECT at, status FROM status_changes WHERE generation_id = ? ORDER BY at, rowid", (generation_id,)
            ).fetchall()
            return [(row["at"], row["status"]) for row in rows]

        return await self._run(select)

    async def recent(self, *, limit: int = 20, status: GenerationStatus | None = None) -> list[JournalEntry]:
        """The newest entries first, optionally only those with one status."""

        def select(db: sqlite3.Connection) -> list[JournalEntry]:
            if status is None:
                rows = db.execute("SELECT * FROM generations ORDER BY created_at DESC LIMIT ?", (limit,))
            else:
                rows = db.execute(
                    "SELECT * FROM generations WHERE status = ? ORDER BY created_at DESC LIMIT ?",
                    (status.value, limit),
                )
            return [_entry(row) for row in rows.fetchall()]

        return await self._run(select)

    async def find_in_flight(self, key: str, *, newer_than: float) -> JournalEntry | None:
        """The newest generation with this request key, created after `newer_than`, not yet final."""
        final = (GenerationStatus.COMPLETED.value, GenerationStatus.FAILED.value)

        def select(db: sqlite3.Connection) -> JournalEntry | None:
            row = db.execute(
                "SELECT * FROM generations WHERE request_key = ? AND created_at > ? AND status NOT IN (?, ?)"
                " ORDER BY created_at DESC LIMIT 1",
                (key, newer_than, *final),
            ).fetchone()
            return _entry(row) if row is not None else None

        return await self._run(select)


def _add_status_change(db: sqlite3.Connection, generation: Generation, at: float) -> None:
    db.execute(
        "INSERT INTO status_changes (generation_id, at, status, raw_status) VALUES (?, ?, ?, ?)",
        (generation.id, at, generation.status.value, generation.raw_status),
    )


def _json_or_none(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value) if value is not None else None


def _entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        generation_id=row["id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        request=json.loads(row["request_json"]) if row["request_json"] else None,
        status=GenerationStatus(row["status"]),
        raw_status=row["raw_status"],
        video_url=row["video_url"],
        error=row["error"],
        usage=json.loads(row["usage_json"]) if row["usage_json"] else None,
        local_path=row["local_path"],
        file_size=row["file_size"],
    )
