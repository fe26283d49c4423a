"""error_for_status: the one place an HTTP error status becomes a typed error an agent can read."""

from __future__ import annotations

import pytest

from pixverse_mcp.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    PixVerseError,
    RateLimitError,
    UpstreamServerError,
    error_for_status,
)

CLOUDFLARE_502 = (
    "<!DOCTYPE html>\n<html lang='en-US'><head><title>api.aimlapi.com | 502: Bad gateway</title>"
    "<style>body{font-family:sans-serif}</style></head><body><h1>Bad gateway</h1>"
    "<span>Cloudflare Ray ID: 8f1e2d3c4b5a6978</span></body></html>"
)
NGINX_504 = (
    "\r\n<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</HTML>\r\n"
)


@pytest.mark.parametrize(
    ("status_code", "error_class"),
    [
        (400, BadRequestError),
        (422, BadRequestError),
        (401, AuthenticationError),
        (403, InsufficientCreditsError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, UpstreamServerError),
        (502, UpstreamServerError),
        (503, UpstreamServerError),
        (418, UpstreamServerError),
    ],
)
def test_status_maps_to_its_class_with_status_body_request_id_and_retry_after(
    status_code: int, error_class: type[APIStatusError]
) -> None:
    error = error_for_status(status_code, {"message": "what went wrong"}, retry_after=7.0, request_id="req-123")

    assert type(error) is error_class
    assert isinstance(error, APIStatusError)
    assert isinstance(error, PixVerseError)
    assert error.status_code == status_code
    assert error.body == "what went wrong"
    assert error.request_id == "req-123"
    assert error.retry_after == 7.0
    assert "what went wrong" in str(error)
    assert str(status_code) in str(error)


def test_rate_limit_carries_retry_after() -> None:
    error = error_for_status(429, {"message": "slow down"}, retry_after=12.5, request_id=None)

    assert isinstance(error, RateLimitError)
    assert error.retry_after == 12.5
    assert error.request_id is None


def test_rate_limit_without_a_hint_has_no_retry_after() -> None:
    error = error_for_status(429, None, retry_after=None, request_id=None)

    assert isinstance(error, RateLimitError)
    assert error.retry_after is None


def test_authentication_error_tells_the_agent_which_setting_to_check() -> None:
    assert "AIMLAPI_API_KEY" in str(error_for_status(401, None, retry_after=None, request_id=None))


def test_forbidden_says_the_account_may_be_out_of_credits() -> None:
    assert "credits" in str(error_for_status(403, None, retry_after=None, request_id=None))


def test_message_as_a_string_is_the_excerpt() -> None:
    error = error_for_status(400, {"message": "prompt is required"}, retry_after=None, request_id=None)

    assert error.body == "prompt is required"


def test_message_as_a_list_of_strings_keeps_every_item() -> None:
    error = error_for_status(
        400,
        {"message": ["prompt must be shorter than 2048 characters", "seed must not be negative"], "statusCode": 400},
        retry_after=None,
        request_id=None,
    )

    assert isinstance(error, BadRequestError)
    assert error.body is not None
    assert "prompt must be shorter than 2048 characters" in error.body
    assert "seed must not be negative" in error.body
    assert "seed must not be negative" in str(error)
    assert "[" not in str(error)


@pytest.mark.parametrize(
    ("body", "excerpt"),
    [
        ({"error": "Invalid API key"}, "Invalid API key"),
        ({"error": {"message": "Insufficient credits", "code": "billing"}}, "Insufficient credits"),
        ({"detail": "Not found"}, "Not found"),
        ("upstream connect error or disconnect/reset before headers", None),
    ],
)
def test_other_error_body_shapes_give_their_human_part(body: object, excerpt: str | None) -> None:
    error = error_for_status(503, body, retry_after=None, request_id=None)

    expected = excerpt if excerpt is not None else body
    assert error.body == expected


def test_plain_text_body_whitespace_is_collapsed() -> None:
    error = error_for_status(500, "  internal\n\n  error \t here ", retry_after=None, request_id=None)

    assert error.body == "internal error here"


@pytest.mark.parametrize("body", [None, {}, {"statusCode": 500}, [], 42, "", "   ", {"message": ""}])
def test_body_without_a_human_part_gives_no_excerpt(body: object) -> None:
    error = error_for_status(500, body, retry_after=None, request_id=None)

    assert error.body is None
    assert str(error) == "The AI/ML API answered HTTP 500"


@pytest.mark.parametrize("page", [CLOUDFLARE_502, NGINX_504, CLOUDFLARE_502.upper()])
@pytest.mark.parametrize("status_code", [401, 403, 429, 502, 504])
def test_html_gateway_pages_do_not_leak_into_the_message(page: str, status_code: int) -> None:
    error = error_for_status(status_code, page, retry_after=None, request_id=None)

    assert error.body is None
    message = str(error).lower()
    assert "<" not in message
    assert "html" not in message
    assert "cloudflare" not in message
    assert str(status_code) in message


@pytest.mark.parametrize("body", ["x" * 100_000, {"message": "y" * 100_000}, {"message": ["z" * 500] * 200}])
def test_body_excerpt_is_bounded(body: object) -> None:
    error = error_for_status(400, body, retry_after=None, request_id=None)

    assert error.body is not None
    assert 0 < len(error.body) <= 300
    assert len(str(error)) <= 500
