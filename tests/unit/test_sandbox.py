"""The sandbox over real HTTP: the API it emulates, the faults it injects, the counters and the video it serves."""

from __future__ import annotations

import asyncio
import importlib.resources
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2
import pytest

import pixverse_mcp.sandbox
from pixverse_mcp.sandbox import (
    FAIL_MARKER,
    FAULTS,
    MODEL,
    PATHS,
    SANDBOX_API_KEY,
    RunningSandbox,
    SandboxConfig,
    create_app,
    stand_in_video,
)

PATH = PATHS[0]
SLOW_SECONDS = 0.3
RETRY_AFTER_SECONDS = 2
# Long enough that a generation stays pending for the whole test unless `finish` moves its clock.
PENDING_SECONDS = 600.0
# What a client sees when the sandbox resets the connection.
CONNECTION_DROPPED = (httpx2.ReadError, httpx2.RemoteProtocolError)
# The module's sandbox (`shared_sandbox`, reset for each test by `running`).
SANDBOX = SandboxConfig(
    queued_seconds=PENDING_SECONDS,
    generating_seconds=PENDING_SECONDS,
    slow_seconds=SLOW_SECONDS,
    retry_after_seconds=RETRY_AFTER_SECONDS,
)


@pytest.fixture
def running(shared_sandbox: RunningSandbox) -> RunningSandbox:
    """The module's sandbox, reset: no generations, no queued faults, zero counters."""
    shared_sandbox.state.reset()
    return shared_sandbox


@pytest.fixture
def api(running: RunningSandbox) -> Iterator[httpx2.Client]:
    """A client with the sandbox's key; `timeout` generous, as no test measures an upper bound tightly."""
    headers = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}
    with httpx2.Client(base_url=running.url, headers=headers, timeout=10) as client:
        yield client


def create(api: httpx2.Client, prompt: str = "a red fox running through snow", **fields: Any) -> httpx2.Response:
    return api.post(PATH, json={"model": MODEL, "prompt": prompt, **fields})


def status(api: httpx2.Client, generation_id: str) -> httpx2.Response:
    return api.get(PATH, params={"generation_id": generation_id})


def finish(running: RunningSandbox, generation_id: str) -> None:
    """Move the generation's clock past the queued and generating phases."""
    running.state.generations[generation_id].created -= 3 * PENDING_SECONDS


def finished_status(api: httpx2.Client, running: RunningSandbox, prompt: str) -> dict[str, Any]:
    generation_id = create(api, prompt).json()["id"]
    finish(running, generation_id)
    body: dict[str, Any] = status(api, generation_id).json()
    return body


def only_generation_id(running: RunningSandbox) -> str:
    (generation_id,) = running.state.generations
    return generation_id


# The API it emulates


def test_a_create_answers_201_with_an_opaque_id_queued_and_usage(api: httpx2.Client) -> None:
    response = create(api)

    assert response.status_code == 201
    body = response.json()
    assert body["id"].endswith(f":{MODEL}")
    assert body["status"] == "queued"
    assert body["meta"]["usage"]["tokens_used"] > 0


def test_both_paths_serve_the_same_generations(api: httpx2.Client) -> None:
    generation_id = api.post(PATHS[1], json={"model": MODEL, "prompt": "a fox"}).json()["id"]

    assert api.get(PATHS[0], params={"generation_id": generation_id}).json()["status"] == "queued"


def test_a_generation_goes_queued_then_generating_then_completed() -> None:
    config = SandboxConfig(queued_seconds=0.5, generating_seconds=0.5)
    headers = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}
    with RunningSandbox(config) as running, httpx2.Client(base_url=running.url, headers=headers) as api:
        generation_id = create(api).json()["id"]
        seen = [status(api, generation_id).json()["status"]]
        deadline = time.monotonic() + 10
        while seen[-1] != "completed" and time.monotonic() < deadline:
            time.sleep(0.02)
            seen.append(status(api, generation_id).json()["status"])

    assert seen[0] == "queued"
    assert "generating" in seen
    assert seen[-1] == "completed"


