"""The terminal commands (`generate`, `status`, `list`) for a person trying their key: a live progress bar, the file
and URL at the end, and exit codes a script can branch on.

What a script should read goes to stdout (the path and URL, the status line, the table); progress and advice go to
stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import anyio
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pixverse_mcp.app import App, open_app
from pixverse_mcp.client import WaitUpdate
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import GenerationLookupError, MissingAPIKeyError, PixVerseError
from pixverse_mcp.explain import describe_validation_error, request_properties
from pixverse_mcp.logs import configure_logging
from pixverse_mcp.models import GenerationStatus, VideoRequest
from pixverse_mcp.results import journal_video, progress_message, uncertain_create
from pixverse_mcp.service import Outcome, VideoService
from pixverse_mcp.storage import Storage, StorageError

# How many days of spending `list` shows.
SPEND_DAYS = 7


class ExitCode(IntEnum):
    """What each exit status of a terminal command means (listed in the README)."""

    DONE = 0
    """The video is ready (generate: downloaded too)."""
    FAILED = 1
    """The provider ended the generation as failed."""
    INVALID = 2
    """Bad command-line arguments or request: nothing was sent."""
    CONFIGURATION = 3
    """No API key, or a setting is invalid."""
    REFUSED = 4
    """The API refused the request (key, credits, validation, unknown id)."""
    UNAVAILABLE = 5
    """The API could not be reached or answered badly; for a create, it may have been accepted."""
    STILL_RUNNING = 6
    """The wait ended before the video was ready; it goes on: resume with `status ID --wait`."""
    INTERRUPTED = 130
    """Ctrl-C (the generation goes on upstream; its id is printed and journaled)."""


@dataclass
class _Session:
    """What a command learnt before it was interrupted: the id to print on Ctrl-C."""

    generation_id: str | None = None


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one terminal command; returns its exit code."""
    # Ctrl-C must interrupt even when this process started with SIGINT ignored (a shell without job control does
    # that to background jobs, and Python then never raises KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A person at a terminal wants the progress bar and the answer, not the library's INFO lines.
    quiet = settings.log_level == "INFO"
    configure_logging("ERROR" if quiet else settings.log_level, secrets=settings.secrets)
    errors = Console(stderr=True, soft_wrap=True)  # ids and commands must stay on one line, to copy them
    session = _Session()
    if args.command == "generate":
        out = Path(args.out) if args.out else Path.cwd()
        settings = settings.model_copy(update={"output_dir": out.resolve()})
    commands: dict[str, Callable[[App], Awaitable[int]]] = {
        "generate": lambda app: _generate(_service(app, errors), args, session, errors),
        "status": lambda app: _status(_service(app, errors), args, session, errors),
        "list": lambda app: _list(app.storage, args, errors),
    }
    try:
        return anyio.run(_in_app, settings, commands[args.command])
    except _NoKey:
        return ExitCode.CONFIGURATION
    except KeyboardInterrupt:
        if session.generation_id is not None:
            errors.print(
                f"\nInterrupted. Generation {session.generation_id} goes on upstream (and is in the journal).\n"
                f"Resume with: {_resume_command(session.generation_id)}"
            )
        return ExitCode.INTERRUPTED


class _NoKey(Exception):
    """No API key: the message is already printed."""


def _service(app: App, errors: Console) -> VideoService:
    try:
        return app.require_service()
    except MissingAPIKeyError as exc:
        errors.print(str(exc))
        raise _NoKey from exc


async def _in_app(settings: Settings, command: Callable[[App], Awaitable[int]]) -> int:
    async with open_app(settings) as app:
        return await command(app)


async def _generate(service: VideoService, args: argparse.Namespace, session: _Session, errors: Console) -> int:
    try:
        request = VideoRequest(**{name: getattr(args, name) for name in VideoRequest.model_fields})
    except ValidationError as exc:
        errors.print(f"Invalid request: {describe_validation_error(exc, request_properties())}")
        return ExitCode.INVALID
    try:
        started = await service.start(request)
    except PixVerseError as exc:
        errors.print(str(exc))
        return _exit_code_for(exc)
    generation_id = started.generation.id
    session.generation_id = generation_id
    errors.print(f"Started generation {generation_id}")
    if started.journal_error:
        errors.print(f"It could not be journaled ({started.journal_error}): keep this id.")
    outcome = await _wait_with_bar(service, generation_id, args.timeout, errors)
    return _report(outcome, errors) if isinstance(outcome, Outcome) else outcome


