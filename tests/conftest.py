"""Shared fixtures: a real sandbox over HTTP, and the real server as a subprocess over stdio."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from pixverse_mcp.models import AnyRequest
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox, SandboxConfig
from pixverse_mcp.service import Finished, Outcome, VideoService, WaitEvent
from tests import result_schemas
from tests.postgres_server import RunningPostgres

# Sandbox timings for tests: a generation takes about 1.3 s instead of 35 s.
FAST_SANDBOX = SandboxConfig(queued_seconds=0.3, generating_seconds=1.0)
# The polling schedule scaled the same way (1.3 s / 35 s).
FAST_POLL_SCALE = "0.04"


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


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A fresh sandbox on a free loopback port, serving real HTTP."""
    with RunningSandbox(SandboxConfig(**vars(FAST_SANDBOX))) as running:
        yield running


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[RunningSandbox]:
    """One fast sandbox for a whole test module (tests compare request-count deltas, not totals)."""
    with RunningSandbox(SandboxConfig(**vars(FAST_SANDBOX))) as running:
        yield running


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


@asynccontextmanager
async def stdio_client(env: dict[str, str], *args: str, **client_options: object) -> AsyncIterator[Client]:
    """The real server, started as `python -m pixverse_mcp` over stdio, with the SDK's Client connected to it."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "pixverse_mcp", *args], env=env)
    async with Client(params, **client_options) as client:  # type: ignore[arg-type]
        yield client


@pytest.fixture(scope="session")
def postgres() -> Iterator[RunningPostgres]:
    """A real PostgreSQL server for the whole session (each test takes a fresh database on it)."""
    server = RunningPostgres.start()
    try:
        yield server
    finally:
        server.stop()


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
