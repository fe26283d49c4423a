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

import functools
import itertools
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio

from pixverse_mcp.storage import StorageError
from pixverse_mcp.storage.sql import CHANNEL, SHARED_MIGRATIONS, Dialect, Op, Query, SqlStorage
from pixverse_mcp.text import clean_text

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
    *SHARED_MIGRATIONS,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
# Advisory lock id (any 64-bit number, fixed) for migrations; the others are named (`Dialect.lock`).
_MIGRATION_LOCK: Final = 0x70697876_00000001
# Without a listening connection, waiters that do not poll read the row this often.
_CHANGE_POLL_SECONDS: Final = 0.25


def redacted(url: str) -> str:
    """The database URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStorage(SqlStorage):
    """Storage in the PostgreSQL database at `url` (a pool of connections, opened on first use)."""

    dialect = Dialect("postgres")

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

    async def _run(self, operation: Callable[[], Op[_T]], *, exclusive: bool = False) -> _T:
        """Run `operation` in one transaction; database trouble becomes a `StorageError`. A database whose tables
        were dropped (recreated empty) is migrated again, once, instead of failing until a restart."""
        try:
            try:
                return await self._transaction(operation)
            except asyncpg.UndefinedTableError:
                logger.warning("the database at %s lost its tables: creating them again", self.location)
                await self.close()
                return await self._transaction(operation)
        except StorageError:
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageError(
                f"The database at {self.location} cannot be used right now ({type(exc).__name__}: {exc})."
            ) from exc

    async def _transaction(self, operation: Callable[[], Op[_T]]) -> _T:
        pool = await self._open()
        async with pool.acquire() as connection, connection.transaction():
            steps = operation()
            result: Any = None
            try:
                while True:
                    query = steps.send(result)
                    result = None if query is None else await _execute(connection, query)
            except StopIteration as done:
                value: _T = done.value
                return value

    async def wait_for_change(self, generation_id: str, *, timeout: float) -> None:
        if self._listener is None:
            await anyio.sleep(min(timeout, _CHANGE_POLL_SECONDS))
            return
        event = self._changed.setdefault(clean_text(generation_id), anyio.Event())
        with anyio.move_on_after(timeout):
            await event.wait()


async def _execute(connection: Any, query: Query) -> Any:
    sql = numbered(query.sql)
    if query.fetch == "row":
        return await connection.fetchrow(sql, *query.args)
    if query.fetch == "rows":
        return await connection.fetch(sql, *query.args)
    status = await connection.execute(sql, *query.args)
    return int(str(status).rsplit(" ", 1)[-1]) if query.fetch == "count" else None


@functools.lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """The statement with its `?` placeholders numbered as PostgreSQL wants them (`$1`, `$2`, ...)."""
    numbers = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


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
