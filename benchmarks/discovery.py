"""Discovery under load: does a client that probes with `server/discover` on a 1 s timeout, then falls back to
`initialize` on the same pipe, end up connected?

    .venv/bin/python benchmarks/discovery.py        # 20 starts per server, a few minutes
    .venv/bin/python benchmarks/discovery.py 10     # 10 starts per server

Two CPU-bound busy processes run throughout (started here, killed at the end), as on a loaded laptop or CI runner.
Each server is started N times, the servers interleaved so drift on a shared machine hits them alike. Right after the
spawn the client sends the TypeScript SDK's probe: `server/discover` with id `server-discover-probe-1` and the
2026-07-28 envelope in `params._meta`. If the answer comes within 1.0 s, the client goes on modern (an enveloped
`tools/list`). If not, it does what a client that falls back does: `initialize` on the same pipe, then
`notifications/initialized` and `tools/list`. A connect succeeds when that `tools/list` gets a result.

bare      benchmarks/bare_server.py: a bare MCPServer with one trivial tool, served by `run_stdio_async()` (the SDK)
bare+fix  the same server, served by `pixverse_mcp.stdio.serve_stdio`
pixverse  `python -m pixverse_mcp --sandbox`: whatever `cli._serve_stdio` does at the time of the run (printed)

Per server: probes answered within 1 s, connects that succeeded (how many modern), and the median time from spawn to
the first answer (the probe's, however late), with its ratio against the bare server measured in the same run.
Nothing here asserts: it prints.
"""

from __future__ import annotations

import inspect
import json
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBE_TIMEOUT_SECONDS = 1.0  # the short probe timeout of the clients that fall back
PROTOCOL_BOUND_SECONDS = 30.0  # after the fallback: longer than any start, so a miss means the connect failed
BUSY_PROCESSES = 2
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "discovery-benchmark", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
PROBE_ID = "server-discover-probe-1"
PROBE = {"jsonrpc": "2.0", "id": PROBE_ID, "method": "server/discover", "params": {"_meta": ENVELOPE}}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "discovery-benchmark", "version": "0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
MODERN_TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": ENVELOPE}}
HANDSHAKE_TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}

BARE_WITH_FIX = (
    "import sys, anyio; sys.path.insert(0, sys.argv[1]); from bare_server import server; "
    "from pixverse_mcp.stdio import serve_stdio; anyio.run(serve_stdio, server)"
)
SERVERS = {
    "bare": [sys.executable, str(ROOT / "benchmarks" / "bare_server.py")],
    "bare+fix": [sys.executable, "-c", BARE_WITH_FIX, str(ROOT / "benchmarks")],
    "pixverse": [sys.executable, "-m", "pixverse_mcp", "--sandbox"],
}


@dataclass
class Outcome:
    """One connect attempt."""

    first_answer: float | None  # seconds from spawn to the first message the server wrote (None: it wrote nothing)
    in_time: bool  # the probe was answered within PROBE_TIMEOUT_SECONDS
    connected: bool  # tools/list got a result, modern or after the fallback


class _Wire:
    """A server on raw pipes; a thread reads its stdout, stamping each message with its arrival time."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.spawned = time.perf_counter()
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self.arrivals: queue.Queue[tuple[float, Any]] = queue.Queue()
        self.first_at: float | None = None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            at = time.perf_counter()
            try:
                self.arrivals.put((at, json.loads(line)))
            except ValueError:
                self.arrivals.put((at, line))

    def send(self, *messages: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"".join(json.dumps(message).encode() + b"\n" for message in messages))
        self.process.stdin.flush()

    def response(self, request_id: int | str, within: float) -> dict[str, Any] | None:
        """The response to `request_id` if it arrives within `within` seconds, else None."""
        deadline = time.perf_counter() + within
        while (left := deadline - time.perf_counter()) > 0:
            try:
                at, message = self.arrivals.get(timeout=left)
            except queue.Empty:
                return None
            if self.first_at is None:
                self.first_at = at - self.spawned
            if isinstance(message, dict) and message.get("id") == request_id and "method" not in message:
                return message
        return None

    def close(self) -> None:
        """Close stdin (the server should exit); kill it if it has not within 10 s."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)


def connect_once(command: list[str], env: dict[str, str]) -> Outcome:
    """Probe on spawn; on no answer within the probe timeout, fall back to `initialize` on the same pipe."""
    wire = _Wire(command, env)
    try:
        wire.send(PROBE)
        probed = wire.response(PROBE_ID, within=PROBE_TIMEOUT_SECONDS)
        if probed is not None:
            wire.send(MODERN_TOOLS_LIST)
            listed = wire.response(1, within=PROTOCOL_BOUND_SECONDS)
        else:
            wire.send(INITIALIZE)
            initialized = wire.response(0, within=PROTOCOL_BOUND_SECONDS)
            listed = None
            if initialized is not None and "result" in initialized:
                wire.send(INITIALIZED, HANDSHAKE_TOOLS_LIST)
                listed = wire.response(1, within=PROTOCOL_BOUND_SECONDS)
        return Outcome(wire.first_at, probed is not None, listed is not None and "result" in listed)
    finally:
        wire.close()


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """`count` CPU-bound processes for the duration, killed on the way out whatever happens."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
        for process in busy:
            process.wait()


def _pixverse_is_wired() -> bool:
    """Whether the real CLI's stdio path goes through `serve_stdio` (the code as it is now, on disk)."""
    from pixverse_mcp import cli

    return re.search(r"\bserve_stdio\b", inspect.getsource(cli)) is not None  # not `_serve_stdio`


def main(runs: int) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "PIXVERSE_MCP_STATE_DIR": tempfile.mkdtemp(),
        "PIXVERSE_MCP_LOG_LEVEL": "WARNING",
    }
    for command in SERVERS.values():  # warm the OS file cache for each, unloaded and not counted
        connect_once(command, env)
    outcomes: dict[str, list[Outcome]] = {name: [] for name in SERVERS}
    load_before = os.getloadavg()[0]
    with busy_processes(BUSY_PROCESSES):
        for index in range(runs):
            print(f"run {index + 1}/{runs} ...", file=sys.stderr, flush=True)
            for name, command in SERVERS.items():
                outcomes[name].append(connect_once(command, env))

    def median_first_answer(name: str) -> float | None:
        times = [outcome.first_answer for outcome in outcomes[name] if outcome.first_answer is not None]
        return statistics.median(times) if times else None

    bare = median_first_answer("bare")
    wired = "uses serve_stdio" if _pixverse_is_wired() else "does NOT use serve_stdio yet (run_stdio_async)"
    print(f"{runs} starts per server, {BUSY_PROCESSES} busy processes, probe timeout {PROBE_TIMEOUT_SECONDS:.1f} s")
    print(f"load average before the busy processes: {load_before:.2f}; pixverse: cli._serve_stdio {wired}")
    header = ("server", "probe answered <= 1 s", "connected", "median first answer", "vs bare")
    rows = [header]
    for name, results in outcomes.items():
        median = median_first_answer(name)
        connected = sum(outcome.connected for outcome in results)
        modern = sum(outcome.connected and outcome.in_time for outcome in results)
        rows.append(
            (
                name,
                f"{sum(outcome.in_time for outcome in results)}/{runs}",
                f"{connected}/{runs} ({modern} modern)",
                "none" if median is None else f"{median * 1000:.0f} ms",
                "" if median is None or bare is None else f"{median / bare:.2f}x",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in [rows[0], tuple("-" * width for width in widths), *rows[1:]]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
