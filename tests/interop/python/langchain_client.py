"""LangChain's MCP adapters: `MultiServerMCPClient(...).get_tools()` over stdio, each tool then called the way an
agent's tool node calls it, `ainvoke` with the model's tool call, which returns the `ToolMessage` the model reads.

The tools are also bound the way `ChatModel.bind_tools` binds them for OpenAI (`convert_to_openai_tool`, strict),
so a schema LangChain cannot convert fails here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from common import REFUSED_ARGUMENTS, REFUSED_TOOL, VIDEO_ARGUMENTS, VIDEO_TOOL, report, server_command, server_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_mcp_adapters.client import MultiServerMCPClient


async def main() -> None:
    command, arguments = server_command()
    client = MultiServerMCPClient(
        {"pixverse": {"transport": "stdio", "command": command, "args": arguments, "env": server_env()}}
    )
    tools = {tool.name: tool for tool in await client.get_tools()}
    bound = {name: convert_to_openai_tool(tool, strict=True) for name, tool in tools.items()}

    async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        message = await tools[name].ainvoke(
            {"name": name, "args": arguments, "id": f"call_{name}", "type": "tool_call"}
        )
        # The artifact (an `MCPToolArtifact`) carries the structured content, next to what the model reads.
        structured = (message.artifact or {}).get("structured_content")
        text = "\n".join(block.get("text", "") for block in message.content if isinstance(block, dict))
        return {"text": text or str(message.content), "status": message.status, "structured": structured}

    video, refusal = await call(VIDEO_TOOL, VIDEO_ARGUMENTS), await call(REFUSED_TOOL, REFUSED_ARGUMENTS)
    report(
        tools=list(tools),
        bound=bound,
        video=video["text"],
        video_structured=video["structured"],
        refusal=refusal["text"],
        refusal_status=refusal["status"],
    )


if __name__ == "__main__":
    asyncio.run(main())
