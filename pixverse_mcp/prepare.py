"""From a validated request to what is claimed and sent: every input read (`inputs.py`), the body the API gets,
the form the journal keeps (inputs described, never their bytes), the request key (equal requests, equal keys:
two different images are two videos), and what it is expected to cost (`money.py`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.errors import InvalidArgumentError
from pixverse_mcp.inputs import InputKind, InputLimits, ResolvedInput, resolve
from pixverse_mcp.models import AnyRequest, GenerationStatus, request_size
from pixverse_mcp.money import Estimate, Spending
from pixverse_mcp.storage import Storage, StorageError

# The inputs each request kind takes, and what they must be.
_INPUTS: Final[dict[str, InputKind]] = {"image": "image", "last_frame": "image", "video": "video", "audio": "audio"}


def request_key(body: dict[str, Any], api: str) -> str:
    """A digest of everything that defines a video and where it was sent (`api`: the base URL, so a sandbox's
    generation is never mistaken for one of the real API's): equal requests to one API, equal keys. `body` is the
    journaled body, in which every input is its description (source and digest): two images, two videos."""
    return hashlib.sha256(json.dumps([api, body], sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """A request ready to claim and send: its body, how the journal keeps it, its key and its expected cost."""

    request: AnyRequest
    body: dict[str, Any]
    journaled: dict[str, Any]
    key: str
    estimate: Estimate

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def prompt(self) -> str | None:
        return getattr(self.request, "prompt", None)


class Preparer:
    """Prepares requests for one server: its API, its journal (videos made here), its limits and its prices."""

    def __init__(
        self, client: PixVerseClient, storage: Storage, spending: Spending, *, api: str, limits: InputLimits
    ) -> None:
        self.client = client
        self.storage = storage
        self.spending = spending
        self.api = api
        self.limits = limits

    async def prepare(self, request: AnyRequest, *, folders: Sequence[Path], within: float | None = None) -> Prepared:
        """Read every input (URLs as they are; data URIs and local files checked, files only inside `folders`), then
        the body, the journal's form of it, its key and its estimated cost (a price list still to fetch waited for
        at most `within` seconds). Raises `InvalidArgumentError` (nothing sent) for an input that cannot be used."""
        resolved: dict[str, ResolvedInput] = {}
        for name, kind in _INPUTS.items():
            reference = getattr(request, name, None)
            if reference is None:
                continue
            made_here = await self._journaled_video(reference) if name == "video" else None
            resolved[name] = made_here or await resolve(
                reference, kind, folders=folders, limits=self.limits, field=name
            )
        body = request.to_body({name: given.sent for name, given in resolved.items()})
        journaled = request.to_body({name: given.described for name, given in resolved.items()})
        resolution, duration = request_size(body)
        estimate = await self.spending.estimate(request.model, resolution, duration, within=within)
        return Prepared(request, body, journaled, request_key(journaled, self.api), estimate)

    async def _journaled_video(self, reference: str) -> ResolvedInput | None:
        """A video this server made, named by its generation id: its URL while the provider still serves it, else
        the file it was saved to (read as any local file is)."""
        try:
            entry = await self.storage.get(reference)
        except StorageError:
            return None
        if entry is None:
            return None
        if entry.status is not GenerationStatus.COMPLETED:
            raise InvalidArgumentError(f"`video`: generation {reference} has no video yet (status {entry.status})")
        if entry.video_url and await self.client.still_served(entry.video_url):
            return ResolvedInput(entry.video_url, {"generation_id": reference, "url": entry.video_url})
        if entry.local_path:
            folder = (Path(entry.local_path).parent,)
            saved = await resolve(entry.local_path, "video", folders=folder, limits=self.limits, field="video")
            return ResolvedInput(saved.sent, {"generation_id": reference, **saved.described})
        raise InvalidArgumentError(
            f"`video`: the provider no longer serves generation {reference}'s video and it was never saved here"
        )
