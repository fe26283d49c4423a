"""A hostile stand-in for the AI/ML API and its CDN, for tests: anything a misbehaving upstream may send, byte for byte.

The friendly sandbox (`pixverse_mcp.sandbox`) is a Starlette app, so it can only send well-formed HTTP. This one is a
raw `asyncio.start_server` socket server, so a test can make it lie about lengths and encodings, drip, stall, hang,
reset the connection (TCP RST) at any byte, or send arbitrary bytes. It runs on 127.0.0.1 in a background thread with
its own event loop, so a test on any loop (or none) can use it:

    with HostileUpstream() as up:
        up.on_status(surrogate_json("url"), Reply(200, json={"status": "queued"}), hang())
        ...  # point the client at up.url with up.api_key
        assert up.status_requests == 3

Routing: POST on either API path is a create, GET on it a status request, GET `/cdn/...` a download, anything else
404. Unscripted requests get the real API's normal answers (every status request reports `completed`, whatever the
id). `on_create` / `on_status` / `on_download` queue replies (a `Reply`, or a callable building one from the
`RecordedRequest`) used in order; `repeat=True` makes them the answer to every request from then on.

Only `tests/` uses it; it imports nothing from the package but the stand-in video.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import http
import json
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import parse_qs, quote, urlsplit

from pixverse_mcp.sandbox import stand_in_video

__all__ = [
    "API_PATHS",
    "CLOSED_PORT_URL",
    "DEFAULT_API_KEY",
    "LONE_SURROGATE",
    "METADATA_URL",
    "MODEL",
    "NO_JSON",
    "PRIVATE_URL",
    "REDIRECT_LOOP_PATH",
    "ContentLength",
    "HostileUpstream",
    "Kind",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Response",
    "Streamed",
    "SurrogateField",
    "UnreadableKind",
    "completed_body",
    "deep_json",
    "disconnect",
    "download_as_html",
    "echo_key_in_error",
    "failed_with_huge_error",
    "gzip_lie",
    "hang",
    "html_page",
    "huge_generation_id",
    "huge_json",
    "json_reply",
    "key_in_video_url",
    "new_generation_id",
    "non_utf8_body",
    "other_generation_status",
    "redirect_loop",
    "redirect_to",
    "reset",
    "slow_download",
    "stand_in_video",
    "surrogate_json",
    "unreadable_created",
    "write_huge_frame_video",
]

DEFAULT_API_KEY: Final = "hostile-key-0123456789"
MODEL: Final = "pixverse/v5/text-to-video"
API_PATHS: Final = ("/v2/video/generations", "/v2/generate/video/pixverse/generation")
CDN_PREFIX: Final = "/cdn/"
# Every GET here answers 302 to itself, whatever is scripted: a redirect loop needs no script per hop.
REDIRECT_LOOP_PATH: Final = "/cdn/_loop/video.mp4"
CREDITS_USED: Final = 840_000
LONE_SURROGATE: Final = "\udfff"
# Where a hostile CDN may send a download: a closed port, the cloud metadata service, a private network.
CLOSED_PORT_URL: Final = "http://127.0.0.1:1/video.mp4"
METADATA_URL: Final = "http://169.254.169.254/latest/meta-data/"
PRIVATE_URL: Final = "http://10.0.0.1/video.mp4"

# The real API's own message for a bad key (its 4xx error documentation).
_BAD_KEY_MESSAGE: Final = (
    "This request requires a valid API key. You can create a new API key on the Billing page: "
    "https://aimlapi.com/app/keys"
)
_GATEWAY_PAGE: Final = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1>"
    "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
# A 1 MB generation id in a status query must still fit in one request head.
_HEAD_LIMIT: Final = 16 * 1024 * 1024
_MAX_REQUEST_BODY: Final = 64 * 1024 * 1024
_STREAM_BLOCK: Final = 64 * 1024
_STOP_SECONDS: Final = 5.0
# How long a reset waits for what was written to reach the peer, so the RST lands after exactly those bytes.
_FLUSH_SECONDS: Final = 2.0

Kind = Literal["create", "status", "download", "other"]
ContentLength = int | Literal["auto", "omit", "chunked"]


class _Missing(enum.Enum):
    MISSING = enum.auto()


NO_JSON: Final = _Missing.MISSING


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived: what a test asserts on (headers carried, body sent, when)."""

    method: str
    target: str
    """The raw request target, e.g. `/v2/video/generations?generation_id=...`."""
    path: str
    query: str
    headers: dict[str, str]
    """Lower-case names; a repeated header's values joined with ", "."""
    raw_headers: tuple[tuple[str, str], ...]
    body: bytes
    time: float
    """time.monotonic() when the request was fully read."""
    kind: Kind
    connection: int
    """Which TCP connection (1, 2, ...) it came on: shows keep-alive and reconnects."""
    version: str = "HTTP/1.1"

    @property
    def params(self) -> dict[str, list[str]]:
        """The decoded query parameters."""
        return parse_qs(self.query, keep_blank_values=True)

    @property
    def generation_id(self) -> str | None:
        """The `generation_id` query parameter, if any."""
        values = self.params.get("generation_id")
        return values[0] if values else None

    @property
    def bearer(self) -> str | None:
        """The key of an `Authorization: Bearer <key>` header."""
        scheme, _, key = self.headers.get("authorization", "").partition(" ")
        return key if scheme.lower() == "bearer" else None

    @property
    def base_url(self) -> str:
        """`http://<Host>` as the client addressed us, for URLs in replies."""
        return f"http://{self.headers.get('host', '127.0.0.1')}"

    @property
    def wants_close(self) -> bool:
        """HTTP/1.0, or `Connection: close`: the connection ends after this answer."""
        tokens = {token.strip().lower() for token in self.headers.get("connection", "").split(",")}
        return self.version == "HTTP/1.0" or "close" in tokens

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Streamed:
    """A body generated chunk by chunk as it is sent (never held whole): 100 MB costs 64 KB of memory.

    `chunks` is called once per reply sent, so a streamed reply can be repeated. `length` (None: unknown) becomes the
    Content-Length when the reply's `content_length` is "auto"; unknown means a body delimited by closing.
    """

    chunks: Callable[[], Iterable[bytes]]
    length: int | None = None


