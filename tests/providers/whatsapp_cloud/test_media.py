"""Cloud API media fetched only when a flow asks (`convo.fetch_media`): `GET /{media-id}` with the
access token (Meta's documented answer: url, mime_type, sha256, file_size, id), then the url with
the token again, both mocked with respx. The bytes go to the worker's media folder, never into the
conversation's history, and neither does the token or the download url."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, Convo, End, Flow, media
from chatflow.domain.addresses import ConversationRef
from chatflow.domain.errors import MediaUnavailable
from providers.whatsapp_cloud import WhatsAppCloudChannel
from tests.helpers import new_customer
from tests.providers.conftest import GRAPH_API, WHATSAPP_NUMBER, make_config, meta_messages, meta_post
from tests.providers.whatsapp_stack import whatsapp_stack

TOKEN = "meta-access-token"  # make_settings' WHATSAPP_ACCESS_TOKEN
PHOTO = b"\xff\xd8\xff\xe0" + b"a receipt, as a JPEG" * 100
LOOKASIDE = "https://lookaside.fbsbx.com/whatsapp_business/attachments/"


def described(media_id: str, content: bytes, *, size: int | None = None, sha256: str = "") -> httpx.Response:
    """Meta's answer to GET /{media-id}, as its media reference shows it."""
    return httpx.Response(
        200,
        json={
            "messaging_product": "whatsapp",
            "url": f"{LOOKASIDE}?mid={media_id}&ext=1760000000&hash=ATuQZ5xJKc",
            "mime_type": "image/jpeg",
            "sha256": sha256 or hashlib.sha256(content).hexdigest(),
            "file_size": size if size is not None else len(content),
            "id": media_id,
        },
    )


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def channel() -> AsyncIterator[WhatsAppCloudChannel]:
    async with httpx.AsyncClient() as http:
        yield WhatsAppCloudChannel(make_config(), http)


async def test_the_media_is_asked_for_and_downloaded_with_the_token(
    channel: WhatsAppCloudChannel, graph: respx.MockRouter
) -> None:
    about = graph.get(f"{GRAPH_API}/v21.0/1037543291543636").mock(return_value=described("1037543291543636", PHOTO))
    file = graph.get(url__startswith=LOOKASIDE).mock(return_value=httpx.Response(200, content=PHOTO))
    fetched = await channel.fetch_media("1037543291543636", 1_000_000)
    assert (fetched.content, fetched.content_type) == (PHOTO, "image/jpeg")
    for route in (about, file):
        assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("about", "file", "reason", "retryable"),
    [
        (described("77", PHOTO, size=5_000_000), None, "over the 1000000-byte limit", False),
        (described("77", PHOTO, size=10), httpx.Response(200, content=PHOTO * 1000), "over the 1000000-byte", False),
        (described("77", PHOTO, sha256="0" * 64), httpx.Response(200, content=PHOTO), "does not match", True),
        (httpx.Response(404, json={"error": {"code": 100, "message": "Unsupported get request."}}), None, "404", False),
        (httpx.Response(503), None, "503", True),
    ],
)
async def test_a_media_too_large_gone_or_not_what_meta_said_is_unavailable(
    channel: WhatsAppCloudChannel,
    graph: respx.MockRouter,
    about: httpx.Response,
    file: httpx.Response | None,
    reason: str,
    retryable: bool,
) -> None:
    graph.get(f"{GRAPH_API}/v21.0/77").mock(return_value=about)
    downloaded = graph.get(url__startswith=LOOKASIDE).mock(return_value=file or httpx.Response(500))
    with pytest.raises(MediaUnavailable, match=reason) as raised:
        await channel.fetch_media("77", 1_000_000)
    assert raised.value.retryable is retryable and TOKEN not in str(raised.value)
    if file is None:
        assert not downloaded.called


