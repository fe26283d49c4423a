"""google-genai's MCP support: a real `mcp.ClientSession` passed to `generate_content` as a tool.

That is the path Gemini users take: google-genai lists the session's tools, turns each into a Gemini function
declaration (`_mcp_utils.mcp_to_gemini_tool`), sends them with the request, and, when the model answers with a
function call, calls the MCP tool itself (automatic function calling) and sends the result back. No request goes to
Google: the client's base URL is a stand-in Gemini on loopback that answers with scripted function calls (numbers
as Gemini sends them, doubles) and records what it was sent, which is what Gemini would have read.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from common import REFUSED_ARGUMENTS, REFUSED_TOOL, VIDEO_ARGUMENTS, VIDEO_TOOL, report, server_command, server_env
from google import genai
from google.genai import _mcp_utils, types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def function_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    # Gemini's function-call arguments are a protobuf Struct: every number comes back a double.
    args = {key: float(value) if isinstance(value, int) else value for key, value in arguments.items()}
    part = {"functionCall": {"name": name, "args": args}}
    return {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}]}


# What the stand-in model answers, turn by turn: a video, then a refused call, then plain text.
SCRIPT = [
    function_call(VIDEO_TOOL, VIDEO_ARGUMENTS),
    function_call(REFUSED_TOOL, REFUSED_ARGUMENTS),
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "done"}]}, "finishReason": "STOP"}]},
]


class StandInGemini(BaseHTTPRequestHandler):
    """Answers `:generateContent` with the next scripted turn and keeps every request body."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, "body": body})
        answer = json.dumps(SCRIPT[min(len(self.requests), len(SCRIPT)) - 1]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # stdout is the report's
        pass


async def main() -> None:
    gemini = ThreadingHTTPServer(("127.0.0.1", 0), StandInGemini)
    threading.Thread(target=gemini.serve_forever, daemon=True).start()
    client = genai.Client(
        api_key="not-a-real-key",
        http_options=types.HttpOptions(base_url=f"http://127.0.0.1:{gemini.server_port}", api_version="v1beta"),
    )
    command, arguments = server_command()
    params = StdioServerParameters(command=command, args=arguments, env=server_env())
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
        # Every tool on its own, so one that fails to translate is named (the session path stops at the first).
        translations = {}
        for tool in listed.tools:
            try:
                (declaration,) = _mcp_utils.mcp_to_gemini_tool(tool).function_declarations or []
                parameters = declaration.parameters
                translations[tool.name] = parameters.model_dump(mode="json", exclude_none=True) if parameters else {}
            except Exception as exc:  # reported: the test names the tool and the error
                translations[tool.name] = {"error": f"{type(exc).__name__}: {exc}"}
        response = await client.aio.models.generate_content(
            model="gemini-2.5-flash",
            contents="Make a short video of a paper boat, then one of a kite in 4k.",
            # A dict: 3.6.1 deep-copies a GenerateContentConfig first, which fails on a live session's tasks.
            config={"tools": [session]},
        )
    gemini.shutdown()
    sent = [request["body"] for request in StandInGemini.requests]
    responses = [
        part["functionResponse"]
        for body in sent[1:]
        for part in body["contents"][-1]["parts"]
        if "functionResponse" in part
    ]
    report(
        tools=[tool.name for tool in listed.tools],
        translations=translations,
        declarations=[tool.get("functionDeclarations", []) for tool in sent[0].get("tools", [])] if sent else [],
        requests=len(sent),
        # What the model read back after each of its calls: the function responses of the later requests.
        video=json.dumps(responses[0]),
        refusal=json.dumps(responses[1]),
        final_text=response.text,
    )


if __name__ == "__main__":
    asyncio.run(main())
