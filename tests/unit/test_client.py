"""PixVerseClient against a scripted upstream (httpx2.MockTransport), in simulated time: no network or real sleeps."""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx2
import pytest
from anyio import wait_all_tasks_blocked

from pixverse_mcp._retry import RetryPolicy
from pixverse_mcp.client import PixVerseClient, WaitUpdate
from pixverse_mcp.defaults import ENDPOINT_PATHS
from pixverse_mcp.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    CreateOutcomeUnknownError,
    GenerationFailedError,
    MissingAPIKeyError,
    RateLimitError,
    UpstreamServerError,
    WaitTimeoutError,
)
from pixverse_mcp.models import Generation, GenerationStatus, VideoRequest
from pixverse_mcp.polling import PollingPolicy

pytestmark = pytest.mark.anyio

API_KEY = "sk-aiml-test-5f3c9a1e7b2d4c6e8f0a1b2c3d4e5f60"
BASE_URL = "https://api.test.invalid"
UNIVERSAL_PATH = "/v2/video/generations"
VENDOR_PATH = "/v2/generate/video/pixverse/generation"
GENERATION_ID = "1fe4344e-7b6a-4a5e-9d1c-0f2b3c4d5e6f:pixverse/v5/text-to-video"
VIDEO_URL = "https://cdn.test.invalid/generations/output.mp4"
REQUEST = VideoRequest(prompt="a red fox running through snow", resolution="540p", duration=8, seed=7)
HEARTBEAT = PollingPolicy().heartbeat_seconds
CLOUDFLARE_PAGE = "<!DOCTYPE html><html><head><title>502 Bad gateway</title></head><body>cloudflare</body></html>"

Reply = httpx2.Response | Exception


class FakeTime:
    """A clock that only moves when the client sleeps; every requested sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        # A loop that stops advancing time would spin forever: fail instead of hanging the suite.
        assert len(self.sleeps) < 10_000, "the client keeps sleeping without end"
        self.now += max(seconds, 0.0)


class Upstream:
    """A scripted API: answers each request with the next reply of the script, and records every request."""

    def __init__(self, *replies: Reply, time: FakeTime | None = None) -> None:
        self.replies = list(replies)
        self.time = time
        self.requests: list[httpx2.Request] = []
        self.request_times: list[float] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.time is not None:
            self.request_times.append(self.time.now)
        if not self.replies:
            raise AssertionError(f"unexpected extra request: {request.method} {request.url}")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    @property
    def methods(self) -> list[str]:
        return [request.method for request in self.requests]


class Timeline:
    """An API whose generation's answer depends on the simulated time of each status request."""

    def __init__(self, time: FakeTime, answer: Callable[[float], Reply]) -> None:
        self.time = time
        self.answer = answer
        self.requests: list[httpx2.Request] = []
        self.request_times: list[float] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        self.request_times.append(self.time.now)
        reply = self.answer(self.time.now)
        if isinstance(reply, Exception):
            raise reply
        return reply


def status(value: str, **extra: Any) -> httpx2.Response:
    return httpx2.Response(200, json={"id": GENERATION_ID, "status": value, **extra})


def completed() -> httpx2.Response:
    return status("completed", video={"url": VIDEO_URL, "content_type": "video/mp4", "file_size": 6274330})


def created() -> httpx2.Response:
    return httpx2.Response(
        201, json={"id": GENERATION_ID, "status": "queued", "meta": {"usage": {"tokens_used": 840000}}}
    )


def connect_error() -> httpx2.ConnectError:
    return httpx2.ConnectError("[Errno 111] Connection refused")


def make_client(
    handler: Callable[[httpx2.Request], httpx2.Response],
    time: FakeTime,
    *,
    api_key: str | None = API_KEY,
    **options: Any,
) -> PixVerseClient:
    return PixVerseClient(
        api_key=api_key,
        base_url=BASE_URL,
        transport=httpx2.MockTransport(handler),
        sleep=time.sleep,
        clock=time.clock,
        **options,
    )


def assert_key_absent(error: BaseException) -> None:
    """Neither the error nor anything it was raised from mentions the API key."""
    seen: BaseException | None = error
    while seen is not None:
        assert API_KEY not in str(seen)
        assert API_KEY not in repr(seen)
        seen = seen.__cause__ or seen.__context__


