"""`PixVerseClient`: the one async client for the AI/ML API's PixVerse v5 text-to-video endpoints.

It owns a single `httpx.AsyncClient` and everything about the upstream: auth, request building, response parsing,
the error tree, retries, the polling schedule and timeouts. The MCP layer never touches HTTP. It is a library of its
own: it imports nothing of the server, and like openai-python it takes the key from `AIMLAPI_API_KEY` (and the base
URL from `AIMLAPI_BASE_URL`) when none is given.

    async with PixVerseClient() as client:
        video = await client.generate("a red fox running through snow", on_update=print)
        print(video.video_url)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import anyio
import httpx
from pydantic import SecretStr

from pixverse_mcp import defaults
from pixverse_mcp._retry import NEVER_SENT, RetryPolicy, parse_retry_after, retry_delay, should_retry
from pixverse_mcp.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CreateOutcomeUnknownError,
    DownloadError,
    GenerationFailedError,
    InvalidArgumentError,
    MissingAPIKeyError,
    PixVerseError,
    RateLimitError,
    UnexpectedResponseError,
    UpstreamServerError,
    WaitTimeoutError,
    error_for_status,
)
from pixverse_mcp.logs import REDACTED
from pixverse_mcp.models import MAX_GENERATION_ID_LENGTH, Generation, GenerationStatus, VideoRequest
from pixverse_mcp.polling import PollingPolicy

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_MAX_DOWNLOAD_BYTES: Final = int(defaults.MAX_DOWNLOAD_MB * 1024 * 1024)
_DOWNLOAD_CHUNK_BYTES: Final = 64 * 1024
# How long `generate` waits when not told: the provider's sample code gives up after 600 s too.
DEFAULT_GENERATE_TIMEOUT_SECONDS: Final = 600.0
_API_KEY_SHAPE: Final = re.compile(r"[\x21-\x7e]+")

USER_AGENT: Final = "pixverse-mcp"
_CHECK_BEFORE_RETRYING: Final = (
    "Do not simply create it again: it may already be generating and charged. Check your AI/ML API usage page "
    "(https://aimlapi.com/app/billing) first."
)
# Failures during a wait that say nothing about the generation itself: the wait goes on until its deadline.
_TRANSIENT_DURING_WAIT: Final = (APIConnectionError, UpstreamServerError, RateLimitError, UnexpectedResponseError)


def is_well_formed_api_key(key: str) -> bool:
    """Printable ASCII with no spaces: anything else is a paste accident (and cannot go into an HTTP header)."""
    return bool(_API_KEY_SHAPE.fullmatch(key))


def default_timeout(
    connect: float = defaults.CONNECT_TIMEOUT_SECONDS, read: float = defaults.READ_TIMEOUT_SECONDS
) -> httpx.Timeout:
    """Explicit limits for every phase: connect fast or fail, and never wait on a pool slot forever."""
    return httpx.Timeout(connect=connect, read=read, write=read, pool=60.0)


@dataclass(frozen=True)
class WaitUpdate:
    """What a wait tells its `on_update` callback: after every status request, and as a heartbeat in between."""

    generation_id: str
    generation: Generation | None
    """The latest answer, or None while no status request has succeeded yet."""
    elapsed_seconds: float
    expected_seconds: float
    status_changed: bool
    """True when this update carries a status different from the previous one (the first answer counts)."""

    @property
    def status(self) -> GenerationStatus | None:
        """The latest known status."""
        return self.generation.status if self.generation else None


@dataclass(frozen=True)
class DownloadedVideo:
    """A video saved to disk by `PixVerseClient.download`."""

    path: Path
    size: int
    content_type: str | None


UpdateCallback = Callable[[WaitUpdate], Awaitable[None] | None]
"""Hears every `WaitUpdate`: a plain function (`print` will do) or a coroutine function."""
Sleep = Callable[[float], Awaitable[None]]


@dataclass(eq=False)
class _Watch:
    """The shared state of every concurrent wait on one generation id."""

    started: float
    """Clock reading when the generation was created (as best we know)."""
    expected: float
    next_due: float
    latest: Generation | None = None
    version: int = 0
    waiters: int = 0
    poller: object | None = None
    """The waiter that sends the status requests; None when nobody does (the next waiter to look takes over)."""
    changed: anyio.Event = field(default_factory=anyio.Event)

    def announce(self) -> None:
        """Publish a new answer and wake every waiter."""
        self.version += 1
        self.wake()

    def wake(self) -> None:
        """Wake every waiter (the poller left: one of them takes over)."""
        self.changed.set()
        self.changed = anyio.Event()


class PixVerseClient:
    """Async client for PixVerse v5 text-to-video on the AI/ML API. Use it as an async context manager."""

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        endpoint_path: str = defaults.ENDPOINT_PATHS["universal"],
        timeout: httpx.Timeout | None = None,
        retry_policy: RetryPolicy | None = None,
        polling_policy: PollingPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = 64,
    ) -> None:
        """`api_key` defaults to `AIMLAPI_API_KEY` and `base_url` to `AIMLAPI_BASE_URL` (else the public API).

        Without a key the client can still be built; its first request raises `MissingAPIKeyError`. `transport`,
        `sleep` and `clock` are for tests (an `httpx.MockTransport`, a no-op sleep, a fake clock).
        """
        if api_key is None:
            api_key = os.environ.get("AIMLAPI_API_KEY")
        base_url = base_url or os.environ.get("AIMLAPI_BASE_URL") or defaults.DEFAULT_BASE_URL
        key = (api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key or "").strip()
        if key and not is_well_formed_api_key(key):
            raise MissingAPIKeyError(malformed=True)
        self._api_key = SecretStr(key) if key else None
        self._endpoint_path = endpoint_path
        self._retry_policy = retry_policy or RetryPolicy()
        self.polling_policy = polling_policy or PollingPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self._watches: dict[str, _Watch] = {}
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout or default_timeout(),
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
        )
        # Downloads go to the provider's CDN: a separate pool that never carries the API key, following redirects.
        self._downloads = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT}, timeout=self._http.timeout, transport=transport, follow_redirects=True
        )

    def __repr__(self) -> str:
        return f"PixVerseClient(base_url={str(self._http.base_url)!r}, endpoint_path={self._endpoint_path!r})"

    async def __aenter__(self) -> PixVerseClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self._http.aclose()
        await self._downloads.aclose()

    async def create(self, request: VideoRequest) -> Generation:
        """Start a generation and return it (status queued) with its id. Never sends the request twice.

        Retried only when the request provably never reached the API (no connection) or was refused with 429.
        Raises `CreateOutcomeUnknownError` when it may have been accepted but no readable answer came back.
        """
        try:
            payload = await self._request("POST", json_body=request.to_body(), idempotent=False)
        except APIStatusError as exc:
            if isinstance(exc, UpstreamServerError):
                raise CreateOutcomeUnknownError(
                    f"The AI/ML API answered HTTP {exc.status_code} to the create request, so it may or may not "
                    f"have been accepted. {_CHECK_BEFORE_RETRYING}"
                ) from exc
            raise
        except UnexpectedResponseError as exc:
            raise CreateOutcomeUnknownError(
                f"The AI/ML API accepted the create request but its answer was unreadable ({exc}), so the "
                f"generation id is unknown. {_CHECK_BEFORE_RETRYING}"
            ) from exc
        except APIConnectionError as exc:
            if not exc.request_sent:
                raise
            raise CreateOutcomeUnknownError(
                f"The create request was sent but no answer came back ({exc}); it may have been accepted. "
                f"{_CHECK_BEFORE_RETRYING}"
            ) from exc
        try:
            generation = Generation.from_payload(payload)
        except UnexpectedResponseError as exc:
            raise CreateOutcomeUnknownError(
                f"The AI/ML API accepted the create request but {exc}. {_CHECK_BEFORE_RETRYING}"
            ) from exc
        logger.info("created generation %s (%s)", generation.id, generation.raw_status)
        return generation

    async def get(self, generation_id: str, *, retry: bool = True) -> Generation:
        """One status request for `generation_id`, retried on transient faults unless `retry` is False (a wait
        retries on its own schedule, with heartbeats in between)."""
        _check_generation_id(generation_id)
        params = {"generation_id": generation_id}
        payload = await self._request("GET", params=params, idempotent=True, attempts=None if retry else 1)
        try:
            return Generation.from_payload(payload, fallback_id=generation_id)
        except UnexpectedResponseError as exc:
            raise UnexpectedResponseError(f"Unusable status response for {generation_id}: {exc}") from exc

    async def generate(
        self,
        prompt: str | VideoRequest,
        *,
        timeout: float = DEFAULT_GENERATE_TIMEOUT_SECONDS,
        on_update: UpdateCallback | None = None,
        **options: Any,
    ) -> Generation:
        """Create a video and wait for it: the one call most scripts need. Returns the completed generation.

        `prompt` is the text (the other request fields as keyword `options`: `resolution="1080p"`, ...) or a whole
        `VideoRequest`. `on_update` hears the id at once and every status after. Raises `GenerationFailedError`
        if the provider failed it, `WaitTimeoutError` (with the id) if `timeout` ran out: the paid generation goes
        on upstream, and `wait(error.generation_id, ...)` picks it up again.
        """
        request = prompt if isinstance(prompt, VideoRequest) else VideoRequest(prompt=prompt, **options)
        generation = await self.create(request)
        expected = self.polling_policy.expected_seconds(request.resolution, request.duration)
        if on_update is not None:
            await _deliver(on_update, WaitUpdate(generation.id, generation, 0.0, expected, status_changed=True))
        return await self.wait(generation.id, timeout=timeout, on_update=on_update, expected_seconds=expected)

    async def wait(
        self,
        generation_id: str,
        *,
        timeout: float,
        on_update: UpdateCallback | None = None,
        expected_seconds: float | None = None,
        elapsed_before: float = 0.0,
        before_poll: Callable[[], Awaitable[None]] | None = None,
    ) -> Generation:
        """Poll until the generation is final or `timeout` seconds have passed; return the completed generation.

        The schedule comes from `polling_policy` and `expected_seconds` (how long this kind of video usually
        takes; `elapsed_before` says how long ago it was created). `on_update` hears every answer and a heartbeat
        at least every `polling_policy.heartbeat_seconds`. Transient faults (network, 5xx, 429, odd bodies) do not
        end the wait. Raises `GenerationFailedError` if it failed, `WaitTimeoutError` (with the id) if time ran
        out: the generation itself goes on upstream either way, and a later `get`/`wait` can pick it up.

        Concurrent waits on one id share one polling loop: one waiter (the poller) sends the status requests and
        the others hear its answers. When the poller leaves (its deadline, a cancel), another takes over.
        `before_poll` runs before each status request this waiter sends (a server keeps its polling lease
        there); whatever it raises ends this wait.
        """
        _check_generation_id(generation_id)
        policy = self.polling_policy
        watch = self._watches.get(generation_id)
        if watch is None:
            expected = expected_seconds if expected_seconds is not None else policy.expected_seconds()
            watch = _Watch(started=self._clock() - elapsed_before, expected=expected, next_due=self._clock())
            self._watches[generation_id] = watch
        watch.waiters += 1
        deadline = self._clock() + timeout
        seen = 0
        last_status: GenerationStatus | None = None
        last_notified = self._clock()

        async def notify(changed: bool) -> None:
            nonlocal last_notified
            last_notified = self._clock()
            if on_update is not None:
                elapsed = self._clock() - watch.started
                await _deliver(on_update, WaitUpdate(generation_id, watch.latest, elapsed, watch.expected, changed))

        try:
            while True:
                if watch.version != seen and watch.latest is not None:
                    seen = watch.version
                    current = watch.latest
                    await notify(current.status is not last_status)
                    last_status = current.status
                    if current.status is GenerationStatus.COMPLETED:
                        return current
                    if current.status is GenerationStatus.FAILED:
                        raise GenerationFailedError(
                            f"Generation {generation_id} failed: {current.error}",
                            generation_id=generation_id,
                            generation=current,
                        )
                now = self._clock()
                if now >= deadline:
                    raise WaitTimeoutError(
                        f"Generation {generation_id} is not finished after waiting {timeout:g} s; it is still "
                        "running upstream",
                        generation_id=generation_id,
                        generation=watch.latest,
                    )
                if watch.poller is None:
                    watch.poller = notify  # any unique object: this waiter now sends the status requests
                heartbeat_due = last_notified + policy.heartbeat_seconds
                if watch.poller is notify:
                    if now >= watch.next_due:
                        if before_poll is not None:
                            await before_poll()
                        await self._poll(generation_id, watch)
                        continue
                    await self._sleep(max(0.0, min(watch.next_due, deadline, heartbeat_due) - now))
                else:
                    with anyio.move_on_after(max(0.0, min(deadline, heartbeat_due) - now)):
                        await watch.changed.wait()
                if self._clock() >= heartbeat_due and watch.version == seen:
                    await notify(False)
        finally:
            watch.waiters -= 1
            if watch.poller is notify:
                watch.poller = None
                watch.wake()
            if watch.waiters == 0:
                self._watches.pop(generation_id, None)

    async def _poll(self, generation_id: str, watch: _Watch) -> None:
        """One status request for a shared watch; transient faults are logged and the schedule goes on, never
        sooner than a Retry-After the API asked for."""
        retry_after = None
        try:
            current = await self.get(generation_id, retry=False)
        except _TRANSIENT_DURING_WAIT as exc:
            logger.warning("status of %s unavailable for now (%s); still waiting", generation_id, exc)
            if isinstance(exc, APIStatusError) and exc.retry_after is not None:
                retry_after = min(exc.retry_after, self._retry_policy.max_retry_after)
        else:
            watch.latest = current
            watch.announce()
        elapsed = self._clock() - watch.started
        delay = self.polling_policy.next_delay(elapsed, watch.expected)
        watch.next_due = self._clock() + max(delay, retry_after or 0.0)

    async def download(
        self, url: str, directory: Path, *, file_name: str, max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    ) -> DownloadedVideo:
        """Stream a finished video into `directory/file_name`; return its path and size.

        The file appears only when complete (written to a hidden temporary file, then renamed atomically), and a
        body over `max_bytes` is refused. The API key is never sent with it: the URL is the provider's CDN.
        Retried like a status request; raises `DownloadError` when it cannot be done.
        """
        if not url.startswith(("https://", "http://")):
            raise DownloadError("The video URL is not an http(s) URL")
        if not file_name or "/" in file_name or "\\" in file_name or file_name.startswith("."):
            raise InvalidArgumentError("file_name must be a plain file name")
        target = directory / file_name

        async def attempt() -> DownloadedVideo:
            async with self._downloads.stream("GET", url) as response:
                if not response.is_success:
                    await response.aread()
                    raise _status_error(response)
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise DownloadError(f"The video is {int(declared)} bytes, over the {max_bytes}-byte limit")
                size = await _stream_to_file(response, target, max_bytes)
                return DownloadedVideo(target, size, response.headers.get("content-type"))

        try:
            await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
            return await self._with_retries("download", attempt, idempotent=True)
        except DownloadError:
            raise
        except (PixVerseError, OSError) as exc:
            raise DownloadError(f"Could not download the video: {exc}") from exc

    async def _request(
        self,
        method: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        idempotent: bool,
        attempts: int | None = None,
    ) -> dict[str, Any]:
        """One API call: send it, map a failure to the error tree, retry what the policy allows (at most
        `attempts` tries when given)."""
        if self._api_key is None:
            raise MissingAPIKeyError()

        async def attempt() -> dict[str, Any]:
            response = await self._http.request(method, self._endpoint_path, params=params, json=json_body)
            logger.debug("%s %s -> %s", method, self._endpoint_path, response.status_code)
            if not response.is_success:
                raise _status_error(response, self._api_key)
            return _json_object(response)

        label = f"{method} {self._endpoint_path}"
        return await self._with_retries(label, attempt, idempotent=idempotent, max_attempts=attempts)

    async def _with_retries(
        self, label: str, attempt: Callable[[], Awaitable[_T]], *, idempotent: bool, max_attempts: int | None = None
    ) -> _T:
        """The only retry loop: run `attempt` until it succeeds or the policy says stop."""
        policy = self._retry_policy
        limit = policy.max_attempts if max_attempts is None else max_attempts
        started = self._clock()
        attempts = 0
        while True:
            attempts += 1
            try:
                return await attempt()
            except (httpx.TransportError, APIStatusError) as exc:
                error: Exception = exc
            retry_after = error.retry_after if isinstance(error, APIStatusError) else None
            delay = retry_delay(attempts, policy, retry_after=retry_after, rng=self._rng)
            out_of_budget = self._clock() - started + delay > policy.max_total_seconds
            if attempts >= limit or out_of_budget or not should_retry(error, idempotent=idempotent):
                raise _as_package_error(error)
            logger.info("%s failed (%s); retry %d in %.1f s", label, _describe(error), attempts, delay)
            await self._sleep(delay)


async def _deliver(on_update: UpdateCallback, update: WaitUpdate) -> None:
    """Call `on_update`, awaiting it when it is a coroutine function (so `print` and `async def` both work)."""
    outcome = on_update(update)
    if inspect.isawaitable(outcome):
        await outcome


def _check_generation_id(generation_id: str) -> None:
    # Ids are opaque (they contain ':' and '/'): only refuse what can never be one. httpx encodes the rest.
    if not generation_id.strip() or len(generation_id) > MAX_GENERATION_ID_LENGTH:
        raise InvalidArgumentError(f"generation_id must be 1 to {MAX_GENERATION_ID_LENGTH} characters")


def _status_error(response: httpx.Response, secret: SecretStr | None = None) -> APIStatusError:
    """The typed error for an error response; a body that echoes the key (some gateways do) has it blanked."""
    body = _body_of(response)
    if secret is not None and secret.get_secret_value() in json.dumps(body):
        body = json.loads(json.dumps(body).replace(secret.get_secret_value(), REDACTED))
    return error_for_status(
        response.status_code,
        body,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        request_id=response.headers.get("x-request-id"),
    )


async def _stream_to_file(response: httpx.Response, target: Path, max_bytes: int) -> int:
    """Write the body next to `target` under a hidden temporary name, then rename it into place."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    size = 0
    try:
        async with await anyio.open_file(partial, "wb") as file:
            async for chunk in response.aiter_bytes(_DOWNLOAD_CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"The video is over the {max_bytes}-byte limit; download stopped")
                await file.write(chunk)
        await anyio.to_thread.run_sync(os.replace, partial, target)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.Path(partial).unlink(missing_ok=True)
        raise
    return size


