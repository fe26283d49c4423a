"""The server against a hostile upstream, in process: whatever the AI/ML API or its CDN sends, every call ends.

Each test runs the real MCP server (`build_server` over `open_app`) through the SDK's in-memory `Client`, pointed at
`tests.hostile_upstream.HostileUpstream`: a raw-socket stand-in for the API and its CDN that sends lone surrogates,
100,000-deep and 100 MB JSON, lying encodings, redirect loops and redirects to internal addresses, HTML instead of a
video, echoes of the key, and answers that drip or never come.

Every tool call here goes through `Harness.call`, which asserts what holds for every result whatever the upstream
did: it ends within its budget plus a margin, it can be sent (no lone surrogate, under 1 MB), it carries no
traceback, no "Error executing tool" and no form of the key. Each test then checks that the server still answers
and names the generation id whenever a generation exists. The in-memory transport does not serialise results, so
`Harness.call` checks encodability itself; `tests/e2e/test_hostile_stdio.py` repeats the crucial cases over stdio.
"""

from __future__ import annotations

import dataclasses
import json
import re
import resource
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent
from pydantic import SecretStr

from pixverse_mcp.app import open_app
from pixverse_mcp.config import Settings
from pixverse_mcp.server import build_server
from tests.hostile_upstream import (
    METADATA_URL,
    PRIVATE_URL,
    HostileUpstream,
    RecordedRequest,
    Reply,
    SurrogateField,
    UnreadableKind,
    completed_body,
    deep_json,
    download_as_html,
    echo_key_in_error,
    failed_with_huge_error,
    gzip_lie,
    hang,
    html_page,
    huge_generation_id,
    huge_json,
    key_in_video_url,
    new_generation_id,
    non_utf8_body,
    other_generation_status,
    redirect_loop,
    redirect_to,
    slow_download,
    stand_in_video,
    surrogate_json,
    unreadable_created,
)

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
# The server's default wait budget in these tests: a call that does not say how long it may take gets this long.
BUDGET_SECONDS = 5.0
# Generous, never tight: a call may end this much after its budget (a slow CI machine, a last status request).
MARGIN_SECONDS = 5.0
# Beyond budget + margin the call has failed anyway: stop it a little later, so the report shows how long it took.
HARD_STOP_SECONDS = 10.0
MAX_RESULT_BYTES = 1_000_000
# Peak memory a refused hostile answer may add to the process (ru_maxrss is in KiB on Linux): far less than holding it.
MAX_GROWTH_KIB = 100 * 1024
# A refused 8K preview: PyAV's probe of the container alone decodes a frame (about 90 MB here); decoding the frames
# to images, as an unchecked preview does, costs about 750 MB.
MAX_PREVIEW_GROWTH_KIB = 150 * 1024
PLAIN_KEY = f"hk-{secrets.token_hex(16)}"
QUOTED_KEY = 'k"ey\\with-quotes-0123456789'
ACCEPTED_WORDING = re.compile(r"accepted|billing", re.IGNORECASE)
WHAT_TO_DO = re.compile(r"move|delete|remove|rename|restore|back ?up|replace", re.IGNORECASE)
STORAGE_WORDING = re.compile(r"CDN|storage", re.IGNORECASE)
# Prompts with no visible text: zero-width characters, a byte-order mark, NUL, line and paragraph separators.
SILENT_PROMPTS = {
    "zero-width-space": "\u200b",
    "byte-order-mark": "\ufeff",
    "nul": "\x00",
    "line-separator": "\u2028",
    "paragraph-separator": "\u2029",
    "word-joiner": "\u2060",
    "zero-width-joiners": "\u200c\u200d",
    "soft-hyphen": "\u00ad",
    "mixed": " \x00\u200b \ufeff\u2028\u2060 ",
}


# The checks every result gets.


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


def assert_no_key(haystack: str | bytes, key: str, where: str) -> None:
    text = haystack.decode("utf-8", "replace") if isinstance(haystack, bytes) else haystack
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


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def structured(result: CallToolResult) -> dict[str, Any]:
    content = result.structured_content
    assert isinstance(content, dict), f"no structured content: {text_of(result)[:500]}"
    return content


