"""The HTTP hosting's parts that need no server: the CLI's defaults and the bearer token check (in process, over
`httpx2.ASGITransport`). The hosting itself, over real sockets: tests/e2e/test_http_transports.py.
"""

from __future__ import annotations

import hmac
import json

import httpx2
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from pixverse_mcp.cli import build_parser
from pixverse_mcp.hosting import UNAUTHORIZED_MESSAGE, BearerTokenMiddleware

pytestmark = pytest.mark.anyio

TOKEN = "transport-test-token-5f1c9a7e3b"


def test_cli_defaults_bind_loopback_port_8000() -> None:
    args = build_parser().parse_args([])
    assert (args.transport, args.host, args.port, args.stateless, args.allow_unauthenticated) == (
        "stdio",
        "127.0.0.1",
        8000,
        False,
        False,
    )
    args = build_parser().parse_args(["--transport", "sse", "--host", "0.0.0.0", "--port", "9", "--stateless"])
    assert (args.transport, args.host, args.port, args.stateless) == ("sse", "0.0.0.0", 9, True)


async def test_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(left: bytes, right: bytes) -> bool:
        compared.append((left, right))
        return real_compare(left, right)

    monkeypatch.setattr(hmac, "compare_digest", spy)

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("reached")(scope, receive, send)

    app = BearerTokenMiddleware(inner, TOKEN)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        good = await http.get("/mcp", headers={"Authorization": f"bearer {TOKEN}"})
        bad = await http.get("/mcp", headers={"Authorization": "Bearer nope"})
        health = await http.get("/healthz")

    assert (good.status_code, good.text) == (200, "reached")
    assert bad.status_code == 401
    assert json.loads(bad.text)["error"]["message"] == UNAUTHORIZED_MESSAGE
    assert health.status_code == 200
    assert compared == [(TOKEN.encode(), TOKEN.encode()), (b"nope", TOKEN.encode())]
