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
import ipaddress
import json
import logging
import os
import random
import re
import socket
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
from pixverse_mcp.logs import REDACTED, secret_forms
from pixverse_mcp.models import MAX_GENERATION_ID_LENGTH, Generation, GenerationStatus, VideoRequest, clean_text
from pixverse_mcp.polling import Expectation, PollingPolicy

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_MAX_DOWNLOAD_BYTES: Final = int(defaults.MAX_DOWNLOAD_MB * 1024 * 1024)
_DOWNLOAD_CHUNK_BYTES: Final = 64 * 1024
# Limits on what the API may send (its real answers are a few hundred bytes): past them, an answer is refused or cut.
# 8 MiB still reads a failure whose message is megabytes long (then cut to MAX_UPSTREAM_TEXT); it bounds memory.
MAX_ANSWER_BYTES: Final = 8 * 1024 * 1024
MAX_UPSTREAM_TEXT: Final = 4000
"""Characters kept of one upstream text (an error message, a status, a URL): results stay far under 1 MB."""
MAX_UPSTREAM_DEPTH: Final = 20
MAX_UPSTREAM_ITEMS: Final = 100
_VIDEO_CONTAINER_TYPES: Final = frozenset({"application/octet-stream", "binary/octet-stream", "application/mp4"})
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
    answer: bool = True
    """True when this update carries a new answer from the API (False: a heartbeat between answers)."""

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
    expectation: Expectation
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
        self._secret_forms = secret_forms(self._api_key.get_secret_value()) if self._api_key else []
        timeout = timeout or default_timeout()
        # One attempt may take this long in all (connect, send, every byte of the answer), whatever the pace.
        self._attempt_seconds = (timeout.connect or 0.0) + (timeout.read or 0.0)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
        )
        api = self._http.base_url
        self._api_origin = (api.scheme, api.host, api.port)
        # Downloads go to the provider's CDN: a separate pool that never carries the API key, following redirects
        # (each hop checked first: only https, only public addresses, unless it is the API's own origin).
        self._downloads = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
            follow_redirects=True,
            event_hooks={"request": [self._check_download_hop]},
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

    async def create(self, request: VideoRequest, *, timeout: float | None = None) -> Generation:
        """Start a generation and return it (status queued) with its id. Never sends the request twice.

        Retried only when the request provably never reached the API (no connection) or was refused with 429.
        Raises `CreateOutcomeUnknownError` when it may have been accepted but no readable answer came back
        (within `timeout` seconds, when given: the caller's whole budget, retries included).
        """
        try:
            payload = await self._request("POST", json_body=request.to_body(), idempotent=False, timeout=timeout)
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
        logger.info("created generation %s (%s)", printable(generation.id), printable(generation.raw_status or ""))
        return generation

    async def get(self, generation_id: str, *, retry: bool = True, timeout: float | None = None) -> Generation:
        """One status request for `generation_id`, retried on transient faults unless `retry` is False (a wait
        retries on its own schedule, with heartbeats in between); all of it within `timeout` seconds if given."""
        _check_generation_id(generation_id)
        params = {"generation_id": generation_id}
        attempts = None if retry else 1
        payload = await self._request("GET", params=params, idempotent=True, attempts=attempts, timeout=timeout)
        try:
            generation = Generation.from_payload(payload, fallback_id=generation_id)
        except UnexpectedResponseError as exc:
            raise UnexpectedResponseError(f"Unusable status response for {generation_id}: {exc}") from exc
        if generation.id != generation_id:
            # Journaling it would invent a generation; reporting it would show someone else's video.
            raise UnexpectedResponseError(
                f"The AI/ML API answered the status request for {generation_id} about another generation"
            )
        return generation

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
        expectation = self.polling_policy.expectation(request.resolution, request.duration)
        return await self.wait(
            generation.id, timeout=timeout, on_update=on_update, expectation=expectation, known=generation
        )

    async def wait(
        self,
        generation_id: str,
        *,
        timeout: float,
        on_update: UpdateCallback | None = None,
        expectation: Expectation | None = None,
        elapsed_before: float = 0.0,
        known: Generation | None = None,
        before_poll: Callable[[], Awaitable[None]] | None = None,
    ) -> Generation:
        """Poll until the generation is final or `timeout` seconds have passed; return the completed generation.

        The schedule comes from `polling_policy` and `expectation` (when this kind of video is usually ready;
        `elapsed_before` says how long ago it was created). The first look is at once, unless the caller passes the
        status it already has as `known` (a create's answer): that is reported at once and the first look waits for
        the schedule. `on_update` hears every answer and a heartbeat at least every
        `polling_policy.heartbeat_seconds`. Transient faults (network, 5xx, 429, odd bodies) do not end the wait.
        Raises `GenerationFailedError` if it failed, `WaitTimeoutError` (with the id) if time ran out: the
        generation itself goes on upstream either way, and a later `get`/`wait` can pick it up.

        Concurrent waits on one id share one polling loop: one waiter (the poller) sends the status requests and
        the others hear its answers. When the poller leaves (its deadline, a cancel), another takes over.
        `before_poll` runs before each status request this waiter sends (a server keeps its polling lease
        there); whatever it raises ends this wait.
        """
        _check_generation_id(generation_id)
        policy = self.polling_policy
        watch = self._watches.get(generation_id)
        if watch is None:
            expectation = expectation or policy.expectation()
            now = self._clock()
            first = now if known is None else now + policy.next_delay(elapsed_before, expectation)
            watch = _Watch(started=now - elapsed_before, expectation=expectation, next_due=first)
            if known is not None:
                watch.latest, watch.version = known, 1
            self._watches[generation_id] = watch
        watch.waiters += 1
        deadline = self._clock() + timeout
        seen = 0
        last_status: GenerationStatus | None = None
        last_notified = self._clock()

        async def notify(changed: bool, *, answer: bool = True) -> None:
            nonlocal last_notified
            last_notified = self._clock()
            if on_update is not None:
                elapsed = self._clock() - watch.started
                update = WaitUpdate(generation_id, watch.latest, elapsed, watch.expectation.typical, changed, answer)
                await _deliver(on_update, update)

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
                        await self._poll(generation_id, watch, deadline)
                        continue
                    await self._sleep(max(0.0, min(watch.next_due, deadline, heartbeat_due) - now))
                else:
                    with anyio.move_on_after(max(0.0, min(deadline, heartbeat_due) - now)):
                        await watch.changed.wait()
                if self._clock() >= heartbeat_due and watch.version == seen:
                    await notify(False, answer=False)
        finally:
            watch.waiters -= 1
            if watch.poller is notify:
                watch.poller = None
                watch.wake()
            if watch.waiters == 0:
                self._watches.pop(generation_id, None)

    async def _poll(self, generation_id: str, watch: _Watch, deadline: float) -> None:
        """One status request for a shared watch, bounded by the waiter's deadline; transient faults are logged
        and the schedule goes on, never sooner than a Retry-After the API asked for."""
        retry_after = None
        asked = self._clock()
        try:
            current = await self.get(generation_id, retry=False, timeout=max(0.0, deadline - asked))
        except _TRANSIENT_DURING_WAIT as exc:
            logger.warning("status of %s unavailable for now (%s); still waiting", printable(generation_id), exc)
            if isinstance(exc, APIStatusError) and exc.retry_after is not None:
                retry_after = min(exc.retry_after, self._retry_policy.max_retry_after)
        else:
            watch.latest = current
            watch.announce()
        # The schedule counts from when this look was sent (a slow answer must not push every later look back); a
        # Retry-After counts from its answer.
        delay = self.polling_policy.next_delay(asked - watch.started, watch.expectation)
        watch.next_due = max(asked + delay, self._clock() + (retry_after or 0.0))

    async def download(
        self,
        url: str,
        directory: Path,
        *,
        file_name: str,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        timeout: float | None = None,
    ) -> DownloadedVideo:
        """Stream a finished video into `directory/file_name`; return its path and size.

        The file appears only when complete (written to a hidden temporary file, then renamed atomically), and a
        body over `max_bytes` is refused. Only a video is saved, only from `https` (or from the API's own origin,
        as the sandbox serves it), never from a private or loopback address the API is not on, and without the
        API key or the URL's userinfo. Retried like a status request, all within `timeout` seconds if given;
        raises `DownloadError` (naming the video storage, not the API) when it cannot be done.
        """
        if not file_name or "/" in file_name or "\\" in file_name or file_name.startswith("."):
            raise InvalidArgumentError("file_name must be a plain file name")
        target = directory / file_name
        try:
            source = httpx.URL(url).copy_with(username=None, password=None)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise DownloadError("The video URL is not a URL that can be downloaded") from exc
        storage = printable(source.host or "?")

        async def attempt() -> DownloadedVideo:
            async with self._downloads.stream("GET", source) as response:
                if not response.is_success:
                    await _read_capped(response, MAX_ANSWER_BYTES)
                    raise _status_error(response.status_code, response.headers, None)
                content_type = response.headers.get("content-type", "")
                if not _is_video_type(content_type):
                    raise DownloadError(
                        f"The video storage at {storage} sent {printable(content_type[:80])}, not a video; "
                        "nothing was saved"
                    )
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise DownloadError(f"The video is {int(declared)} bytes, over the {max_bytes}-byte limit")
                size = await _stream_to_file(response, target, max_bytes)
                return DownloadedVideo(target, size, content_type or None)

        try:
            await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
            return await self._with_retries("download", attempt, idempotent=True, timeout=timeout)
        except DownloadError:
            raise
        except APITimeoutError as exc:
            raise DownloadError(
                f"The video from {storage} did not finish downloading in the time left for this call", timed_out=True
            ) from exc
        except APIStatusError as exc:
            raise DownloadError(
                f"Could not download the video: the video storage at {storage} answered HTTP {exc.status_code}"
            ) from exc
        except (PixVerseError, OSError) as exc:
            raise DownloadError(f"Could not download the video from {storage}: {exc}") from exc

    async def _check_download_hop(self, request: httpx.Request) -> None:
        """Before every request of a download, redirects included: a video, not an internal page."""
        if (request.url.scheme, request.url.host, request.url.port) == self._api_origin:
            return
        if request.url.scheme != "https":
            raise DownloadError(
                f"Refused to download the video from {printable(str(request.url)[:200])}: only https URLs are fetched"
            )
        host = request.url.host
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            infos = await anyio.getaddrinfo(host, request.url.port or 443, type=socket.SOCK_STREAM)
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses or not all(address.is_global for address in addresses):
            raise DownloadError(
                f"Refused to download the video from {printable(host)}: it is a private, loopback or link-local "
                "address, not the provider's storage"
            )

    async def _request(
        self,
        method: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        idempotent: bool,
        attempts: int | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One API call: send it, read at most `MAX_ANSWER_BYTES` of answer, make every text in it safe (no
        surrogate, no key, bounded), map a failure to the error tree, retry what the policy allows (at most
        `attempts` tries, all within `timeout` seconds when given)."""
        if self._api_key is None:
            raise MissingAPIKeyError()

        async def attempt() -> dict[str, Any]:
            async with self._http.stream(method, self._endpoint_path, params=params, json=json_body) as response:
                body = await _read_capped(response, MAX_ANSWER_BYTES)
            logger.debug("%s %s -> %s", method, self._endpoint_path, response.status_code)
            payload = self._clean(_parse_json(body))
            if not response.is_success:
                raise _status_error(response.status_code, response.headers, payload)
            if not isinstance(payload, dict):
                raise UnexpectedResponseError(
                    f"The AI/ML API answered HTTP {response.status_code} with a body that is not a JSON object "
                    f"({printable(response.headers.get('content-type', 'unknown')[:80])})"
                )
            return payload

        label = f"{method} {self._endpoint_path}"
        return await self._with_retries(label, attempt, idempotent=idempotent, max_attempts=attempts, timeout=timeout)

    def _clean(self, value: Any, depth: int = 0) -> Any:
        """An upstream value as the rest of the program may hold it: every text without lone surrogates or the
        key, no longer than `MAX_UPSTREAM_TEXT`, containers no deeper or larger than any real answer is."""
        if isinstance(value, str):
            text = self._redact(clean_text(value))
            return text if len(text) <= MAX_UPSTREAM_TEXT else text[:MAX_UPSTREAM_TEXT] + " [cut]"
        if depth >= MAX_UPSTREAM_DEPTH:
            return None
        if isinstance(value, dict):
            items = list(value.items())[:MAX_UPSTREAM_ITEMS]
            return {self._clean(str(key), depth + 1): self._clean(item, depth + 1) for key, item in items}
        if isinstance(value, list):
            return [self._clean(item, depth + 1) for item in value[:MAX_UPSTREAM_ITEMS]]
        return value

    def _redact(self, text: str) -> str:
        for form in self._secret_forms:
            text = text.replace(form, REDACTED)
        return text

    async def _with_retries(
        self,
        label: str,
        attempt: Callable[[], Awaitable[_T]],
        *,
        idempotent: bool,
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> _T:
        """The only retry loop: run `attempt` until it succeeds or the policy says stop. Each attempt is bounded
        in total (a body dripping a byte at a time cannot outlast it), and all of them by `timeout` if given."""
        policy = self._retry_policy
        limit = policy.max_attempts if max_attempts is None else max_attempts
        started = self._clock()
        budget = policy.max_total_seconds if timeout is None else timeout
        attempts = 0
        while True:
            attempts += 1
            left = (
                self._attempt_seconds
                if timeout is None
                else min(self._attempt_seconds, timeout - self._elapsed(started))
            )
            try:
                with anyio.fail_after(max(left, 0.0)):
                    return await attempt()
            except TimeoutError:
                error: Exception = APITimeoutError(
                    "No complete answer came back in the time left for this call", request_sent=True
                )
            except (httpx.TransportError, APIStatusError) as exc:
                error = exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise _as_package_error(exc) from exc
            retry_after = error.retry_after if isinstance(error, APIStatusError) else None
            delay = retry_delay(attempts, policy, retry_after=retry_after, rng=self._rng)
            out_of_budget = self._elapsed(started) + delay >= budget
            if attempts >= limit or out_of_budget or not should_retry(error, idempotent=idempotent):
                raise _as_package_error(error)
            logger.info("%s failed (%s); retry %d in %.1f s", label, _describe(error), attempts, delay)
            await self._sleep(delay)

    def _elapsed(self, since: float) -> float:
        return self._clock() - since


async def _deliver(on_update: UpdateCallback, update: WaitUpdate) -> None:
    """Call `on_update`, awaiting it when it is a coroutine function (so `print` and `async def` both work)."""
    outcome = on_update(update)
    if inspect.isawaitable(outcome):
        await outcome


def _check_generation_id(generation_id: str) -> None:
    # Ids are opaque (they contain ':' and '/'): only refuse what can never be one. httpx encodes the rest.
    if not generation_id.strip() or len(generation_id) > MAX_GENERATION_ID_LENGTH:
        raise InvalidArgumentError(f"generation_id must be 1 to {MAX_GENERATION_ID_LENGTH} characters")


def _status_error(status_code: int, headers: httpx.Headers, payload: Any) -> APIStatusError:
    """The typed error for an error answer (its body already cleaned of the key and odd text)."""
    return error_for_status(
        status_code,
        payload,
        retry_after=parse_retry_after(headers.get("Retry-After")),
        request_id=headers.get("x-request-id"),
    )


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """The (decoded) body, refused past `limit` bytes: no answer of this API is near it, and memory must hold."""
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise UnexpectedResponseError(
                f"The answer (HTTP {response.status_code}) is over {limit // 1024} KiB; no real answer is that big"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    """The JSON in `body`, or its text when it is not JSON we can read (an HTML page, or nested absurdly deep)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return body.decode("utf-8", "replace")


def _is_video_type(content_type: str) -> bool:
    """Whether a download's Content-Type can be a video (no type at all is given the benefit of the doubt)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return not kind or kind.startswith("video/") or kind in _VIDEO_CONTAINER_TYPES


def printable(text: str) -> str:
    """Upstream text for a log line or a message: escaped (no line breaks, no control characters) and short."""
    return repr(text[:300])[1:-1]


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


def remove_leftover_downloads(directory: Path, *, older_than_seconds: float = 600.0) -> int:
    """Delete the hidden `.partial` files of downloads that never finished (a crash, a kill) in `directory`.

    Only ours (the names `_stream_to_file` gives) and only old ones: another process may be downloading now.
    """
    removed = 0
    cutoff = time.time() - older_than_seconds
    try:
        leftovers = list(directory.glob(".pixverse-*.partial"))
    except OSError:
        return 0
    for leftover in leftovers:
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def safe_video_file_name(generation_id: str, *, when: datetime | None = None) -> str:
    """A file name we generate (never one taken from the URL or the prompt): time plus a digest of the id."""
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(generation_id.encode()).hexdigest()[:12]
    return f"pixverse-{stamp}-{digest}.mp4"


def _as_package_error(error: BaseException) -> PixVerseError:
    if isinstance(error, PixVerseError):
        return error
    never_sent = isinstance(error, NEVER_SENT)
    if isinstance(error, httpx.TooManyRedirects):
        wrapped: PixVerseError = DownloadError(
            "The video storage keeps redirecting (a redirect loop); nothing was saved"
        )
    elif isinstance(error, (httpx.DecodingError, httpx.InvalidURL, httpx.UnsupportedProtocol)):
        wrapped = UnexpectedResponseError(f"The answer could not be read ({type(error).__name__})")
    elif isinstance(error, httpx.LocalProtocolError):
        # Its text quotes the offending header, which may be the key: say what happened, not what it saw.
        wrapped = APIConnectionError("The request could not be built (an invalid header); not sent", request_sent=False)
    elif isinstance(error, httpx.TimeoutException):
        wrapped = APITimeoutError(
            f"The AI/ML API did not answer in time ({type(error).__name__})", request_sent=not never_sent
        )
    else:
        wrapped = APIConnectionError(
            f"Could not reach the AI/ML API ({type(error).__name__}: {printable(str(error))})",
            request_sent=not never_sent,
        )
    wrapped.__cause__ = error
    return wrapped


def _describe(error: BaseException) -> str:
    return f"HTTP {error.status_code}" if isinstance(error, APIStatusError) else type(error).__name__
