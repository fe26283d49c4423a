// The MCP Tasks extension's own client, @modelcontextprotocol/ext-tasks@0.2.2 on @modelcontextprotocol/client@2.3.1,
// driving pixverse-mcp in the 2026-07-28 era. Prints one JSON report on its last stdout line for
// tests/e2e/test_ext_tasks_client.py.
//
//   node ext_tasks_client.mjs <stdio|http> <scenario> [taskId]
//
// Scenarios:
//   complete        generate_video_blocking as a task: every update followed, settled, the result printed
//   cancel          start a task, wait for its first `working` update, cancel it, then one raw tasks/get
//   start           start a task, print its reference and leave (no waiting, no cancel): for the restart test
//   resume <taskId> a new connection takes the task up again (session.resumeTask) and follows it to its end
//   blocking        the same tool called by a client that does not declare the extension: one plain tools/call
//
// Environment:
//   stdio: EXT_TASKS_PYTHON (default "python3") runs `-m pixverse_mcp` with this process's environment.
//   http:  EXT_TASKS_URL (the Streamable HTTP endpoint); EXT_TASKS_TOKEN, when set, is sent as `Authorization: Bearer`.
//   EXT_TASKS_PROMPT: the prompt (default: a fresh one, so no call re-attaches to another's generation).
//   EXT_TASKS_DEADLINE_MS: give up (exit 1) after this long (default 120000).
//   EXT_TASKS_WIRE=1: every request sent is also printed on stderr.
//
// A 2026-07-28 task session needs `rawDispatch` (tools/call may answer resultType "task", which the SDK's own request
// path rejects) and `v2RequestFraming` (the per-request `_meta` envelope). The SDK has no public raw-request API, so
// RawCoordinator shares the connected transport: it sends string-id requests and takes their responses before the
// SDK's Protocol (numeric ids) sees them, as the SDK's own discover probe does. Every request leaving the transport
// (SDK or raw) is counted by method, for the round-trip figures.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { createTaskSessionFromClient, resultFromTaskOutcome } from "@modelcontextprotocol/ext-tasks/client";

const PROTOCOL_VERSION = "2026-07-28";
const TASKS = "io.modelcontextprotocol/tasks";
const TOOL = "generate_video_blocking";
const ENDPOINT_ID = "pixverse-mcp-interop"; // the same for `start` and `resume`: references are scoped to it
const clientInfo = { name: "pixverse-ext-tasks-interop", version: "1.0.0" };
const tasksCapabilities = { extensions: { [TASKS]: {} } };

const [transportKind, scenario, taskIdArg] = process.argv.slice(2);
const deadlineMs = Number(process.env.EXT_TASKS_DEADLINE_MS ?? 120000);
const prompt =
  process.env.EXT_TASKS_PROMPT ??
  `a lighthouse beam sweeping through fog (${scenario}, ${Date.now()}-${Math.random().toString(36).slice(2)})`;

function describeError(error) {
  return {
    name: error?.name ?? null,
    code: error?.code ?? null,
    message: String(error?.message ?? error),
    data: error?.data ?? null,
  };
}

// The 2026-07-28 request envelope, for requests this script frames itself (the raw tasks/get after a cancel).
function envelope(capabilities) {
  return {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL_VERSION,
    "io.modelcontextprotocol/clientInfo": clientInfo,
    "io.modelcontextprotocol/clientCapabilities": capabilities,
  };
}

class RawCoordinator {
  #transport;
  #pending = new Map();
  #n = 0;
  // Every raw exchange: {method, params, result} or {method, params, error}.
  exchanges = [];

  constructor(transport) {
    this.#transport = transport;
    const downstream = transport.onmessage; // installed by Protocol.connect()
    transport.onmessage = (message, extra) => {
      const waiter = message && "id" in message ? this.#pending.get(message.id) : undefined;
      if (waiter && ("result" in message || "error" in message)) {
        this.#pending.delete(message.id);
        waiter(message);
        return;
      }
      downstream?.(message, extra);
    };
  }

