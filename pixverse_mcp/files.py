"""Videos on this machine: saving a finished one into the videos folder (once), its keyframe preview, and the one rule
for which files an agent may name (`inside`).

A file is saved under a name we make (time plus a digest of the id, never one taken from the URL or the prompt),
whole or not at all (a hidden `.partial` file renamed into place; leftovers of a crash are removed at the next start).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread

from pixverse_mcp._http import DownloadedVideo
from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.errors import DownloadError, InvalidArgumentError
from pixverse_mcp.models import GenerationStatus
from pixverse_mcp.preview import ContactSheet, contact_sheet
from pixverse_mcp.storage import JournalEntry, Storage, StorageError

logger = logging.getLogger(__name__)

# A call that must still save its video gets at least this long for it, past its budget if need be (the README's
# "budget plus a small margin").
DOWNLOAD_MARGIN_SECONDS: Final = 2.0
# A `.partial` file older than this has no live download behind it.
_LEFTOVER_SECONDS: Final = 600.0


class VideoFiles:
    """The videos folder of one server: what is saved there, and what may be read from it."""

    def __init__(self, client: PixVerseClient, storage: Storage, *, folder: Path, max_bytes: int) -> None:
        self.client = client
        self.storage = storage
        self.folder = folder
        self.max_bytes = max_bytes

    async def save(self, generation_id: str, url: str, *, timeout: float) -> DownloadedVideo:
        """Download a finished video once: a file the journal already has (and that still exists) is reused.

        Raises `DownloadError` (the message says how to save it later when only the time ran out).
        """
        entry = await self._journal_entry(generation_id)
        saved_before = entry is not None and entry.local_path and entry.file_size is not None
        if saved_before and entry is not None and await anyio.Path(entry.local_path or "").is_file():
            return DownloadedVideo(Path(entry.local_path or ""), entry.file_size or 0, None)
        try:
            saved = await self.client.download(
                url,
                self.folder,
                file_name=video_file_name(generation_id),
                max_bytes=self.max_bytes,
                timeout=timeout,
            )
        except DownloadError as exc:
            if exc.timed_out:
                raise DownloadError(
                    f"{exc}; video_url still has it: call get_video_status with save_to_disk=true to save it",
                    timed_out=True,
                ) from exc
            raise
        try:
            await self.storage.record_download(generation_id, saved.path, saved.size)
        except StorageError as exc:
            logger.error("%s", exc)
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
            return await _sheet(self.inside(path, what="a saved video"), frames)
        if generation_id is None:
            raise InvalidArgumentError("give a generation_id or a path")
        entry = await self._journal_entry(generation_id)
        if entry is not None and entry.local_path and await anyio.Path(entry.local_path).is_file():
            return await _sheet(Path(entry.local_path), frames)
        generation = await self.client.get(generation_id)
        if generation.status is not GenerationStatus.COMPLETED or not generation.video_url:
            status = generation.status.value
            raise InvalidArgumentError(f"generation {generation_id} has no video yet (status {status})")
        with tempfile.TemporaryDirectory(prefix="pixverse-preview-") as scratch:
            downloaded = await self.client.download(
                generation.video_url,
                Path(scratch),
                file_name=video_file_name(generation_id),
                max_bytes=self.max_bytes,
            )
            return await _sheet(downloaded.path, frames)

    def inside(self, path: Path, *, what: str) -> Path:
        """`path` (relative to the videos folder, or absolute) as a file inside it; an agent must not make the
        server read arbitrary files on the host."""
        return inside_folders(path, [self.folder], what=what)

    async def _journal_entry(self, generation_id: str) -> JournalEntry | None:
        try:
            return await self.storage.get(generation_id)
        except StorageError as exc:
            logger.error("%s", exc)
            return None


def inside_folders(path: Path, folders: Sequence[Path], *, what: str) -> Path:
    """`path` resolved (symbolic links followed) as an existing file inside one of `folders`, or an
    `InvalidArgumentError` naming them. A relative path is taken relative to the first folder."""
    allowed = [folder.expanduser().resolve() for folder in folders]
    try:
        candidate = path.expanduser()
        resolved = candidate.resolve() if candidate.is_absolute() or not allowed else (allowed[0] / candidate).resolve()
        inside = any(resolved.is_relative_to(folder) for folder in allowed) and resolved.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL in it
        inside = False
    if not inside:
        where = ", ".join(str(folder) for folder in allowed) or "no folder (none is allowed)"
        raise InvalidArgumentError(f"path must name {what}: an existing file inside {where}")
    return resolved


def video_file_name(generation_id: str, *, when: datetime | None = None) -> str:
    """A file name we generate (never one taken from the URL or the prompt): time plus a digest of the id."""
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(generation_id.encode()).hexdigest()[:12]
    return f"pixverse-{stamp}-{digest}.mp4"


def remove_leftover_downloads(directory: Path, *, older_than_seconds: float = _LEFTOVER_SECONDS) -> int:
    """Delete the hidden `.partial` files of downloads that never finished (a crash, a kill) in `directory`.

    Only ours (the names `_http` gives them) and only old ones: another process may be downloading now.
    """
    removed = 0
    cutoff = time.time() - older_than_seconds
    try:
        leftovers = list(directory.glob(".pixverse-*.partial"))
    except OSError:
        return 0
    for leftover in leftovers:
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except OSError:
            continue
    return removed


async def _sheet(video: Path, frames: int) -> ContactSheet:
    return await anyio.to_thread.run_sync(lambda: contact_sheet(video, frames=frames))
