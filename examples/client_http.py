"""Drive a pixverse-mcp server over Streamable HTTP, sending its bearer token.

Start a server first, e.g.:
    PIXVERSE_MCP_AUTH_TOKEN=s3cret pixverse-mcp --sandbox --transport streamable-http --port 8000
then:
    PIXVERSE_MCP_AUTH_TOKEN=s3cret python examples/client_http.py http://127.0.0.1:8000/mcp
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, prompt: str) -> int:
    token = os.environ.get("PIXVERSE_MCP_AUTH_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # The SDK's HTTP client keeps httpx's 5 s default unless told otherwise: a blocking call waits up to ~50 s.
    http_client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120.0, connect=10.0))
    async with http_client, Client(streamable_http_client(url, http_client=http_client)) as client:
        result = await client.call_tool("generate_video_blocking", {"prompt": prompt})
        state = result.structured_content or {}
        while not result.is_error and not state.get("done"):
            arguments = {"generation_id": state["generation_id"], "wait_seconds": 50}
            result = await client.call_tool("get_video_status", arguments)
            state = result.structured_content or {}
    if result.is_error:
        print(result.content[0].text if result.content else "error", file=sys.stderr)
        return 1
    print(state["video_url"])
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000/mcp")
    parser.add_argument("prompt", nargs="?", default="a lighthouse in a storm at night, waves crashing")
    options = parser.parse_args()
    sys.exit(anyio.run(main, options.url, options.prompt))
