"""The real server over HTTP for tests: `python -m pixverse_mcp --transport ... --port <free port>` as a subprocess.

`served(env, log_dir, ...)` starts it, waits until `GET /healthz` answers (polling with a deadline), and stops it on
exit (SIGTERM, then SIGKILL if it does not go). `sdk_client(...)` connects the SDK's `Client` to it over SSE or
Streamable HTTP with a bearer token, recording every HTTP status the SDK's own HTTP client saw.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

Transport = Literal["sse", "streamable-http"]

STARTUP_DEADLINE_SECONDS = 30.0
STOP_DEADLINE_SECONDS = 10.0
# The SDK's HTTP client keeps httpx's 5 s default unless told otherwise; blocking calls take longer.
SDK_TIMEOUT = httpx2.Timeout(60.0, connect=10.0)


@dataclass(frozen=True)
class Mode:
    """One way of serving over HTTP: the transport, and for Streamable HTTP whether it is stateless."""

    transport: Transport
    stateless: bool = False

    @property
    def args(self) -> list[str]:
        return ["--transport", self.transport, *(["--stateless"] if self.stateless else [])]

    @property
    def id(self) -> str:
        return "streamable-http-stateless" if self.stateless else self.transport

    @property
    def path(self) -> str:
        return "/sse" if self.transport == "sse" else "/mcp"


SSE = Mode("sse")
STATEFUL = Mode("streamable-http")
STATELESS = Mode("streamable-http", stateless=True)
HTTP_MODES = (SSE, STATEFUL, STATELESS)


@dataclass
class HttpServer:
    """A running server subprocess and where to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    mode: Mode
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The MCP endpoint of this mode (`/mcp` or `/sse`)."""
        return self.base_url + self.mode.path

    def log(self) -> str:
        """Everything the server wrote (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def spawn(env: dict[str, str], log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """`python -m pixverse_mcp ARGS` with `env`, its output going to `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pixverse_mcp", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process is still there after a generous deadline."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_DEADLINE_SECONDS)


def wait_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    """Poll `GET /healthz` until it answers 200; fail with the server's log if it exits or the deadline passes."""
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    with httpx2.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if http.get(base_url + "/healthz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(
        f"the server did not answer /healthz within {STARTUP_DEADLINE_SECONDS} s:\n{log_path.read_text()}"
    )


@contextmanager
def served(
    env: dict[str, str], log_dir: Path, mode: Mode = STATEFUL, *extra_args: str, host: str | None = None
) -> Iterator[HttpServer]:
    """The server serving `mode` on a free port until the block ends (then stopped, killed if it must be)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        port = free_port()
        log_path = log_dir / f"server-{mode.id}-{port}.log"
        host_args = ["--host", host] if host is not None else []
        process = spawn(env, log_path, *mode.args, *host_args, "--port", str(port), *extra_args)
        try:
            wait_healthy(process, f"http://127.0.0.1:{port}", log_path)
        except RuntimeError:
            stop(process)
            # Another process may have taken the port between our probe and the server's bind: try another.
            if attempt < 2 and "address already in use" in log_path.read_text().lower():
                continue
            raise
        try:
            yield HttpServer(process, port, mode, log_path)
        finally:
            stop(process)
        return


@dataclass
class StatusLog:
    """The HTTP statuses the SDK's HTTP client received, in order."""

    statuses: list[int] = field(default_factory=list)

    async def __call__(self, response: httpx2.Response) -> None:
        self.statuses.append(response.status_code)


def sdk_http_client(
    headers: dict[str, str],
    status_log: StatusLog | None = None,
    *,
    timeout: httpx2.Timeout = SDK_TIMEOUT,
    auth: httpx2.Auth | None = None,
) -> httpx2.AsyncClient:
    """An httpx2 client for the SDK's transports, with `headers`, a long enough timeout, and the status log."""
    hooks: dict[str, list[Any]] = {"response": [status_log]} if status_log is not None else {}
    return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks=hooks)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


@asynccontextmanager
async def sdk_client(
    server: HttpServer,
    *,
    token: str | None,
    headers: dict[str, str] | None = None,
    status_log: StatusLog | None = None,
    server_may_be_gone: bool = False,
    **client_options: Any,
) -> AsyncIterator[Client]:
    """The SDK's `Client` connected to `server` over its transport, sending `Authorization: Bearer <token>`.

    `server_may_be_gone`: the test stops the server while connected; the client's own farewell requests (a
    session DELETE, a last notification) then fail to connect, which is not what the test is about.
    """
    if server_may_be_gone:
        finished = False
        try:
            async with sdk_client(server, token=token, headers=headers, status_log=status_log, **client_options) as c:
                yield c
                finished = True
        except BaseExceptionGroup as group:
            _, others = group.split((httpx2.ConnectError, httpx2.RemoteProtocolError, httpx2.ReadError))
            if not finished or others is not None:
                raise
        return
    all_headers = {**bearer(token), **(headers or {})}
    if server.mode.transport == "sse":

        def factory(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            return sdk_http_client(headers or {}, status_log, timeout=timeout or SDK_TIMEOUT, auth=auth)

        transport = sse_client(server.url, headers=all_headers, timeout=10, httpx_client_factory=factory)
        async with Client(transport, **client_options) as client:
            yield client
    else:
        http_client = sdk_http_client(all_headers, status_log)
        transport = streamable_http_client(server.url, http_client=http_client)
        async with http_client, Client(transport, **client_options) as client:
            yield client
