"""The one request loop to the AI/ML API and the one download loop from its video storage.

`Connection` owns the HTTP pools (created on first use, so a server that is never asked to make a video never builds
one), the key, the bounded and cleaned reading of every answer, the mapping of failures to the error tree, and the
retries the policy allows. `PixVerseClient` says what to ask; this module says how.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import httpx2
from pydantic import SecretStr

from pixverse_mcp._retry import NEVER_SENT, RetryPolicy, parse_retry_after, retry_delay, should_retry
from pixverse_mcp.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    DownloadError,
    MissingAPIKeyError,
    PixVerseError,
    UnexpectedResponseError,
    error_for_status,
)
from pixverse_mcp.logs import REDACTED, secret_forms
from pixverse_mcp.text import clean_text, printable

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

# Limits on what the API may send (its real answers are a few hundred bytes): past them, an answer is refused or cut.
# 8 MiB still reads a failure whose message is megabytes long (then cut to MAX_UPSTREAM_TEXT); it bounds memory.
MAX_ANSWER_BYTES: Final = 8 * 1024 * 1024
MAX_UPSTREAM_TEXT: Final = 4000
"""Characters kept of one upstream text (an error message, a status, a URL): results stay far under 1 MB."""
MAX_UPSTREAM_DEPTH: Final = 20
MAX_UPSTREAM_ITEMS: Final = 100
_DOWNLOAD_CHUNK_BYTES: Final = 64 * 1024
_VIDEO_CONTAINER_TYPES: Final = frozenset({"application/octet-stream", "binary/octet-stream", "application/mp4"})
USER_AGENT: Final = "pixverse-mcp"


@dataclass(frozen=True)
class Answer:
    """A successful API answer: its JSON object (cleaned) and the headers that carry facts (cost, request ids)."""

    payload: dict[str, Any]
    headers: Mapping[str, str]
    status_code: int


@dataclass(frozen=True)
class DownloadedVideo:
    """A video saved to disk by `PixVerseClient.download`."""

    path: Path
    size: int
    content_type: str | None


Sleep = Callable[[float], Awaitable[None]]


class RequestSlots:
    """Requests in flight, per pool, bounded here rather than in the pool's own queue: httpcore walks every queued
    request on each one that starts or ends, so 5,000 waits polling at once spent the loop's time there. A request
    waiting here costs nothing until a slot is free."""

    def __init__(self, capacity: int, clock: Callable[[], float]) -> None:
        self._capacity = capacity
        self._clock = clock
        self._pools: dict[str, anyio.CapacityLimiter] = {}

    @asynccontextmanager
    async def take(self, pool: str | None, wait: float) -> AsyncIterator[Callable[[], float]]:
        """One of `pool`'s slots, waited for at most `wait` seconds (then `httpx2.PoolTimeout`: nothing was sent);
        yields how long the wait took. No pool: no bound."""
        if pool is None:
            yield lambda: 0.0
            return
        slots = self._pools.get(pool)
        if slots is None:
            slots = self._pools[pool] = anyio.CapacityLimiter(self._capacity)
        began = self._clock()
        acquired = False
        with anyio.move_on_after(max(wait, 0.0)):
            await slots.acquire()
            acquired = True
        if not acquired:
            raise httpx2.PoolTimeout("no request slot came free in the time left")
        waited = self._clock() - began
        try:
            yield lambda: waited
        finally:
            slots.release()

    def clear(self) -> None:
        """Forget the pools (they are made again on first use)."""
        self._pools.clear()


class Connection:
    """HTTP to one AI/ML API base URL, with a key (or none, for the routes that need none)."""

    def __init__(
        self,
        *,
        api_key: SecretStr | None,
        base_url: str,
        timeout: httpx2.Timeout,
        retry_policy: RetryPolicy,
        transport: httpx2.AsyncBaseTransport | None,
        sleep: Sleep,
        clock: Callable[[], float],
        max_connections: int,
    ) -> None:
        self.api_key = api_key
        self.base_url = httpx2.URL(base_url.rstrip("/"))
        self._timeout = timeout
        self.retry_policy = retry_policy
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._max_connections = max_connections
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self._secret_forms = secret_forms(api_key.get_secret_value()) if api_key else []
        # One attempt may take this long in all (connect, send, every byte of the answer), whatever the pace.
        self._attempt_seconds = (timeout.connect or 0.0) + (timeout.read or 0.0)
        self._api: httpx2.AsyncClient | None = None
        self._storage: httpx2.AsyncClient | None = None
        self._slots = RequestSlots(max_connections, clock)
        self._api_origin = (self.base_url.scheme, self.base_url.host, self.base_url.port)

    @property
    def api(self) -> httpx2.AsyncClient:
        """The pool for the API (with the key); created on first use."""
        if self._api is None:
            headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
            if self.api_key is not None:
                headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
            limits = httpx2.Limits(
                max_connections=self._max_connections, max_keepalive_connections=self._max_connections
            )
            self._api = httpx2.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=self._timeout,
                transport=self._transport,
                limits=limits,
                follow_redirects=False,
            )
        return self._api

    @property
    def storage(self) -> httpx2.AsyncClient:
        """The pool for the provider's video storage (its CDN): never carries the key, follows redirects, each hop
        checked first (only https, only public addresses, unless it is the API's own origin)."""
        if self._storage is None:
            self._storage = httpx2.AsyncClient(
                headers={"User-Agent": USER_AGENT},
                timeout=self._timeout,
                transport=self._transport,
                follow_redirects=True,
                event_hooks={"request": [self._check_download_hop]},
            )
        return self._storage

    async def aclose(self) -> None:
        """Close the pools (they reopen on next use)."""
        for pool in (self._api, self._storage):
            if pool is not None:
                await pool.aclose()
        self._api = self._storage = None
        self._slots.clear()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | list[str]] | None = None,
        json_body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        attempts: int | None = None,
        timeout: float | None = None,
        keyless: bool = False,
        not_modified: bool = False,
    ) -> Answer:
        """One API call: send it, read at most `MAX_ANSWER_BYTES` of answer, make every text in it safe (no
        surrogate, no key, bounded), map a failure to the error tree, retry what the policy allows (at most
        `attempts` tries, all within `timeout` seconds when given). `keyless`: a route that needs no key;
        `not_modified`: a 304 is an answer (with an empty payload) to a conditional request."""
        if self.api_key is None and not keyless:
            raise MissingAPIKeyError()

        async def attempt() -> Answer:
            async with self.api.stream(method, path, params=params, json=json_body, headers=headers) as response:
                body = await _read_capped(response, MAX_ANSWER_BYTES)
            logger.debug("%s %s -> %s", method, path, response.status_code)
            if not_modified and response.status_code == 304:
                return Answer({}, {}, 304)
            payload = self.clean(_parse_json(body))
            if not response.is_success:
                raise _status_error(response.status_code, response.headers, payload)
            if not isinstance(payload, dict):
                raise UnexpectedResponseError(
                    f"The AI/ML API answered HTTP {response.status_code} with a body that is not a JSON object "
                    f"({printable(response.headers.get('content-type', 'unknown')[:80])})"
                )
            kept = {name: self.clean(value) for name, value in response.headers.items()}
            return Answer(payload, kept, response.status_code)

        label = f"{method} {path}"
        return await self.with_retries(
            label, attempt, idempotent=idempotent, max_attempts=attempts, timeout=timeout, pool="api"
        )

    def clean(self, value: Any, depth: int = 0) -> Any:
        """An upstream value as the rest of the program may hold it: every text without lone surrogates or the
        key, no longer than `MAX_UPSTREAM_TEXT`, containers no deeper or larger than any real answer is."""
        if isinstance(value, str):
            text = self._redact(clean_text(value))
            return text if len(text) <= MAX_UPSTREAM_TEXT else text[:MAX_UPSTREAM_TEXT] + " [cut]"
        if depth >= MAX_UPSTREAM_DEPTH:
            return None
        if isinstance(value, dict):
            items = list(value.items())[:MAX_UPSTREAM_ITEMS]
            return {self.clean(str(key), depth + 1): self.clean(item, depth + 1) for key, item in items}
        if isinstance(value, list):
            return [self.clean(item, depth + 1) for item in value[:MAX_UPSTREAM_ITEMS]]
        return value

    def _redact(self, text: str) -> str:
        for form in self._secret_forms:
            text = text.replace(form, REDACTED)
        return text

    async def download(
        self, url: str, target: Path, *, max_bytes: int, timeout: float | None = None
    ) -> DownloadedVideo:
        """Stream the video at `url` into `target` (whole or not at all), retried like a status request."""
        try:
            source = httpx2.URL(url).copy_with(username=None, password=None)
        except (httpx2.InvalidURL, ValueError, TypeError) as exc:
            raise DownloadError("The video URL is not a URL that can be downloaded") from exc
        storage = printable(source.host or "?")

        async def attempt() -> DownloadedVideo:
            async with self.storage.stream("GET", source) as response:
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
            await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
            return await self.with_retries("download", attempt, idempotent=True, timeout=timeout, pool="storage")
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

    async def reachable(self, url: str, *, timeout: float) -> bool:
        """Whether the video storage still serves `url` (its first byte), under the download's URL policy."""
        try:
            with anyio.fail_after(timeout):
                response = await self.storage.get(url, headers={"Range": "bytes=0-0"})
        except (TimeoutError, httpx2.HTTPError, DownloadError, ValueError):
            return False
        return response.is_success

    async def _check_download_hop(self, request: httpx2.Request) -> None:
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

    async def with_retries(
        self,
        label: str,
        attempt: Callable[[], Awaitable[_T]],
        *,
        idempotent: bool,
        max_attempts: int | None = None,
        timeout: float | None = None,
        pool: str | None = None,
    ) -> _T:
        """The only retry loop: run `attempt` until it succeeds or the policy says stop. Each attempt is bounded
        in total (a body dripping a byte at a time cannot outlast it), and all of them by `timeout` if given.
        With a `pool`, each attempt first takes one of its request slots (waiting, like a pool slot, never sent)."""
        policy = self.retry_policy
        limit = policy.max_attempts if max_attempts is None else max_attempts
        started = self._clock()
        budget = policy.max_total_seconds if timeout is None else timeout
        attempts = 0
        while True:
            attempts += 1
            left = (
                self._attempt_seconds
                if timeout is None
                else min(self._attempt_seconds, timeout - (self._clock() - started))
            )
            try:
                async with self._slots.take(pool, left) as waited:
                    with anyio.fail_after(max(left - waited(), 0.0)):
                        return await attempt()
            except TimeoutError:
                error: Exception = APITimeoutError(
                    "No complete answer came back in the time left for this call", request_sent=True
                )
            except (httpx2.TransportError, APIStatusError) as exc:
                error = exc
            except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
                raise as_package_error(exc) from exc
            retry_after = error.retry_after if isinstance(error, APIStatusError) else None
            delay = retry_delay(attempts, policy, retry_after=retry_after, rng=self._rng)
            out_of_budget = (self._clock() - started) + delay >= budget
            if attempts >= limit or out_of_budget or not should_retry(error, idempotent=idempotent):
                raise as_package_error(error)
            logger.info("%s failed (%s); retry %d in %.1f s", label, _describe(error), attempts, delay)
            await self._sleep(delay)


