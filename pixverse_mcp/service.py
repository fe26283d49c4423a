"""What a video request goes through, whoever makes it (an MCP tool, a protocol task, the command line): prepare,
claim, create or re-attach, journal, wait, save. The front ends are thin layers over `VideoService`.

Money first: a create is claimed in storage before it is sent (the intent, with the request id it carries,
survives a crash), refused there when it would pass the day's spending cap, bound to the user's confirmation when
one was asked (a replayed answer gets the first call's generation), and an identical one in flight (in this process
or another replica) is joined instead of paid again. An answered create is journaled, or kept in the spool until
the journal can take it: a paid id is never lost. A create without an answer is settled by the request logs
(`settle.py`). Waits are streams of typed events (`WaitUpdate`, then one `Finished`) that the caller pulls; one
poller per generation across processes (`watch.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from pixverse_mcp import defaults
from pixverse_mcp._http import DownloadedVideo
from pixverse_mcp.client import PixVerseClient, WaitUpdate
from pixverse_mcp.errors import (
    CreateOutcomeUnknownError,
    DownloadError,
    GenerationLookupError,
    PixVerseError,
    SpendingCapError,
)
from pixverse_mcp.files import DOWNLOAD_MARGIN_SECONDS, VideoFiles
from pixverse_mcp.inputs import InputLimits
from pixverse_mcp.models import AnyRequest, Generation, GenerationStatus
from pixverse_mcp.money import Spending
from pixverse_mcp.prepare import Prepared, Preparer
from pixverse_mcp.settle import Settler
from pixverse_mcp.spool import Spool
from pixverse_mcp.storage import (
    AnsweredCreate,
    CreateClaim,
    CreateInProgress,
    JournalEntry,
    OverBudget,
    Proceed,
    Reattach,
    Storage,
    StorageError,
)
from pixverse_mcp.text import printable
from pixverse_mcp.timing import Expectations
from pixverse_mcp.watch import Watch, Watcher

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceOptions:
    """What the service takes from the settings."""

    api: str
    """The base URL (part of every request key)."""
    wait_budget_seconds: float
    reattach_window_seconds: float
    settle_seconds: float
    save_by_default: bool
    input_folders: tuple[Path, ...] = ()
    input_limits: InputLimits = field(
        default_factory=lambda: InputLimits.from_megabytes(
            defaults.MAX_IMAGE_MB, defaults.MAX_VIDEO_INPUT_MB, defaults.MAX_AUDIO_INPUT_MB
        )
    )


@dataclass(frozen=True)
class Started:
    """A generation this call is about: new, or one it re-attached to."""

    generation: Generation
    created_at: float
    """When it was created (`time.time()`), as best we know: the wait's schedule counts from here, not from when
    the wait begins (a create's journaling, or a task's hand-off, must not shift every look later)."""
    request: dict[str, Any] | None = None
    """The request as journaled (its size tells when it is likely ready)."""
    reattached: bool = False
    fresh: bool = False
    """True when `generation` is this process's own create answer: its status is known, the first look can wait."""
    journal_error: str | None = None
    """Why its id is not in the journal yet (it is still returned, and kept in the spool: nothing is lost)."""


@dataclass(frozen=True)
class Outcome:
    """How a call about one generation ended: its latest state plus what we know around it."""

    generation: Generation
    elapsed_seconds: float | None = None
    """How long this call waited."""
    remaining_seconds: float | None = None
    """Rough time left by the usual figures, while it is still running."""
    reattached: bool = False
    """True when an identical in-flight generation was re-used instead of paying for a new one."""
    saved: DownloadedVideo | None = None
    save_error: str | None = None
    journal_error: str | None = None
    prompt: str | None = None
    """What was asked for (from the request, or the journal), for whoever shows the video."""
    model: str | None = None


@dataclass(frozen=True)
class Finished:
    """The last event of a wait: how it ended."""

    outcome: Outcome


WaitEvent = WaitUpdate | Finished