def check_result(result: CallToolResult, key: str) -> None:
    """What holds for every result: sendable, small, no traceback, no generic crash, no key."""
    bad = unencodable(result.model_dump(mode="python"))
    assert not bad, f"lone surrogates reach the agent at {bad}"
    dumped = result.model_dump_json()
    assert len(dumped.encode()) < MAX_RESULT_BYTES, f"the result is {len(dumped.encode())} bytes"
    text = text_of(result)
    assert "Error executing tool" not in text, text[:500]
    assert "Traceback" not in dumped, text[:500]
    assert 'File "' not in dumped, text[:500]
    assert_no_key(dumped, key, "a tool result")
    assert_no_key(json.dumps(result.model_dump(mode="json"), ensure_ascii=False), key, "a tool result")


def journal_bytes(state_dir: Path) -> bytes:
    """The journal as stored: the database file and its WAL and shared-memory files."""
    return b"".join(path.read_bytes() for path in sorted(state_dir.glob("journal.sqlite3*")) if path.is_file())


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# The server under test, and the upstream.


@dataclass
class Harness:
    """The server (in process) and the hostile upstream it talks to."""

    up: HostileUpstream
    client: Client
    settings: Settings
    durations: list[tuple[str, float]] = dataclasses.field(default_factory=list)

    async def call(self, name: str, arguments: dict[str, Any], *, budget: float = BUDGET_SECONDS) -> CallToolResult:
        """Call a tool; assert it ended within `budget` + margin and that its result passes `check_result`."""
        started = time.monotonic()
        with anyio.fail_after(budget + MARGIN_SECONDS + HARD_STOP_SECONDS):
            result = await self.client.call_tool(name, arguments)
        elapsed = time.monotonic() - started
        self.durations.append((name, elapsed))
        assert elapsed <= budget + MARGIN_SECONDS, f"{name} took {elapsed:.1f} s (budget {budget:g} s)"
        check_result(result, self.up.api_key)
        return result

    async def listing(self) -> dict[str, Any]:
        """list_videos, asserted answered and not an error."""
        result = await self.call("list_videos", {"limit": 100})
        assert not result.is_error, text_of(result)[:500]
        return structured(result)

    async def assert_alive(self) -> None:
        """The server still answers (the next call)."""
        await self.listing()

    def assert_journal_has_no_key(self) -> None:
        assert_no_key(journal_bytes(self.settings.state_dir), self.up.api_key, "the journal")


def make_settings(up: HostileUpstream, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_key": SecretStr(up.api_key),
        "base_url": up.url,
        "state_dir": tmp_path / "state",
        "output_dir": tmp_path / "videos",
        "poll_time_scale": 0.02,
        "wait_budget_seconds": BUDGET_SECONDS,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def serve(up: HostileUpstream, tmp_path: Path, **overrides: Any) -> AsyncIterator[Harness]:
    settings = make_settings(up, tmp_path, **overrides)
    with anyio.fail_after(120):
        async with open_app(settings) as app, Client(build_server(settings, app)) as client:
            yield Harness(up, client, settings)


@pytest.fixture
def up() -> Iterator[HostileUpstream]:
    with HostileUpstream(api_key=PLAIN_KEY) as upstream:
        yield upstream


@pytest.fixture(params=[PLAIN_KEY, QUOTED_KEY], ids=["plain-key", "key-with-quote-and-backslash"])
def key_up(request: pytest.FixtureRequest) -> Iterator[HostileUpstream]:
    with HostileUpstream(api_key=request.param) as upstream:
        yield upstream


_prompts = iter(range(1, 1_000_000))


def prompt(what: str) -> str:
    """A prompt no other call used (identical prompts re-attach instead of creating)."""
    return f"hostile upstream test {next(_prompts)} ({time.time_ns()}): {what}"


def every_status(up: HostileUpstream, build: Callable[[RecordedRequest], Reply]) -> None:
    """Answer every status request with `build(request)` from now on."""
    up.on_status(build, repeat=True)


def completed_at(url: str) -> Callable[[RecordedRequest], Reply]:
    """A completed status (for the id asked about) whose video is at `url`."""
    return lambda request: Reply(200, json=completed_body(request.generation_id or new_generation_id(), url))


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.02)


# 1. A lone UTF-16 surrogate anywhere in an upstream answer.