@dataclass(frozen=True)
class Reply:
    """One answer, down to the bytes: status line, headers, body, framing and timing on the wire.

    Body: `json` (any JSON-able value, sent as `json.dumps(..., ensure_ascii=True)`, so a lone surrogate travels as
    the valid escape `\\udfff`) or `body` (bytes as is, str as UTF-8 with surrogates passed through, or `Streamed`).
    A Content-Type is added for json (application/json) and str (text/plain) bodies unless `headers` has one.

    Framing, `content_length`: "auto" (the true length; none when the headers already frame it), "omit" (the body
    ends when the connection closes), "chunked", or an int sent as the Content-Length whatever the body's size.
    The connection is kept alive only after a truthfully framed reply; otherwise it closes after the reply, saying
    `Connection: close` unless `announce_close` is False.

    Faults: `delay_before_headers` seconds of silence first; `drip=(n, seconds)` sends the body n bytes at a time,
    waiting `seconds` before each piece (`drip_head`: the head too); `reset_after_bytes=n` aborts with a TCP RST
    after n bytes of the whole response (0: before any byte; beyond its end: right after it);
    `close_without_response` closes (FIN) with nothing sent; `gzip_lie` adds `Content-Encoding: gzip` to a body that
    is not gzip; `hang` never answers (until `stop`). `raw` replaces the whole response with these bytes (then
    closes). Tweak a builder's reply with `dataclasses.replace(reply, drip=(1, 0.5))`.
    """

    status: int = 200
    body: bytes | str | Streamed = b""
    json: Any = NO_JSON
    reason: str | bytes | None = None
    """None: the standard phrase for `status`."""
    headers: Sequence[tuple[str | bytes, str | bytes]] = ()
    """In order, duplicates kept; bytes go out untouched, str as Latin-1 (UTF-8 if it does not fit)."""
    content_length: ContentLength = "auto"
    chunk_size: int = 16 * 1024
    """Bytes per chunk when `content_length` is "chunked" (a streamed body: one chunk per piece it yields)."""
    delay_before_headers: float = 0.0
    drip: tuple[int, float] | None = None
    drip_head: bool = False
    reset_after_bytes: int | None = None
    close_without_response: bool = False
    close_after: bool = False
    announce_close: bool = True
    gzip_lie: bool = False
    hang: bool = False
    raw: bytes | None = None

    def __post_init__(self) -> None:
        if isinstance(self.content_length, str) and self.content_length not in ("auto", "omit", "chunked"):
            raise ValueError(f"content_length must be an int, 'auto', 'omit' or 'chunked', not {self.content_length!r}")
        if self.drip is not None and (self.drip[0] < 1 or self.drip[1] < 0):
            raise ValueError("drip is (bytes >= 1, seconds >= 0)")
        if self.reset_after_bytes is not None and self.reset_after_bytes < 0:
            raise ValueError("reset_after_bytes cannot be negative")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")

    def payload(self) -> tuple[int | None, Iterable[bytes]]:
        """The body's length (None: unknown) and its bytes, before any transfer coding."""
        if self.json is not NO_JSON:
            data = json.dumps(self.json, ensure_ascii=True).encode("ascii")
            return len(data), (data,)
        if isinstance(self.body, Streamed):
            return self.body.length, self.body.chunks()
        data = self.body.encode("utf-8", "surrogatepass") if isinstance(self.body, str) else self.body
        return len(data), (data,)

    def wire(self, *, wants_close: bool = False) -> tuple[bytes, Iterable[bytes], bool]:
        """The head, the body as sent (transfer-coded) and whether the connection may be kept alive after it."""
        if self.raw is not None:
            return b"", (self.raw,), False
        length, chunks = self.payload()
        names = {_text(name).lower() for name, _ in self.headers}
        headers = list(self.headers)
        content_type = self._default_content_type()
        if content_type and "content-type" not in names:
            headers.append(("Content-Type", content_type))
        if self.gzip_lie:
            headers.append(("Content-Encoding", "gzip"))
        keep = not (self.close_after or wants_close)
        framing = self.content_length
        if framing == "auto":
            if "content-length" in names or "transfer-encoding" in names or length is None:
                keep = False  # framed by the test's own headers, or by closing
            else:
                headers.append(("Content-Length", str(length)))
        elif framing == "omit":
            keep = False
        elif framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
            chunks = _chunked(chunks, self.chunk_size)
        else:
            headers.append(("Content-Length", str(framing)))
            keep = keep and length == framing
        if not keep and self.announce_close and "connection" not in names:
            headers.append(("Connection", "close"))
        reason = self.reason
        if reason is None:
            try:
                reason = http.HTTPStatus(self.status).phrase
            except ValueError:
                reason = "Unknown"
        lines = [b"HTTP/1.1 " + str(self.status).encode() + b" " + _wire_bytes(reason)]
        lines += [_wire_bytes(name) + b": " + _wire_bytes(value) for name, value in headers]
        return b"\r\n".join(lines) + b"\r\n\r\n", chunks, keep

    def head_length(self, *, wants_close: bool = False) -> int:
        """How many bytes the head takes on the wire: `reset_after_bytes=reply.head_length() + n` cuts the body."""
        return len(self.wire(wants_close=wants_close)[0])

    def _default_content_type(self) -> str | None:
        if self.raw is not None:
            return None
        if self.json is not NO_JSON:
            return "application/json"
        if isinstance(self.body, str):
            return "text/plain; charset=utf-8"
        return None


