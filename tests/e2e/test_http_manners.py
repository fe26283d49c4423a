"""HTTP manners: what clients we did not write make of our answers, over real sockets to the real server.

- No OAuth is configured (a static bearer token is all there is), so the OAuth discovery paths answer 404, with or
  without a token: a 401 there sends clients into an OAuth flow that cannot exist.
- A refused token is a 401 that clients show in our words: the TypeScript SDK v1 and v2 clients, FastMCP's client
  (in its pinned venv, `tests/framework_envs.py`) and the MCP Inspector CLI in its non-interactive mode
  (`--stored-auth-only`). Without that flag and without a terminal, the Inspector answers any 401 with "Interactive
  OAuth requires a TTY", whatever the server says: its CLI starts OAuth on the status alone.
- The server says where it serves, on stderr, and uvicorn's lines carry our logger's name.
- `tasks/*` requests are checked against their `Mcp-Name` header as the SDK checks `resources/read`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx2
import pytest

from pixverse_mcp.hosting import UNAUTHORIZED_MESSAGE
from tests.conftest import HostingFactory, server_env
from tests.framework_envs import FRAMEWORKS, framework_pythons
from tests.http_server import SSE, STATEFUL, STATELESS, HttpServer, Mode, served, stop
from tests.interop_support import interop_folder, node, run_bounded

TOKEN = "manners-test-token-8d2b6f4a1c"
CLIENT_TIMEOUT_SECONDS = 90.0
DISCOVERY_PATHS = (
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/mcp",
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/mcp",
    "/mcp/.well-known/openid-configuration",
)
BAD_TOKENS = {"missing": None, "wrong": "not-the-" + TOKEN}
MODERN = "2026-07-28"
HEADER_MISMATCH = -32020


@pytest.fixture(scope="module")
def with_token(hosting: HostingFactory) -> HttpServer:
    """Streamable HTTP (stateless: every request stands alone) behind the bearer token."""
    return hosting(STATELESS, PIXVERSE_MCP_AUTH_TOKEN=TOKEN)


@pytest.fixture(scope="module")
def without_token(hosting: HostingFactory) -> HttpServer:
    return hosting(STATELESS)


# --- no OAuth ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DISCOVERY_PATHS)
@pytest.mark.parametrize("token", [None, TOKEN, "not-the-" + TOKEN], ids=["no-token", "token", "wrong-token"])
def test_oauth_discovery_is_not_found_behind_a_token(with_token: HttpServer, path: str, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    response = httpx2.get(with_token.base_url + path, headers=headers, timeout=10)

    assert response.status_code == 404, response.text
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize("path", DISCOVERY_PATHS)
def test_oauth_discovery_is_not_found_without_a_token_either(without_token: HttpServer, path: str) -> None:
    assert httpx2.get(without_token.base_url + path, timeout=10).status_code == 404


# --- a 401 in our words -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_TOKENS, ids=list(BAD_TOKENS))
def test_a_refused_token_gets_our_words_in_the_body_and_for_a_wrong_one_in_the_challenge(
    with_token: HttpServer, case: str
) -> None:
    token = BAD_TOKENS[case]
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}

    response = httpx2.post(with_token.url, json=ping, headers=headers, timeout=10)

    assert response.status_code == 401
    assert response.json()["error"]["message"] == UNAUTHORIZED_MESSAGE
    assert response.json()["jsonrpc"] == "2.0"
    challenge = response.headers["www-authenticate"]
    if token is None:
        assert challenge == 'Bearer realm="pixverse-mcp"'  # RFC 6750 3.1: no error information without a token
    else:
        expected = f'Bearer realm="pixverse-mcp", error="invalid_token", error_description="{UNAUTHORIZED_MESSAGE}"'
        assert challenge == expected
    assert TOKEN not in response.text + challenge


@pytest.mark.parametrize("case", BAD_TOKENS, ids=list(BAD_TOKENS))
def test_the_typescript_sdk_clients_show_our_words(with_token: HttpServer, case: str) -> None:
    folder = interop_folder()
    token = BAD_TOKENS[case]
    command = [node(), str(folder / "auth_client.mjs"), with_token.url, *([token] if token else [])]

    finished = run_bounded(command, env={"PATH": os.environ.get("PATH", "")}, timeout=CLIENT_TIMEOUT_SECONDS)

    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    for version in ("v1", "v2"):
        assert report[version]["connected"] is False
        assert UNAUTHORIZED_MESSAGE in report[version]["message"], report[version]


@pytest.mark.parametrize("case", BAD_TOKENS, ids=list(BAD_TOKENS))
def test_fastmcp_shows_our_words(with_token: HttpServer, case: str) -> None:
    python = framework_pythons(["fastmcp"])["fastmcp"]
    token = BAD_TOKENS[case]
    command = [str(python), str(FRAMEWORKS / "fastmcp_auth_client.py"), with_token.url, *([token] if token else [])]

    finished = run_bounded(command, env={"PATH": os.environ.get("PATH", "")}, timeout=CLIENT_TIMEOUT_SECONDS)

    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report["connected"] is False
    assert report["message"] == UNAUTHORIZED_MESSAGE


@pytest.mark.parametrize("case", BAD_TOKENS, ids=list(BAD_TOKENS))
def test_the_inspector_shows_our_words_when_it_may_not_start_oauth(
    with_token: HttpServer, case: str, tmp_path: Path
) -> None:
    folder = interop_folder()
    token = BAD_TOKENS[case]
    header = ["--header", f"Authorization: Bearer {token}"] if token else []
    command = [
        node(),
        str(folder / "node_modules" / ".bin" / "mcp-inspector"),
        *("--cli", "--format", "json", "--stored-auth-only", with_token.url, "--method", "tools/list", *header),
    ]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "MCP_INSPECTOR_SECRET_STORE": "memory"}

    finished = run_bounded(command, env=env, timeout=CLIENT_TIMEOUT_SECONDS)

    assert finished.returncode != 0
    printed = finished.stdout + finished.stderr
    error = json.loads(next(line for line in printed.splitlines() if line.startswith('{"error"')))["error"]
    assert UNAUTHORIZED_MESSAGE in error["message"], printed


# --- where it serves, in our names ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [STATEFUL, SSE], ids=[STATEFUL.id, SSE.id])
def test_the_server_says_where_it_serves_and_logs_uvicorn_under_our_name(tmp_path: Path, mode: Mode) -> None:
    with served(server_env(None, tmp_path, PIXVERSE_MCP_LOG_LEVEL="INFO"), tmp_path, mode) as server:
        started = server.log()
        stop(server.process)
    log = server.log()

    label = "SSE" if mode is SSE else "Streamable HTTP"
    assert f"pixverse-mcp: serving {label} at {server.url}\n" in started
    assert "uvicorn.error" not in log
    assert "INFO pixverse_mcp.hosting.uvicorn: Started server process" in started
    assert "INFO pixverse_mcp.hosting.uvicorn: Finished server process" in log


# --- tasks/* and Mcp-Name ---------------------------------------------------------------------------------------


def modern_post(server: HttpServer, method: str, params: dict[str, Any], name: str | None) -> httpx2.Response:
    """One 2026-07-28 request, its routing headers set by hand (`Mcp-Name` as given, or none)."""
    envelope = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
        "Authorization": f"Bearer {TOKEN}",
        **({"Mcp-Name": name} if name is not None else {}),
    }
    body = {"jsonrpc": "2.0", "id": 9, "method": method, "params": {**params, "_meta": envelope}}
    return httpx2.post(server.url, json=body, headers=headers, timeout=10)


@pytest.mark.parametrize("method", ["tasks/get", "tasks/cancel", "tasks/update"])
@pytest.mark.parametrize("name", ["another-task", None], ids=["other-name", "no-name"])
def test_a_task_request_whose_mcp_name_is_not_its_task_id_is_refused_as_the_sdk_refuses_its_own(
    with_token: HttpServer, method: str, name: str | None
) -> None:
    sdk = modern_post(with_token, "resources/read", {"uri": "pixverse://generations/a"}, "pixverse://generations/b")
    params: dict[str, Any] = {"taskId": "a-task", **({"inputResponses": {}} if method == "tasks/update" else {})}

    ours = modern_post(with_token, method, params, name)

    assert sdk.json()["error"]["code"] == HEADER_MISMATCH
    assert ours.status_code == sdk.status_code
    assert ours.headers["content-type"] == sdk.headers["content-type"]
    assert ours.json() == {
        "jsonrpc": "2.0",
        "id": 9,
        "error": {
            "code": HEADER_MISMATCH,
            "message": "mcp-name header does not match the request body's 'taskId' parameter",
        },
    }


def test_a_task_request_naming_its_task_reaches_the_extension(with_token: HttpServer) -> None:
    response = modern_post(with_token, "tasks/get", {"taskId": "no-such-task"}, "no-such-task")

    assert response.json()["error"] == {"code": -32602, "message": "Failed to retrieve task: Task not found"}


def test_other_requests_pass_the_task_check_untouched(with_token: HttpServer) -> None:
    response = modern_post(with_token, "tools/call", {"name": "list_videos", "arguments": {}}, "list_videos")

    assert response.status_code == 200, response.text
    assert response.json()["result"]["structuredContent"]["videos"] is not None
