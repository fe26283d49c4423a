"""`PixVerseClient`: the one async client for the AI/ML API's PixVerse v5 text-to-video endpoints.

It owns a single `httpx.AsyncClient` and everything about the upstream: auth, request building, response parsing,
the error tree, retries, the polling schedule and timeouts. The MCP layer never touches HTTP.

    async with PixVerseClient(api_key="...") as client:
        generation = await client.create(VideoRequest(prompt="a red fox running through snow"))
        finished = await client.wait(generation.id, timeout=120)
        print(finished.video_url)
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import anyio
import httpx
from pydantic import SecretStr

from pixverse_mcp._retry import RetryPolicy, parse_retry_after, retry_delay, should_retry
from pixverse_mcp.config import DEFAULT_BASE_URL, ENDPOINT_PATHS
from pixverse_mcp.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CreateOutcomeUnknownError,
    GenerationFailedError,
    MissingAPIKeyError,
    PixVerseError,
    RateLimitError,
    UnexpectedResponseError,
    UpstreamServerError,
    WaitTimeoutError,
    error_for_status,
)
from pixverse_mcp.models import MAX_GENERATION_ID_LENGTH, Generation, GenerationStatus, VideoRequest
from pixverse_mcp.polling import PollingPolicy

logger = logging.getLogger(__name__)

USER_AGENT: Final = "pixverse-mcp"
_CHECK_BEFORE_RETRYING: Final = (
    "Do not simply create it again: it may already be generating and charged. Check your AI/ML API usage page "
    "(https://aimlapi.com/app/billing) first."
)
# Failures during a wait that say nothing about the generation itself: the wait goes on until its deadline.
_TRANSIENT_DURING_WAIT: Final = (APIConnectionError, UpstreamServerError, RateLimitError, UnexpectedResponseError)


def default_timeout(connect: float = 10.0, read: float = 30.0) -> httpx.Timeout:
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

    @property
    def estimated_remaining_seconds(self) -> float | None:
        """Time left by the usual figures; None once the generation runs later than usual."""
        remaining = self.expected_seconds - self.elapsed_seconds
        return remaining if remaining > 0 else None


UpdateCallback = Callable[[WaitUpdate], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


class PixVerseClient:
    """Async client for PixVerse v5 text-to-video on the AI/ML API. Use it as an async context manager."""

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None,
        base_url: str = DEFAULT_BASE_URL,
        endpoint_path: str = ENDPOINT_PATHS["universal"],
        timeout: httpx.Timeout | None = None,
        retry_policy: RetryPolicy | None = None,
        polling_policy: PollingPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = 64,
    ) -> None:
        secret = api_key if isinstance(api_key, SecretStr) or api_key is None else SecretStr(api_key)
        self._api_key = secret if secret is not None and secret.get_secret_value().strip() else None
        self._endpoint_path = endpoint_path
        self._retry_policy = retry_policy or RetryPolicy()
        self.polling_policy = polling_policy or PollingPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
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

    def __repr__(self) -> str:
        return f"PixVerseClient(base_url={str(self._http.base_url)!r}, endpoint_path={self._endpoint_path!r})"

    async def __aenter__(self) -> PixVerseClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

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
            if isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
                raise  # nothing was sent
            raise CreateOutcomeUnknownError(
                f"The create request was sent but no answer came back ({exc}); it may have been accepted. "
                f"{_CHECK_BEFORE_RETRYING}"
            ) from exc
        try:
            generation = Generation.from_payload(payload)
        except ValueError as exc:
            raise CreateOutcomeUnknownError(
                f"The AI/ML API accepted the create request but {exc}. {_CHECK_BEFORE_RETRYING}"
            ) from exc
        logger.info("created generation %s (%s)", generation.id, generation.raw_status)
        return generation

    async def get(self, generation_id: str) -> Generation:
        """One status request for `generation_id` (retried on transient faults)."""
        _check_generation_id(generation_id)
        payload = await self._request("GET", params={"generation_id": generation_id}, idempotent=True)
        try:
            return Generation.from_payload(payload, fallback_id=generation_id)
        except ValueError as exc:
            raise UnexpectedResponseError(f"Unusable status response for {generation_id}: {exc}") from exc

    async def wait(
        self,
        generation_id: str,
        *,
        timeout: float,
        on_update: UpdateCallback | None = None,
        expected_seconds: float | None = None,
        elapsed_before: float = 0.0,
    ) -> Generation:
        """Poll until the generation is final or `timeout` seconds have passed; return the completed generation.

        The schedule comes from `polling_policy` and `expected_seconds` (how long this kind of video usually
        takes; `elapsed_before` says how long ago it was created). `on_update` hears every answer and a heartbeat
        at least every `polling_policy.heartbeat_seconds`. Transient faults (network, 5xx, 429, odd bodies) do not
        end the wait. Raises `GenerationFailedError` if it failed, `WaitTimeoutError` (with the id) if time ran
        out: the generation itself goes on upstream either way, and a later `get`/`wait` can pick it up.
        """
        _check_generation_id(generation_id)
        policy = self.polling_policy
        expected = expected_seconds if expected_seconds is not None else policy.expected_seconds()
        started = self._clock()
        deadline = started + timeout
        latest: Generation | None = None

        def elapsed() -> float:
            return elapsed_before + self._clock() - started

        async def notify(changed: bool) -> None:
            if on_update is not None:
                await on_update(WaitUpdate(generation_id, latest, elapsed(), expected, changed))

        while True:
            try:
                current = await self.get(generation_id)
            except _TRANSIENT_DURING_WAIT as exc:
                logger.warning("status of %s unavailable for now (%s); still waiting", generation_id, exc)
            else:
                changed = latest is None or current.status is not latest.status
                latest = current
                await notify(changed)
                if current.status is GenerationStatus.COMPLETED:
                    return current
                if current.status is GenerationStatus.FAILED:
                    raise GenerationFailedError(
                        f"Generation {generation_id} failed: {current.error}",
                        generation_id=generation_id,
                        generation=current,
                    )
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeoutError(
                    f"Generation {generation_id} is not finished after waiting {timeout:g} s; it is still "
                    "running upstream",
                    generation_id=generation_id,
                    generation=latest,
                )
            delay = min(policy.next_delay(elapsed(), expected), remaining)
            await self._sleep_with_heartbeats(delay, notify)

    async def _sleep_with_heartbeats(self, delay: float, notify: Callable[[bool], Awaitable[None]]) -> None:
        """Sleep `delay` seconds, telling `notify` we are alive at least every heartbeat interval."""
        heartbeat = self.polling_policy.heartbeat_seconds
        while delay > 0:
            step = min(delay, heartbeat)
            await self._sleep(step)
            delay -= step
            if delay > 0:
                await notify(False)

    async def _request(
        self,
        method: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        idempotent: bool,
    ) -> dict[str, Any]:
        """The only request loop: send, map failures to the error tree, retry what the policy allows."""
        if self._api_key is None:
            raise MissingAPIKeyError()
        policy = self._retry_policy
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            error: BaseException
            try:
                response = await self._http.request(method, self._endpoint_path, params=params, json=json_body)
            except httpx.TransportError as exc:
                error = exc
                retry_after = None
            else:
                logger.debug("%s %s -> %s (attempt %d)", method, self._endpoint_path, response.status_code, attempt)
                if response.is_success:
                    return _json_object(response)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                error = error_for_status(
                    response.status_code,
                    _body_of(response),
                    retry_after=retry_after,
                    request_id=response.headers.get("x-request-id"),
                )
            delay = retry_delay(attempt, policy, retry_after=retry_after, rng=self._rng)
            out_of_budget = self._clock() - started + delay > policy.max_total_seconds
            if attempt >= policy.max_attempts or out_of_budget or not should_retry(error, idempotent=idempotent):
                raise _as_package_error(error)
            logger.info(
                "%s %s failed (%s); retry %d in %.1f s", method, self._endpoint_path, _describe(error), attempt, delay
            )
            await self._sleep(delay)


def _check_generation_id(generation_id: str) -> None:
    # Ids are opaque (they contain ':' and '/'): only refuse what can never be one. httpx encodes the rest.
    if not generation_id.strip() or len(generation_id) > MAX_GENERATION_ID_LENGTH:
        raise ValueError(f"generation_id must be 1 to {MAX_GENERATION_ID_LENGTH} characters")


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
    if isinstance(error, httpx.TimeoutException):
        wrapped: PixVerseError = APITimeoutError(f"The AI/ML API did not answer in time ({type(error).__name__})")
    else:
        wrapped = APIConnectionError(f"Could not reach the AI/ML API ({type(error).__name__}: {error})")
    wrapped.__cause__ = error
    return wrapped


def _describe(error: BaseException) -> str:
    return f"HTTP {error.status_code}" if isinstance(error, APIStatusError) else type(error).__name__
