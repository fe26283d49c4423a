"""The MCP server: three tools over one `PixVerseClient`, built by `build_server(settings)`.

The server is thin: it validates arguments (before any request leaves the process), turns tool calls into client
calls, results into structured output plus a one-line summary, and errors into tool errors an agent can act on.
"""

# No `from __future__ import annotations`: the SDK evaluates tool signatures, which use closure values.

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field, ValidationError

from pixverse_mcp import __version__
from pixverse_mcp.client import PixVerseClient, WaitUpdate, default_timeout
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import GenerationFailedError, MissingAPIKeyError, PixVerseError, WaitTimeoutError
from pixverse_mcp.models import (
    MAX_GENERATION_ID_LENGTH,
    MAX_PROMPT_LENGTH,
    MAX_SEED,
    AspectRatio,
    Duration,
    Resolution,
    Style,
    VideoRequest,
)
from pixverse_mcp.polling import PollingPolicy
from pixverse_mcp.results import VideoResult, error_result, progress_message, status_call, video_result

logger = logging.getLogger(__name__)

INSTRUCTIONS = """\
Generate short videos from text with PixVerse v5 (through the AI/ML API).
A video takes about 30-40 s (5 s clip at 720p) to about 75 s (1080p).
- generate_video_blocking: the simplest way. Starts a video and waits (about 50 s at most by default). If the
  video is not ready by then it returns the generation_id with status still running: continue with
  get_video_status(generation_id, wait_seconds=50) until done is true.
- create_video + get_video_status: start now, check later (for several videos at once, or to do other work).
Never start the same video twice because a call ended early: every result carries the generation_id to resume with.
"""

PromptArg = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PROMPT_LENGTH,
        description="What the video shows: subject, action, setting, camera, light. English works best. "
        f"At most {MAX_PROMPT_LENGTH} characters.",
    ),
]
AspectRatioArg = Annotated[AspectRatio, Field(description="Frame shape: 16:9 landscape, 9:16 vertical, 1:1 square.")]
ResolutionArg = Annotated[
    Resolution, Field(description="Short side of the frame. Higher takes longer and costs more; 1080p is 5 s only.")
]
DurationArg = Annotated[Duration, Field(description="Clip length in seconds: 5 or 8 (8 is not available at 1080p).")]
NegativePromptArg = Annotated[
    str | None, Field(max_length=MAX_PROMPT_LENGTH, description="What the video should avoid (optional).")
]
StyleArg = Annotated[Style | None, Field(description="Optional visual style; omit for a realistic look.")]
SeedArg = Annotated[
    int | None,
    Field(ge=0, le=MAX_SEED, description="Optional; the same seed with the same request gives a similar video."),
]
GenerationIdArg = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_GENERATION_ID_LENGTH,
        description="The generation_id a create_video or generate_video_blocking call returned.",
    ),
]
VideoToolResult = Annotated[CallToolResult, VideoResult]


@dataclass
class ServerContext:
    """What the lifespan shares with every tool call: the settings and the one client (None without a key)."""

    settings: Settings
    client: PixVerseClient | None


class StrictArgumentsTool(Tool):
    """A tool that refuses unknown arguments and explains invalid ones in plain words, naming the allowed values.

    The SDK would ignore a misspelt argument (a wrong-sized video the user pays for) and answers invalid ones with
    pydantic's raw text; both checks run here, before the tool body, so nothing is ever sent for bad input.
    """

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        properties: dict[str, Any] = self.parameters.get("properties", {})
        unknown = sorted(set(arguments) - set(properties))
        if unknown:
            raise ToolError(
                f"Unknown argument(s) for {self.name}: {', '.join(unknown)}. "
                f"Allowed arguments: {', '.join(properties)}."
            )
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            raise ToolError(f"Invalid arguments for {self.name}: {describe_validation_error(exc, properties)}") from exc
        return await super().run(arguments, context, convert_result=convert_result)


