"""The MCP server: the video tools and the journal resource over one `VideoService`, built by `build_server`.

The server is thin: arguments are checked before the tool body runs (`arguments.py`), the work is the service's,
and results become structured output plus a one-line summary (`results.py`), errors tool errors an agent can act on.
"""

# No `from __future__ import annotations`: the SDK evaluates tool signatures, which use closure values.

import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pixverse_mcp import __version__
from pixverse_mcp.arguments import (
    AspectRatioArg,
    DurationArg,
    GenerationIdArg,
    ListLimitArg,
    NegativePromptArg,
    PromptArg,
    ResolutionArg,
    SeedArg,
    StatusFilterArg,
    StrictArgumentsTool,
    StyleArg,
    video_request,
)
from pixverse_mcp.client import PixVerseClient, WaitUpdate, default_timeout
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import GenerationError, MissingAPIKeyError, NotFoundError, PixVerseError
from pixverse_mcp.journal import Journal
from pixverse_mcp.models import MAX_GENERATION_ID_LENGTH, GenerationStatus
from pixverse_mcp.polling import PollingPolicy
from pixverse_mcp.preview import INSTALL_HINT, MAX_FRAMES, PreviewError, preview_available
from pixverse_mcp.results import (
    PreviewResult,
    VideoList,
    VideoResult,
    error_result,
    journal_document,
    list_result,
    outcome_result,
    preview_image,
    preview_result,
    progress_message,
    status_call,
)
from pixverse_mcp.service import Outcome, VideoService

logger = logging.getLogger(__name__)

INSTRUCTIONS = """\
Generate short videos from text with PixVerse v5 (through the AI/ML API).
A video takes about 30-40 s (5 s clip at 720p) to about 75 s (1080p).
- generate_video_blocking: the simplest way. Starts a video and waits ({budget:g} s at most by default). If the
  video is not ready by then it returns the generation_id with done=false: continue with
  get_video_status(generation_id, wait_seconds={budget:g}) until done is true.
- create_video + get_video_status: start now, check later (for several videos at once, or to do other work).
- list_videos: every video this server started, newest first (to find a generation_id again).
- preview_video: a contact sheet of keyframes of a finished video, to check it against the prompt.
Never start the same video twice because a call ended early: every result carries the generation_id to resume with.
"""

VideoToolResult = Annotated[CallToolResult, VideoResult]
ListToolResult = Annotated[CallToolResult, VideoList]
PreviewToolResult = Annotated[CallToolResult, PreviewResult]
GENERATION_RESOURCE = "pixverse://generations/{+generation_id}"


@dataclass
class ServerContext:
    """What the lifespan shares with every call: the settings, the journal, and the service (None without a usable
    key, and then `key_error` says why)."""

    settings: Settings
    journal: Journal
    service: VideoService | None
    key_error: MissingAPIKeyError | None = None


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[ServerContext]:
    """The journal, the one client and the service, for as long as the server runs."""
    journal = Journal(settings.journal_path)
    try:
        if (key_error := settings.api_key_error) is not None:
            logger.warning("%s Every video tool will say how to fix it.", key_error.problem)
            yield ServerContext(settings, journal, None, key_error)
            return
        async with PixVerseClient(
            api_key=settings.api_key,
            base_url=settings.base_url,
            endpoint_path=settings.endpoint_path,
            timeout=default_timeout(settings.connect_timeout_seconds, settings.read_timeout_seconds),
            polling_policy=PollingPolicy(time_scale=settings.poll_time_scale),
        ) as client:
            yield ServerContext(settings, journal, VideoService(client, journal, settings))
    finally:
        journal.close()


def build_server(settings: Settings, context: ServerContext | None = None) -> MCPServer[ServerContext]:
    """The MCP server for these settings. Nothing touches the network or the disk until a tool is called.

    Pass a `context` opened once for the process (the HTTP transports do: SSE would otherwise open one per
    connection); without one, each run of the server opens its own.
    """

    @asynccontextmanager
    async def lifespan(_: MCPServer[ServerContext]) -> AsyncIterator[ServerContext]:
        if context is not None:
            yield context
            return
        async with open_context(settings) as opened:
            yield opened

    tools = [
        StrictArgumentsTool.from_function(
            function,
            name=function.__name__,
            title=title,
            description=inspect.cleandoc(function.__doc__ or ""),
            annotations=annotations,
            structured_output=True,
        )
        for function, title, annotations in _tool_functions(settings)
    ]
    server = MCPServer(
        "pixverse-mcp",
        title="PixVerse video generation",
        version=__version__,
        instructions=INSTRUCTIONS.format(budget=settings.wait_budget_seconds),
        lifespan=lifespan,
        tools=tools,
        log_level=settings.log_level,
    )

    @server.resource(
        GENERATION_RESOURCE,
        name="generation",
        title="A generation in the journal",
        description="Everything the journal knows of one generation: request, status history, video URL, file.",
        mime_type="application/json",
    )
    async def generation_resource(generation_id: str, ctx: Context[ServerContext, Any]) -> str:
        journal = ctx.request_context.lifespan_context.journal
        entry = await journal.get(generation_id)
        if entry is None:
            raise ResourceError(f"No generation {generation_id} in the journal")
        return journal_document(entry, await journal.status_history(generation_id))

    server.custom_route("/healthz", methods=["GET"])(_healthz)
    return server


