"""SSE and Streamable HTTP (stateful and stateless) over real sockets: the real server as a subprocess, driven by the
SDK's client and by raw HTTP requests with forged headers, against the sandbox over real HTTP.

Covers: tools work on every transport; the bearer token (401 with WWW-Authenticate, the SDK client cannot connect);
DNS-rebinding protection (Host and Origin against the allow-list, extended by settings); an open, discreet
`/healthz`; the refusal to listen beyond loopback without a token; the CLI's defaults and its stdio transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from pixverse_mcp import __version__
from pixverse_mcp.hosting import UNAUTHORIZED_MESSAGE
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox
from tests.conftest import HostingFactory, server_env, stdio_client
from tests.http_server import (
    HTTP_MODES,
    SSE,
    STATEFUL,
    STATELESS,
    HttpServer,
    Mode,
    StatusLog,
    free_port,
    sdk_client,
    served,
    spawn,
    stop,
)

pytestmark = pytest.mark.anyio

TOKEN = "transport-test-token-5f1c9a7e3b"
EXTRA_HOST = "mcp.example.com"
EXTRA_ORIGIN = "https://app.example.com"
EVIL_HOST = "evil.example.com"
EVIL_ORIGIN = "http://evil.example.com"
PROTOCOL = "2025-11-25"
CLIENT_INFO = {"name": "raw-test", "version": "1"}
# A request that, if it reached the tool, would start a (paid) generation upstream.
CREATE_CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {"name": "create_video", "arguments": {"prompt": "a kite over a beach"}},
}
DEADLINE_SECONDS = 15.0


# The server of `hosted` (one per HTTP mode): a token, and one extra allowed host and origin exactly as the README says:
# "add your public name with PIXVERSE_MCP_ALLOWED_HOSTS=mcp.example.com".
HOSTED_ENV = {
    "PIXVERSE_MCP_AUTH_TOKEN": TOKEN,
    "PIXVERSE_MCP_ALLOWED_HOSTS": EXTRA_HOST,
    "PIXVERSE_MCP_ALLOWED_ORIGINS": EXTRA_ORIGIN,
}
EVERY_MODE = pytest.mark.parametrize("hosted", HTTP_MODES, ids=[mode.id for mode in HTTP_MODES], indirect=True)


def raw_headers(token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": PROTOCOL,
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return {**headers, **extra}


def initialize_message(version: str = PROTOCOL) -> dict[str, Any]:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": CLIENT_INFO}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


class RawSession:
    """Raw JSON-RPC over one HTTP mode, with an initialized session where the mode has sessions.

    `post(message, headers)` sends one message to where that mode takes messages: with good headers it is a
    request the server accepts, so a refusal with forged headers is the guard's doing and nothing else's.
    """

    def __init__(self, http: httpx2.AsyncClient, server: HttpServer) -> None:
        self.http = http
        self.server = server
        self.url = server.url
        self.extra: dict[str, str] = {}

    async def post(self, message: dict[str, Any], headers: dict[str, str]) -> httpx2.Response:
        return await self.http.post(self.url, json=message, headers={**headers, **self.extra})


@asynccontextmanager
async def raw_session(server: HttpServer) -> AsyncIterator[RawSession]:
    async with httpx2.AsyncClient(timeout=DEADLINE_SECONDS) as http:
        session = RawSession(http, server)
        if server.mode == STATELESS:
            yield session
        elif server.mode == STATEFUL:
            response = await session.post(initialize_message(), raw_headers())
            assert response.status_code == 200, response.text
            session.extra = {"Mcp-Session-Id": response.headers["mcp-session-id"]}
            assert (await session.post(INITIALIZED, raw_headers())).status_code == 202
            yield session
        else:
            async with http.stream("GET", server.url, headers=raw_headers()) as stream:
                assert stream.status_code == 200
                lines = stream.aiter_lines()
                async for line in lines:
                    if line.startswith("data: /messages/"):
                        session.url = server.base_url + line.removeprefix("data: ")
                        break
                assert (await session.post(initialize_message(), raw_headers())).status_code == 202
                async for line in lines:
                    if line.startswith("data: ") and '"id":1' in line.replace(" ", ""):
                        break
                assert (await session.post(INITIALIZED, raw_headers())).status_code == 202
                yield session


async def wait_for_creates(sandbox: RunningSandbox, expected: int) -> int:
    """The sandbox's create count once it reaches `expected` (SSE answers later, over the stream), or at the end."""
    with anyio.move_on_after(DEADLINE_SECONDS):
        while sandbox.state.stats()["creates"] < expected:
            await anyio.sleep(0.02)
    return sandbox.state.stats()["creates"]


