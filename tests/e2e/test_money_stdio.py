"""Money promises over real stdio, with a client written by hand: a 2025-era client that never answers the question
before paying gets its result within the call's budget, and a bad setting stops the command line with exit 3."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env
from tests.stdio_support import RawStdioServer

pytestmark = pytest.mark.anyio

BUDGET_SECONDS = 3


async def test_a_question_nobody_answers_ends_within_the_budget(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = server_env(
        sandbox, tmp_path, PIXVERSE_MCP_CONFIRM_PAID="true", PIXVERSE_MCP_WAIT_BUDGET_SECONDS=str(BUDGET_SECONDS)
    )
    async with RawStdioServer.start(env) as server:
        await server.initialize(capabilities={"elicitation": {"form": {}}})
        began = time.monotonic()
        call = await server.send_request(
            "tools/call", {"name": "generate_video_blocking", "arguments": {"prompt": "nobody answers"}}
        )
        asked = await server.wait_for("the question", lambda message: message.get("method") == "elicitation/create")
        response = await server.response(call)  # the question is never answered
        took = time.monotonic() - began

    assert "Estimated cost" in asked["params"]["message"]
    assert took <= BUDGET_SECONDS + 5
    assert response["result"]["structuredContent"]["status"] == "not_created"
    assert sandbox.state.stats()["creates"] == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PIXVERSE_MCP_LOG_LEVEL", "verbose"), ("PIXVERSE_MCP_TASK_TTL_SECONDS", "inf"), ("PIXVERSE_MCP_SAVE", "maybe")],
)
def test_an_invalid_setting_stops_the_command_with_exit_3_naming_it(tmp_path: Path, variable: str, value: str) -> None:
    env = {**server_env(None, tmp_path), variable: value}
    finished = subprocess.run(
        [sys.executable, "-m", "pixverse_mcp", "list"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert finished.returncode == 3
    assert variable in finished.stderr
