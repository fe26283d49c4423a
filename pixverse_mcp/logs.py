"""Logging: to stderr only (stdout is the stdio transport's protocol channel), and never a secret.

`configure_logging` runs before the SDK's own set-up, which then leaves the root logger alone.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"


def secret_forms(secret: str) -> list[str]:
    """Every way `secret` may appear in text: as is, JSON-escaped (a key with `"` or `\\`), URL-encoded (a query
    string), and as a Python repr of text or bytes (httpcore's DEBUG lines show headers so). Longest first, so no
    form is left half-replaced."""
    if len(secret) < 4:
        return []
    forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}
    forms |= {repr(secret)[1:-1], repr(secret.encode())[2:-1]}
    return sorted(forms, key=len, reverse=True)


class RedactSecrets(logging.Filter):
    """Replace every configured secret (in every form it may take) in a record's final message: a last line of
    defence for the API key and the HTTP token."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({form for secret in secrets for form in secret_forms(secret)}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        return True


class QuietRepeats(logging.Filter):
    """Let a line that repeats (same logger, same template) through at most `burst` times per `window` seconds.

    Under abuse (a thousand sockets, an accept loop out of file descriptors) one line can repeat thousands of times
    a second; the first few say everything, and the disk must not fill up.
    """

    def __init__(self, *, burst: int = 10, window: float = 10.0) -> None:
        super().__init__()
        self._burst = burst
        self._window = window
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return True  # asked for on purpose, to see everything
        key = (record.name, record.msg)
        started, count = self._seen.get(key, (record.created, 0))
        if record.created - started > self._window:
            started, count = record.created, 0
        self._seen[key] = (started, count + 1)
        if len(self._seen) > 10_000:  # templates are few; ids in messages are arguments, not templates
            self._seen.clear()
        return count < self._burst


def configure_logging(level: str, *, secrets: Iterable[str] = ()) -> None:
    """Send every log line to stderr at `level`, with `secrets` redacted and repeats rate-limited; keep chatty
    libraries quiet."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(QuietRepeats())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if level != "DEBUG":
        # httpx2 logs a line per request at INFO: one per poll. Keep it for DEBUG.
        for name in ("httpx2", "httpcore2"):
            logging.getLogger(name).setLevel(logging.WARNING)
