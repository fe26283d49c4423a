"""The journal's SQL, written once for both backends.

Each operation is a generator that yields the statements it needs (`Query`) and receives their results, so its
logic and SQL exist once while each backend runs it its own way: SQLite in a worker thread, PostgreSQL on the event
loop. What differs between the two is in `Dialect` (a handful of fragments) and in each backend's connection and
migration code. Statements use `?` placeholders; the PostgreSQL backend numbers them.

The newer migrations (`SHARED_MIGRATIONS`) are written once too, in DDL both accept (SQLite reads DOUBLE PRECISION
and BOOLEAN by its type-affinity rules).
"""

from __future__ import annotations

import functools
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from pixverse_mcp.models import Generation, GenerationStatus, request_size
from pixverse_mcp.polling import ReadyTime
from pixverse_mcp.storage import (
    AnsweredCreate,
    CachedDocument,
    Claim,
    CreateClaim,
    CreateInProgress,
    JournalEntry,
    OverBudget,
    PendingCreate,
    Proceed,
    Reattach,
    TaskRecord,
    _rows,
    utc_midnight,
)
from pixverse_mcp.text import clean_text

_T = TypeVar("_T")
Fetch = Literal["row", "rows", "count", "none"]


@dataclass(frozen=True)
class Query:
    """One statement for a backend to run: its SQL (`?` placeholders), its arguments, and what to hand back."""

    sql: str
    args: tuple[Any, ...]
    fetch: Fetch


Op = Generator[Query | None, Any, _T]
"""An operation: yields statements (None: nothing to run on this backend), receives each one's result."""


def row(sql: str, *args: Any) -> Query:
    """A statement whose first row (or None) comes back."""
    return Query(sql, args, "row")


def rows(sql: str, *args: Any) -> Query:
    """A statement whose rows come back."""
    return Query(sql, args, "rows")


def count(sql: str, *args: Any) -> Query:
    """A statement whose number of affected rows comes back."""
    return Query(sql, args, "count")


def run(sql: str, *args: Any) -> Query:
    """A statement whose result does not matter."""
    return Query(sql, args, "none")


@dataclass(frozen=True)
class Dialect:
    """What the two backends spell differently."""

    name: Literal["sqlite", "postgres"]

    @property
    def postgres(self) -> bool:
        return self.name == "postgres"

    def utc_day(self, column: str) -> str:
        """The UTC date (YYYY-MM-DD) of an epoch-seconds column."""
        if self.postgres:
            return f"to_char(to_timestamp({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return f"date({column}, 'unixepoch')"

    def lock(self, name: str) -> Query | None:
        """Serialise transactions about `name` until this one ends (SQLite: every writer already holds the file's
        lock, its transactions being IMMEDIATE where this matters)."""
        return row("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", name) if self.postgres else None

    @property
    def for_update(self) -> str:
        return " FOR UPDATE" if self.postgres else ""

    @property
    def insertion_order(self) -> str:
        """The column that orders rows inserted in one instant."""
        return "id" if self.postgres else "rowid"

    def notify(self, generation_id: str) -> Query | None:
        """Tell the other replicas' waiters that a generation changed (their LISTEN wakes them)."""
        return row("SELECT pg_notify(?, ?)", CHANNEL, generation_id[:7000]) if self.postgres else None


CHANNEL: Final = "pixverse_generations"
_FINAL: Final = (GenerationStatus.COMPLETED.value, GenerationStatus.FAILED.value)
# Intents that may have been charged without an id yet: they count against the cap until settled.
_OPEN_STATES: Final = ("sending", "settling", "unknown")
# A create still without an answer counts against the cap of every day it may land in: claimed up to this long
# before the day began (the longest settle window, and more than any create's own wait).
RESERVED_LOOKBACK_SECONDS: Final = 86_400.0
# An intent that became a generation is kept this long (a replayed confirmation, a joiner looking for its id).
RETIRED_INTENT_SECONDS: Final = 86_400.0
# Rows deleted per transaction by retention (a few milliseconds of the write lock each).
PRUNE_BATCH: Final = 500
# Characters kept of a detail written to the journal (an error message that came with a lost answer).
_TEXT_LIMIT: Final = 4000