def test_a_completed_generation_has_a_video_with_the_real_file_size(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    body = finished_status(api, running, "a fox")

    assert body["status"] == "completed"
    assert body["video"]["url"].startswith(f"{running.url}/_sandbox/videos/")
    assert body["video"]["content_type"] == "video/mp4"
    assert body["video"]["file_size"] == len(stand_in_video())


def test_a_missing_or_wrong_key_is_refused_with_401_and_counted(running: RunningSandbox) -> None:
    with httpx2.Client(base_url=running.url) as anonymous:
        unkeyed = anonymous.post(PATH, json={"model": MODEL, "prompt": "a fox"})
        wrong = anonymous.get(PATH, params={"generation_id": "x"}, headers={"Authorization": "Bearer nope"})

    assert (unkeyed.status_code, wrong.status_code) == (401, 401)
    assert "valid API key" in unkeyed.json()["message"]
    assert running.state.stats() == {"creates": 1, "accepted": 0, "status_requests": 1, "rejected": 2}


def test_an_invalid_body_is_refused_with_400_and_every_problem(api: httpx2.Client, running: RunningSandbox) -> None:
    response = api.post(PATH, json={"model": MODEL, "prompt": "", "duration": "5", "colour": "red"})
    unknown_model = api.post(PATH, json={"model": "other", "prompt": "a fox"})

    assert response.status_code == 400
    assert response.json()["message"] == [
        "property colour should not exist",
        "prompt should not be empty",
        "duration must be one of the following values: 5, 8",
    ]
    assert unknown_model.json()["message"][0].startswith("model must be one of the following values: ")
    assert running.state.stats() == {"creates": 2, "accepted": 0, "status_requests": 0, "rejected": 2}


def test_1080p_refuses_8_seconds(api: httpx2.Client) -> None:
    response = create(api, resolution="1080p", duration=8)

    assert response.status_code == 400
    assert response.json()["message"] == ["1080p does not support 8 second videos"]


def test_a_status_without_generation_id_is_400(api: httpx2.Client) -> None:
    response = api.get(PATH)

    assert response.status_code == 400
    assert response.json()["message"] == ["generation_id should not be empty"]


def test_a_status_of_an_unknown_id_is_404(api: httpx2.Client) -> None:
    assert status(api, f"nope:{MODEL}").status_code == 404


# The video


def test_the_video_is_served_as_video_mp4_starting_with_an_ftyp_box(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    url = finished_status(api, running, "a fox")["video"]["url"]

    response = api.get(url)

    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"
    assert response.content == stand_in_video()


def test_the_video_is_a_small_h264_mp4_with_its_index_first() -> None:
    video = stand_in_video()

    assert len(video) < 30_000
    assert b"avc1" in video
    # `+faststart`: the `moov` index comes before the media data, so players can start before the end arrives.
    assert video.index(b"moov") < video.index(b"mdat")


def test_the_video_decodes_to_twelve_different_frames() -> None:
    import av  # the preview extra, part of the test extra

    clip = importlib.resources.files("pixverse_mcp") / "assets" / "sandbox.mp4"
    with importlib.resources.as_file(clip) as path, av.open(str(path)) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]

    assert len(frames) == 12
    assert frames[0].size == (160, 90)
    assert len({frame.tobytes() for frame in frames}) == 12


@pytest.mark.parametrize(
    ("range_header", "status_code", "content_range", "expected"),
    [
        ("bytes=0-9", 206, "bytes 0-9/{size}", slice(0, 10)),
        ("bytes=100-", 206, "bytes 100-{last}/{size}", slice(100, None)),
        ("bytes=-16", 206, "bytes {tail}-{last}/{size}", slice(-16, None)),
        ("bytes=99999999-", 416, "bytes */{size}", slice(0, 0)),
        ("bytes=0-1,5-6", 200, None, slice(None)),
    ],
)
def test_the_video_honours_a_single_byte_range(
    api: httpx2.Client,
    running: RunningSandbox,
    range_header: str,
    status_code: int,
    content_range: str | None,
    expected: slice,
) -> None:
    video = stand_in_video()
    url = finished_status(api, running, "a fox")["video"]["url"]

    response = api.get(url, headers={"Range": range_header})

    assert response.status_code == status_code
    figures = {"size": len(video), "last": len(video) - 1, "tail": len(video) - 16}
    assert response.headers.get("content-range") == (content_range and content_range.format(**figures))
    assert response.content == video[expected]


# Faults per generation


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (f"a fox {FAIL_MARKER}", {"status": "error", "error": {"message": "Generation failed"}}),
        ("a fox [sandbox:fault=fail]", {"status": "error", "error": {"message": "Generation failed"}}),
        (
            "a fox [sandbox:fault=fail_string]",
            {"status": "failed", "error": "Generation failed: the prompt was rejected"},
        ),
        ("a fox [sandbox:fault=no_video_url]", {"status": "completed"}),
    ],
)
def test_an_outcome_directive_changes_how_the_generation_ends(
    api: httpx2.Client, running: RunningSandbox, prompt: str, expected: dict[str, Any]
) -> None:
    body = finished_status(api, running, prompt)

    assert {key: value for key, value in body.items() if key != "id"} == expected


