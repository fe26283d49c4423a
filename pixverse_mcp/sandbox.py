"""A local emulator of the AI/ML API's PixVerse v5 text-to-video endpoints, for trying the server without a key
and as the real HTTP peer of the integration tests.

It checks the bearer key and the body as the real API does, walks each generation through
queued -> generating -> completed on configurable timings, and serves a stand-in video file.
A prompt containing `FAIL_MARKER` ends as failed instead. `GET /_sandbox/stats` counts requests, so tests can
prove that bad input never reached it and that no create was sent twice.

Its enum lists are its own literals, not imported from `pixverse_mcp.models`, on purpose: one wrong value must not
be able to pass both sides. It imports nothing else from the package either.

Run it alone with `python -m pixverse_mcp.sandbox --port 9000`.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SANDBOX_API_KEY: Final = "sandbox-key"
FAIL_MARKER: Final = "[sandbox:fail]"
MODEL: Final = "pixverse/v5/text-to-video"
PATHS: Final = ("/v2/video/generations", "/v2/generate/video/pixverse/generation")

_ASPECT_RATIOS: Final = ("16:9", "4:3", "1:1", "3:4", "9:16")
_RESOLUTIONS: Final = ("360p", "540p", "720p", "1080p")
_DURATIONS: Final = (5, 8)
_STYLES: Final = ("anime", "3d_animation", "clay", "comic", "cyberpunk")
_MAX_SEED: Final = 2147483647
_MAX_PROMPT: Final = 2048
# The usage figure the real API reported for one 5 s 720p clip (upstream.md); scaled by size below.
_TOKENS_PER_CLIP: Final = 840_000

# A stand-in for the rendered file: an ISO-BMFF `ftyp` box, so tools that sniff the type see an MP4.
STAND_IN_VIDEO: Final = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 1000


@dataclass
class SandboxConfig:
    """Timings (seconds) and the key the sandbox accepts."""

    api_key: str = SANDBOX_API_KEY
    queued_seconds: float = 2.0
    generating_seconds: float = 10.0


@dataclass
class _Record:
    id: str
    body: dict[str, Any]
    created: float
    fails: bool


@dataclass
class SandboxState:
    """What the sandbox has seen; tests read it (in-process) or `GET /_sandbox/stats` (over HTTP)."""

    config: SandboxConfig
    generations: dict[str, _Record] = field(default_factory=dict)
    creates: int = 0
    status_requests: int = 0
    rejected: int = 0

    def stats(self) -> dict[str, int]:
        """Request counters: `creates` counts every POST that reached a handler, valid or not."""
        return {
            "creates": self.creates,
            "accepted": len(self.generations),
            "status_requests": self.status_requests,
            "rejected": self.rejected,
        }

    def reset(self) -> None:
        """Forget every generation and zero the counters."""
        self.generations.clear()
        self.creates = self.status_requests = self.rejected = 0


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """The sandbox as a Starlette app; its state is `app.state.sandbox`."""
    state = SandboxState(config or SandboxConfig())

    def unauthorized(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {state.config.api_key}":
            state.rejected += 1
            return JSONResponse({"statusCode": 401, "message": "Unauthorized"}, status_code=401)
        return None

    async def generation(request: Request) -> Response:
        if request.method == "POST":
            state.creates += 1
        else:
            state.status_requests += 1
        if (refusal := unauthorized(request)) is not None:
            return refusal
        if request.method == "POST":
            return await _create(request, state)
        return _status(request, state)

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse(state.stats())

    async def video(request: Request) -> Response:
        return Response(STAND_IN_VIDEO, media_type="video/mp4")

    routes = [Route(path, generation, methods=["GET", "POST"]) for path in PATHS]
    routes += [
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/videos/{name}", video, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = state
    return app


async def _create(request: Request, state: SandboxState) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return _bad_request(state, ["body must be JSON"])
    problems = _validate(body)
    if problems:
        return _bad_request(state, problems)
    generation_id = f"{uuid.uuid4()}:{MODEL}"
    fails = FAIL_MARKER in body["prompt"]
    state.generations[generation_id] = _Record(generation_id, body, time.monotonic(), fails)
    size_factor = (1 + _RESOLUTIONS.index(body.get("resolution", "720p"))) * body.get("duration", 5) / 15
    usage = {"tokens_used": round(_TOKENS_PER_CLIP * size_factor)}
    return JSONResponse({"id": generation_id, "status": "queued", "meta": {"usage": usage}}, status_code=201)


def _status(request: Request, state: SandboxState) -> Response:
    generation_id = request.query_params.get("generation_id")
    if not generation_id:
        return _bad_request(state, ["generation_id should not be empty"])
    record = state.generations.get(generation_id)
    if record is None:
        return JSONResponse({"statusCode": 404, "message": "Generation not found"}, status_code=404)
    age = time.monotonic() - record.created
    config = state.config
    if age < config.queued_seconds:
        return JSONResponse({"id": record.id, "status": "queued"})
    if age < config.queued_seconds + config.generating_seconds:
        return JSONResponse({"id": record.id, "status": "generating"})
    if record.fails:
        return JSONResponse({"id": record.id, "status": "error", "error": {"message": "Generation failed"}})
    name = f"{record.id.split(':', 1)[0]}.mp4"
    return JSONResponse(
        {
            "id": record.id,
            "status": "completed",
            "video": {
                "url": f"{str(request.base_url).rstrip('/')}/_sandbox/videos/{name}",
                "content_type": "video/mp4",
                "file_name": "output.mp4",
                "file_size": len(STAND_IN_VIDEO),
            },
        }
    )


def _bad_request(state: SandboxState, problems: list[str]) -> Response:
    state.rejected += 1
    return JSONResponse({"statusCode": 400, "message": problems, "error": "Bad Request"}, status_code=400)


def _validate(body: Any) -> list[str]:
    """The checks the real API makes, phrased the way it phrases them."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems: list[str] = []
    if body.get("model") != MODEL:
        problems.append(f"model must be {MODEL}")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append("prompt should not be empty")
    elif len(prompt) > _MAX_PROMPT:
        problems.append(f"prompt must be shorter than or equal to {_MAX_PROMPT} characters")
    for name, allowed in (("aspect_ratio", _ASPECT_RATIOS), ("resolution", _RESOLUTIONS), ("style", _STYLES)):
        if name in body and body[name] not in allowed:
            problems.append(f"{name} must be one of the following values: {', '.join(allowed)}")
    duration = body.get("duration", 5)
    if type(duration) is not int or duration not in _DURATIONS:
        problems.append("duration must be one of the following values: 5, 8")
    elif duration == 8 and body.get("resolution") == "1080p":
        problems.append("1080p does not support 8 second videos")
    seed = body.get("seed")
    if seed is not None and (type(seed) is not int or not 0 <= seed <= _MAX_SEED):
        problems.append(f"seed must be an integer from 0 to {_MAX_SEED}")
    negative = body.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        problems.append("negative_prompt must be a string")
    unknown = set(body) - {
        "model",
        "prompt",
        "aspect_ratio",
        "resolution",
        "duration",
        "style",
        "seed",
        "negative_prompt",
    }
    if unknown:
        problems.append(f"property {sorted(unknown)[0]} should not exist")
    return problems


class RunningSandbox:
    """A sandbox served by uvicorn on a loopback port in a background thread (so any event loop can use it)."""

    def __init__(self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = create_app(config)
        self.state: SandboxState = self.app.state.sandbox
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", backlog=2048)
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
    args = parser.parse_args(argv)
    config = SandboxConfig(queued_seconds=args.queued_seconds, generating_seconds=args.generating_seconds)
    print(f"sandbox of the AI/ML API on http://{args.host}:{args.port} (key: {config.api_key})", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