# Migrations after the backends' own first ones (SQLite 3, PostgreSQL 2), the same SQL for both.
SHARED_MIGRATIONS: Final[Sequence[str]] = (
    # Money, the whole PixVerse family, and a journal that does not slow down as it grows.
    """
    ALTER TABLE generations ADD COLUMN model TEXT;
    ALTER TABLE generations ADD COLUMN cost_estimated BOOLEAN NOT NULL DEFAULT FALSE;
    UPDATE generations SET model = 'pixverse/v5/text-to-video' WHERE request_key IS NOT NULL;
    DROP INDEX generations_by_size;
    CREATE INDEX generations_by_size ON generations (model, resolution, duration, created_at);
    CREATE INDEX generations_by_completion ON generations (completed_at)
        WHERE completed_at IS NOT NULL AND request_key IS NOT NULL;
    CREATE INDEX generations_by_status ON generations (status, created_at);
    ALTER TABLE create_intents ADD COLUMN state TEXT NOT NULL DEFAULT 'sending';
    ALTER TABLE create_intents ADD COLUMN sender TEXT;
    ALTER TABLE create_intents ADD COLUMN client_request_id TEXT;
    ALTER TABLE create_intents ADD COLUMN confirmation TEXT;
    ALTER TABLE create_intents ADD COLUMN settle_until DOUBLE PRECISION;
    UPDATE create_intents SET state = 'created' WHERE generation_id IS NOT NULL;
    UPDATE create_intents SET state = 'unknown' WHERE generation_id IS NULL;
    CREATE INDEX create_intents_open ON create_intents (created_at) WHERE generation_id IS NULL;
    CREATE UNIQUE INDEX create_intents_by_confirmation ON create_intents (confirmation)
        WHERE confirmation IS NOT NULL;
    CREATE TABLE documents (
        name       TEXT PRIMARY KEY,
        value_json TEXT NOT NULL,
        etag       TEXT,
        fetched_at DOUBLE PRECISION NOT NULL
    );
    """,
    # A journal that scales (issue 23): the reads on a hot path that still walked rows by the journal's age.
    # - today's spend (the cap's check, on every create) from an index of the charged videos' costs alone (it read
    #   each of the day's rows from the table: 0.30 ms at 1M videos, 0.06 ms with it);
    # - retention (`prune`): intents by state and age, so a batch of finished ones is found without a scan.
    """
    CREATE INDEX generations_charged ON generations (created_at, cost_usd)
        WHERE request_key IS NOT NULL AND status <> 'failed';
    CREATE INDEX create_intents_by_state ON create_intents (state, created_at);
    """,
)


class _SqlBase:
    """What every group of operations needs from a backend: its dialect and a way to run an operation."""

    dialect: Dialect
    location: str

    @abstractmethod
    async def _run(self, operation: Callable[[], Op[_T]], *, exclusive: bool = False) -> _T:
        """Run a fresh `operation()` in one transaction (`exclusive`: one that must see and write atomically);
        a backend may run it again from the start when the transaction had to be retried."""


