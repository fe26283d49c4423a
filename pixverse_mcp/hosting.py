"""Serving over HTTP (SSE or Streamable HTTP), locked down by default.

Over HTTP the server spends its owner's credits for whoever can reach it, so:
- a bearer token (`PIXVERSE_MCP_AUTH_TOKEN`) is required on every request when set, compared in constant time;
- the server refuses to listen beyond loopback without a token unless told `--allow-unauthenticated`;
- Host and Origin are checked against an allow-list (loopback by default) against DNS rebinding (the SDK's
  transport security, which the MCP spec asks of HTTP servers);
- `GET /healthz` answers without a token and says nothing but "ok" and the version;
- on SIGTERM, in-flight waits end at once with their generation id, and the process exits within seconds;
- abuse is bounded before authentication: a connection must send its request headers within
  `REQUEST_HEADER_SECONDS` (idle or dripping sockets are closed), connections are capped, sessions expire when idle
  and are capped, the open-file limit is raised to what the system allows, and repeated log lines are rate-limited.

The token check is a small ASGI middleware rather than the SDK's `token_verifier`: that hook is OAuth resource-server
auth, which advertises an authorization server; a static shared token has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Final, Literal

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from pixverse_mcp import defaults
from pixverse_mcp.app import open_app
from pixverse_mcp.config import Settings
from pixverse_mcp.server import build_server

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
OPEN_PATHS: Final = frozenset({"/healthz"})
# uvicorn waits this long for open connections (SSE streams stay open) before closing them on shutdown.
GRACEFUL_SHUTDOWN_SECONDS: Final = 3
# A shared token shorter than this could be guessed: refused when anyone beyond this machine can reach the server.
MIN_TOKEN_LENGTH: Final = 16
# A client has this long from connecting (or from its last answer) to send a request's headers; uvicorn alone
# would keep a silent or dripping socket open forever, and enough of them lock everyone out.
REQUEST_HEADER_SECONDS: Final = 10.0
# Beyond these, new connections get 503 and new sessions are refused (each session holds ~40 KB).
# An idle keep-alive connection is kept this long. Clients reuse one for up to 5 s (httpx's default), so uvicorn's
# default of 5 s races them: a request sent on a connection the server is closing fails, and the MCP SDK client
# then ends the whole session. Longer than any client keeps it, as long as the header deadline allows.
KEEP_ALIVE_SECONDS: Final = int(REQUEST_HEADER_SECONDS)
MAX_CONNECTIONS: Final = 1000
MAX_SESSIONS: Final = 1000
# A stateful session nobody used for this long is closed (the SDK's default is 30 minutes).
SESSION_IDLE_SECONDS: Final = 600.0


class HostingError(RuntimeError):
    """The server will not start as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class HttpOptions:
    """How to serve over HTTP."""

    transport: Literal["sse", "streamable-http"]
    host: str = defaults.HTTP_HOST
    port: int = defaults.HTTP_PORT
    stateless: bool = False
    """Streamable HTTP only: no sessions, JSON responses (several instances behind a load balancer)."""
    allow_unauthenticated: bool = False


class BearerTokenMiddleware:
    """Refuse every HTTP request without `Authorization: Bearer <token>` (401 with `WWW-Authenticate`)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (scope["type"] == "http" and scope["path"] in OPEN_PATHS):
            await self._app(scope, receive, send)
            return
        scheme, _, presented = Headers(scope=scope).get("authorization", "").partition(" ")
        is_bearer = scheme.lower() == "bearer"
        if is_bearer and hmac.compare_digest(presented.strip().encode(), self._token):
            await self._app(scope, receive, send)
            return
        if scope["type"] != "http":  # a websocket (no routes today): refuse before it is accepted
            await send({"type": "websocket.close", "code": 1008})
            return
        # RFC 6750 3.1: an error code only for a bearer token that is wrong, not for a missing one or another scheme.
        challenge = 'Bearer realm="pixverse-mcp"' + (', error="invalid_token"' if is_bearer and presented else "")
        body = json.dumps({"error": "unauthorized", "message": "A valid bearer token is required."}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: loopback names always, plus the hosts and origins the settings add."""
    hosts = _with_any_port(["127.0.0.1", "localhost", "[::1]", *settings.allowed_hosts])
    origins = _with_any_port(["http://127.0.0.1", "http://localhost", "http://[::1]", *settings.allowed_origins])
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def _with_any_port(names: list[str]) -> list[str]:
    """Each name as given, plus on any port when it names none (`mcp.example.com` also allows `:8000`)."""
    allowed: list[str] = []
    for name in names:
        host = name.split("://", 1)[-1].rsplit("]", 1)[-1]  # what follows an IPv6 literal's brackets
        allowed += [name] if ":" in host else [name, f"{name}:*"]
    return allowed


