"""The inline video player (MCP Apps view) in a real headless Chromium, against the real server and the sandbox.

The real `build_server` runs in process behind an `mcp.Client` that advertises MCP Apps support. A hand-written
test host (`tests/player_host.html`, served from its own loopback origin) embeds the `ui://pixverse/player.html`
resource the way hosts do: a `sandbox="allow-scripts"` srcdoc iframe whose CSP is built from the resource's
`_meta.ui.csp`. It forwards the view's `tools/call` to the real server (`page.expose_function`) and records every
message both ways. The sandbox serves the MP4 from another origin, so the declared `resourceDomains` are what lets
the video load (test d proves the converse).

Needs Debian's chromium (`/usr/bin/chromium`) and the Python `playwright` package (no browser download).
"""

from __future__ import annotations

import http.server
import itertools
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from playwright.async_api import Browser, ConsoleMessage, Frame, Page, async_playwright
from pydantic import SecretStr

from pixverse_mcp.app import open_app
from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SANDBOX_API_KEY, RunningSandbox, SandboxConfig
from pixverse_mcp.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test installs it)"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOST_PAGE = Path(__file__).resolve().parents[1] / "player_host.html"
PLAYER_URI = "ui://pixverse/player.html"
PLAYER_TOOL = "video_player_status"
PLAYER_HTML = (files("pixverse_mcp") / "player" / "player.html").read_text(encoding="utf-8")
POLL_SCALE = 0.04  # the polling schedule scaled to the fast sandbox (as tests/conftest.py's FAST_POLL_SCALE)

# JavaScript run in the view's frame.
VIDEO_STATE = """() => { const v = document.getElementById('video'); return {
  src: v.getAttribute('src'), currentSrc: v.currentSrc, poster: v.getAttribute('poster'),
  readyState: v.readyState, networkState: v.networkState, error: v.error ? v.error.code : null,
  width: v.videoWidth, height: v.videoHeight, duration: v.duration, hidden: v.hidden,
  crossorigin: v.getAttribute('crossorigin') }; }"""
DISPLAY = """() => { const t = (id) => (document.getElementById(id).hidden ? null
    : document.getElementById(id).textContent);
  return { status: t('status'), prompt: t('prompt'), cost: t('cost'), budget: t('budget'), error: t('error'),
  generation: t('generation'), placeholder: t('placeholder'),
  fraction: document.getElementById('progress').dataset.fraction ?? null,
  progressHidden: document.getElementById('progress').hidden,
  polling: document.documentElement.dataset.polling, state: document.documentElement.dataset.status ?? null }; }"""
VIDEO_PLAYS = "() => { const v = document.getElementById('video'); return v.readyState >= 2 && v.videoWidth > 0; }"


# --- the browser and the host page -----------------------------------------------------------------------------