class _Creates(_SqlBase):
    """Creates and money: claims, intents and their settling, what was spent."""

    async def claim_create(self, claim: CreateClaim) -> Claim:
        return await self._run(functools.partial(_claim, self.dialect, claim, time.time()), exclusive=True)

    async def complete_create(self, answered: AnsweredCreate) -> None:
        d = self.dialect
        generation, request = answered.generation, answered.request
        generation_id = clean_text(generation.id)

        def op() -> Op[None]:
            yield run(
                "INSERT INTO generations (id, created_at, updated_at, request_json, request_key, status, raw_status,"
                " usage_json, model, resolution, duration, cost_usd, cost_estimated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                generation_id,
                answered.created_at,
                answered.created_at,
                _rows.dumps(request),
                answered.key,
                generation.status.value,
                _rows.text(generation.raw_status),
                _rows.dumps(generation.usage),
                _model_of(request),
                *request_size(request),
                answered.cost_usd,
                answered.cost_estimated,
            )
            yield from _add_status_change(d, generation, answered.created_at)
            yield run(
                "UPDATE create_intents SET generation_id = ?, state = 'created' WHERE id = ?",
                generation_id,
                answered.intent_id,
            )

        await self._run(op)

    async def abandon_create(
        self, intent_id: str, *, outcome_unknown: bool, detail: str, settle_until: float | None = None
    ) -> None:
        def op() -> Op[None]:
            if outcome_unknown:
                yield run(
                    "UPDATE create_intents SET state = 'settling', outcome_unknown = TRUE, detail = ?,"
                    " settle_until = COALESCE(settle_until, ?) WHERE id = ? AND generation_id IS NULL",
                    clean_text(detail)[:_TEXT_LIMIT],
                    settle_until,
                    intent_id,
                )
            else:
                yield run("DELETE FROM create_intents WHERE id = ? AND generation_id IS NULL", intent_id)

        await self._run(op)

    async def settle_absent(self, intent_id: str, *, detail: str) -> None:
        def op() -> Op[None]:
            yield run(
                "UPDATE create_intents SET state = 'never_received', detail = ?, confirmation = NULL"
                " WHERE id = ? AND generation_id IS NULL",
                clean_text(detail)[:_TEXT_LIMIT],
                intent_id,
            )

        await self._run(op)

    async def settle_unknown(self, intent_id: str, *, detail: str) -> None:
        def op() -> Op[None]:
            yield run(
                "UPDATE create_intents SET state = 'unknown', detail = ? WHERE id = ? AND generation_id IS NULL",
                clean_text(detail)[:_TEXT_LIMIT],
                intent_id,
            )

        await self._run(op)

    async def confirmation_used(self, confirmation: str) -> bool:
        def op() -> Op[bool]:
            found = yield row("SELECT 1 AS used FROM create_intents WHERE confirmation = ?", confirmation)
            return found is not None

        return await self._run(op)

    async def pending_create(self, intent_id: str) -> PendingCreate | None:
        def op() -> Op[PendingCreate | None]:
            found = yield row("SELECT * FROM create_intents WHERE id = ? AND generation_id IS NULL", intent_id)
            return _rows.pending(found) if found is not None else None

        return await self._run(op)

    async def created_by(self, intent_id: str) -> JournalEntry | None:
        def op() -> Op[JournalEntry | None]:
            found = yield row(
                "SELECT g.* FROM create_intents i JOIN generations g ON g.id = i.generation_id WHERE i.id = ?",
                intent_id,
            )
            return _rows.entry(found) if found is not None else None

        return await self._run(op)

    async def settling_creates(self, *, limit: int = 20) -> list[PendingCreate]:
        def op() -> Op[list[PendingCreate]]:
            found = yield rows(
                "SELECT * FROM create_intents WHERE generation_id IS NULL AND state IN ('sending', 'settling')"
                " ORDER BY created_at LIMIT ?",
                limit,
            )
            return [_rows.pending(intent) for intent in found]

        return await self._run(op)

    async def pending_creates(self, *, limit: int = 20) -> list[PendingCreate]:
        def op() -> Op[list[PendingCreate]]:
            found = yield rows(
                "SELECT * FROM create_intents WHERE generation_id IS NULL ORDER BY created_at DESC LIMIT ?", limit
            )
            return [_rows.pending(intent) for intent in found]

        return await self._run(op)

    async def spent_since(self, since: float) -> float:
        return await self._run(functools.partial(_spent_since, since))

    async def daily_spend(self, *, days: int) -> list[tuple[str, float, int]]:
        since = utc_midnight(time.time()) - (days - 1) * 86_400  # today and the `days - 1` before it
        day = self.dialect.utc_day("created_at")

        def op() -> Op[list[tuple[str, float, int]]]:
            found = yield rows(
                f"SELECT {day} AS day, SUM(COALESCE(cost_usd, 0)) AS spent, COUNT(*) AS videos FROM generations"  # noqa: S608
                " WHERE created_at >= ? AND request_key IS NOT NULL AND status <> 'failed'"
                " GROUP BY day ORDER BY day DESC",
                since,
            )
            return [(str(spend["day"]), float(spend["spent"]), int(spend["videos"])) for spend in found]

        return await self._run(op)

    async def last_cost(self, model: str, resolution: str, duration: int) -> float | None:
        def op() -> Op[float | None]:
            found = yield row(
                "SELECT cost_usd FROM generations WHERE model = ? AND resolution = ? AND duration = ?"
                " AND cost_usd IS NOT NULL AND NOT cost_estimated ORDER BY created_at DESC LIMIT 1",
                model,
                resolution,
                duration,
            )
            return float(found["cost_usd"]) if found is not None else None

        return await self._run(op)