class UpdateLog:
    """Records every WaitUpdate with the simulated time it arrived."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.updates: list[tuple[float, WaitUpdate]] = []

    async def __call__(self, update: WaitUpdate) -> None:
        self.updates.append((self.time.now, update))

    def largest_gap(self, since: float = 0.0) -> float:
        times = [since, *(when for when, _ in self.updates)]
        return max(later - earlier for earlier, later in itertools.pairwise(times))


# --- create and get -------------------------------------------------------------------------------------------------


async def test_create_posts_the_exact_body_with_bearer_auth_to_the_universal_path() -> None:
    upstream = Upstream(created())
    async with make_client(upstream, FakeTime()) as client:
        await client.create(REQUEST)

    [request] = upstream.requests
    assert request.method == "POST"
    assert request.url.path == UNIVERSAL_PATH
    assert str(request.url).startswith(BASE_URL + UNIVERSAL_PATH)
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "model": "pixverse/v5/text-to-video",
        "prompt": "a red fox running through snow",
        "aspect_ratio": "16:9",
        "resolution": "540p",
        "duration": 8,
        "seed": 7,
    }


async def test_universal_path_is_the_default_endpoint() -> None:
    assert ENDPOINT_PATHS["universal"] == UNIVERSAL_PATH
    assert ENDPOINT_PATHS["vendor"] == VENDOR_PATH


async def test_vendor_path_is_used_for_create_and_get_when_configured() -> None:
    upstream = Upstream(created(), status("queued"))
    async with make_client(upstream, FakeTime(), endpoint_path=ENDPOINT_PATHS["vendor"]) as client:
        await client.create(REQUEST)
        await client.get(GENERATION_ID)

    assert [request.url.path for request in upstream.requests] == [VENDOR_PATH, VENDOR_PATH]
    assert upstream.methods == ["POST", "GET"]


async def test_create_returns_the_generation_with_its_id_and_usage() -> None:
    async with make_client(Upstream(created()), FakeTime()) as client:
        generation = await client.create(REQUEST)

    assert generation.id == GENERATION_ID
    assert generation.status is GenerationStatus.QUEUED
    assert generation.usage == {"tokens_used": 840000}


async def test_get_sends_the_opaque_id_as_one_url_encoded_query_value() -> None:
    awkward_id = "ab12:pixverse/v5/text-to-video+x&generation_id=evil#frag ment"
    upstream = Upstream(httpx2.Response(200, json={"id": awkward_id, "status": "generating"}))
    async with make_client(upstream, FakeTime()) as client:
        generation = await client.get(awkward_id)

    [request] = upstream.requests
    assert request.method == "GET"
    assert request.url.path == UNIVERSAL_PATH
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.content == b""
    # What a server sees when it decodes the query string.
    assert parse_qs(request.url.query.decode("ascii"), keep_blank_values=True, strict_parsing=True) == {
        "generation_id": [awkward_id]
    }
    assert generation.id == awkward_id
    assert generation.status is GenerationStatus.GENERATING


async def test_get_keeps_the_requested_id_when_the_body_omits_it() -> None:
    upstream = Upstream(httpx2.Response(200, json={"status": "queued"}))
    async with make_client(upstream, FakeTime()) as client:
        generation = await client.get(GENERATION_ID)

    assert generation.id == GENERATION_ID


# --- wait -----------------------------------------------------------------------------------------------------------


def _queued_then_generating_then_completed(now: float) -> Reply:
    if now < 8.0:
        return status("queued")
    if now < 33.0:
        return status("generating")
    return completed()


async def test_wait_polls_until_completed_and_reports_each_status_change() -> None:
    time = FakeTime()
    upstream = Timeline(time, _queued_then_generating_then_completed)
    log = UpdateLog(time)
    async with make_client(upstream, time) as client:
        generation = await client.wait(GENERATION_ID, timeout=120, on_update=log)

    assert generation.status is GenerationStatus.COMPLETED
    assert generation.video_url == VIDEO_URL
    assert [update.status for _, update in log.updates if update.status_changed] == [
        GenerationStatus.QUEUED,
        GenerationStatus.GENERATING,
        GenerationStatus.COMPLETED,
    ]
    previous: GenerationStatus | None = None
    for _, update in log.updates:
        assert update.status_changed is (update.status is not previous)
        assert update.generation_id == GENERATION_ID
        previous = update.status
    assert {request.method for request in upstream.requests} == {"GET"}


async def test_wait_sends_heartbeats_at_least_every_heartbeat_interval() -> None:
    time = FakeTime()
    log = UpdateLog(time)
    async with make_client(Timeline(time, _queued_then_generating_then_completed), time) as client:
        await client.wait(GENERATION_ID, timeout=120, on_update=log)

    heartbeats = [update for _, update in log.updates if not update.status_changed]
    assert heartbeats
    assert all(update.generation is not None for update in heartbeats)
    assert log.largest_gap() <= HEARTBEAT


async def test_wait_heartbeats_continue_while_status_requests_keep_failing() -> None:
    time = FakeTime()

    def down_for_a_minute(now: float) -> Reply:
        return httpx2.Response(503, json={"message": "overloaded"}) if now < 60.0 else completed()

    log = UpdateLog(time)
    client = make_client(Timeline(time, down_for_a_minute), time, retry_policy=RetryPolicy(max_attempts=1))
    async with client:
        generation = await client.wait(GENERATION_ID, timeout=120, on_update=log)

    assert generation.status is GenerationStatus.COMPLETED
    assert log.largest_gap() <= HEARTBEAT
    # Before any status request succeeded, a heartbeat carries no generation.
    assert log.updates[0][1].generation is None


async def test_wait_heartbeats_continue_while_a_status_request_waits_out_retry_after() -> None:
    time = FakeTime()
    upstream = Upstream(
        status("queued"),
        httpx2.Response(429, json={"message": "Too many requests"}, headers={"Retry-After": "20"}),
        status("generating"),
        completed(),
        time=time,
    )
    log = UpdateLog(time)
    async with make_client(upstream, time) as client:
        await client.wait(GENERATION_ID, timeout=120, on_update=log)

    rate_limited_at, next_request_at = upstream.request_times[1:3]
    assert next_request_at - rate_limited_at >= 20.0
    assert log.largest_gap() <= HEARTBEAT


async def test_wait_never_asks_for_a_negative_sleep_after_a_slow_failed_poll() -> None:
    # A negative duration is an error for some sleeps (trio.sleep raises ValueError, and anyio.sleep uses it).
    time = FakeTime()

    def hangs_then_times_out_once(now: float) -> Reply:
        if now == 0.0:
            time.now += 30.0  # the read timeout's worth of waiting, inside the request
            return httpx2.ReadTimeout("timed out")
        return completed()

    async with make_client(Timeline(time, hangs_then_times_out_once), time) as client:
        generation = await client.wait(GENERATION_ID, timeout=120)

    assert generation.status is GenerationStatus.COMPLETED
    assert all(delay >= 0 for delay in time.sleeps), time.sleeps


async def test_wait_notices_an_on_time_generation_within_the_floor_and_with_few_requests() -> None:
    time = FakeTime()
    expectation = PollingPolicy().expectation("720p", 5)
    expected = expectation.typical

    def on_time(now: float) -> Reply:
        return completed() if now >= expected else status("generating")

    upstream = Timeline(time, on_time)
    async with make_client(upstream, time) as client:
        await client.wait(GENERATION_ID, timeout=600, expectation=expectation)

    lag = upstream.request_times[-1] - expected
    assert 0 <= lag <= PollingPolicy().floor_seconds
    # The provider's sample polls every 10 s: 0, 10, 20, 30, 40 = 5 requests for a 35 s generation.
    assert len(upstream.requests) <= 2 * 5


async def test_a_known_status_is_reported_at_once_and_the_first_look_waits_for_the_schedule() -> None:
    time = FakeTime()
    expectation = PollingPolicy().expectation("720p", 5)
    upstream = Timeline(time, _queued_then_generating_then_completed)
    log = UpdateLog(time)
    known = Generation.model_validate({"id": GENERATION_ID, "status": "queued"})
    async with make_client(upstream, time) as client:
        await client.wait(GENERATION_ID, timeout=120, on_update=log, expectation=expectation, known=known)

    first_at, first = log.updates[0]
    assert (first_at, first.status, first.status_changed) == (0.0, GenerationStatus.QUEUED, True)
    # Nothing to ask before the schedule's first look (half of the early bound): the status is known.
    assert upstream.request_times[0] == pytest.approx(PollingPolicy().hedge_fraction * expectation.early)


async def test_wait_raises_generation_failed_carrying_the_generation() -> None:
    time = FakeTime()
    upstream = Upstream(status("queued"), status("failed", error={"message": "prompt refused by moderation"}))
    async with make_client(upstream, time) as client:
        with pytest.raises(GenerationFailedError) as caught:
            await client.wait(GENERATION_ID, timeout=120)

    error = caught.value
    assert error.generation_id == GENERATION_ID
    assert isinstance(error.generation, Generation)
    assert error.generation.status is GenerationStatus.FAILED
    assert error.generation.error == "prompt refused by moderation"
    assert "prompt refused by moderation" in str(error)
    assert GENERATION_ID in str(error)
    assert_key_absent(error)


async def test_wait_timeout_carries_the_id_and_last_generation_and_cancels_nothing_upstream() -> None:
    time = FakeTime()
    upstream = Timeline(time, lambda now: status("generating"))
    async with make_client(upstream, time) as client:
        with pytest.raises(WaitTimeoutError) as caught:
            await client.wait(GENERATION_ID, timeout=60)

    error = caught.value
    assert error.generation_id == GENERATION_ID
    assert error.generation is not None
    assert error.generation.status is GenerationStatus.GENERATING
    assert GENERATION_ID in str(error)
    assert time.now <= 60.0 + 1e-9
    assert {request.method for request in upstream.requests} == {"GET"}
    assert all(request.url.params["generation_id"] == GENERATION_ID for request in upstream.requests)
    assert_key_absent(error)


@pytest.mark.parametrize(
    "fault",
    [
        httpx2.Response(503, json={"message": "Service Unavailable"}),
        connect_error(),
        httpx2.Response(200, text=CLOUDFLARE_PAGE, headers={"Content-Type": "text/html"}),
        httpx2.Response(429, json={"message": "Too many requests"}, headers={"Retry-After": "3"}),
    ],
    ids=["503", "connect-error", "html-200", "429-retry-after"],
)
async def test_transient_fault_during_wait_does_not_end_it(fault: Reply) -> None:
    time = FakeTime()
    upstream = Upstream(status("queued"), fault, status("generating"), completed())
    # One attempt per status request, so the fault reaches the wait itself rather than the request's own retries.
    async with make_client(upstream, time, retry_policy=RetryPolicy(max_attempts=1)) as client:
        generation = await client.wait(GENERATION_ID, timeout=120)

    assert generation.status is GenerationStatus.COMPLETED
    assert upstream.methods == ["GET"] * 4


async def test_rate_limit_during_wait_is_retried_after_its_retry_after() -> None:
    time = FakeTime()
    upstream = Upstream(
        status("queued"),
        httpx2.Response(429, json={"message": "Too many requests"}, headers={"Retry-After": "7"}),
        completed(),
        time=time,
    )
    async with make_client(upstream, time) as client:
        generation = await client.wait(GENERATION_ID, timeout=120)

    assert generation.status is GenerationStatus.COMPLETED
    rate_limited_at, next_request_at = upstream.request_times[1:3]
    assert next_request_at - rate_limited_at >= 7.0


async def test_authentication_error_during_wait_ends_it() -> None:
    time = FakeTime()
    upstream = Upstream(status("queued"), httpx2.Response(401, json={"message": "Invalid API key"}))
    async with make_client(upstream, time) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.wait(GENERATION_ID, timeout=120)

    assert caught.value.status_code == 401
    assert len(upstream.requests) == 2
    assert_key_absent(caught.value)


# --- create is never sent twice when it may have been accepted -----------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        httpx2.ReadTimeout("timed out"),
        httpx2.RemoteProtocolError("Server disconnected without sending a response."),
        httpx2.Response(500, json={"message": "Internal Server Error"}),
        httpx2.Response(502, text=CLOUDFLARE_PAGE, headers={"Content-Type": "text/html"}),
        httpx2.Response(201, text=CLOUDFLARE_PAGE, headers={"Content-Type": "text/html"}),
        httpx2.Response(200, text=""),
        httpx2.Response(201, json={"status": "queued", "meta": {"usage": {"tokens_used": 840000}}}),
        httpx2.Response(201, json=["not", "an", "object"]),
    ],
    ids=["read-timeout", "disconnected", "500", "502-html", "201-html", "200-empty", "201-no-id", "201-list"],
)
async def test_create_is_sent_once_when_its_outcome_is_unknown(reply: Reply) -> None:
    time = FakeTime()
    upstream = Upstream(reply)
    async with make_client(upstream, time) as client:
        with pytest.raises(CreateOutcomeUnknownError) as caught:
            await client.create(REQUEST)

    assert upstream.methods == ["POST"]
    assert time.sleeps == []
    assert "Do not simply create it again" in str(caught.value)
    assert_key_absent(caught.value)


async def test_create_is_retried_after_a_connect_error_and_then_succeeds() -> None:
    time = FakeTime()
    upstream = Upstream(connect_error(), created())
    async with make_client(upstream, time) as client:
        generation = await client.create(REQUEST)

    assert generation.id == GENERATION_ID
    assert upstream.methods == ["POST", "POST"]
    assert upstream.requests[0].content == upstream.requests[1].content
    [delay] = time.sleeps
    assert 0.0 <= delay <= RetryPolicy().base_delay


@pytest.mark.parametrize("fault", [httpx2.ConnectTimeout("connect timed out"), httpx2.PoolTimeout("no pool slot")])
async def test_create_is_retried_after_other_never_sent_faults(fault: Exception) -> None:
    upstream = Upstream(fault, created())
    async with make_client(upstream, FakeTime()) as client:
        generation = await client.create(REQUEST)

    assert generation.id == GENERATION_ID
    assert upstream.methods == ["POST", "POST"]


async def test_create_that_never_connects_raises_a_connection_error_not_outcome_unknown() -> None:
    upstream = Upstream(*(connect_error() for _ in range(4)))
    async with make_client(upstream, FakeTime(), retry_policy=RetryPolicy(max_attempts=4)) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.create(REQUEST)

    assert not isinstance(caught.value, CreateOutcomeUnknownError)
    assert upstream.methods == ["POST"] * 4
    assert_key_absent(caught.value)


async def test_rate_limited_create_is_retried_after_retry_after() -> None:
    time = FakeTime()
    upstream = Upstream(
        httpx2.Response(429, json={"message": "Too many requests"}, headers={"Retry-After": "7"}),
        created(),
    )
    async with make_client(upstream, time) as client:
        generation = await client.create(REQUEST)

    assert generation.id == GENERATION_ID
    assert upstream.methods == ["POST", "POST"]
    assert time.sleeps == [7.0]


async def test_rate_limited_create_gives_up_after_max_attempts_with_rate_limit_error() -> None:
    time = FakeTime()
    upstream = Upstream(*(httpx2.Response(429, headers={"Retry-After": "2"}) for _ in range(3)))
    async with make_client(upstream, time, retry_policy=RetryPolicy(max_attempts=3)) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.create(REQUEST)

    assert caught.value.retry_after == 2.0
    assert upstream.methods == ["POST"] * 3
    assert time.sleeps == [2.0, 2.0]
    assert_key_absent(caught.value)


async def test_get_is_retried_on_503_up_to_max_attempts_then_raises() -> None:
    time = FakeTime()
    policy = RetryPolicy(max_attempts=3)
    upstream = Upstream(*(httpx2.Response(503, json={"message": "Service Unavailable"}) for _ in range(3)))
    async with make_client(upstream, time, retry_policy=policy) as client:
        with pytest.raises(UpstreamServerError) as caught:
            await client.get(GENERATION_ID)

    assert caught.value.status_code == 503
    assert upstream.methods == ["GET"] * 3
    assert len(time.sleeps) == 2
    for attempt, delay in enumerate(time.sleeps, start=1):
        assert 0.0 <= delay <= min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    assert_key_absent(caught.value)


async def test_get_is_retried_after_a_read_timeout() -> None:
    upstream = Upstream(httpx2.ReadTimeout("timed out"), status("generating"))
    async with make_client(upstream, FakeTime()) as client:
        generation = await client.get(GENERATION_ID)

    assert generation.status is GenerationStatus.GENERATING
    assert upstream.methods == ["GET", "GET"]


async def test_bad_request_with_a_message_list_is_not_retried() -> None:
    time = FakeTime()
    messages = ["prompt should not be empty", "duration must be one of 5, 8"]
    upstream = Upstream(httpx2.Response(400, json={"statusCode": 400, "message": messages}))
    async with make_client(upstream, time) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.create(REQUEST)

    assert upstream.methods == ["POST"]
    assert time.sleeps == []
    assert caught.value.status_code == 400
    for message in messages:
        assert message in str(caught.value)
    assert_key_absent(caught.value)


# --- the key --------------------------------------------------------------------------------------------------------


OPERATIONS: dict[str, Callable[[PixVerseClient], Awaitable[object]]] = {
    "create": lambda client: client.create(REQUEST),
    "get": lambda client: client.get(GENERATION_ID),
    "wait": lambda client: client.wait(GENERATION_ID, timeout=60),
}


@pytest.mark.parametrize("api_key", [None, "", "   "])
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_missing_key_raises_before_any_request_is_sent(api_key: str | None, operation: str) -> None:
    upstream = Upstream()
    async with make_client(upstream, FakeTime(), api_key=api_key) as client:
        with pytest.raises(MissingAPIKeyError) as caught:
            await OPERATIONS[operation](client)

    assert upstream.requests == []
    assert "AIMLAPI_API_KEY" in str(caught.value)


async def test_repr_of_the_client_never_contains_the_key() -> None:
    async with make_client(Upstream(), FakeTime()) as client:
        text = repr(client)

    assert API_KEY not in text
    assert BASE_URL in text


# --- lifecycle ------------------------------------------------------------------------------------------------------


class RecordingTransport(httpx2.MockTransport):
    """A MockTransport that remembers whether it was closed."""

    closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_client_works_as_an_async_context_manager_and_closes_its_pool() -> None:
    upstream = Upstream(created())
    transport = RecordingTransport(upstream)
    time = FakeTime()
    client = PixVerseClient(api_key=API_KEY, base_url=BASE_URL, transport=transport, sleep=time.sleep, clock=time.clock)

    async with client as entered:
        assert entered is client
        generation = await entered.create(REQUEST)
        assert not transport.closed

    assert generation.id == GENERATION_ID
    assert transport.closed


# --- request slots --------------------------------------------------------------------------------------------------


class HeldUpstream:
    """Answers status requests only when released, and counts how many are in flight at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.requests = 0
        self.release = anyio.Event()

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await self.release.wait()
        self.in_flight -= 1
        return created() if request.method == "POST" else status("generating")


