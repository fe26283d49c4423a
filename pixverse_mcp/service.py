"""What a video request goes through, whoever makes it (an MCP tool or the command line): start or re-attach,
journal, wait, save. The MCP server and the CLI are thin front ends over `VideoService`.
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from pixverse_mcp.client import DownloadedVideo, PixVerseClient, WaitUpdate, safe_video_file_name
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import (
    DownloadError,
    GenerationFailedError,
    GenerationLookupError,
    InvalidArgumentError,
    PixVerseError,
    WaitTimeoutError,
)
from pixverse_mcp.journal import Journal, JournalEntry, request_key
from pixverse_mcp.models import Generation, GenerationStatus, VideoRequest
from pixverse_mcp.preview import ContactSheet, contact_sheet

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
ProgressCallback = Callable[[WaitUpdate], Awaitable[None]]
"""What the front ends give a wait: a coroutine that hears every update (progress bars, MCP notifications)."""


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


class VideoService:
    """Start, re-attach, wait for and save generations, journaling every id before anyone else sees it."""

    def __init__(self, client: PixVerseClient, journal: Journal, settings: Settings) -> None:
        self.client = client
        self.journal = journal
        self.settings = settings
        self._create_locks: dict[str, anyio.Lock] = {}
        self._waits: set[anyio.CancelScope] = set()
        self._draining = False

    def drain(self) -> None:
        """End every wait now with its current state (for a graceful shutdown); later waits return at once.

        Each interrupted call still answers normally, with its generation id and how to continue.
        """
        self._draining = True
        for scope in self._waits:
            scope.cancel()

    def expected_seconds(self, request: dict[str, object] | None) -> float:
        """The usual generation time for a journaled request body (the default when unknown)."""
        resolution = request.get("resolution", "720p") if request else None
        duration = request.get("duration", 5) if request else None
        policy = self.client.polling_policy
        if isinstance(resolution, str) and isinstance(duration, int):
            return policy.expected_seconds(resolution, duration)
        return policy.expected_seconds()

    async def start(self, request: VideoRequest) -> Generation:
        """Create a new generation and journal it before returning. Raises `PixVerseError` if it was not created."""
        generation = await self.client.create(request)
        await self._journal(self.journal.record_created(generation, request, key=self._key(request)))
        return generation

    def _key(self, request: VideoRequest) -> str:
        return request_key(request, self.settings.base_url)

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
        key = self._key(request)
        lock = self._create_locks.setdefault(key, anyio.Lock())
        try:
            async with lock:  # two identical calls at once: the second re-attaches to the first's generation
                existing = None if force_new else await self._in_flight(key)
                generation = existing.as_generation() if existing else await self.start(request)
        finally:
            if not lock.statistics().tasks_waiting:
                self._create_locks.pop(key, None)
        if existing is not None:
            logger.info("re-attaching to in-flight generation %s instead of creating a new one", generation.id)
        expected = self.client.polling_policy.expected_seconds(request.resolution, request.duration)
        elapsed_before = time.time() - existing.created_at if existing else 0.0
        outcome = await self._wait(generation, timeout, expected, elapsed_before, save, on_update)
        return replace(outcome, reattached=existing is not None)

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
        entry = await self._journal(self.journal.get(generation_id))
        if wait_seconds <= 0:
            try:
                generation = await self.client.get(generation_id)
            except PixVerseError as exc:
                raise GenerationLookupError.from_error(exc, generation_id=generation_id) from exc
            await self._journal(self.journal.record_status(generation))
            generation = _with_usage(generation, entry.usage if entry else None)
            return await self._finish(generation, save, elapsed=None, remaining=None)
        known = entry.as_generation() if entry else Generation(id=generation_id, status=GenerationStatus.UNKNOWN)
        expected = self.expected_seconds(entry.request if entry else None)
        elapsed_before = time.time() - entry.created_at if entry and entry.request else 0.0
        return await self._wait(known, wait_seconds, expected, elapsed_before, save, on_update)

    async def _wait(
        self,
        generation: Generation,
        timeout: float,
        expected: float,
        elapsed_before: float,
        save: bool | None,
        on_update: ProgressCallback | None,
    ) -> Outcome:
        latest = generation

        async def journal_and_forward(update: WaitUpdate) -> None:
            nonlocal latest
            if update.generation is not None:
                latest = _with_usage(update.generation, generation.usage)
            if update.status_changed and update.generation is not None:
                await self._journal(self.journal.record_status(update.generation))
            if on_update is not None:
                await on_update(update)

        def still_running() -> Outcome:
            elapsed = anyio.current_time() - started
            remaining = expected - elapsed_before - elapsed
            return Outcome(latest, elapsed_seconds=elapsed, remaining_seconds=remaining if remaining > 0 else None)

        started = anyio.current_time()
        scope = anyio.CancelScope()
        if self._draining:
            scope.cancel()
        self._waits.add(scope)
        try:
            with scope:
                final = await self.client.wait(
                    generation.id,
                    timeout=timeout,
                    on_update=journal_and_forward,
                    expected_seconds=expected,
                    elapsed_before=elapsed_before,
                )
            if scope.cancelled_caught:
                logger.info("wait for generation %s ended early: the server is shutting down", generation.id)
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
            logger.warning("wait for generation %s cancelled; it goes on upstream and is in the journal", generation.id)
            raise
        finally:
            self._waits.discard(scope)
        final = _with_usage(final, generation.usage)
        return await self._finish(final, save, elapsed=anyio.current_time() - started, remaining=None)

    async def _finish(
        self, generation: Generation, save: bool | None, *, elapsed: float | None, remaining: float | None
    ) -> Outcome:
        """Save a completed video when asked (or when an output folder is configured)."""
        wants_file = save if save is not None else self.settings.output_dir is not None
        saved: DownloadedVideo | None = None
        save_error: str | None = None
        if wants_file and generation.status is GenerationStatus.COMPLETED and generation.video_url:
            try:
                saved = await self._save(generation.id, generation.video_url)
            except DownloadError as exc:
                save_error = str(exc)
        return Outcome(generation, elapsed, remaining, saved=saved, save_error=save_error)

    async def _save(self, generation_id: str, url: str) -> DownloadedVideo:
        """Download once: a file the journal already has (and that still exists) is reused."""
        entry = await self._journal(self.journal.get(generation_id))
        if (
            entry is not None
            and entry.local_path is not None
            and entry.file_size is not None
            and await anyio.Path(entry.local_path).is_file()
        ):
            return DownloadedVideo(Path(entry.local_path), entry.file_size, None)
        saved = await self.client.download(
            url,
            self.settings.videos_dir,
            file_name=safe_video_file_name(generation_id),
            max_bytes=self.settings.max_download_bytes,
        )
        await self._journal(self.journal.record_download(generation_id, saved.path, saved.size))
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
        entry = await self._journal(self.journal.get(generation_id))
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
        resolved = (folder / path).resolve() if not path.is_absolute() else path.resolve()
        if not resolved.is_relative_to(folder) or not resolved.is_file():
            raise InvalidArgumentError(f"path must name a saved video inside {folder}")
        return resolved

    @staticmethod
    async def _sheet(video: Path, frames: int) -> ContactSheet:
        return await anyio.to_thread.run_sync(lambda: contact_sheet(video, frames=frames))

    async def _in_flight(self, key: str) -> JournalEntry | None:
        window = self.settings.reattach_window_seconds
        if window <= 0:
            return None
        return await self._journal(self.journal.find_in_flight(key, newer_than=time.time() - window))

    async def _journal(self, operation: Awaitable[_T]) -> _T | None:
        """Run a journal operation; a broken journal is logged, never allowed to lose the caller's result."""
        try:
            return await operation
        except (sqlite3.Error, OSError) as exc:
            logger.error("journal unavailable (%s): generation ids are only in tool results and logs", exc)
            return None


def _with_usage(generation: Generation, usage: dict[str, object] | None) -> Generation:
    """`generation`, carrying the known cost when its own response did not."""
    if generation.usage is not None or usage is None:
        return generation
    return generation.model_copy(update={"usage": usage})
