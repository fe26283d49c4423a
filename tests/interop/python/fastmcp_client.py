"""FastMCP's `Client` over stdio: lists the tools and calls them as a FastMCP application does, which parses each
structured result against the tool's output schema into `.data`, and raises `ToolError` with the server's text
when a result is an error (`raise_on_error`, the default).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from common import REFUSED_ARGUMENTS, REFUSED_TOOL, VIDEO_ARGUMENTS, VIDEO_TOOL, report, server_command, server_env
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from fastmcp.exceptions import ToolError


def as_json(data: Any) -> Any:
    """`.data` as plain JSON: FastMCP builds a dataclass from the output schema."""
    return dataclasses.asdict(data) if dataclasses.is_dataclass(data) and not isinstance(data, type) else data


async def main() -> None:
    command, arguments = server_command()
    async with Client(StdioTransport(command, arguments, env=server_env()), timeout=60) as client:
        tools = await client.list_tools()
        video = await client.call_tool(VIDEO_TOOL, VIDEO_ARGUMENTS)
        try:
            await client.call_tool(REFUSED_TOOL, REFUSED_ARGUMENTS)
            refusal = "no ToolError was raised"
        except ToolError as exc:
            refusal = str(exc)
    report(
        tools=[tool.name for tool in tools],
        video=json.dumps(as_json(video.data)),
        video_data_type=type(video.data).__name__,
        refusal=refusal,
    )


if __name__ == "__main__":
    asyncio.run(main())