Responder = Callable[[RecordedRequest], Reply]
Response = Reply | Responder


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _wire_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def _chunked(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """HTTP/1.1 chunked transfer coding of `chunks`, at most `size` bytes per chunk."""
    for data in chunks:
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


@dataclass
class _Script:
    """The scripted answers for one kind of request: a queue used up in order, then a cycle that never ends."""

    queue: deque[Response] = field(default_factory=deque)
    sticky: tuple[Response, ...] = ()
    used: int = 0

    def take(self) -> Response | None:
        if self.queue:
            return self.queue.popleft()
        if self.sticky:
            self.used += 1
            return self.sticky[(self.used - 1) % len(self.sticky)]
        return None


class _BadRequest(Exception):
    """The client sent something that is not an HTTP/1.1 request we can read."""


class _Aborted(Exception):
    """The reply ended the connection (a reset): nothing more to do on it."""


class HostileUpstream:
    """The hostile upstream on a loopback port, served from its own thread and event loop (see the module doc).

    Thread-safe: tests script and read counters from their thread while the server's thread answers. `stop()` (and
    leaving the `with` block) closes every connection, even mid-drip or hanging, and ends the thread within seconds.
    Leaving the block normally raises AssertionError if a scripted responder raised (see `errors`).
    """

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api_key = api_key
        # IPPROTO_TCP spelled out: asyncio turns Nagle off only on sockets that say so, and a 1-byte drip must not
        # wait for delayed ACKs.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._lock = threading.Lock()
        self._scripts: dict[Kind, _Script] = {kind: _Script() for kind in ("create", "status", "download", "other")}
        self._requests: list[RecordedRequest] = []
        self._counts: dict[Kind, int] = dict.fromkeys(self._scripts, 0)
        self._connections = 0
        self._errors: list[BaseException] = []
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._serve, name=f"hostile-upstream-{self.port}", daemon=True)
        self._stopped = False

    # Life cycle

    def start(self) -> HostileUpstream:
        """Start serving; returns once the port accepts connections."""
        self._thread.start()
        if not self._ready.wait(10) or self._startup_error is not None:
            self.stop()
            raise RuntimeError("the hostile upstream did not start") from self._startup_error
        return self

    def stop(self) -> None:
        """Close every connection (mid-reply or not) and the listening socket, and end the thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        if self._thread.is_alive():
            self._thread.join(_STOP_SECONDS)
            if self._thread.is_alive():
                raise RuntimeError("the hostile upstream's thread did not end")
        self._socket.close()

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread.is_alive()

    def __enter__(self) -> HostileUpstream:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.stop()
        if exc_type is None:
            self.check()

    def check(self) -> None:
        """Raise AssertionError if a scripted responder (or the server itself) raised while answering."""
        with self._lock:
            errors = list(self._errors)
        if errors:
            raise AssertionError(f"the hostile upstream failed {len(errors)} time(s): {errors[0]!r}") from errors[0]

    # Scripting

    def on(self, kind: Kind, *responses: Response, repeat: bool = False) -> None:
        """Queue `responses` for the next requests of `kind`, in order; then unscripted answers resume.

        `repeat=True` drops anything still queued and answers every request of `kind` from now on with `responses`,
        in a cycle (no responses: back to the default answers).
        """
        with self._lock:
            script = self._scripts[kind]
            if repeat:
                script.queue.clear()
                script.sticky = responses
                script.used = 0
            else:
                script.queue.extend(responses)

    def on_create(self, *responses: Response, repeat: bool = False) -> None:
        """Script the answers to creates (POST on an API path)."""
        self.on("create", *responses, repeat=repeat)

    def on_status(self, *responses: Response, repeat: bool = False) -> None:
        """Script the answers to status requests (GET on an API path)."""
        self.on("status", *responses, repeat=repeat)

    def on_download(self, *responses: Response, repeat: bool = False) -> None:
        """Script the answers to downloads (GET under /cdn/)."""
        self.on("download", *responses, repeat=repeat)

    def pending(self, kind: Kind) -> int:
        """How many queued (not repeating) replies for `kind` are still unused."""
        with self._lock:
            return len(self._scripts[kind].queue)

    def clear_script(self) -> None:
        """Forget every scripted reply: default answers from now on."""
        with self._lock:
            for kind in self._scripts:
                self._scripts[kind] = _Script()

    # What it saw

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def creates(self) -> int:
        """POSTs on an API path."""
        with self._lock:
            return self._counts["create"]

    @property
    def status_requests(self) -> int:
        """GETs on an API path."""
        with self._lock:
            return self._counts["status"]

    @property
    def downloads(self) -> int:
        """GETs under /cdn/ (each redirect hop counts)."""
        with self._lock:
            return self._counts["download"]

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def errors(self) -> list[BaseException]:
        """What scripted responders (or the server) raised; each such request was answered 500."""
        with self._lock:
            return list(self._errors)

    # Default answers: the real API's, for unscripted requests (public so responders can wrap them)

    def video_url(self, generation_id: str) -> str:
        """Where the default status answer says the video of `generation_id` is."""
        return f"{self.url}{CDN_PREFIX}{quote(generation_id.split(':', 1)[0], safe='')}.mp4"

    @property
    def redirect_loop_url(self) -> str:
        """A URL that redirects to itself forever."""
        return self.url + REDIRECT_LOOP_PATH

    def default_create(self, request: RecordedRequest) -> Reply:
        """201 with a fresh id, status queued and the usage, if the key is right (401 otherwise)."""
        if request.bearer != self.api_key:
            return _api_error(request, 401, _BAD_KEY_MESSAGE)
        try:
            request.json()
        except ValueError:
            return Reply(400, json={"statusCode": 400, "message": ["body must be JSON"], "error": "Bad Request"})
        body = {"id": new_generation_id(), "status": "queued", "meta": {"usage": {"credits_used": CREDITS_USED}}}
        return Reply(201, json=body)

    def default_status(self, request: RecordedRequest) -> Reply:
        """`completed` with the video for any id, if the key is right (401 otherwise, 400 with no id)."""
        if request.bearer != self.api_key:
            return _api_error(request, 401, _BAD_KEY_MESSAGE)
        generation_id = request.generation_id
        if not generation_id:
            message = ["generation_id should not be empty"]
            return Reply(400, json={"statusCode": 400, "message": message, "error": "Bad Request"})
        return Reply(200, json=completed_body(generation_id, self.video_url(generation_id)))

    def default_download(self, request: RecordedRequest) -> Reply:
        """The stand-in MP4 (no key needed: it is the CDN)."""
        return Reply(200, body=stand_in_video(), headers=[("Content-Type", "video/mp4")])

    def default_other(self, request: RecordedRequest) -> Reply:
        """404 in the API's error shape."""
        return _api_error(request, 404, f"Cannot {request.method} {request.path}")

    # The server (its own thread and loop)

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(), or recorded for check()
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                self._record_error(exc)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, sock=self._socket, limit=_HEAD_LIMIT)
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=_STOP_SECONDS / 2)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), _STOP_SECONDS / 2)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        with self._lock:
            self._connections += 1
            number = self._connections
        try:
            await self._converse(reader, writer, number)
        except (OSError, asyncio.IncompleteReadError, _Aborted):
            pass  # the client went away, or a reply reset the connection on purpose
        except asyncio.CancelledError:
            # stop() cancelled it. Ending normally, not cancelled: Python 3.11's start_server logs an error for a
            # connection task that ends cancelled.
            pass
        except Exception as exc:
            self._record_error(exc)
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        """Answer requests on one connection until a reply or the client ends it."""
        while True:
            try:
                parsed = await _read_request(reader)
            except _BadRequest as exc:
                head, body, _ = Reply(400, body=f"bad request: {exc}\n", close_after=True).wire()
                writer.write(b"".join(chain((head,), body)))
                writer.close()
                return
            if parsed is None:
                return
            request = self._record(*parsed, number)
            reply = self._choose(request)
            if not await _deliver(reply, request, writer):
                writer.close()
                return

    def _record(
        self, method: str, target: str, version: str, raw_headers: list[tuple[str, str]], body: bytes, number: int
    ) -> RecordedRequest:
        path, _, query = target.partition("?")
        headers: dict[str, str] = {}
        for name, value in raw_headers:
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = RecordedRequest(
            method=method,
            target=target,
            path=path,
            query=query,
            headers=headers,
            raw_headers=tuple(raw_headers),
            body=body,
            time=time.monotonic(),
            kind=_classify(method, path),
            connection=number,
            version=version,
        )
        with self._lock:
            self._requests.append(request)
            self._counts[request.kind] += 1
        return request

    def _choose(self, request: RecordedRequest) -> Reply:
        if request.kind == "download" and request.path == REDIRECT_LOOP_PATH:
            return Reply(302, headers=[("Location", REDIRECT_LOOP_PATH)])
        with self._lock:
            scripted = self._scripts[request.kind].take()
        defaults: dict[Kind, Responder] = {
            "create": self.default_create,
            "status": self.default_status,
            "download": self.default_download,
            "other": self.default_other,
        }
        response = defaults[request.kind] if scripted is None else scripted
        if isinstance(response, Reply):
            return response
        try:
            return response(request)
        except Exception as exc:
            self._record_error(exc)
            return Reply(500, body=f"hostile upstream: the scripted responder raised {exc!r}\n", close_after=True)

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)


