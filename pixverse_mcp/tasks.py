"""The Tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663): a long generation as a durable protocol task.

For a 2026-07-28 client that declares the extension on its request, `generate_video_blocking` answers with a task
handle instead of waiting: the create (or the re-attach, or the confirmation round) happens first, in the call, so
a task always stands for a paid generation that exists; the task is written to storage before the handle is
returned; the wait then runs in the background on the shared poller, and `tasks/get` returns its live status
(`statusMessage` is the progress line), then the very `CallToolResult` the blocking call would have returned.
Every other client gets exactly the result it always got (the spec forbids a task handle to them).

Over Streamable HTTP, `tasks/get`, `tasks/update` and `tasks/cancel` carry the task id as their `Mcp-Name` header
(the extension's routing header, for load balancers): `TaskNameHeaderCheck` refuses one whose header says otherwise,
as the SDK does for its own name-bearing methods.

Durable and safe: tasks live in storage (they survive a restart, and any replica answers for them: the first
`tasks/get` after a restart resumes the wait); ids are unguessable; over HTTP a task is visible only to the caller
whose credentials created it; a finished task is kept for its time to live. `tasks/cancel` stops our waiting only:
the upstream generation cannot be cancelled, it stays in the journal, and `get_video_status` reports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import anyio
import anyio.abc
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, MCP_METHOD_HEADER, MCP_NAME_HEADER, decode_header_value
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    CallToolRequestParams,
    CallToolResult,
    RequestParams,
)
from mcp_types import methods as wire
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixverse_mcp.app import App
from pixverse_mcp.models import Generation, GenerationStatus
from pixverse_mcp.results import safe_result
from pixverse_mcp.service import Started, VideoService
from pixverse_mcp.storage import StorageError, TaskRecord
from pixverse_mcp.text import printable
from pixverse_mcp.views import progress_message

logger = logging.getLogger(__name__)

EXTENSION_ID: Final = "io.modelcontextprotocol/tasks"
TASK_TOOLS: Final = frozenset({"generate_video_blocking", "lip_sync_video"})
TASK_SLOT_KEY: Final = "io.github.pixverse-mcp/task-slot"
"""Where the extension hands a tool call its `TaskSlot`, in the request context's `_meta` it passes down."""
# The extension's methods, and the param their `Mcp-Name` header must carry (its spec's "Routing Headers").
TASK_METHODS: Final = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})
TASK_NAME_PARAM: Final = "taskId"
# How long a task's wait may run in the background: as long as the provider could plausibly take, and more.
TASK_WAIT_SECONDS: Final = 3600.0
# Clients are told to look no more often than this, whatever the polling schedule says.
MIN_POLL_INTERVAL_MS: Final = 1000
_SWEEP_SECONDS: Final = 300.0


class TaskIdParams(RequestParams):
    """`tasks/get` and `tasks/cancel`."""

    task_id: str = Field(alias="taskId")


class UpdateTaskParams(TaskIdParams):
    """`tasks/update` (answers to questions a task asked; ours never ask once started)."""

    input_responses: dict[str, Any] = Field(alias="inputResponses", default_factory=dict)


@dataclass
class TaskSlot:
    """Given to a tool call that may become a task (in the context the extension passes down): the tool leaves its
    started generation here instead of waiting for it, and the extension turns it into a task."""

    started: Started | None = None
    choices: dict[str, Any] = field(default_factory=dict)

    def take(self, started: Started, **choices: Any) -> None:
        """The generation this call made (or re-attached to), and the call's own choices (save, preview)."""
        self.started, self.choices = started, choices


def task_slot(ctx: Context[Any, Any]) -> TaskSlot | None:
    """The slot the extension gave this call, or None when it is not becoming a task (the tool then waits)."""
    meta = ctx.request_context.meta
    slot = meta.get(TASK_SLOT_KEY) if meta else None
    return slot if isinstance(slot, TaskSlot) else None


class Finish(Protocol):
    """How a task's generation is waited for and reported: exactly as the blocking tool does it."""

    def __call__(
        self, app: App, started: Started, *, timeout: float, save: bool | None, preview: bool
    ) -> Awaitable[CallToolResult]: ...


