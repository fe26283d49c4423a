"""Shared fixtures: the one place sandboxes and servers are made for tests.

The factories:
- sandboxes (`sandbox_factory`, and `sandbox` / `shared_sandbox` for one per test / per module): a real sandbox over
  HTTP on a free loopback port, with the timings asked for. A module that needs other timings for its `sandbox` and
  `shared_sandbox` says so once, as `SANDBOX = SandboxConfig(...)` at module level;
- the server in process (`serve`, and `shared_server` / `client` / `app` for one per module): `build_server` over
  `open_app` with the SDK's in-memory `Client`, settings from `tests.in_process.settings_for` plus overrides. A module
  gives its shared server's setting overrides as `SERVER_SETTINGS = {...}` and client options as `CLIENT_OPTIONS`;
- the server as a subprocess over stdio (`stdio_client`, with the environment from `server_env`);
- the server as a subprocess over HTTP (`hosting` for any mode and environment, and `hosted`, one per HTTP mode a
  test is parametrized with indirectly, with the module's `HOSTED_ENV`).

Every tool result the SDK client receives, in process or over a transport, is checked against the tool's published
outputSchema (`every_result_matches_its_output_schema`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, aclosing, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import mcp.client.session
import pytest
from mcp import Client, StdioServerParameters

from pixverse_mcp.app import App
from pixverse_mcp.models import AnyRequest
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox, SandboxConfig
from pixverse_mcp.service import Finished, Outcome, VideoService, WaitEvent
from tests import result_schemas
from tests.http_server import STATEFUL, HttpServer, Mode, served
from tests.in_process import Served, Upstream, serving, settings_for
from tests.postgres_server import RunningPostgres

# Sandbox timings for tests: a generation takes about 1.3 s instead of 35 s.
FAST_SANDBOX = SandboxConfig(queued_seconds=0.3, generating_seconds=1.0)
# The polling schedule scaled the same way (1.3 s / 35 s).
FAST_POLL_SCALE = "0.04"

SandboxFactory = Callable[..., RunningSandbox]
ServeFactory = Callable[..., AbstractAsyncContextManager[Served]]
HostingFactory = Callable[..., HttpServer]
OfferFactory = Callable[[str | None], None]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """asyncio, for the whole session, so module-scoped async fixtures (one server per module) work."""
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def videos_stay_in_the_test_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Finished videos are saved by default into the user's videos folder: in tests, a temporary one."""
    previous = os.environ.get("XDG_VIDEOS_DIR")
    os.environ["XDG_VIDEOS_DIR"] = str(tmp_path_factory.mktemp("user-videos"))
    try:
        yield
    finally:
        if previous is None:
            del os.environ["XDG_VIDEOS_DIR"]
        else:
            os.environ["XDG_VIDEOS_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def every_result_matches_its_output_schema() -> Iterator[None]:
    """Check every tool result the SDK client receives in any test against the tool's published outputSchema."""
    original = Client.call_tool
    Client.call_tool = result_schemas.checking_call_tool(original)  # type: ignore[method-assign]
    try:
        yield
    finally:
        Client.call_tool = original  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def each_schema_is_checked_against_its_metaschema_once() -> Iterator[None]:
    """The SDK client checks each tool's outputSchema against the JSON Schema metaschema once per session and tool,
    which costs far more than validating a result; with a new session in most tests, remember the schemas that
    passed (a schema that fails is checked, and refused, every time)."""
    restore = result_schemas.remember_valid_schemas()
    try:
        yield
    finally:
        restore()


# --- sandboxes ---------------------------------------------------------------------------------------------------


def module_sandbox_config(request: pytest.FixtureRequest) -> SandboxConfig:
    """The requesting module's `SANDBOX` timings, or `FAST_SANDBOX`: a copy, which a test may change."""
    return dataclasses.replace(getattr(request.module, "SANDBOX", FAST_SANDBOX))


@pytest.fixture
def sandbox_factory() -> Iterator[SandboxFactory]:
    """`sandbox_factory(config=FAST_SANDBOX, **fields)`: a fresh sandbox on a free loopback port, serving real HTTP
    with `config` changed by `fields` (timings, prices, balance, ...); each one is stopped when the test ends."""
    with ExitStack() as stack:

        def start(config: SandboxConfig = FAST_SANDBOX, /, **fields: Any) -> RunningSandbox:
            return stack.enter_context(RunningSandbox(dataclasses.replace(config, **fields)))

        yield start


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, sandbox_factory: SandboxFactory) -> RunningSandbox:
    """A fresh sandbox for this test (the module's `SANDBOX` timings, or `FAST_SANDBOX`)."""
    return sandbox_factory(module_sandbox_config(request))


@pytest.fixture(scope="module")
def shared_sandbox(request: pytest.FixtureRequest) -> Iterator[RunningSandbox]:
    """One sandbox for a whole test module (the module's `SANDBOX` timings, or `FAST_SANDBOX`); its tests compare
    request-count deltas, not totals, or reset it."""
    with RunningSandbox(module_sandbox_config(request)) as running:
        yield running


@pytest.fixture
def reset_sandbox(shared_sandbox: RunningSandbox) -> RunningSandbox:
    """The module's sandbox, reset for this test: no generations, no queued faults, zeroed counters."""
    shared_sandbox.state.reset()
    return shared_sandbox


