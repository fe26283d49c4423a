"""The real server in this process, for the fast tests: settings pointed at an upstream, the SDK's `Client` on
`build_server` over `open_app` (as the SDK's own tests do), and a raw JSON-RPC session over memory streams for the
tests that speak the protocol by hand.

Nothing here starts a process: the server, its storage and its polling run in the test's event loop; the upstream is
a sandbox (`RunningSandbox`, real HTTP on a loopback port, served from a thread) or `tests.hostile_upstream`. What
needs a process boundary (stdio framing, stdout hygiene, signals, the HTTP hosting, independent clients) is tested in
tests/e2e.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.server import MCPServer
from mcp.server.runner import serve_dual_era_loop
from mcp.shared.memory import create_client_server_memory_streams
from mcp.shared.message import SessionMessage
from pydantic import SecretStr

from pixverse_mcp.app import App, open_app
from pixverse_mcp.config import Settings
from pixverse_mcp.polling import DEFAULT_EXPECTED_SECONDS
from pixverse_mcp.sandbox import RunningSandbox
from pixverse_mcp.server import build_server
from tests.stdio_support import RawSession

# The polling schedule's scale for an upstream whose generation time we do not know (the hostile upstream answers
# at once): 35 s of the real schedule in 0.7 s.
DEFAULT_POLL_SCALE = 0.02
# After the client leaves, how long the server's own teardown may take before it is cancelled.
SHUTDOWN_GRACE_SECONDS = 5.0


class Upstream(Protocol):
    """What the server needs to know of an upstream: where it is and the key it accepts."""

    @property
    def url(self) -> str: ...

    @property
    def api_key(self) -> str: ...


def poll_scale_for(sandbox: RunningSandbox) -> float:
    """The polling schedule scaled to the sandbox's generation time, as `pixverse-mcp --sandbox` scales it."""
    config = sandbox.state.config
    return min(1.0, (config.queued_seconds + config.generating_seconds) / DEFAULT_EXPECTED_SECONDS)


def settings_for(upstream: RunningSandbox | Upstream | None, root: Path, **overrides: Any) -> Settings:
    """Settings for a server on `upstream` (None: no key at all), its state under `root`, with `overrides`.

    Like `tests.conftest.server_env` for a subprocess: no output folder (finished videos go to the user's videos
    folder, a temporary one in tests), and the polling schedule scaled to the sandbox's timings.
    """
    values: dict[str, Any] = {"state_dir": root / "state", "log_level": "WARNING"}
    if isinstance(upstream, RunningSandbox):
        values |= {
            "api_key": SecretStr(upstream.state.config.api_key),
            "base_url": upstream.url,
            "poll_time_scale": poll_scale_for(upstream),
        }
    elif upstream is not None:
        values |= {"api_key": SecretStr(upstream.api_key), "base_url": upstream.url}
        values["poll_time_scale"] = DEFAULT_POLL_SCALE
    return Settings(**(values | overrides))


@dataclass(frozen=True)
class Served:
    """A server running in this process: the SDK client connected to it, and its app (storage, service)."""

    client: Client
    app: App

    @property
    def settings(self) -> Settings:
        return self.app.settings


@asynccontextmanager
async def serving(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    **client_options: Any,
) -> AsyncIterator[Served]:
    """The real server for `settings` in this process, with the SDK's `Client` connected to it (`client_options`:
    the protocol `mode`, callbacks, ...). `transport` and `sleep` go to the app (the client's HTTP and its waits)."""
    async with (
        open_app(settings, transport=transport, sleep=sleep) as app,
        Client(build_server(settings, app), **client_options) as client,
    ):
        yield Served(client, app)


class InProcessRawSession(RawSession):
    """JSON-RPC by hand to a server in this process, framed as stdio frames it: each message goes in as the line
    the server's stdio reader would parse, and comes out as the line its stdio writer would write."""

    def __init__(self, to_server: Any) -> None:
        super().__init__()
        self._to_server = to_server

    async def send(self, message: dict[str, Any]) -> None:
        parsed = types.jsonrpc_message_adapter.validate_json(json.dumps(message), by_name=False)
        await self._to_server.send(SessionMessage(parsed))

    async def _read(self, from_server: Any) -> None:
        async with from_server:
            async for item in from_server:
                if isinstance(item, SessionMessage):
                    self._take(json.loads(item.message.model_dump_json(by_alias=True, exclude_unset=True)))
        self._ended()


@asynccontextmanager
async def raw_in_process(server: MCPServer[Any]) -> AsyncIterator[InProcessRawSession]:
    """A raw JSON-RPC session with `server`, served as stdio serves it (one connection, its era set by the first
    request: the handshake or a 2026-07-28 request), its lifespan entered once for the connection."""
    lowlevel = server._lowlevel_server  # as pixverse_mcp.stdio does: mcp 2.3 has no public accessor
    async with (
        create_client_server_memory_streams() as ((from_server, to_server), (server_read, server_write)),
        lowlevel.lifespan(lowlevel) as lifespan_state,
        anyio.create_task_group() as group,
    ):
        served = anyio.Event()

        async def serve() -> None:
            try:
                await serve_dual_era_loop(
                    lowlevel,
                    server_read,
                    server_write,
                    lifespan_state=lifespan_state,
                    init_options=lowlevel.create_initialization_options(),
                )
            finally:
                served.set()

        session = InProcessRawSession(to_server)
        group.start_soon(serve)
        group.start_soon(session._read, from_server)
        try:
            yield session
        finally:
            await to_server.aclose()  # end of input: the serving loop ends, as stdio's does at EOF
            with anyio.move_on_after(SHUTDOWN_GRACE_SECONDS):
                await served.wait()
            group.cancel_scope.cancel()
