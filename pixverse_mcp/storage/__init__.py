"""Storage: everything that must outlive a call, behind one interface with two backends.

- SQLite (the default): one file under the state directory, zero set-up, for one user (several stdio servers of
  one user may share it: SQLite locks the file).
- PostgreSQL (`PIXVERSE_MCP_DATABASE_URL=postgresql://...`, extra `aimlapi-pixverse-mcp[postgres]`): for a team
  with several replicas behind a load balancer.

What lives here: every generation id we ever received (request, status history, URL, file, cost); every create
*before* it is sent (an intent, with the request id it carries: a process killed mid-request leaves a record that
settling resolves, never an invisible charge); the lease that makes one replica poll each generation (or settle one
uncertain create); the protocol tasks; and small cached documents (the provider's price list). The operations that
must be atomic across replicas (`claim_create`: a confirmation already used, re-attach, a create in progress, the
spending cap, or a new intent) are one transaction each. The SQL is written once (`sql.py`); the two backends only
run it. Nothing outside this package touches SQL.

Every text written goes through `text.clean_text` first: a value the upstream sent can never make a write fail.
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

IntentState = Literal["sending", "settling", "created", "never_received", "unknown"]
"""A create's life: `sending` (the request is out), then `created` (its id is journaled), or, when no answer came,
`settling` (the provider's request logs are searched for it) until `created` (found) or `never_received` (absent
after the settle window: nothing was charged). `unknown`: an intent of an older version, with no request id to look
for; only the provider's usage page can tell."""


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
    """The request as journaled: the create's body, with every image, video or sound described (where it came
    from, its digest), never its bytes."""
    status: GenerationStatus
    raw_status: str | None
    video_url: str | None
    error: str | None
    usage: dict[str, Any] | None
    local_path: str | None
    file_size: int | None
    cost_usd: float | None = None
    """What the provider charged, in US dollars; the estimate when its answer did not say (`cost_estimated`)."""
    completed_at: float | None = None
    """When we first saw it completed (epoch seconds): with `created_at`, how long it took."""
    model: str | None = None
    cost_estimated: bool = False
    """True when `cost_usd` is our estimate: the create's answer carried no readable cost."""

    def as_generation(self) -> Generation:
        """The last known state as a `Generation` (with what it cost)."""
        return Generation(
            id=self.generation_id,
            status=self.status,
            raw_status=self.raw_status,
            video_url=self.video_url,
            error=self.error,
            usage=self.usage,
            cost_usd=self.cost_usd,
        )


@dataclass(frozen=True)
class PendingCreate:
    """A create that was (or is being) sent and has no generation id yet, or settled as never received."""

    intent_id: str
    created_at: float
    request: dict[str, Any] | None
    state: IntentState
    key: str | None = None
    detail: str | None = None
    client_request_id: str | None = None
    """The `X-Client-Request-Id` it was sent with: how settling finds it in the provider's request logs."""
    sender: str | None = None
    """The process that sent it (host/pid/random, as `VideoService.instance`)."""
    settle_until: float | None = None
    """Settling gives up (never received) after this moment (epoch seconds)."""
    estimate_usd: float | None = None

    @property
    def outcome_unknown(self) -> bool:
        """True while it may have been accepted and charged without our knowing: counts against the cap."""
        return self.state in ("settling", "unknown")

    def stale(self, now: float) -> bool:
        """Whether it is still marked as being sent long after any live sender would have had an answer."""
        return self.state == "sending" and now - self.created_at > CREATE_GRACE_SECONDS


@dataclass(frozen=True)
class Reattach:
    """An identical generation is in flight (or this confirmation already made one): use it, do not pay again."""

    entry: JournalEntry


@dataclass(frozen=True)
class CreateInProgress:
    """An identical create was sent (by this or another replica) and has no id yet: it is being sent right now
    (wait for its id), or being settled (it may have been charged: do not send another)."""

    intent_id: str


@dataclass(frozen=True)
class OverBudget:
    """Creating would pass today's spending cap: nothing may be sent."""

    spent_usd: float
    estimate_usd: float


@dataclass(frozen=True)
class Proceed:
    """The caller owns this create: send it with `client_request_id`, then `complete_create` (or `abandon_create`)."""

    intent_id: str
    client_request_id: str
    estimate_usd: float | None = None


Claim = Reattach | CreateInProgress | OverBudget | Proceed


@dataclass(frozen=True)
class Budget:
    """The spending cap a claim must respect: today's spend (UTC) plus the estimate may not pass `cap_usd`."""

    cap_usd: float
    estimate_usd: float
    """What this create is expected to cost (`VideoService` works it out: last observed price, the catalogue, or
    the documented default)."""
    day_start: float = field(default_factory=lambda: utc_midnight(time.time()))


@dataclass(frozen=True)
class CreateClaim:
    """Everything a claim needs to know about one create it may record."""

    request: dict[str, Any]
    """The request as journaled (inputs described, never their bytes)."""
    key: str
    """The request key: equal for requests that would make the same video."""
    sender: str
    reattach_since: float | None = None
    """Re-attach to (or join) an identical create made after this moment; None: never (force_new)."""
    budget: Budget | None = None
    confirmation: str | None = None
    """The digest of the user's accepted confirmation, when one was asked: it pays for one create only."""
    estimate_usd: float | None = None
    """Recorded with the intent: what it counts against the cap until it has an answer."""