async def test_requests_in_flight_are_bounded_by_max_connections_and_the_rest_wait_their_turn() -> None:
    upstream = HeldUpstream()
    client = make_client(upstream, FakeTime(), max_connections=2)  # type: ignore[arg-type]
    async with client, anyio.create_task_group() as tasks:
        for _ in range(6):
            tasks.start_soon(client.get, GENERATION_ID)
        await wait_all_tasks_blocked()
        assert upstream.in_flight == 2
        upstream.release.set()

    assert upstream.requests == 6
    assert upstream.most_in_flight == 2


async def test_a_create_that_gets_no_request_slot_in_its_time_is_never_sent_and_says_so() -> None:
    upstream = HeldUpstream()
    client = PixVerseClient(
        api_key=API_KEY,
        base_url=BASE_URL,
        transport=httpx2.MockTransport(upstream),  # type: ignore[arg-type]
        retry_policy=RetryPolicy(max_attempts=1),
        max_connections=1,
    )
    async with client, anyio.create_task_group() as tasks:
        tasks.start_soon(client.get, GENERATION_ID)
        await wait_all_tasks_blocked()
        with pytest.raises(APIConnectionError) as caught:
            await client.create(REQUEST, timeout=0.05)
        upstream.release.set()

    assert not isinstance(caught.value, CreateOutcomeUnknownError)
    assert not caught.value.request_sent
    assert upstream.requests == 1  # only the status request that held the slot
