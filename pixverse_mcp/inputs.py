"""Images, videos and sounds from where agents have them: an https URL, a data URI, or a file on this machine.

An https URL is sent as it is. A data URI is checked (base64, size, and that its bytes are of the kind it claims).
A local file must be inside the allowed folders (the client's MCP roots when it offers them, the folders of
`PIXVERSE_MCP_INPUT_DIRS`, and the videos folder), with symbolic links followed before the check; its kind is read
from its bytes, never from its name; it must be no bigger than the kind's cap; it is sent as a data URI (the API has
no upload route). Anything else (`http://`, `file://`, other schemes, a text file named `.png`) is refused with a
message that says what is accepted, before anything is sent. The journal keeps where an input came from and its
digest (`described`), never its bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import anyio.to_thread

from pixverse_mcp.errors import InvalidArgumentError
from pixverse_mcp.files import inside_folders

InputKind = Literal["image", "video", "audio"]

# What each kind may be, by its bytes: the MIME type its data URI carries.
ACCEPTED: Final[dict[InputKind, tuple[str, ...]]] = {
    "image": ("image/png", "image/jpeg", "image/webp"),
    "video": ("video/mp4", "video/quicktime", "video/webm"),
    "audio": ("audio/mpeg", "audio/wav", "audio/ogg", "audio/flac", "audio/mp4", "audio/aac"),
}
_NAMES: Final[dict[InputKind, str]] = {
    "image": "a PNG, JPEG or WebP image",
    "video": "an MP4, MOV or WebM video",
    "audio": "an MP3, WAV, OGG, FLAC, M4A or AAC sound",
}
_DATA_URI: Final = re.compile(r"data:([\w.+-]+/[\w.+-]+)((?:;[\w.+-]+=[\w.+-]+)*);base64,(.*)", re.DOTALL)
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
_MB: Final = 1024 * 1024


@dataclass(frozen=True)
class ResolvedInput:
    """An input ready to send, and how the journal describes it."""

    sent: str
    """The URL or data URI that goes into the request body."""
    described: dict[str, Any]
    """Where it came from and its digest: `{"url": ...}`, or `{"file"|"data_uri": ..., "sha256", "bytes", "type"}`."""


@dataclass(frozen=True)
class InputLimits:
    """The most each kind of input may weigh, in bytes."""

    image: int
    video: int
    audio: int

    def of(self, kind: InputKind) -> int:
        limit: int = getattr(self, kind)
        return limit

    @classmethod
    def from_megabytes(cls, image: float, video: float, audio: float) -> InputLimits:
        return cls(int(image * _MB), int(video * _MB), int(audio * _MB))


async def resolve(
    reference: str, kind: InputKind, *, folders: Sequence[Path], limits: InputLimits, field: str
) -> ResolvedInput:
    """`reference` (from the argument `field`) as something to send; `InvalidArgumentError` naming the field and
    what is accepted when it cannot be (nothing is read beyond the allowed folders, nothing is sent)."""
    accepted = f"an https:// URL, a data:{kind}/...;base64, URI, or the path of {_NAMES[kind]} file on this machine"
    if reference.startswith("https://"):
        return ResolvedInput(reference, {"url": reference})
    if reference.startswith("data:"):
        return _from_data_uri(reference, kind, limits.of(kind), field)
    scheme = _SCHEME.match(reference)
    if scheme is not None:
        raise InvalidArgumentError(f"`{field}`: the scheme {scheme.group(0)} is not accepted; give {accepted}")
    if not folders:
        raise InvalidArgumentError(
            f"`{field}`: this server reads no local files (no MCP roots from the client, no PIXVERSE_MCP_INPUT_DIRS); "
            "give an https:// URL or a data URI instead"
        )
    path = inside_folders(Path(reference), folders, what=f"{_NAMES[kind]} file (`{field}`)")
    data = await anyio.to_thread.run_sync(_read_capped, path, limits.of(kind), field)
    mime = sniff(data, kind)
    if mime is None:
        raise InvalidArgumentError(f"`{field}`: {path.name} is not {_NAMES[kind]} (read from its bytes, not its name)")
    sent = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return ResolvedInput(sent, {"file": str(path), **_digest(data, mime)})


def _from_data_uri(reference: str, kind: InputKind, limit: int, field: str) -> ResolvedInput:
    match = _DATA_URI.fullmatch(reference)
    if match is None:
        raise InvalidArgumentError(f"`{field}`: a data URI must look like data:{kind}/<type>;base64,<data>")
    declared, _, payload = match.groups()
    if len(payload) > (limit + 2) // 3 * 4 + 4:
        raise InvalidArgumentError(f"`{field}`: the data is over the {limit // _MB} MB limit for {_NAMES[kind]}")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgumentError(f"`{field}`: the data URI's base64 cannot be read") from exc
    mime = sniff(data, kind)
    if mime is None or declared.lower() not in ACCEPTED[kind]:
        raise InvalidArgumentError(f"`{field}`: the data URI does not hold {_NAMES[kind]} (read from its bytes)")
    return ResolvedInput(reference, {"data_uri": True, **_digest(data, mime)})


def _read_capped(path: Path, limit: int, field: str) -> bytes:
    if path.stat().st_size > limit:
        raise InvalidArgumentError(f"`{field}`: {path.name} is over the {limit // _MB} MB limit")
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew since
        raise InvalidArgumentError(f"`{field}`: {path.name} is over the {limit // _MB} MB limit")
    return data


def _digest(data: bytes, mime: str) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "type": mime}


def sniff(data: bytes, kind: InputKind) -> str | None:
    """The MIME type of `data` when its first bytes say it is one of the accepted types of `kind`, else None."""
    head = data[:16]
    found: str | None = None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        found = "image/png"
    elif head.startswith(b"\xff\xd8\xff"):
        found = "image/jpeg"
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        found = "image/webp"
    elif head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        found = "audio/wav"
    elif head[4:8] == b"ftyp":
        brand = head[8:12]
        found = "audio/mp4" if brand in (b"M4A ", b"M4B ") else "video/quicktime" if brand == b"qt  " else "video/mp4"
    elif head.startswith(b"\x1a\x45\xdf\xa3"):
        found = "video/webm"
    elif head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        found = "audio/mpeg"
    elif head.startswith(b"OggS"):
        found = "audio/ogg"
    elif head.startswith(b"fLaC"):
        found = "audio/flac"
    elif head[:2] in (b"\xff\xf1", b"\xff\xf9"):
        found = "audio/aac"
    if found == "video/mp4" and kind == "audio":
        found = "audio/mp4"  # an MP4 container holding sound only
    return found if found in ACCEPTED[kind] else None
