"""Settling creates whose answer was lost: did the provider receive them?

Every create carries a fresh `X-Client-Request-Id`, journaled with its intent before it is sent. When no answer
comes back (a timeout, a reset, a 5xx, an unreadable 2xx), or its sender died before one did, the create is looked
up in the provider's request log (`GET /v2/logs`) by that id: at once, then with back-off, for up to
`PIXVERSE_MCP_SETTLE_SECONDS`. Found: its generation id is journaled, and an identical call re-attaches to it (one
payment). Logged as failed, or still absent when the window closes: it was never received and nothing was charged,
so an identical call creates it again. Settling runs in the background of a running server (and on the next
start); across replicas a lease makes one of them settle each create.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Final

import anyio

from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.errors import CreateOutcomeUnknownError, CreatePendingError, PixVerseError
from pixverse_mcp.models import Generation, GenerationStatus, plausible_cost_usd
from pixverse_mcp.pricing import RequestLogRow
from pixverse_mcp.storage import AnsweredCreate, JournalEntry, PendingCreate, Storage, StorageError
from pixverse_mcp.text import printable
from pixverse_mcp.watch import is_dead_here

logger = logging.getLogger(__name__)

# The log is searched from a little before the create was sent (clocks differ) to now, this many pages at most
# per look (100 rows each: a key busy enough to pass that in the window is looked at again later).
_CLOCK_SLACK_SECONDS: Final = 120.0
_PAGES_PER_LOOK: Final = 20
_PAGE_ROWS: Final = 100
_LOOK_TIMEOUT_SECONDS: Final = 10.0
# Without news, the pending creates are looked at this often (a create's own back-off decides when it is due); the
# first look waits a little, so that a process's first answer does not wait for the journal.
_SWEEP_SECONDS: Final = 5.0
_FIRST_SWEEP_SECONDS: Final = 1.0
# How often a caller waiting for an identical create (its id, or its settling) looks again: soon at first, then
# less often (a settling create may take minutes).
_JOIN_FIRST_SECONDS: Final = 0.05
_JOIN_MAX_SECONDS: Final = 1.0


@dataclass(frozen=True)
class SettlePolicy:
    """When to look: at once, then after `first_retry_seconds`, doubling up to `max_retry_seconds`, until the
    create's window (`settle_seconds` after it was sent) closes. The sandbox and tests scale these down."""

    settle_seconds: float = 600.0
    first_retry_seconds: float = 2.0
    max_retry_seconds: float = 60.0
    lease_seconds: float = 30.0


