// The TypeScript MCP SDK's client driving pixverse-mcp over stdio, as hosts built on it do (default 60 s request
// timeout, handshake protocol revision). Prints one JSON object for tests/e2e/test_typescript_client.py to check.
//   node ts_client.mjs <python> [server args...]   (the server's environment is this process's)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [python, ...serverArgs] = process.argv.slice(2);
const transport = new StdioClientTransport({
  command: python,
  args: ["-m", "pixverse_mcp", ...serverArgs],
  env: process.env,
  stderr: "ignore",
});
const client = new Client({ name: "interop-test", version: "1.0.0" });
await client.connect(transport);

const tools = await client.listTools();
const progress = [];
const done = await client.callTool(
  { name: "generate_video_blocking", arguments: { prompt: "a glass of water on a windowsill, morning light" } },
  undefined,
  { onprogress: (update) => progress.push(update) },
);
const invalid = await client.callTool({ name: "create_video", arguments: { prompt: "x", resolution: "4k" } });

console.log(
  JSON.stringify({
    server: client.getServerVersion(),
    tools: tools.tools.map((tool) => ({ name: tool.name, inputSchema: tool.inputSchema, outputSchema: tool.outputSchema })),
    result: { isError: done.isError ?? false, structuredContent: done.structuredContent, content: done.content },
    progress,
    invalid: { isError: invalid.isError ?? false, text: invalid.content?.[0]?.text },
  }),
);
await client.close();
