"""Storage: everything that must outlive a call, behind one interface with two implementations.

- `SqliteStorage` (the default): one file under the state directory, zero set-up, for one user (several stdio
  servers of one user may share it: SQLite locks the file).
- `PostgresStorage` (`PIXVERSE_MCP_DATABASE_URL=postgresql://...`, extra `aimlapi-pixverse-mcp[postgres]`): for a
  team with several replicas behind a load balancer.

What lives here: every generation id we ever received (request, status history, URL, file, cost); every create
*before* it is sent (an intent: a process killed mid-request leaves a record, never an invisible charge); the lease
that makes one replica poll each generation; and the protocol tasks. The operations that must be atomic across
replicas (`claim_create`: re-attach, or a create in progress, or the spending cap, or a new intent) are one
transaction each. Nothing outside this package touches SQL.

Every text written goes through `models.clean_text` first: a value the upstream sent can never make a write fail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pixverse_mcp.errors import PixVerseError
from pixverse_mcp.models import Generation, GenerationStatus
from pixverse_mcp.polling import ReadyTime

if TYPE_CHECKING:
    from pathlib import Path

# A create that has been "sending" for longer than this has no live sender: its outcome is unknown.
CREATE_GRACE_SECONDS = 120.0


class StorageError(PixVerseError):
    """The journal (or database) cannot be used; the message names it and says what to do."""


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
    cost_usd: float | None = None
    """What the provider charged, in US dollars, when its answer said (see `models.usage_cost_usd`)."""
    completed_at: float | None = None
    """When we first saw it completed (epoch seconds): with `created_at`, how long it took."""

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


@dataclass(frozen=True)
class PendingCreate:
    """A create that was (or is being) sent and has no generation id: it may have been accepted and charged."""

    intent_id: str
    created_at: float
    request: dict[str, Any] | None
    outcome_unknown: bool
    """True once the sender gave up on the answer (or died): only the provider's usage page can tell."""
    detail: str | None = None


@dataclass(frozen=True)
class Reattach:
    """An identical generation is in flight: use it instead of paying again."""

    entry: JournalEntry


@dataclass(frozen=True)
class CreateInProgress:
    """An identical create was sent (by this or another replica) and has no id yet: it is being sent right now
    (wait for its id), or its outcome is unknown (it may have been charged: do not send another)."""

    intent_id: str


@dataclass(frozen=True)
class OverBudget:
    """Creating would pass today's spending cap: nothing may be sent."""

    spent_usd: float
    estimate_usd: float


@dataclass(frozen=True)
class Proceed:
    """The caller owns this create: send it, then `complete_create` (or `abandon_create`)."""

    intent_id: str
    estimate_usd: float | None = None


Claim = Reattach | CreateInProgress | OverBudget | Proceed


@dataclass(frozen=True)
class Budget:
    """The spending cap a claim must respect: today's spend (UTC) plus the estimate may not pass `cap_usd`."""

    cap_usd: float
    default_estimate_usd: float
    """The estimate for a size never created before (the usual price of a 5 s 720p clip)."""
    day_start: float = field(default_factory=lambda: utc_midnight(time.time()))


@dataclass(frozen=True)
class TaskRecord:
    """A protocol task (`tasks.py`): a long tool call the client polls instead of waiting on."""

    task_id: str
    principal: str
    """Who created it (a digest of the bearer token over HTTP; "" when there is none): only they may see it."""
    created_at: float
    updated_at: float
    ttl_seconds: float
    generation_id: str | None = None
    status: Literal["working", "completed", "failed", "cancelled"] = "working"
    status_message: str | None = None
    result: dict[str, Any] | None = None
    """The final tool result, as JSON, once completed."""
    arguments: dict[str, Any] | None = None
    """What the task needs to resume its wait after a restart (the request, save/preview choices)."""