def check_exposure(settings: Settings, options: HttpOptions) -> None:
    """Refuse to serve beyond loopback with no token (unless explicitly allowed), or with a guessable one."""
    if options.host in LOOPBACK_HOSTS:
        return
    token = settings.auth_token.get_secret_value() if settings.auth_token is not None else None
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise HostingError(
            f"refusing to listen on {options.host} with a PIXVERSE_MCP_AUTH_TOKEN of {len(token)} characters: "
            f"use at least {MIN_TOKEN_LENGTH} (for example: openssl rand -hex 32)."
        )
    if token is not None or options.allow_unauthenticated:
        return
    raise HostingError(
        f"refusing to listen on {options.host} without authentication: anyone who can reach it could spend your "
        "AI/ML API credits. Set PIXVERSE_MCP_AUTH_TOKEN (clients then send 'Authorization: Bearer <token>'), "
        "or pass --allow-unauthenticated if something in front of this server already authenticates."
    )


async def serve_http(settings: Settings, options: HttpOptions) -> None:
    """Serve until SIGINT/SIGTERM; then end in-flight waits with their ids and exit."""
    check_exposure(settings, options)
    async with open_app(settings) as app:
        server = build_server(settings, app)
        security = transport_security(settings)
        asgi: ASGIApp
        if options.transport == "sse":
            asgi = server.sse_app(transport_security=security, host=options.host)
        else:
            asgi = server.streamable_http_app(
                transport_security=security,
                host=options.host,
                stateless_http=options.stateless,
                json_response=options.stateless,
                session_idle_timeout=SESSION_IDLE_SECONDS,
                max_sessions=MAX_SESSIONS,
            )
        if settings.auth_token is not None:
            asgi = BearerTokenMiddleware(asgi, settings.auth_token.get_secret_value())
        config = uvicorn.Config(
            asgi,
            host=options.host,
            port=options.port,
            log_level=settings.log_level.lower(),
            log_config=None,  # keep our stderr handler: uvicorn's default config writes access lines to stdout
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            http=_HeaderDeadlineProtocol,
            limit_concurrency=MAX_CONNECTIONS,
        )
        raise_open_file_limit()
        service = app.service
        await _DrainingServer(config, on_exit=service.drain if service else None).serve()


def raise_open_file_limit() -> None:
    """Let the process hold as many sockets as the system allows (the usual soft limit, 1024, is reached by a
    thousand idle connections long before `MAX_CONNECTIONS` can refuse them politely)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class _HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, plus a deadline for each request's headers: a connection that stays silent, or
    drips its headers, is closed after `REQUEST_HEADER_SECONDS` instead of holding a socket forever."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(REQUEST_HEADER_SECONDS, self._expire)

    def _expire(self) -> None:
        waiting_for_headers = self.cycle is None or self.cycle.response_complete
        if waiting_for_headers and not self.transport.is_closing():
            self.transport.close()


class _DrainingServer(uvicorn.Server):
    """uvicorn, plus: on the first exit signal, end every in-flight wait (each returns its id) before closing."""

    def __init__(self, config: uvicorn.Config, *, on_exit: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Signal handlers run on the event loop's thread, between its steps: schedule the drain as a loop callback.
        if self._on_exit is not None and not self.should_exit:
            logger.info("shutting down: ending in-flight waits (their generation ids are returned and journaled)")
            asyncio.get_running_loop().call_soon_threadsafe(self._on_exit)
        super().handle_exit(sig, frame)