class Settler:
    """Settles the uncertain creates of one storage (see the module docstring)."""

    def __init__(self, client: PixVerseClient, storage: Storage, *, instance: str, policy: SettlePolicy) -> None:
        self.client = client
        self.storage = storage
        self.instance = instance
        self.policy = policy
        self._wake = anyio.Event()
        self._due: dict[str, tuple[float, int]] = {}
        """intent id -> (when to look next, on the event loop's clock; looks so far)."""

    def wake(self) -> None:
        """Look at the pending creates now (a create just lost its answer)."""
        self._wake.set()

    async def begin(self, intent_id: str, detail: str) -> None:
        """A create lost its answer (or its call ended while it was out): settle it, starting now."""
        settle_until = time.time() + self.policy.settle_seconds
        with anyio.CancelScope(shield=True):
            try:
                await self.storage.abandon_create(
                    intent_id, outcome_unknown=True, detail=detail, settle_until=settle_until
                )
            except StorageError as exc:
                logger.error("could not mark create %s for settling: %s", intent_id, exc)
        self.wake()

    async def join(self, intent_id: str, deadline: float) -> JournalEntry | None:
        """Wait (until `deadline`, on the event loop's clock) for a create without an id yet, made by another call:
        the generation it became, or None when it was refused or never received (the caller may claim again). One
        being settled is never sent again (that could pay twice): past the deadline the caller hears how it stands
        (`CreatePendingError` while it is being sent, else `still_settling`). A sender that is gone is noticed at
        once (its pid, on this machine) and its create settled."""
        pause = _JOIN_FIRST_SECONDS
        while True:
            try:
                # The intent before its generation: settling fills in the intent and adds the generation in one
                # transaction, so a commit between these two reads still shows one of them. (Read the other way
                # round, a commit between them hid both: the caller claimed again and paid a second time.)
                pending = await self.storage.pending_create(intent_id)
                entry = None if pending is not None else await self.storage.created_by(intent_id)
            except StorageError as exc:
                raise StorageError(f"{exc} Nothing was sent to the AI/ML API for this call.") from exc
            if entry is not None or pending is None or pending.state == "never_received":
                return entry
            if pending.state == "sending" and (pending.stale(time.time()) or is_dead_here(pending.sender or "")):
                await self.begin(intent_id, "its sender stopped before an answer came back")
            now = anyio.current_time()
            if now >= deadline or self.client.drain.stopping:
                if pending.state == "sending":
                    raise CreatePendingError(
                        f"An identical create was sent {max(0, round(time.time() - pending.created_at))} s ago by "
                        "another call and has no id yet. Nothing was sent for this call."
                    )
                raise self.still_settling(pending.created_at)
            with self.client.drain.guard():
                await anyio.sleep(min(pause, deadline - now))
            pause = min(_JOIN_MAX_SECONDS, pause * 2)

    def still_settling(self, sent_at: float) -> CreateOutcomeUnknownError:
        """What a caller hears about a create that lost its answer and is being settled."""
        minutes = max(1, round(self.policy.settle_seconds / 60))
        return CreateOutcomeUnknownError(
            f"A create of this video was sent {max(0, round(time.time() - sent_at))} s ago and its answer was lost, "
            "so it may have been accepted. pixverse-mcp is looking for it in the provider's request log (for up to "
            f"{minutes} min; list_videos shows how it stands)."
        )

    async def run(self) -> None:
        """Settle what is pending (a moment after start-up, so the first answer comes first), then whenever woken
        or due, until cancelled."""
        pause = _FIRST_SWEEP_SECONDS
        while True:
            with anyio.move_on_after(pause):
                await self._wake.wait()
            self._wake = anyio.Event()
            try:
                await self.sweep()
            except StorageError as exc:
                logger.warning("settling waits for storage: %s", exc)
            pause = max(0.0, min(_SWEEP_SECONDS, self._next_due() - anyio.current_time()))

    async def sweep(self) -> int:
        """Look at every pending create that is due; returns how many were settled."""
        settled = 0
        now = time.time()
        for pending in await self.storage.settling_creates(limit=100):
            if pending.state == "sending":
                if not (pending.stale(now) or is_dead_here(pending.sender or "")):
                    continue  # its sender is still waiting for the answer
                until = now + self.policy.settle_seconds
                await self.storage.abandon_create(
                    pending.intent_id,
                    outcome_unknown=True,
                    detail="its sender stopped before an answer came back",
                    settle_until=until,
                )
                pending = replace(pending, state="settling", settle_until=until)
            when, _ = self._due.get(pending.intent_id, (-math.inf, 0))
            if anyio.current_time() >= when and await self._settle(pending):
                settled += 1
        return settled

    async def _settle(self, pending: PendingCreate) -> bool:
        """One look for one create; True when it was settled either way."""
        if pending.client_request_id is None:
            return False
        lease = f"settle:{pending.intent_id}"
        try:
            if await self.storage.hold_lease(lease, self.instance, ttl_seconds=self.policy.lease_seconds) is not None:
                return False  # another replica settles it
            try:
                row = await self._find(pending)
            except PixVerseError as exc:
                logger.info("the request log is unavailable for now (%s); settling later", exc)
                self._later(pending)
                return False
            return await self._conclude(pending, row)
        finally:
            with anyio.CancelScope(shield=True):
                await self.storage.release_lease(lease, self.instance)

    async def _conclude(self, pending: PendingCreate, row: RequestLogRow | None) -> bool:
        if row is not None and row.succeeded and row.inference_id:
            await self._found(pending, row, row.inference_id)
        elif row is not None and row.succeeded:
            # Received, so charged, but the log does not say as what: never "not received" (an identical call
            # would pay again). It stays counted at its estimate, joined, never sent again.
            await self.storage.settle_unknown(
                pending.intent_id,
                detail="the provider's request log shows it received, without its generation id: it was charged; "
                "its video is only on the provider's usage page",
            )
            logger.warning("create %s settled: received, but its generation id is unknown", pending.intent_id)
        elif row is not None:
            await self.storage.settle_absent(
                pending.intent_id, detail="the provider's request log shows it failed there: nothing was charged"
            )
            logger.info("create %s settled: refused by the provider, never charged", pending.intent_id)
        elif time.time() >= (pending.settle_until or pending.created_at + self.policy.settle_seconds):
            minutes = max(1, round(self.policy.settle_seconds / 60))
            await self.storage.settle_absent(
                pending.intent_id,
                detail=f"not in the provider's request log {minutes} min after it was sent: it never arrived, "
                "and nothing was charged",
            )
            logger.info("create %s settled: never received", pending.intent_id)
        else:
            self._later(pending)
            return False
        self._due.pop(pending.intent_id, None)
        return True

    async def _found(self, pending: PendingCreate, row: RequestLogRow, generation_id: str) -> None:
        try:
            generation = await self.client.get(generation_id, timeout=_LOOK_TIMEOUT_SECONDS)
        except PixVerseError:
            generation = Generation(id=generation_id, status=GenerationStatus.QUEUED)
        # An async video is charged once done (0 until then); a figure no video costs is a misreading: the estimate.
        charged = plausible_cost_usd(row.cost_usd)
        cost = charged if charged is not None else pending.estimate_usd
        answered = AnsweredCreate(
            pending.intent_id,
            generation.model_copy(update={"cost_usd": cost}),
            pending.request or {},
            pending.key or "",
            row.created or pending.created_at,
            cost,
            cost_estimated=charged is None,
        )
        await self.storage.complete_create(answered)
        logger.info("create %s settled: the provider received it as %s", pending.intent_id, printable(generation_id))

    async def _find(self, pending: PendingCreate) -> RequestLogRow | None:
        """The log row of this create (by its request id), or None when the log does not have it (yet)."""
        start = pending.created_at - _CLOCK_SLACK_SECONDS
        end = time.time() + _CLOCK_SLACK_SECONDS
        for page in range(_PAGES_PER_LOOK):
            found = await self.client.account.request_logs(
                start=start, end=end, offset=page * _PAGE_ROWS, limit=_PAGE_ROWS, timeout=_LOOK_TIMEOUT_SECONDS
            )
            for row in found.rows:
                if row.client_request_id == pending.client_request_id:
                    return row
            if not found.has_more:
                break
        return None

    def _later(self, pending: PendingCreate) -> None:
        _, looks = self._due.get(pending.intent_id, (0.0, 0))
        pause = min(self.policy.max_retry_seconds, self.policy.first_retry_seconds * 2**looks)
        self._due[pending.intent_id] = (anyio.current_time() + pause, looks + 1)

    def _next_due(self) -> float:
        return min((when for when, _ in self._due.values()), default=math.inf)