def test_the_succeeded_directive_ends_with_the_old_spelling_and_the_video(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    body = finished_status(api, running, "a fox [sandbox:fault=succeeded]")

    assert body["status"] == "succeeded"
    assert body["video"]["file_size"] == len(stand_in_video())


def test_the_unknown_status_directive_reports_paused_until_it_completes(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    generation_id = create(api, "a fox [sandbox:fault=unknown_status]").json()["id"]
    pending = status(api, generation_id).json()["status"]
    finish(running, generation_id)

    assert pending == "paused"
    assert status(api, generation_id).json()["status"] == "completed"


def test_the_never_completes_directive_stays_generating(api: httpx2.Client, running: RunningSandbox) -> None:
    body = finished_status(api, running, "a fox [sandbox:fault=never_completes]")

    assert body == {"id": body["id"], "status": "generating"}


def test_a_response_directive_with_a_count_faults_that_many_status_responses(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    generation_id = create(api, "a fox [sandbox:fault=server_error:2]").json()["id"]

    codes = [status(api, generation_id).status_code for _ in range(3)]

    assert codes == [500, 500, 200]


def test_a_response_directive_without_a_count_faults_every_status_response(api: httpx2.Client) -> None:
    generation_id = create(api, "a fox [sandbox:fault=gateway_502]").json()["id"]

    codes = [status(api, generation_id).status_code for _ in range(4)]

    assert codes == [502] * 4


def test_response_directives_chain_in_order(api: httpx2.Client) -> None:
    generation_id = create(api, "a fox [sandbox:fault=rate_limited:1][sandbox:fault=html_200:1]").json()["id"]

    codes = [status(api, generation_id).status_code for _ in range(3)]

    assert codes == [429, 200, 200]


def test_a_response_directive_leaves_the_create_and_other_generations_alone(api: httpx2.Client) -> None:
    faulted = create(api, "a fox [sandbox:fault=server_error]")
    other = create(api, "a cat").json()["id"]

    assert faulted.status_code == 201
    assert status(api, other).status_code == 200


def test_the_slow_directive_delays_each_status_response(api: httpx2.Client) -> None:
    generation_id = create(api, "a fox [sandbox:fault=slow]").json()["id"]

    started = time.monotonic()
    response = status(api, generation_id)

    assert time.monotonic() - started >= SLOW_SECONDS
    assert response.json()["status"] == "queued"


def test_the_reset_directive_drops_status_requests(api: httpx2.Client) -> None:
    generation_id = create(api, "a fox [sandbox:fault=reset:1]").json()["id"]

    with pytest.raises(CONNECTION_DROPPED):
        status(api, generation_id)
    assert status(api, generation_id).json()["status"] == "queued"


def test_the_accepted_500_directive_stores_the_generation_but_answers_500(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    response = create(api, "a fox [sandbox:fault=accepted_500]")

    assert response.status_code == 500
    assert running.state.stats()["accepted"] == 1
    generation_id = only_generation_id(running)
    finish(running, generation_id)
    assert status(api, generation_id).json()["status"] == "completed"


def test_the_accepted_reset_directive_stores_the_generation_but_drops_the_connection(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    with pytest.raises(CONNECTION_DROPPED):
        create(api, "a fox [sandbox:fault=accepted_reset]")

    assert running.state.stats()["creates"] == 1
    assert running.state.stats()["accepted"] == 1
    generation_id = only_generation_id(running)
    finish(running, generation_id)
    assert status(api, generation_id).json()["status"] == "completed"


@pytest.mark.parametrize(
    ("prompt", "problem"),
    [
        ("a fox [sandbox:fault=nosuch]", "unknown fault 'nosuch'"),
        ("a fox [sandbox:fault=fail:2]", "takes no count"),
        ("a fox [sandbox:fault=server_error:0]", "at least 1"),
        ("a fox [sandbox:fault=server_error:two]", "whole number"),
        ("a fox [sandbox:fault=fail][sandbox:fault=succeeded]", "one outcome"),
    ],
)
def test_a_bad_directive_is_refused_with_400_and_nothing_stored(
    api: httpx2.Client, running: RunningSandbox, prompt: str, problem: str
) -> None:
    response = create(api, prompt)

    assert response.status_code == 400
    assert problem in response.json()["message"][0]
    assert running.state.stats() == {"creates": 1, "accepted": 0, "status_requests": 0, "rejected": 1}


# Faults per request


def _retry_after_is_the_configured_seconds(response: httpx2.Response) -> bool:
    return response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)


def _retry_after_is_a_date_the_configured_seconds_ahead(response: httpx2.Response) -> bool:
    when = parsedate_to_datetime(response.headers["retry-after"])
    now = datetime.now(UTC)
    # Whole seconds in the header: at least the configured delay ahead, and not absurdly more.
    return now + timedelta(seconds=RETRY_AFTER_SECONDS - 1) <= when <= now + timedelta(seconds=RETRY_AFTER_SECONDS + 5)


def _is_html(response: httpx2.Response) -> bool:
    return response.headers["content-type"].startswith("text/html") and response.text.lstrip().startswith("<")


def _json_error_of_its_status(response: httpx2.Response) -> bool:
    return bool(response.json()["statusCode"] == response.status_code)


def _json_without_id_or_status(response: httpx2.Response) -> bool:
    body = response.json()
    return isinstance(body, dict) and "id" not in body and "status" not in body


def _the_bad_key_body(response: httpx2.Response) -> bool:
    return "valid API key" in response.json()["message"]


def _the_out_of_credits_body(response: httpx2.Response) -> bool:
    return "run out of credits" in response.json()["message"]


RESPONSE_FAULT_CASES = [
    ("gateway_502", 502, _is_html),
    ("server_error", 500, _json_error_of_its_status),
    ("unavailable", 503, _retry_after_is_the_configured_seconds),
    ("rate_limited", 429, _retry_after_is_the_configured_seconds),
    ("rate_limited_date", 429, _retry_after_is_a_date_the_configured_seconds_ahead),
    ("html_200", 200, _is_html),
    ("incomplete_json", 200, _json_without_id_or_status),
    ("unauthorized", 401, _the_bad_key_body),
    ("no_credits", 403, _the_out_of_credits_body),
]


@pytest.mark.parametrize(("fault", "status_code", "looks_right"), RESPONSE_FAULT_CASES)
def test_a_queued_response_fault_answers_one_status_request(
    api: httpx2.Client, running: RunningSandbox, fault: str, status_code: int, looks_right: Any
) -> None:
    generation_id = create(api).json()["id"]
    api.post("/_sandbox/faults", json={"fault": fault, "method": "GET"}).raise_for_status()

    faulted = status(api, generation_id)
    after = status(api, generation_id)

    assert faulted.status_code == status_code
    assert looks_right(faulted)
    assert after.json()["status"] == "queued"


@pytest.mark.parametrize(("fault", "status_code", "looks_right"), RESPONSE_FAULT_CASES)
def test_a_queued_response_fault_answers_a_create_without_storing_it(
    api: httpx2.Client, running: RunningSandbox, fault: str, status_code: int, looks_right: Any
) -> None:
    running.state.inject(fault, method="POST")

    faulted = create(api)

    assert faulted.status_code == status_code
    assert looks_right(faulted)
    assert running.state.stats() == {"creates": 1, "accepted": 0, "status_requests": 0, "rejected": 0}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_queued_reset_drops_the_connection_and_stores_nothing(
    api: httpx2.Client, running: RunningSandbox, method: str
) -> None:
    running.state.inject("reset", method=method)

    with pytest.raises(CONNECTION_DROPPED):
        create(api) if method == "POST" else status(api, f"any:{MODEL}")

    assert running.state.stats()["accepted"] == 0
    assert create(api).status_code == 201


def test_a_reset_in_process_raises_connection_reset_error() -> None:
    app = create_app()
    app.state.sandbox.inject("reset")
    transport = httpx2.ASGITransport(app=app)

    async def scenario() -> None:
        async with httpx2.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            await client.get(PATH, params={"generation_id": "x"})

    with pytest.raises(ConnectionResetError):
        asyncio.run(scenario())


def test_a_queued_accepted_500_stores_the_generation_and_answers_500(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    api.post("/_sandbox/faults", json={"fault": "accepted_500"}).raise_for_status()

    response = create(api)

    assert response.status_code == 500
    assert running.state.stats() == {"creates": 1, "accepted": 1, "status_requests": 0, "rejected": 0}
    generation_id = only_generation_id(running)
    finish(running, generation_id)
    assert status(api, generation_id).json()["status"] == "completed"


def test_a_queued_accepted_reset_stores_the_generation_and_drops_the_connection(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    running.state.inject("accepted_reset")

    with pytest.raises(CONNECTION_DROPPED):
        create(api)

    assert running.state.stats() == {"creates": 1, "accepted": 1, "status_requests": 0, "rejected": 0}


def test_a_queued_slow_fault_delays_the_normal_answer(api: httpx2.Client, running: RunningSandbox) -> None:
    running.state.inject("slow", method="POST")

    started = time.monotonic()
    response = create(api)

    assert time.monotonic() - started >= SLOW_SECONDS
    assert response.status_code == 201
    assert running.state.stats()["accepted"] == 1


def test_a_queued_slow_fault_can_carry_its_own_delay(api: httpx2.Client) -> None:
    api.post("/_sandbox/faults", json={"fault": "slow", "method": "GET", "seconds": 0.6}).raise_for_status()

    started = time.monotonic()
    response = api.get(PATH, params={"generation_id": f"nope:{MODEL}"})

    assert time.monotonic() - started >= 0.6
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("fail", {"status": "error", "error": {"message": "Generation failed"}}),
        ("fail_string", {"status": "failed", "error": "Generation failed: the prompt was rejected"}),
        ("no_video_url", {"status": "completed"}),
        ("unknown_status", {"status": "paused"}),
        ("never_completes", {"status": "generating"}),
    ],
)
def test_a_queued_outcome_fault_shapes_one_status_response(
    api: httpx2.Client, running: RunningSandbox, fault: str, expected: dict[str, Any]
) -> None:
    generation_id = create(api).json()["id"]
    running.state.inject(fault, method="GET")

    faulted = status(api, generation_id).json()

    assert {key: value for key, value in faulted.items() if key != "id"} == expected
    assert status(api, generation_id).json()["status"] == "queued"


def test_a_queued_succeeded_reports_the_old_spelling_with_the_video(
    api: httpx2.Client, running: RunningSandbox
) -> None:
    generation_id = create(api).json()["id"]
    running.state.inject("succeeded", method="GET")

    faulted = status(api, generation_id).json()

    assert faulted["status"] == "succeeded"
    assert faulted["video"]["url"].startswith(f"{running.url}/_sandbox/videos/")


def test_a_queued_outcome_fault_on_a_create_shapes_that_generation(api: httpx2.Client, running: RunningSandbox) -> None:
    running.state.inject("never_completes", method="POST")

    faulted = create(api).json()["id"]
    normal = create(api).json()["id"]
    finish(running, faulted)
    finish(running, normal)

    assert status(api, faulted).json()["status"] == "generating"
    assert status(api, normal).json()["status"] == "completed"


# The fault queue


def test_a_queued_fault_counts_down_and_then_is_gone(api: httpx2.Client) -> None:
    generation_id = create(api).json()["id"]
    api.post("/_sandbox/faults", json={"fault": "server_error", "method": "GET", "count": 2}).raise_for_status()

    first = status(api, generation_id).status_code
    left = api.get("/_sandbox/faults").json()
    second = status(api, generation_id).status_code
    third = status(api, generation_id).status_code

    assert (first, second, third) == (500, 500, 200)
    assert left == {
        "queued": [{"fault": "server_error", "method": "GET", "remaining": 1, "seconds": None}],
        "used": 1,
    }
    assert api.get("/_sandbox/faults").json() == {"queued": [], "used": 2}


def test_a_queued_fault_applies_only_to_its_method(api: httpx2.Client, running: RunningSandbox) -> None:
    running.state.inject("server_error", method="GET")

    created = create(api)

    assert created.status_code == 201
    assert status(api, created.json()["id"]).status_code == 500


def test_a_queued_fault_without_a_method_applies_to_either(api: httpx2.Client, running: RunningSandbox) -> None:
    running.state.inject("gateway_502", count=2)

    assert create(api).status_code == 502
    assert status(api, f"nope:{MODEL}").status_code == 502
    assert create(api).status_code == 201


def test_queued_faults_are_used_in_the_order_they_were_queued(api: httpx2.Client, running: RunningSandbox) -> None:
    running.state.inject("rate_limited", method="POST")
    running.state.inject("no_credits", method="POST")

    assert [create(api).status_code for _ in range(3)] == [429, 403, 201]


def test_delete_clears_the_queued_faults(api: httpx2.Client, running: RunningSandbox) -> None:
    running.state.inject("server_error", count=5)

    cleared = api.delete("/_sandbox/faults")

    assert cleared.json()["queued"] == []
    assert create(api).status_code == 201


@pytest.mark.parametrize(
    ("request_body", "problem"),
    [
        ({"fault": "nosuch"}, "unknown fault"),
        ({"fault": "server_error", "method": "PUT"}, "method"),
        ({"fault": "server_error", "count": 0}, "count"),
        ({"fault": "server_error", "count": "2"}, "count"),
        ({"fault": "accepted_500", "method": "GET"}, "POST"),
        ({"fault": "server_error", "seconds": 1}, "slow"),
        ({"fault": "slow", "seconds": -1}, "negative"),
        ({"fault": "slow", "delay": 1}, "unknown field"),
        (["slow"], "JSON object"),
    ],
)
def test_a_bad_fault_request_is_refused_with_400_and_nothing_queued(
    api: httpx2.Client, request_body: Any, problem: str
) -> None:
    response = api.post("/_sandbox/faults", json=request_body)

    assert response.status_code == 400
    assert problem in response.json()["message"]
    assert api.get("/_sandbox/faults").json()["queued"] == []


def test_a_queued_response_fault_answers_before_the_key_is_checked(running: RunningSandbox) -> None:
    running.state.inject("server_error")

    with httpx2.Client(base_url=running.url) as anonymous:
        faulted = anonymous.get(PATH, params={"generation_id": "x"})
        refused = anonymous.get(PATH, params={"generation_id": "x"})

    assert (faulted.status_code, refused.status_code) == (500, 401)
    assert running.state.stats()["rejected"] == 1


def test_the_docstring_table_names_every_fault() -> None:
    doc = pixverse_mcp.sandbox.__doc__ or ""

    assert [fault for fault in sorted(FAULTS) if f"| `{fault}`" not in doc] == []


# Counters and reset


def test_the_counters_count_faulted_requests(api: httpx2.Client, running: RunningSandbox) -> None:
    running.state.inject("server_error", method="POST")
    running.state.inject("accepted_500")
    running.state.inject("gateway_502", method="GET")

    create(api)
    create(api)
    generation_id = create(api).json()["id"]
    status(api, generation_id)
    status(api, generation_id)

    assert api.get("/_sandbox/stats").json() == {"creates": 3, "accepted": 2, "status_requests": 2, "rejected": 0}


def test_reset_forgets_generations_counters_and_queued_faults(api: httpx2.Client, running: RunningSandbox) -> None:
    generation_id = create(api).json()["id"]
    running.state.inject("server_error", count=3)

    reset = api.post("/_sandbox/reset")

    assert reset.json() == {"creates": 0, "accepted": 0, "status_requests": 0, "rejected": 0}
    assert api.get("/_sandbox/faults").json() == {"queued": [], "used": 0}
    assert status(api, generation_id).status_code == 404