def _classify(method: str, path: str) -> Kind:
    if path in API_PATHS:
        if method == "POST":
            return "create"
        if method == "GET":
            return "status"
    elif path.startswith(CDN_PREFIX) and method == "GET":
        return "download"
    return "other"


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, str, list[tuple[str, str]], bytes] | None:
    """The next request on the connection: method, target, version, headers and body; None at a clean EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadRequest("the connection ended inside a request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _BadRequest("request head too large") from None
    lines = head.lstrip(b"\r\n").decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"not a request line: {lines[0][:100]!r}")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest(f"not a header line: {line[:100]!r}")
        headers.append((name, value.strip()))
    fields = {name.lower(): value for name, value in headers}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        length = fields.get("content-length", "0")
        if not length.isdigit() or int(length) > _MAX_REQUEST_BODY:
            raise _BadRequest(f"unusable Content-Length {length[:30]!r}")
        body = await reader.readexactly(int(length))
    return method, target, version, headers, body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = (await reader.readuntil(b"\r\n")).split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return bytes(body)
        if len(body) + size > _MAX_REQUEST_BODY:
            raise _BadRequest("request body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


class _Sender:
    """Writes a reply, counting bytes so a reset can land after exactly `budget` of them."""

    def __init__(self, writer: asyncio.StreamWriter, budget: int | None) -> None:
        self.writer = writer
        self.budget = budget
        self.sent = 0

    async def send(self, data: bytes) -> None:
        if self.budget is not None and self.sent + len(data) >= self.budget:
            part = data[: self.budget - self.sent]
            if part:
                self.writer.write(part)
                self.sent += len(part)
            await self.reset()
        if data:
            self.writer.write(data)
            self.sent += len(data)
            await self.writer.drain()

    async def drip(self, chunks: Iterable[bytes], size: int, seconds: float) -> None:
        """Send `chunks` `size` bytes at a time, waiting `seconds` before each piece."""
        pending = bytearray()
        for chunk in chunks:
            pending += chunk
            while len(pending) >= size:
                piece = bytes(pending[:size])
                del pending[:size]
                await asyncio.sleep(seconds)
                await self.send(piece)
        if pending:
            await asyncio.sleep(seconds)
            await self.send(bytes(pending))

    async def reset(self) -> None:
        """Abort the connection with a TCP RST once what was written has reached the peer."""
        transport = self.writer.transport
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _FLUSH_SECONDS
        while transport.get_write_buffer_size() and loop.time() < deadline:
            await asyncio.sleep(0.002)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            while _unacknowledged(sock.fileno()) and loop.time() < deadline:
                await asyncio.sleep(0.002)
            # Linger zero makes the close a reset (RST), not an orderly FIN.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        raise _Aborted


def _unacknowledged(fd: int) -> int:
    """Bytes in the kernel's send queue the peer has not acknowledged yet (0 where the OS cannot tell)."""
    try:
        import fcntl
        import termios

        request = termios.TIOCOUTQ  # Linux: SIOCOUTQ for TCP sockets
        answer = fcntl.ioctl(fd, request, struct.pack("i", 0))
    except (ImportError, AttributeError, OSError):
        return 0
    return int(struct.unpack("i", answer)[0])


