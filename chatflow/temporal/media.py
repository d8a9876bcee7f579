"""The activity that fetches a customer's media when a flow asks (`convo.fetch_media`).

The bytes never enter the conversation's history: the activity writes them to the worker's media
folder (CHATFLOW_MEDIA_DIR), named by their SHA-256, and the flow gets the path, type, hash and
size. The folder is the deployment's to share (a volume the business's own services read) and to
clean up; without one the fetch fails with a reason, as does a media over the flow's size bound.
The provider's credentials stay with the channel: the activity's input is a media id.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from chatflow.domain.channel import Channel, MediaSource
from chatflow.domain.errors import MediaUnavailable
from chatflow.domain.messages import MediaRequest, StoredMedia
from chatflow.temporal import constants


class MediaFetcher:
    def __init__(self, channels: Mapping[str, Channel], media_dir: str = "") -> None:
        self.channels = channels
        self.media_dir = media_dir

    @activity.defn(name=constants.FETCH_MEDIA)
    async def fetch_media(self, request: MediaRequest) -> StoredMedia:
        if not self.media_dir:
            raise _refused("no media folder: set CHATFLOW_MEDIA_DIR for the worker to keep fetched media")
        channel = self.channels.get(request.provider)
        fetch = getattr(channel, "fetch_media", None)
        if channel is None or fetch is None:
            raise _refused(f"provider {request.provider!r} has no media to fetch by id")
        source: MediaSource = channel  # type: ignore[assignment]
        try:
            media = await source.fetch_media(request.media_id, request.max_bytes)
        except MediaUnavailable as error:
            if error.retryable:
                raise ApplicationError(str(error), type=constants.MEDIA_UNAVAILABLE) from None
            raise _refused(str(error)) from None
        digest = hashlib.sha256(media.content).hexdigest()
        path = await asyncio.to_thread(
            _store, Path(self.media_dir), request.provider, digest, media.content_type, media.content
        )
        return StoredMedia(str(path), media.content_type, digest, len(media.content))


def _refused(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=constants.MEDIA_UNAVAILABLE, non_retryable=True)


def _store(folder: Path, provider: str, digest: str, content_type: str, content: bytes) -> Path:
    """Write once, atomically (a reader never sees half a file); the same media is one file."""
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ""
    target = folder / provider / f"{digest}{extension}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".fetching-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