@pytest.mark.parametrize("where", get_args(SurrogateField))
async def test_a_lone_surrogate_in_a_status_answer_is_replaced_and_the_id_kept(
    up: HostileUpstream, tmp_path: Path, where: SurrogateField
) -> None:
    generation_id = new_generation_id()
    up.on_status(surrogate_json(where), repeat=True)
    async with serve(up, tmp_path) as harness:
        result = await harness.call("get_video_status", {"generation_id": generation_id, "save_to_disk": True})
        assert structured(result)["generation_id"] == generation_id
        up.clear_script()
        again = await harness.call("get_video_status", {"generation_id": generation_id})
        assert structured(again)["status"] == "completed"
        listing = await harness.listing()
        assert not unencodable(listing)


@pytest.mark.parametrize("where", get_args(SurrogateField))
async def test_a_lone_surrogate_in_a_create_answer_is_replaced_and_never_resent(
    up: HostileUpstream, tmp_path: Path, where: SurrogateField
) -> None:
    up.on_create(surrogate_json(where))
    async with serve(up, tmp_path) as harness:
        result = await harness.call("create_video", {"prompt": prompt(f"surrogate in {where}")})
        content = structured(result)
        if content["generation_id"] is None:
            assert ACCEPTED_WORDING.search(text_of(result)), text_of(result)
        else:
            assert where != "api_error", "a 500 answer cannot have given an id"
        assert up.creates == 1
        await harness.assert_alive()


@pytest.mark.slow
@pytest.mark.parametrize("where", get_args(SurrogateField))
async def test_a_lone_surrogate_in_every_status_poll_of_a_blocking_call_keeps_the_id(
    up: HostileUpstream, tmp_path: Path, where: SurrogateField
) -> None:
    up.on_status(surrogate_json(where), repeat=True)
    async with serve(up, tmp_path) as harness:
        result = await harness.call(
            "generate_video_blocking",
            {"prompt": prompt(f"surrogate polls in {where}"), "timeout_seconds": 2, "save_to_disk": True},
            budget=2,
        )
        polled = [request.generation_id for request in up.requests if request.kind == "status"]
        assert polled, "no status request was sent"
        assert structured(result)["generation_id"] == polled[0]
        assert up.creates == 1
        await harness.assert_alive()


# 2. Every upstream failure is a typed error that keeps the id.


async def test_a_redirect_loop_on_the_download_keeps_the_id_and_video_url_with_a_save_error(
    up: HostileUpstream, tmp_path: Path
) -> None:
    generation_id = new_generation_id()
    up.on_download(redirect_loop())
    async with serve(up, tmp_path) as harness:
        result = await harness.call("get_video_status", {"generation_id": generation_id, "save_to_disk": True})
        content = structured(result)
        assert content["generation_id"] == generation_id
        assert content["status"] == "completed"
        assert content["video_url"] == up.video_url(generation_id)
        assert content["save_error"]
        assert content["local_path"] is None
        await harness.assert_alive()


UNUSABLE_URLS = {
    "ftp": "ftp://cdn.example.com/video.mp4",
    "javascript": "javascript:alert(1)",
    "broken-ipv6": "http://[::1/video.mp4",
    "space-in-host": "http://exa mple.com/video.mp4",
    "no-host": "http:///video.mp4",
    "port-out-of-range": "http://127.0.0.1:99999/video.mp4",
    "control-character": "http://cdn.example.com/vid\neo.mp4",
}


@pytest.mark.parametrize("url", UNUSABLE_URLS.values(), ids=UNUSABLE_URLS.keys())
async def test_an_unusable_video_url_is_a_typed_error_that_keeps_the_id(
    up: HostileUpstream, tmp_path: Path, url: str
) -> None:
    generation_id = new_generation_id()
    every_status(up, completed_at(url))
    async with serve(up, tmp_path) as harness:
        result = await harness.call("get_video_status", {"generation_id": generation_id, "save_to_disk": True})
        content = structured(result)
        assert content["generation_id"] == generation_id
        assert content["save_error"] or content["error"], text_of(result)
        assert content["local_path"] is None
        await harness.assert_alive()