async def _deliver(reply: Reply, request: RecordedRequest, writer: asyncio.StreamWriter) -> bool:
    """Send `reply` with its faults; True if the connection may carry another request."""
    if reply.hang:
        await asyncio.Event().wait()  # until stop() cancels it
    if reply.delay_before_headers > 0:
        await asyncio.sleep(reply.delay_before_headers)
    if reply.close_without_response:
        return False
    head, body, keep = reply.wire(wants_close=request.wants_close)
    sender = _Sender(writer, reply.reset_after_bytes)
    if reply.drip is None:
        await sender.send(head)
        for chunk in body:
            await sender.send(chunk)
    elif reply.drip_head:
        await sender.drip(chain((head,), body), *reply.drip)
    else:
        await sender.send(head)
        await sender.drip(body, *reply.drip)
    if reply.reset_after_bytes is not None:
        await sender.reset()  # the budget outlasted the response: reset right after it
    return keep


def _api_error(request: RecordedRequest, status: int, message: str) -> Reply:
    """An error in the shape of the real API's error bodies."""
    body = {"statusCode": status, "message": message, "path": request.path, "requestId": str(uuid.uuid4())}
    return Reply(status, json=body)


# Builders for the hostile cases. Each returns a Reply, or a Responder (request -> Reply) when it needs the request.


