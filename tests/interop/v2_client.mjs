// The TypeScript SDK v2 client (@modelcontextprotocol/client) driving pixverse-mcp over stdio, once per protocol
// era: `legacy` (initialize, 2025-11-25) and `auto` (server/discover, 2026-07-28). Prints one JSON report for
// tests/e2e/test_inspector_cli.py.
//   node v2_client.mjs <python> [server args...]
// The server's environment is this process's; AIMLAPI_BASE_URL must be a pixverse-mcp sandbox, whose
// /_sandbox/faults and /_sandbox/stats endpoints this script uses to make the upstream refuse the key (401) or the
// account (403) during a wait, and to count the creates that reached it.
//
// The SDK validates structuredContent against the tool's outputSchema on results that are not errors (a mismatch
// throws -32602 "Structured content does not match the tool's output schema"). Clients such as the Inspector check
// error results too, so each call also reports `schemaErrors`: the SDK's own AJV validator applied to any
// structuredContent the result carries, errors included.
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/client/validators/ajv";

const [python, ...serverArgs] = process.argv.slice(2);
const sandbox = process.env.AIMLAPI_BASE_URL;
// A prompt of its own for every call, so the server never re-attaches one call to another's generation.
const prompt = (mode, use) => `a paper boat drifting down a rain gutter, close-up (${mode}: ${use})`;
const validator = new AjvJsonSchemaValidator();

async function sandboxCall(method, path, body) {
  const response = await fetch(sandbox + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`sandbox ${method} ${path}: HTTP ${response.status}`);
  return response.json();
}

const creates = async () => (await sandboxCall("GET", "/_sandbox/stats")).creates;

function describeError(error) {
  return { name: error?.name, code: error?.code, message: String(error?.message ?? error) };
}

// One tools/call: what the client returned (or threw), and whether its structuredContent fits the outputSchema.
async function call(client, schemas, name, args) {
  try {
    const result = await client.callTool({ name, arguments: args });
    const text = (result.content ?? [])
      .filter((item) => item.type === "text")
      .map((item) => item.text)
      .join("\n");
    let schemaErrors = null;
    if (result.structuredContent !== undefined && schemas[name] !== undefined) {
      const verdict = validator.getValidator(schemas[name])(result.structuredContent);
      schemaErrors = verdict.valid ? null : verdict.errorMessage;
    }
    return {
      isError: result.isError ?? false,
      text,
      structuredContent: result.structuredContent ?? null,
      hasStructuredContent: result.structuredContent !== undefined,
      schemaErrors,
    };
  } catch (error) {
    return { thrown: describeError(error) };
  }
}

// create_video, then every status GET answered by `fault`, then get_video_status waiting 2 s.
async function faultDuringWait(client, schemas, mode, fault) {
  const created = await call(client, schemas, "create_video", { prompt: prompt(mode, fault) });
  const generationId = created.structuredContent?.generation_id ?? null;
  if (generationId === null) return { created, generationId };
  const usedBefore = (await sandboxCall("GET", "/_sandbox/faults")).used;
  await sandboxCall("POST", "/_sandbox/faults", { fault, method: "GET", count: 50 });
  try {
    const status = await call(client, schemas, "get_video_status", { generation_id: generationId, wait_seconds: 2 });
    const faultsUsed = (await sandboxCall("GET", "/_sandbox/faults")).used - usedBefore;
    return { created, generationId, faultsUsed, ...status };
  } finally {
    await sandboxCall("DELETE", "/_sandbox/faults");
  }
}

async function runEra(mode) {
  const client = new Client(
    { name: "pixverse-interop-v2", version: "1.0.0" },
    { versionNegotiation: { mode } },
  );
  const transport = new StdioClientTransport({
    command: python,
    args: ["-m", "pixverse_mcp", ...serverArgs],
    env: process.env,
    stderr: "inherit",
  });
  const report = { mode };
  try {
    await client.connect(transport);
    report.protocolVersion = client.getNegotiatedProtocolVersion() ?? null;
    report.server = client.getServerVersion() ?? null;
    const tools = (await client.listTools()).tools;
    report.tools = tools.map((tool) => tool.name);
    const schemas = Object.fromEntries(tools.map((tool) => [tool.name, tool.outputSchema]));

    report.success = await call(client, schemas, "generate_video_blocking", { prompt: prompt(mode, "success") });
    const before = await creates();
    report.refused = await call(client, schemas, "create_video", { prompt: prompt(mode, "refused"), resolution: "4k" });
    report.refused.createsReached = (await creates()) - before;
    report.unknown = await call(client, schemas, "get_video_status", { generation_id: "nope" });
    report.unauthorized = await faultDuringWait(client, schemas, mode, "unauthorized");
    report.noCredits = await faultDuringWait(client, schemas, mode, "no_credits");
  } catch (error) {
    report.failed = describeError(error);
  } finally {
    await client.close().catch(() => {});
  }
  return report;
}

const report = {};
for (const mode of ["legacy", "auto"]) report[mode] = await runEra(mode);
console.log(JSON.stringify(report));