async def connection_fails(server: HttpServer, **options: Any) -> BaseException:
    """Connect the SDK client and call a tool; return the error it ends with (the type differs per transport).

    Fails the test if the client connects and the call succeeds, or if nothing happens before the deadline.
    """
    try:
        with anyio.fail_after(DEADLINE_SECONDS):
            async with sdk_client(server, **options) as client:
                await client.call_tool("list_videos", {})
    except TimeoutError:
        raise
    except Exception as exc:  # an MCPError (Streamable HTTP) or an HTTPStatusError (SSE), possibly in a group
        return exc
    raise AssertionError("the SDK client connected and called a tool")


# --- tools over every HTTP mode -------------------------------------------------------------------------------


@EVERY_MODE
async def test_generate_video_blocking_completes(hosted: HttpServer, shared_sandbox: RunningSandbox) -> None:
    messages: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message)

    async with sdk_client(hosted, token=TOKEN) as client:
        tools = await client.list_tools()
        result = await client.call_tool(
            "generate_video_blocking", {"prompt": "a red fox running through snow"}, progress_callback=on_progress
        )
        listing = await client.call_tool("list_videos", {})

    assert {"create_video", "get_video_status", "generate_video_blocking", "list_videos"} <= {
        tool.name for tool in tools.tools
    }
    assert not result.is_error, result.content
    state = result.structured_content
    assert state is not None
    assert state["status"] == "completed"
    assert state["done"] is True
    assert state["video_url"].startswith(shared_sandbox.url + "/_sandbox/videos/")
    assert listing.structured_content is not None
    assert state["generation_id"] in [video["generation_id"] for video in listing.structured_content["videos"]]
    if not hosted.mode.stateless:
        # Stateless JSON responses give progress up (documented); the other modes stream it.
        assert messages, "no progress notification arrived"


# --- the bearer token -----------------------------------------------------------------------------------------


@EVERY_MODE
@pytest.mark.parametrize(
    "token", [None, "wrong-" + TOKEN, TOKEN[:-1], TOKEN + "x"], ids=["none", "wrong", "prefix", "longer"]
)
async def test_sdk_client_without_the_token_cannot_connect(
    hosted: HttpServer, shared_sandbox: RunningSandbox, token: str | None
) -> None:
    status_log = StatusLog()
    await connection_fails(hosted, token=token, status_log=status_log)

    assert status_log.statuses, "the SDK client sent nothing"
    assert set(status_log.statuses) == {401}


