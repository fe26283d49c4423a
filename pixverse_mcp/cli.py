"""`pixverse-mcp`: run the MCP server (the default), or use the API from a terminal (`generate`, `lip-sync`,
`status`, `download`, `list`, `balance`).

Only the standard library and the settings are imported here: the server, the SDK and rich are imported when the
chosen command needs them, so a host launching the server over stdio gets its first answer fast.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pixverse_mcp import __version__, defaults
from pixverse_mcp.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from pixverse_mcp.sandbox import RunningSandbox
# After SIGTERM on stdio: time for the interrupted calls' results to be written before the server stops.
STDIO_DRAIN_SECONDS = 0.5


def build_parser() -> argparse.ArgumentParser:
    """The command line, documented in the README."""
    parser = argparse.ArgumentParser(
        prog=_program_name(),
        description="MCP server for PixVerse video generation (v5, v5.5: text, image, transition, lip-sync) through "
        "the AI/ML API (key: AIMLAPI_API_KEY). Without a command it runs the server.",
    )
    parser.add_argument("--transport", choices=("stdio", "sse", "streamable-http"), default="stdio")
    parser.add_argument(
        "--host", default=defaults.HTTP_HOST, help=f"HTTP transports: address (default {defaults.HTTP_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=defaults.HTTP_PORT, help=f"HTTP transports (default {defaults.HTTP_PORT})"
    )
    parser.add_argument(
        "--stateless",
        action="store_true",
        help="streamable-http: no sessions and plain JSON responses, for several instances behind a load balancer "
        "(no progress notifications)",
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve beyond loopback without PIXVERSE_MCP_AUTH_TOKEN (only behind something that authenticates)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_common(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    out_help = "folder to save the video in (created if missing; default: the videos folder, see the README)"
    generate = commands.add_parser("generate", help="generate a video, wait with a progress bar, save it")
    _add_video_options(generate)
    generate.add_argument("--out", help=out_help)
    generate.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (1 to 600; default 600)")
    _add_common(generate)
    lip_sync = commands.add_parser("lip-sync", help="lip-sync a video to a sound or to words, wait, save it")
    lip_sync.add_argument("video", help="a generation id made here, an https:// URL, or a video file")
    lip_sync.add_argument("--audio", help="a sound to lip-sync to: an https:// URL or a sound file")
    lip_sync.add_argument("--text", help="or: words to speak")
    lip_sync.add_argument("--voice", help="the voice for --text (default Auto): see `generate --help`")
    lip_sync.add_argument("--out", help=out_help)
    lip_sync.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (1 to 600; default 600)")
    _add_common(lip_sync)
    status = commands.add_parser("status", help="print the status of one generation (and save it when done)")
    status.add_argument("generation_id")
    status.add_argument("--wait", type=float, default=0.0, help="wait up to this many seconds for it to finish")
    status.add_argument("--out", help=out_help)
    _add_common(status)
    download = commands.add_parser("download", help="save a finished video by its id (while the provider has it)")
    download.add_argument("generation_id")
    download.add_argument("--out", help=out_help)
    _add_common(download)
    listing = commands.add_parser("list", help="print the journal: every generation this machine started")
    listing.add_argument("--limit", type=_positive_int, default=20, help="how many rows (default 20)")
    _add_common(listing)
    balance = commands.add_parser("balance", help="print the account's balance and this server's spend")
    _add_common(balance)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _program_name() -> str:
    """How the user ran this program (for --help, --version and the resume hints): the script's name when it is on
    their PATH, `uvx aimlapi-pixverse-mcp` from uv's cache, `python -m pixverse_mcp` for the module, else the full
    path."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("aimlapi-pixverse-mcp")
    if script.name == "__main__.py":
        return f"{Path(sys.executable).name} -m pixverse_mcp"
    found = shutil.which(script.name)
    if found is not None and Path(found).resolve() == script.resolve():
        return script.name
    if "uv" in script.parts or any(part.startswith("archive-v") for part in script.parts):
        return "uvx aimlapi-pixverse-mcp"
    return str(script)


def _add_video_options(parser: argparse.ArgumentParser) -> None:
    """The video parameters as arguments, from the one source the tools' schemas come from (`VideoRequest`): each
    help line says what is allowed and the default. Values are checked by the model, as the tools check them."""
    from pixverse_mcp.explain import allowed_values, request_properties
    from pixverse_mcp.models import VideoRequest

    for name, field in VideoRequest.model_fields.items():
        schema = request_properties()[name]
        allowed = allowed_values(schema)
        described = f"{field.description} Allowed: {allowed}." if allowed else str(field.description)
        if field.is_required():
            parser.add_argument(name, help=described)
            continue
        flags = [f"--{name.replace('_', '-')}", *_ALIASES.get(name, ())]
        if "boolean" in json.dumps(schema):  # a switch: given or not
            parser.add_argument(*flags, dest=name, action="store_const", const=True, default=None, help=described)
            continue
        if field.default is None:
            described += " Default: none."
        integer = "integer" in json.dumps(schema)  # `duration` and `seed`, whether optional or not
        parser.add_argument(*flags, dest=name, type=int if integer else str, default=None, help=described)


