"""Every way a call to the AI/ML API can fail, as one tree.

```
PixVerseError                     .transient: trying again later may work
├── MissingAPIKeyError            no usable AIMLAPI_API_KEY (none, or malformed)
├── InvalidArgumentError          an argument that can never work (an empty id, a path outside the videos folder)
├── APIConnectionError            no usable answer: refused, reset, DNS, ... (.request_sent)
│   └── APITimeoutError           ... or none in time
├── APIStatusError                the API answered with an error status (status_code, body, request_id)
│   ├── BadRequestError           400 / 422: the request was refused as invalid
│   ├── AuthenticationError       401: key missing or wrong
│   ├── InsufficientCreditsError  403: out of credits
│   ├── NotFoundError             404: unknown generation id
│   ├── RateLimitError            429 (retry_after, as any status error may carry)
│   └── UpstreamServerError       5xx and anything else unexpected
├── UnexpectedResponseError       2xx, but a body we cannot read (HTML page, no id, completed without URL)
├── CreateOutcomeUnknownError     the create request was sent but its answer was lost: it may have been accepted
├── CreatePendingError            an identical create is still being sent by another call: it has no id yet
├── DownloadError                 fetching the finished video failed or was refused (.timed_out)
├── SpendingCapError              the day's spending cap would be passed: nothing was sent
├── PreviewError                  a video could not be turned into a contact sheet
│   └── PreviewUnavailableError   the preview extra (PyAV, Pillow) is not installed
└── GenerationError               carries the generation (or its id)
    ├── GenerationFailedError     the provider ended the generation as failed
    ├── GenerationLookupError     its status could not be read (.not_found, .transient)
    └── WaitTimeoutError          our wait ran out; the paid generation goes on upstream
```

Each message is written for the agent that will read it: what happened and what to do next, never the key. Callers
decide on the facts an error carries (`transient`, `request_sent`, `not_found`), never on its `__cause__`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pixverse_mcp.models import Generation

_MAX_BODY_EXCERPT = 300


class PixVerseError(Exception):
    """Root of every error this package raises."""

    transient: bool = False
    """True when the same call may work later (the network, the provider's servers, a rate limit)."""


class MissingAPIKeyError(PixVerseError):
    """No usable API key is configured (none, or one no key can look like), so no request can be made.

    The message never repeats the key.
    """

    def __init__(self, *, malformed: bool = False) -> None:
        problem = (
            "The configured AI/ML API key cannot be right: it contains spaces, line breaks or invisible characters "
            "(copy it again from https://aimlapi.com/app/keys)."
            if malformed
            else "No AI/ML API key is configured."
        )
        self.problem = problem
        """The first sentence alone (for a log line): what is wrong, without the advice."""
        super().__init__(
            f"{problem} Set the AIMLAPI_API_KEY environment variable for the pixverse-mcp server (in Claude "
            'Desktop: "env": {"AIMLAPI_API_KEY": "<your key>"} in claude_desktop_config.json; get a key at '
            "https://aimlapi.com/app/keys), then restart it. To try the tools without a key, start the server "
            "with `pixverse-mcp --sandbox`."
        )


class InvalidArgumentError(PixVerseError):
    """An argument that can never work (an empty or absurd generation id, a path outside the videos folder);
    refused before anything is sent."""


class APIConnectionError(PixVerseError):
    """No usable HTTP answer arrived (connection refused or reset, DNS failure, broken stream).

    `request_sent` is False when the request provably never left this process (no connection was made, or it could
    not even be built): only then may a create be sent again.
    """

    transient = True

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """The API did not answer in time."""


class APIStatusError(PixVerseError):
    """The API answered with an error status; `body` is a short excerpt of what it said.

    `retry_after` is the server's Retry-After hint in seconds (sent with 429 and some 503s), when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400 or 422: the API refused the request as invalid."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class InsufficientCreditsError(APIStatusError):
    """403: the account has no credits left for this request."""


class NotFoundError(APIStatusError):
    """404: the API knows no generation with this id."""


class RateLimitError(APIStatusError):
    """429: too many requests; wait `retry_after` seconds when the server said how long."""

    transient = True


class UpstreamServerError(APIStatusError):
    """5xx (or another status we have no meaning for): trouble on the provider's side."""

    transient = True


class UnexpectedResponseError(PixVerseError):
    """A success status with a body we cannot use; never treated as success."""

    transient = True


class CreateOutcomeUnknownError(PixVerseError):
    """The create request left this process but no readable answer came back, so it may have been accepted.

    We never re-send a create in that case (a second one could be charged twice).
    """

    transient = True


class CreatePendingError(PixVerseError):
    """An identical create is being sent by another call (here or on another replica) and has no id yet: calling
    again in a moment re-attaches to it. Nothing was sent for this call."""

    transient = True


class DownloadError(PixVerseError):
    """Fetching a finished video failed, or was refused (size cap, not a video, not the provider's storage).

    `timed_out` is True when it only ran out of the time the call had left (trying again may well work).
    """

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class SpendingCapError(PixVerseError):
    """Creating this video would pass the daily spending cap (`PIXVERSE_MCP_DAILY_BUDGET_USD`); nothing was sent."""

    def __init__(self, *, cap_usd: float, spent_usd: float, estimate_usd: float) -> None:
        self.cap_usd = cap_usd
        self.spent_usd = spent_usd
        self.estimate_usd = estimate_usd
        left = max(0.0, cap_usd - spent_usd)
        super().__init__(
            f"Not created: this video (about ${estimate_usd:.2f}) would pass today's spending cap of ${cap_usd:.2f} "
            f"(spent ${spent_usd:.2f} since 00:00 UTC, ${left:.2f} left). Nothing was sent and nothing was charged. "
            "The cap resets at midnight UTC; the server's owner can raise PIXVERSE_MCP_DAILY_BUDGET_USD."
        )


class PreviewError(PixVerseError):
    """A file could not be decoded as a video (or has no frames)."""


class PreviewUnavailableError(PreviewError):
    """The preview extra is not installed (the message says how to install it)."""


class GenerationError(PixVerseError):
    """A failure that belongs to one generation: it always carries the id so the paid work is never lost."""

    def __init__(self, message: str, *, generation_id: str, generation: Generation | None = None):
        super().__init__(message)
        self.generation_id = generation_id
        self.generation = generation


class GenerationFailedError(GenerationError):
    """The provider ended the generation as failed."""


class GenerationLookupError(GenerationError):
    """The status of a generation could not be read; the generation itself may be fine.

    `not_found` is True when the API knows no such id (check the id); otherwise `transient` says whether asking
    again later may work.
    """

    def __init__(self, message: str, *, generation_id: str, not_found: bool = False, transient: bool = False) -> None:
        super().__init__(message, generation_id=generation_id)
        self.not_found = not_found
        self.transient = transient

    @classmethod
    def from_error(cls, error: PixVerseError, *, generation_id: str) -> GenerationLookupError:
        """The lookup failure for `generation_id` that `error` stands for, with its facts carried over."""
        return cls(
            str(error),
            generation_id=generation_id,
            not_found=isinstance(error, NotFoundError),
            transient=error.transient,
        )


class WaitTimeoutError(GenerationError):
    """Our wait ran out before the generation finished. The generation itself goes on upstream."""


def error_for_status(
    status_code: int, body: Any, *, retry_after: float | None, request_id: str | None
) -> APIStatusError:
    """The one place an HTTP error status becomes a typed error."""
    detail = _detail(body)
    excerpt = detail[:_MAX_BODY_EXCERPT] if detail else None
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "body": excerpt,
        "request_id": request_id,
        "retry_after": retry_after,
    }
    suffix = f": {excerpt}" if excerpt else ""
    if status_code in (400, 422):
        return BadRequestError(f"The AI/ML API refused the request as invalid (HTTP {status_code}){suffix}", **kwargs)
    if status_code == 401:
        return AuthenticationError(
            f"The AI/ML API rejected the API key (HTTP 401){suffix}. Check AIMLAPI_API_KEY.", **kwargs
        )
    if status_code == 403:
        return InsufficientCreditsError(
            f"The AI/ML API refused the request (HTTP 403), usually because the account is out of credits{suffix}.",
            **kwargs,
        )
    if status_code == 404:
        return NotFoundError(f"The AI/ML API knows no such generation (HTTP 404){suffix}", **kwargs)
    if status_code == 429:
        return RateLimitError(f"The AI/ML API is rate limiting requests (HTTP 429){suffix}", **kwargs)
    return UpstreamServerError(f"The AI/ML API answered HTTP {status_code}{suffix}", **kwargs)


def _detail(body: Any) -> str | None:
    """The human part of an error body: `message` (a string or a list of strings), `error`, or the raw text."""
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, list):
                return "; ".join(str(item) for item in value)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value:
                return value
        return None
    if isinstance(body, str):
        text = " ".join(body.split())
        # An HTML gateway page says nothing an agent can use beyond its status.
        return None if text.lower().startswith(("<!doctype", "<html")) else text or None
    return None