@EVERY_MODE
@pytest.mark.parametrize(
    ("headers", "status", "challenge"),
    [
        (raw_headers(token=None), 401, 'Bearer realm="pixverse-mcp"'),
        (raw_headers(token="not-the-token"), 401, 'Bearer realm="pixverse-mcp", error="invalid_token"'),
        (raw_headers(token=None, Authorization=f"Basic {TOKEN}"), 401, 'Bearer realm="pixverse-mcp"'),
        (raw_headers(token=None, Authorization=TOKEN), 401, 'Bearer realm="pixverse-mcp"'),
        (raw_headers(Host=EVIL_HOST), 421, None),
        (raw_headers(Host=f"{EVIL_HOST}:80"), 421, None),
        (raw_headers(Host=f"127.0.0.1.{EVIL_HOST}"), 421, None),
        (raw_headers(Origin=EVIL_ORIGIN), 403, None),
        (raw_headers(Origin="http://localhost.evil.example.com"), 403, None),
        (raw_headers(Origin="null"), 403, None),
    ],
    ids=[
        "no-token",
        "wrong-token",
        "basic-scheme",
        "no-scheme",
        "evil-host",
        "evil-host-port",
        "loopback-prefixed-host",
        "evil-origin",
        "loopback-prefixed-origin",
        "null-origin",
    ],
)
async def test_refused_requests_never_reach_a_tool(
    hosted: HttpServer,
    shared_sandbox: RunningSandbox,
    headers: dict[str, str],
    status: int,
    challenge: str | None,
) -> None:
    before = shared_sandbox.state.stats()["creates"]
    async with raw_session(hosted) as session:
        refused = await session.post(CREATE_CALL, headers)
        # The same request with good headers does reach the tool: the refusal above was the guard's alone.
        accepted = await session.post(CREATE_CALL, raw_headers())
        after = await wait_for_creates(shared_sandbox, before + 1)

    assert refused.status_code == status, refused.text
    if challenge is not None:
        assert refused.headers["www-authenticate"].startswith(challenge)
        if "Authorization" not in headers:
            # RFC 6750 3.1: a request with no credentials at all gets no error code.
            assert refused.headers["www-authenticate"] == challenge
        assert refused.json()["error"]["message"] == UNAUTHORIZED_MESSAGE
        assert TOKEN not in refused.text
    else:
        assert "www-authenticate" not in refused.headers
    assert accepted.status_code in (200, 202), accepted.text
    assert after == before + 1, "exactly one create (the accepted request's) must reach the API"


@EVERY_MODE
async def test_sdk_client_refused_on_a_forged_host(hosted: HttpServer) -> None:
    status_log = StatusLog()
    await connection_fails(hosted, token=TOKEN, headers={"Host": EVIL_HOST}, status_log=status_log)

    assert set(status_log.statuses) == {421}


# --- DNS-rebinding allow-list ---------------------------------------------------------------------------------


@EVERY_MODE
@pytest.mark.parametrize("with_port", [False, True], ids=["behind-a-proxy", "direct-on-its-port"])
async def test_configured_extra_host_and_origin_are_accepted(hosted: HttpServer, with_port: bool) -> None:
    # Behind a proxy on 443 clients send `Host: mcp.example.com`; reaching the server on its own port, as the
    # README's team command (`--host 0.0.0.0 --port 8000`) has them do, they send `Host: mcp.example.com:8000`.
    host = f"{EXTRA_HOST}:{hosted.port}" if with_port else EXTRA_HOST
    status_log = StatusLog()
    async with sdk_client(
        hosted, token=TOKEN, headers={"Host": host, "Origin": EXTRA_ORIGIN}, status_log=status_log
    ) as client:
        result = await client.call_tool("list_videos", {})

    assert not result.is_error, result.content
    assert status_log.statuses
    assert all(200 <= status < 300 for status in status_log.statuses), status_log.statuses


@pytest.fixture(scope="module")
def default_server(hosting: HostingFactory) -> HttpServer:
    """Streamable HTTP (stateless) with no token and no extra hosts or origins: the allow-list is loopback only."""
    return hosting(STATELESS)


LIST_CALL = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_videos"}}
PORT = "{port}"


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("Host", f"127.0.0.1:{PORT}", 200),
        ("Host", f"localhost:{PORT}", 200),
        ("Host", f"[::1]:{PORT}", 200),
        ("Host", "localhost", 200),
        ("Origin", f"http://127.0.0.1:{PORT}", 200),
        ("Origin", f"http://localhost:{PORT}", 200),
        ("Origin", f"http://[::1]:{PORT}", 200),
        ("Origin", "http://127.0.0.1", 200),
        ("Origin", "http://localhost", 200),
        ("Origin", "http://[::1]", 200),
        ("Host", EXTRA_HOST, 421),
        ("Host", f"{EXTRA_HOST}:{PORT}", 421),
        ("Origin", EXTRA_ORIGIN, 403),
    ],
)
async def test_loopback_names_only_by_default(
    default_server: HttpServer, header: str, value: str, expected: int
) -> None:
    headers = raw_headers(None, **{header: value.format(port=default_server.port)})
    async with httpx2.AsyncClient(timeout=DEADLINE_SECONDS) as http:
        response = await http.post(default_server.url, json=LIST_CALL, headers=headers)

    assert response.status_code == expected, response.text