class _Generations(_SqlBase):
    """Generations: their statuses, files, listings, ready times and retention."""

    async def record_status(self, generation: Generation, *, pending_until: float | None = None) -> None:
        d = self.dialect
        now = time.time()
        generation_id = clean_text(generation.id)
        completed = generation.status is GenerationStatus.COMPLETED

        def op() -> Op[None]:
            # (The f-strings here only ever add the dialect's fixed fragments; values go in as parameters.)
            previous = yield row(f"SELECT status FROM generations WHERE id = ?{d.for_update}", generation_id)  # noqa: S608
            if previous is None:
                yield run(
                    "INSERT INTO generations (id, created_at, updated_at, status) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    generation_id,
                    now,
                    now,
                    generation.status.value,
                )
            yield run(
                "UPDATE generations SET updated_at = ?, status = ?, raw_status = ?,"
                " video_url = COALESCE(?, video_url), error = COALESCE(?, error),"
                " completed_at = COALESCE(completed_at, ?), pending_until = COALESCE(?, pending_until) WHERE id = ?",
                now,
                generation.status.value,
                _rows.text(generation.raw_status),
                _rows.text(generation.video_url),
                _rows.text(generation.error),
                now if completed else None,
                pending_until,
                generation_id,
            )
            if previous is None or previous["status"] != generation.status.value:
                yield from _add_status_change(d, generation, now)
                yield d.notify(generation_id)

        await self._run(op)

    async def record_download(self, generation_id: str, path: Path, size: int) -> None:
        def op() -> Op[None]:
            yield run(
                "UPDATE generations SET local_path = ?, file_size = ?, updated_at = ? WHERE id = ?",
                clean_text(str(path)),
                size,
                time.time(),
                clean_text(generation_id),
            )

        await self._run(op)

    async def get(self, generation_id: str) -> JournalEntry | None:
        def op() -> Op[JournalEntry | None]:
            found = yield row("SELECT * FROM generations WHERE id = ?", clean_text(generation_id))
            return _rows.entry(found) if found is not None else None

        return await self._run(op)

    async def status_history(self, generation_id: str) -> list[tuple[float, str]]:
        order = self.dialect.insertion_order

        def op() -> Op[list[tuple[float, str]]]:
            found = yield rows(
                f"SELECT at, status FROM status_changes WHERE generation_id = ? ORDER BY at, {order}",  # noqa: S608
                clean_text(generation_id),
            )
            return [(float(change["at"]), str(change["status"])) for change in found]

        return await self._run(op)

    async def recent(self, *, limit: int = 20, status: GenerationStatus | None = None) -> list[JournalEntry]:
        def op() -> Op[list[JournalEntry]]:
            if status is None:
                found = yield rows("SELECT * FROM generations ORDER BY created_at DESC LIMIT ?", limit)
            else:
                found = yield rows(
                    "SELECT * FROM generations WHERE status = ? ORDER BY created_at DESC LIMIT ?", status.value, limit
                )
            return [_rows.entry(entry) for entry in found]

        return await self._run(op)

    async def ready_times(self, *, limit: int) -> list[ReadyTime]:
        def op() -> Op[list[ReadyTime]]:
            found = yield rows(
                "SELECT model, resolution, duration, created_at, pending_until, completed_at FROM generations"
                " WHERE completed_at IS NOT NULL AND request_key IS NOT NULL AND resolution IS NOT NULL"
                " AND duration IS NOT NULL ORDER BY completed_at DESC LIMIT ?",
                limit,
            )
            return [_rows.ready_time(ready) for ready in found]

        return await self._run(op)

    async def prune(self, *, before: float, batch: int = PRUNE_BATCH) -> int:
        # In batches, each its own transaction: the write lock is let go between them, so creates and status writes
        # of every process go on while a big journal is trimmed.
        removed = 0
        while True:
            gone = await self._run(functools.partial(_prune_generations, self.dialect, before, batch), exclusive=True)
            removed += gone
            if gone < batch:
                break
        # A finished intent is kept at least RETIRED_INTENT_SECONDS (a replayed confirmation, a joiner looking for
        # its id), whatever `before` says; an intent that may still be charged (no id, not settled) never goes.
        retired_before = min(before, time.time() - RETIRED_INTENT_SECONDS)
        while await self._run(functools.partial(_prune_intents, retired_before, batch)) >= batch:
            pass
        return removed


