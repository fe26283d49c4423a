"""Pydantic AI v2: an `Agent` with our server as an `MCPToolset` (over a FastMCP `Client` on stdio), run by the
agent's own loop with a `FunctionModel` standing in for the LLM (no request leaves the machine).

The stand-in sees the tool definitions the agent would send to a model, calls the video tool and then a refused
one, and records what the agent fed back: the tool's return and, for the refusal, the retry prompt (an `isError`
result becomes `ModelRetry`, whose text the model reads).
"""

from __future__ import annotations

import asyncio
from typing import Any

from common import REFUSED_ARGUMENTS, REFUSED_TOOL, VIDEO_ARGUMENTS, VIDEO_TOOL, report, server_command, server_env
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

seen: dict[str, Any] = {"tools": [], "fed_back": []}


def stand_in(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    seen["tools"] = [{"name": tool.name, "parameters": tool.parameters_json_schema} for tool in info.function_tools]
    last = messages[-1]
    if isinstance(last, ModelRequest):
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                seen["fed_back"].append(part.model_response_str())
            elif isinstance(part, RetryPromptPart):
                seen["fed_back"].append(part.model_response())
    turn = sum(isinstance(message, ModelResponse) for message in messages)
    if turn == 0:
        return ModelResponse(parts=[ToolCallPart(VIDEO_TOOL, dict(VIDEO_ARGUMENTS))])
    if turn == 1:
        return ModelResponse(parts=[ToolCallPart(REFUSED_TOOL, dict(REFUSED_ARGUMENTS))])
    return ModelResponse(parts=[TextPart("done")])


async def main() -> None:
    command, arguments = server_command()
    client: Client[Any] = Client(StdioTransport(command, arguments, env=server_env()), timeout=60)
    agent = Agent(FunctionModel(stand_in), toolsets=[MCPToolset(client)])
    result = await agent.run("Make a short video of a paper boat, then one of a kite in 4k.")
    report(
        tools=[tool["name"] for tool in seen["tools"]],
        definitions=seen["tools"],
        video=seen["fed_back"][0],
        refusal=seen["fed_back"][1],
        final_text=result.output,
    )


if __name__ == "__main__":
    asyncio.run(main())