# --- /healthz --------------------------------------------------------------------------------------------------


@EVERY_MODE
async def test_health_needs_no_token_and_reveals_nothing(hosted: HttpServer, shared_sandbox: RunningSandbox) -> None:
    async with httpx2.AsyncClient(timeout=DEADLINE_SECONDS) as http:
        response = await http.get(hosted.base_url + "/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}
    for secret in (TOKEN, SANDBOX_API_KEY, shared_sandbox.url, str(shared_sandbox.port), "/tmp", "sqlite"):
        assert secret not in response.text
    assert "www-authenticate" not in response.headers


# --- refusing to listen beyond loopback without a token ---------------------------------------------------------


@pytest.mark.parametrize("mode", [SSE, STATEFUL], ids=[SSE.id, STATEFUL.id])
def test_refuses_non_loopback_host_without_a_token(tmp_path: Path, mode: Mode) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    process = spawn(server_env(None, tmp_path), log, *mode.args, "--host", "0.0.0.0", "--port", str(port))
    try:
        returncode = process.wait(timeout=30)
    finally:
        stop(process)

    output = log.read_text()
    assert returncode != 0
    assert "PIXVERSE_MCP_AUTH_TOKEN" in output
    assert "--allow-unauthenticated" in output
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


@pytest.mark.parametrize(
    ("extra_env", "extra_args", "unauthenticated_status"),
    [({"PIXVERSE_MCP_AUTH_TOKEN": TOKEN}, [], 401), ({}, ["--allow-unauthenticated"], 200)],
    ids=["with-token", "allow-unauthenticated"],
)
async def test_serves_beyond_loopback_with_a_token_or_when_allowed(
    tmp_path: Path, extra_env: dict[str, str], extra_args: list[str], unauthenticated_status: int
) -> None:
    env = server_env(None, tmp_path, **extra_env)
    with served(env, tmp_path, STATELESS, *extra_args, host="0.0.0.0") as server:
        async with httpx2.AsyncClient(timeout=DEADLINE_SECONDS) as http:
            response = await http.post(server.url, json=initialize_message(), headers=raw_headers(token=None))

    assert response.status_code == unauthenticated_status, response.text


# --- modes and the CLI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [STATEFUL, STATELESS], ids=[STATEFUL.id, STATELESS.id])
async def test_stateless_answers_plain_json_without_a_session(tmp_path: Path, mode: Mode) -> None:
    with served(server_env(None, tmp_path), tmp_path, mode) as server:
        async with httpx2.AsyncClient(timeout=DEADLINE_SECONDS) as http:
            response = await http.post(server.url, json=initialize_message(), headers=raw_headers(token=None))

    assert response.status_code == 200
    content_type = response.headers["content-type"]
    if mode.stateless:
        assert content_type.startswith("application/json")
        assert "mcp-session-id" not in response.headers
        assert response.json()["result"]["protocolVersion"] == PROTOCOL
    else:
        assert content_type.startswith("text/event-stream")
        assert response.headers["mcp-session-id"]


async def test_stdio_transport_from_the_same_cli(sandbox: RunningSandbox, tmp_path: Path) -> None:
    # A token set for HTTP does not concern stdio: the host that spawned the process is the only client.
    env = server_env(sandbox, tmp_path, PIXVERSE_MCP_AUTH_TOKEN=TOKEN)
    async with stdio_client(env, "--transport", "stdio") as client:
        result = await client.call_tool("create_video", {"prompt": "a lantern on a lake"})

    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["generation_id"]
    assert sandbox.state.stats()["creates"] == 1