class TasksExtension(Extension):
    """Serves `tasks/get`, `tasks/cancel` and `tasks/update`, and turns eligible tool calls into tasks."""

    identifier = EXTENSION_ID

    def __init__(self, *, ttl_seconds: float, finish: Finish) -> None:
        self._ttl_seconds = ttl_seconds
        self._finish = finish
        self._group: anyio.abc.TaskGroup | None = None
        self._running: dict[str, anyio.CancelScope] = {}

    @asynccontextmanager
    async def running(self, app: App) -> AsyncIterator[None]:
        """The server-lifetime task group the background waits run in (entered from the server's lifespan)."""
        self._app = app
        async with anyio.create_task_group() as group:
            self._group = group
            group.start_soon(self._sweep)
            try:
                yield
            finally:
                self._group = None
                group.cancel_scope.cancel()

    def settings(self) -> dict[str, Any]:
        return {}  # no settings defined by the spec; clients check for exactly this

    def methods(self) -> list[MethodBinding]:
        modern = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding("tasks/get", TaskIdParams, self._get, protocol_versions=modern),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel, protocol_versions=modern),
            MethodBinding("tasks/update", UpdateTaskParams, self._update, protocol_versions=modern),
        ]

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name not in TASK_TOOLS or not declares_tasks(ctx) or self._group is None:
            return await call_next(ctx)
        slot = TaskSlot()
        # The confirmation round, the create or the re-attach all happen in the call, before any task exists.
        # (RequestParamsMeta admits extra items; the slot is an object only this process hands itself.)
        result = await call_next(replace(ctx, meta={**(ctx.meta or {}), TASK_SLOT_KEY: slot}))  # type: ignore[arg-type]
        started = slot.started
        if started is None:
            return result  # refused, declined, over the cap, or a question for the client: no task
        now = time.time()
        task = TaskRecord(
            task_id=secrets.token_urlsafe(24),
            principal=principal(ctx),
            created_at=now,
            updated_at=now,
            ttl_seconds=self._ttl_seconds,
            generation_id=started.generation.id,
            arguments={"request": started.request, **slot.choices},
        )
        try:
            await self._app.storage.save_task(task)  # durable before the handle leaves (the spec's MUST)
        except StorageError:
            logger.exception("could not store a task: waiting in the call instead")
            timeout = self._app.settings.wait_budget_seconds
            return await self._finish(self._app, started, timeout=timeout, **_choices(slot.choices))
        self._start(task, started)
        return {"resultType": "task", **self._wire(task)}

    def _start(self, task: TaskRecord, started: Started | None = None) -> None:
        """Run the task's wait here, unless it already runs in this process."""
        if self._group is None or task.task_id in self._running:
            return
        scope = anyio.CancelScope()
        self._running[task.task_id] = scope
        self._group.start_soon(self._wait, task, started, scope)

    async def _wait(self, task: TaskRecord, started: Started | None, scope: anyio.CancelScope) -> None:
        app = self._app
        arguments = task.arguments or {}
        try:
            with scope:
                if started is None:  # resumed (a restart, another replica): the generation is in the journal
                    entry = await app.storage.get(task.generation_id or "")
                    generation = entry.as_generation() if entry else _unknown(task)
                    request = entry.request if entry else arguments.get("request")
                    started = Started(generation, entry.created_at if entry else task.created_at, request)
                left = max(1.0, task.created_at + TASK_WAIT_SECONDS - time.time())
                result = safe_result(await self._finish(app, started, timeout=left, **_choices(arguments)))
                if app.service is not None and app.service.draining:
                    return  # cut short by a shutdown: still working; the next process's first tasks/get resumes it
                finished = replace(task, status="completed", updated_at=time.time(), result=_on_the_wire(result))
                if not await app.storage.finish_task(finished):
                    logger.info("task %s ended elsewhere (cancelled) before its wait did", task.task_id)
        except StorageError:
            logger.exception("task %s: could not record its result; the next tasks/get resumes it", task.task_id)
        except Exception:  # a background wait must never take the server down with it
            logger.exception("task %s: its wait failed", task.task_id)
            message = (
                "pixverse-mcp failed while waiting (the server's log has the details); the generation goes on: "
                f"get_video_status(generation_id={task.generation_id!r}) reports it."
            )
            error = {"code": INTERNAL_ERROR, "message": message}
            with anyio.CancelScope(shield=True), contextlib.suppress(StorageError):
                await app.storage.finish_task(replace(task, status="failed", updated_at=time.time(), result=error))
        finally:
            self._running.pop(task.task_id, None)

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> dict[str, Any]:
        task = await self._lookup(ctx, params.task_id)
        if task.status != "working" or self._app.service is None:
            return {"resultType": "complete", **self._wire(task)}
        self._start(task)
        message, interval = await self._progress(task, self._app.service)
        return {"resultType": "complete", **self._wire(task, message, interval)}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> dict[str, Any]:
        task = await self._lookup(ctx, params.task_id)
        if task.status == "working":
            scope = self._running.pop(task.task_id, None)
            if scope is not None:
                scope.cancel()
            message = (
                f"Stopped waiting. The generation cannot be cancelled upstream and goes on (it is in the journal): "
                f"get_video_status(generation_id={task.generation_id!r}) reports the video when it is done."
            )
            await self._end(replace(task, status="cancelled", updated_at=time.time(), status_message=message))
        return {"resultType": "complete"}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> dict[str, Any]:
        await self._lookup(ctx, params.task_id)  # nothing to answer: our tasks ask before they exist
        return {"resultType": "complete"}

    async def _lookup(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> TaskRecord:
        if not declares_tasks(ctx):
            raise MCPError(
                code=MISSING_REQUIRED_CLIENT_CAPABILITY,
                message="Missing required client capability",
                data={"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}},
            )
        try:
            task = await self._app.storage.get_task(task_id)
        except StorageError as exc:
            raise MCPError(code=INVALID_PARAMS, message=f"Failed to retrieve task: {exc}") from exc
        # Someone else's task is as unknown as a missing one: no way to tell that it exists.
        if task is None or task.principal != principal(ctx) or time.time() > task.created_at + task.ttl_seconds:
            raise MCPError(code=INVALID_PARAMS, message="Failed to retrieve task: Task not found")
        return task

    async def _end(self, task: TaskRecord) -> None:
        try:
            await self._app.storage.finish_task(task)
        except StorageError as exc:
            raise MCPError(code=INVALID_PARAMS, message=f"Failed to update task: {exc}") from exc

    async def _progress(self, task: TaskRecord, service: VideoService) -> tuple[str, int]:
        """A running task's readable progress line, from what the journal knows now, and how soon to ask again:
        no sooner than our own next look at the API."""
        try:
            entry = await self._app.storage.get(task.generation_id or "")
        except StorageError:
            entry = None
        status = entry.status if entry is not None else GenerationStatus.QUEUED
        expectation = await service.expectations.of(entry.request if entry else None)
        next_look = service.client.polling_policy.next_delay(_age(task), expectation)
        interval = max(MIN_POLL_INTERVAL_MS, int(next_look * 1000))
        return progress_message(status, _age(task), expectation.typical), interval

    def _wire(
        self, task: TaskRecord, message: str | None = None, interval_ms: int = MIN_POLL_INTERVAL_MS
    ) -> dict[str, Any]:
        wired: dict[str, Any] = {
            "taskId": task.task_id,
            "status": task.status,
            "createdAt": _iso(task.created_at),
            "lastUpdatedAt": _iso(task.updated_at),
            "ttlMs": int(task.ttl_seconds * 1000),
            "pollIntervalMs": interval_ms,
        }
        if message or task.status_message:
            wired["statusMessage"] = message or task.status_message
        if task.status == "completed":
            wired["result"] = task.result
        elif task.status == "failed":
            wired["error"] = task.result  # the JSON-RPC error the wait ended with
        return wired

    async def _sweep(self) -> None:
        while True:
            await anyio.sleep(_SWEEP_SECONDS)
            try:
                await self._app.storage.delete_expired_tasks(time.time())
            except StorageError as exc:
                logger.warning("could not drop expired tasks: %s", exc)


class TaskNameHeaderCheck:
    """Refuse a Streamable HTTP `tasks/*` request whose `Mcp-Name` header is not its `params.taskId`.

    The extension's spec has clients send the task id as `Mcp-Name`, so a load balancer can route a task's requests
    to the replica that holds it; a header that disagrees with the body would send it elsewhere. The SDK checks
    `Mcp-Name` only for the methods it knows (`tools/call`, `prompts/get`, `resources/read`), before dispatch, with
    `HEADER_MISMATCH` and the HTTP status it maps that to; this does the same for ours, and passes every other
    request through untouched (only one whose `Mcp-Method` header names a task method is read here).
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        if headers is None or scope["method"] != "POST" or headers.get(MCP_METHOD_HEADER) not in TASK_METHODS:
            await self._app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while not messages or messages[-1].get("more_body", False):
            messages.append(await receive())
            if messages[-1]["type"] != "http.request":
                break
            body += messages[-1].get("body", b"")
        rejection = _name_mismatch(body, headers)
        if rejection is not None:
            await _respond_json(send, ERROR_CODE_HTTP_STATUS.get(HEADER_MISMATCH, 400), rejection)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self._app(scope, replay, send)


def _name_mismatch(body: bytes, headers: Headers) -> dict[str, Any] | None:
    """The JSON-RPC error for a task request whose `Mcp-Name` is not its task id, or None (anything else, a body
    that does not parse included, is the SDK's to judge)."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # as the SDK: a huge integer is a bare ValueError, deep nesting recursion
        return None
    if not isinstance(message, dict) or message.get("method") not in TASK_METHODS:
        return None
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    task_id = params.get(TASK_NAME_PARAM)
    if not isinstance(task_id, str) or decode_header_value(headers.get(MCP_NAME_HEADER)) == task_id:
        return None
    text = f"{MCP_NAME_HEADER} header does not match the request body's {TASK_NAME_PARAM!r} parameter"
    return {"jsonrpc": "2.0", "id": message.get("id"), "error": {"code": HEADER_MISMATCH, "message": text}}


async def _respond_json(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def declares_tasks(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this very request (2026-07-28) declares the extension in its capabilities."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    meta = (ctx.params or {}).get("_meta") or {}
    capabilities = meta.get(CLIENT_CAPABILITIES_META_KEY) if isinstance(meta, dict) else None
    extensions = capabilities.get("extensions") if isinstance(capabilities, dict) else None
    return isinstance(extensions, dict) and EXTENSION_ID in extensions


def principal(ctx: ServerRequestContext[Any, Any]) -> str:
    """Who is asking, as far as this server can tell: a digest of the bearer token ("" on stdio). The scheme's
    spelling does not count (`bearer` and `Bearer` are one credential, as the login accepts both)."""
    request = ctx.request
    headers = getattr(request, "headers", None)
    authorization = headers.get("authorization", "") if headers is not None else ""
    scheme, _, token = authorization.strip().partition(" ")
    credential = token.strip() if scheme.lower() == "bearer" else authorization.strip()
    return hashlib.sha256(credential.encode()).hexdigest() if credential else ""


def _on_the_wire(result: CallToolResult) -> dict[str, Any]:
    """A tool result exactly as a 2026-07-28 client receives it inline (`resultType` included)."""
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    serialized: dict[str, Any] = wire.serialize_server_result("tools/call", "2026-07-28", dumped)
    return serialized


def _age(task: TaskRecord) -> float:
    return max(0.0, time.time() - task.created_at)


def _unknown(task: TaskRecord) -> Generation:
    logger.warning("task %s: its generation is not in the journal", printable(task.task_id))
    return Generation(id=task.generation_id or "?", status=GenerationStatus.UNKNOWN)


def _choices(arguments: dict[str, Any]) -> dict[str, Any]:
    """The blocking call's own choices a task kept: whether to save the video, and to add a preview."""
    save = arguments.get("save")
    return {"save": save if isinstance(save, bool) else None, "preview": arguments.get("preview") is True}


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
