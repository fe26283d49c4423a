"""The real server over stdio, driven by the SDK's Client, against the sandbox over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env, stdio_client

pytestmark = pytest.mark.anyio


async def test_blocking_generation_returns_a_completed_video_url(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with stdio_client(server_env(sandbox, tmp_path)) as client:
        result = await client.call_tool("generate_video_blocking", {"prompt": "a red fox running through snow"})

    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["status"] == "completed"
    assert result.structured_content["video_url"].startswith(sandbox.url + "/_sandbox/videos/")
    assert sandbox.state.stats()["creates"] == 1
