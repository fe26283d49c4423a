"""Text from outside (the API, the CDN, an agent, a file name) made safe to keep, log and send: the one place it is
cleaned. Nothing here imports anything of the package."""

from __future__ import annotations

import re
from typing import Final

MAX_SHOWN: Final = 300
"""Characters of an outside text a log line or a message quotes."""
_KEY_SHAPE: Final = re.compile(r"[\x21-\x7e]+")


def clean_text(text: str) -> str:
    """`text` with what no UTF-8 store or stream can carry replaced by U+FFFD: lone UTF-16 surrogates (valid JSON
    escapes, invalid Unicode) and NUL. Applied wherever outside text enters: one odd value must not crash a write."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def printable(text: str) -> str:
    """Outside text for a log line or a message: escaped (no line breaks, no control characters) and short."""
    return repr(text[:MAX_SHOWN])[1:-1]


def is_well_formed_key(key: str) -> bool:
    """Printable ASCII with no spaces: anything else is a paste accident (and cannot go into an HTTP header)."""
    return bool(_KEY_SHAPE.fullmatch(key))
