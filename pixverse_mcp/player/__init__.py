"""The inline video player (MCP Apps): one self-contained HTML view that hosts render next to a result.

`generate_video_blocking` and `get_video_status` name it in `_meta.ui.resourceUri`; hosts that render MCP Apps show
the video in a `<video>` player with the prompt, the progress while it runs (the view long-polls the app-only tool
`video_player_status` through the host) and the cost. Its CSP declares the origins videos load from
(`settings.media_origins`: the provider's CDN, plus the sandbox when running on it). Hosts without Apps support see
the same results as before, and no app-only tool in `tools/list` (`HideAppOnlyTools`).
"""

from __future__ import annotations

import importlib.resources
from functools import cache
from typing import Any, Final

from mcp.server.apps import Apps, ResourceCsp, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

PLAYER_URI: Final = "ui://pixverse/player.html"


@cache
def player_html() -> str:
    """The view, read from the package once."""
    return (importlib.resources.files(__package__) / "player.html").read_text(encoding="utf-8")


def player_extension(media_origins: tuple[str, ...]) -> Apps:
    """The MCP Apps extension serving the player, allowed to load media from `media_origins`."""
    apps = Apps()
    apps.add_html_resource(
        PLAYER_URI,
        player_html(),
        name="player",
        title="PixVerse video player",
        description="Plays a generated video inline, with its prompt, progress while it runs, and its cost.",
        csp=ResourceCsp(resource_domains=[origin.rstrip("/") for origin in media_origins]),
        prefers_border=False,
    )
    return apps


def tool_meta(*, app_only: bool) -> dict[str, Any]:
    """A tool's `_meta` naming the player (`app_only`: called by the view, never shown to the model)."""
    ui: dict[str, Any] = {"resourceUri": PLAYER_URI}
    if app_only:
        ui["visibility"] = ["app"]
    return {"ui": ui}


class HideAppOnlyTools:
    """Leave app-only tools out of `tools/list` for clients that cannot render MCP Apps: to them, the server looks
    exactly as it did before the player existed (hosts hide such tools from the model themselves)."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)  # the wire dict, by the time middleware sees it
        if ctx.method != "tools/list" or not isinstance(result, dict) or client_supports_apps(ctx):
            return result
        tools = result.get("tools")
        if isinstance(tools, list):
            result = {**result, "tools": [tool for tool in tools if _shown_to_models(tool.get("_meta"))]}
        return result


def _shown_to_models(meta: object) -> bool:
    ui = meta.get("ui") if isinstance(meta, dict) else None
    visibility = ui.get("visibility") if isinstance(ui, dict) else None
    return not isinstance(visibility, list) or "model" in visibility
