"""Protocol revisions: the server answers clients of both kinds, over stdio and over Streamable HTTP.

- handshake clients (`Client(mode="legacy")`: `initialize`), offering the newest handshake revision (2025-11-25) and
  an older one (2025-06-18; the SDK's client always offers its newest, so the test makes it offer the older one);
- 2026-07-28 clients (the SDK's default `mode="auto"`: `server/discover`).
Raw `initialize` requests show which revision the server echoes for every handshake revision and a newer offer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import mcp.client.session
import pytest
from mcp import Client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import FAST_SANDBOX, server_env, stdio_client
from tests.http_server import STATEFUL, STATELESS, HttpServer, Mode, sdk_client, served

pytestmark = pytest.mark.anyio

TOKEN = "protocol-test-token"
OLDER_HANDSHAKE_VERSION = "2025-06-18"
# (mode given to Client, the revision a legacy client offers, the revision expected back)
CLIENT_KINDS = [
    ("legacy", LATEST_HANDSHAKE_VERSION, LATEST_HANDSHAKE_VERSION),
    ("legacy", OLDER_HANDSHAKE_VERSION, OLDER_HANDSHAKE_VERSION),
    ("auto", None, LATEST_MODERN_VERSION),
]
CLIENT_KIND_IDS = [f"legacy-{LATEST_HANDSHAKE_VERSION}", f"legacy-{OLDER_HANDSHAKE_VERSION}", "auto"]


def test_the_expected_revisions_exist_in_this_sdk() -> None:
    assert LATEST_HANDSHAKE_VERSION == "2025-11-25"
    assert OLDER_HANDSHAKE_VERSION in HANDSHAKE_PROTOCOL_VERSIONS
    assert LATEST_MODERN_VERSION == "2026-07-28"


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[RunningSandbox]:
    with RunningSandbox(SandboxConfig(**vars(FAST_SANDBOX))) as running:
        yield running


@pytest.fixture(scope="module", params=[STATEFUL, STATELESS], ids=[STATEFUL.id, STATELESS.id])
def hosted(
    request: pytest.FixtureRequest, module_sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpServer]:
    mode: Mode = request.param
    tmp_path = tmp_path_factory.mktemp(mode.id)
    with served(server_env(module_sandbox, tmp_path, PIXVERSE_MCP_AUTH_TOKEN=TOKEN), tmp_path, mode) as server:
        yield server


@pytest.fixture
def offering(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the SDK's handshake client offer `version` in `initialize` instead of its newest."""

    def offer(version: str | None) -> None:
        if version is not None:
            monkeypatch.setattr(mcp.client.session, "LATEST_HANDSHAKE_VERSION", version)

    return offer


async def check_session(client: Client, expected_version: str, sandbox: RunningSandbox) -> None:
    """The negotiated revision, and that tools work at it (a create reaches the sandbox)."""
    assert client.protocol_version == expected_version
    if expected_version != LATEST_MODERN_VERSION:
        # The handshake names the server; a 2026-07-28 server may stay anonymous.
        assert client.server_info is not None
        assert client.server_info.name == "pixverse-mcp"
    tools = await client.list_tools()
    assert "generate_video_blocking" in {tool.name for tool in tools.tools}
    before = sandbox.state.stats()["creates"]
    result = await client.call_tool("create_video", {"prompt": f"a tram at dusk, protocol {expected_version}"})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["generation_id"]
    assert sandbox.state.stats()["creates"] == before + 1


@pytest.mark.parametrize(("mode", "offer", "expected"), CLIENT_KINDS, ids=CLIENT_KIND_IDS)
async def test_stdio_negotiates(
    module_sandbox: RunningSandbox,
    tmp_path: Path,
    offering: Any,
    mode: str,
    offer: str | None,
    expected: str,
) -> None:
    offering(offer)
    async with stdio_client(server_env(module_sandbox, tmp_path), mode=mode) as client:
        await check_session(client, expected, module_sandbox)


@pytest.mark.parametrize(("mode", "offer", "expected"), CLIENT_KINDS, ids=CLIENT_KIND_IDS)
async def test_streamable_http_negotiates(
    hosted: HttpServer, module_sandbox: RunningSandbox, offering: Any, mode: str, offer: str | None, expected: str
) -> None:
    offering(offer)
    async with sdk_client(hosted, token=TOKEN, mode=mode) as client:
        await check_session(client, expected, module_sandbox)


@asynccontextmanager
async def raw_http(server: HttpServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=15) as http:
        yield http


@pytest.mark.parametrize("hosted", [STATELESS], ids=[STATELESS.id], indirect=True)
@pytest.mark.parametrize(
    ("offered", "answered"),
    [*((version, version) for version in HANDSHAKE_PROTOCOL_VERSIONS), ("2099-01-01", LATEST_HANDSHAKE_VERSION)],
)
async def test_raw_initialize_echoes_each_handshake_revision(hosted: HttpServer, offered: str, answered: str) -> None:
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": offered, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
    async with raw_http(hosted) as http:
        response = await http.post("/mcp", json=message)

    assert response.status_code == 200, response.text
    assert response.json()["result"]["protocolVersion"] == answered