  // What ext-tasks expects: (request, {signal, context}) => {kind: "result", result} | {kind: "error", error}.
  dispatch = async (request, options = {}) => {
    const id = `ext-tasks-${++this.#n}`;
    const message = { jsonrpc: "2.0", id, method: request.method, ...(request.params ? { params: request.params } : {}) };
    const reply = new Promise((resolve, reject) => {
      this.#pending.set(id, resolve);
      options.signal?.addEventListener(
        "abort",
        () => {
          this.#pending.delete(id);
          reject(options.signal.reason);
        },
        { once: true },
      );
    });
    // StreamableHTTPClientTransport derives MCP-Protocol-Version, Mcp-Method and Mcp-Name (params.taskId for
    // tasks/*) from the body; the bearer token is in its requestInit.
    await this.#transport.send(message);
    const response = await reply;
    const exchange = { method: request.method, params: request.params ?? null };
    if ("error" in response) {
      this.exchanges.push({ ...exchange, error: response.error });
      return { kind: "error", error: response.error };
    }
    this.exchanges.push({ ...exchange, result: response.result });
    return { kind: "result", result: response.result };
  };
}

function makeTransport() {
  if (transportKind === "stdio") {
    return new StdioClientTransport({
      command: process.env.EXT_TASKS_PYTHON ?? "python3",
      args: ["-m", "pixverse_mcp"],
      env: process.env,
      stderr: "inherit",
    });
  }
  if (transportKind === "http") {
    const url = process.env.EXT_TASKS_URL;
    if (!url) throw new Error("EXT_TASKS_URL is needed for http");
    const token = process.env.EXT_TASKS_TOKEN;
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    return new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  }
  throw new Error(`unknown transport ${transportKind}: stdio or http`);
}

// Connects a 2026-07-28 client (server/discover, no initialize), counting every request it sends by method.
async function connect(capabilities) {
  const transport = makeTransport();
  const sent = [];
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    if (message && typeof message.method === "string" && "id" in message) sent.push(message.method);
    if (process.env.EXT_TASKS_WIRE === "1") console.error(">>", JSON.stringify(message));
    return send(message, options);
  };
  const client = new Client(clientInfo, { capabilities, versionNegotiation: { mode: { pin: PROTOCOL_VERSION } } });
  await client.connect(transport);
  return { client, transport, sent };
}

async function taskSession() {
  const { client, transport, sent } = await connect(tasksCapabilities);
  const raw = new RawCoordinator(transport);
  const session = createTaskSessionFromClient(client, {
    endpointId: ENDPOINT_ID,
    rawDispatch: raw.dispatch,
    v2RequestFraming: { protocolVersion: PROTOCOL_VERSION, clientInfo, clientCapabilities: tasksCapabilities },
  });
  return { client, transport, sent, raw, session };
}

function connectionReport(client) {
  return {
    era: client.getProtocolEra(),
    protocolVersion: client.getNegotiatedProtocolVersion() ?? null,
    server: client.getServerVersion() ?? null,
    serverTasksExtension: client.getServerCapabilities()?.extensions?.[TASKS] ?? null,
  };
}

function viewOf(task) {
  return {
    status: task.status,
    statusMessage: task.statusMessage ?? null,
    pollIntervalMs: task.suggestedPollIntervalMs ?? null,
  };
}

function counts(sent) {
  const byMethod = {};
  for (const method of sent) byMethod[method] = (byMethod[method] ?? 0) + 1;
  return byMethod;
}

// The wire handle: the result of the raw tools/call (resultType "task", taskId, ttlMs...).
function wireHandle(raw) {
  return raw.exchanges.find((exchange) => exchange.method === "tools/call")?.result ?? null;
}

// Follows an execution's updates to its outcome; returns every task view seen and the settled result.
async function follow(execution) {
  const seen = [];
  for await (const event of execution.updates()) {
    if (event.type === "task") seen.push(viewOf(event.task));
  }
  const { outcome, lastTask } = await execution.settle();
  const report = { seen, outcome: outcome.status, lastTask: lastTask ? viewOf(lastTask) : null };
  if (outcome.status === "completed") report.result = resultFromTaskOutcome(outcome);
  if (outcome.status === "failed") report.error = describeError(outcome.error);
  return report;
}

