"""Drive pixverse-mcp over stdio with the MCP SDK's client: list the tools, generate a video, print its URL.

python examples/client_stdio.py                # against the built-in sandbox (no key, no credits)
python examples/client_stdio.py --real "..."   # against the AI/ML API (needs AIMLAPI_API_KEY)
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio
from mcp import Client, StdioServerParameters


async def main(prompt: str, real: bool) -> int:
    server_args = ["-m", "pixverse_mcp"] + ([] if real else ["--sandbox"])
    params = StdioServerParameters(command=sys.executable, args=server_args, env=dict(os.environ))

    async def show_progress(progress: float, total: float | None, message: str | None) -> None:
        print(f"  progress: {message}", file=sys.stderr)

    async with Client(params) as client:
        tools = await client.list_tools()
        print("tools:", ", ".join(tool.name for tool in tools.tools), file=sys.stderr)
        result = await client.call_tool("generate_video_blocking", {"prompt": prompt}, progress_callback=show_progress)
        state = result.structured_content or {}
        while not result.is_error and not state.get("done"):
            # Not ready within the wait budget: continue with the id, exactly as the result says.
            arguments = {"generation_id": state["generation_id"], "wait_seconds": 50}
            result = await client.call_tool("get_video_status", arguments, progress_callback=show_progress)
            state = result.structured_content or {}
    if result.is_error:
        print(result.content[0].text if result.content else "error", file=sys.stderr)
        return 1
    print(state["video_url"])
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="a paper boat drifting down a rainy street, cinematic")
    parser.add_argument("--real", action="store_true", help="use the real AI/ML API instead of the sandbox")
    options = parser.parse_args()
    sys.exit(anyio.run(main, options.prompt, options.real))