STATUS_FAULTS: dict[str, Callable[[], Any]] = {
    "deep-object": lambda: deep_json(100_000),
    "deep-array": lambda: deep_json(100_000, container="array"),
    "gzip-lie": lambda: gzip_lie(),
    "another-generation": other_generation_status,
    "surrogate-id": lambda: surrogate_json("id"),
    "not-utf8": lambda: non_utf8_body(),
}


@pytest.mark.parametrize("fault", STATUS_FAULTS.values(), ids=STATUS_FAULTS.keys())
async def test_an_unreadable_status_answer_is_a_typed_error_that_keeps_the_id(
    up: HostileUpstream, tmp_path: Path, fault: Callable[[], Any]
) -> None:
    generation_id = new_generation_id()
    up.on_status(fault(), repeat=True)
    async with serve(up, tmp_path) as harness:
        result = await harness.call("get_video_status", {"generation_id": generation_id})
        content = structured(result)
        assert result.is_error, text_of(result)
        assert content["generation_id"] == generation_id
        assert content["status"] == "unknown"
        assert content["video_url"] is None
        await harness.assert_alive()


@pytest.mark.parametrize("fault", STATUS_FAULTS.values(), ids=STATUS_FAULTS.keys())
async def test_an_unreadable_status_answer_inside_a_wait_is_transient(
    up: HostileUpstream, tmp_path: Path, fault: Callable[[], Any]
) -> None:
    generation_id = new_generation_id()
    up.on_status(fault(), fault(), Reply(200, json={"id": generation_id, "status": "generating"}))
    async with serve(up, tmp_path) as harness:
        result = await harness.call("get_video_status", {"generation_id": generation_id, "wait_seconds": 5}, budget=5)
        content = structured(result)
        assert content["generation_id"] == generation_id
        assert content["status"] == "completed", text_of(result)
        assert up.status_requests >= 4
        await harness.assert_alive()


async def test_a_download_that_claims_gzip_and_is_not_keeps_the_id_and_video_url(
    up: HostileUpstream, tmp_path: Path
) -> None:
    generation_id = new_generation_id()
    lie = Reply(200, body=stand_in_video(), headers=[("Content-Type", "video/mp4")], gzip_lie=True)
    up.on_download(lie, repeat=True)
    async with serve(up, tmp_path) as harness:
        result = await harness.call("get_video_status", {"generation_id": generation_id, "save_to_disk": True})
        content = structured(result)
        assert content["generation_id"] == generation_id
        assert content["video_url"] == up.video_url(generation_id)
        assert content["save_error"]
        assert content["local_path"] is None
        await harness.assert_alive()


async def test_a_one_megabyte_id_on_create_is_a_small_typed_error_sent_once(
    up: HostileUpstream, tmp_path: Path
) -> None:
    up.on_create(huge_generation_id(1_000_000))
    async with serve(up, tmp_path) as harness:
        result = await harness.call("create_video", {"prompt": prompt("a 1 MB id")})
        assert result.is_error, text_of(result)[:500]
        assert ACCEPTED_WORDING.search(text_of(result)), text_of(result)[:500]
        assert up.creates == 1
        await harness.assert_alive()


CREATE_UNREADABLE: tuple[UnreadableKind, ...] = get_args(UnreadableKind)


@pytest.mark.parametrize("kind", CREATE_UNREADABLE)
@pytest.mark.parametrize(
    # The blocking call waits out its budget for the settling: real time, outside the fast loop.
    "tool",
    ["create_video", pytest.param("generate_video_blocking", marks=pytest.mark.slow)],
)
async def test_an_unreadable_201_says_it_may_have_been_accepted_and_is_never_resent(
    up: HostileUpstream, tmp_path: Path, kind: UnreadableKind, tool: str
) -> None:
    up.on_create(unreadable_created(kind))
    async with serve(up, tmp_path) as harness:
        result = await harness.call(tool, {"prompt": prompt(f"unreadable 201 ({kind})")})
        content = structured(result)
        assert result.is_error, text_of(result)
        assert ACCEPTED_WORDING.search(text_of(result) + content["next_step"]), text_of(result)
        assert "re-attaches" in content["next_step"]
        assert up.creates == 1
        listing = await harness.listing()
        assert [entry["state"] for entry in listing["uncertain_creates"]] == ["settling"]


