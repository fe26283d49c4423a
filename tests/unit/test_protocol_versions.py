"""Protocol revisions, in process: the server answers clients of both kinds.

- handshake clients (`Client(mode="legacy")`: `initialize` over JSON-RPC streams), offering the newest handshake
  revision (2025-11-25) and an older one (2025-06-18; the SDK's client always offers its newest, so the test makes
  it offer the older one);
- 2026-07-28 clients (the SDK's default `mode="auto"`).
The same clients over stdio and Streamable HTTP, and raw `initialize` requests: tests/e2e/test_protocol_versions.py.
"""

from __future__ import annotations

import pytest
from mcp import Client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import OfferFactory, ServeFactory

pytestmark = pytest.mark.anyio

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
async def test_in_process_negotiates(
    shared_sandbox: RunningSandbox,
    serve: ServeFactory,
    offering: OfferFactory,
    mode: str,
    offer: str | None,
    expected: str,
) -> None:
    offering(offer)
    async with serve(shared_sandbox, client_options={"mode": mode}) as served:
        await check_session(served.client, expected, shared_sandbox)
