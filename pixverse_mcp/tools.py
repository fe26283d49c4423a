"""The MCP tools, as plain functions: what each does for an agent, over the app's `VideoService`.

`server.build_server` registers them (with their titles and hints, in `TOOLS`); `arguments.bind_settings` fills in
what their published descriptions say about the settings. A parameter annotated with a request model (`video:
VideoRequest`, `request: LipSyncRequest`) stands for that model's fields, published flat and validated into one
request before the body runs. Waits are streams of events the tools pull (`service.wait`): progress goes down to
the client as it comes, the outcome is the last event.
"""

# No `from __future__ import annotations`: the SDK evaluates these signatures at registration.

import logging
from contextlib import aclosing
from pathlib import Path
from typing import Annotated, Any, Final, NamedTuple

import anyio
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from pydantic import Field

from pixverse_mcp.app import App
from pixverse_mcp.arguments import (
    GenerationIdArg,
    ListLimitArg,
    SaveToDiskArg,
    StatusFilterArg,
    TimeoutSecondsArg,
    WaitSecondsArg,
)
from pixverse_mcp.client import WaitUpdate
from pixverse_mcp.confirm import (
    BEFORE_CREATE_SHARE,
    Confirmation,
    NotAsked,
    Roots,
    Unanswered,
    asking_seconds,
    bound_to,
    decision_of,
    roots_now,
    said_yes,
)
from pixverse_mcp.errors import InvalidArgumentError, PixVerseError, SpendingCapError
from pixverse_mcp.models import MAX_GENERATION_ID_LENGTH, AnyRequest, GenerationStatus, LipSyncRequest, VideoRequest
from pixverse_mcp.preview import INSTALL_HINT, MAX_FRAMES, preview_available
from pixverse_mcp.results import (
    DECLINED,
    AccountResult,
    Money,
    PreviewResult,
    VideoList,
    VideoResult,
    account_result,
    list_result,
    not_created_result,
    outcome_result,
    preview_image,
    preview_result,
    problem_result,
    refusal_result,
)
from pixverse_mcp.service import Finished, Outcome, Started, VideoService
from pixverse_mcp.storage import StorageError
from pixverse_mcp.tasks import task_slot
from pixverse_mcp.views import progress_message

logger = logging.getLogger(__name__)

VideoToolResult = Annotated[CallToolResult, VideoResult]
ListToolResult = Annotated[CallToolResult, VideoList]
PreviewToolResult = Annotated[CallToolResult, PreviewResult]
AccountToolResult = Annotated[CallToolResult, AccountResult]
AppContext = Context[App, Any]
# The player asks for news this often at most: long enough to cost the API nothing extra, short enough to look alive.
PLAYER_WAIT_SECONDS: Final = 5.0
# A create gets at least this long, whatever came before it (the least `timeout_seconds` a call may give).
_LEAST_CREATE_SECONDS: Final = 1.0
# A result quotes the balance only if the provider tells it this fast (cached a minute): the call's budget is spent.
_BALANCE_IN_RESULT_SECONDS: Final = 1.0

ForceNewArg = Annotated[
    bool,
    Field(
        strict=True,
        description="Start a new generation even if an identical one is still running from an earlier call, or an "
        "identical create is being settled (by default such a call re-attaches to it, or waits for the settling, "
        "so a retry is not paid twice).",
    ),
]
PreviewArg = Annotated[
    bool,
    Field(
        strict=True,
        description="When the video is done, also return a small contact sheet of keyframes (PNG) to check it "
        "against the prompt. Needs the aimlapi-pixverse-mcp[preview] extra.",
    ),
]


async def create_video(
    ctx: AppContext, confirmation: Confirmation, roots: Roots, video: VideoRequest
) -> VideoToolResult:
    """Start generating a video and return its generation_id at once (it does not wait).

    Use this to start several videos in parallel or to do other work meanwhile; then call get_video_status
    with the generation_id (with wait_seconds to wait there). A video takes about 30-40 s at 720p, about 75 s
    at 1080p. Give image to animate a picture (its first frame), and last_frame too for a transition. Each call
    starts a new, paid generation: do not call it again to "retry" a video whose generation_id you already have.
    """
    app = _app(ctx)
    begun = await _begin(ctx, confirmation, roots, video, force_new=True)
    if isinstance(begun, CallToolResult):
        return begun
    service, started = begun
    expected = (await service.expectations.of(started.request)).typical
    outcome = Outcome(
        started.generation,
        remaining_seconds=expected,
        reattached=started.reattached,
        journal_error=started.journal_error,
        prompt=video.prompt,
        model=video.model,
    )
    return await _report(app, outcome)