class Receipt(Flow):
    name = "media_receipt"

    ask = Ask("Send us a photo of your receipt.", branches={media("image"): "keep"}, save_as="photo")

    async def keep(self, convo: Convo) -> Any:
        convo.data["stored"] = await convo.fetch_media(convo.data["photo"], max_bytes=len(PHOTO))
        return self.thanks

    thanks = End("completed", "Got it, thanks!")


def meta_image(wamid: str, media_id: str, sender: str) -> dict[str, Any]:
    image = {"caption": "receipt", "mime_type": "image/jpeg", "sha256": "abc", "id": media_id}
    return {"from": sender, "id": wamid, "timestamp": "1760000000", "type": "image", "image": image}


async def hello_and_photo(stack: Any, ref: ConversationRef, media_id: str) -> None:
    """The customer writes (the flow starts and asks), then sends the photo."""
    sender = ref.customer[1:]
    for message in ({"type": "text", "text": {"body": "hi"}}, meta_image("", media_id, sender)):
        sent = {"from": sender, "timestamp": "1760000000", **message, "id": "wamid.IN" + uuid.uuid4().hex}
        assert (await stack.web.post("/webhooks/whatsapp", **meta_post(meta_messages(sent)))).status_code == 200
        await stack.view_until(ref, lambda v: bool(v.get("transcript")) and v["transcript"][-1]["message_id"])


async def history_text(stack: Any, ref: ConversationRef) -> str:
    """Every event of the conversation's history as protobuf text: payloads' JSON readable in it."""
    handle = stack.client.get_workflow_handle(ref.id)
    return "\n".join(str(event) for event in (await handle.fetch_history()).events)


async def test_a_flow_fetches_the_customers_photo_into_the_media_folder_and_not_into_history(
    dev_env: WorkflowEnvironment, redis: Redis, tmp_path: Path
) -> None:
    customer = new_customer()
    media_id = str(uuid.uuid4().int)[:16]
    ref = ConversationRef("whatsapp", WHATSAPP_NUMBER, customer)
    async with whatsapp_stack(dev_env.client, redis, [Receipt], Receipt.name, media_dir=str(tmp_path)) as stack:
        stack.router.get(f"{GRAPH_API}/v21.0/{media_id}").mock(return_value=described(media_id, PHOTO))
        stack.router.get(url__startswith=LOOKASIDE).mock(return_value=httpx.Response(200, content=PHOTO))
        await hello_and_photo(stack, ref, media_id)
        view = await stack.view_until(ref, lambda v: v.get("outcome") == "completed")
        stored = view["data"]["stored"]
        digest = hashlib.sha256(PHOTO).hexdigest()
        assert stored == {
            "path": str(tmp_path / "whatsapp_cloud" / f"{digest}.jpg"),
            "content_type": "image/jpeg",
            "sha256": digest,
            "size": len(PHOTO),
        }
        assert Path(stored["path"]).read_bytes() == PHOTO
        assert any(f"media {media_id} fetched" in line["text"] for line in view["trace"])
        history = await history_text(stack, ref)
        assert media_id in history and digest in history  # what the flow asked for and got
        assert TOKEN not in history and "lookaside" not in history and "a receipt, as a JPEG" not in history


async def test_a_media_over_the_flows_bound_takes_the_failure_branch(
    dev_env: WorkflowEnvironment, redis: Redis, tmp_path: Path
) -> None:
    customer = new_customer()
    ref = ConversationRef("whatsapp", WHATSAPP_NUMBER, customer)
    async with whatsapp_stack(dev_env.client, redis, [Receipt], Receipt.name, media_dir=str(tmp_path)) as stack:
        stack.router.get(f"{GRAPH_API}/v21.0/42").mock(return_value=described("42", PHOTO * 2))
        await hello_and_photo(stack, ref, "42")
        view = await stack.view_until(ref, lambda v: v.get("outcome") == "failed")
        assert view["outcome"] == "failed" and "over the" in view["reason"]
        assert list(tmp_path.iterdir()) == []