def _status_error(status_code: int, headers: httpx2.Headers, payload: Any) -> APIStatusError:
    """The typed error for an error answer (its body already cleaned of the key and odd text)."""
    return error_for_status(
        status_code,
        payload,
        retry_after=parse_retry_after(headers.get("Retry-After")),
        request_id=headers.get("x-request-id"),
    )


async def _read_capped(response: httpx2.Response, limit: int) -> bytes:
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


async def _stream_to_file(response: httpx2.Response, target: Path, max_bytes: int) -> int:
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


def as_package_error(error: BaseException) -> PixVerseError:
    """An httpx2 failure (or one of ours) as an error of the package's tree, with what it means for a create."""
    if isinstance(error, PixVerseError):
        return error
    never_sent = isinstance(error, NEVER_SENT)
    if isinstance(error, httpx2.TooManyRedirects):
        wrapped: PixVerseError = DownloadError(
            "The video storage keeps redirecting (a redirect loop); nothing was saved"
        )
    elif isinstance(error, (httpx2.DecodingError, httpx2.InvalidURL, httpx2.UnsupportedProtocol)):
        wrapped = UnexpectedResponseError(f"The answer could not be read ({type(error).__name__})")
    elif isinstance(error, httpx2.LocalProtocolError):
        # Its text quotes the offending header, which may be the key: say what happened, not what it saw.
        wrapped = APIConnectionError("The request could not be built (an invalid header); not sent", request_sent=False)
    elif isinstance(error, httpx2.TimeoutException):
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