async def _healthz(request: Request) -> Response:
    """Liveness for load balancers and monitors: needs no token and reveals nothing but the version."""
    return JSONResponse({"status": "ok", "version": __version__})


def _service(ctx: Context[ServerContext, Any]) -> VideoService:
    context = ctx.request_context.lifespan_context
    if context.service is None:
        raise ToolError(str(context.key_error or MissingAPIKeyError()))
    return context.service


def _tool_functions(settings: Settings) -> list[tuple[Callable[..., Any], str, ToolAnnotations]]:
    budget = settings.wait_budget_seconds
    max_wait = settings.max_wait_seconds
    save_description = (
        "Also download the finished video to this machine and report its path "
        f"(default: {'yes, into ' + str(settings.output_dir) if settings.output_dir else 'no'})."
    )

    def report(outcome: Outcome) -> CallToolResult:
        return outcome_result(outcome, continue_wait_seconds=budget)

    async def create_video(
        ctx: Context[ServerContext, Any],
        prompt: PromptArg,
        aspect_ratio: AspectRatioArg = "16:9",
        resolution: ResolutionArg = "720p",
        duration: DurationArg = 5,
        negative_prompt: NegativePromptArg = None,
        style: StyleArg = None,
        seed: SeedArg = None,
    ) -> VideoToolResult:
        """Start generating a video and return its generation_id at once (it does not wait).

        Use this to start several videos in parallel or to do other work meanwhile; then call get_video_status
        with the generation_id (with wait_seconds to wait there). A video takes about 30-40 s at 720p, about 75 s
        at 1080p. Each call starts a new, paid generation: do not call it again to "retry" a video whose
        generation_id you already have.
        """
        request = video_request(
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            duration=duration,
            negative_prompt=negative_prompt,
            style=style,
            seed=seed,
        )
        service = _service(ctx)
        try:
            generation = await service.start(request)
        except PixVerseError as exc:
            return error_result(str(exc))
        expected = service.client.polling_policy.expected_seconds(request.resolution, request.duration)
        return report(Outcome(generation, remaining_seconds=expected))

    async def get_video_status(
        ctx: Context[ServerContext, Any],
        generation_id: GenerationIdArg,
        wait_seconds: Annotated[
            float,
            Field(
                ge=0,
                le=max_wait,
                strict=True,
                description=f"0 (default) looks once and returns. More waits up to that many seconds for the video "
                f"to finish, with progress; keep it at {budget:g} or less so the call ends before the host's "
                "time limit.",
            ),
        ] = 0,
        save_to_disk: Annotated[bool | None, Field(strict=True, description=save_description)] = None,
    ) -> VideoToolResult:
        """Check a generation started earlier: its status, and video_url when it is done.

        With wait_seconds > 0 it waits (with progress) until the video is done or the time is up, and returns the
        current state either way; call it again while done is false.
        """
        service = _service(ctx)
        try:
            outcome = await service.status(
                generation_id, wait_seconds=wait_seconds, save=save_to_disk, on_update=_ProgressReporter(ctx)
            )
        except GenerationError as exc:
            return _lookup_failed(exc, budget)
        return report(outcome)

    async def generate_video_blocking(
        ctx: Context[ServerContext, Any],
        prompt: PromptArg,
        aspect_ratio: AspectRatioArg = "16:9",
        resolution: ResolutionArg = "720p",
        duration: DurationArg = 5,
        negative_prompt: NegativePromptArg = None,
        style: StyleArg = None,
        seed: SeedArg = None,
        timeout_seconds: Annotated[
            float | None,
            Field(
                ge=1,
                le=max_wait,
                strict=True,
                description=f"How long to wait before returning (default {budget:g} s, which ends before a host's "
                "usual 60 s limit). If the video is not ready by then the result says so and gives the "
                "generation_id to continue with; nothing is lost.",
            ),
        ] = None,
        save_to_disk: Annotated[bool | None, Field(strict=True, description=save_description)] = None,
        force_new: Annotated[
            bool,
            Field(
                strict=True,
                description="Start a new generation even if an identical one is still running from an earlier "
                "call (by default such a call re-attaches to it, so a retry is not paid twice).",
            ),
        ] = False,
        preview: Annotated[
            bool,
            Field(
                strict=True,
                description="When the video is done, also return a small contact sheet of keyframes (PNG) to "
                "check it against the prompt. Needs the pixverse-mcp[preview] extra.",
            ),
        ] = False,
    ) -> VideoToolResult:
        """Generate a video and wait for it: returns video_url when done, with progress while it runs.

        A video takes about 30-40 s at 720p, about 75 s at 1080p. If it is not ready within timeout_seconds the
        call still succeeds, with done=false and the generation_id: continue with get_video_status(generation_id,
        wait_seconds=...). Calling it again with the same arguments while that video is still running re-attaches
        to it instead of paying for another.
        """
        request = video_request(
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            duration=duration,
            negative_prompt=negative_prompt,
            style=style,
            seed=seed,
        )
        service = _service(ctx)
        try:
            outcome = await service.generate(
                request,
                timeout=timeout_seconds or budget,
                force_new=force_new,
                save=save_to_disk,
                on_update=_ProgressReporter(ctx),
            )
        except GenerationError as exc:
            return _lookup_failed(exc, budget)
        except PixVerseError as exc:
            return error_result(str(exc))
        result = report(outcome)
        if preview and outcome.generation.status is GenerationStatus.COMPLETED:
            result.content.append(await _preview_or_note(service, outcome.generation.id))
        return result

    async def preview_video(
        ctx: Context[ServerContext, Any],
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
        done. Give generation_id (or the path of a saved video). Needs the pixverse-mcp[preview] extra.
        """
        if not preview_available():
            raise ToolError(INSTALL_HINT)
        if (generation_id is None) == (path is None):
            raise ToolError("Give exactly one of generation_id or path.")
        service = _service(ctx)
        try:
            sheet = await service.preview(generation_id=generation_id, path=Path(path) if path else None, frames=frames)
        except (ValueError, PreviewError, PixVerseError) as exc:
            return error_result(str(exc), generation_id=generation_id)
        return preview_result(sheet, generation_id=generation_id, path=path)

    async def list_videos(
        ctx: Context[ServerContext, Any],
        limit: ListLimitArg = 20,
        status: StatusFilterArg = None,
    ) -> ListToolResult:
        """List the videos this server has started (from its journal), newest first, with their last known status.

        Use it to find a generation_id again. The status shown is the last one seen; call get_video_status for a
        fresh one. Works without an API key.
        """
        journal = ctx.request_context.lifespan_context.journal
        entries = await journal.recent(limit=limit, status=GenerationStatus(status) if status else None)
        return list_result(entries, continue_wait_seconds=budget)

    # Titles and hints per MCP's tool annotations: every tool talks to an outside service (open world) except the
    # journal listing; the status check and the listing only read; creating is never idempotent (a new, paid video).
    def hints(*, read_only: bool, idempotent: bool, open_world: bool = True) -> ToolAnnotations:
        return ToolAnnotations(
            read_only_hint=read_only, destructive_hint=False, idempotent_hint=idempotent, open_world_hint=open_world
        )

    return [
        (create_video, "Start a video", hints(read_only=False, idempotent=False)),
        (get_video_status, "Check a video", hints(read_only=True, idempotent=True)),
        (generate_video_blocking, "Generate a video and wait", hints(read_only=False, idempotent=False)),
        (list_videos, "List my videos", hints(read_only=True, idempotent=True, open_world=False)),
        (preview_video, "Preview a video", hints(read_only=True, idempotent=True)),
    ]


async def _preview_or_note(service: VideoService, generation_id: str) -> ContentBlock:
    """The contact sheet for a finished blocking call, or a line saying why there is none (never an error)."""
    if not preview_available():
        return TextContent(type="text", text=f"No preview: {INSTALL_HINT}")
    try:
        return preview_image(await service.preview(generation_id=generation_id))
    except (ValueError, PreviewError, PixVerseError) as exc:
        return TextContent(type="text", text=f"No preview: {exc}")


def _lookup_failed(exc: GenerationError, budget: float) -> CallToolResult:
    reason = str(exc).rstrip(".")
    if isinstance(exc.__cause__, NotFoundError):
        advice = "Check the generation_id (list_videos shows the ones this server started)."
    else:
        advice = f"The generation may still be running: check it later with {status_call(exc.generation_id, budget)}."
    return error_result(f"{reason}. {advice}", generation_id=exc.generation_id)


class _ProgressReporter:
    """Turns the client's wait updates into MCP progress notifications with increasing values and a message.

    A no-op when the caller sent no progress token (the SDK drops the notification).
    """

    def __init__(self, ctx: Context[ServerContext, Any]) -> None:
        self._ctx = ctx
        self._last = -1.0

    async def __call__(self, update: WaitUpdate) -> None:
        # Progress is elapsed seconds (always increasing); the total is the usual duration while we are within it.
        value = max(round(update.elapsed_seconds, 1), round(self._last + 0.1, 1))
        self._last = value
        total = update.expected_seconds if value < update.expected_seconds else None
        message = progress_message(update.status, update.elapsed_seconds, update.expected_seconds)
        await self._ctx.report_progress(value, total, message)
