"""The OpenAI Agents SDK: an `Agent` with our server as an MCP server, its tools converted to strict function tools
(`mcp_config={"convert_schemas_to_strict": True}`, which goes through `MCPUtil.to_function_tool(...,
convert_schemas_to_strict=True)`), run by the SDK's own `Runner`.

The model is a stand-in (no request leaves the machine): it sees exactly the tools the SDK would send to OpenAI,
answers with function calls the way a strict-mode model must (every property present, null where allowed), and
records the tool outputs the runner feeds back to it, which is what the model would read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agents import Agent, FunctionTool, Model, ModelResponse, Runner, Usage, set_tracing_disabled
from agents.mcp import MCPServerStdio
from common import REFUSED_ARGUMENTS, REFUSED_TOOL, VIDEO_ARGUMENTS, VIDEO_TOOL, report, server_command, server_env
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText


def text_of(output: Any) -> str:
    """A tool output as the model reads it: plain text, or the text of each input item."""
    return output if isinstance(output, str) else "\n".join(item.get("text", "") for item in output)


def admits_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(admits_null(option) for option in schema.get("anyOf", []))


class StrictStandInModel(Model):
    """Calls the video tool, then the refused one, then says it is done; keeps what it was given."""

    def __init__(self, defaults: dict[str, dict[str, Any]]) -> None:
        self.defaults = defaults  # each tool's published defaults, for the properties a strict model must fill
        self.calls = [(VIDEO_TOOL, VIDEO_ARGUMENTS), (REFUSED_TOOL, REFUSED_ARGUMENTS)]
        self.tools: list[Any] = []
        self.outputs: list[str] = []

    def strict_arguments(self, name: str, given: dict[str, Any]) -> dict[str, Any]:
        tool = next(tool for tool in self.tools if tool.name == name)
        return {
            key: given[key] if key in given else None if admits_null(schema) else self.defaults[name][key]
            for key, schema in tool.params_json_schema["properties"].items()
        }

    async def get_response(
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        self.tools = tools
        if isinstance(input, list):
            self.outputs += [item["output"] for item in input if item.get("type") == "function_call_output"][
                len(self.outputs) :
            ]
        if self.calls:
            name, given = self.calls.pop(0)
            arguments = json.dumps(self.strict_arguments(name, given))
            item: Any = ResponseFunctionToolCall(
                type="function_call",
                id=f"fc_{name}",
                call_id=f"call_{name}",
                name=name,
                arguments=arguments,
                status="completed",
            )
        else:
            text = ResponseOutputText(type="output_text", text="done", annotations=[])
            item = ResponseOutputMessage(
                type="message", id="msg_done", role="assistant", status="completed", content=[text]
            )
        return ModelResponse(output=[item], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the runner is not streamed here")


async def main() -> None:
    set_tracing_disabled(True)  # traces would go to OpenAI
    command, arguments = server_command()
    params = {"command": command, "args": arguments, "env": server_env()}
    async with MCPServerStdio(params=params, client_session_timeout_seconds=60) as server:
        listed = await server.list_tools()
        defaults = {
            tool.name: {key: schema.get("default") for key, schema in tool.input_schema["properties"].items()}
            for tool in listed
        }
        model = StrictStandInModel(defaults)
        agent = Agent(
            name="video maker", model=model, mcp_servers=[server], mcp_config={"convert_schemas_to_strict": True}
        )
        result = await Runner.run(agent, "Make a short video of a paper boat, then one of a kite in 4k.")
    function_tools = [tool for tool in model.tools if isinstance(tool, FunctionTool)]
    report(
        tools=[tool.name for tool in function_tools],
        strict={tool.name: tool.strict_json_schema for tool in function_tools},
        strict_schemas={tool.name: tool.params_json_schema for tool in function_tools},
        video=text_of(model.outputs[0]),
        refusal=text_of(model.outputs[1]),
        final_text=result.final_output,
    )


if __name__ == "__main__":
    asyncio.run(main())
