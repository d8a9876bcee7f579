"""A customer's media from the Cloud API, fetched when a flow asks for it (`convo.fetch_media`).

Meta's webhook gives a media id. `GET /{media-id}` with the access token answers where the file
is (`url`, valid for minutes), its `mime_type`, `sha256` and `file_size`; the file itself is a
`GET` of that url with the token again. The token goes in the Authorization header only: never in
a URL, an error or a log line (errors name the media id, not the download url).
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from chatflow.domain.errors import MediaUnavailable
from chatflow.domain.messages import MediaContent
from providers._messages import shown
from providers.whatsapp_cloud.graph import graph_url
from providers.whatsapp_cloud.inbound import MEDIA_ID
from providers.whatsapp_cloud.settings import CloudSettings

TIMEOUT = 30.0


class CloudMedia:
    def __init__(self, settings: CloudSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.access_token}"}

    async def fetch(self, media_id: str, max_bytes: int) -> MediaContent:
        if not MEDIA_ID.fullmatch(media_id):
            raise MediaUnavailable(f"{shown(media_id)} is not a media id")
        about = await self._about(media_id)
        size = _number(about.get("file_size"))
        if size is not None and size > max_bytes:
            raise MediaUnavailable(f"media {media_id} is {size} bytes, over the {max_bytes}-byte limit")
        url = about.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise MediaUnavailable(f"the Graph API gave no url for media {media_id}")
        content = await self._download(media_id, url, max_bytes)
        expected = str(about.get("sha256") or "").lower()
        if expected and hashlib.sha256(content).hexdigest() != expected:
            raise MediaUnavailable(f"media {media_id} does not match the sha256 Meta gave for it", retryable=True)
        return MediaContent(content, str(about.get("mime_type") or ""))

    async def _about(self, media_id: str) -> dict[str, Any]:
        try:
            response = await self.http.get(graph_url(self.settings, media_id), headers=self._headers(), timeout=TIMEOUT)
        except httpx.HTTPError as error:
            raise MediaUnavailable(
                f"Graph API unreachable for media {media_id}: {type(error).__name__}", retryable=True
            ) from None
        _check(response, f"media {media_id}")
        try:
            about = response.json()
        except ValueError:
            about = None
        if not isinstance(about, dict):
            raise MediaUnavailable(f"the Graph API's answer about media {media_id} is not a JSON object")
        return about

    async def _download(self, media_id: str, url: str, max_bytes: int) -> bytes:
        """The file, read no further than `max_bytes` (Meta's file_size may be missing or wrong)."""
        chunks: list[bytes] = []
        read = 0
        try:
            async with self.http.stream("GET", url, headers=self._headers(), timeout=TIMEOUT) as response:
                _check(response, f"the file of media {media_id}")
                async for chunk in response.aiter_bytes():
                    read += len(chunk)
                    if read > max_bytes:
                        raise MediaUnavailable(f"media {media_id} is over the {max_bytes}-byte limit")
                    chunks.append(chunk)
        except httpx.HTTPError as error:
            raise MediaUnavailable(
                f"download of media {media_id} failed: {type(error).__name__}", retryable=True
            ) from None
        return b"".join(chunks)


def _check(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    status = response.status_code
    retryable = status == 429 or status >= 500
    gone = " (Meta keeps media for 30 days)" if status == 404 else ""
    raise MediaUnavailable(f"the Graph API answered {status} for {what}{gone}", retryable=retryable)


def _number(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
