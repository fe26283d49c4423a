"""stdio hygiene (issue 8): over stdio, stdout is the protocol channel. Every line the server writes there must be a
JSON-RPC 2.0 message, however much it logs (logs belong on stderr).

The session is driven by hand over raw pipes, so nothing between the server and the test can hide a stray line.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from pixverse_mcp.sandbox import RunningSandbox
from tests.conftest import server_env
from tests.stdio_support import PROTOCOL_BOUND_SECONDS, RawStdioServer

pytestmark = pytest.mark.anyio


async def test_every_stdout_line_is_a_json_rpc_message_and_logs_go_to_stderr(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = server_env(sandbox, tmp_path, PIXVERSE_MCP_LOG_LEVEL="DEBUG")
    async with RawStdioServer.start(env) as server:
        initialized = await server.initialize("2025-11-25")
        assert initialized["result"]["protocolVersion"] == "2025-11-25"

        listed = await server.request("tools/list", {})
        assert {tool["name"] for tool in listed["result"]["tools"]} >= {"generate_video_blocking", "list_videos"}

        generated = await server.request(
            "tools/call",
            {
                "name": "generate_video_blocking",
                "arguments": {"prompt": "a lighthouse in a storm, seen from the sea"},
                "_meta": {"progressToken": "hygiene-1"},
            },
        )
        assert generated["result"]["structuredContent"]["status"] == "completed"
        assert server.progress("hygiene-1"), "no progress notification for the token sent in _meta"

        bad = await server.request("tools/call", {"name": "generate_video_blocking", "arguments": {"prompt": ""}})
        assert bad["result"]["isError"] is True

        # Closing stdin ends the session: the server exits on its own, having flushed everything it had to say.
        await server.close_stdin()
        with anyio.fail_after(PROTOCOL_BOUND_SECONDS):
            await server.process.wait()

    assert server.process.returncode == 0
    assert server.stdout_lines, "the server wrote nothing to stdout"
    for number, line in enumerate(server.stdout_lines, start=1):
        try:
            message = json.loads(line)
        except ValueError:
            pytest.fail(f"stdout line {number} is not JSON: {line[:200]!r}")
        assert isinstance(message, dict), f"stdout line {number} is not a JSON object: {line[:200]!r}"
        assert message.get("jsonrpc") == "2.0", f"stdout line {number} is not JSON-RPC 2.0: {line[:200]!r}"
        assert "method" in message or "id" in message, (
            f"stdout line {number} is neither a request/notification nor a response"
        )

    log = server.stderr.decode(errors="replace")
    assert "DEBUG" in log, "no DEBUG log line reached stderr"
    assert "pixverse_mcp" in log, "the package's own log lines are missing from stderr"