def new_generation_id() -> str:
    """An id shaped like the real API's: `<uuid>:pixverse/v5/text-to-video`."""
    return f"{uuid.uuid4()}:{MODEL}"


def completed_body(
    generation_id: str, video_url: str, *, content_type: str = "video/mp4", file_size: int | None = None
) -> dict[str, Any]:
    """A `completed` status body, as the provider's sample output has it."""
    size = len(stand_in_video()) if file_size is None else file_size
    video = {"url": video_url, "content_type": content_type, "file_name": "output.mp4", "file_size": size}
    return {"id": generation_id, "status": "completed", "video": video}


def _own_video_url(request: RecordedRequest, generation_id: str) -> str:
    return f"{request.base_url}{CDN_PREFIX}{quote(generation_id.split(':', 1)[0], safe='')}.mp4"


def json_reply(obj: Any, status: int = 200, *, headers: Sequence[tuple[str | bytes, str | bytes]] = ()) -> Reply:
    """`obj` as JSON (ASCII-only escapes)."""
    return Reply(status, json=obj, headers=headers)


SurrogateField = Literal["usage", "status", "error", "api_error", "content_type", "url", "id"]


def surrogate_json(where: SurrogateField, *, status: int | None = None) -> Responder:
    """Valid JSON with a lone surrogate (`\\udfff`, escaped) in one field: it parses, but the str cannot be encoded.

    Shaped by the request: on a create, a 201 queued answer; otherwise a 200 completed status for the id asked for.
    `where`: `usage` (a key and a value in meta.usage), `status`, `error` (a failed generation's error.message),
    `api_error` (a 500 error body's message), `content_type` / `url` (of the video), `id`. `status` overrides the code.
    """
    bad = LONE_SURROGATE

    def respond(request: RecordedRequest) -> Reply:
        creating = request.kind == "create"
        generation_id = new_generation_id() if creating else request.generation_id or new_generation_id()
        code = 201 if creating else 200
        video = {"url": _own_video_url(request, generation_id), "content_type": "video/mp4", "file_size": 1}
        body: dict[str, Any] = (
            {"id": generation_id, "status": "queued"}
            if creating
            else {"id": generation_id, "status": "completed", "video": video}
        )
        if where == "usage":
            body["meta"] = {"usage": {"credits_used": CREDITS_USED, "unit": f"credits{bad}", bad: bad}}
        elif where == "status":
            body["status"] = f"{body['status']}{bad}"
        elif where == "error":
            body = {"id": generation_id, "status": "failed", "error": {"message": f"generation failed {bad}"}}
        elif where == "api_error":
            code = 500
            body = {"statusCode": 500, "message": f"Internal server error {bad}", "path": request.path}
        elif where == "content_type":
            body["video"] = {**video, "content_type": f"video/mp4{bad}"}
        elif where == "url":
            body["video"] = {**video, "url": f"{request.base_url}{CDN_PREFIX}{bad}.mp4"}
        elif where == "id":
            body["id"] = f"{uuid.uuid4()}{bad}:{MODEL}"
        else:
            raise ValueError(f"unknown field {where!r}")
        return Reply(code if status is None else status, json=body)

    return respond


def deep_json(depth: int = 100_000, *, container: Literal["object", "array"] = "object", status: int = 200) -> Reply:
    """Valid JSON nested `depth` levels deep: Python's json.loads raises RecursionError on it.

    "object": a status-shaped object whose `meta` is `{"a": {"a": ... 1}}`; "array": `[[[...]]]`.
    """
    if container == "array":
        text = "[" * depth + "]" * depth
    else:
        text = '{"id": "deep", "status": "completed", "meta": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    return Reply(status, body=text.encode("ascii"), headers=[("Content-Type", "application/json")])


def huge_json(
    size_bytes: int = 100_000_000, *, status: int = 200, generation_id: str = f"huge:{MODEL}", field: str = "filler"
) -> Reply:
    """A valid JSON object of exactly `size_bytes` (a giant string `field` of "x"), generated as it is sent, with
    its true Content-Length."""
    prefix = (json.dumps({"id": generation_id, "status": "queued"})[:-1] + f", {json.dumps(field)}: " + '"').encode()
    suffix = b'"}'
    fill = size_bytes - len(prefix) - len(suffix)
    if fill < 0:
        raise ValueError(f"size_bytes must be at least {len(prefix) + len(suffix)}")

    def chunks() -> Iterator[bytes]:
        yield prefix
        block = b"x" * _STREAM_BLOCK
        remaining = fill
        while remaining > 0:
            step = min(remaining, len(block))
            yield block if step == len(block) else block[:step]
            remaining -= step
        yield suffix

    return Reply(status, body=Streamed(chunks, size_bytes), headers=[("Content-Type", "application/json")])


