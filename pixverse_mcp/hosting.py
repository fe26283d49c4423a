"""Serving over HTTP (SSE or Streamable HTTP), locked down by default.

Over HTTP the server spends its owner's credits for whoever can reach it, so:
- a bearer token (`PIXVERSE_MCP_AUTH_TOKEN`) is required on every request when set, compared in constant time;
- the server refuses to listen beyond loopback without a token unless told `--allow-unauthenticated`;
- Host and Origin are checked against an allow-list (loopback by default) against DNS rebinding (the SDK's
  transport security, which the MCP spec asks of HTTP servers);
- a refused token gets a 401 that clients show in our words (see `BearerTokenMiddleware`), and the OAuth discovery
  paths answer 404 with or without a token: there is no authorization server, and a 401 there would send clients
  looking for one;
- `GET /healthz` answers without a token and says nothing but "ok" and the version;
- on SIGTERM, in-flight waits end at once with their generation id, and the process exits within seconds;
- abuse is bounded before authentication: a connection must send its request headers within
  `REQUEST_HEADER_SECONDS` (idle or dripping sockets are closed), connections are capped, sessions expire when idle
  and are capped, the open-file limit is raised to what the system allows, and repeated log lines are rate-limited.

The token check is a small ASGI middleware rather than the SDK's `token_verifier`: that hook is OAuth resource-server
auth, which advertises an authorization server; a static shared token has none. The server prints where it serves
on stderr once it listens, and uvicorn's own lines (start, stop, its errors) are logged as
`pixverse_mcp.hosting.uvicorn` rather than as `uvicorn.error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import sys
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
from pixverse_mcp.tasks import TaskNameHeaderCheck

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
OPEN_PATHS: Final = frozenset({"/healthz"})
# Where OAuth clients look for an authorization server (RFC 9728, RFC 8414, OpenID Connect Discovery; each also with
# the endpoint's path after it, and OpenID's also before it).
OAUTH_DISCOVERY_PREFIXES: Final = (
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
)
OPENID_SUFFIX: Final = "/.well-known/openid-configuration"
# What a client shows for a refused token: the TypeScript SDK and the MCP Inspector print the body, the Python SDK
# (so FastMCP and the frameworks built on it) the body's JSON-RPC error message. No double quote: it also goes in the
# challenge's quoted-string.
UNAUTHORIZED_MESSAGE: Final = (
    "A valid bearer token is required: set the header 'Authorization: Bearer <token>' to the token this server was "
    "started with (its PIXVERSE_MCP_AUTH_TOKEN)."
)
# A JSON-RPC error code from the implementation-defined band (-32000..-32019); the SDKs use -32000 and -32001 inside.
UNAUTHORIZED_CODE: Final = -32010
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
    """Refuse every HTTP request without `Authorization: Bearer <token>` (401 with `WWW-Authenticate`).

    The 401 carries our words where clients look for them: the body is a JSON-RPC error whose message says what to
    set (the Python SDK, and so FastMCP, shows a JSON-RPC error body's message; the TypeScript SDK and the MCP
    Inspector show the body), and for a wrong token the RFC 6750 challenge has `error="invalid_token"` and the same
    words as `error_description`. A request with no token gets the bare challenge, as RFC 6750 3.1 asks. No
    `resource_metadata`: there is no authorization server to point to.
    """

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
        challenge = 'Bearer realm="pixverse-mcp"'
        if is_bearer and presented:
            challenge += f', error="invalid_token", error_description="{UNAUTHORIZED_MESSAGE}"'
        error = {"code": UNAUTHORIZED_CODE, "message": UNAUTHORIZED_MESSAGE}
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
        await _respond(send, 401, body, [(b"www-authenticate", challenge.encode())])


class NoOAuthDiscovery:
    """Answer 404 on the OAuth discovery paths, token or not: this server has no authorization server, and a 401
    there tells clients to start an OAuth flow that cannot exist instead of showing why they were refused."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(OAUTH_DISCOVERY_PREFIXES) or path.endswith(OPENID_SUFFIX):
            await _respond(
                send, 404, json.dumps({"error": "not_found", "message": "This server has no OAuth."}).encode()
            )
            return
        await self._app(scope, receive, send)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A whole JSON response, straight from a middleware."""
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start})
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
            asgi = TaskNameHeaderCheck(asgi)
        if settings.auth_token is not None:
            asgi = BearerTokenMiddleware(asgi, settings.auth_token.get_secret_value())
        asgi = NoOAuthDiscovery(asgi)
        logging.getLogger("uvicorn.error").addFilter(_UVICORN_AS_OURS)
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
        label, path = ("SSE", "/sse") if options.transport == "sse" else ("Streamable HTTP", "/mcp")
        http_server = _DrainingServer(config, on_exit=service.drain if service else None, announce=(label, path))
        await http_server.serve()


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


class _UvicornAsOurs(logging.Filter):
    """uvicorn logs its start, its stop and its errors as `uvicorn.error`, which reads like an error on every line:
    they are this server's lines, so they carry its name."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.name = f"{__name__}.uvicorn"
        return True


_UVICORN_AS_OURS = _UvicornAsOurs()


class _DrainingServer(uvicorn.Server):
    """uvicorn, plus: it says where it serves once it listens, and on the first exit signal it ends every in-flight
    wait (each returns its id) before closing."""

    def __init__(
        self, config: uvicorn.Config, *, on_exit: Callable[[], None] | None, announce: tuple[str, str]
    ) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers and self.servers[0].sockets:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            label, path = self._announce
            print(f"pixverse-mcp: serving {label} at http://{shown}:{port}{path}", file=sys.stderr, flush=True)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Signal handlers run on the event loop's thread, between its steps: schedule the drain as a loop callback.
        if self._on_exit is not None and not self.should_exit:
            logger.info("shutting down: ending in-flight waits (their generation ids are returned and journaled)")
            asyncio.get_running_loop().call_soon_threadsafe(self._on_exit)
        super().handle_exit(sig, frame)
