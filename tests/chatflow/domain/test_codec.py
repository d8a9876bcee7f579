"""The codec that writes messages into Redis (the buffer, the console, the fallback)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from chatflow.domain.codec import dumps, fields_of, inbound_from, outbound_from
from chatflow.domain.messages import (
    InboundMessage,
    Location,
    Media,
    Option,
    OutboundMessage,
    Reaction,
    TemplateButton,
    TemplateMessage,
    TemplateParameter,
)

INBOUND = [
    InboundMessage("SM1", "sms", "twilio", "+14155550100", "+15005550006", text="hi"),
    InboundMessage(
        "wamid.1",
        "whatsapp",
        "whatsapp_cloud",
        "+14155550100",
        "+15005550006",
        text="Ça coûte 10 € 🙂",
        media=[Media("https://x/y.jpg", "image/jpeg", "image"), Media("https://x/z.pdf", kind="document")],
        payload="b1",
        profile_name="Zoë",
        received_at="2026-12-07T19:00:00+00:00",
        data={"answers": [{"q": 1, "a": ["x", None, 2.5, True]}], "nested": {"deep": {"er": []}}},
        location=Location(48.85, 2.35, "Paris", "1 rue X"),
        reaction=Reaction("wamid.0", "👍"),
        unbuffered=True,
    ),
]


@pytest.mark.parametrize("message", INBOUND)
def test_an_inbound_message_is_encoded_with_all_its_fields_and_read_back(message: InboundMessage) -> None:
    assert fields_of(message) == asdict(message)
    assert inbound_from(fields_of(message)) == message


def test_an_outbound_message_is_encoded_with_all_its_fields_and_read_back() -> None:
    template = TemplateMessage(
        "order_update",
        "fr",
        header=[TemplateParameter("https://x/a.jpg", kind="image")],
        body=[TemplateParameter("Ada", name="first_name")],
        buttons=[TemplateButton(0, "quick_reply", [TemplateParameter("yes", kind="payload")])],
        content_variables={"1": "Ada"},
    )
    message = OutboundMessage(
        "whatsapp",
        "twilio",
        "+15005550006",
        "+14155550100",
        "Votre commande",
        options=[Option("1", "Oui", "c'est ça")],
        media=[Media("https://x/y.jpg")],
        template_message=template,
        location=Location(1.5, -2.0),
        reaction=Reaction("SM0"),
    )
    assert fields_of(message) == asdict(message)
    assert outbound_from(fields_of(message)) == message


def test_a_lone_surrogate_is_encoded_not_refused() -> None:
    # A provider's broken text: measured and buffered, never a 500.
    message = InboundMessage("SM1", "sms", "twilio", "+14155550100", "+15005550006", text="a\ud800b")
    assert '"text":"a\ud800b"' in dumps(message)