class _Shared(_SqlBase):
    """What replicas share besides the journal: polling leases, protocol tasks, documents from the provider."""

    async def hold_lease(
        self, generation_id: str, holder: str, *, ttl_seconds: float, replacing: str | None = None
    ) -> str | None:
        now = time.time()
        generation_id = clean_text(generation_id)

        def op() -> Op[str | None]:
            taken = yield row(
                "INSERT INTO leases (generation_id, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (generation_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE leases.holder = excluded.holder OR leases.expires_at < ? OR leases.holder = ?"
                " RETURNING holder",
                generation_id,
                holder,
                now + ttl_seconds,
                now,
                replacing,
            )
            if taken is not None:
                return None
            current = yield row("SELECT holder FROM leases WHERE generation_id = ?", generation_id)
            return str(current["holder"]) if current is not None else None

        return await self._run(op, exclusive=True)

    async def release_lease(self, generation_id: str, holder: str) -> None:
        def op() -> Op[None]:
            yield run("DELETE FROM leases WHERE generation_id = ? AND holder = ?", clean_text(generation_id), holder)

        await self._run(op)

    async def save_task(self, task: TaskRecord) -> None:
        def op() -> Op[None]:
            yield run(
                "INSERT INTO tasks (id, principal, created_at, updated_at, ttl_seconds, generation_id, status,"
                " status_message, result_json, arguments_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, ttl_seconds = excluded.ttl_seconds,"
                " generation_id = excluded.generation_id, status = excluded.status,"
                " status_message = excluded.status_message, result_json = excluded.result_json,"
                " arguments_json = excluded.arguments_json",
                *_rows.task_values(task),
            )

        await self._run(op)

    async def finish_task(self, task: TaskRecord) -> bool:
        def op() -> Op[bool]:
            changed: int = yield count(
                "UPDATE tasks SET updated_at = ?, status = ?, status_message = ?, result_json = ?"
                " WHERE id = ? AND status = 'working'",
                task.updated_at,
                task.status,
                _rows.text(task.status_message),
                _rows.dumps(task.result),
                clean_text(task.task_id),
            )
            return changed > 0

        return await self._run(op)

    async def get_task(self, task_id: str) -> TaskRecord | None:
        def op() -> Op[TaskRecord | None]:
            found = yield row("SELECT * FROM tasks WHERE id = ?", clean_text(task_id))
            return _rows.task(found) if found is not None else None

        return await self._run(op)

    async def delete_expired_tasks(self, now: float) -> int:
        def op() -> Op[int]:
            removed: int = yield count("DELETE FROM tasks WHERE created_at + ttl_seconds < ?", now)
            return removed

        return await self._run(op)

    async def cached(self, name: str) -> CachedDocument | None:
        def op() -> Op[CachedDocument | None]:
            found = yield row("SELECT value_json, etag, fetched_at FROM documents WHERE name = ?", name)
            if found is None:
                return None
            return CachedDocument(_rows.loads(found["value_json"]), found["etag"], float(found["fetched_at"]))

        return await self._run(op)

    async def cache(self, name: str, document: CachedDocument) -> None:
        def op() -> Op[None]:
            yield run(
                "INSERT INTO documents (name, value_json, etag, fetched_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value_json = excluded.value_json, etag = excluded.etag,"
                " fetched_at = excluded.fetched_at",
                name,
                _rows.dumps(document.value),
                _rows.text(document.etag),
                document.fetched_at,
            )

        await self._run(op)


class SqlStorage(_Creates, _Generations, _Shared):
    """Every storage operation, in SQL both backends run; a backend supplies `_run` (and its own connections,
    migrations and change notifications)."""