async def _status(service: VideoService, args: argparse.Namespace, session: _Session, errors: Console) -> int:
    session.generation_id = args.generation_id
    if args.wait > 0:
        outcome = await _wait_with_bar(service, args.generation_id, args.wait, errors, save=False)
    else:
        try:
            outcome = await service.status(args.generation_id)
        except GenerationLookupError as exc:
            errors.print(str(exc))
            return _exit_code_for(exc)
    return _report(outcome, errors) if isinstance(outcome, Outcome) else outcome


async def _wait_with_bar(
    service: VideoService, generation_id: str, timeout: float, errors: Console, *, save: bool = True
) -> Outcome | int:
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task("waiting for the first status", total=None)

        async def on_update(update: WaitUpdate) -> None:
            message = progress_message(update.status, update.elapsed_seconds, update.expected_seconds)
            total = max(update.expected_seconds, update.elapsed_seconds)
            progress.update(task, description=message, total=total, completed=update.elapsed_seconds)

        try:
            return await service.status(generation_id, wait_seconds=timeout, save=save, on_update=on_update)
        except GenerationLookupError as exc:
            errors.print(str(exc))
            return _exit_code_for(exc)


def _resume_command(generation_id: str) -> str:
    """The command that picks a running generation up again."""
    return f"pixverse-mcp status '{generation_id}' --wait 120"


def _report(outcome: Outcome, errors: Console) -> int:
    generation = outcome.generation
    if generation.status is GenerationStatus.COMPLETED:
        if outcome.saved is not None:
            print(outcome.saved.path)
        elif outcome.save_error:
            errors.print(f"Could not save the video: {outcome.save_error}")
        print(generation.video_url)
        if generation.usage:
            errors.print(f"Usage: {generation.usage}")
        return ExitCode.DONE
    if generation.status is GenerationStatus.FAILED:
        errors.print(f"Generation {generation.id} failed: {generation.error}")
        return ExitCode.FAILED
    print(f"{generation.id} {generation.status.value}")
    errors.print(f"Still running. Resume with: {_resume_command(generation.id)}")
    return ExitCode.STILL_RUNNING


async def _list(storage: Storage, args: argparse.Namespace, errors: Console) -> int:
    """A table on a terminal; one tab-separated line per generation for a script (created, status, id, video,
    prompt: the prompt last, as the one field that may contain spaces). Creates without an answer are listed as
    `outcome_unknown` (no id); the spend per UTC day follows (on stderr for a script)."""
    try:
        videos = [journal_video(entry) for entry in await storage.recent(limit=args.limit)]
        uncertain = [uncertain_create(create) for create in await storage.pending_creates(limit=args.limit)]
        spend = await storage.daily_spend(days=SPEND_DAYS)
    except StorageError as exc:
        errors.print(str(exc))
        return ExitCode.CONFIGURATION
    rows = [
        (video.created_at, video.status.value, video.generation_id, video.local_path or video.video_url, video.prompt)
        for video in videos
    ] + [(create.created_at, create.state, None, None, create.prompt) for create in uncertain]
    rows.sort(key=lambda row: row[0], reverse=True)
    if not sys.stdout.isatty():
        for created, status, generation_id, where, prompt in rows:
            fields = [created, status, generation_id, where]
            print("\t".join([*(field or "-" for field in fields), " ".join((prompt or "").split())]))
        for day, dollars, count in spend:
            errors.print(f"spent {day}: ${dollars:.2f} ({count} videos)")
        return ExitCode.DONE
    table = Table("created (UTC)", "status", "prompt")
    # Ids and paths are for copying: fold them onto more lines rather than cut them short.
    table.add_column("generation id", overflow="fold")
    table.add_column("video", overflow="fold")
    for created, status, generation_id, where, prompt in rows:
        table.add_row(created, status, (prompt or "")[:40], generation_id or "-", where or "")
    console = Console()
    console.print(table)
    if any(create.state == "outcome_unknown" for create in uncertain):
        console.print(
            "outcome_unknown: a create was sent and no answer came back; it may have been charged. Check "
            "https://aimlapi.com/app/billing before creating it again."
        )
    if spend:
        spent = Table("day (UTC)", "spent", "videos", title="Spend per day")
        for day, dollars, count in spend:
            spent.add_row(day, f"${dollars:.2f}", str(count))
        console.print(spent)
    return ExitCode.DONE


def _exit_code_for(error: PixVerseError) -> int:
    if isinstance(error, MissingAPIKeyError):
        return ExitCode.CONFIGURATION
    return ExitCode.UNAVAILABLE if error.transient else ExitCode.REFUSED
