"""A local emulator of the AI/ML API's PixVerse family (v5 and v5.5 text-to-video and image-to-video, the v5
transition, lip-sync) and of the service routes a client of them uses, for trying the server without a key and as
the real HTTP peer of the integration tests.

It checks the bearer key and the body as the real API does, strictly per model (a field the model does not take is
a 400, so a test catches a server sending one), walks each generation through queued -> generating -> completed on
configurable timings, and serves a small playable MP4 (`pixverse_mcp/assets/sandbox.mp4`, made by
`examples/make_sandbox_video.py`) as every rendered video, with Range support. Like the real API it echoes
`X-Client-Request-Id` (when valid), answers with `x-inference-id` and the cost headers, keeps a request log
(`GET /v2/logs`, rows visible after `logs_delay_seconds`, failed requests at cost 0), a balance (`GET /v2/billing`,
charged when a video completes) and a price list (`GET /v1/models?id=...&include=pricing`, no key, with an ETag).
`GET /_sandbox/stats` counts requests, so tests can prove that bad input never reached it and that no create was
sent twice: `creates` counts every POST that reached a handler (faulted or not), `accepted` the generations
stored, `status_requests` every GET, `rejected` the key and body refusals.

Faults make the upstream misbehave over real HTTP, in two ways:

* per generation: a directive in the prompt, `[sandbox:fault=NAME]`, shapes that generation. An outcome fault
  changes how it ends; a response fault replaces every one of its status responses, or only the first N with
  `[sandbox:fault=NAME:N]` (then it answers normally; directives chain in order); a create fault shapes the
  answer to the create itself. `[sandbox:fail]` (`FAIL_MARKER`) is short for `[sandbox:fault=fail]`.
* per request: `POST /_sandbox/faults` with `{"fault": NAME, "method": "GET" | "POST", "count": N}` (method
  omitted: either; count omitted: 1; `"seconds"` for `slow`) queues a fault for the next N requests with that
  method on either generation path; each such request uses one, whatever it turns out to be. Queued faults are
  used in the order they were queued. `GET /_sandbox/faults` lists what is left and how many were used,
  `DELETE /_sandbox/faults` clears them; in process, `state.inject(...)` and `state.clear_faults()`.
  A response fault answers before the key is checked or anything is stored (the request never reached the API);
  an outcome fault on a POST shapes the generation it creates, on a GET that one status response.

| fault               | kind     | what the client sees                                                           |
|---------------------|----------|--------------------------------------------------------------------------------|
| `gateway_502`       | response | 502 with an HTML gateway page                                                  |
| `server_error`      | response | 500 with a JSON error body                                                     |
| `unavailable`       | response | 503 with a JSON error body and `Retry-After: <retry_after_seconds>`            |
| `rate_limited`      | response | 429 with a JSON error body and `Retry-After: <retry_after_seconds>`            |
| `rate_limited_date` | response | 429 with `Retry-After` as an HTTP-date `retry_after_seconds` ahead             |
| `html_200`          | response | 200 with an HTML page instead of JSON                                          |
| `incomplete_json`   | response | 200 with JSON that has neither `id` nor `status`                               |
| `unauthorized`      | response | 401 with the real API's bad-key body                                           |
| `no_credits`        | response | 403 with the real API's out-of-credits body                                    |
| `slow`              | response | the normal answer, after `slow_seconds` (or the queued `seconds`)              |
| `reset`             | response | no answer: the connection is reset (httpx: `ReadError`/`RemoteProtocolError`) |
| `accepted_500`      | create   | the generation is stored and will complete, but the create answers 500         |
| `accepted_reset`    | create   | the generation is stored and will complete, but the connection is reset       |
| `fail`              | outcome  | ends with `status: error` and `error: {"message": ...}`                        |
| `fail_string`       | outcome  | ends with `status: failed` and `error` as a plain string                       |
| `succeeded`         | outcome  | ends with the old spelling `status: succeeded` (and the video)                 |
| `no_video_url`      | outcome  | ends with `status: completed` and no `video`                                   |
| `unknown_status`    | outcome  | reports `status: paused` until it completes normally                          |
| `never_completes`   | outcome  | stays `generating` forever                                                     |

Per request, an outcome fault on a GET answers as the outcome would end (`unknown_status`: `paused`,
`never_completes`: `generating`), even for a generation still pending. Create faults are for POSTs only.
The create faults emulate "the create may have been accepted": a client must not send the create again.
A reset aborts the socket with a TCP RST under uvicorn; served in process (no socket), it raises
`ConnectionResetError` from the app instead.

Its enum lists are its own literals, not imported from `pixverse_mcp.models`, on purpose: one wrong value must not
be able to pass both sides. It imports nothing else from the package either.

Run it alone with `python -m pixverse_mcp.sandbox --port 9000`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import importlib.resources
import json
import math
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

SANDBOX_API_KEY: Final = "sandbox-key"
FAIL_MARKER: Final = "[sandbox:fail]"
MODEL: Final = "pixverse/v5/text-to-video"
PATHS: Final = ("/v2/video/generations", "/v2/generate/video/pixverse/generation")

_ASPECT_RATIOS: Final = ("16:9", "4:3", "1:1", "3:4", "9:16")
_RESOLUTIONS: Final = ("360p", "540p", "720p", "1080p")
_STYLES: Final = ("anime", "3d_animation", "clay", "comic", "cyberpunk")
_SPEAKERS: Final = (
    "Harper", "Ava", "Isabella", "Sophia", "Emily", "Chloe", "Julia", "Mason", "Jack", "Liam", "James", "Oliver",
    "Adrian", "Ethan", "Auto",
)  # fmt: skip
_THINKING: Final = ("enabled", "disabled", "auto")
_MAX_SEED: Final = 2147483647
_MAX_PROMPT: Final = 2048
_VIDEO_FIELDS: Final = frozenset({"model", "prompt", "resolution", "duration", "negative_prompt", "style", "seed"})
_LIP_SYNC_TTS: Final = frozenset({"lip_sync_tts_content", "lip_sync_tts_speaker"})
_V55_SWITCHES: Final = frozenset({"generate_audio_switch", "generate_multi_clip_switch", "thinking_type"})
LIP_SYNC_MODEL: Final = "pixverse/lip-sync"
# Each model's fields (as its OpenAPI document lists them), the inputs it requires, and its durations.
MODELS: Final[dict[str, tuple[frozenset[str], tuple[str, ...], tuple[int, ...]]]] = {
    "pixverse/v5/text-to-video": (_VIDEO_FIELDS | {"aspect_ratio"} | _LIP_SYNC_TTS, (), (5, 8)),
    "pixverse/v5/image-to-video": (_VIDEO_FIELDS | {"image_url"} | _LIP_SYNC_TTS, ("image_url",), (5, 8)),
    "pixverse/v5/transition": (
        _VIDEO_FIELDS | {"image_url", "tail_image_url"} | _LIP_SYNC_TTS,
        ("image_url", "tail_image_url"),
        (5, 8),
    ),
    "pixverse/v5.5/text-to-video": (_VIDEO_FIELDS | {"aspect_ratio"} | _V55_SWITCHES, (), (5, 8, 10)),
    "pixverse/v5.5/image-to-video": (_VIDEO_FIELDS | {"image_url"} | _V55_SWITCHES, ("image_url",), (5, 8, 10)),
    LIP_SYNC_MODEL: (frozenset({"model", "video_url", "audio_url"}) | _LIP_SYNC_TTS, ("video_url",), ()),
}
# What a second of video costs by resolution (a 5 s 720p clip: $0.42, the usage figure the real API reported for
# one, upstream.md); a lip-sync costs one flat price. The price list serves these unless `SandboxConfig.prices`.
PRICE_PER_SECOND: Final[dict[str, float]] = {"360p": 0.028, "540p": 0.056, "720p": 0.084, "1080p": 0.112}
LIP_SYNC_PRICE: Final = 0.30
CREDITS_PER_USD: Final = 2_000_000
_CLIENT_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")

RESPONSE_FAULTS: Final = frozenset(
    {
        "gateway_502",
        "server_error",
        "unavailable",
        "rate_limited",
        "rate_limited_date",
        "html_200",
        "incomplete_json",
        "unauthorized",
        "no_credits",
        "slow",
        "reset",
    }
)
CREATE_FAULTS: Final = frozenset({"accepted_500", "accepted_reset"})
OUTCOME_FAULTS: Final = frozenset(
    {"fail", "fail_string", "succeeded", "no_video_url", "unknown_status", "never_completes"}
)
FAULTS: Final = RESPONSE_FAULTS | CREATE_FAULTS | OUTCOME_FAULTS

_DIRECTIVE: Final = re.compile(r"\[sandbox:fault=([^\]]*)\]")
_METHODS: Final = ("GET", "POST")
# The real API's own messages for a bad key and for an empty balance (its 4xx error documentation).
_BAD_KEY_MESSAGE: Final = (
    "This request requires a valid API key. You can create a new API key on the Billing page: "
    "https://aimlapi.com/app/keys"
)
_NO_CREDITS_MESSAGE: Final = (
    "You've run out of credits. Please top up your balance or update your payment method to continue: "
    "https://aimlapi.com/app/billing/"
)
_GATEWAY_PAGE: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_MAINTENANCE_PAGE: Final = (
    "<!DOCTYPE html><html><head><title>Maintenance</title></head>"
    "<body><h1>We'll be back soon</h1><p>The service is under maintenance.</p></body></html>"
)
# Under this scope key, the raw `receive` of the server, whose owner holds the socket a `reset` fault aborts.
_RAW_RECEIVE: Final = "pixverse_sandbox.raw_receive"
_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")
_EARLIER_RUN_ID: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:pixverse/[a-z0-9./-]+"
)


@functools.cache
def stand_in_video() -> bytes:
    """The MP4 served as every rendered video: 12 frames of 160x90 H.264, read from the package once."""
    return (importlib.resources.files("pixverse_mcp") / "assets" / "sandbox.mp4").read_bytes()


@dataclass
class SandboxConfig:
    """Timings (seconds), the key the sandbox accepts, and the figures its faults use."""

    api_key: str = SANDBOX_API_KEY
    # A demo of `pixverse-mcp --sandbox` should feel like the real thing (35 s) without the wait: 6 s.
    queued_seconds: float = 1.0
    generating_seconds: float = 5.0
    # How long the `slow` fault waits before answering (a queued `slow` may carry its own).
    slow_seconds: float = 5.0
    # What the 429 and 503 faults ask for in `Retry-After`.
    retry_after_seconds: int = 1
    # Per-generation timings instead of the two fixed ones: body -> (queued, generating) seconds. Benchmarks use it
    # to give each video a realistic, varied duration for its size.
    timings: Callable[[dict[str, Any]], tuple[float, float]] | None = None
    # `pixverse-mcp --sandbox` keeps a journal across runs, but each run starts a new sandbox: an id of the shape it
    # gives that it does not know is then one of an earlier run, long finished (tests keep the real API's 404).
    remember_earlier_runs: bool = False
    # The request log's rows come through an analytics pipeline in the real API: they appear this late.
    logs_delay_seconds: float = 2.0
    # What the account holds before any video (charged as videos complete).
    balance_usd: float = 100.0
    # Prices the price list publishes, per model: resolution -> US dollars per second (None: `PRICE_PER_SECOND`).
    prices: dict[str, dict[str, float]] | None = None
    # Whether create answers carry their cost (`meta.usage` and the cost headers); False emulates an answer whose
    # cost cannot be read.
    report_costs: bool = True


@dataclass
class _QueuedFault:
    fault: str
    method: str | None  # None: either method
    remaining: int | None  # None: every matching request, for good
    seconds: float | None = None  # `slow` only: overrides SandboxConfig.slow_seconds

    def describe(self) -> dict[str, Any]:
        return {"fault": self.fault, "method": self.method, "remaining": self.remaining, "seconds": self.seconds}


def _take(queue: list[_QueuedFault], method: str) -> _QueuedFault | None:
    """Use one of the first fault in `queue` that applies to `method`, dropping it once used up."""
    for index, queued in enumerate(queue):
        if queued.method in (None, method):
            if queued.remaining is not None:
                queued.remaining -= 1
                if queued.remaining == 0:
                    del queue[index]
            return queued
    return None


@dataclass
class _Record:
    id: str
    body: dict[str, Any]
    created: float
    outcome: str | None
    status_faults: list[_QueuedFault]
    queued_seconds: float
    generating_seconds: float
    final_served_at: float | None = None
    """When a status request first got the final answer (time.monotonic): how late the client noticed."""
    cost_usd: float = 0.0

    @property
    def ready_at(self) -> float:
        """When the generation became final (time.monotonic)."""
        return self.created + self.queued_seconds + self.generating_seconds


@dataclass
class SandboxState:
    """What the sandbox has seen; tests read it (in-process) or `GET /_sandbox/stats` (over HTTP)."""

    config: SandboxConfig
    generations: dict[str, _Record] = field(default_factory=dict)
    creates: int = 0
    status_requests: int = 0
    rejected: int = 0
    faults_used: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    """Every request that reached the API (as `GET /v2/logs` shows it once `logs_delay_seconds` passed), with the
    moment it was made (`at`, time.time())."""
    _queue: list[_QueuedFault] = field(default_factory=list, repr=False)
    # Tests queue faults from their own thread while the server's thread uses them.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stats(self) -> dict[str, int]:
        """Request counters: `creates` counts every POST that reached a handler, valid or not."""
        return {
            "creates": self.creates,
            "accepted": len(self.generations),
            "status_requests": self.status_requests,
            "rejected": self.rejected,
        }

    def reset(self) -> None:
        """Forget every generation, log row and queued fault, and zero the counters."""
        with self._lock:
            self.generations.clear()
            self._queue.clear()
            self.log.clear()
            self.creates = self.status_requests = self.rejected = self.faults_used = 0

    def charged_usd(self) -> float:
        """What the account was charged: every generation that completed (failed ones are never charged)."""
        now = time.monotonic()
        return sum(
            record.cost_usd
            for record in self.generations.values()
            if now >= record.ready_at and record.outcome not in ("fail", "fail_string", "never_completes")
        )

    def record(self, request: Request, *, status: str, model: str | None, cost_usd: float, inference_id: str) -> None:
        """A row of the request log."""
        client_id = request.headers.get("x-client-request-id", "")
        self.log.append(
            {
                "at": time.time(),
                "status": status,
                "model": model or "",
                "cost": {"usd": round(cost_usd, 6), "credits": round(cost_usd * CREDITS_PER_USD)},
                "request_id": str(uuid.uuid4()),
                "inference_id": inference_id,
                "client_request_id": client_id if _CLIENT_REQUEST_ID.fullmatch(client_id) else None,
            }
        )

    def inject(self, fault: str, *, method: str | None = None, count: int = 1, seconds: float | None = None) -> None:
        """Queue `fault` for the next `count` requests with `method` (None: either) on a generation path.

        Raises ValueError for an unknown fault, a method other than GET or POST, a count below 1, a create fault
        on GETs, or `seconds` on anything but a non-negative `slow`.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
        if method is not None and method not in _METHODS:
            raise ValueError("method must be GET or POST")
        if count < 1:
            raise ValueError("count must be at least 1")
        if fault in CREATE_FAULTS:
            if method == "GET":
                raise ValueError(f"{fault} applies to creates (POST) only")
            method = "POST"
        if seconds is not None and (fault != "slow" or seconds < 0):
            raise ValueError("seconds is for the slow fault only, and cannot be negative")
        with self._lock:
            self._queue.append(_QueuedFault(fault, method, count, seconds))

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._queue.clear()

    def faults(self) -> dict[str, Any]:
        """The queued faults, in the order they will be used, and how many were used so far."""
        with self._lock:
            return {"queued": [queued.describe() for queued in self._queue], "used": self.faults_used}

    def _take_fault(self, method: str) -> _QueuedFault | None:
        with self._lock:
            queued = _take(self._queue, method)
            if queued is not None:
                self.faults_used += 1
            return queued


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """The sandbox as a Starlette app; its state is `app.state.sandbox`."""
    state = SandboxState(config or SandboxConfig())
    routes = _Routes(state)
    table = [Route(path, routes.generation, methods=["GET", "POST"]) for path in PATHS]
    table += [
        Route("/v2/logs", routes.logs, methods=["GET"]),
        Route("/v2/billing", routes.billing, methods=["GET"]),
        Route("/v1/models", routes.models, methods=["GET"]),
        Route("/_sandbox/stats", routes.stats, methods=["GET"]),
        Route("/_sandbox/reset", routes.reset, methods=["POST"]),
        Route("/_sandbox/faults", routes.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/videos/{name}", routes.video, methods=["GET"]),
    ]
    app = Starlette(routes=table, middleware=[Middleware(_KeepRawReceive)])
    app.state.sandbox = state
    return app


class _Routes:
    """The sandbox's endpoints, over its state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def generation(self, request: Request) -> Response:
        state = self.state
        if request.method == "POST":
            state.creates += 1
        else:
            state.status_requests += 1
        injected = state._take_fault(request.method)
        if injected is not None and injected.fault in RESPONSE_FAULTS:
            answer = await _response_fault(request, state.config, injected)
            if answer is not None:
                return answer
            injected = None
        if not self._keyed(request):
            state.rejected += 1
            return _api_error(request, 401, _BAD_KEY_MESSAGE)
        if request.method == "POST":
            answer = await _create(request, state, injected)
        else:
            answer = await _status(request, state, injected)
        return _with_tracing(request, answer)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse(self.state.stats())

    async def faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.state.clear_faults()
        elif request.method == "POST":
            try:
                _inject_from_json(self.state, await request.json())
            except ValueError as problem:
                return JSONResponse({"statusCode": 400, "message": str(problem)}, status_code=400)
        return JSONResponse(self.state.faults())

    async def video(self, request: Request) -> Response:
        return _video_response(request, stand_in_video())

    async def logs(self, request: Request) -> Response:
        return _logs(request, self.state) if self._keyed(request) else _api_error(request, 401, _BAD_KEY_MESSAGE)

    async def billing(self, request: Request) -> Response:
        if not self._keyed(request):
            return _api_error(request, 401, _BAD_KEY_MESSAGE)
        balance = round(self.state.config.balance_usd - self.state.charged_usd(), 6)
        return JSONResponse({"current_balance": balance, "currency": "USD"})

    async def models(self, request: Request) -> Response:
        return _price_list(request, self.state.config)

    def _keyed(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.state.config.api_key}"


def _inject_from_json(state: SandboxState, body: Any) -> None:
    """`state.inject` from the JSON of `POST /_sandbox/faults`; ValueError for anything malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("fault"), str):
        raise ValueError('body must be a JSON object with a string "fault"')
    unknown = set(body) - {"fault", "method", "count", "seconds"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]}")
    count = body.get("count", 1)
    seconds = body.get("seconds")
    if type(count) is not int:
        raise ValueError("count must be an integer")
    if seconds is not None and type(seconds) not in (int, float):
        raise ValueError("seconds must be a number")
    state.inject(body["fault"], method=body.get("method"), count=count, seconds=seconds)


