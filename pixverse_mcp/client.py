"""`PixVerseClient`: the one async client for the AI/ML API's PixVerse video models.

It says what to ask the API (create, status, the request logs, the balance, the price list) and how to wait for a
generation: `watch` is a stream of typed updates the caller pulls, one polling loop per generation id however many
callers watch it. How each request is sent, read, cleaned and retried is `_http.Connection`'s. It is a library of its
own: it imports nothing of the server, and like openai-python it takes the key from `AIMLAPI_API_KEY` (and the base
URL from `AIMLAPI_BASE_URL`) when none is given.

    async with PixVerseClient() as client:
        video = await client.generate("a red fox running through snow", on_update=print)
        print(video.video_url)
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import anyio
import httpx2
from pydantic import SecretStr

from pixverse_mcp import defaults
from pixverse_mcp._http import Answer, Connection, DownloadedVideo, Sleep
from pixverse_mcp._polls import SharedPolls, WaitUpdate
from pixverse_mcp._retry import RetryPolicy
from pixverse_mcp.drain import Drain
from pixverse_mcp.errors import (
    APIConnectionError,
    APIStatusError,
    CreateOutcomeUnknownError,
    GenerationFailedError,
    InvalidArgumentError,
    MissingAPIKeyError,
    UnexpectedResponseError,
    UpstreamServerError,
    WaitTimeoutError,
)
from pixverse_mcp.models import (
    MAX_GENERATION_ID_LENGTH,
    AnyRequest,
    Generation,
    GenerationStatus,
    VideoRequest,
    reported_cost_usd,
)
from pixverse_mcp.polling import Expectation, PollingPolicy
from pixverse_mcp.pricing import PriceList, RequestLogPage, price_list_from, request_log_page_from
from pixverse_mcp.text import is_well_formed_key, printable

__all__ = ["DownloadedVideo", "PixVerseClient", "WaitUpdate", "default_timeout"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_DOWNLOAD_BYTES: Final = int(defaults.MAX_DOWNLOAD_MB * 1024 * 1024)
# How long `generate` waits when not told: the provider's sample code gives up after 600 s too.
DEFAULT_GENERATE_TIMEOUT_SECONDS: Final = 600.0
_CHECK_BEFORE_RETRYING: Final = (
    "Do not simply create it again: it may already be generating and charged. Check your AI/ML API usage page "
    "(https://aimlapi.com/app/billing) first."
)
# The provider's routes beyond the generation endpoint (its service endpoints).
LOGS_PATH: Final = "/v2/logs"
BILLING_PATH: Final = "/v2/billing"
MODELS_PATH: Final = "/v1/models"
CLIENT_REQUEST_ID_HEADER: Final = "X-Client-Request-Id"


def default_timeout(
    connect: float = defaults.CONNECT_TIMEOUT_SECONDS, read: float = defaults.READ_TIMEOUT_SECONDS
) -> httpx2.Timeout:
    """Explicit limits for every phase: connect fast or fail, and never wait on a pool slot forever."""
    return httpx2.Timeout(connect=connect, read=read, write=read, pool=60.0)


UpdateCallback = Callable[[WaitUpdate], Awaitable[None] | None]
"""Hears every `WaitUpdate`: a plain function (`print` will do) or a coroutine function."""


class PixVerseClient:
    """Async client for the PixVerse video models on the AI/ML API. Use it as an async context manager."""

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        endpoint_path: str = defaults.ENDPOINT_PATHS["universal"],
        timeout: httpx2.Timeout | None = None,
        retry_policy: RetryPolicy | None = None,
        polling_policy: PollingPolicy | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = 64,
        drain: Drain | None = None,
    ) -> None:
        """`api_key` defaults to `AIMLAPI_API_KEY` and `base_url` to `AIMLAPI_BASE_URL` (else the public API).

        Without a key the client can still be built; its first request that needs one raises `MissingAPIKeyError`.
        `transport`, `sleep` and `clock` are for tests (an `httpx2.MockTransport`, a no-op sleep, a fake clock);
        `drain` ends every wait at once when the process shuts down.
        """
        if api_key is None:
            api_key = os.environ.get("AIMLAPI_API_KEY")
        base_url = base_url or os.environ.get("AIMLAPI_BASE_URL") or defaults.DEFAULT_BASE_URL
        key = (api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key or "").strip()
        if key and not is_well_formed_key(key):
            raise MissingAPIKeyError(malformed=True)
        self._endpoint_path = endpoint_path
        self.polling_policy = polling_policy or PollingPolicy()
        self._sleep = sleep
        self._clock = clock
        self.drain = drain or Drain()
        self._http = Connection(
            api_key=SecretStr(key) if key else None,
            base_url=base_url,
            timeout=timeout or default_timeout(),
            retry_policy=retry_policy or RetryPolicy(),
            transport=transport,
            sleep=sleep,
            clock=clock,
            max_connections=max_connections,
        )
        self.account = AccountRoutes(self._http)
        """The request log, the balance and the price list."""
        self._polls = SharedPolls(
            lambda generation_id, deadline: self.get(generation_id, retry=False, timeout=deadline),
            self.polling_policy,
            retry_policy=self._http.retry_policy,
            drain=self.drain,
            sleep=sleep,
            clock=clock,
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

    @property
    def retry_policy(self) -> RetryPolicy:
        """How hard each request is tried."""
        return self._http.retry_policy

    async def create(
        self,
        request: AnyRequest | dict[str, Any],
        *,
        timeout: float | None = None,
        client_request_id: str | None = None,
    ) -> Generation:
        """Start a generation and return it (status queued) with its id and, when the answer said, its cost
        (`cost_usd`). Never sends the request twice.

        `request` is a request model or a ready body (with local inputs already turned into data URIs). The
        `client_request_id` goes out as `X-Client-Request-Id`, so a create whose answer is lost can be found in the
        provider's request logs. Retried only when the request provably never reached the API (no connection) or
        was refused with 429. Raises `CreateOutcomeUnknownError` when it may have been accepted but no readable
        answer came back (within `timeout` seconds, when given: the caller's whole budget, retries included).
        """
        body = request if isinstance(request, dict) else request.to_body()
        headers = {CLIENT_REQUEST_ID_HEADER: client_request_id} if client_request_id else None
        try:
            answer = await self._http.request(
                "POST", self._endpoint_path, json_body=body, headers=headers, idempotent=False, timeout=timeout
            )
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
            generation = Generation.from_payload(answer.payload)
        except UnexpectedResponseError as exc:
            raise CreateOutcomeUnknownError(
                f"The AI/ML API accepted the create request but {exc}. {_CHECK_BEFORE_RETRYING}"
            ) from exc
        cost = reported_cost_usd(answer.headers.get("x-aimlapi-usd-spent"), generation.usage)
        logger.info("created generation %s (%s)", printable(generation.id), printable(generation.raw_status or ""))
        return generation.model_copy(update={"cost_usd": cost})

    async def get(self, generation_id: str, *, retry: bool = True, timeout: float | None = None) -> Generation:
        """One status request for `generation_id`, retried on transient faults unless `retry` is False (a wait
        retries on its own schedule, with heartbeats in between); all of it within `timeout` seconds if given."""
        _check_generation_id(generation_id)
        attempts = None if retry else 1
        answer = await self._http.request(
            "GET",
            self._endpoint_path,
            params={"generation_id": generation_id},
            idempotent=True,
            attempts=attempts,
            timeout=timeout,
        )
        try:
            generation = Generation.from_payload(answer.payload, fallback_id=generation_id)
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
        prompt: str | AnyRequest,
        *,
        timeout: float = DEFAULT_GENERATE_TIMEOUT_SECONDS,
        on_update: UpdateCallback | None = None,
        **options: Any,
    ) -> Generation:
        """Create a video and wait for it: the one call most scripts need. Returns the completed generation.

        `prompt` is the text (the other request fields as keyword `options`: `resolution="1080p"`, ...) or a whole
        request. `on_update` hears every status after the create. Raises `GenerationFailedError` if the provider
        failed it, `WaitTimeoutError` (with the id) if `timeout` ran out: the paid generation goes on upstream, and
        `wait(error.generation_id, ...)` picks it up again.
        """
        request = prompt if not isinstance(prompt, str) else VideoRequest(prompt=prompt, **options)
        generation = await self.create(request)
        body = request.to_body()
        expectation = self.polling_policy.expectation(body.get("resolution"), body.get("duration"))
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
    ) -> Generation:
        """Poll until the generation is final or `timeout` seconds have passed; return the completed generation.

        `watch` with the outcome as a return value or an error: `GenerationFailedError` if it failed,
        `WaitTimeoutError` (with the id) if time ran out. The generation itself goes on upstream either way.
        """
        latest: Generation | None = None
        updates = self.watch(
            generation_id, timeout=timeout, expectation=expectation, elapsed_before=elapsed_before, known=known
        )
        async with aclosing(updates):
            async for update in updates:
                latest = update.generation or latest
                if on_update is not None and inspect.isawaitable(outcome := on_update(update)):
                    await outcome
        if latest is not None and latest.status is GenerationStatus.COMPLETED:
            return latest
        if latest is not None and latest.status is GenerationStatus.FAILED:
            raise GenerationFailedError(
                f"Generation {generation_id} failed: {latest.error}", generation_id=generation_id, generation=latest
            )
        raise WaitTimeoutError(
            f"Generation {generation_id} is not finished after waiting {timeout:g} s; it is still running upstream",
            generation_id=generation_id,
            generation=latest,
        )

    def watch(
        self,
        generation_id: str,
        *,
        timeout: float,
        expectation: Expectation | None = None,
        elapsed_before: float = 0.0,
        known: Generation | None = None,
    ) -> AsyncGenerator[WaitUpdate, None]:
        """The updates of one generation as they come: after every status answer, and a heartbeat at least every
        `polling_policy.heartbeat_seconds`. The stream ends after the update that carries a final status, or when
        `timeout` seconds have passed, or when the drain begins (then the last update says where it stood).
        Transient faults (network, 5xx, 429, odd bodies) do not end it; other errors (401, 404) are raised.

        The schedule comes from `polling_policy` and `expectation` (when this kind of video is usually ready;
        `elapsed_before` says how long ago it was created). The first look is at once, unless the caller passes the
        status it already has as `known` (a create's answer): that is the first update, and the first look waits
        for the schedule. Concurrent watchers of one id share one polling loop (`_polls`). Close the stream
        (`contextlib.aclosing`) if you stop reading it early.
        """
        _check_generation_id(generation_id)
        return self._polls.watch(
            generation_id, timeout=timeout, expectation=expectation, elapsed_before=elapsed_before, known=known
        )

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
        return await self._http.download(url, directory / file_name, max_bytes=max_bytes, timeout=timeout)

    async def still_served(self, url: str, *, timeout: float = 5.0) -> bool:
        """Whether the provider's storage still serves a finished video's URL (they are temporary)."""
        return await self._http.reachable(url, timeout=timeout)


class AccountRoutes:
    """The provider's service routes a careful client needs besides the generation endpoint: the request log, the
    balance, and the price list (`client.account`)."""

    def __init__(self, http: Connection) -> None:
        self._http = http

    async def request_logs(
        self, *, start: float, end: float, offset: int = 0, limit: int = 100, timeout: float | None = None
    ) -> RequestLogPage:
        """One page (newest first) of the provider's log of this key's requests between two moments (epoch
        seconds): each row's outcome, cost and ids, including the `client_request_id` a create was sent with.
        Rows come from an analytics pipeline and appear after a delay."""
        params: dict[str, str | int | list[str]] = {
            "start": _iso(start),
            "end": _iso(end),
            "limit": limit,
            "offset": offset,
        }
        answer = await self._http.request("GET", LOGS_PATH, params=params, idempotent=True, timeout=timeout)
        return request_log_page_from(answer.payload)

    async def balance(self, *, timeout: float | None = None) -> float | None:
        """The account's balance in US dollars (`GET /v2/billing`), or None when the answer does not say."""
        # One try: the balance is advice, and a later look asks again.
        answer = await self._http.request("GET", BILLING_PATH, idempotent=True, attempts=1, timeout=timeout)
        balance = answer.payload.get("current_balance")
        currency = answer.payload.get("currency", "USD")
        if isinstance(balance, bool) or not isinstance(balance, (int, float)) or currency != "USD":
            return None
        return float(balance)

    async def price_list(
        self, model: str, *, etag: str | None = None, timeout: float | None = None
    ) -> PriceList | None:
        """The provider's published prices for `model` (no key needed); None when `etag` says nothing changed."""
        headers = {"If-None-Match": etag} if etag else None
        answer: Answer = await self._http.request(
            "GET",
            MODELS_PATH,
            params={"id": model, "include": "pricing"},
            headers=headers,
            idempotent=True,
            attempts=1,  # one try: an estimate's source, asked again after a while (see `money`)
            timeout=timeout,
            keyless=True,
            not_modified=etag is not None,
        )
        if answer.status_code == 304:
            return None
        return price_list_from(answer.payload, model, etag=answer.headers.get("etag"))


def _check_generation_id(generation_id: str) -> None:
    # Ids are opaque (they contain ':' and '/'): only refuse what can never be one. httpx2 encodes the rest.
    if not generation_id.strip() or len(generation_id) > MAX_GENERATION_ID_LENGTH:
        raise InvalidArgumentError(f"generation_id must be 1 to {MAX_GENERATION_ID_LENGTH} characters")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