async def generate_video_blocking(
    ctx: AppContext,
    confirmation: Confirmation,
    roots: Roots,
    video: VideoRequest,
    timeout_seconds: TimeoutSecondsArg = None,
    save_to_disk: SaveToDiskArg = None,
    force_new: ForceNewArg = False,
    preview: PreviewArg = False,
) -> VideoToolResult:
    """Generate a video and wait for it: returns video_url when done, with progress while it runs.

    A video takes about 30-40 s at 720p, about 75 s at 1080p. Give image to animate a picture (its first frame),
    and last_frame too for a transition; model_version "v5.5" adds 10 s clips and sound. If the video is not
    ready within timeout_seconds the call still succeeds, with done=false and the generation_id: continue with
    get_video_status(generation_id, wait_seconds=...). Calling it again with the same arguments while that video
    is still running re-attaches to it instead of paying for another.
    """
    return await _make_and_wait(
        ctx, confirmation, roots, video, timeout_seconds, save_to_disk, force_new=force_new, preview=preview
    )


async def lip_sync_video(
    ctx: AppContext,
    confirmation: Confirmation,
    roots: Roots,
    request: LipSyncRequest,
    timeout_seconds: TimeoutSecondsArg = None,
    save_to_disk: SaveToDiskArg = None,
    force_new: ForceNewArg = False,
) -> VideoToolResult:
    """Make a character in a video speak: lip-sync the video to a sound, or to words in a chosen voice, and wait.

    video is a generation_id from this server (a video made here), an https:// URL or a local video file; give
    either audio (a sound to lip-sync to) or lip_sync_text with lip_sync_voice. Waits like
    generate_video_blocking: if not ready within timeout_seconds, the result carries the generation_id to
    continue with get_video_status.
    """
    return await _make_and_wait(ctx, confirmation, roots, request, timeout_seconds, save_to_disk, force_new=force_new)


async def get_video_status(
    ctx: AppContext,
    generation_id: GenerationIdArg,
    wait_seconds: WaitSecondsArg = 0,
    save_to_disk: SaveToDiskArg = None,
) -> VideoToolResult:
    """Check a generation started earlier: its status, and video_url when it is done.

    With wait_seconds > 0 it waits (with progress) until the video is done or the time is up, and returns the
    current state either way; call it again while done is false.
    """
    app = _app(ctx)
    try:
        service = app.require_service()
        if wait_seconds <= 0:
            return await _report(app, await service.status(generation_id, save=save_to_disk))
        events = service.wait_for(generation_id, timeout=wait_seconds, save=save_to_disk)
        return await _report(app, await _outcome(events, ProgressReporter(ctx)))
    except PixVerseError as exc:
        return await _problem(app, exc)


async def finish_generation(
    app: App,
    started: Started,
    *,
    timeout: float,
    save: bool | None,
    preview: bool,
    progress: "ProgressReporter | None" = None,
) -> CallToolResult:
    """The rest of a blocking call once its generation exists: the wait, the save, the preview. A protocol task
    finishes the same way in the background, so its result is the one the call would have had."""
    service = app.require_service()
    try:
        outcome = await _outcome(service.wait(started, timeout=timeout, save=save), progress)
    except PixVerseError as exc:
        return await _problem(app, exc)
    result = await _report(app, outcome)
    if preview and outcome.generation.status is GenerationStatus.COMPLETED:
        result.content.append(await _preview_or_note(service, outcome.generation.id))
    return result


async def preview_video(
    ctx: AppContext,
    generation_id: Annotated[
        str | None,
        Field(max_length=MAX_GENERATION_ID_LENGTH, description="A completed generation to preview."),
    ] = None,
    path: Annotated[
        str | None,
        Field(max_length=4096, description="Or: a saved video file (inside the videos folder) to preview."),
    ] = None,
    frames: Annotated[int, Field(ge=1, le=MAX_FRAMES, strict=True, description="How many keyframes to show.")] = 4,
) -> PreviewToolResult:
    """Look at a finished video: returns a small PNG contact sheet of evenly spaced keyframes.

    Use it after a generation completes to check the video against the prompt before telling the user it is
    done. Give generation_id (or the path of a saved video). Needs the aimlapi-pixverse-mcp[preview] extra.
    """
    if not preview_available():
        return refusal_result(INSTALL_HINT)
    if (generation_id is None) == (path is None):
        return refusal_result("Give exactly one of generation_id or path.")
    try:
        files = _app(ctx).require_service().files
        sheet = await files.preview(generation_id=generation_id, path=Path(path) if path else None, frames=frames)
    except PixVerseError as exc:
        return refusal_result(f"{exc} (generation {generation_id})" if generation_id else str(exc))
    return preview_result(sheet, generation_id=generation_id, path=path)