async function complete({ client, raw, session }) {
  const started = Date.now();
  const execution = await session.callTool(TOOL, { prompt });
  const followed = await follow(execution);
  return {
    kind: execution.kind,
    handle: wireHandle(raw),
    executionHandle: execution.handle ?? null,
    statuses: followed.seen.map((view) => view.status),
    ...followed,
    elapsedMs: Date.now() - started,
  };
}

async function cancel({ raw, session }) {
  const execution = await session.callTool(TOOL, { prompt });
  const seen = [];
  for await (const event of execution.updates()) {
    if (event.type !== "task") break;
    seen.push(viewOf(event.task));
    if (event.task.status === "working") break; // the first working update: cancel now
  }
  await execution.cancel(); // tasks/cancel; the local lifetime ends on the ack
  const settled = await execution.settle();
  // One more look, through the raw dispatcher: what the server now says about the task.
  const after = await raw.dispatch({
    method: "tasks/get",
    params: { taskId: execution.handle.taskId, _meta: envelope(tasksCapabilities) },
  });
  return {
    handle: wireHandle(raw),
    seen,
    outcome: settled.outcome.status,
    afterCancel:
      after.kind === "result"
        ? { status: after.result.status, statusMessage: after.result.statusMessage ?? null, raw: after.result }
        : { error: after.error },
  };
}

async function start({ raw, session }) {
  const execution = await session.callTool(TOOL, { prompt });
  let reference = null;
  if (execution.kind === "task") {
    await execution.handoff((ref) => (reference = ref)); // release it: no waiting, no cancel
    // ext-tasks 0.2.2: handoff() resolves before the detached execution has settled, and session.close() cancels
    // (tasks/cancel) every execution not yet settled, handed off or not. Its outcome settles once the detach has
    // gone through (the poll loop wakes up on the abort); after that, closing the session leaves the task alone.
    await Promise.race([execution.result(), sleep(5000)]);
  }
  return { kind: execution.kind, handle: wireHandle(raw), taskId: execution.handle?.taskId ?? null, reference };
}

async function resume({ session }, taskId) {
  if (!taskId) throw new Error("resume needs a taskId");
  const reference = { endpointId: ENDPOINT_ID, generation: "v2", taskId, originalOperation: "tools/call" };
  const execution = await session.resumeTask(reference);
  const followed = await follow(execution);
  return { statuses: followed.seen.map((view) => view.status), ...followed };
}

// The comparison: a client that does not declare the extension makes one tools/call that waits for the video.
async function blocking({ client }) {
  const started = Date.now();
  const result = await client.callTool({ name: TOOL, arguments: { prompt } });
  return { result, elapsedMs: Date.now() - started };
}

const SCENARIOS = { complete, cancel, start, resume, blocking };

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main() {
  const run = SCENARIOS[scenario];
  if (run === undefined) throw new Error(`unknown scenario ${scenario}: ${Object.keys(SCENARIOS).join(", ")}`);
  // `blocking` is a client without the extension: no task session, plain SDK calls.
  const connection = scenario === "blocking" ? await connect({}) : await taskSession();
  let report;
  try {
    report = { ...connectionReport(connection.client), ...(await run(connection, taskIdArg)) };
  } finally {
    await connection.session?.close();
    await connection.client.close();
  }
  // Counted after closing, so that a request sent while closing (a stray tasks/cancel) shows too.
  const wire = (connection.raw?.exchanges ?? []).map((exchange) => ({
    method: exchange.method,
    status: exchange.result?.status ?? null,
    resultType: exchange.result?.resultType ?? null,
    error: exchange.error ?? null,
  }));
  return { transport: transportKind, scenario, ok: true, ...report, requests: counts(connection.sent), wire };
}

const deadline = setTimeout(() => {
  console.log(JSON.stringify({ transport: transportKind, scenario, ok: false, error: { message: "deadline passed" } }));
  process.exit(1);
}, deadlineMs);

let exitCode = 0;
try {
  console.log(JSON.stringify(await main()));
} catch (error) {
  exitCode = 1;
  console.error(error);
  console.log(JSON.stringify({ transport: transportKind, scenario, ok: false, error: describeError(error) }));
}
clearTimeout(deadline);
// Nothing of ours is left to wait for; a stray timer of a library must not keep the process (and a test) waiting.
process.exit(exitCode);