def _claim(d: Dialect, claim: CreateClaim, now: float) -> Op[Claim]:
    """`Storage.claim_create` (see there), in one exclusive transaction."""
    if claim.confirmation is not None:
        yield d.lock(f"confirmation:{claim.confirmation}")
        used = yield row("SELECT id, generation_id FROM create_intents WHERE confirmation = ?", claim.confirmation)
        if used is not None:
            if used["generation_id"] is not None:
                entry = yield row("SELECT * FROM generations WHERE id = ?", used["generation_id"])
                if entry is not None:
                    return Reattach(_rows.entry(entry))
            else:
                return CreateInProgress(str(used["id"]))
    if claim.reattach_since is not None:
        yield d.lock(claim.key)
        # The intents before the generations: a create that completes meanwhile fills in its intent and adds its
        # generation in one transaction, so whenever it commits, one of the two reads sees it. (Read the other way
        # round, a commit between them hides it from both: a second create.)
        without_id = yield row(
            "SELECT id FROM create_intents WHERE request_key = ? AND created_at > ? AND generation_id IS NULL"
            " AND state IN ('sending', 'settling', 'unknown') ORDER BY created_at DESC LIMIT 1",
            claim.key,
            claim.reattach_since,
        )
        in_flight = yield row(
            "SELECT * FROM generations WHERE request_key = ? AND created_at > ? AND status NOT IN (?, ?)"
            " ORDER BY created_at DESC LIMIT 1",
            claim.key,
            claim.reattach_since,
            *_FINAL,
        )
        if in_flight is not None:
            return Reattach(_rows.entry(in_flight))
        if without_id is not None:
            return CreateInProgress(str(without_id["id"]))
    budget = claim.budget
    if budget is not None:
        yield d.lock("spending cap")
        spent = yield from _spent_since(budget.day_start)
        if spent + budget.estimate_usd > budget.cap_usd + 1e-9:
            return OverBudget(spent, budget.estimate_usd)
    intent_id = uuid.uuid4().hex
    client_request_id = f"pixverse-mcp.{intent_id}"
    yield run(
        "INSERT INTO create_intents (id, created_at, request_key, request_json, estimate_usd, state, sender,"
        " client_request_id, confirmation) VALUES (?, ?, ?, ?, ?, 'sending', ?, ?, ?)",
        intent_id,
        now,
        claim.key,
        _rows.dumps(claim.request),
        claim.estimate_usd,
        claim.sender,
        client_request_id,
        claim.confirmation,
    )
    return Proceed(intent_id, client_request_id, claim.estimate_usd)


def _spent_since(since: float) -> Op[float]:
    """Charged generations that did not fail (the provider never charges a failed one), plus creates that may have
    been charged and have no answer yet (at their estimate).

    A generation counts on the day its answer came (`created_at`), so a create claimed before `since` and still
    without an answer may land after it: it counts here too (back to `RESERVED_LOOKBACK_SECONDS`), or a claim
    made just after UTC midnight would not see one made just before, and the new day could pass its cap."""
    charged = yield row(
        "SELECT COALESCE(SUM(cost_usd), 0) AS spent FROM generations"
        " WHERE created_at >= ? AND request_key IS NOT NULL AND status <> 'failed'",
        since,
    )
    reserved = yield row(
        "SELECT COALESCE(SUM(estimate_usd), 0) AS spent FROM create_intents"
        " WHERE created_at >= ? AND generation_id IS NULL AND state IN (?, ?, ?)",
        since - RESERVED_LOOKBACK_SECONDS,
        *_OPEN_STATES,
    )
    return float(charged["spent"]) + float(reserved["spent"])


def _prune_generations(d: Dialect, before: float, batch: int) -> Op[int]:
    """Up to `batch` finished generations created before `before`, with their status changes (locked first: none
    can change meanwhile)."""
    found = yield rows(
        f"SELECT id FROM generations WHERE created_at < ? AND status IN (?, ?) LIMIT ?{d.for_update}",  # noqa: S608
        before,
        *_FINAL,
        batch,
    )
    ids = [str(generation["id"]) for generation in found]
    if not ids:
        return 0
    marks = ", ".join("?" * len(ids))
    yield run(f"DELETE FROM status_changes WHERE generation_id IN ({marks})", *ids)  # noqa: S608
    removed: int = yield count(f"DELETE FROM generations WHERE id IN ({marks})", *ids)  # noqa: S608
    return removed


def _prune_intents(before: float, batch: int) -> Op[int]:
    """Up to `batch` settled intents (an id journaled, or never received) created before `before`."""
    removed: int = yield count(
        "DELETE FROM create_intents WHERE id IN (SELECT id FROM create_intents"
        " WHERE state IN ('created', 'never_received') AND created_at < ? LIMIT ?)",
        before,
        batch,
    )
    return removed


def _add_status_change(d: Dialect, generation: Generation, at: float) -> Op[None]:
    yield run(
        "INSERT INTO status_changes (generation_id, at, status, raw_status) VALUES (?, ?, ?, ?)",
        clean_text(generation.id),
        at,
        generation.status.value,
        _rows.text(generation.raw_status),
    )


def _model_of(request: dict[str, Any]) -> str | None:
    model = request.get("model")
    return model if isinstance(model, str) else None