async def video_player_status(
    ctx: AppContext,
    generation_id: GenerationIdArg,
    wait_seconds: Annotated[
        float,
        Field(ge=0, le=PLAYER_WAIT_SECONDS, strict=True, description="How long to wait for news (long poll)."),
    ] = PLAYER_WAIT_SECONDS,
) -> VideoToolResult:
    """The inline player's view of a generation (called by the player, not the model).

    A short long poll on the shared watch of that generation: while a blocking call or another viewer already
    polls it, this costs no request to the API at all.
    """
    app = _app(ctx)
    try:
        service = app.require_service()
        outcome = await _outcome(service.wait_for(generation_id, timeout=wait_seconds), None)
    except PixVerseError as exc:
        return await _problem(app, exc)
    return await _report(app, outcome)


async def list_videos(
    ctx: AppContext,
    limit: ListLimitArg = 20,
    status: StatusFilterArg = None,
) -> ListToolResult:
    """List the videos this server has started (from its journal), newest first, with their last known status.

    Use it to find a generation_id again. The status shown is the last one seen; call get_video_status for a
    fresh one. It also lists creates whose answer was lost and how each stands. Works without an API key.
    """
    app = _app(ctx)
    try:
        entries = await app.storage.recent(limit=limit, status=GenerationStatus(status) if status else None)
        pending = [] if status else await app.storage.pending_creates(limit=limit)
    except StorageError as exc:
        return refusal_result(str(exc))
    return list_result(entries, pending, continue_wait_seconds=app.settings.wait_budget_seconds)


async def account_status(
    ctx: AppContext,
    days: Annotated[
        int, Field(ge=1, le=31, strict=True, description="How many days of spend to list, today included.")
    ] = 7,
) -> AccountToolResult:
    """The AI/ML API account's balance, what this server spent today and on each recent day, and what the daily
    spending cap (if one is set) still allows today. Use it before a batch of videos."""
    app = _app(ctx)
    try:
        account = await app.require_service().spending.account(days=days)
    except PixVerseError as exc:
        return refusal_result(str(exc))
    return account_result(account)


class ToolEntry(NamedTuple):
    """A tool as `build_server` registers it: the function, its title, its hints for hosts, and where hosts that
    render MCP Apps show its results (`player`: the inline video player; `app_only`: called by the player, not
    shown to the model)."""

    function: Any
    title: str
    annotations: ToolAnnotations
    player: bool = False
    app_only: bool = False


def _hints(*, read_only: bool, idempotent: bool, open_world: bool = True) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only, destructive_hint=False, idempotent_hint=idempotent, open_world_hint=open_world
    )


# Titles and hints per MCP's tool annotations: every tool talks to an outside service (open world) except the journal
# listing; the listing, the preview and the account only read (the status check journals and may save the video:
# not read-only, but asking twice changes nothing more); creating is never idempotent (a new, paid video).
TOOLS = (
    ToolEntry(create_video, "Start a video", _hints(read_only=False, idempotent=False)),
    ToolEntry(get_video_status, "Check a video", _hints(read_only=False, idempotent=True), player=True),
    ToolEntry(
        generate_video_blocking, "Generate a video and wait", _hints(read_only=False, idempotent=False), player=True
    ),
    ToolEntry(lip_sync_video, "Lip-sync a video", _hints(read_only=False, idempotent=False), player=True),
    ToolEntry(list_videos, "List my videos", _hints(read_only=True, idempotent=True, open_world=False)),
    ToolEntry(preview_video, "Preview a video", _hints(read_only=True, idempotent=True)),
    ToolEntry(account_status, "Account and spending", _hints(read_only=True, idempotent=True)),
    ToolEntry(
        video_player_status, "Video player status", _hints(read_only=True, idempotent=True), player=True, app_only=True
    ),
)