async def _create(request: Request, state: SandboxState, injected: _QueuedFault | None) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return _bad_request(state, ["body must be JSON"], request)
    problems = _validate(body, str(request.base_url).rstrip("/"))
    if problems:
        return _bad_request(state, problems, request)
    try:
        outcome, create_fault, status_faults = _directives(body.get("prompt", ""))
    except ValueError as problem:
        return _bad_request(state, [str(problem)], request)
    if injected is not None and injected.fault in OUTCOME_FAULTS:
        outcome = injected.fault
    if injected is not None and injected.fault in CREATE_FAULTS:
        create_fault = injected.fault
    model = body["model"]
    generation_id = f"{uuid.uuid4()}:{model}"
    config = state.config
    queued, generating = config.timings(body) if config.timings else (config.queued_seconds, config.generating_seconds)
    cost = _cost(body, config)
    state.generations[generation_id] = _Record(
        generation_id, body, time.monotonic(), outcome, status_faults, queued, generating, cost_usd=cost
    )
    state.record(request, status="succeeded", model=model, cost_usd=cost, inference_id=generation_id)
    if create_fault == "accepted_reset":
        return await _drop_connection(request)
    if create_fault == "accepted_500":
        return _api_error(request, 500, "Internal server error")
    answer: dict[str, Any] = {"id": generation_id, "status": "queued"}
    headers = {"x-inference-id": generation_id}
    if config.report_costs:
        answer["meta"] = {"usage": {"tokens_used": round(cost * CREDITS_PER_USD)}}
        headers |= {"x-aimlapi-usd-spent": f"{cost:.9f}", "x-aimlapi-credits-used": str(round(cost * CREDITS_PER_USD))}
    return JSONResponse(answer, status_code=201, headers=headers)