# Shorter flags people type (the issue's `--audio`).
_ALIASES: dict[str, tuple[str, ...]] = {"generate_audio": ("--audio",)}


def _add_common(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """Options accepted before or after the command. A command's copy sets nothing unless given (SUPPRESS), so it
    never overwrites what was given before the command."""
    parser.add_argument(
        "--sandbox",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="use a built-in local emulator of the AI/ML API: no key needed, no credits spent; its journal and "
        "videos are kept apart from the real ones",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default=None if top_level else argparse.SUPPRESS,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `pixverse-mcp` command."""
    # No garbage collection until the server is built: starting allocates hundreds of thousands of objects that all
    # stay (modules, the SDK's and our schemas), and collecting them again and again while importing took about a
    # tenth of the time to the first answer (P1). A server then freezes them out of every later collection.
    gc.disable()
    try:
        _main(argv)
    finally:
        gc.enable()


def _started() -> None:
    """The server is built: what exists now lives as long as the process, so no collection scans it again."""
    gc.freeze()
    gc.enable()


def _main(argv: Sequence[str] | None) -> None:
    args = build_parser().parse_args(argv)
    args.program = _program_name()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"pixverse-mcp: {exc}", file=sys.stderr)
        sys.exit(3)  # the terminal's "an invalid setting" code (README, exit codes)
    if args.log_level:
        settings = settings.model_copy(update={"log_level": args.log_level})
    sandbox = _start_sandbox() if getattr(args, "sandbox", False) else None
    if sandbox is not None:
        settings = _on_sandbox(settings, sandbox)
    try:
        if args.command is None:
            _serve(settings, args)
        else:
            gc.enable()
            from pixverse_mcp.terminal import run_command

            sys.exit(run_command(settings, args))
    finally:
        if sandbox is not None:
            sandbox.stop()


def _start_sandbox() -> RunningSandbox:
    from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig

    # Generations of earlier sandbox runs (in the sandbox's own journal) answer as finished, as they would be.
    return RunningSandbox(SandboxConfig(remember_earlier_runs=True)).start()


def _on_sandbox(settings: Settings, sandbox: RunningSandbox) -> Settings:
    """Point the settings at a running sandbox, with a polling schedule scaled to its short generations."""
    from pydantic import SecretStr

    from pixverse_mcp.polling import DEFAULT_EXPECTED_SECONDS

    config = sandbox.state.config
    scale = min(1.0, (config.queued_seconds + config.generating_seconds) / DEFAULT_EXPECTED_SECONDS)
    print(f"pixverse-mcp: using the local sandbox at {sandbox.url} (no key needed)", file=sys.stderr)
    # Its own journal and videos folder: pretend videos never mix with real ones, nor get listed as to be polled.
    state = settings.state_dir / "sandbox"
    return settings.model_copy(
        update={
            "api_key": SecretStr(config.api_key),
            "base_url": sandbox.url,
            "poll_time_scale": scale,
            "state_dir": state,
            "output_dir": state / "videos",
            "database_url": None,
            "media_origins": (*settings.media_origins, sandbox.url),
            "settle_seconds": min(settings.settle_seconds, config.logs_delay_seconds * 20),
        }
    )


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    import anyio

    from pixverse_mcp.logs import configure_logging

    configure_logging(settings.log_level, secrets=settings.secrets)
    try:
        if args.transport == "stdio":
            anyio.run(_serve_stdio, settings)
        else:
            from pixverse_mcp.hosting import HostingError, HttpOptions, serve_http

            options = HttpOptions(args.transport, args.host, args.port, args.stateless, args.allow_unauthenticated)
            _started()
            try:
                anyio.run(serve_http, settings, options)
            except HostingError as exc:
                sys.exit(f"pixverse-mcp: {exc}")
    except KeyboardInterrupt:
        pass


async def _serve_stdio(settings: Settings) -> None:
    """Serve over stdio; on SIGTERM, end in-flight waits (their results, with ids, go out first), then stop."""
    import logging
    import os
    import signal

    import anyio

    from pixverse_mcp.app import open_app
    from pixverse_mcp.server import build_server
    from pixverse_mcp.stdio import serve_stdio

    async with open_app(settings) as app, anyio.create_task_group() as group:

        async def stop_on_sigterm() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    if app.service is not None:
                        app.service.drain()
                    await anyio.sleep(STDIO_DRAIN_SECONDS)
                    # The SDK reads stdin in a worker thread that no cancellation can interrupt, so a clean
                    # cancel would hang until the host closes stdin. Every journal write is already committed.
                    logging.shutdown()
                    os._exit(0)

        if sys.platform != "win32":  # no SIGTERM handlers there: the host ends the process outright
            group.start_soon(stop_on_sigterm)
        server = build_server(settings, app)
        _started()
        await serve_stdio(server)
        group.cancel_scope.cancel()