def redirect_loop(status: int = 302) -> Reply:
    """A redirect into `REDIRECT_LOOP_PATH`, which redirects to itself forever (each hop counts as a download)."""
    return Reply(status, headers=[("Location", REDIRECT_LOOP_PATH)])


def redirect_to(url: str, status: int = 302) -> Reply:
    """A redirect to `url`: e.g. `CLOSED_PORT_URL`, `METADATA_URL`, `PRIVATE_URL`."""
    return Reply(status, headers=[("Location", url)])


def html_page(status: int = 502) -> Reply:
    """An nginx-style HTML error page, as gateways answer instead of JSON."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    page = _GATEWAY_PAGE.format(status=status, reason=reason)
    return Reply(status, body=page.encode(), headers=[("Content-Type", "text/html")])


def non_utf8_body(status: int = 200) -> Reply:
    """A body labelled UTF-8 JSON that is not UTF-8 (Latin-1 and stray bytes): decoding it raises UnicodeDecodeError."""
    body = b'{"id": "caf\xe9:pixverse/v5/text-to-video", "status": "completed\xff\xfe"}'
    return Reply(status, body=body, headers=[("Content-Type", "application/json; charset=utf-8")])


def echo_key_in_error(status: int = 400) -> Responder:
    """An error whose body repeats the bearer key the request carried: plainly (`message`), fully \\u-escaped
    (`detail`), every other character escaped (`hint`), and inside "Bearer ..." (`headers.authorization`); and an
    `X-Echo-Authorization` response header with the whole Authorization header. All forms decode to the key."""

    def respond(request: RecordedRequest) -> Reply:
        key = request.bearer or ""

        def plain(char: str) -> str:
            return json.dumps(char)[1:-1]

        escaped = "".join(f"\\u{ord(char):04x}" for char in key)
        mixed = "".join(f"\\u{ord(char):04x}" if index % 2 == 0 else plain(char) for index, char in enumerate(key))
        text = "".join(plain(char) for char in key)
        body = (
            f'{{"statusCode": {status}, "message": "Invalid API key: {text}", "detail": "key={escaped}", '
            f'"hint": "{mixed}", "headers": {{"authorization": "Bearer {text}"}}}}'
        )
        headers = [
            ("Content-Type", "application/json"),
            ("X-Echo-Authorization", request.headers.get("authorization", "")),
        ]
        return Reply(status, body=body.encode("ascii"), headers=headers)

    return respond


def key_in_video_url(where: Literal["query", "userinfo"] = "query", *, base: str | None = None) -> Responder:
    """A completed status whose video URL carries the request's bearer key: in the query string
    (`?api_key=KEY&token=KEY`) or as userinfo (`http://user:KEY@host/...`). `base` (default: this server, so the
    download really happens and is recorded) may be e.g. "https://cdn.example.com"."""

    def respond(request: RecordedRequest) -> Reply:
        key = quote(request.bearer or "", safe="")
        generation_id = request.generation_id or new_generation_id()
        parts = urlsplit(base or request.base_url)
        path = f"{parts.path.rstrip('/')}{CDN_PREFIX}{quote(generation_id.split(':', 1)[0], safe='')}.mp4"
        if where == "query":
            url = f"{parts.scheme}://{parts.netloc}{path}?api_key={key}&token={key}"
        else:
            url = f"{parts.scheme}://user:{key}@{parts.netloc}{path}"
        return Reply(200, json=completed_body(generation_id, url))

    return respond


def other_generation_status() -> Responder:
    """A completed status about a different generation than the one asked for."""

    def respond(request: RecordedRequest) -> Reply:
        other = new_generation_id()
        while other == request.generation_id:
            other = new_generation_id()
        return Reply(200, json=completed_body(other, _own_video_url(request, other)))

    return respond


def huge_generation_id(size: int = 1_000_000) -> Reply:
    """A 201 whose id is `size` characters long (still ending in `:pixverse/v5/text-to-video`)."""
    suffix = f":{MODEL}"
    if size < len(suffix) + 1:
        raise ValueError("size too small for an id")
    generation_id = "a" * (size - len(suffix)) + suffix
    return Reply(201, json={"id": generation_id, "status": "queued"})


def failed_with_huge_error(size: int = 5_000_000) -> Responder:
    """A failed generation (the id asked for) whose error message is `size` characters of "x"."""

    def respond(request: RecordedRequest) -> Reply:
        generation_id = request.generation_id or new_generation_id()
        return Reply(200, json={"id": generation_id, "status": "failed", "error": {"message": "x" * size}})

    return respond


UnreadableKind = Literal["truncated", "html", "empty", "binary", "cut", "reset"]


def unreadable_created(kind: UnreadableKind = "truncated") -> Reply:
    """A 201 (so the create was accepted) whose body cannot be read:

    `truncated` JSON cut mid-way (correctly framed; the id is visible in it), `html`, `empty`, `binary` garbage,
    `cut` (Content-Length promises more than is sent, then the connection closes: a transport error in the client),
    `reset` (a TCP RST 10 bytes into the body).
    """
    json_type = [("Content-Type", "application/json")]
    full = json.dumps({"id": new_generation_id(), "status": "queued"}).encode()
    if kind == "truncated":
        return Reply(201, body=full[: len(full) - 10], headers=json_type)
    if kind == "html":
        return html_page(201)
    if kind == "empty":
        return Reply(201, body=b"", headers=json_type)
    if kind == "binary":
        return Reply(201, body=bytes(range(256)) * 4, headers=json_type)
    if kind == "cut":
        return Reply(201, body=full, headers=json_type, content_length=len(full) + 100)
    if kind == "reset":
        reply = Reply(201, body=full, headers=json_type)
        return dataclasses.replace(reply, reset_after_bytes=reply.head_length() + 10)
    raise ValueError(f"unknown kind {kind!r}")


def download_as_html() -> Reply:
    """A "video" that is an HTML page (`Content-Type: text/html`), as a CDN's login or error page would be."""
    page = "<!DOCTYPE html><html><head><title>Access denied</title></head><body><h1>Access denied</h1></body></html>"
    return Reply(200, body=page.encode(), headers=[("Content-Type", "text/html; charset=utf-8")])


