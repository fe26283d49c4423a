"""The hostile upstream (`tests/hostile_upstream.py`) does on the wire what it says: each fault, seen by plain httpx.

Other tests trust it to misbehave exactly as asked; these prove it, fast (short timeouts, small sizes, no MCP).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, get_args

import av
import httpx2
import pytest

from tests.hostile_upstream import (
    API_PATHS,
    DEFAULT_API_KEY,
    LONE_SURROGATE,
    METADATA_URL,
    MODEL,
    HostileUpstream,
    RecordedRequest,
    Reply,
    Streamed,
    SurrogateField,
    UnreadableKind,
    deep_json,
    disconnect,
    download_as_html,
    echo_key_in_error,
    failed_with_huge_error,
    gzip_lie,
    hang,
    html_page,
    huge_generation_id,
    huge_json,
    json_reply,
    key_in_video_url,
    non_utf8_body,
    other_generation_status,
    redirect_loop,
    redirect_to,
    reset,
    slow_download,
    stand_in_video,
    surrogate_json,
    unreadable_created,
    write_huge_frame_video,
)

CREATE = API_PATHS[0]
VENDOR = API_PATHS[1]
BODY = {"model": MODEL, "prompt": "a red fox running through snow"}
# Every answer of a loopback server comes in milliseconds: a wait this long means a bug, not a slow machine.
TIMEOUT = httpx2.Timeout(5.0)


@pytest.fixture
def up() -> Iterator[HostileUpstream]:
    """A fresh hostile upstream, stopped (and checked for responder errors) after the test."""
    with HostileUpstream() as upstream:
        yield upstream


def api(up: HostileUpstream, timeout: httpx2.Timeout = TIMEOUT) -> httpx2.Client:
    """A client for the API side, carrying the accepted key, following no redirect (like ours)."""
    return httpx2.Client(base_url=up.url, headers={"Authorization": f"Bearer {up.api_key}"}, timeout=timeout)


def status_of(client: httpx2.Client, generation_id: str = f"abc:{MODEL}") -> httpx2.Response:
    """One status request for `generation_id`."""
    return client.get(CREATE, params={"generation_id": generation_id})


def read_until_closed(sock: socket.socket, into: bytearray) -> None:
    """Append everything `sock` receives to `into` until the peer closes (or resets: that raises)."""
    while chunk := sock.recv(65536):
        into += chunk


def test_default_flow_behaves_like_the_real_api(up: HostileUpstream) -> None:
    with api(up) as client, httpx2.Client(timeout=TIMEOUT, follow_redirects=True) as cdn:
        created = client.post(CREATE, json=BODY)
        assert created.status_code == 201
        generation = created.json()
        assert generation["id"].endswith(f":{MODEL}")
        assert generation["status"] == "queued"
        assert generation["meta"] == {"usage": {"credits_used": 840_000}}

        status = status_of(client, generation["id"])
        assert status.status_code == 200
        finished = status.json()
        assert finished["id"] == generation["id"]
        assert finished["status"] == "completed"
        video = finished["video"]
        assert video["url"] == f"{up.url}/cdn/{generation['id'].split(':')[0]}.mp4"
        assert video["content_type"] == "video/mp4"
        assert video["file_size"] == len(stand_in_video())

        download = cdn.get(video["url"])
        assert download.status_code == 200
        assert download.headers["content-type"] == "video/mp4"
        assert download.content == stand_in_video()

        assert client.post(VENDOR, json=BODY).status_code == 201  # the vendor path is a create too
        assert client.get("/v1/elsewhere").status_code == 404
        assert client.post(CREATE, json=BODY, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(CREATE).status_code == 400  # no generation_id

    assert (up.creates, up.status_requests, up.downloads) == (3, 2, 1)
    first = up.requests[0]
    assert (first.method, first.path, first.kind) == ("POST", CREATE, "create")
    assert first.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert first.headers["content-type"] == "application/json"
    assert first.bearer == DEFAULT_API_KEY
    assert first.json() == BODY
    asked = up.requests[1]
    assert asked.generation_id == generation["id"]
    assert asked.params == {"generation_id": [generation["id"]]}
    assert "authorization" not in up.requests[2].headers  # the CDN client sent no key
    assert [request.kind for request in up.requests][-2:] == ["create", "status"]
    times = [request.time for request in up.requests]
    assert times == sorted(times)


def test_api_key_is_configurable() -> None:
    with HostileUpstream(api_key="another-key-42") as up, api(up) as client:
        assert client.post(CREATE, json=BODY).status_code == 201
        default_key = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
        assert client.post(CREATE, json=BODY, headers=default_key).status_code == 401


def test_scripted_replies_are_used_in_order_then_defaults_resume(up: HostileUpstream) -> None:
    def echo(request: RecordedRequest) -> Reply:
        return json_reply({"id": request.generation_id, "status": "generating"})

    up.on_status(json_reply({"status": "queued"}), json_reply({"n": 2}, status=202), echo)
    assert up.pending("status") == 3
    with api(up) as client:
        answers = [status_of(client, "g-1") for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 202, 200, 200]
    assert answers[0].json() == {"status": "queued"}
    assert answers[1].json() == {"n": 2}
    assert answers[2].json() == {"id": "g-1", "status": "generating"}
    assert answers[3].json()["status"] == "completed"  # the queue ran out: the default again
    assert up.pending("status") == 0
    assert up.creates == 0  # a status script never answers creates


def test_repeat_answers_every_request_until_cleared(up: HostileUpstream) -> None:
    up.on_create(json_reply({"queued": 1}))
    up.on_create(html_page(503), json_reply({"second": True}, status=500), repeat=True)  # drops the queued one
    with api(up) as client:
        codes = [client.post(CREATE, json=BODY).status_code for _ in range(5)]
        assert codes == [503, 500, 503, 500, 503]
        up.clear_script()
        assert client.post(CREATE, json=BODY).status_code == 201


def test_reason_phrase_duplicate_headers_and_raw_bytes(up: HostileUpstream) -> None:
    headers: list[tuple[str | bytes, str | bytes]] = [
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        (b"X-Raw", b"caf\xe9"),
    ]
    up.on_status(Reply(299, body=b"ok", reason="Totally Fine", headers=headers), Reply(599, body=b"?"))
    with api(up) as client:
        response = status_of(client)
        assert response.status_code == 299
        assert response.reason_phrase == "Totally Fine"
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert response.headers.raw[2] == (b"X-Raw", b"caf\xe9")
        assert response.content == b"ok"
        assert status_of(client).reason_phrase == "Unknown"


def test_raw_bytes_replace_the_whole_response(up: HostileUpstream) -> None:
    up.on_status(Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"))
    with api(up) as client, pytest.raises(httpx2.RemoteProtocolError):
        status_of(client)


def test_content_length_can_be_omitted_wrong_or_chunked(up: HostileUpstream) -> None:
    data = b'{"status": "queued"}'
    up.on_status(
        Reply(body=data, content_length="omit"),
        Reply(body=data, content_length="chunked", chunk_size=5),
        Reply(body=data, content_length=len(data) - 5),
        Reply(body=data, content_length=len(data) + 5),
    )
    with api(up) as client:
        omitted = status_of(client)
        assert "content-length" not in omitted.headers
        assert omitted.headers["connection"] == "close"
        assert omitted.content == data  # read until the close
        chunked = status_of(client)
        assert chunked.headers["transfer-encoding"] == "chunked"
        assert chunked.content == data
        assert status_of(client).content == data[:-5]  # a short Content-Length cuts the body
        with pytest.raises(httpx2.RemoteProtocolError):
            status_of(client)  # a long one: the connection closes before the promised bytes


def test_well_framed_replies_keep_the_connection(up: HostileUpstream) -> None:
    with api(up) as client:
        for _ in range(3):
            status_of(client)
    assert up.connections == 1
    assert {request.connection for request in up.requests} == {1}


def test_delay_before_headers_outlasts_a_read_timeout(up: HostileUpstream) -> None:
    up.on_status(Reply(json={"status": "queued"}, delay_before_headers=1.0))
    with api(up, httpx2.Timeout(5.0, read=0.2)) as client, pytest.raises(httpx2.ReadTimeout):
        status_of(client)


def test_drip_sends_the_body_slowly(up: HostileUpstream) -> None:
    up.on_download(slow_download(1, 0.1, data=b"abcdef"))
    with httpx2.Client(timeout=TIMEOUT) as cdn:
        with cdn.stream("GET", f"{up.url}/cdn/slow.mp4") as response:
            head_arrived = time.monotonic()  # the head is not dripped: it comes first, at once
            assert response.headers["content-length"] == "6"
            body = response.read()
        body_took = time.monotonic() - head_arrived
    assert body == b"abcdef"
    assert body_took >= 0.4  # six pieces, 0.1 s before each: about 0.6 s


def test_drip_keeps_each_read_under_the_read_timeout(up: HostileUpstream) -> None:
    """A drip defeats a per-read timeout: every read gets a byte in time, however long the whole takes."""
    reply = Reply(json={"status": "queued"}, drip=(6, 0.1), drip_head=True)
    assert reply.head_length() + 20 > 6 * 14  # at least 15 pieces: 1.5 s or more in all
    up.on_status(reply)
    with api(up, httpx2.Timeout(5.0, read=1.0)) as client:
        started = time.monotonic()
        response = status_of(client)
        elapsed = time.monotonic() - started
    assert response.json() == {"status": "queued"}
    assert elapsed > 1.0  # longer than the read timeout in all, yet no ReadTimeout


@pytest.mark.parametrize("after", [0, 5, None])
def test_reset_is_a_transport_error(up: HostileUpstream, after: int | None) -> None:
    reply = Reply(json={"id": "x", "status": "queued"})
    budget = reply.head_length() + 5 if after is None else after  # None: in the body
    up.on_status(dataclasses.replace(reply, reset_after_bytes=budget))
    with api(up) as client, pytest.raises(httpx2.TransportError):
        status_of(client)


def test_reset_builder_and_unreadable_created_reset(up: HostileUpstream) -> None:
    up.on_create(reset(), unreadable_created("reset"))
    with api(up) as client:
        for _ in range(2):
            with pytest.raises(httpx2.TransportError):
                client.post(CREATE, json=BODY)
    assert up.creates == 2


def test_close_without_response(up: HostileUpstream) -> None:
    up.on_create(disconnect())
    with api(up) as client, pytest.raises(httpx2.RemoteProtocolError):
        client.post(CREATE, json=BODY)


def test_gzip_lie_is_a_decoding_error(up: HostileUpstream) -> None:
    up.on_status(gzip_lie())
    with api(up) as client, pytest.raises(httpx2.DecodingError):
        status_of(client)


def test_redirect_loop_never_ends(up: HostileUpstream) -> None:
    up.on_download(redirect_loop())
    with httpx2.Client(timeout=TIMEOUT, follow_redirects=True) as cdn, pytest.raises(httpx2.TooManyRedirects):
        cdn.get(f"{up.url}/cdn/video.mp4")
    assert up.downloads == 21  # the first request and httpx's 20 redirects
    assert up.pending("download") == 0


def test_redirect_to_anywhere(up: HostileUpstream) -> None:
    up.on_download(redirect_to(METADATA_URL, status=301))
    with httpx2.Client(timeout=TIMEOUT) as cdn:
        response = cdn.get(f"{up.url}/cdn/video.mp4")
    assert response.status_code == 301
    assert response.headers["location"] == METADATA_URL


@pytest.mark.parametrize("where", get_args(SurrogateField))
def test_surrogate_json_is_valid_json_holding_a_lone_surrogate(up: HostileUpstream, where: SurrogateField) -> None:
    up.on_create(surrogate_json(where))
    up.on_status(surrogate_json(where))
    with api(up) as client:
        for response in (client.post(CREATE, json=BODY), status_of(client, "asked-id")):
            assert response.content.isascii()
            assert b"\\udfff" in response.content
            parsed = json.loads(response.content)
            assert LONE_SURROGATE in json.dumps(parsed, ensure_ascii=False)
            if where != "api_error":
                assert response.status_code == (201 if response.request.method == "POST" else 200)


def test_surrogate_json_targets_the_named_field(up: HostileUpstream) -> None:
    up.on_status(surrogate_json("url"), surrogate_json("content_type"), surrogate_json("error"))
    with api(up) as client:
        assert LONE_SURROGATE in status_of(client).json()["video"]["url"]
        assert status_of(client).json()["video"]["content_type"] == f"video/mp4{LONE_SURROGATE}"
        assert status_of(client).json()["error"]["message"].endswith(LONE_SURROGATE)


@pytest.mark.parametrize("container", ["object", "array"])
def test_deep_json_defeats_json_loads(up: HostileUpstream, container: Literal["object", "array"]) -> None:
    up.on_status(deep_json(100_000, container=container))
    with api(up) as client:
        response = status_of(client)
    with pytest.raises(RecursionError):
        response.json()


def test_huge_json_is_streamed_with_its_true_length(up: HostileUpstream) -> None:
    size = 5_000_000
    up.on_status(huge_json(size))
    with api(up) as client, client.stream("GET", CREATE, params={"generation_id": "g"}) as response:
        assert int(response.headers["content-length"]) == size
        data = b"".join(response.iter_bytes())
    assert len(data) == size
    parsed = json.loads(data)
    assert parsed["status"] == "queued"
    assert len(parsed["filler"]) > size - 100


def test_huge_json_does_not_hold_its_body() -> None:
    reply = huge_json(100_000_000)
    assert isinstance(reply.body, Streamed)
    assert reply.body.length == 100_000_000
    first = next(iter(reply.body.chunks()))
    assert first.startswith(b"{")
    assert len(first) < 1000  # generated piece by piece


def test_stop_is_prompt_while_a_reply_hangs_or_drips() -> None:
    up = HostileUpstream().start()
    up.on_status(hang())
    up.on_download(slow_download(1, 0.5))
    failures: list[BaseException] = []

    def call(url: str) -> None:
        try:
            with httpx2.Client(timeout=httpx2.Timeout(30.0)) as client:
                client.get(url).read()
        except httpx2.TransportError as exc:
            failures.append(exc)

    callers = [
        threading.Thread(target=call, args=(f"{up.url}{CREATE}?generation_id=g",)),
        threading.Thread(target=call, args=(f"{up.url}/cdn/video.mp4",)),
    ]
    for caller in callers:
        caller.start()
    deadline = time.monotonic() + 5
    while (up.status_requests, up.downloads) != (1, 1) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the drip is under way
    started = time.monotonic()
    up.stop()
    assert time.monotonic() - started < 2.0
    assert not up.running
    for caller in callers:
        caller.join(5)
        assert not caller.is_alive()
    assert len(failures) == 2  # both clients saw their connection end
    up.stop()  # idempotent


def test_leaving_the_block_raises_if_a_responder_raised() -> None:
    def broken(request: RecordedRequest) -> Reply:
        raise KeyError("oops")

    up = HostileUpstream().start()
    up.on_status(broken)
    with api(up) as client:
        assert status_of(client).status_code == 500
    assert len(up.errors) == 1
    with pytest.raises(AssertionError, match="oops"):
        up.__exit__(None, None, None)
    assert not up.running


def test_echo_key_in_error_has_the_key_in_every_form(up: HostileUpstream) -> None:
    up.on_create(echo_key_in_error(400))
    up.on_status(echo_key_in_error(500))
    key = up.api_key
    with api(up) as client:
        responses = [client.post(CREATE, json=BODY), status_of(client)]
    assert [response.status_code for response in responses] == [400, 500]
    for response in responses:
        text = response.text
        assert key in text
        assert "".join(f"\\u{ord(char):04x}" for char in key) in text
        body = response.json()
        assert key in body["message"]
        assert body["detail"] == f"key={key}"
        assert body["hint"] == key
        assert body["headers"]["authorization"] == f"Bearer {key}"
        assert response.headers["x-echo-authorization"] == f"Bearer {key}"


def test_key_in_video_url(up: HostileUpstream) -> None:
    up.on_status(key_in_video_url("query"), key_in_video_url("userinfo"))
    key = up.api_key
    with api(up) as client, httpx2.Client(timeout=TIMEOUT) as cdn:
        in_query = status_of(client).json()["video"]["url"]
        assert in_query.startswith(f"{up.url}/cdn/")
        assert f"api_key={key}" in in_query
        in_userinfo = status_of(client).json()["video"]["url"]
        assert in_userinfo.startswith(f"http://user:{key}@127.0.0.1:{up.port}/cdn/")
        assert cdn.get(in_userinfo).status_code == 200
    assert up.requests[-1].headers["authorization"].startswith("Basic ")  # httpx turned the userinfo into a header
    other = key_in_video_url("userinfo", base="https://cdn.example.com")(up.requests[0])
    assert other.json["video"]["url"].startswith(f"https://user:{key}@cdn.example.com/cdn/")


def test_status_about_another_generation(up: HostileUpstream) -> None:
    up.on_status(other_generation_status())
    with api(up) as client:
        answer = status_of(client, "mine").json()
    assert answer["status"] == "completed"
    assert answer["id"] != "mine"


def test_big_ids_and_errors(up: HostileUpstream) -> None:
    up.on_create(huge_generation_id(1_000_000))
    up.on_status(failed_with_huge_error(5_000_000))
    with api(up) as client:
        created = client.post(CREATE, json=BODY).json()
        failed = status_of(client, "g").json()
    assert len(created["id"]) == 1_000_000
    assert created["id"].endswith(f":{MODEL}")
    assert (failed["id"], failed["status"]) == ("g", "failed")
    assert failed["error"]["message"] == "x" * 5_000_000


@pytest.mark.parametrize("kind", ["truncated", "html", "empty", "binary"])
def test_unreadable_created_is_a_201_without_json(up: HostileUpstream, kind: UnreadableKind) -> None:
    up.on_create(unreadable_created(kind))
    with api(up) as client:
        response = client.post(CREATE, json=BODY)
    assert response.status_code == 201
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):
        json.loads(response.content)


def test_unreadable_created_cut_short(up: HostileUpstream) -> None:
    up.on_create(unreadable_created("cut"))
    with api(up) as client, pytest.raises(httpx2.RemoteProtocolError):
        client.post(CREATE, json=BODY)


def test_non_utf8_and_html_bodies(up: HostileUpstream) -> None:
    up.on_status(non_utf8_body(), html_page(502))
    with api(up) as client:
        with pytest.raises(UnicodeDecodeError):
            status_of(client).json()
        gateway = status_of(client)
    assert gateway.status_code == 502
    assert gateway.headers["content-type"] == "text/html"
    assert "<html>" in gateway.text


def test_download_as_html(up: HostileUpstream) -> None:
    up.on_download(download_as_html())
    with httpx2.Client(timeout=TIMEOUT) as cdn:
        response = cdn.get(f"{up.url}/cdn/video.mp4")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_serves_clients_on_any_event_loop(up: HostileUpstream) -> None:
    async def flow() -> bytes:
        headers = {"Authorization": f"Bearer {up.api_key}"}
        async with httpx2.AsyncClient(base_url=up.url, headers=headers, timeout=TIMEOUT) as client:
            generation_id = (await client.post(CREATE, json=BODY)).json()["id"]
            status = await client.get(CREATE, params={"generation_id": generation_id})
            return (await client.get(status.json()["video"]["url"])).content

    assert asyncio.run(flow()) == stand_in_video()
    assert (up.creates, up.status_requests, up.downloads) == (1, 1, 1)


def test_huge_frame_video_is_tiny_on_disk(tmp_path: Path) -> None:
    path = write_huge_frame_video(tmp_path / "huge.mp4")
    assert path.stat().st_size < 100_000
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (8192, 4320)
        assert stream.codec_context.name == "h264"


@pytest.mark.parametrize("after", [0, 1, 20])
def test_reset_lands_after_exactly_that_many_bytes(up: HostileUpstream, after: int) -> None:
    """Raw socket view: exactly `after` bytes arrive, then ECONNRESET (an RST, not an orderly close)."""
    up.on_status(Reply(json={"status": "queued"}, reset_after_bytes=after))
    received = bytearray()
    with socket.create_connection(("127.0.0.1", up.port), timeout=5) as sock:
        sock.sendall(f"GET {CREATE}?generation_id=g HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        with pytest.raises(ConnectionResetError):
            read_until_closed(sock, received)
    assert bytes(received) == b"HTTP/1.1 200 OK\r\nContent-Type: application/json"[:after]