class VideoService:
    """Prepare, start (or re-attach to), wait for and save generations; every id journaled before anyone sees it."""

    def __init__(
        self,
        client: PixVerseClient,
        storage: Storage,
        *,
        options: ServiceOptions,
        watcher: Watcher,
        files: VideoFiles,
        spending: Spending,
        expectations: Expectations,
        spool: Spool,
        settler: Settler,
    ) -> None:
        self.preparer = Preparer(client, storage, spending, api=options.api, limits=options.input_limits)
        self.client = client
        self.storage = storage
        self.options = options
        self.watcher = watcher
        self.files = files
        self.spending = spending
        self.expectations = expectations
        self.spool = spool
        self.settler = settler

    @property
    def instance(self) -> str:
        """This process's name in storage (as a create's sender and a lease holder)."""
        return self.watcher.instance

    @property
    def draining(self) -> bool:
        """True once a graceful shutdown began: waits end early, and what they report is not final."""
        return self.client.drain.stopping

    def drain(self) -> None:
        """End every wait now with its current state (for a graceful shutdown); later waits return at once.

        Each interrupted call still answers normally, with its generation id and how to continue.
        """
        self.client.drain.begin()

    async def prepare(
        self, request: AnyRequest, *, folders: Sequence[Path] = (), within: float | None = None
    ) -> Prepared:
        """See `Preparer.prepare` (files only inside `folders`, the input folders and the videos folder)."""
        allowed = (*folders, *self.options.input_folders, self.files.folder)
        return await self.preparer.prepare(request, folders=allowed, within=within)

    async def start(
        self,
        prepared: Prepared,
        *,
        timeout: float | None = None,
        force_new: bool = False,
        confirmation: str | None = None,
    ) -> Started:
        """Create a generation (or, unless `force_new`, re-attach to an identical one in flight; and whatever
        `force_new` says, to the one this `confirmation` already paid for) and journal it, within `timeout`
        seconds (default: the wait budget).

        Raises `SpendingCapError` over the day's cap and `StorageError` when the claim cannot be recorded (nothing
        sent either way), `CreateOutcomeUnknownError` when it may have been accepted without an answer (it is then
        being settled), another `PixVerseError` when it was refused.
        """
        deadline = anyio.current_time() + (self.options.wait_budget_seconds if timeout is None else timeout)
        window = self.options.reattach_window_seconds
        while True:
            claim = CreateClaim(
                request=prepared.journaled,
                key=prepared.key,
                sender=self.instance,
                reattach_since=None if force_new or window <= 0 else time.time() - window,
                budget=self.spending.budget(prepared.estimate),
                confirmation=confirmation,
                estimate_usd=prepared.estimate.usd,
            )
            try:
                claimed = await self.storage.claim_create(claim)
            except StorageError as exc:
                raise StorageError(f"{exc} Nothing was sent to the AI/ML API; try again once it is back.") from exc
            if isinstance(claimed, Reattach):
                logger.info("re-attaching to generation %s", printable(claimed.entry.generation_id))
                return _reattached(claimed.entry)
            if isinstance(claimed, OverBudget):
                cap = self.spending.cap_usd or 0.0
                raise SpendingCapError(cap_usd=cap, spent_usd=claimed.spent_usd, estimate_usd=claimed.estimate_usd)
            if isinstance(claimed, CreateInProgress):
                joined = await self._join(claimed.intent_id, deadline)
                if joined is not None:
                    return joined
                continue  # that create was refused, or never received (nothing accepted): claim again
            try:
                return await self._create(prepared, claimed, deadline)
            except CreateOutcomeUnknownError:
                if force_new:
                    raise
                # Claim again: this very create is found being settled, and is joined within the call's budget.

    async def _create(self, prepared: Prepared, claim: Proceed, deadline: float) -> Started:
        try:
            generation = await self.client.create(
                prepared.body,
                timeout=max(0.0, deadline - anyio.current_time()),
                client_request_id=claim.client_request_id,
            )
            answered_at = time.time()
        except CreateOutcomeUnknownError as exc:
            await self.settler.begin(claim.intent_id, str(exc))
            raise self.settler.still_settling(time.time()) from None
        except PixVerseError as exc:
            await self._forget(claim.intent_id, str(exc))
            raise
        except BaseException:
            # Cancelled (or worse) while the request was out: it may have been accepted. Settling will tell.
            await self.settler.begin(claim.intent_id, "the call ended while the create was being sent")
            raise
        cost, estimated = generation.cost_usd, generation.cost_usd is None
        if estimated:
            logger.warning(
                "the create answer for %s carries no readable cost: counting the estimate ($%.2f)",
                printable(generation.id),
                prepared.estimate.usd,
            )
            cost = prepared.estimate.usd
        generation = generation.model_copy(update={"cost_usd": cost})
        answered = AnsweredCreate(
            claim.intent_id, generation, prepared.journaled, prepared.key, answered_at, cost, cost_estimated=estimated
        )
        try:
            await self.storage.complete_create(answered)
        except StorageError as exc:
            kept = await self.spool.keep(answered)
            logger.error("generation %s could not be journaled (%s); %s", printable(generation.id), exc, kept)
            error = f"The journal could not record it ({exc}); {kept}"
            return Started(generation, answered_at, prepared.journaled, fresh=True, journal_error=error)
        return Started(generation, answered_at, prepared.journaled, fresh=True)

    async def _forget(self, intent_id: str, detail: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.storage.abandon_create(intent_id, outcome_unknown=False, detail=detail)
            except StorageError as exc:
                logger.error("could not forget the refused create %s: %s", intent_id, exc)

    async def _join(self, intent_id: str, deadline: float) -> Started | None:
        """An identical create without an id yet, joined (see `Settler.join`): its generation, or None to claim
        again (it was refused, or never received)."""
        entry = await self.settler.join(intent_id, deadline)
        return _reattached(entry) if entry is not None else None

    async def status(self, generation_id: str, *, save: bool | None = None) -> Outcome:
        """One look at a generation (and its file, when asked or configured). The cost comes from the journal:
        status answers do not carry it, the create's answer did."""
        entry = await self._entry(generation_id)
        deadline = anyio.current_time() + self.options.wait_budget_seconds
        try:
            generation = await self.client.get(generation_id, timeout=self.options.wait_budget_seconds)
        except PixVerseError as exc:
            raise GenerationLookupError.from_error(exc, generation_id=generation_id) from exc
        try:
            await self.storage.record_status(generation)
        except StorageError as exc:
            logger.error("%s", exc)
        outcome = await self._finish(_with_cost(generation, entry), save, deadline=deadline, elapsed=0.0)
        return replace(
            outcome, prompt=_prompt_of(entry.request if entry else None), model=entry.model if entry else None
        )

    async def wait_for(
        self, generation_id: str, *, timeout: float, save: bool | None = None
    ) -> AsyncGenerator[WaitEvent, None]:
        """`wait` for a generation known only by its id (from the journal when it is there)."""
        entry = await self._entry(generation_id)
        if entry is None:
            started = Started(Generation(id=generation_id, status=GenerationStatus.UNKNOWN), time.time())
        else:
            started = Started(_with_cost(entry.as_generation(), entry), entry.created_at, entry.request)
        async with aclosing(self.wait(started, timeout=timeout, save=save)) as events:
            async for event in events:
                yield event

    async def wait(
        self, started: Started, *, timeout: float, save: bool | None = None
    ) -> AsyncGenerator[WaitEvent, None]:
        """The updates of a generation until it is final or `timeout` seconds pass (or the server drains), then
        one `Finished` with the outcome: a video still running when time is up is a normal outcome (not an error),
        with an estimate. Raises `GenerationLookupError` (with the id) when its status cannot be read."""
        began = anyio.current_time()
        expectation = await self.expectations.of(started.request)
        generation = started.generation
        watch = Watch(
            generation.id,
            deadline=began + timeout,
            expectation=expectation,
            elapsed_before=max(0.0, time.time() - started.created_at),
            known=generation if started.fresh else None,
        )
        latest = generation
        try:
            async with aclosing(self.watcher.updates(watch)) as updates:
                async for update in updates:
                    if update.generation is not None:
                        latest = _carrying(update.generation, generation)
                        if update.generation.status.is_final:
                            self.expectations.forget()
                    yield update
        except PixVerseError as exc:
            raise GenerationLookupError.from_error(exc, generation_id=generation.id) from exc
        elapsed = anyio.current_time() - began
        if latest.status.is_final:
            outcome = await self._finish(latest, save, deadline=began + timeout, elapsed=elapsed)
        else:
            if self.draining:
                logger.info("wait for %s ended early: the server is shutting down", printable(generation.id))
            remaining = expectation.typical - watch.elapsed_before - elapsed
            outcome = Outcome(latest, elapsed_seconds=elapsed, remaining_seconds=remaining if remaining > 0 else None)
        yield Finished(
            replace(
                outcome,
                reattached=started.reattached,
                journal_error=started.journal_error,
                prompt=_prompt_of(started.request),
                model=_model_of(started.request),
            )
        )

    async def _finish(self, generation: Generation, save: bool | None, *, deadline: float, elapsed: float) -> Outcome:
        """Save a completed video when asked (or by default), within the call's deadline (at least
        `DOWNLOAD_MARGIN_SECONDS`): a download that cannot finish by then is reported, not waited for."""
        wants_file = save if save is not None else self.options.save_by_default
        outcome = Outcome(generation, elapsed_seconds=elapsed)
        if not (wants_file and generation.status is GenerationStatus.COMPLETED and generation.video_url):
            return outcome
        timeout = max(DOWNLOAD_MARGIN_SECONDS, deadline - anyio.current_time())
        try:
            with self.client.drain.guard() as scope:
                saved = await self.files.save(generation.id, generation.video_url, timeout=timeout)
        except DownloadError as exc:
            return replace(outcome, save_error=str(exc))
        if scope.cancelled_caught:
            return replace(outcome, save_error="The server shut down before the video was saved; video_url has it.")
        return replace(outcome, saved=saved)

    async def _entry(self, generation_id: str) -> JournalEntry | None:
        try:
            return await self.storage.get(generation_id)
        except StorageError as exc:
            logger.error("%s", exc)
            return None


def _reattached(entry: JournalEntry) -> Started:
    return Started(_with_cost(entry.as_generation(), entry), entry.created_at, entry.request, reattached=True)


def _carrying(answer: Generation, created: Generation) -> Generation:
    """A status answer carrying what the create's answer said it cost (status answers do not say)."""
    return answer.model_copy(update={"cost_usd": created.cost_usd, "usage": answer.usage or created.usage})


def _with_cost(generation: Generation, entry: JournalEntry | None) -> Generation:
    """`generation` carrying what the journal knows it cost (a status answer does not say)."""
    if entry is None:
        return generation
    return generation.model_copy(update={"cost_usd": entry.cost_usd, "usage": generation.usage or entry.usage})


def _prompt_of(request: dict[str, Any] | None) -> str | None:
    prompt = request.get("prompt") if request else None
    return prompt if isinstance(prompt, str) else None


def _model_of(request: dict[str, Any] | None) -> str | None:
    model = request.get("model") if request else None
    return model if isinstance(model, str) else None
