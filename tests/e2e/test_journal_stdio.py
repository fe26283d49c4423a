"""The journal over stdio: a generation survives the server being killed mid-wait, and a new server on the same state
folder finishes it without paying for it again. (Listing, the resource and the size of a long listing are tested in
process: tests/unit/test_journal.py.)
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from pixverse_mcp.sandbox import RunningSandbox, SandboxConfig
from tests.conftest import server_env, stdio_client
from tests.stdio_support import (
    HOST_READ_TIMEOUT_SECONDS,
    PROTOCOL_BOUND_SECONDS,
    RawStdioServer,
    call,
    creates,
    structured,
    text_of,
)

pytestmark = pytest.mark.anyio


async def test_a_generation_outlives_a_killed_server_and_a_new_one_finishes_it(tmp_path: Path) -> None:
    prompt = "a lighthouse keeper climbing the stairs"
    with RunningSandbox(SandboxConfig(queued_seconds=0.3, generating_seconds=3.0)) as sandbox:
        env = server_env(sandbox, tmp_path)

        # A first server starts a blocking call and is killed (SIGKILL: no chance to clean up) while it waits.
        async with RawStdioServer.start(env) as first:
            await first.initialize()
            await first.send_request(
                "tools/call",
                {
                    "name": "generate_video_blocking",
                    "arguments": {"prompt": prompt, "timeout_seconds": 60},
                    "_meta": {"progressToken": "killed"},
                },
            )
            await first.wait_for("a progress notification", lambda message: bool(first.progress("killed")))
            first.process.kill()
            with anyio.fail_after(PROTOCOL_BOUND_SECONDS):
                await first.process.wait()
        assert creates(sandbox) == 1
        [generation_id] = sandbox.state.generations

        # A new server on the same state folder knows it, and finishes it.
        async with stdio_client(env, read_timeout_seconds=HOST_READ_TIMEOUT_SECONDS) as second:
            listing = await call(second, "list_videos", {})
            finished = await call(second, "get_video_status", {"generation_id": generation_id, "wait_seconds": 30})

        videos = structured(listing)["videos"]
        assert [video["generation_id"] for video in videos] == [generation_id]
        assert videos[0]["prompt"] == prompt
        assert videos[0]["status"] in ("queued", "generating")
        assert not finished.is_error, text_of(finished)
        assert structured(finished)["status"] == "completed"
        assert structured(finished)["video_url"]
        assert creates(sandbox) == 1, "the generation was paid for twice"