@dataclass(frozen=True)
class AnsweredCreate:
    """A create the provider answered with an id: what the journal records of it (or the spool keeps for it)."""

    intent_id: str
    generation: Generation
    request: dict[str, Any]
    """As journaled (inputs described, never their bytes)."""
    key: str
    created_at: float
    """When the answer came (`time.time()`): learnt ready times count from it."""
    cost_usd: float | None
    cost_estimated: bool = False
    """True when `cost_usd` is our estimate (the answer carried no readable cost)."""


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


@dataclass(frozen=True)
class CachedDocument:
    """A document fetched from the provider and kept (the price list), with the ETag to ask whether it changed."""

    value: Any
    etag: str | None
    fetched_at: float


class Storage(Protocol):
    """What the service, the tools and the terminal need from storage; see the module docstring."""

    location: str
    """Where it is, for messages (a file path, or the database URL without its password)."""

    async def close(self) -> None:
        """Release the connection(s)."""

    # Creates: the intent is written before the request leaves the process.
    async def claim_create(self, claim: CreateClaim) -> Claim:
        """Atomically: the generation (or create in progress) this confirmation already paid for; or re-attach to
        an identical in-flight generation, or join an identical create without an id yet (being sent or settled);
        or refuse over the budget; or record a new intent and proceed."""

    async def complete_create(self, answered: AnsweredCreate) -> None:
        """Journal an answered create and retire its intent, in one transaction (also when the intent is gone: a
        spooled id written once the database is back, or a database recreated empty)."""

    async def abandon_create(
        self, intent_id: str, *, outcome_unknown: bool, detail: str, settle_until: float | None = None
    ) -> None:
        """The create failed: forget the intent if nothing was accepted, else settle it (until `settle_until`)."""

    async def settle_absent(self, intent_id: str, *, detail: str) -> None:
        """Settling found no trace of it: the provider never received it (nothing charged, nothing to re-attach)."""

    async def settle_unknown(self, intent_id: str, *, detail: str) -> None:
        """Settling found it received (so charged) but cannot tell its generation id: it stays counted against the
        cap and joined by identical calls, never sent again, and is no longer looked for."""

    async def confirmation_used(self, confirmation: str) -> bool:
        """Whether this confirmation already paid for a create (one that was not refused outright)."""

    async def pending_create(self, intent_id: str) -> PendingCreate | None:
        """An intent that has no generation (None once it became one or was forgotten)."""

    async def created_by(self, intent_id: str) -> JournalEntry | None:
        """The generation an intent became, once it did."""

    async def settling_creates(self, *, limit: int = 20) -> list[PendingCreate]:
        """Creates still being sent or settled, oldest first (what a settler looks at)."""

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
        """Creates with no id (being sent, settling, or settled as never received), newest first."""

    # Money and time.
    async def spent_since(self, since: float) -> float:
        """US dollars charged since `since` (epoch seconds): generations not failed, plus creates that may have been
        charged and have no answer yet (their estimate)."""

    async def daily_spend(self, *, days: int) -> list[tuple[str, float, int]]:
        """(UTC date, US dollars, videos) for the last `days` days that had any, newest first."""

    async def last_cost(self, model: str, resolution: str, duration: int) -> float | None:
        """The newest cost the provider reported for a video of this model and size (never an estimate)."""

    async def ready_times(self, *, limit: int) -> list[ReadyTime]:
        """How long each of the newest `limit` completed generations took to be ready, newest first."""

    async def prune(self, *, before: float) -> int:
        """Drop finished generations (and retired intents) created before `before`; never a row that is not final,
        nor an intent younger than a day. In small batches, one transaction each (other writers go on meanwhile).
        Returns how many generations went."""

    # One poller per generation (and one settler per uncertain create) across processes.
    async def hold_lease(
        self, generation_id: str, holder: str, *, ttl_seconds: float, replacing: str | None = None
    ) -> str | None:
        """Take or extend the lease on `generation_id` (a generation, or `settle:<intent>`): None when `holder` has
        it now, else who has it. An expired lease is taken; so is one held by `replacing` (known to be dead)."""

    async def release_lease(self, generation_id: str, holder: str) -> None:
        """Give the lease up (the next waiter to look takes it)."""

    async def wait_for_change(self, generation_id: str, *, timeout: float) -> None:
        """Return when this generation's entry may have changed, or after `timeout` seconds."""

    # Tasks.
    async def save_task(self, task: TaskRecord) -> None:
        """Create or replace a task."""

    async def finish_task(self, task: TaskRecord) -> bool:
        """Record a task's end, unless it already ended (cancelled on another replica): False then."""

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """A task, if it exists (expired ones may already be gone)."""

    async def delete_expired_tasks(self, now: float) -> int:
        """Drop tasks whose time to live has passed; returns how many."""

    # Documents fetched from the provider.
    async def cached(self, name: str) -> CachedDocument | None:
        """A document kept under `name`, if any."""

    async def cache(self, name: str, document: CachedDocument) -> None:
        """Keep (or replace) a document under `name`."""


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