def test_chromium_is_installed() -> None:
    """The browser tests need Debian's chromium; say how to get it instead of skipping."""
    if not CHROMIUM.exists():
        pytest.fail(CHROMIUM_MISSING)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the module, closed at the end whatever happens."""
    if not CHROMIUM.exists():
        pytest.fail(CHROMIUM_MISSING)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


class _HostPage(http.server.BaseHTTPRequestHandler):
    """Serves the test host page, and nothing else."""

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/player_host.html":
            self.send_error(404)
            return
        body = HOST_PAGE.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def host_url() -> Iterator[str]:
    """The host page on its own loopback port: an origin other than the sandbox's (CSP 'self' would otherwise
    let the sandbox's video in whatever the resource declares)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostPage)
    thread = threading.Thread(target=server.serve_forever, name="player-host", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/player_host.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser context and page per test (closed after it)."""
    context = await browser.new_context(viewport={"width": 600, "height": 640}, color_scheme="light")
    try:
        yield await context.new_page()
    finally:
        await context.close()


# --- the real server ----------------------------------------------------------------------------------------------


@asynccontextmanager
async def real_server(
    sandbox: RunningSandbox,
    tmp_path: Path,
    *,
    poll_time_scale: float = POLL_SCALE,
    daily_budget_usd: float | None = None,
) -> AsyncIterator[Client]:
    """The real server on the sandbox, in process, with a client that renders MCP Apps."""
    settings = Settings(
        api_key=SecretStr(SANDBOX_API_KEY),
        base_url=sandbox.url,
        state_dir=tmp_path / "state",
        poll_time_scale=poll_time_scale,
        media_origins=(sandbox.url,),
        daily_budget_usd=daily_budget_usd,
    )
    async with open_app(settings) as app:
        server = build_server(settings, app)
        ui = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
        async with Client(server, extensions=[ui]) as client:
            yield client


def wire(model: Any) -> dict[str, Any]:
    """A result or resource as it travels in JSON-RPC (camelCase, no nulls)."""
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


@dataclass
class Host:
    """The test host page, wired to the real server; `view` is the player's frame once loaded."""

    page: Page
    client: Client
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    in_flight: int = 0
    page_errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    policy: str = ""
    _view: Frame | None = None

    @property
    def view(self) -> Frame:
        assert self._view is not None, "load() first"
        return self._view

    async def open(self, url: str, *, resource_domains: list[str] | None = None) -> None:
        """Open the host page and load the player as the server serves it (optionally with other resourceDomains,
        as a server declaring them would), then wait for the handshake."""
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("console", self._on_console)
        await self.page.expose_function("mcpCallTool", self._call_tool)
        await self.page.goto(url)
        tools = {tool.name: wire(tool) for tool in (await self.client.list_tools()).tools}
        listing = {str(item.uri): wire(item) for item in (await self.client.list_resources()).resources}
        resource = wire((await self.client.read_resource(PLAYER_URI)).contents[0])
        listing_meta = listing[PLAYER_URI].get("_meta")
        if resource_domains is not None:
            for meta in (resource.get("_meta"), listing_meta):
                if meta is not None:
                    meta.setdefault("ui", {}).setdefault("csp", {})["resourceDomains"] = resource_domains
        self.policy = await self.page.evaluate(
            "boot => host.load(boot)", {"resource": resource, "listingMeta": listing_meta, "toolList": tools}
        )
        with anyio.fail_after(10):
            await self.page.evaluate("() => host.initialized.then(() => true)")
        element = await self.page.wait_for_selector("iframe")
        assert element is not None
        frame = await element.content_frame()
        assert frame is not None
        self._view = frame

    def _on_console(self, message: ConsoleMessage) -> None:
        self.console.append(message.text)

    async def _call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((name, arguments))
        self.in_flight += 1
        try:
            return wire(await self.client.call_tool(name, arguments))
        finally:
            self.in_flight -= 1

    async def deliver(self, arguments: dict[str, Any], result: dict[str, Any]) -> None:
        """tool-input, then tool-result, as a host does after the model's call."""
        await self.page.evaluate(
            "async ([args, result]) => { await host.toolInput(args); await host.toolResult(result); }",
            [arguments, result],
        )

    async def log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = await self.page.evaluate("() => host.log")
        return entries

    async def view_calls(self) -> list[dict[str, Any]]:
        """The view's tools/call requests, in order, with the host's time stamp (ms)."""
        return [e for e in await self.log() if e["dir"] == "view->host" and e["msg"].get("method") == "tools/call"]

    async def display(self) -> dict[str, Any]:
        shown: dict[str, Any] = await self.view.evaluate(DISPLAY)
        return shown

    async def video(self) -> dict[str, Any]:
        state: dict[str, Any] = await self.view.evaluate(VIDEO_STATE)
        return state

    async def settle(self) -> None:
        """Let a tools/call still running on the server end before the page and the client go."""
        with anyio.move_on_after(10):
            while self.in_flight:
                await anyio.sleep(0.05)


@asynccontextmanager
async def shown_in_host(
    page: Page, url: str, sandbox: RunningSandbox, tmp_path: Path, **options: Any
) -> AsyncIterator[tuple[Host, Client]]:
    resource_domains = options.pop("resource_domains", None)
    async with real_server(sandbox, tmp_path, **options) as client:
        host = Host(page, client)
        try:
            await host.open(url, resource_domains=resource_domains)
            yield host, client
            assert host.page_errors == [], host.page_errors
        finally:
            await host.settle()
            await page.close()


def screenshot(path: Path) -> Path:
    print(f"screenshot: {path}")
    return path


# --- the tests ----------------------------------------------------------------------------------------------------


async def test_the_player_resource_is_declared_as_hosts_expect(
    page: Page, host_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """(a) The tools name the view, it is served as an MCP App, self-contained, and its CSP lets the sandbox's media
    in."""
    async with real_server(sandbox, tmp_path) as client:
        tools = {tool.name: wire(tool) for tool in (await client.list_tools()).tools}
        for name in ("generate_video_blocking", "get_video_status"):
            assert tools[name]["_meta"]["ui"]["resourceUri"] == PLAYER_URI
            assert "visibility" not in tools[name]["_meta"]["ui"]  # the model sees them too
        assert tools[PLAYER_TOOL]["_meta"]["ui"] == {"resourceUri": PLAYER_URI, "visibility": ["app"]}
        assert tools[PLAYER_TOOL]["inputSchema"]["required"] == ["generation_id"]

        listing = {str(item.uri): wire(item) for item in (await client.list_resources()).resources}
        assert listing[PLAYER_URI]["mimeType"] == APP_MIME_TYPE
        read = await client.read_resource(tools["generate_video_blocking"]["_meta"]["ui"]["resourceUri"])
        assert len(read.contents) == 1
        item = wire(read.contents[0])

    assert item["mimeType"] == APP_MIME_TYPE
    html = item["text"]
    assert html == PLAYER_HTML  # served as is
    assert len(html.encode()) < 20_000
    ui = item["_meta"]["ui"]
    assert sandbox.url in ui["csp"]["resourceDomains"]
    assert ui["prefersBorder"] is False
    assert listing[PLAYER_URI]["_meta"]["ui"] == ui

    # One self-contained document: nothing fetched from anywhere (inline script and style only).
    assert html.lower().count("<script") == 1
    assert re.search(r"<script[^>]*\bsrc\s*=", html, re.IGNORECASE) is None
    assert re.search(r"<link\b", html, re.IGNORECASE) is None
    assert re.search(r"@import|url\s*\(", html, re.IGNORECASE) is None
    assert re.search(r"\b(src|href|poster|srcset|action)\s*=\s*[\"']?[a-z]*:?//", html, re.IGNORECASE) is None
    assert re.search(r"\bfetch\s*\(|XMLHttpRequest|WebSocket|EventSource|innerHTML|eval\s*\(", html) is None
    assert re.search(r"<video[^>]*\bcrossorigin", html, re.IGNORECASE) is None

    # The host builds the view's CSP from that metadata: the sandbox origin is in media-src and img-src.
    await page.goto(host_url)
    policy = await page.evaluate("csp => host.buildCsp(csp)", ui["csp"])
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert sandbox.url in directives["media-src"]
    assert sandbox.url in directives["img-src"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["default-src"] == ["'none'"]


async def test_a_completed_video_plays_in_the_view(
    page: Page, host_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """(b) A finished blocking call: the video plays from the sandbox, the contact sheet is its poster, the prompt
    and the cost are shown, and no polling happens."""
    async with shown_in_host(page, host_url, sandbox, tmp_path) as (host, client):
        assert f"media-src 'self' data: {sandbox.url};" in host.policy  # from the resource's resourceDomains
        arguments = {"prompt": "A red fox running through fresh snow at dawn", "preview": True}
        result = wire(await client.call_tool("generate_video_blocking", arguments))
        sc = result["structuredContent"]
        assert sc["status"] == "completed"
        assert sc["video_url"].startswith(sandbox.url)
        await host.deliver(arguments, result)

        await host.view.wait_for_function(VIDEO_PLAYS, timeout=15_000)
        video = await host.video()
        assert video["src"] == sc["video_url"]
        assert video["readyState"] >= 2
        assert video["width"] > 0
        assert video["height"] > 0
        assert video["crossorigin"] is None
        assert video["poster"].startswith("data:image/png;base64,")  # the contact sheet from the result
        shown = await host.display()
        assert shown["prompt"] == arguments["prompt"]
        assert shown["status"].startswith("completed")
        assert shown["cost"] == f"Cost ${sc['cost_usd']:.2f}"
        assert shown["error"] is None
        assert shown["generation"] == f"generation {sc['generation_id']}"
        assert shown["progressHidden"] is True
        assert shown["polling"] == "off"

        # The handshake, in order: initialize (2026-01-26), its answer, initialized, then the host's notifications.
        log = await host.log()
        first = log[0]["msg"]
        assert first["method"] == "ui/initialize"
        assert first["params"]["protocolVersion"] == "2026-01-26"
        assert first["params"]["appInfo"]["name"] == "pixverse-player"
        from_view = [e["msg"].get("method") for e in log if e["dir"] == "view->host"]
        initialized = from_view.index("ui/notifications/initialized")
        assert from_view[:initialized] == ["ui/initialize"]
        assert "ui/notifications/size-changed" in from_view[initialized:]
        sizes = [e["msg"]["params"] for e in log if e["msg"].get("method") == "ui/notifications/size-changed"]
        assert sizes[-1]["height"] > 200  # the video is in the page
        assert "tools/call" not in from_view  # a finished result needs no polling
        screenshot_path = screenshot(tmp_path / "player-completed.png")
        await page.screenshot(path=str(screenshot_path), full_page=True)

        # The host's theme wins over the browser's preference.
        light = await host.view.evaluate("() => getComputedStyle(document.body).backgroundColor")
        await page.evaluate("() => host.contextChanged({theme: 'dark'})")
        await host.view.wait_for_function(
            f"() => getComputedStyle(document.body).backgroundColor !== {light!r}", timeout=5_000
        )
        await page.screenshot(path=str(screenshot(tmp_path / "player-completed-dark.png")), full_page=True)


async def test_a_running_video_is_polled_until_it_plays(page: Page, host_url: str, tmp_path: Path) -> None:
    """(c) A result still running: the view polls the app-only tool through the host, its progress moves, and
    once the sandbox finishes the video appears and the polling stops."""
    # Slow enough to watch: queued 0.5 s, then generating 9 s; the server expects about 10.5 s (35 s x 0.3).
    with RunningSandbox(SandboxConfig(queued_seconds=0.5, generating_seconds=9.0)) as slow:
        async with shown_in_host(page, host_url, slow, tmp_path, poll_time_scale=0.3) as (host, client):
            arguments = {"prompt": "A paper boat drifting down a rainy street"}
            result = wire(await client.call_tool("create_video", arguments))
            sc = result["structuredContent"]
            assert sc["status"] == "queued"
            assert sc["done"] is False
            gid = sc["generation_id"]
            await host.deliver(arguments, result)

            shown = await host.display()
            assert shown["prompt"] == arguments["prompt"]
            assert shown["polling"] == "on"
            assert shown["progressHidden"] is False
            assert re.fullmatch(r"queued, \d+ s elapsed, about \d+ s left", shown["status"]), shown
            assert (await host.video())["poster"] is None  # no contact sheet in this result

            seen: list[tuple[str, str]] = []
            shot = False
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline:
                shown = await host.display()
                seen.append((shown["status"], shown["fraction"]))
                if shown["state"] == "generating" and not shot:
                    await page.screenshot(path=str(screenshot(tmp_path / "player-running.png")), full_page=True)
                    shot = True
                if shown["state"] == "completed":
                    break
                await anyio.sleep(0.25)
            assert shown["state"] == "completed", seen
            assert shot, seen  # a poll answer brought the news that it was generating

            running = [entry for entry in seen if not entry[0].startswith("completed")]
            assert len(set(running)) >= 3, running  # the line and the bar moved while it ran
            fractions = [float(fraction) for _, fraction in running if fraction not in (None, "indeterminate")]
            assert fractions, running
            assert max(fractions) > min(fractions)

            calls = await host.view_calls()
            assert calls, "the view never polled"
            assert all(c["msg"]["params"] == {"name": PLAYER_TOOL, "arguments": {"generation_id": gid}} for c in calls)
            assert host.calls
            assert all(name == PLAYER_TOOL for name, _ in host.calls)
            starts = [c["at"] for c in calls]
            assert all(later - earlier >= 1_900 for earlier, later in itertools.pairwise(starts)), starts

            await host.view.wait_for_function(VIDEO_PLAYS, timeout=15_000)
            video = await host.video()
            assert video["src"].startswith(slow.url)
            assert video["src"].endswith(".mp4")
            assert (await host.display())["polling"] == "off"
            polled = len(await host.view_calls())
            await anyio.sleep(3)
            assert len(await host.view_calls()) == polled  # polling stopped
            await page.screenshot(path=str(screenshot(tmp_path / "player-running-done.png")), full_page=True)


async def test_without_the_media_origin_in_the_csp_the_video_is_blocked(
    page: Page, host_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """(d) The same completed result under a CSP without the sandbox origin: the video does not load."""
    assert sandbox.url.split("/")[2] != host_url.split("/")[2]  # else 'self' would let it in anyway
    async with shown_in_host(page, host_url, sandbox, tmp_path, resource_domains=[]) as (host, client):
        assert "media-src 'self' data:;" in host.policy
        assert sandbox.url not in host.policy
        arguments = {"prompt": "A lighthouse in a storm"}
        result = wire(await client.call_tool("generate_video_blocking", arguments))
        assert result["structuredContent"]["status"] == "completed"
        await host.deliver(arguments, result)

        await host.view.wait_for_function(
            "() => { const v = document.getElementById('video'); return v.error !== null; }", timeout=10_000
        )
        video = await host.video()
        assert video["src"] == result["structuredContent"]["video_url"]  # it tried
        assert video["error"] == 4  # MEDIA_ERR_SRC_NOT_SUPPORTED: refused before any request
        assert video["readyState"] == 0
        assert video["width"] == 0
        assert any("media-src" in line and "Content Security Policy" in line for line in host.console), host.console


async def test_teardown_is_answered_and_stops_polling(
    page: Page, host_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """(e) ui/resource-teardown is answered with {} and no poll follows; ping too, and unknown requests fail."""
    async with shown_in_host(page, host_url, sandbox, tmp_path) as (host, client):
        arguments = {"prompt": "A windmill at dusk [sandbox:fault=never_completes]"}
        result = wire(await client.call_tool("create_video", arguments))
        assert result["structuredContent"]["done"] is False
        await host.deliver(arguments, result)
        await page.wait_for_function(
            "() => host.log.some(e => e.dir === 'view->host' && e.msg.method === 'tools/call')", timeout=10_000
        )

        ping = await page.evaluate("() => host.request('ping', {})")
        assert ping["result"] == {}
        unknown = await page.evaluate("() => host.request('ui/no-such-method', {})")
        assert unknown["error"]["code"] == -32601

        answer = await page.evaluate("() => host.teardown()")
        assert answer["result"] == {}
        assert "error" not in answer
        assert (await host.display())["polling"] == "off"
        polled = len(await host.view_calls())
        await anyio.sleep(4.5)  # two poll periods
        assert len(await host.view_calls()) == polled


async def test_a_repeated_result_polls_once_and_cancel_stops_it(
    page: Page, host_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """The same tool-result twice (hosts may re-send it) keeps one poll timer; tool-cancelled stops it."""
    async with shown_in_host(page, host_url, sandbox, tmp_path) as (host, client):
        arguments = {"prompt": "A hot-air balloon over hills [sandbox:fault=never_completes]"}
        result = wire(await client.call_tool("create_video", arguments))
        await host.deliver(arguments, result)
        await page.evaluate("result => host.toolResult(result)", result)
        await anyio.sleep(4.5)
        calls = await host.view_calls()
        assert 1 <= len(calls) <= 2, calls
        starts = [c["at"] for c in calls]
        assert all(later - earlier >= 1_900 for earlier, later in itertools.pairwise(starts)), starts

        await page.evaluate("() => host.toolCancelled('the user stopped it')")
        await host.view.wait_for_function("() => document.documentElement.dataset.polling === 'off'", timeout=5_000)
        shown = await host.display()
        assert shown["status"] == "cancelled: the user stopped it"
        assert shown["placeholder"].startswith("Stopped waiting here. The video goes on being made")
        polled = len(await host.view_calls())
        await anyio.sleep(2.5)
        assert len(await host.view_calls()) == polled


async def test_a_result_without_structured_content_shows_its_text(
    page: Page, host_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A refused call (no structured content) is shown from its text, and nothing is polled."""
    async with shown_in_host(page, host_url, sandbox, tmp_path) as (host, client):
        arguments = {"prompt": "A cat", "duration": 7}
        result = wire(await client.call_tool("generate_video_blocking", arguments))
        assert result.get("isError") is True
        assert "structuredContent" not in result
        await host.deliver(arguments, result)
        await host.view.wait_for_function("() => !document.getElementById('error').hidden", timeout=5_000)
        shown = await host.display()
        assert shown["error"] == "\n".join(block["text"] for block in result["content"] if block["type"] == "text")
        assert shown["polling"] == "off"
        assert (await host.video())["hidden"] is True
        await anyio.sleep(2.5)
        assert await host.view_calls() == []


async def test_a_running_video_that_fails_ends_on_a_card_that_says_nothing_more_is_charged(
    page: Page, host_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A result still running, then the provider fails it: the view's poll brings the failure, the card says what
    happened to the video and the money, the provider's message is shown, and the polling stops."""
    async with shown_in_host(page, host_url, sandbox, tmp_path) as (host, client):
        arguments = {"prompt": "A glass city at night [sandbox:fail]"}
        result = wire(await client.call_tool("create_video", arguments))
        assert result["structuredContent"]["done"] is False
        await host.deliver(arguments, result)
        assert (await host.display())["placeholder"] in ("Queued…", "Generating the video…")

        await host.view.wait_for_function("() => document.documentElement.dataset.status === 'failed'", timeout=20_000)
        shown = await host.display()
        assert shown["status"] == "failed"
        assert shown["placeholder"] == (
            "No video: the provider could not make this one. Nothing more is charged for it."
        )
        assert shown["error"]  # the provider's words, as the tool result carried them
        assert shown["polling"] == "off"
        assert shown["progressHidden"] is True
        assert (await host.video())["hidden"] is True
        assert await host.view_calls()  # the news came from a poll
        polled = len(await host.view_calls())
        await anyio.sleep(2.5)
        assert len(await host.view_calls()) == polled
        await page.screenshot(path=str(screenshot(tmp_path / "player-failed.png")), full_page=True)


async def test_a_create_the_cap_refuses_shows_the_not_created_card(
    page: Page, host_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A create refused by the daily cap: the card says nothing was created or charged, and nothing is polled."""
    async with shown_in_host(page, host_url, sandbox, tmp_path, daily_budget_usd=0.01) as (host, client):
        arguments = {"prompt": "A lighthouse keeper's cat"}
        result = wire(await client.call_tool("generate_video_blocking", arguments))
        assert result["structuredContent"]["status"] == "not_created"
        assert sandbox.state.creates == 0
        await host.deliver(arguments, result)

        await host.view.wait_for_function(
            "() => document.documentElement.dataset.status === 'not_created'", timeout=5_000
        )
        shown = await host.display()
        assert shown["status"] == "not created"
        assert shown["placeholder"] == "No video: nothing was created and nothing was charged."
        assert shown["error"]
        assert shown["polling"] == "off"
        assert (await host.video())["hidden"] is True
        await anyio.sleep(2.5)
        assert await host.view_calls() == []