async def test_a_100000_deep_201_says_it_may_have_been_accepted_and_is_never_resent(
    up: HostileUpstream, tmp_path: Path
) -> None:
    up.on_create(deep_json(100_000, status=201))
    async with serve(up, tmp_path) as harness:
        result = await harness.call("create_video", {"prompt": prompt("deep 201")})
        assert result.is_error, text_of(result)
        assert ACCEPTED_WORDING.search(text_of(result)), text_of(result)
        assert up.creates == 1
        listing = await harness.listing()
        assert [entry["state"] for entry in listing["uncertain_creates"]] == ["settling"]


# 3. No create is ever invisible.


async def test_a_hanging_create_whose_call_is_cancelled_is_listed_as_uncertain(
    up: HostileUpstream, tmp_path: Path
) -> None:
    up.on_create(hang())
    text = prompt("hangs, then the caller gives up")
    async with serve(up, tmp_path) as harness:
        scope = anyio.CancelScope()

        async def create() -> None:
            with scope:
                await harness.client.call_tool("create_video", {"prompt": text})

        async with anyio.create_task_group() as group:
            group.start_soon(create)
            await wait_until(lambda: up.creates == 1)
            scope.cancel()
        uncertain: list[dict[str, Any]] = []
        with anyio.move_on_after(5):
            while not uncertain:
                uncertain = (await harness.listing())["uncertain_creates"]
                await anyio.sleep(0.05)
        assert [entry["prompt"] for entry in uncertain] == [text]
        assert uncertain[0]["state"] in {"settling", "creating"}
        assert up.creates == 1


@pytest.mark.slow  # a 1 s read timeout, then a blocking call that waits out its 5 s budget
async def test_a_create_that_times_out_is_listed_as_uncertain(up: HostileUpstream, tmp_path: Path) -> None:
    up.on_create(hang())
    text = prompt("never answered")
    async with serve(up, tmp_path, read_timeout_seconds=1.0) as harness:
        result = await harness.call("create_video", {"prompt": text})
        assert result.is_error
        assert ACCEPTED_WORDING.search(text_of(result)), text_of(result)
        uncertain = (await harness.listing())["uncertain_creates"]
        assert [(entry["prompt"], entry["state"]) for entry in uncertain] == [(text, "settling")]
        assert up.creates == 1
        # Asked again through the tool that re-attaches, it is not sent: the first may have been charged.
        again = await harness.call("generate_video_blocking", {"prompt": text})
        assert again.is_error
        assert ACCEPTED_WORDING.search(text_of(again)), text_of(again)
        assert up.creates == 1
        # force_new is the user saying "another one anyway".
        await harness.call("generate_video_blocking", {"prompt": text, "force_new": True})
        assert up.creates == 2


# 4. The wait budget bounds the whole call.


@pytest.mark.slow
async def test_a_status_answer_dripping_a_byte_every_half_second_cannot_outlast_the_budget(
    up: HostileUpstream, tmp_path: Path
) -> None:
    def dripping(request: RecordedRequest) -> Reply:
        generation_id = request.generation_id or new_generation_id()
        return Reply(200, json=completed_body(generation_id, up.video_url(generation_id)), drip=(1, 0.5))

    every_status(up, dripping)
    async with serve(up, tmp_path, read_timeout_seconds=60.0) as harness:
        result = await harness.call(
            "generate_video_blocking", {"prompt": prompt("dripping status"), "timeout_seconds": 5}, budget=5
        )
        content = structured(result)
        assert content["generation_id"] is not None
        assert content["done"] is False
        assert up.creates == 1
        await harness.assert_alive()


SLOW_CREATES = {
    "silent": Reply(201, json={"id": new_generation_id(), "status": "queued"}, delay_before_headers=60),
    "dripping": Reply(201, json={"id": new_generation_id(), "status": "queued"}, drip=(1, 0.5), drip_head=True),
}


