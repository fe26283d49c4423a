"""Protocol revisions over stdio and over Streamable HTTP: the server answers clients of both kinds (the same clients
in process: tests/unit/test_protocol_versions.py).

- handshake clients (`Client(mode="legacy")`: `initialize`), offering the newest handshake revision (2025-11-25) and
  an older one (2025-06-18; the SDK's client always offers its newest, so the test makes it offer the older one);
- 2026-07-28 clients (the SDK's default `mode="auto"`: `server/discover`).
Raw `initialize` requests show which revision the server echoes for every handshake revision and a newer offer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env, stdio_client
from tests.http_server import STATEFUL, STATELESS, HttpServer, sdk_client
from tests.unit.test_protocol_versions import CLIENT_KIND_IDS, CLIENT_KINDS, check_session

pytestmark = pytest.mark.anyio

TOKEN = "protocol-test-token"


# The servers of `hosted` (one per mode): behind a token.
HOSTED_ENV = {"PIXVERSE_MCP_AUTH_TOKEN": TOKEN}


@pytest.mark.parametrize(("mode", "offer", "expected"), CLIENT_KINDS, ids=CLIENT_KIND_IDS)
async def test_stdio_negotiates(
    shared_sandbox: RunningSandbox,
    tmp_path: Path,
    offering: Any,
    mode: str,
    offer: str | None,
    expected: str,
) -> None:
    offering(offer)
    async with stdio_client(server_env(shared_sandbox, tmp_path), mode=mode) as client:
        await check_session(client, expected, shared_sandbox)


@pytest.mark.parametrize("hosted", [STATEFUL, STATELESS], ids=[STATEFUL.id, STATELESS.id], indirect=True)
@pytest.mark.parametrize(("mode", "offer", "expected"), CLIENT_KINDS, ids=CLIENT_KIND_IDS)
async def test_streamable_http_negotiates(
    hosted: HttpServer, shared_sandbox: RunningSandbox, offering: Any, mode: str, offer: str | None, expected: str
) -> None:
    offering(offer)
    async with sdk_client(hosted, token=TOKEN, mode=mode) as client:
        await check_session(client, expected, shared_sandbox)


@asynccontextmanager
async def raw_http(server: HttpServer) -> AsyncIterator[httpx2.AsyncClient]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(base_url=server.base_url, headers=headers, timeout=15) as http:
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