class Storage(Protocol):
    """What the service, the tools and the terminal need from storage; see the module docstring."""

    location: str
    """Where it is, for messages (a file path, or the database URL without its password)."""

    async def close(self) -> None:
        """Release the connection(s)."""

    # Creates: the intent is written before the request leaves the process.
    async def claim_create(
        self,
        request: dict[str, Any],
        key: str,
        *,
        reattach_since: float | None,
        budget: Budget | None,
    ) -> Claim:
        """Atomically: re-attach to an identical in-flight generation (created after `reattach_since`), or join an
        identical create without an id yet (in progress, or of unknown outcome, since `reattach_since`), or refuse
        over `budget`, or record a new intent and proceed."""

    async def complete_create(
        self, intent_id: str, generation: Generation, request: dict[str, Any], key: str, *, created_at: float
    ) -> None:
        """The create answered with `generation` at `created_at` (`time.time()`): journal it and retire the intent,
        in one transaction. The answer's time, not the journal's: learnt ready times count from it."""

    async def abandon_create(self, intent_id: str, *, outcome_unknown: bool, detail: str) -> None:
        """The create failed: forget the intent if nothing was accepted, else keep it as outcome unknown."""

    async def pending_create(self, intent_id: str) -> PendingCreate | None:
        """An intent that is still open (None once it became a generation or was forgotten)."""

    async def created_by(self, intent_id: str) -> JournalEntry | None:
        """The generation an intent became, once it did."""

    # Generations.
    async def record_status(self, generation: Generation, *, pending_until: float | None = None) -> None:
        """Remember the latest state of a generation (one we created, or one an agent asked about).

        `pending_until`: when it was last seen still running; with the time it is first seen completed, it brackets
        its ready time (polling sees a completion late, never early).
        """

    async def record_download(self, generation_id: str, path: Path, size: int) -> None:
        """Remember where the video was saved."""

    async def get(self, generation_id: str) -> JournalEntry | None:
        """The entry for one id, if we know it."""

    async def status_history(self, generation_id: str) -> list[tuple[float, str]]:
        """(time, status) for every status change we saw, oldest first."""

    async def recent(self, *, limit: int = 20, status: GenerationStatus | None = None) -> list[JournalEntry]:
        """The newest entries first, optionally only those with one status."""

    async def pending_creates(self, *, limit: int = 20) -> list[PendingCreate]:
        """Creates with no id (in progress, or outcome unknown), newest first."""

    # Money and time.
    async def spent_since(self, since: float) -> float:
        """US dollars charged (or reserved by creates without an answer) since `since` (epoch seconds)."""

    async def daily_spend(self, *, days: int) -> list[tuple[str, float, int]]:
        """(UTC date, US dollars, videos) for the last `days` days that had any, newest first."""

    async def ready_times(self, *, limit: int) -> list[ReadyTime]:
        """How long each of the newest `limit` completed generations took to be ready, newest first."""

    # One poller per generation across processes.
    async def hold_lease(
        self, generation_id: str, holder: str, *, ttl_seconds: float, replacing: str | None = None
    ) -> str | None:
        """Take or extend the polling lease on a generation: None when `holder` has it now, else who has it.

        An expired lease is taken; so is one held by `replacing` (a holder the caller knows to be dead)."""

    async def release_lease(self, generation_id: str, holder: str) -> None:
        """Give the lease up (the next waiter to look takes it)."""

    async def wait_for_change(self, generation_id: str, *, timeout: float) -> None:
        """Return when this generation's entry may have changed, or after `timeout` seconds."""

    # Tasks.
    async def save_task(self, task: TaskRecord) -> None:
        """Create or replace a task."""

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """A task, if it exists (expired ones may already be gone)."""

    async def delete_expired_tasks(self, now: float) -> int:
        """Drop tasks whose time to live has passed; returns how many."""


def utc_midnight(moment: float) -> float:
    """The start (epoch seconds) of the UTC day that contains `moment`: spending caps count per UTC day."""
    return moment - moment % 86_400


def open_storage(database_url: str | None, journal_path: Path) -> Storage:
    """The PostgreSQL storage for `database_url`, else the SQLite journal at `journal_path`.

    Both connect on first use: a server whose database is down still starts, and its tools say what is wrong.
    """
    if database_url:
        from pixverse_mcp.storage.postgres import PostgresStorage

        return PostgresStorage(database_url)
    from pixverse_mcp.storage.sqlite import SqliteStorage

    return SqliteStorage(journal_path)
