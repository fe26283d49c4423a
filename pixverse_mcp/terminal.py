"""The terminal commands (`generate`, `lip-sync`, `status`, `download`, `list`, `balance`) for a person trying their
key: a live progress bar, the file and URL at the end, and exit codes a script can branch on.

What a script should read goes to stdout (the path and URL, the status line, the listing, the spend); progress and
advice go to stderr. Every promise printed here is kept: the folder a video goes to is checked before anything is
paid, a resume hint is the exact command to run (same flags, the name the user typed), and "done" means saved.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TypeVar

import anyio
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pixverse_mcp.app import App, open_app
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import MissingAPIKeyError, PixVerseError
from pixverse_mcp.explain import describe_validation_error, request_properties
from pixverse_mcp.logs import configure_logging
from pixverse_mcp.models import AnyRequest, GenerationStatus, LipSyncRequest, VideoRequest
from pixverse_mcp.money import SPEND_DAYS
from pixverse_mcp.service import Finished, Outcome, VideoService, WaitEvent
from pixverse_mcp.storage import StorageError
from pixverse_mcp.views import dollars, journal_video, progress_message, uncertain_create

_R = TypeVar("_R", VideoRequest, LipSyncRequest)


class ExitCode(IntEnum):
    """What each exit status of a terminal command means (listed in the README)."""

    DONE = 0
    """The video is ready (and saved, where the command saves)."""
    FAILED = 1
    """The provider ended the generation as failed."""
    INVALID = 2
    """Bad command-line arguments or request: nothing was sent."""
    CONFIGURATION = 3
    """No API key, or a setting is invalid, or the journal cannot be used."""
    REFUSED = 4
    """The API refused the request (key, credits, validation, unknown id, the spending cap)."""
    UNAVAILABLE = 5
    """The API could not be reached or answered badly; for a create, it may have been accepted (and is settled)."""
    STILL_RUNNING = 6
    """The wait ended before the video was ready; it goes on: resume with `status ID --wait`."""
    INTERRUPTED = 130
    """Ctrl-C (the generation goes on upstream; its id is printed and journaled)."""


@dataclass
class _Session:
    """What a command learnt before it was interrupted: the id to print on Ctrl-C, and how to resume."""

    resume: Callable[[str], str]
    generation_id: str | None = None


class _Stop(Exception):
    """The command ends with this exit code (its message is already printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one terminal command; returns its exit code."""
    # Ctrl-C must interrupt even when this process started with SIGINT ignored (a shell without job control does
    # that to background jobs, and Python then never raises KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A person at a terminal wants the progress bar and the answer, not the library's INFO lines.
    quiet = settings.log_level == "INFO"
    configure_logging("ERROR" if quiet else settings.log_level, secrets=settings.secrets)
    errors = Console(stderr=True, soft_wrap=True)  # ids and commands must stay on one line, to copy them
    program = getattr(args, "program", "aimlapi-pixverse-mcp")
    session = _Session(
        resume=lambda generation_id: resume_command(generation_id, program=program, sandbox=args.sandbox)
    )
    try:
        settings = _with_output_folder(settings, args, errors)
        _check_waits(args, settings, errors)
    except _Stop as stop:
        return stop.code
    commands: dict[str, Callable[[App], Awaitable[int]]] = {
        "generate": lambda app: _generate(_service(app, errors), _video_request(args, errors), args, session, errors),
        "lip-sync": lambda app: _generate(
            _service(app, errors), _lip_sync_request(args, errors), args, session, errors
        ),
        "status": lambda app: _status(_service(app, errors), args, session, errors),
        "download": lambda app: _download(_service(app, errors), args, errors),
        "list": lambda app: _list(app, args, errors),
        "balance": lambda app: _balance(_service(app, errors), errors),
    }
    try:
        return anyio.run(_in_app, settings, commands[args.command])
    except _Stop as stop:
        return stop.code
    except KeyboardInterrupt:
        if session.generation_id is not None:
            errors.print(
                f"\nInterrupted. Generation {session.generation_id} goes on upstream (and is in the journal).\n"
                f"Resume with: {session.resume(session.generation_id)}"
            )
        return ExitCode.INTERRUPTED


async def _in_app(settings: Settings, command: Callable[[App], Awaitable[int]]) -> int:
    async with open_app(settings) as app:
        try:
            return await command(app)
        except _Stop as stop:  # caught here, inside the app: out of its task group it would be a group
            return stop.code


def _service(app: App, errors: Console) -> VideoService:
    try:
        return app.require_service()
    except MissingAPIKeyError as exc:
        errors.print(str(exc))
        raise _Stop(ExitCode.CONFIGURATION) from exc


def _with_output_folder(settings: Settings, args: argparse.Namespace, errors: Console) -> Settings:
    """The settings with the folder this command saves into, checked (created, a folder, writable) before anything
    is paid for. `--out` wins; else the videos folder (the sandbox's own under `--sandbox`)."""
    if args.command not in ("generate", "lip-sync", "status", "download"):
        return settings
    out = Path(args.out).expanduser() if getattr(args, "out", None) else settings.videos_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
        writable = out.is_dir() and os.access(out, os.W_OK)
    except OSError as exc:
        errors.print(f"Cannot use {out} for the video: {exc.strerror or exc}. Nothing was sent.")
        raise _Stop(ExitCode.INVALID) from exc
    if not writable:
        errors.print(f"Cannot write the video into {out}: it is not a writable folder. Nothing was sent.")
        raise _Stop(ExitCode.INVALID)
    if args.sandbox and not getattr(args, "out", None):
        errors.print(f"pixverse-mcp: sandbox videos go to {out} (kept apart from real ones)")
    return settings.model_copy(update={"output_dir": out.resolve(), "save": True})


def _check_waits(args: argparse.Namespace, settings: Settings, errors: Console) -> None:
    """`--timeout` and `--wait` within the same bounds as the tools' `timeout_seconds` and `wait_seconds`."""
    for name, low in (("timeout", 1.0), ("wait", 0.0)):
        value = getattr(args, name, None)
        if value is None:
            continue
        if not (math.isfinite(value) and low <= value <= settings.max_wait_seconds):
            errors.print(
                f"--{name} must be a number of seconds from {low:g} to {settings.max_wait_seconds:g}. Nothing was sent."
            )
            raise _Stop(ExitCode.INVALID)


def _video_request(args: argparse.Namespace, errors: Console) -> VideoRequest:
    values = {name: getattr(args, name) for name in VideoRequest.model_fields if getattr(args, name) is not None}
    return _validated(lambda: VideoRequest(**values), errors)


def _lip_sync_request(args: argparse.Namespace, errors: Console) -> LipSyncRequest:
    values = {"video": args.video, "audio": args.audio, "lip_sync_text": args.text, "lip_sync_voice": args.voice}
    return _validated(lambda: LipSyncRequest(**{k: v for k, v in values.items() if v is not None}), errors)


def _validated(build: Callable[[], _R], errors: Console) -> _R:
    try:
        return build()
    except ValidationError as exc:
        errors.print(f"Invalid request: {describe_validation_error(exc, request_properties())}")
        raise _Stop(ExitCode.INVALID) from exc


async def _generate(
    service: VideoService, request: AnyRequest, args: argparse.Namespace, session: _Session, errors: Console
) -> int:
    try:
        prepared = await service.prepare(request, folders=_named_folders(request))
        started = await service.start(prepared, timeout=args.timeout)
    except PixVerseError as exc:
        errors.print(str(exc))
        return exit_code_for(exc)
    session.generation_id = started.generation.id
    errors.print(f"Started generation {started.generation.id}" + (" (re-attached)" if started.reattached else ""))
    if started.journal_error:
        errors.print(f"{started.journal_error}. Keep this id meanwhile.")
    return await _wait_and_report(service.wait(started, timeout=args.timeout), session, errors)


async def _status(service: VideoService, args: argparse.Namespace, session: _Session, errors: Console) -> int:
    session.generation_id = args.generation_id
    if args.wait > 0:
        return await _wait_and_report(service.wait_for(args.generation_id, timeout=args.wait), session, errors)
    try:
        outcome = await service.status(args.generation_id)
    except PixVerseError as exc:
        errors.print(str(exc))
        return exit_code_for(exc)
    return _report(outcome, session, errors)


async def _download(service: VideoService, args: argparse.Namespace, errors: Console) -> int:
    try:
        outcome = await service.status(args.generation_id, save=True)
    except PixVerseError as exc:
        errors.print(str(exc))
        return exit_code_for(exc)
    if outcome.saved is None:
        reason = outcome.save_error or f"generation {args.generation_id} is {outcome.generation.status.value}"
        errors.print(f"Not downloaded: {reason}")
        return ExitCode.STILL_RUNNING if not outcome.generation.status.is_final else ExitCode.FAILED
    print(outcome.saved.path)
    return ExitCode.DONE


async def _wait_and_report(events: AsyncGenerator[WaitEvent, None], session: _Session, errors: Console) -> int:
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    outcome: Outcome | None = None
    with Progress(*columns, console=errors, transient=True) as progress:
        bar = progress.add_task("waiting for the first status", total=None)
        try:
            async with aclosing(events):
                async for event in events:
                    if isinstance(event, Finished):
                        outcome = event.outcome
                        continue
                    message = progress_message(event.status, event.elapsed_seconds, event.expected_seconds)
                    total = max(event.expected_seconds, event.elapsed_seconds)
                    progress.update(bar, description=message, total=total, completed=event.elapsed_seconds)
        except PixVerseError as exc:
            errors.print(str(exc))
            return exit_code_for(exc)
    assert outcome is not None
    return _report(outcome, session, errors)


def _report(outcome: Outcome, session: _Session, errors: Console) -> int:
    generation = outcome.generation
    if generation.status is GenerationStatus.COMPLETED:
        if outcome.saved is not None:
            print(outcome.saved.path)
        print(generation.video_url)
        if generation.cost_usd is not None:
            errors.print(f"Cost: {dollars(generation.cost_usd)}")
        if outcome.saved is None and outcome.save_error:
            errors.print(f"Could not save the video: {outcome.save_error}")
            return ExitCode.UNAVAILABLE  # "done" means saved: it is not
        return ExitCode.DONE
    if generation.status is GenerationStatus.FAILED:
        errors.print(f"Generation {generation.id} failed: {generation.error}")
        return ExitCode.FAILED
    print(f"{generation.id} {generation.status.value}")
    errors.print(f"Still running. Resume with: {session.resume(generation.id)}")
    return ExitCode.STILL_RUNNING


async def _list(app: App, args: argparse.Namespace, errors: Console) -> int:
    """A table on a terminal; one tab-separated line per generation for a script (created, status, id, video,
    model, prompt: the prompt last, as the one field that may contain spaces). Creates without an answer are listed
    with their state (`settling`, `never_received`; no id). The spend per UTC day follows, on stdout too: a table on
    a terminal, lines starting with `#` for a script."""
    storage = app.storage
    try:
        videos = [journal_video(entry) for entry in await storage.recent(limit=args.limit)]
        uncertain = [uncertain_create(create) for create in await storage.pending_creates(limit=args.limit)]
        spend = await storage.daily_spend(days=SPEND_DAYS)
    except StorageError as exc:
        errors.print(str(exc))
        return ExitCode.CONFIGURATION
    rows = [
        (
            video.created_at,
            video.status.value,
            video.generation_id,
            video.local_path or video.video_url,
            _short_model(video.model),
            video.prompt,
        )
        for video in videos
    ] + [(create.created_at, create.state, None, None, None, create.prompt) for create in uncertain]
    rows = sorted(rows, key=lambda row: row[0], reverse=True)[: args.limit]
    if not sys.stdout.isatty():
        for created, status, generation_id, where, model, prompt in rows:
            fields = [created, status, generation_id, where, model]
            print("\t".join([*(field or "-" for field in fields), " ".join((prompt or "").split())]))
        for day, spent, count in spend:
            print(f"# spent {day}: {dollars(spent)} ({count} videos)")
        return ExitCode.DONE
    table = Table("created (UTC)", "status", "model", "prompt")
    # Ids and paths are for copying: fold them onto more lines rather than cut them short.
    table.add_column("generation id", overflow="fold")
    table.add_column("video", overflow="fold")
    for created, status, generation_id, where, model, prompt in rows:
        table.add_row(created, status, model or "", (prompt or "")[:40], generation_id or "-", where or "")
    console = Console()
    console.print(table)
    if any(create.state == "settling" for create in uncertain):
        console.print(
            "settling: a create lost its answer; the provider's request log is being searched for it. The same "
            "command again re-attaches to it if the provider received it, or creates it if not."
        )
    if spend:
        spent_table = Table("day (UTC)", "spent", "videos", title="Spend per day")
        for day, spent, count in spend:
            spent_table.add_row(day, dollars(spent), str(count))
        console.print(spent_table)
    return ExitCode.DONE


async def _balance(service: VideoService, errors: Console) -> int:
    account = await service.spending.account()
    if account.balance_usd is None:
        errors.print("The balance could not be read from the AI/ML API (see https://aimlapi.com/app/billing).")
    else:
        print(f"balance: {dollars(account.balance_usd)}")
    print(f"spent today (UTC): {dollars(account.spent_today_usd)}")
    if account.budget_usd is not None:
        print(f"daily cap: {dollars(account.budget_usd)} ({dollars(account.budget_left_usd or 0)} left)")
    for day, spent, count in account.spend_by_day:
        print(f"# spent {day}: {dollars(spent)} ({count} videos)")
    return ExitCode.DONE if account.balance_usd is not None else ExitCode.UNAVAILABLE


def resume_command(generation_id: str, *, program: str, sandbox: bool) -> str:
    """The exact command that picks a running generation up again, as this user ran this one (`program`)."""
    flags = " --sandbox" if sandbox else ""
    return f"{program} status '{generation_id}' --wait 120{flags}"


def _short_model(model: str | None) -> str | None:
    """`v5.5/image-to-video` for `pixverse/v5.5/image-to-video`: the family is implied."""
    return model.removeprefix("pixverse/") if model else None


def exit_code_for(error: PixVerseError) -> int:
    """The exit code for an error of a command."""
    if isinstance(error, MissingAPIKeyError | StorageError):
        return ExitCode.CONFIGURATION
    return ExitCode.UNAVAILABLE if error.transient else ExitCode.REFUSED


def _named_folders(request: AnyRequest) -> list[Path]:
    """A person names files on their own machine: the folders of the files they name are theirs to read."""
    named = [getattr(request, field, None) for field in ("image", "last_frame", "video", "audio")]
    local = [item for item in named if isinstance(item, str) and not item.startswith(("https://", "http://", "data:"))]
    return [Path(item).expanduser().resolve().parent for item in local]