@pytest.mark.slow
@pytest.mark.parametrize("reply", SLOW_CREATES.values(), ids=SLOW_CREATES.keys())
async def test_a_slow_create_cannot_outlast_the_budget_and_stays_visible(
    up: HostileUpstream, tmp_path: Path, reply: Reply
) -> None:
    up.on_create(reply)
    async with serve(up, tmp_path, read_timeout_seconds=60.0) as harness:
        result = await harness.call(
            "generate_video_blocking", {"prompt": prompt("slow create"), "timeout_seconds": 5}, budget=5
        )
        assert up.creates == 1
        if structured(result)["generation_id"] is None:
            uncertain = (await harness.listing())["uncertain_creates"]
            assert [entry["state"] for entry in uncertain] in (["settling"], ["creating"])


@pytest.mark.slow
async def test_a_slow_download_cannot_outlast_the_budget(up: HostileUpstream, tmp_path: Path) -> None:
    up.on_download(slow_download(1, 0.5), repeat=True)
    async with serve(up, tmp_path, read_timeout_seconds=60.0) as harness:
        result = await harness.call(
            "generate_video_blocking",
            {"prompt": prompt("slow download"), "timeout_seconds": 5, "save_to_disk": True},
            budget=5,
        )
        content = structured(result)
        assert content["generation_id"] is not None
        assert content["status"] == "completed"
        assert content["video_url"]
        assert content["save_error"]
        await harness.assert_alive()


# 5. Memory.


async def test_a_100_mb_status_answer_during_a_wait_is_refused_without_holding_it(
    up: HostileUpstream, tmp_path: Path
) -> None:
    generation_id = new_generation_id()
    up.on_status(huge_json(100_000_000, generation_id=generation_id))
    async with serve(up, tmp_path) as harness:
        before = peak_rss_kib()
        result = await harness.call("get_video_status", {"generation_id": generation_id, "wait_seconds": 5}, budget=5)
        growth = peak_rss_kib() - before
        content = structured(result)
        assert content["generation_id"] == generation_id
        assert content["status"] == "completed", text_of(result)
        assert growth < MAX_GROWTH_KIB, f"peak RSS grew by {growth / 1024:.0f} MB"
        await harness.assert_alive()


def write_huge_video_elsewhere(path: Path) -> None:
    """Encode the 8192x4320 video in a child process, so its encoder's memory is not counted against the preview."""
    code = "import sys; from tests.hostile_upstream import write_huge_frame_video; write_huge_frame_video(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO_ROOT, check=True, timeout=60)


@pytest.mark.slow
async def test_previewing_an_8k_video_is_refused_with_its_frame_size_in_little_memory(
    up: HostileUpstream, tmp_path: Path
) -> None:
    async with serve(up, tmp_path) as harness:
        video = harness.settings.videos_dir / "huge.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        write_huge_video_elsewhere(video)
        before = peak_rss_kib()
        result = await harness.call("preview_video", {"path": str(video)})
        growth = peak_rss_kib() - before
        assert result.is_error, text_of(result)
        assert "8192" in text_of(result), text_of(result)
        assert "4320" in text_of(result), text_of(result)
        assert growth < MAX_PREVIEW_GROWTH_KIB, f"peak RSS grew by {growth / 1024:.0f} MB"
        await harness.assert_alive()


# 6. The key never leaks.


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_a_key_echoed_in_a_create_error_appears_in_no_result_and_no_journal(
    key_up: HostileUpstream, tmp_path: Path, status: int
) -> None:
    key_up.on_create(echo_key_in_error(status))
    async with serve(key_up, tmp_path) as harness:
        result = await harness.call("create_video", {"prompt": prompt(f"echo {status}")})
        assert result.is_error
        assert key_up.creates == 1
        await harness.assert_alive()
        harness.assert_journal_has_no_key()
    assert_no_key(journal_bytes(harness.settings.state_dir), key_up.api_key, "the journal after closing")


# A 500 is retried with real back-off sleeps (about 3.5 s): slow.
@pytest.mark.parametrize("status", [400, 401, pytest.param(500, marks=pytest.mark.slow)])
async def test_a_key_echoed_in_a_status_error_appears_in_no_result_and_no_journal(
    key_up: HostileUpstream, tmp_path: Path, status: int
) -> None:
    generation_id = new_generation_id()
    key_up.on_status(echo_key_in_error(status), repeat=True)
    async with serve(key_up, tmp_path) as harness:
        looked = await harness.call("get_video_status", {"generation_id": generation_id})
        assert structured(looked)["generation_id"] == generation_id
        waited = await harness.call("get_video_status", {"generation_id": generation_id, "wait_seconds": 1}, budget=1)
        assert structured(waited)["generation_id"] == generation_id
        await harness.assert_alive()
        harness.assert_journal_has_no_key()
    assert_no_key(journal_bytes(harness.settings.state_dir), key_up.api_key, "the journal after closing")