def safe_video_file_name(generation_id: str, *, when: datetime | None = None) -> str:
    """A file name we generate (never one taken from the URL or the prompt): time plus a digest of the id."""
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(generation_id.encode()).hexdigest()[:12]
    return f"pixverse-{stamp}-{digest}.mp4"


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        content_type = response.headers.get("content-type", "unknown")
        raise UnexpectedResponseError(
            f"The AI/ML API answered HTTP {response.status_code} with a body that is not JSON ({content_type})"
        ) from None
    if not isinstance(payload, dict):
        raise UnexpectedResponseError(f"The AI/ML API answered with JSON that is not an object: {type(payload)}")
    return payload


def _body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text


def _as_package_error(error: BaseException) -> PixVerseError:
    if isinstance(error, PixVerseError):
        return error
    never_sent = isinstance(error, NEVER_SENT)
    if isinstance(error, httpx.LocalProtocolError):
        # Its text quotes the offending header, which may be the key: say what happened, not what it saw.
        wrapped: PixVerseError = APIConnectionError(
            "The request could not be built (an invalid header); not sent", request_sent=False
        )
    elif isinstance(error, httpx.TimeoutException):
        wrapped = APITimeoutError(
            f"The AI/ML API did not answer in time ({type(error).__name__})", request_sent=not never_sent
        )
    else:
        wrapped = APIConnectionError(
            f"Could not reach the AI/ML API ({type(error).__name__}: {error})", request_sent=not never_sent
        )
    wrapped.__cause__ = error
    return wrapped


def _describe(error: BaseException) -> str:
    return f"HTTP {error.status_code}" if isinstance(error, APIStatusError) else type(error).__name__
