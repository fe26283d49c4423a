// The TypeScript SDK v1 and v2 clients connecting to a pixverse-mcp over Streamable HTTP with the given token (none
// when absent), as hosts built on them do: prints one JSON object with what each client reports when it cannot
// connect (the error a host shows), for tests/e2e/test_http_manners.py.
//   node auth_client.mjs <url> [token]
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";

const [url, token] = process.argv.slice(2);
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const report = {};
for (const [name, Client, Transport] of [
  ["v1", ClientV1, TransportV1],
  ["v2", ClientV2, TransportV2],
]) {
  const client = new Client({ name: "auth-test", version: "1.0.0" });
  try {
    await client.connect(new Transport(new URL(url), { requestInit: { headers } }));
    await client.listTools();
    report[name] = { connected: true };
  } catch (error) {
    report[name] = { connected: false, message: String(error?.message ?? error) };
  } finally {
    await client.close().catch(() => {});
  }
}
console.log(JSON.stringify(report));