# --- the server in process ---------------------------------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path) -> ServeFactory:
    """`async with serve(upstream, **setting_overrides) as served:` the real server in this process on `upstream` (a
    sandbox, the hostile upstream, or None for no key), its state under this test's tmp_path; `served.client` is the
    SDK's in-memory `Client`, `served.app` the app (storage, service). `client_options` (a dict) go to the `Client`,
    `transport` and `sleep` to the app."""

    def start(
        upstream: RunningSandbox | Upstream | None,
        *,
        client_options: dict[str, Any] | None = None,
        root: Path = tmp_path,
        **overrides: Any,
    ) -> AbstractAsyncContextManager[Served]:
        transport, sleep = overrides.pop("transport", None), overrides.pop("sleep", None)
        app_options = {"transport": transport} | ({"sleep": sleep} if sleep is not None else {})
        return serving(settings_for(upstream, root, **overrides), **app_options, **(client_options or {}))

    return start


@pytest.fixture(scope="module")
async def shared_server(
    request: pytest.FixtureRequest, shared_sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    """One server in process for a whole module, on its `shared_sandbox`, with the module's `SERVER_SETTINGS`
    overrides and `CLIENT_OPTIONS`."""
    root = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    settings = settings_for(shared_sandbox, root, **getattr(request.module, "SERVER_SETTINGS", {}))
    async with serving(settings, **getattr(request.module, "CLIENT_OPTIONS", {})) as running:
        yield running


@pytest.fixture(scope="module")
def client(shared_server: Served) -> Client:
    """The SDK client of the module's shared in-process server."""
    return shared_server.client


@pytest.fixture(scope="module")
def app(shared_server: Served) -> App:
    """The app (storage, service, settings) of the module's shared in-process server."""
    return shared_server.app


@pytest.fixture
def offering(monkeypatch: pytest.MonkeyPatch) -> OfferFactory:
    """`offering(version)`: the SDK's handshake client offers `version` in `initialize` instead of its newest (None:
    its newest), for this test."""

    def offer(version: str | None) -> None:
        if version is not None:
            monkeypatch.setattr(mcp.client.session, "LATEST_HANDSHAKE_VERSION", version)

    return offer


# --- the server as a subprocess: stdio ---------------------------------------------------------------------------


def server_env(sandbox: RunningSandbox | None, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for a server subprocess pointed at `sandbox` (no key when sandbox is None)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PIXVERSE_MCP_POLL_TIME_SCALE": FAST_POLL_SCALE,
        "PIXVERSE_MCP_STATE_DIR": str(tmp_path / "state"),
        "PIXVERSE_MCP_LOG_LEVEL": "DEBUG",
        "XDG_VIDEOS_DIR": str(tmp_path / "user-videos"),  # where videos go by default, as in a user's home
    }
    if sandbox is not None:
        env["AIMLAPI_API_KEY"] = SANDBOX_API_KEY
        env["AIMLAPI_BASE_URL"] = sandbox.url
    env.update(extra)
    return env


@contextmanager
def replicas(
    count: int, sandbox: RunningSandbox | None, database_url: str, tmp_path: Path, *, token: str, **extra: str
) -> Iterator[list[HttpServer]]:
    """`count` HTTP server processes sharing `database_url` (replicas behind a load balancer), each with its own state
    directory and log; stopped at the end."""
    with ExitStack() as stack:
        servers = []
        for index in range(count):
            folder = tmp_path / f"replica-{index}"
            env = server_env(
                sandbox, folder, PIXVERSE_MCP_DATABASE_URL=database_url, PIXVERSE_MCP_AUTH_TOKEN=token, **extra
            )
            servers.append(stack.enter_context(served(env, folder, STATEFUL)))
        yield servers


@asynccontextmanager
async def stdio_client(env: dict[str, str], *args: str, **client_options: object) -> AsyncIterator[Client]:
    """The real server, started as `python -m pixverse_mcp` over stdio, with the SDK's Client connected to it."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "pixverse_mcp", *args], env=env)
    async with Client(params, **client_options) as client:  # type: ignore[arg-type]
        yield client


# --- the server as a subprocess: HTTP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hosting(shared_sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostingFactory]:
    """`hosting(mode=STATEFUL, *cli_args, sandbox=shared_sandbox, **env)`: the real server serving `mode` over HTTP on
    a free port (a subprocess, its environment `server_env` plus `env`); each one is stopped when the module ends."""
    with ExitStack() as stack:

        def host(
            mode: Mode = STATEFUL, *cli_args: str, sandbox: RunningSandbox | None = shared_sandbox, **env: str
        ) -> HttpServer:
            root = tmp_path_factory.mktemp(mode.id)
            return stack.enter_context(served(server_env(sandbox, root, **env), root, mode, *cli_args))

        yield host


@pytest.fixture(scope="module")
def hosted(
    request: pytest.FixtureRequest, shared_sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpServer]:
    """The real server over the HTTP mode the test is parametrized with (`indirect`), on the module's sandbox, with
    the module's `HOSTED_ENV`; one per mode for the whole module."""
    mode: Mode = request.param
    root = tmp_path_factory.mktemp(mode.id)
    env = server_env(shared_sandbox, root, **getattr(request.module, "HOSTED_ENV", {}))
    with served(env, root, mode) as server:
        yield server


# --- storage -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[RunningPostgres]:
    """A real PostgreSQL server for the whole session (each test takes a fresh database on it)."""
    server = RunningPostgres.start()
    try:
        yield server
    finally:
        server.stop()


# --- the service -------------------------------------------------------------------------------------------------


async def generate(service: VideoService, request: AnyRequest, *, timeout: float, force_new: bool = False) -> Outcome:
    """What a blocking call does, through the service: prepare, start (or re-attach), wait, and the outcome."""
    started = await service.start(await service.prepare(request), timeout=timeout, force_new=force_new)
    return await outcome_of(service.wait(started, timeout=timeout))


async def outcome_of(events: AsyncGenerator[WaitEvent, None]) -> Outcome:
    """The outcome at the end of a wait's events."""
    async with aclosing(events):
        async for event in events:
            if isinstance(event, Finished):
                return event.outcome
    raise AssertionError("a wait always ends with its outcome")
