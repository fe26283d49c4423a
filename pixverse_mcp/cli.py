"""`pixverse-mcp`: parse options, set up logging on stderr, and run the server on the chosen transport.

Nothing heavy is imported until it is needed, so a host launching the server over stdio gets an answer fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pixverse_mcp.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from pixverse_mcp.sandbox import RunningSandbox

logger = logging.getLogger("pixverse_mcp")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def build_parser() -> argparse.ArgumentParser:
    """The command line, documented in the README."""
    parser = argparse.ArgumentParser(
        prog="pixverse-mcp",
        description="MCP server for PixVerse v5 text-to-video through the AI/ML API. "
        "The API key comes from AIMLAPI_API_KEY.",
    )
    parser.add_argument(
        "--transport", choices=("stdio", "sse", "streamable-http"), default="stdio", help="default: stdio"
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"HTTP transports: address to bind (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP transports: port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="run against a built-in local emulator of the AI/ML API: no key needed, no credits spent",
    )
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="default: INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `pixverse-mcp` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.exit(f"pixverse-mcp: {exc}")
    if args.log_level:
        settings = settings.model_copy(update={"log_level": args.log_level})
    sandbox = _start_sandbox() if args.sandbox else None
    if sandbox is not None:
        settings = _on_sandbox(settings, sandbox)
    try:
        _serve(settings, args.transport, args.host, args.port)
    except KeyboardInterrupt:
        pass
    finally:
        if sandbox is not None:
            sandbox.stop()


def _start_sandbox() -> RunningSandbox:
    from pixverse_mcp.sandbox import RunningSandbox

    return RunningSandbox().start()


def _on_sandbox(settings: Settings, sandbox: RunningSandbox) -> Settings:
    """Point the settings at a running sandbox, with a polling schedule scaled to its short generations."""
    from pydantic import SecretStr

    from pixverse_mcp.polling import DEFAULT_EXPECTED_SECONDS

    config = sandbox.state.config
    scale = min(1.0, (config.queued_seconds + config.generating_seconds) / DEFAULT_EXPECTED_SECONDS)
    print(f"pixverse-mcp: using the local sandbox at {sandbox.url} (no key needed)", file=sys.stderr)
    return settings.model_copy(
        update={"api_key": SecretStr(config.api_key), "base_url": sandbox.url, "poll_time_scale": scale}
    )


def _serve(settings: Settings, transport: str, host: str, port: int) -> None:
    from pixverse_mcp.server import build_server

    server = build_server(settings)
    _quiet_noisy_loggers(settings.log_level)
    if transport == "stdio":
        server.run("stdio")
    elif transport == "sse":
        server.run("sse", host=host, port=port)
    else:
        server.run("streamable-http", host=host, port=port)


def _quiet_noisy_loggers(level: str) -> None:
    # httpx logs every request at INFO (a line per poll); keep it for DEBUG only.
    if level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)