def slow_download(bytes_per_step: int = 1024, seconds: float = 0.5, *, data: bytes | None = None) -> Reply:
    """The stand-in video (or `data`) with its true length, `bytes_per_step` bytes every `seconds`."""
    body = stand_in_video() if data is None else data
    return Reply(200, body=body, headers=[("Content-Type", "video/mp4")], drip=(bytes_per_step, seconds))


def gzip_lie(obj: Any = None, status: int = 200) -> Reply:
    """JSON labelled `Content-Encoding: gzip` that is not gzip: httpx raises DecodingError reading it."""
    body = {"id": new_generation_id(), "status": "completed"} if obj is None else obj
    return Reply(status, json=body, gzip_lie=True)


def hang() -> Reply:
    """Read the request, never answer (until `stop`)."""
    return Reply(hang=True)


def reset(after_bytes: int = 0) -> Reply:
    """A TCP RST after `after_bytes` bytes of an otherwise normal JSON answer (0: before anything)."""
    return Reply(200, json={"id": new_generation_id(), "status": "queued"}, reset_after_bytes=after_bytes)


def disconnect() -> Reply:
    """Close the connection (an orderly FIN) without answering."""
    return Reply(close_without_response=True)


# A video whose frames are huge but whose file is tiny: for previews that must not decode 8K frames blindly.

# Tried in order. This venv's PyAV 18.1.0 wheel encodes H.264 with `libx264` (no libopenh264); CABAC on ultrafast
# makes two black 8192x4320 frames about 9 KB, in about 0.3 s. mpeg4 (MPEG-4 part 2) is the last resort only.
_HUGE_FRAME_CODECS: Final[tuple[tuple[str, dict[str, str]], ...]] = (
    ("libx264", {"preset": "ultrafast", "crf": "51", "x264-params": "cabac=1"}),
    ("libopenh264", {}),
    ("h264", {}),
    ("mpeg4", {"qscale": "31"}),
)


def write_huge_frame_video(path: Path | str, width: int = 8192, height: int = 4320, frames: int = 2) -> Path:
    """Write an MP4 of `frames` black `width`x`height` frames, small on disk (about 9 KB for the defaults).

    H.264 by libx264 in this venv (see `_HUGE_FRAME_CODECS`); falls back to another H.264 encoder, then to mpeg4, only
    where the PyAV wheel lacks it. Read the codec back with PyAV (`stream.codec_context.name`) if it matters.
    """
    import av

    target = Path(path)
    last_error: Exception | None = None
    for codec, options in _HUGE_FRAME_CODECS:
        try:
            av.codec.Codec(codec, "w")
        except ValueError as exc:  # UnknownCodecError: not in this wheel
            last_error = exc
            continue
        try:
            _encode_black(target, codec, options, width, height, frames)
        except (av.FFmpegError, ValueError) as exc:
            last_error = exc
            target.unlink(missing_ok=True)
            continue
        return target
    raise RuntimeError("no usable video encoder in this PyAV build") from last_error


def _encode_black(path: Path, codec: str, options: dict[str, str], width: int, height: int, frames: int) -> None:
    import av
    from av.video.stream import VideoStream

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=1)
        if not isinstance(stream, VideoStream):
            raise ValueError(f"{codec} is not a video encoder")
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        settings: dict[str, object] = dict(options)
        stream.options = settings
        frame = av.VideoFrame(width, height, "yuv420p")
        for index, plane in enumerate(frame.planes):
            # Black in video range: luma 16, neutral chroma 128 (a fresh frame's memory is not zeroed).
            plane.update(bytes([16 if index == 0 else 128]) * plane.buffer_size)
        for number in range(frames):
            frame.pts = number
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