def describe_validation_error(exc: ValidationError, properties: dict[str, Any] | None = None) -> str:
    """Each problem as "`field`: what is wrong (allowed: ...)", without echoing the rejected value."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        allowed = _allowed_values((properties or {}).get(str(error["loc"][0]) if error["loc"] else "", {}))
        described = f"`{field}`: {message}" if field else message
        problems.append(f"{described} (allowed: {allowed})" if allowed else described)
    return "; ".join(problems)


def _allowed_values(schema: dict[str, Any]) -> str | None:
    options = [schema, *schema.get("anyOf", [])]
    for option in options:
        if "enum" in option:
            values = ", ".join(json.dumps(value) for value in option["enum"])
            default = schema.get("default")
            return f"{values}; default {json.dumps(default)}" if default is not None else values
    return None


def _video_request(**fields: Any) -> VideoRequest:
    try:
        return VideoRequest(**fields)
    except ValidationError as exc:
        raise ToolError(f"Invalid video request: {describe_validation_error(exc)}") from exc


def build_server(settings: Settings) -> MCPServer[ServerContext]:
    """The MCP server for these settings. Nothing touches the network until a tool is called."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[ServerContext]) -> AsyncIterator[ServerContext]:
        if not settings.has_api_key:
            logger.warning("AIMLAPI_API_KEY is not set: every tool will explain how to set it")
            yield ServerContext(settings, None)
            return
        async with PixVerseClient(
            api_key=settings.api_key,
            base_url=settings.base_url,
            endpoint_path=settings.endpoint_path,
            timeout=default_timeout(settings.connect_timeout_seconds, settings.read_timeout_seconds),
            polling_policy=PollingPolicy(time_scale=settings.poll_time_scale),
        ) as client:
            yield ServerContext(settings, client)

    tools = [
        StrictArgumentsTool.from_function(
            function, name=function.__name__, title=title, annotations=annotations, structured_output=True
        )
        for function, title, annotations in _tool_functions(settings)
    ]
    return MCPServer(
        "pixverse-mcp",
        title="PixVerse video generation",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=tools,
        log_level=settings.log_level,
    )


def _client(ctx: Context[ServerContext, Any]) -> PixVerseClient:
    client = ctx.request_context.lifespan_context.client
    if client is None:
        raise ToolError(str(MissingAPIKeyError()))
    return client


