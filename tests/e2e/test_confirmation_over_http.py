"""Confirmation (elicitation) before each paid create over Streamable HTTP, stateful and stateless, on both protocol
eras: the question reaches an HTTP client and only what it accepts is created. (The cap and the confirmation's
other cases are tested in process: tests/unit/test_spending_and_confirmation.py.)
"""

from __future__ import annotations

from pathlib import Path

import mcp_types as types
import pytest

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env
from tests.http_server import STATEFUL, STATELESS, Mode, sdk_client, served
from tests.stdio_support import creates, structured
from tests.unit.test_spending_and_confirmation import answering, prompt

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("mode", "era", "asks"),
    [(STATEFUL, "legacy", True), (STATEFUL, "2026-07-28", True), (STATELESS, "2026-07-28", True)],
    ids=["stateful-legacy", "stateful-2026", "stateless-2026"],
)
async def test_confirmation_over_streamable_http(
    sandbox: RunningSandbox, tmp_path: Path, mode: Mode, era: str, asks: bool
) -> None:
    env = server_env(sandbox, tmp_path, PIXVERSE_MCP_CONFIRM_PAID="true", PIXVERSE_MCP_AUTH_TOKEN="a" * 32)
    with served(env, tmp_path, mode) as server:
        declined: list[types.ElicitRequestParams] = []
        async with sdk_client(
            server, token="a" * 32, mode=era, elicitation_callback=answering("decline", declined)
        ) as client:
            refused = await client.call_tool("create_video", {"prompt": prompt("a lighthouse")})
        accepted: list[types.ElicitRequestParams] = []
        async with sdk_client(
            server, token="a" * 32, mode=era, elicitation_callback=answering("accept", accepted)
        ) as client:
            created = await client.call_tool("create_video", {"prompt": prompt("a lighthouse")})

    assert (len(declined), len(accepted)) == ((1, 1) if asks else (0, 0))
    assert structured(refused)["status"] == "not_created"
    assert structured(created)["status"] in ("queued", "generating")
    assert creates(sandbox) == 1