def failed_with_key(request: RecordedRequest) -> Reply:
    """A failed generation whose message carries the key plainly, and one whose raw body has it \\u-escaped."""
    key = request.bearer or ""
    generation_id = request.generation_id or new_generation_id()
    escaped = "".join(f"\\u{ord(char):04x}" for char in key)
    plain = json.dumps(key)[1:-1]
    body = (
        f'{{"id": {json.dumps(generation_id)}, "status": "failed", '
        f'"error": {{"message": "moderation rejected request from {plain}", "detail": "key={escaped}"}}}}'
    )
    return Reply(200, body=body.encode("ascii"), headers=[("Content-Type", "application/json")])


async def test_a_key_echoed_in_a_failed_generation_appears_in_no_result_and_no_journal(
    key_up: HostileUpstream, tmp_path: Path
) -> None:
    generation_id = new_generation_id()
    every_status(key_up, failed_with_key)
    async with serve(key_up, tmp_path) as harness:
        looked = await harness.call("get_video_status", {"generation_id": generation_id})
        waited = await harness.call("get_video_status", {"generation_id": generation_id, "wait_seconds": 2}, budget=2)
        for result in (looked, waited):
            assert structured(result)["generation_id"] == generation_id
            assert structured(result)["status"] == "failed"
        resource_text = await harness.client.read_resource(f"pixverse://generations/{generation_id}")
        assert_no_key(resource_text.model_dump_json(), key_up.api_key, "the generation resource")
        await harness.assert_alive()
        harness.assert_journal_has_no_key()


@pytest.mark.parametrize("where", ["query", "userinfo"])
async def test_a_key_in_the_video_url_appears_nowhere_and_the_download_sends_no_credentials(
    key_up: HostileUpstream, tmp_path: Path, where: Any
) -> None:
    generation_id = new_generation_id()
    every_status(key_up, key_in_video_url(where))
    async with serve(key_up, tmp_path) as harness:
        result = await harness.call("get_video_status", {"generation_id": generation_id, "save_to_disk": True})
        assert structured(result)["generation_id"] == generation_id
        await harness.assert_alive()
        harness.assert_journal_has_no_key()
    downloads = [request for request in key_up.requests if request.kind == "download"]
    for request in downloads:
        assert "authorization" not in request.headers, request.headers


async def test_a_5_mb_error_message_gives_a_result_under_1_mb(up: HostileUpstream, tmp_path: Path) -> None:
    generation_id = new_generation_id()
    every_status(up, failed_with_huge_error(5_000_000))
    async with serve(up, tmp_path) as harness:
        looked = await harness.call("get_video_status", {"generation_id": generation_id})
        waited = await harness.call("get_video_status", {"generation_id": generation_id, "wait_seconds": 2}, budget=2)
        for result in (looked, waited):
            assert structured(result)["generation_id"] == generation_id
            assert structured(result)["status"] == "failed"
        await harness.assert_alive()  # the listing of a journal holding that message is under 1 MB too


# 7. Downloads fetch videos, not internal pages.


OFF_ORIGIN = {
    # Where a hostile CDN may redirect a download: another port or address of this machine (served here, so a
    # request that reaches it is seen), the cloud metadata service, a private network.
    "other-loopback-port": ("127.0.0.1", "http://127.0.0.1:{port}/cdn/internal.mp4"),
    "localhost-by-name": ("127.0.0.1", "http://localhost:{port}/cdn/internal.mp4"),
    "other-loopback-address": ("127.0.0.2", "http://127.0.0.2:{port}/cdn/internal.mp4"),
    "metadata-service": ("127.0.0.1", METADATA_URL),
    "private-network": ("127.0.0.1", PRIVATE_URL),
}


