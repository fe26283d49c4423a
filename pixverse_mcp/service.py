"""What a video request goes through, whoever makes it (an MCP tool, a protocol task, the command line): claim,
create or re-attach, journal, wait, save. The front ends are thin layers over `VideoService`.

Money first: a create is claimed in storage before it is sent (the intent survives a crash), refused there when it
would pass the day's spending cap, and an identical one in flight (in this process or another replica) is joined
instead of paid again. Waits share one poller per generation: in this process (the client's shared watch) and
across processes (a lease in storage: the other waiters read what the holder journals, and take over if it dies).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread

from pixverse_mcp.client import DownloadedVideo, PixVerseClient, WaitUpdate, printable, safe_video_file_name
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import (
    CreateOutcomeUnknownError,
    DownloadError,
    GenerationFailedError,
    GenerationLookupError,
    InvalidArgumentError,
    PixVerseError,
    SpendingCapError,
    WaitTimeoutError,
)
from pixverse_mcp.models import Generation, GenerationStatus, VideoRequest, request_size
from pixverse_mcp.polling import Expectation, ReadyTime, expectation_from_history
from pixverse_mcp.preview import ContactSheet, contact_sheet
from pixverse_mcp.storage import (
    CREATE_GRACE_SECONDS,
    Budget,
    CreateInProgress,
    JournalEntry,
    OverBudget,
    Proceed,
    Reattach,
    Storage,
    StorageError,
    utc_midnight,
)

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
# A call that must still save its video gets at least this long for it, past its budget if need be (the README's
# "budget plus a small margin").
DOWNLOAD_MARGIN_SECONDS: Final = 2.0
# Expectations are learnt from this many of the newest ready times (all sizes), re-read at most this often (scaled
# with the polling schedule, for the sandbox).
LEARN_FROM_GENERATIONS: Final = 200
EXPECTATION_REFRESH_SECONDS: Final = 10.0
ProgressCallback = Callable[[WaitUpdate], Awaitable[None]]
"""What the front ends give a wait: a coroutine that hears every update (progress bars, MCP notifications)."""

# How often a caller waiting for an identical create in progress (here or on another replica) looks for its id.
_JOIN_POLL_SECONDS: Final = 0.05
_CHECK_BEFORE_RETRYING: Final = (
    "Do not simply create it again: it may already be generating and charged. Check your AI/ML API usage page "
    "(https://aimlapi.com/app/billing) first, or pass force_new to create another anyway."
)


def request_key(request: VideoRequest, api: str) -> str:
    """A digest of everything that defines a video and where it was sent (`api`: the base URL, so a sandbox's
    generation is never mistaken for one of the real API's): equal requests to one API, equal keys."""
    return hashlib.sha256(json.dumps([api, request.to_body()], sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Started:
    """A generation this call is about: new, or an identical one it re-attached to."""

    generation: Generation
    created_at: float
    """When it was created (`time.time()`), as best we know: the wait's schedule counts from here, not from when
    the wait begins (a create's journaling, or a task's hand-off, must not shift every look later)."""
    reattached: bool = False
    fresh: bool = False
    """True when `generation` is this process's own create answer: its status is known, the first look can wait."""
    journal_error: str | None = None
    """Why its id could not be journaled (it is still returned: nothing is lost while the caller has it)."""


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


class _LeaseLost(Exception):
    """Another process now polls this generation: follow it instead."""


class _LeaseFree(Exception):
    """Nobody polls this generation any more: take it over."""


class VideoService:
    """Start, re-attach, wait for and save generations, journaling every id before anyone else sees it."""

    def __init__(self, client: PixVerseClient, storage: Storage, settings: Settings) -> None:
        self.client = client
        self.storage = storage
        self.settings = settings
        self.instance = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        """This process's name in storage, as the holder of its polling leases: host/pid/random."""
        self._waits: set[anyio.CancelScope] = set()
        self._draining = False
        self._lease_renewed: dict[str, float] = {}
        self._history: tuple[float, list[ReadyTime]] | None = None

    @property
    def draining(self) -> bool:
        """True once a graceful shutdown began: waits end early, and what they report is not final."""
        return self._draining

    def drain(self) -> None:
        """End every wait now with its current state (for a graceful shutdown); later waits return at once.

        Each interrupted call still answers normally, with its generation id and how to continue.
        """
        self._draining = True
        for scope in self._waits:
            scope.cancel()

    async def expectation(self, request: dict[str, Any] | None) -> Expectation:
        """When a generation of this request's size is likely to be ready: learnt from the journal's recent ready
        times (which every process and replica writes), the documented table while there is no history. The
        history is read at most every `EXPECTATION_REFRESH_SECONDS`: a thousand waits are not a thousand queries."""
        resolution, duration = request_size(request)
        policy = self.client.polling_policy
        now = anyio.current_time()
        if self._history is None or now - self._history[0] >= EXPECTATION_REFRESH_SECONDS * policy.time_scale:
            try:
                history = await self.storage.ready_times(limit=LEARN_FROM_GENERATIONS)
            except StorageError:
                history = []
            self._history = (now, history)
        return expectation_from_history(self._history[1], resolution, duration, time_scale=policy.time_scale)

    async def start(self, request: VideoRequest, *, force_new: bool = True, timeout: float | None = None) -> Started:
        """Create a generation (or, unless `force_new`, re-attach to an identical one in flight) and journal it
        before returning, within `timeout` seconds (default: the wait budget); a create cut short by it may have
        been accepted, and says so.

        Raises `SpendingCapError` over the day's cap and `StorageError` when the claim cannot be recorded (nothing
        sent either way), `CreateOutcomeUnknownError` when it may have been accepted without an answer, another
        `PixVerseError` when it was refused.
        """
        key = request_key(request, self.settings.base_url)
        body = request.to_body()
        window = self.settings.reattach_window_seconds
        deadline = anyio.current_time() + (self.settings.wait_budget_seconds if timeout is None else timeout)
        while True:
            reattach_since = None if force_new or window <= 0 else time.time() - window
            claim = await self.storage.claim_create(body, key, reattach_since=reattach_since, budget=self._budget())
            if isinstance(claim, Reattach):
                logger.info("re-attaching to in-flight generation %s", printable(claim.entry.generation_id))
                return _reattached(claim.entry)
            if isinstance(claim, OverBudget):
                cap = self.settings.daily_budget_usd or 0.0
                raise SpendingCapError(cap_usd=cap, spent_usd=claim.spent_usd, estimate_usd=claim.estimate_usd)
            if isinstance(claim, CreateInProgress):
                joined = await self._join(claim.intent_id)
                if joined is not None:
                    return joined
                continue  # that create was refused (nothing accepted): claim again
            assert isinstance(claim, Proceed)
            return await self._create(request, body, key, claim.intent_id, deadline)

    async def _create(
        self, request: VideoRequest, body: dict[str, object], key: str, intent_id: str, deadline: float
    ) -> Started:
        try:
            generation = await self.client.create(request, timeout=max(0.0, deadline - anyio.current_time()))
            answered_at = time.time()
        except CreateOutcomeUnknownError as exc:
            await self._abandon(intent_id, outcome_unknown=True, detail=str(exc))
            raise
        except PixVerseError as exc:
            await self._abandon(intent_id, outcome_unknown=False, detail=str(exc))
            raise
        except BaseException:
            # Cancelled (or worse) while the request was out: it may have been accepted. The intent says so.
            await self._abandon(intent_id, outcome_unknown=True, detail="the call ended while the create was sent")
            raise
        try:
            await self.storage.complete_create(intent_id, generation, dict(body), key, created_at=answered_at)
        except StorageError as exc:
            logger.error("generation %s could not be journaled: %s", printable(generation.id), exc)
            return Started(generation, answered_at, fresh=True, journal_error=str(exc))
        return Started(generation, answered_at, fresh=True)

    async def _abandon(self, intent_id: str, *, outcome_unknown: bool, detail: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.storage.abandon_create(intent_id, outcome_unknown=outcome_unknown, detail=detail)
            except StorageError as exc:
                logger.error("could not update the create intent %s: %s", intent_id, exc)

    async def _join(self, intent_id: str) -> Started | None:
        """Wait for an identical create without an id yet; its generation, or None if it was refused (claim
        again). One whose outcome is unknown is not sent again: that could pay twice (`force_new` does it)."""
        sent_at = time.time()
        with anyio.move_on_after(CREATE_GRACE_SECONDS):
            while True:
                entry = await self.storage.created_by(intent_id)
                if entry is not None:
                    return _reattached(entry)
                pending = await self.storage.pending_create(intent_id)
                if pending is None:
                    return None
                sent_at = pending.created_at
                if pending.outcome_unknown:
                    break
                await anyio.sleep(_JOIN_POLL_SECONDS)
        raise CreateOutcomeUnknownError(
            f"An identical create was sent {max(0, round(time.time() - sent_at))} s ago and no answer came back for "
            f"it, so it may have been accepted. {_CHECK_BEFORE_RETRYING}"
        )

    def _budget(self) -> Budget | None:
        cap = self.settings.daily_budget_usd
        if cap is None:
            return None
        return Budget(cap, self.settings.cost_estimate_usd, utc_midnight(time.time()))

    async def left_today(self) -> float | None:
        """What the spending cap leaves for the rest of the UTC day (None without a cap, or if unknown)."""
        cap = self.settings.daily_budget_usd
        if cap is None:
            return None
        try:
            spent = await self.storage.spent_since(utc_midnight(time.time()))
        except StorageError:
            return None
        return max(0.0, cap - spent)

    async def generate(
        self,
        request: VideoRequest,
        *,
        timeout: float,
        force_new: bool = False,
        save: bool | None = None,
        on_update: ProgressCallback | None = None,
    ) -> Outcome:
        """Start (or re-attach to an identical in-flight) generation and wait up to `timeout` seconds for it.

        A generation still running when time is up is a normal outcome (not an error): the id goes back to the
        caller with an estimate. Raises `PixVerseError` when nothing was created, `GenerationLookupError` (with the
        id) when the status could not be read.
        """
        called = anyio.current_time()
        started = await self.start(request, force_new=force_new, timeout=timeout)
        left = timeout - (anyio.current_time() - called)
        return await self.wait_started(started, request, timeout=left, save=save, on_update=on_update)

    async def wait_started(
        self,
        started: Started,
        request: VideoRequest,
        *,
        timeout: float,
        save: bool | None = None,
        on_update: ProgressCallback | None = None,
    ) -> Outcome:
        """Wait up to `timeout` seconds for a generation `start` returned (a protocol task waits here, later)."""
        expectation = await self.expectation(request.model_dump())
        elapsed_before = max(0.0, time.time() - started.created_at)
        outcome = await self._wait(
            started.generation, timeout, expectation, elapsed_before, save, on_update, fresh=started.fresh
        )
        return replace(
            outcome, reattached=started.reattached, journal_error=started.journal_error, prompt=request.prompt
        )

    async def status(
        self,
        generation_id: str,
        *,
        wait_seconds: float = 0.0,
        save: bool | None = None,
        on_update: ProgressCallback | None = None,
    ) -> Outcome:
        """The current state of a generation; with `wait_seconds` > 0, wait that long at most for it to finish.

        The cost (`usage`) comes from the journal: status responses do not carry it, the create response did.
        """
        entry = await self._journal(self.storage.get(generation_id))
        if wait_seconds <= 0:
            deadline = anyio.current_time() + self.settings.wait_budget_seconds
            try:
                generation = await self.client.get(generation_id, timeout=self.settings.wait_budget_seconds)
            except PixVerseError as exc:
                raise GenerationLookupError.from_error(exc, generation_id=generation_id) from exc
            await self._journal(self.storage.record_status(generation))
            generation = _with_usage(generation, entry.usage if entry else None)
            outcome = await self._finish(generation, save, deadline=deadline)
        else:
            known = entry.as_generation() if entry else Generation(id=generation_id, status=GenerationStatus.UNKNOWN)
            expectation = await self.expectation(entry.request if entry else None)
            elapsed_before = time.time() - entry.created_at if entry and entry.request else 0.0
            outcome = await self._wait(known, wait_seconds, expectation, elapsed_before, save, on_update)
        prompt = entry.request.get("prompt") if entry is not None and entry.request else None
        return replace(outcome, prompt=prompt if isinstance(prompt, str) else None)

    async def _wait(
        self,
        generation: Generation,
        timeout: float,
        expectation: Expectation,
        elapsed_before: float,
        save: bool | None,
        on_update: ProgressCallback | None,
        *,
        fresh: bool = False,
    ) -> Outcome:
        latest = generation

        async def hear(update: WaitUpdate) -> None:
            nonlocal latest
            if update.generation is not None:
                latest = _with_usage(update.generation, generation.usage)
            if on_update is not None:
                await on_update(update)

        def still_running() -> Outcome:
            elapsed = anyio.current_time() - started
            remaining = expectation.typical - elapsed_before - elapsed
            return Outcome(latest, elapsed_seconds=elapsed, remaining_seconds=remaining if remaining > 0 else None)

        started = anyio.current_time()
        try:
            with self._drainable() as scope:
                final = await self._watch(
                    generation.id,
                    started + timeout,
                    expectation,
                    elapsed_before,
                    hear,
                    known=generation if fresh else None,
                )
            if scope.cancelled_caught:
                logger.info("wait for %s ended early: the server is shutting down", printable(generation.id))
                return still_running()
        except WaitTimeoutError:
            return still_running()
        except GenerationFailedError as exc:
            failed = (
                _with_usage(exc.generation, generation.usage)
                if exc.generation
                else latest.model_copy(update={"status": GenerationStatus.FAILED, "error": str(exc)})
            )
            return Outcome(failed, elapsed_seconds=anyio.current_time() - started)
        except PixVerseError as exc:
            raise GenerationLookupError.from_error(exc, generation_id=generation.id) from exc
        except anyio.get_cancelled_exc_class():
            logger.warning("wait for %s cancelled; it goes on upstream and is journaled", printable(generation.id))
            raise
        final = _with_usage(final, generation.usage)
        outcome = await self._finish(final, save, deadline=started + timeout)
        return replace(outcome, elapsed_seconds=anyio.current_time() - started)

    @contextmanager
    def _drainable(self) -> Iterator[anyio.CancelScope]:
        """A scope that `drain` ends (a wait, a download): the call then answers with what it has."""
        scope = anyio.CancelScope()
        if self._draining:
            scope.cancel()
        self._waits.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._waits.discard(scope)

    async def _watch(
        self,
        generation_id: str,
        deadline: float,
        expectation: Expectation,
        elapsed_before: float,
        hear: ProgressCallback,
        *,
        known: Generation | None,
    ) -> Generation:
        """Poll the API while this process holds the generation's lease; else follow whoever does, through storage.

        Returns the completed generation; raises `GenerationFailedError`, or `WaitTimeoutError` at `deadline`.
        """
        watch_started = anyio.current_time()
        pending_until: float | None = None
        while True:
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise WaitTimeoutError(f"Generation {generation_id} is not finished", generation_id=generation_id)
            if not await self._take_lease(generation_id):
                try:
                    return await self._follow(generation_id, deadline, expectation, elapsed_before, hear)
                except _LeaseFree:
                    continue

            async def journal_and_hear(update: WaitUpdate) -> None:
                nonlocal pending_until
                current = update.generation
                if update.answer and current is not None and not current.status.is_final:
                    pending_until = time.time()  # it was not ready yet: its ready time is later than this
                if update.status_changed and current is not None:
                    await self._journal(self.storage.record_status(current, pending_until=pending_until))
                await hear(update)

            try:
                return await self.client.wait(
                    generation_id,
                    timeout=remaining,
                    on_update=journal_and_hear,
                    expectation=expectation,
                    elapsed_before=elapsed_before + anyio.current_time() - watch_started,
                    known=known,
                    before_poll=lambda: self._keep_lease(generation_id),
                )
            except _LeaseLost:
                logger.info("another process now polls %s; following it", printable(generation_id))
                known = None  # stale by the time this process polls it again: look at once then
            finally:
                with anyio.CancelScope(shield=True):
                    await self._release_lease(generation_id)

    async def _take_lease(self, generation_id: str) -> bool:
        ttl = self.settings.lease_seconds
        try:
            holder = await self.storage.hold_lease(generation_id, self.instance, ttl_seconds=ttl)
            if holder is not None and _is_dead_here(holder):
                # A process of this machine that is gone (a restart): no need to wait out its lease.
                holder = await self.storage.hold_lease(generation_id, self.instance, ttl_seconds=ttl, replacing=holder)
        except StorageError as exc:
            logger.warning("no polling lease for %s (%s): polling it anyway", printable(generation_id), exc)
            return True
        if holder is None:
            self._lease_renewed[generation_id] = anyio.current_time()
        return holder is None

    async def _keep_lease(self, generation_id: str) -> None:
        renewed = self._lease_renewed.get(generation_id, 0.0)
        if anyio.current_time() - renewed < self.settings.lease_seconds / 3:
            return
        if not await self._take_lease(generation_id):
            raise _LeaseLost

    async def _release_lease(self, generation_id: str) -> None:
        self._lease_renewed.pop(generation_id, None)
        try:
            await self.storage.release_lease(generation_id, self.instance)
        except StorageError as exc:
            logger.warning("could not release the polling lease on %s: %s", printable(generation_id), exc)

    async def _follow(
        self,
        generation_id: str,
        deadline: float,
        expectation: Expectation,
        elapsed_before: float,
        hear: ProgressCallback,
    ) -> Generation:
        """Wait on what another process's poller journals: no request to the API from here. Heartbeats as usual;
        take over (raise `_LeaseFree`) when that process stops renewing its lease."""
        policy = self.client.polling_policy
        started = anyio.current_time()
        last_status: GenerationStatus | None = None
        last_heard = started
        next_takeover = started + self.settings.lease_seconds / 3
        while True:
            now = anyio.current_time()
            entry = await self.storage.get(generation_id)
            current = entry.as_generation() if entry is not None else None
            changed = current is not None and current.status is not last_status
            if changed or now - last_heard >= policy.heartbeat_seconds:
                elapsed = elapsed_before + now - started
                update = WaitUpdate(generation_id, current, elapsed, expectation.typical, status_changed=changed)
                await hear(update)
                last_heard = now
                last_status = current.status if current is not None else None
            if current is not None and current.status is GenerationStatus.COMPLETED:
                return current
            if current is not None and current.status is GenerationStatus.FAILED:
                raise GenerationFailedError(
                    f"Generation {generation_id} failed: {current.error}",
                    generation_id=generation_id,
                    generation=current,
                )
            if now >= deadline:
                raise WaitTimeoutError(f"Generation {generation_id} is not finished", generation_id=generation_id)
            if now >= next_takeover:
                if await self._take_lease(generation_id):
                    raise _LeaseFree
                next_takeover = now + self.settings.lease_seconds / 3
            wake = min(deadline, last_heard + policy.heartbeat_seconds, next_takeover)
            await self.storage.wait_for_change(generation_id, timeout=max(0.0, wake - now))

    async def _finish(self, generation: Generation, save: bool | None, *, deadline: float) -> Outcome:
        """Save a completed video when asked (or when an output folder is configured), within the call's deadline
        (at least `DOWNLOAD_MARGIN_SECONDS`): a download that cannot finish by then is reported, not waited for."""
        wants_file = save if save is not None else self.settings.output_dir is not None
        saved: DownloadedVideo | None = None
        save_error: str | None = None
        if wants_file and generation.status is GenerationStatus.COMPLETED and generation.video_url:
            timeout = max(DOWNLOAD_MARGIN_SECONDS, deadline - anyio.current_time())
            try:
                with self._drainable() as scope:
                    saved = await self._save(generation.id, generation.video_url, timeout)
                if scope.cancelled_caught:
                    save_error = "The server shut down before the video was saved; video_url still has it."
            except DownloadError as exc:
                save_error = str(exc)
        return Outcome(generation, saved=saved, save_error=save_error)

    async def _save(self, generation_id: str, url: str, timeout: float) -> DownloadedVideo:
        """Download once: a file the journal already has (and that still exists) is reused."""
        entry = await self._journal(self.storage.get(generation_id))
        if (
            entry is not None
            and entry.local_path is not None
            and entry.file_size is not None
            and await anyio.Path(entry.local_path).is_file()
        ):
            return DownloadedVideo(Path(entry.local_path), entry.file_size, None)
        try:
            saved = await self.client.download(
                url,
                self.settings.videos_dir,
                file_name=safe_video_file_name(generation_id),
                max_bytes=self.settings.max_download_bytes,
                timeout=timeout,
            )
        except DownloadError as exc:
            if exc.timed_out:
                raise DownloadError(
                    f"{exc}; video_url still has it: call get_video_status with save_to_disk=true to save it",
                    timed_out=True,
                ) from exc
            raise
        await self._journal(self.storage.record_download(generation_id, saved.path, saved.size))
        return saved

    async def preview(
        self, *, generation_id: str | None = None, path: Path | None = None, frames: int = 4
    ) -> ContactSheet:
        """A contact sheet of keyframes from a saved file (inside the videos folder) or a completed generation.

        Raises `PreviewUnavailableError` without the preview extra, `PreviewError` for a file that is not a video,
        `InvalidArgumentError` for a path outside the videos folder or a generation with no video, another
        `PixVerseError` when the generation cannot be read or fetched.
        """
        if path is not None:
            return await self._sheet(self._inside_videos_dir(path), frames)
        if generation_id is None:
            raise InvalidArgumentError("give a generation_id or a path")
        entry = await self._journal(self.storage.get(generation_id))
        if entry is not None and entry.local_path and await anyio.Path(entry.local_path).is_file():
            return await self._sheet(Path(entry.local_path), frames)
        generation = await self.client.get(generation_id)
        if generation.status is not GenerationStatus.COMPLETED or not generation.video_url:
            status = generation.status.value
            raise InvalidArgumentError(f"generation {generation_id} has no video yet (status {status})")
        with tempfile.TemporaryDirectory(prefix="pixverse-preview-") as scratch:
            downloaded = await self.client.download(
                generation.video_url,
                Path(scratch),
                file_name=safe_video_file_name(generation_id),
                max_bytes=self.settings.max_download_bytes,
            )
            return await self._sheet(downloaded.path, frames)

    def _inside_videos_dir(self, path: Path) -> Path:
        """Only files in the videos folder may be previewed: an agent must not read arbitrary files on the host."""
        folder = self.settings.videos_dir.expanduser().resolve()
        try:
            resolved = (folder / path).resolve() if not path.is_absolute() else path.resolve()
            inside = resolved.is_relative_to(folder) and resolved.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a NUL in it
            inside = False
        if not inside:
            raise InvalidArgumentError(f"path must name a saved video inside {folder}")
        return resolved

    @staticmethod
    async def _sheet(video: Path, frames: int) -> ContactSheet:
        return await anyio.to_thread.run_sync(lambda: contact_sheet(video, frames=frames))

    async def _journal(self, operation: Awaitable[_T]) -> _T | None:
        """A journal write or read that must not cost the caller its result: logged, never raised."""
        try:
            return await operation
        except StorageError as exc:
            logger.error("%s", exc)
            return None


def _is_dead_here(holder: str) -> bool:
    """Whether a lease holder ("host/pid/random") is a process of this machine that no longer runs."""
    host, _, rest = holder.partition("/")
    pid, _, _ = rest.partition("/")
    if os.name == "nt" or host != socket.gethostname() or not pid.isdigit():
        return False  # (on Windows, os.kill would end the process it asks about)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (perhaps another user's): not ours to judge
    return False


def _reattached(entry: JournalEntry) -> Started:
    return Started(entry.as_generation(), entry.created_at, reattached=True)


def _with_usage(generation: Generation, usage: dict[str, object] | None) -> Generation:
    """`generation`, carrying the known cost when its own response did not."""
    if generation.usage is not None or usage is None:
        return generation
    return generation.model_copy(update={"usage": usage})