def _cost(body: dict[str, Any], config: SandboxConfig) -> float:
    """What a create costs: the listed price per second times the duration (lip-sync: one flat price)."""
    if body["model"] == LIP_SYNC_MODEL:
        return LIP_SYNC_PRICE
    prices = (config.prices or {}).get(body["model"], PRICE_PER_SECOND)
    per_second = prices.get(body.get("resolution", "720p"), PRICE_PER_SECOND["720p"])
    return float(per_second * body.get("duration", 5))


def _with_tracing(request: Request, answer: Response) -> Response:
    """Echo a valid `X-Client-Request-Id` (an invalid one is dropped silently, as the real API does)."""
    client_id = request.headers.get("x-client-request-id", "")
    if _CLIENT_REQUEST_ID.fullmatch(client_id):
        answer.headers["x-client-request-id"] = client_id
    return answer


def _logs(request: Request, state: SandboxState) -> Response:
    """`GET /v2/logs`: the rows older than `logs_delay_seconds` in the window, newest first, a page at a time."""
    query = request.query_params
    if ("period" in query) == ("start" in query or "end" in query):
        return JSONResponse({"statusCode": 400, "message": "give either period or start and end"}, status_code=400)
    try:
        if "period" in query:
            hours = float(query["period"].removesuffix("h").removesuffix("d")) * (
                24 if query["period"].endswith("d") else 1
            )
            start, end = time.time() - hours * 3600, time.time()
        else:
            start = datetime.fromisoformat(query["start"].replace("Z", "+00:00")).timestamp()
            end = datetime.fromisoformat(query["end"].replace("Z", "+00:00")).timestamp()
        limit, offset = int(query.get("limit", "50")), int(query.get("offset", "0"))
    except (KeyError, ValueError):
        return JSONResponse({"statusCode": 400, "message": "a malformed window or page"}, status_code=400)
    if not 1 <= limit <= 100 or offset < 0:
        return JSONResponse({"statusCode": 400, "message": "limit must be 1-100"}, status_code=400)
    visible_until = time.time() - state.config.logs_delay_seconds
    rows = [row for row in reversed(state.log) if start <= row["at"] <= end and row["at"] <= visible_until]
    page = rows[offset : offset + limit]
    data = [
        {
            **{name: value for name, value in row.items() if name != "at"},
            "created": datetime.fromtimestamp(row["at"], UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "origin": "api",
            "tokens": {"input": 0, "output": 0, "total": 0},
        }
        for row in page
    ]
    pagination = {"limit": limit, "offset": offset, "total": len(rows), "has_more": offset + limit < len(rows)}
    return JSONResponse({"data": data, "pagination": pagination})


def _price_list(request: Request, config: SandboxConfig) -> Response:
    """`GET /v1/models?id=...&include=pricing` for the PixVerse models, with an ETag (304 when it matches)."""
    wanted = request.query_params.get("id")
    entries = []
    for model in MODELS:
        if wanted is not None and wanted != model:
            continue
        if model == LIP_SYNC_MODEL:
            pricing: dict[str, Any] = {
                "kind": "fixed",
                "currency": "USD",
                "units": [{"name": "video", "price": LIP_SYNC_PRICE, "per": 1}],
            }
        else:
            prices = (config.prices or {}).get(model, PRICE_PER_SECOND)
            variants = [
                {"when": {"resolution": resolution}, "price": price, "unit": "second", "per": 1}
                for resolution, price in prices.items()
            ]
            pricing = {"kind": "variants", "currency": "USD", "dimensions": ["resolution"], "variants": variants}
        entry: dict[str, Any] = {"id": model, "type": "internal/video-generations/submit", "aliases": [], "tags": []}
        if "pricing" in request.query_params.get("include", ""):
            entry["pricing"] = pricing
        entries.append(entry)
    body = json.dumps({"object": "list", "data": entries}).encode()
    etag = f'W/"{hashlib.sha256(body).hexdigest()[:16]}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


def _directives(prompt: str) -> tuple[str | None, str | None, list[_QueuedFault]]:
    """The outcome, create fault and status-response faults a prompt asks for; ValueError for a bad directive."""
    outcome = "fail" if FAIL_MARKER in prompt else None
    create_fault: str | None = None
    status_faults: list[_QueuedFault] = []
    for match in _DIRECTIVE.finditer(prompt):
        fault, has_count, count = match.group(1).partition(":")
        if fault not in FAULTS:
            raise ValueError(f"sandbox: unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
        if has_count and (not count.isdigit() or int(count) == 0):
            raise ValueError(f"sandbox: the count in {match.group(0)} must be a whole number of at least 1")
        if fault in RESPONSE_FAULTS:
            status_faults.append(_QueuedFault(fault, "GET", int(count) if has_count else None))
        elif has_count:
            raise ValueError(f"sandbox: {fault} is not a status-response fault and takes no count")
        elif fault in CREATE_FAULTS:
            create_fault = fault
        elif outcome not in (None, fault):
            raise ValueError(f"sandbox: a generation has one outcome, not both {outcome} and {fault}")
        else:
            outcome = fault
    return outcome, create_fault, status_faults


async def _status(request: Request, state: SandboxState, injected: _QueuedFault | None) -> Response:
    generation_id = request.query_params.get("generation_id")
    if not generation_id:
        return _bad_request(state, ["generation_id should not be empty"])
    record = state.generations.get(generation_id)
    if record is None and state.config.remember_earlier_runs and _EARLIER_RUN_ID.fullmatch(generation_id):
        record = _Record(generation_id, {}, 0.0, None, [], 0.0, 0.0)
    if record is None:
        return JSONResponse({"statusCode": 404, "message": "Generation not found"}, status_code=404)
    state.record(request, status="succeeded", model=record.body.get("model"), cost_usd=0.0, inference_id=record.id)
    own_fault = _take(record.status_faults, "GET")
    if own_fault is not None:
        answer = await _response_fault(request, state.config, own_fault)
        if answer is not None:
            return answer
    video = _video_fields(request, record)
    if injected is not None:
        return JSONResponse(_outcome_body(record.id, injected.fault, video))
    return JSONResponse(_lifecycle_body(record, video))


def _lifecycle_body(record: _Record, video: dict[str, Any]) -> dict[str, Any]:
    """The status of `record` now, on its timings and its outcome fault."""
    now = time.monotonic()
    age = now - record.created
    if age < record.queued_seconds:
        phase = "queued"
    elif age < record.queued_seconds + record.generating_seconds:
        phase = "generating"
    else:
        if record.final_served_at is None:
            record.final_served_at = now
        return _outcome_body(record.id, None if record.outcome == "unknown_status" else record.outcome, video)
    if record.outcome == "unknown_status":
        phase = "paused"
    return {"id": record.id, "status": phase}


def _outcome_body(generation_id: str, outcome: str | None, video: dict[str, Any]) -> dict[str, Any]:
    """The status body a generation with `outcome` (None: a normal one) ends with."""
    if outcome == "fail":
        return {"id": generation_id, "status": "error", "error": {"message": "Generation failed"}}
    if outcome == "fail_string":
        return {"id": generation_id, "status": "failed", "error": "Generation failed: the prompt was rejected"}
    if outcome == "no_video_url":
        return {"id": generation_id, "status": "completed"}
    if outcome == "unknown_status":
        return {"id": generation_id, "status": "paused"}
    if outcome == "never_completes":
        return {"id": generation_id, "status": "generating"}
    return {"id": generation_id, "status": "succeeded" if outcome == "succeeded" else "completed", "video": video}


def _video_fields(request: Request, record: _Record) -> dict[str, Any]:
    name = f"{record.id.split(':', 1)[0]}.mp4"
    return {
        "url": f"{str(request.base_url).rstrip('/')}/_sandbox/videos/{name}",
        "content_type": "video/mp4",
        "file_name": "output.mp4",
        "file_size": len(stand_in_video()),
    }


async def _response_fault(request: Request, config: SandboxConfig, queued: _QueuedFault) -> Response | None:
    """The faulty answer `queued` gives, or None when the request should then be answered normally (`slow`)."""
    fault = queued.fault
    retry_after = config.retry_after_seconds
    if fault == "slow":
        await asyncio.sleep(config.slow_seconds if queued.seconds is None else queued.seconds)
        return None
    if fault == "reset":
        return await _drop_connection(request)
    if fault == "gateway_502":
        return HTMLResponse(_GATEWAY_PAGE, status_code=502)
    if fault == "server_error":
        return _api_error(request, 500, "Internal server error")
    if fault == "unavailable":
        return _api_error(request, 503, "Service Unavailable", {"Retry-After": str(retry_after)})
    if fault == "rate_limited":
        return _api_error(request, 429, "Too Many Requests", {"Retry-After": str(retry_after)})
    if fault == "rate_limited_date":
        # Whole seconds, rounded up, so the date is never earlier than `retry_after` from now.
        when = formatdate(math.ceil(time.time()) + retry_after, usegmt=True)
        return _api_error(request, 429, "Too Many Requests", {"Retry-After": when})
    if fault == "html_200":
        return HTMLResponse(_MAINTENANCE_PAGE)
    if fault == "incomplete_json":
        return JSONResponse({"message": "OK", "meta": {}})
    if fault == "unauthorized":
        return _api_error(request, 401, _BAD_KEY_MESSAGE)
    if fault == "no_credits":
        return _api_error(request, 403, _NO_CREDITS_MESSAGE)
    raise AssertionError(f"not a response fault: {fault}")


def _api_error(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error in the shape of the real API's error bodies."""
    body = {
        "statusCode": status,
        "message": message,
        "path": request.url.path,
        "requestId": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return JSONResponse(body, status_code=status, headers=headers)


class _KeepRawReceive:
    """ASGI middleware that keeps the server's own `receive` in the scope, for `_drop_connection`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_RAW_RECEIVE] = receive
        await self.app(scope, receive, send)


async def _drop_connection(request: Request) -> Response:
    """Close the request's connection without answering, as a crashed proxy does.

    ASGI has no way to say this, so it reaches the socket through uvicorn's request cycle (the owner of its
    `receive`). Anywhere else it raises ConnectionResetError, which in-process transports pass to the client.
    """
    receive = request.scope.get(_RAW_RECEIVE)
    transport: Any = getattr(getattr(receive, "__self__", None), "transport", None)
    if receive is None or not callable(getattr(transport, "abort", None)):
        raise ConnectionResetError("sandbox fault: connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger zero makes the close a TCP RST (a reset), not an orderly FIN.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Once uvicorn has seen the connection go, it discards whatever this request answers.
    while (await receive())["type"] != "http.disconnect":
        pass
    return Response(status_code=204)


def _video_response(request: Request, data: bytes) -> Response:
    """The whole file, or the one byte range asked for (several ranges: the whole file, as RFC 9110 allows)."""
    headers = {"Accept-Ranges": "bytes"}
    match = _RANGE.fullmatch(request.headers.get("range", "").strip())
    if match is None or match.groups() == ("", ""):
        return Response(data, media_type="video/mp4", headers=headers)
    first, last = match.groups()
    size = len(data)
    if not first:
        start, end = max(0, size - int(last)), size - 1
        satisfiable = int(last) > 0
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return Response(data, media_type="video/mp4", headers=headers)
        satisfiable = start < size
    if not satisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(data[start : end + 1], status_code=206, media_type="video/mp4", headers=headers)


def _bad_request(state: SandboxState, problems: list[str], request: Request | None = None) -> Response:
    state.rejected += 1
    if request is not None:  # a refused create reached the API: logged as failed, never charged
        state.record(request, status="failed", model=None, cost_usd=0.0, inference_id=str(uuid.uuid4()))
    return JSONResponse({"statusCode": 400, "message": problems, "error": "Bad Request"}, status_code=400)


def _validate(body: Any, own_origin: str) -> list[str]:
    """The checks the real API makes, phrased the way it phrases them, strictly per model: a field the model does
    not take is refused (`property ... should not exist`)."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    model = body.get("model")
    if model not in MODELS:
        return [f"model must be one of the following values: {', '.join(MODELS)}"]
    fields, required, durations = MODELS[model]
    problems: list[str] = []
    unknown = sorted(set(body) - fields)
    if unknown:
        problems.append(f"property {unknown[0]} should not exist")
    for name in required:
        if name not in body:
            problems.append(f"{name} should not be empty")
    if model != LIP_SYNC_MODEL:
        problems += _video_problems(body, durations)
    problems += _input_problems(body, own_origin)
    problems += _speech_problems(body, lip_sync=model == LIP_SYNC_MODEL)
    return problems


def _video_problems(body: dict[str, Any], durations: tuple[int, ...]) -> list[str]:
    problems: list[str] = []
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append("prompt should not be empty")
    elif len(prompt) > _MAX_PROMPT:
        problems.append(f"prompt must be shorter than or equal to {_MAX_PROMPT} characters")
    choices = (("aspect_ratio", _ASPECT_RATIOS), ("resolution", _RESOLUTIONS), ("style", _STYLES))
    for name, allowed in (*choices, ("thinking_type", _THINKING)):
        if name in body and body[name] not in allowed:
            problems.append(f"{name} must be one of the following values: {', '.join(allowed)}")
    duration = body.get("duration", 5)
    if type(duration) is not int or duration not in durations:
        problems.append(f"duration must be one of the following values: {', '.join(map(str, durations))}")
    elif duration == 8 and body.get("resolution") == "1080p":
        problems.append("1080p does not support 8 second videos")
    seed = body.get("seed")
    if seed is not None and (type(seed) is not int or not 0 <= seed <= _MAX_SEED):
        problems.append(f"seed must be an integer from 0 to {_MAX_SEED}")
    negative = body.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        problems.append("negative_prompt must be a string")
    for switch in ("generate_audio_switch", "generate_multi_clip_switch"):
        if switch in body and type(body[switch]) is not bool:
            problems.append(f"{switch} must be a boolean value")
    return problems


def _input_problems(body: dict[str, Any], own_origin: str) -> list[str]:
    """Inputs travel as https URLs or data URIs (there is no upload route); the sandbox also serves its own."""
    problems: list[str] = []
    kinds = {"image_url": "image", "tail_image_url": "image", "video_url": "video", "audio_url": "audio"}
    for name, kind in kinds.items():
        if name not in body:
            continue
        value = body[name]
        if not isinstance(value, str):
            problems.append(f"{name} must be a URL string")
        elif value.startswith("data:"):
            if not re.fullmatch(rf"data:{kind}/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+", value):
                problems.append(f"{name} must be a data URI of a {kind} in base64")
        elif not (value.startswith("https://") or value.startswith(own_origin + "/")):
            problems.append(f"{name} must be an https URL")
    return problems


def _speech_problems(body: dict[str, Any], *, lip_sync: bool) -> list[str]:
    problems: list[str] = []
    content, speaker = body.get("lip_sync_tts_content"), body.get("lip_sync_tts_speaker")
    if content is not None and (not isinstance(content, str) or not content.strip()):
        problems.append("lip_sync_tts_content should not be empty")
    if speaker is not None and speaker not in _SPEAKERS:
        problems.append(f"lip_sync_tts_speaker must be one of the following values: {', '.join(_SPEAKERS)}")
    if speaker is not None and content is None:
        problems.append("lip_sync_tts_speaker needs lip_sync_tts_content")
    if lip_sync:
        spoken = content is not None and speaker is not None
        if ("audio_url" in body) == spoken:
            problems.append("use either audio_url or lip_sync_tts_content with lip_sync_tts_speaker, not both")
    return problems


class RunningSandbox:
    """A sandbox served by uvicorn on a loopback port in a background thread (so any event loop can use it)."""

    def __init__(self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = create_app(config)
        self.state: SandboxState = self.app.state.sandbox
        # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say so, and with
        # Nagle on, each request on a kept-alive connection waits about 40 ms for a delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._server = uvicorn.Server(
            # log_config=None: leave logging alone. uvicorn's own config sends access lines to stdout, which is the
            # protocol channel when `pixverse-mcp --sandbox` runs over stdio.
            uvicorn.Config(self.app, access_log=False, lifespan="off", backlog=2048, log_config=None)
        )
        self._thread = threading.Thread(target=self._serve, name="pixverse-sandbox", daemon=True)

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> RunningSandbox:
        """Start serving; returns once the port accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> RunningSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the sandbox in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m pixverse_mcp.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--queued-seconds", type=float, default=SandboxConfig.queued_seconds)
    parser.add_argument("--generating-seconds", type=float, default=SandboxConfig.generating_seconds)
    parser.add_argument("--slow-seconds", type=float, default=SandboxConfig.slow_seconds)
    parser.add_argument("--retry-after-seconds", type=int, default=SandboxConfig.retry_after_seconds)
    args = parser.parse_args(argv)
    config = SandboxConfig(
        queued_seconds=args.queued_seconds,
        generating_seconds=args.generating_seconds,
        slow_seconds=args.slow_seconds,
        retry_after_seconds=args.retry_after_seconds,
    )
    print(f"sandbox of the AI/ML API on http://{args.host}:{args.port} (key: {config.api_key})", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
