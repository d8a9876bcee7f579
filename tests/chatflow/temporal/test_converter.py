"""chatflow's data converter reads every payload exactly as the SDK's default one does."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.converter import DataConverter

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.errors import ConfigError
from chatflow.domain.messages import BusinessEvent, InboundMessage, Media, Option, OutboundMessage, SendResult
from chatflow.flows.engine import FlowState, WaitState
from chatflow.temporal.converter import DATA_CONVERTER, data_converter, payload_keys
from chatflow.temporal.records import (
    ConversationInput,
    ConversationResult,
    ConversationSnapshot,
    InboxItem,
    TraceLine,
    Turn,
)

REF = ConversationRef("whatsapp", "+15005550006", "+5215512345678", "whatsapp_cloud")
MESSAGE = InboundMessage(
    id="wamid.1",
    channel="whatsapp",
    provider="whatsapp_cloud",
    customer=REF.customer,
    number=REF.number,
    text="Sí, la talla M",
    media=[Media(url="https://example.test/a.jpg", content_type="image/jpeg")],
    payload="size_m",
    received_at="2026-11-22T10:00:00+00:00",
    data={"answers": {"size": "M", "count": 2}},
)

RECORDS: list[tuple[str, Any]] = [
    ("a message", MESSAGE),
    (
        "a send",
        OutboundMessage(
            channel="sms",
            provider="twilio",
            number="+15005550006",
            customer="+14155550100",
            text="Pick one",
            options=[Option(id="1", title="Hours")],
            conversation_id=REF.id,
        ),
    ),
    ("a send's result", SendResult(message_id="SM1", status="queued")),
    (
        "a conversation's first input",
        ConversationInput(flow="demo", conversation=REF, inbox=[InboxItem(message=MESSAGE)]),
    ),
    (
        "a run continued as new",
        ConversationInput(
            flow="payment_recovery",
            conversation=REF,
            data={"order_id": "A-1", "amount": 12.5, "items": [1, 2]},
            version=3,
            started_by="message",
            resume=FlowState(
                step="ask", data={"x": 1}, wait=WaitState(attempts=1, deadline="2026-11-23T00:00:00+00:00")
            ),
            inbox=[
                InboxItem(event=BusinessEvent(name="paid", data={"amount": 3}, id="e1")),
                InboxItem(message=MESSAGE),
            ],
            seen=["a", "b"],
            transcript=[
                Turn("out", "hello", "2026-11-22T10:00:00+00:00", "SM1", "delivered", options=["Yes"], by="ana")
            ],
            signals=7,
            trace=[TraceLine("2026-11-22T10:00:00+00:00", "step ask (Ask)")],
            history_limit=500,
            indexed=True,
        ),
    ),
    ("a result", ConversationResult(flow="demo", outcome="failed", reason="bug", unhandled=[MESSAGE])),
    (
        "a snapshot",
        ConversationSnapshot(
            id=REF.id,
            flow="demo",
            version=1,
            step="menu",
            outcome="",
            reason="",
            data={},
            transcript=[],
            idle=True,
            signals=1,
            pending=0,
        ),
    ),
]


async def decode(converter: DataConverter, value: Any) -> Any:
    payloads = await DataConverter.default.encode([value])
    return (await converter.decode(payloads, [type(value)]))[0]


@pytest.mark.parametrize("value", [value for _, value in RECORDS], ids=[name for name, _ in RECORDS])
async def test_every_record_decodes_as_the_sdk_decodes_it(value: Any) -> None:
    ours = await decode(DATA_CONVERTER, value)
    assert ours == await decode(DataConverter.default, value)
    assert ours == value
    # what we write is what the SDK writes: any other client reads it
    assert (await DATA_CONVERTER.encode([value])) == (await DataConverter.default.encode([value]))


@dataclass
class Later:
    """A record as a later release might write it, read by a worker that predates the change."""

    name: str
    tags: list[str] = field(default_factory=list)


async def outcome(converter: DataConverter, raw: dict[str, Any]) -> Any:
    try:
        return (await converter.decode(await DataConverter.default.encode([raw]), [Later]))[0]
    except Exception as error:  # noqa: BLE001 - the outcome compared is the exception's type
        return type(error)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"name": "n", "tags": ["a"], "added_later": 1}, Later("n", ["a"])),  # unknown field ignored
        ({"tags": ["a"]}, TypeError),  # a required field missing
        ({"name": "n", "tags": 3}, TypeError),  # a field of the wrong type
    ],
)
async def test_records_of_other_releases_are_read_or_refused_as_the_sdk_does(
    raw: dict[str, Any], expected: Any
) -> None:
    assert await outcome(DATA_CONVERTER, raw) == expected
    assert await outcome(DataConverter.default, raw) == expected


# -- payload encryption (CHATFLOW_PAYLOAD_KEY) --------------------------------------------------


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def test_with_a_payload_key_payloads_are_encrypted_and_read_back() -> None:
    converter = data_converter({"CHATFLOW_PAYLOAD_KEY": f"k1:{new_key()}"})
    [payload] = await converter.encode([MESSAGE])
    assert payload.metadata["encoding"] == b"binary/encrypted" and payload.metadata["encryption-key-id"] == b"k1"
    assert MESSAGE.customer.encode() not in payload.data and MESSAGE.text.encode() not in payload.data
    assert await converter.decode([payload], [InboundMessage]) == [MESSAGE]
    # Payloads from before encryption was turned on are read as they are.
    plain = await DATA_CONVERTER.encode([MESSAGE])
    assert await converter.decode(plain, [InboundMessage]) == [MESSAGE]


async def test_keys_rotate_the_first_encrypts_every_one_decrypts() -> None:
    old, new = new_key(), new_key()
    before = await data_converter({"CHATFLOW_PAYLOAD_KEY": f"k1:{old}"}).encode([MESSAGE])
    rotated = data_converter({"CHATFLOW_PAYLOAD_KEY": f"k2:{new}, k1:{old}"})
    assert await rotated.decode(before, [InboundMessage]) == [MESSAGE]
    after = await rotated.encode([MESSAGE])
    assert after[0].metadata["encryption-key-id"] == b"k2"
    dropped = data_converter({"CHATFLOW_PAYLOAD_KEY": f"k2:{new}"})
    with pytest.raises(ValueError, match="encrypted with key 'k1', which CHATFLOW_PAYLOAD_KEY does not have"):
        await dropped.decode(before, [InboundMessage])
    assert data_converter({}) is DATA_CONVERTER  # no key: nothing encrypted


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("justakey", "each key is kid:base64key"),
        ("k1:not base64!", "key 'k1' is not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "has 5 bytes"),
        (f"k1:{base64.b64encode(bytes(32)).decode()},k1:{base64.b64encode(bytes(32)).decode()}", "given twice"),
        (" , ", "holds no key"),
    ],
)
def test_a_bad_payload_key_is_a_config_error_naming_it(value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        payload_keys(value)


def test_keys_may_be_base64url_without_padding() -> None:
    key = os.urandom(32)
    [(kid, decoded)] = payload_keys("main:" + base64.urlsafe_b64encode(key).decode().rstrip("="))
    assert (kid, decoded) == ("main", key)