async def _begin(
    ctx: AppContext,
    confirmation: Any,
    roots: Any,
    request: AnyRequest,
    *,
    force_new: bool,
    timeout: float | None = None,
) -> tuple[VideoService, Started] | CallToolResult:
    """What every paid tool does first: the user's answer (or why there is none), the inputs read, the create
    claimed and sent (or re-attached to); the started generation, or the result that ends the call."""
    app = _app(ctx)
    decision = decision_of(confirmation)
    if isinstance(decision, Unanswered):
        return not_created_result(
            f"No answer to the confirmation question came within {decision.seconds:g} s: nothing was created or "
            "charged. Ask the user, then call again.",
            prompt=getattr(request, "prompt", None),
        )
    if isinstance(decision, NotAsked) and decision.reason == "over_cap":
        cap = app.settings.daily_budget_usd or 0.0
        error = SpendingCapError(cap_usd=cap, spent_usd=decision.spent_usd, estimate_usd=decision.estimate_usd)
        return await _problem(app, error)
    if not (isinstance(decision, NotAsked) or said_yes(decision)):
        return not_created_result(DECLINED, prompt=getattr(request, "prompt", None))
    began = anyio.current_time()
    budget = app.settings.wait_budget_seconds if timeout is None else timeout
    try:
        service = app.require_service()
        folders = await roots_now(ctx, roots)
        prepared = await service.prepare(request, folders=folders, within=BEFORE_CREATE_SHARE * budget)
        started = await service.start(
            prepared,
            timeout=max(_LEAST_CREATE_SECONDS, budget - (anyio.current_time() - began)),
            force_new=force_new,
            confirmation=bound_to(decision, ctx),
        )
    except InvalidArgumentError as exc:
        return refusal_result(f"Invalid arguments: {exc}")
    except PixVerseError as exc:
        return await _problem(app, exc)
    return service, started


async def _make_and_wait(
    ctx: AppContext,
    confirmation: Any,
    roots: Any,
    request: AnyRequest,
    timeout_seconds: float | None,
    save_to_disk: bool | None,
    *,
    force_new: bool,
    preview: bool = False,
) -> CallToolResult:
    """Start (or re-attach) and wait within the call's budget; or hand the wait to a protocol task."""
    app = _app(ctx)
    budget = timeout_seconds or app.settings.wait_budget_seconds
    budget = max(1.0, budget - asking_seconds(decision_of(confirmation)))
    called = anyio.current_time()
    begun = await _begin(ctx, confirmation, roots, request, force_new=force_new, timeout=budget)
    if isinstance(begun, CallToolResult):
        return begun
    _, started = begun
    slot = task_slot(ctx)
    if slot is not None:
        # A protocol task waits for it in the background; this result is not sent (the task handle is).
        slot.take(started, save=save_to_disk, preview=preview)
        return await _report(app, Outcome(started.generation, reattached=started.reattached, model=request.model))
    left = budget - (anyio.current_time() - called)
    return await finish_generation(
        app, started, timeout=left, save=save_to_disk, preview=preview, progress=ProgressReporter(ctx)
    )


def _app(ctx: AppContext) -> App:
    return ctx.request_context.lifespan_context


async def _outcome(events: Any, progress: "ProgressReporter | None") -> Outcome:
    """Pull a wait's events: progress to the client as they come; the outcome is the last."""
    outcome: Outcome | None = None
    async with aclosing(events):
        async for event in events:
            if isinstance(event, Finished):
                outcome = event.outcome
            elif progress is not None:
                await progress.report(event)
    assert outcome is not None, "a wait always ends with its outcome"
    return outcome


async def _money(app: App) -> Money:
    if app.service is None:
        return Money()
    spending = app.service.spending
    left = await spending.left_today()
    balance = await spending.balance(within=_BALANCE_IN_RESULT_SECONDS) if left is not None else None
    return Money(left, balance)


async def _report(app: App, outcome: Outcome) -> CallToolResult:
    return outcome_result(outcome, continue_wait_seconds=app.settings.wait_budget_seconds, money=await _money(app))


async def _problem(app: App, error: PixVerseError) -> CallToolResult:
    money = Money(await app.service.spending.left_today()) if app.service is not None else None
    return problem_result(error, continue_wait_seconds=app.settings.wait_budget_seconds, money=money)


async def _preview_or_note(service: VideoService, generation_id: str) -> ContentBlock:
    """The contact sheet for a finished blocking call, or a line saying why there is none (never an error)."""
    if not preview_available():
        return TextContent(type="text", text=f"No preview: {INSTALL_HINT}")
    try:
        return preview_image(await service.files.preview(generation_id=generation_id))
    except PixVerseError as exc:
        return TextContent(type="text", text=f"No preview: {exc}")


class ProgressReporter:
    """Turns wait updates into MCP progress notifications with increasing values and a message.

    A no-op when the caller sent no progress token (the SDK drops the notification).
    """

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._last = -1.0

    async def report(self, update: WaitUpdate) -> None:
        # Progress is elapsed seconds (always increasing); the total is the usual duration while we are within it.
        value = max(round(update.elapsed_seconds, 1), round(self._last + 0.1, 1))
        self._last = value
        total = update.expected_seconds if value < update.expected_seconds else None
        message = progress_message(update.status, update.elapsed_seconds, update.expected_seconds)
        await self._ctx.report_progress(value, total, message)
