"""The real server (`python -m pixverse_mcp` over stdio) against a hostile upstream: it never dies, never leaks.

`tests.hostile_upstream.HostileUpstream` stands in for the AI/ML API and its CDN (raw sockets: lone surrogates,
100,000-deep and 100 MB JSON, lying encodings, redirect loops, HTML instead of a video, echoes of the key, drips).
Over a real transport a result is really serialised, so what the in-process tests (`tests/unit/
test_hostile_upstream.py`) cannot see shows here: a lone surrogate that would kill the stdio writer, a key in a log
line at DEBUG on stderr, the process's own peak memory (`VmHWM`). Every call must be answered within its budget plus
a margin, with no traceback and no form of the key, and the process must keep serving the next call.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote, urlsplit

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from tests.conftest import server_env, stdio_client
from tests.hostile_upstream import (
    HostileUpstream,
    RecordedRequest,
    Reply,
    SurrogateField,
    completed_body,
    deep_json,
    download_as_html,
    echo_key_in_error,
    failed_with_huge_error,
    gzip_lie,
    huge_generation_id,
    huge_json,
    key_in_video_url,
    new_generation_id,
    non_utf8_body,
    other_generation_status,
    redirect_loop,
    stand_in_video,
    surrogate_json,
    unreadable_created,
    write_huge_frame_video,
)
from tests.stdio_support import RawStdioServer

pytestmark = pytest.mark.anyio

BUDGET_SECONDS = 5.0
# Generous, never tight: a call may end this much after its budget.
MARGIN_SECONDS = 5.0
MAX_RESULT_BYTES = 1_000_000
# The whole server process, peak (VmHWM), after a hostile answer: a Python MCP server idles well under this.
MAX_PEAK_RSS_KIB = 200 * 1024
# The peak memory of the server process comes from /proc/<pid>/status (Linux).
needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
PLAIN_KEY = f"hk-{secrets.token_hex(16)}"
QUOTED_KEY = 'k"ey\\with-quotes-0123456789'


def key_needles(key: str) -> list[str]:
    """Every form of the key a leak may take: as is, JSON-escaped, repr-escaped (a logged bytes or str repr),
    \\u-escaped, percent-encoded, and its tail."""
    return [
        key,
        json.dumps(key)[1:-1],
        repr(key.encode())[2:-1],
        "".join(f"\\u{ord(char):04x}" for char in key),
        quote(key, safe=""),
        key[-14:],
    ]


def assert_no_key(haystack: str | bytes | bytearray, key: str, where: str) -> None:
    text = bytes(haystack).decode("utf-8", "replace") if not isinstance(haystack, str) else haystack
    for needle in key_needles(key):
        at = text.find(needle)
        if at >= 0:
            context = text[max(0, at - 150) : at + 150].replace(needle, "<KEY>")
            # AssertionError, not pytest.fail: a BaseException through the task groups trips CPython 3.11.7
            raise AssertionError(f"the API key appears in {where}: ...{context}...")


def unencodable(value: Any, path: str = "result") -> list[str]:
    """Where in `value` a string cannot be encoded as UTF-8 (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [path]
        return []
    if isinstance(value, dict):
        return [where for name, item in value.items() for where in unencodable(item, f"{path}.{name}")]
    if isinstance(value, list):
        return [where for index, item in enumerate(value) for where in unencodable(item, f"{path}[{index}]")]
    return []


def journal_bytes(state_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(state_dir.glob("journal.sqlite3*")) if path.is_file())


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")


@contextmanager
def noting(problems: list[str], what: str) -> Iterator[None]:
    """Record a failed check under `what` and go on, so one run reports every wrong answer, not just the first."""
    try:
        yield
    except (AssertionError, TimeoutError) as exc:
        detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        problems.append(f"{what}: {'no answer in time' if isinstance(exc, TimeoutError) else detail}")


def hostile_env(up: HostileUpstream, tmp_path: Path, **extra: str) -> dict[str, str]:
    values = {
        "AIMLAPI_API_KEY": up.api_key,
        "AIMLAPI_BASE_URL": up.url,
        "PIXVERSE_MCP_POLL_TIME_SCALE": "0.02",
        "PIXVERSE_MCP_WAIT_BUDGET_SECONDS": f"{BUDGET_SECONDS:g}",
        "PIXVERSE_MCP_LOG_LEVEL": "DEBUG",
        **extra,
    }
    return server_env(None, tmp_path, **values)


# Raw JSON-RPC calls: every byte of the answer is seen.


def result_text(result: dict[str, Any]) -> str:
    return "\n".join(block.get("text", "") for block in result.get("content", []) if block.get("type") == "text")


def check_raw_result(result: dict[str, Any], key: str) -> None:
    bad = unencodable(result)
    assert not bad, f"lone surrogates reach the agent at {bad}"
    dumped = json.dumps(result, ensure_ascii=False)
    assert len(dumped.encode("utf-8", "surrogatepass")) < MAX_RESULT_BYTES, f"the result is {len(dumped)} chars"
    text = result_text(result)
    assert "Error executing tool" not in text, text[:500]
    assert "Traceback" not in dumped, text[:500]
    assert 'File "' not in dumped, text[:500]
    assert_no_key(dumped, key, "a tool result")
    assert_no_key(json.dumps(result), key, "a tool result (escaped)")


async def raw_call(
    server: RawStdioServer, key: str, name: str, arguments: dict[str, Any], *, budget: float = BUDGET_SECONDS
) -> dict[str, Any]:
    """tools/call over the raw pipes; asserts it was answered in time, sendably, with no traceback and no key."""
    started = time.monotonic()
    response = await server.request("tools/call", {"name": name, "arguments": arguments})
    elapsed = time.monotonic() - started
    assert "result" in response, f"{name} got a JSON-RPC error: {str(response)[:500]}"
    result: dict[str, Any] = response["result"]
    assert elapsed <= budget + MARGIN_SECONDS, f"{name} took {elapsed:.1f} s (budget {budget:g} s)"
    check_raw_result(result, key)
    assert server.process.returncode is None, "the server exited"
    return result


def content_of(result: dict[str, Any]) -> dict[str, Any]:
    content = result.get("structuredContent")
    assert isinstance(content, dict), result_text(result)[:500]
    return content


async def assert_alive(server: RawStdioServer, key: str) -> None:
    listing = await raw_call(server, key, "list_videos", {"limit": 100})
    assert not listing.get("isError"), result_text(listing)[:500]
    assert server.process.returncode is None


@asynccontextmanager
async def raw_server(env: dict[str, str]) -> AsyncIterator[RawStdioServer]:
    with anyio.fail_after(180):
        async with RawStdioServer.start(env) as server:
            await server.initialize()
            yield server


# SDK calls, for the surrogate test.


def sdk_text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def check_sdk_result(result: CallToolResult, key: str) -> dict[str, Any]:
    dumped = result.model_dump(mode="python", by_alias=True)
    check_raw_result(dumped, key)
    content = result.structured_content
    assert isinstance(content, dict), sdk_text(result)[:500]
    return content


async def timed_sdk_call(
    client: Client, name: str, arguments: dict[str, Any], *, budget: float = BUDGET_SECONDS
) -> tuple[CallToolResult, float]:
    started = time.monotonic()
    with anyio.fail_after(budget + MARGIN_SECONDS + 20):
        result = await client.call_tool(name, arguments)
    return result, time.monotonic() - started


# 1. Lone surrogates, concurrently, and a restart on the same journal.


async def test_lone_surrogates_in_concurrent_calls_never_take_the_stdio_server_down(tmp_path: Path) -> None:
    fields: tuple[SurrogateField, ...] = get_args(SurrogateField)
    with HostileUpstream(api_key=PLAIN_KEY) as up:
        bad_ids = {new_generation_id(): where for where in fields}
        good_ids = [new_generation_id() for _ in range(3)]

        def status(request: RecordedRequest) -> Reply:
            where = bad_ids.get(request.generation_id or "")
            return surrogate_json(where)(request) if where else up.default_status(request)

        def create(request: RecordedRequest) -> Reply:
            text = str(request.json().get("prompt", ""))
            for where in fields:
                if text.endswith(f"[{where}]"):
                    return surrogate_json(where)(request)
            return up.default_create(request)

        up.on_status(status, repeat=True)
        up.on_create(create, repeat=True)
        env = hostile_env(up, tmp_path)
        calls: list[tuple[str, dict[str, Any], float, str | None]] = []
        for bad_id in bad_ids:
            calls.append(("get_video_status", {"generation_id": bad_id, "save_to_disk": True}, BUDGET_SECONDS, bad_id))
            calls.append(("get_video_status", {"generation_id": bad_id, "wait_seconds": 2}, 2.0, bad_id))
        calls += [
            ("create_video", {"prompt": f"surrogate {time.time_ns()} [{where}]"}, BUDGET_SECONDS, None)
            for where in fields
        ]
        calls += [("get_video_status", {"generation_id": good, "wait_seconds": 1}, 1.0, good) for good in good_ids]
        calls.append(
            ("generate_video_blocking", {"prompt": f"plain {time.time_ns()}", "timeout_seconds": 3}, 3.0, None)
        )
        answers: dict[int, tuple[CallToolResult, float]] = {}
        problems: list[str] = []

        async with stdio_client(env, read_timeout_seconds=60) as client:

            async def run(index: int, name: str, arguments: dict[str, Any], budget: float) -> None:
                answers[index] = await timed_sdk_call(client, name, arguments, budget=budget)

            async with anyio.create_task_group() as group:
                for index, (name, arguments, budget, _) in enumerate(calls):
                    group.start_soon(run, index, name, arguments, budget)
            for index, (name, arguments, budget, asked) in enumerate(calls):
                result, elapsed = answers[index]
                with noting(problems, f"{name}({arguments.get('prompt') or bad_ids.get(asked or '', 'good id')})"):
                    content = check_sdk_result(result, up.api_key)
                    assert elapsed <= budget + MARGIN_SECONDS, f"took {elapsed:.1f} s"
                    if asked is not None:
                        assert content["generation_id"] == asked, f"generation_id {content['generation_id']!r}"
            listing, _ = await timed_sdk_call(client, "list_videos", {"limit": 100})
            with noting(problems, "list_videos after the concurrent calls"):
                assert not listing.is_error, sdk_text(listing)
                check_sdk_result(listing, up.api_key)

        async with stdio_client(env, read_timeout_seconds=60) as restarted:
            listing, _ = await timed_sdk_call(restarted, "list_videos", {"limit": 100})
            with noting(problems, "list_videos after a restart"):
                assert not listing.is_error, sdk_text(listing)
                check_sdk_result(listing, up.api_key)
            looked, _ = await timed_sdk_call(restarted, "get_video_status", {"generation_id": good_ids[0]})
            with noting(problems, "get_video_status after a restart"):
                assert check_sdk_result(looked, up.api_key)["status"] == "completed"
        assert not problems, f"{len(problems)} of {len(calls) + 3} answers were wrong:\n" + "\n".join(problems)


# 2 and 4. Every hostile answer over stdio: a typed answer, in time, with the id; and the server goes on.


async def test_every_hostile_answer_over_stdio_gets_a_typed_answer_with_the_id(tmp_path: Path) -> None:
    with HostileUpstream(api_key=PLAIN_KEY) as up:
        status_faults: dict[str, Callable[[], Any]] = {
            "deep": lambda: deep_json(100_000),
            "deep-array": lambda: deep_json(100_000, container="array"),
            "gzip-lie": lambda: gzip_lie(),
            "another-generation": other_generation_status,
            "not-utf8": lambda: non_utf8_body(),
            "huge-error": lambda: failed_with_huge_error(5_000_000),
        }
        status_ids = {name: new_generation_id() for name in status_faults}
        dripping_id = new_generation_id()
        download_faults: dict[str, Reply] = {
            "redirect-loop": redirect_loop(),
            "html": download_as_html(),
            "gzip-lie": Reply(200, body=stand_in_video(), headers=[("Content-Type", "video/mp4")], gzip_lie=True),
        }
        download_ids = {name: new_generation_id() for name in download_faults}
        by_uuid = {generation_id.split(":", 1)[0]: name for name, generation_id in download_ids.items()}
        create_faults: dict[str, Reply] = {
            "huge-id": huge_generation_id(1_000_000),
            "truncated-201": unreadable_created("truncated"),
            "deep-201": deep_json(100_000, status=201),
        }
        by_id = {generation_id: name for name, generation_id in status_ids.items()}

        def status(request: RecordedRequest) -> Reply:
            generation_id = request.generation_id or ""
            if generation_id == dripping_id:
                body = completed_body(generation_id, up.video_url(generation_id))
                return Reply(200, json=body, drip=(1, 0.5))
            name = by_id.get(generation_id)
            if name is None:
                return up.default_status(request)
            fault = status_faults[name]()
            return fault(request) if callable(fault) else fault

        def download(request: RecordedRequest) -> Reply:
            name = by_uuid.get(Path(urlsplit(request.target).path).stem)
            return download_faults[name] if name else up.default_download(request)

        def create(request: RecordedRequest) -> Reply:
            text = str(request.json().get("prompt", ""))
            for name, reply in create_faults.items():
                if text.endswith(f"[{name}]"):
                    return reply
            return up.default_create(request)

        up.on_status(status, repeat=True)
        up.on_download(download, repeat=True)
        up.on_create(create, repeat=True)
        key = up.api_key
        async with raw_server(hostile_env(up, tmp_path, PIXVERSE_MCP_READ_TIMEOUT_SECONDS="60")) as server:
            problems: list[str] = []
            for name, generation_id in status_ids.items():
                with noting(problems, f"status answer {name}"):
                    looked = await raw_call(server, key, "get_video_status", {"generation_id": generation_id})
                    assert content_of(looked)["generation_id"] == generation_id, result_text(looked)[:300]
                    if name != "huge-error":
                        assert looked.get("isError"), result_text(looked)[:300]
                        assert content_of(looked)["status"] == "unknown", result_text(looked)[:300]
                with noting(problems, f"the call after status answer {name}"):
                    await assert_alive(server, key)
            for name, generation_id in download_ids.items():
                with noting(problems, f"download {name}"):
                    arguments = {"generation_id": generation_id, "save_to_disk": True}
                    content = content_of(await raw_call(server, key, "get_video_status", arguments))
                    assert content["generation_id"] == generation_id, content
                    assert content["video_url"] == up.video_url(generation_id), content
                    assert content["save_error"], content
                with noting(problems, f"the call after download {name}"):
                    await assert_alive(server, key)
            for name in create_faults:
                with noting(problems, f"create answer {name}"):
                    creates_before = up.creates
                    created = await raw_call(server, key, "create_video", {"prompt": f"{time.time_ns()} [{name}]"})
                    assert created.get("isError"), result_text(created)[:300]
                    assert "accepted" in result_text(created) or "billing" in result_text(created), result_text(
                        created
                    )[:300]
                    assert up.creates == creates_before + 1, f"{up.creates - creates_before} creates sent"
                with noting(problems, f"the call after create answer {name}"):
                    await assert_alive(server, key)
            with noting(problems, "status dripping a byte every 0.5 s, wait_seconds=3"):
                arguments = {"generation_id": dripping_id, "wait_seconds": 3}
                dripped = await raw_call(server, key, "get_video_status", arguments, budget=3)
                assert content_of(dripped)["generation_id"] == dripping_id
            with noting(problems, "the call after the dripping status"):
                await assert_alive(server, key)
            assert not problems, f"{len(problems)} wrong answers:\n" + "\n".join(problems)


# 5. Memory, measured on the server process itself.


@needs_proc
async def test_a_100_mb_status_answer_during_a_wait_leaves_the_server_process_small(tmp_path: Path) -> None:
    with HostileUpstream(api_key=PLAIN_KEY) as up:
        generation_id = new_generation_id()
        up.on_status(huge_json(100_000_000, generation_id=generation_id))
        async with raw_server(hostile_env(up, tmp_path)) as server:
            baseline = peak_rss_kib(server.process.pid)
            result = await raw_call(
                server, up.api_key, "get_video_status", {"generation_id": generation_id, "wait_seconds": 5}, budget=5
            )
            peak = peak_rss_kib(server.process.pid)
            content = content_of(result)
            assert content["generation_id"] == generation_id
            assert content["status"] == "completed", result_text(result)[:300]
            assert peak < MAX_PEAK_RSS_KIB, f"the server peaked at {peak / 1024:.0f} MB (from {baseline / 1024:.0f})"
            await assert_alive(server, up.api_key)


@needs_proc
async def test_previewing_an_8k_video_is_refused_and_leaves_the_server_process_small(tmp_path: Path) -> None:
    video = write_huge_frame_video(_videos_dir(tmp_path) / "huge.mp4")
    with HostileUpstream(api_key=PLAIN_KEY) as up:
        async with raw_server(hostile_env(up, tmp_path)) as server:
            result = await raw_call(server, up.api_key, "preview_video", {"path": str(video)})
            peak = peak_rss_kib(server.process.pid)
            text = result_text(result)
            assert result.get("isError"), text[:300]
            assert "8192" in text, text[:300]
            assert "4320" in text, text[:300]
            assert peak < MAX_PEAK_RSS_KIB, f"the server peaked at {peak / 1024:.0f} MB"
            await assert_alive(server, up.api_key)


def _videos_dir(tmp_path: Path) -> Path:
    """Where the server keeps saved videos with no output folder set: the user's videos folder (server_env's)."""
    folder = tmp_path / "user-videos" / "pixverse"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# 6. The key, echoed back every way, appears in no result, no log line at DEBUG, no journal row.


@pytest.mark.parametrize("key", [PLAIN_KEY, QUOTED_KEY], ids=["plain-key", "key-with-quote-and-backslash"])
async def test_an_echoed_key_appears_in_no_result_log_line_or_journal_row(tmp_path: Path, key: str) -> None:
    with HostileUpstream(api_key=key) as up:
        echo_500 = new_generation_id()
        echo_401 = new_generation_id()
        failed = new_generation_id()
        in_query = new_generation_id()
        in_userinfo = new_generation_id()

        def failed_with_key(request: RecordedRequest) -> Reply:
            escaped = "".join(f"\\u{ord(char):04x}" for char in key)
            plain = json.dumps(key)[1:-1]
            body = (
                f'{{"id": {json.dumps(failed)}, "status": "failed", '
                f'"error": {{"message": "rejected for {plain}", "detail": "key={escaped}"}}}}'
            )
            return Reply(200, body=body.encode("ascii"), headers=[("Content-Type", "application/json")])

        by_id: dict[str, Callable[[RecordedRequest], Reply]] = {
            echo_500: echo_key_in_error(500),
            echo_401: echo_key_in_error(401),
            failed: failed_with_key,
            in_query: key_in_video_url("query"),
            in_userinfo: key_in_video_url("userinfo"),
        }

        def status(request: RecordedRequest) -> Reply:
            build = by_id.get(request.generation_id or "")
            return build(request) if build else up.default_status(request)

        def create(request: RecordedRequest) -> Reply:
            text = str(request.json().get("prompt", ""))
            if text.endswith("[400]"):
                return echo_key_in_error(400)(request)
            if text.endswith("[500]"):
                return echo_key_in_error(500)(request)
            return up.default_create(request)

        up.on_status(status, repeat=True)
        up.on_create(create, repeat=True)
        state = tmp_path / "state"
        names = {echo_500: "echo-500", echo_401: "echo-401", failed: "failed", in_query: "url-query"}
        names[in_userinfo] = "url-userinfo"
        problems: list[str] = []
        async with raw_server(hostile_env(up, tmp_path)) as server:
            for code in ("400", "500"):
                with noting(problems, f"create_video answered {code} with the key"):
                    created = await raw_call(server, key, "create_video", {"prompt": f"echo {time.time_ns()} [{code}]"})
                    assert created.get("isError")
            for generation_id in (echo_500, echo_401, failed):
                with noting(problems, f"get_video_status ({names[generation_id]})"):
                    looked = await raw_call(server, key, "get_video_status", {"generation_id": generation_id})
                    assert content_of(looked)["generation_id"] == generation_id
            with noting(problems, "get_video_status waiting through echo-500"):
                arguments = {"generation_id": echo_500, "wait_seconds": 1}
                waited = await raw_call(server, key, "get_video_status", arguments, budget=1)
                assert content_of(waited)["generation_id"] == echo_500
            for generation_id in (in_query, in_userinfo):
                with noting(problems, f"get_video_status saving ({names[generation_id]})"):
                    arguments = {"generation_id": generation_id, "save_to_disk": True}
                    saved = await raw_call(server, key, "get_video_status", arguments)
                    assert content_of(saved)["generation_id"] == generation_id
            for generation_id in (failed, in_query, in_userinfo):
                with noting(problems, f"the generation resource ({names[generation_id]})"):
                    document = await server.request(
                        "resources/read", {"uri": f"pixverse://generations/{generation_id}"}
                    )
                    assert_no_key(json.dumps(document), key, "a generation resource")
            with noting(problems, "list_videos"):
                await assert_alive(server, key)
            with noting(problems, "the journal while running"):
                assert_no_key(journal_bytes(state), key, "the journal (while running)")
        with noting(problems, "stdout"):
            for line in server.stdout_lines:
                assert_no_key(line, key, "stdout")
        with noting(problems, "stderr"):
            assert_no_key(server.stderr, key, "the DEBUG log on stderr")
        with noting(problems, "the journal"):
            assert_no_key(journal_bytes(state), key, "the journal")
        with noting(problems, "the download requests"):
            for request in up.requests:
                if request.kind == "download":
                    assert "authorization" not in request.headers, "the download sent credentials"
        assert not problems, f"the key leaked {len(problems)} ways:\n" + "\n".join(problems)