def _tool_functions(settings: Settings) -> list[tuple[Callable[..., Any], str, ToolAnnotations]]:
    budget = settings.wait_budget_seconds
    max_wait = settings.max_wait_seconds

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
        with the generation_id (optionally with wait_seconds to wait there). A video takes about 30-40 s at 720p,
        about 75 s at 1080p. Each call starts a new, paid generation: do not call it again to "retry" a video
        whose generation_id you already have.
        """
        request = _video_request(
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            duration=duration,
            negative_prompt=negative_prompt,
            style=style,
            seed=seed,
        )
        client = _client(ctx)
        try:
            generation = await client.create(request)
        except PixVerseError as exc:
            return error_result(str(exc))
        expected = client.polling_policy.expected_seconds(request.resolution, request.duration)
        return video_result(generation, continue_wait_seconds=budget, estimated_seconds_remaining=expected)

    async def get_video_status(
        ctx: Context[ServerContext, Any],
        generation_id: GenerationIdArg,
        wait_seconds: Annotated[
            float,
            Field(
                ge=0,
                le=max_wait,
                description=f"0 (default) looks once and returns. More waits up to that many seconds for the video "
                f"to finish, reporting progress; keep it at {budget:g} or less so the call ends before the "
                "host's time limit.",
            ),
        ] = 0,
    ) -> VideoToolResult:
        """Check a generation started by create_video or generate_video_blocking: status, and video_url when done.

        With wait_seconds > 0 it waits (with progress) until the video is done or the time is up, and returns the
        current state either way; call it again while done is false.
        """
        client = _client(ctx)
        if wait_seconds <= 0:
            try:
                generation = await client.get(generation_id)
            except PixVerseError as exc:
                return error_result(str(exc), generation_id=generation_id)
            return video_result(generation, continue_wait_seconds=budget)
        return await _wait_and_report(ctx, client, generation_id, wait_seconds, budget)

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
                description=f"How long to wait before returning (default {budget:g} s, which ends before a host's "
                "usual 60 s limit). If the video is not ready by then the result says so and gives the "
                "generation_id to continue with; nothing is lost.",
            ),
        ] = None,
    ) -> VideoToolResult:
        """Generate a video and wait for it: returns video_url when done, with progress while it runs.

        A video takes about 30-40 s at 720p, about 75 s at 1080p. If it is not ready within timeout_seconds the
        call still succeeds, with done false and the generation_id: continue with get_video_status(generation_id,
        wait_seconds=...). Never call this again to retry a video you already have a generation_id for.
        """
        request = _video_request(
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            duration=duration,
            negative_prompt=negative_prompt,
            style=style,
            seed=seed,
        )
        client = _client(ctx)
        try:
            generation = await client.create(request)
        except PixVerseError as exc:
            return error_result(str(exc))
        expected = client.polling_policy.expected_seconds(request.resolution, request.duration)
        return await _wait_and_report(
            ctx, client, generation.id, timeout_seconds or budget, budget, expected=expected, usage=generation.usage
        )

    # Titles and hints per MCP's tool annotations: every tool talks to an outside service (open world);
    # only the status check is read-only; creating is never idempotent (each call is a new, paid video).
    return [
        (
            create_video,
            "Start a video",
            ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True),
        ),
        (
            get_video_status,
            "Check a video",
            ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True),
        ),
        (
            generate_video_blocking,
            "Generate a video and wait",
            ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True),
        ),
    ]


async def _wait_and_report(
    ctx: Context[ServerContext, Any],
    client: PixVerseClient,
    generation_id: str,
    wait_seconds: float,
    budget: float,
    *,
    expected: float | None = None,
    usage: dict[str, Any] | None = None,
) -> CallToolResult:
    """Wait for a generation with progress notifications, and report how it ended: never lose the id."""
    progress = _ProgressReporter(ctx)
    started = anyio.current_time()
    try:
        generation = await client.wait(
            generation_id, timeout=wait_seconds, on_update=progress, expected_seconds=expected
        )
    except WaitTimeoutError as exc:
        latest = exc.generation
        elapsed = anyio.current_time() - started
        remaining = (expected or client.polling_policy.expected_seconds()) - elapsed
        if latest is None:
            return error_result(
                f"Could not read the status of generation {generation_id} in {wait_seconds:g} s (the API did "
                f"not answer usably). It may still be running: continue with {status_call(generation_id, budget)}.",
                generation_id=generation_id,
            )
        return video_result(
            latest,
            continue_wait_seconds=budget,
            elapsed_seconds=elapsed,
            estimated_seconds_remaining=max(remaining, 0.0) or None,
            usage=usage,
        )
    except GenerationFailedError as exc:
        if exc.generation is not None:
            return video_result(exc.generation, continue_wait_seconds=budget, usage=usage)
        return error_result(str(exc), generation_id=generation_id)
    except PixVerseError as exc:
        return error_result(
            f"{exc}. The generation may still be running: check it with {status_call(generation_id, 0)}.",
            generation_id=generation_id,
        )
    except anyio.get_cancelled_exc_class():
        logger.warning("wait for generation %s cancelled by the client; it goes on upstream", generation_id)
        raise
    return video_result(
        generation, continue_wait_seconds=budget, elapsed_seconds=anyio.current_time() - started, usage=usage
    )


class _ProgressReporter:
    """Turns the client's wait updates into MCP progress notifications with increasing values and a message."""

    def __init__(self, ctx: Context[ServerContext, Any]) -> None:
        self._ctx = ctx
        self._last = -1.0

    async def __call__(self, update: WaitUpdate) -> None:
        # Progress is elapsed seconds (always increasing); the total is the usual duration while we are within it.
        value = max(round(update.elapsed_seconds, 1), self._last + 0.1)
        self._last = value
        total = update.expected_seconds if value < update.expected_seconds else None
        message = progress_message(update.status, update.elapsed_seconds, update.expected_seconds)
        await self._ctx.report_progress(value, total, message)