@pytest.mark.parametrize(("host", "location"), OFF_ORIGIN.values(), ids=OFF_ORIGIN.keys())
async def test_a_download_redirected_off_the_api_origin_is_refused(
    up: HostileUpstream, tmp_path: Path, host: str, location: str
) -> None:
    generation_id = new_generation_id()
    with HostileUpstream(host=host) as internal:
        up.on_download(redirect_to(location.format(port=internal.port)), repeat=True)
        async with serve(up, tmp_path) as harness:
            result = await harness.call("get_video_status", {"generation_id": generation_id, "save_to_disk": True})
            content = structured(result)
            assert content["generation_id"] == generation_id
            assert content["video_url"] == up.video_url(generation_id)
            assert content["save_error"], text_of(result)
            assert content["local_path"] is None
            await harness.assert_alive()
        assert internal.requests == [], "the download followed a redirect off the API's origin"


async def test_a_download_redirected_within_the_api_origin_is_followed(up: HostileUpstream, tmp_path: Path) -> None:
    generation_id = new_generation_id()
    up.on_download(redirect_to(f"{up.url}/cdn/moved.mp4"))
    async with serve(up, tmp_path) as harness:
        result = await harness.call("get_video_status", {"generation_id": generation_id, "save_to_disk": True})
        content = structured(result)
        assert content["save_error"] is None, content["save_error"]
        assert content["file_size_bytes"] == len(stand_in_video())


DOWNLOAD_PAGES = {"html-200": download_as_html, "html-404": lambda: html_page(404)}


@pytest.mark.parametrize("page", DOWNLOAD_PAGES.values(), ids=DOWNLOAD_PAGES.keys())
async def test_a_web_page_instead_of_the_video_is_refused_as_a_video_storage_problem(
    up: HostileUpstream, tmp_path: Path, page: Callable[[], Reply]
) -> None:
    generation_id = new_generation_id()
    up.on_download(page(), repeat=True)
    async with serve(up, tmp_path) as harness:
        result = await harness.call("get_video_status", {"generation_id": generation_id, "save_to_disk": True})
        content = structured(result)
        assert content["generation_id"] == generation_id
        assert content["local_path"] is None
        save_error = content["save_error"] or ""
        assert STORAGE_WORDING.search(save_error), save_error
        assert "knows no such generation" not in save_error
        await harness.assert_alive()
    assert not list(harness.settings.videos_dir.glob("*.mp4")), "an HTML page was saved as a video"


# 8. The journal: corrupt, or from a newer version.


async def test_a_corrupt_journal_is_reported_with_its_path_and_what_to_do(up: HostileUpstream, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.sqlite3").write_bytes(b"this is not a database\x00\xff" * 4096)
    async with serve(up, tmp_path) as harness:
        result = await harness.call("list_videos", {})
        message = text_of(result)
        assert result.is_error, message
        assert "journal.sqlite3" in message, message
        assert WHAT_TO_DO.search(message), message
        again = await harness.call("list_videos", {})
        assert again.is_error, text_of(again)


async def test_a_journal_from_a_newer_version_is_never_reset(up: HostileUpstream, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    path = state / "journal.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE from_the_future (value TEXT)")
        connection.execute("INSERT INTO from_the_future VALUES ('keep me')")
        connection.execute("PRAGMA user_version = 99")
    connection.close()
    async with serve(up, tmp_path) as harness:
        listed = await harness.call("list_videos", {})
        assert listed.is_error, text_of(listed)
        assert "journal.sqlite3" in text_of(listed), text_of(listed)
        await harness.call("create_video", {"prompt": prompt("newer journal")})
        await harness.call("list_videos", {})
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == 99
        assert check.execute("SELECT value FROM from_the_future").fetchall() == [("keep me",)]
    finally:
        check.close()


# 9. Prompts that say nothing.


@pytest.mark.parametrize("text", SILENT_PROMPTS.values(), ids=SILENT_PROMPTS.keys())
@pytest.mark.parametrize("tool", ["create_video", "generate_video_blocking"])
async def test_a_prompt_that_says_nothing_is_refused_without_a_create(
    up: HostileUpstream, tmp_path: Path, text: str, tool: str
) -> None:
    async with serve(up, tmp_path) as harness:
        result = await harness.call(tool, {"prompt": text})
        assert result.is_error, text_of(result)
        assert up.creates == 0
        await harness.assert_alive()
