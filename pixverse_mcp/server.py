"""The MCP server: registers the tools (`tools.py`), the journal resource, the inline player (`player/`) and the
health route on one `MCPServer`.

Nothing else lives here: the work is the service's (`service.py`), the wiring the app's (`app.py`), the tools are
plain functions, and their arguments and results have modules of their own (`arguments.py`, `results.py`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context, RequestStateSecurity
from mcp.server.mcpserver.exceptions import ResourceError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pixverse_mcp import __version__
from pixverse_mcp.app import App, open_app
from pixverse_mcp.arguments import StrictArgumentsTool, bind_settings
from pixverse_mcp.config import Settings
from pixverse_mcp.confirm import ConfirmationTokens
from pixverse_mcp.player import HideAppOnlyTools, player_extension, tool_meta
from pixverse_mcp.results import journal_document
from pixverse_mcp.storage import StorageError
from pixverse_mcp.tasks import TasksExtension
from pixverse_mcp.tools import TOOLS, finish_generation

INSTRUCTIONS = """\
Generate short videos with PixVerse v5 and v5.5 (through the AI/ML API): from text, from an image (its first
frame), between two images (a transition), with sound (v5.5), and lip-synced speech.
A video takes about 30-40 s (5 s clip at 720p) to about 75 s (1080p).
- generate_video_blocking: the simplest way. Starts a video and waits ({budget} s at most by default). If the
  video is not ready by then it returns the generation_id with done=false: continue with
  get_video_status(generation_id, wait_seconds={budget}) until done is true. image / last_frame take an https URL,
  a data URI or a local file path.
- create_video + get_video_status: start now, check later (for several videos at once, or to do other work).
- lip_sync_video: make a character in a video (one made here, a URL or a file) speak words or a sound.
- list_videos: every video this server started, newest first (to find a generation_id again).
- preview_video: a contact sheet of keyframes of a finished video, to check it against the prompt.
- account_status: the balance, today's spend and what the daily cap still allows.
Never start the same video twice because a call ended early: every result carries the generation_id to resume with.
"""

GENERATION_RESOURCE = "pixverse://generations/{+generation_id}"


def description_values(settings: Settings) -> dict[str, Any]:
    """What the published descriptions and bounds say about these settings (see `arguments.bind_settings`)."""
    return {
        "budget": f"{settings.wait_budget_seconds:g}",
        "saving": "yes, into the server's videos folder" if settings.save else "no",
        "max_wait_seconds": settings.max_wait_seconds,
    }


def build_server(settings: Settings, app: App | None = None) -> MCPServer[App]:
    """The MCP server for these settings. Nothing touches the network or the disk until a tool is called.

    Pass an `app` opened once for the process (the HTTP transports do: SSE would otherwise open one per
    connection); without one, each run of the server opens its own.
    """

    tasks = TasksExtension(ttl_seconds=settings.task_ttl_seconds, finish=finish_generation)

    @asynccontextmanager
    async def lifespan(_: MCPServer[App]) -> AsyncIterator[App]:
        if app is not None:
            async with tasks.running(app):
                yield app
            return
        async with open_app(settings) as opened, tasks.running(opened):
            yield opened

    values = description_values(settings)
    tools = [
        StrictArgumentsTool.from_function(
            bound := bind_settings(entry.function, values),
            name=entry.function.__name__,
            title=entry.title,
            description=inspect.cleandoc(bound.__doc__ or ""),
            annotations=entry.annotations,
            structured_output=True,
            meta=tool_meta(app_only=entry.app_only) if entry.player else None,
        )
        for entry in TOOLS
    ]
    server = MCPServer(
        "pixverse-mcp",
        title="PixVerse video generation",
        version=__version__,
        instructions=INSTRUCTIONS.format_map(values),
        lifespan=lifespan,
        tools=tools,
        extensions=[player_extension(settings.media_origins), tasks],
        request_state_security=request_state_security(settings),
        middleware=[HideAppOnlyTools()],
        log_level=settings.log_level,
    )
    # Outermost: it must see the sealed request state before the SDK unseals it (see `confirm.py`).
    server.middleware.insert(0, ConfirmationTokens())
    server.resource(
        GENERATION_RESOURCE,
        name="generation",
        title="A generation in the journal",
        description="Everything the journal knows of one generation: request, status history, video URL, file.",
        mime_type="application/json",
    )(generation_resource)
    server.custom_route("/healthz", methods=["GET"])(_healthz)
    return server


def request_state_security(settings: Settings) -> RequestStateSecurity | None:
    """Shared keys for the state of multi-round calls when configured (replicas must agree), else the SDK's
    per-process random key. The audience is the server's name, the same on every replica."""
    if not settings.request_state_keys:
        return None
    return RequestStateSecurity(keys=[key.get_secret_value() for key in settings.request_state_keys])


async def generation_resource(generation_id: str, ctx: Context[App, Any]) -> str:
    """The journal's document for one generation (the `pixverse://generations/{id}` resource)."""
    storage = ctx.request_context.lifespan_context.storage
    try:
        entry = await storage.get(generation_id)
        if entry is None:
            raise ResourceError(f"No generation {generation_id} in the journal")
        return journal_document(entry, await storage.status_history(generation_id))
    except StorageError as exc:
        raise ResourceError(str(exc)) from exc


async def _healthz(request: Request) -> Response:
    """Liveness for load balancers and monitors: needs no token and reveals nothing but the version."""
    return JSONResponse({"status": "ok", "version": __version__})
