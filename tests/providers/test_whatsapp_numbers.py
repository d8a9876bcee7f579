"""One WhatsApp customer, one conversation, whichever form of their number a door reports.

WhatsApp reports a Mexican mobile as 521 + 10 digits (the "1" Mexico dropped in 2019) where Meta's
Cloud API and E.164 have 52 + 10 digits; an Argentine mobile is 549 + 10 digits, the E.164 form
of a mobile (phonenumbers' too), sometimes written with the national "15" as well. Both Twilio's
door (`From=whatsapp:+...`) and Meta's (`from`, `recipient_id`) read them the same way.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chatflow.domain.addresses import ConversationRef, e164
from tests.providers.conftest import (
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    Recorder,
    meta_messages,
    meta_post,
    meta_text,
    twilio_inbound,
    twilio_post,
)

TWILIO_INBOUND = "https://chat.example.com/webhooks/twilio"
TWILIO_STATUS = "https://chat.example.com/webhooks/twilio/status"
META = "/webhooks/whatsapp"

# (the digits WhatsApp reports, the customer they are)
NUMBERS = [
    ("5215512345678", "+525512345678"),  # Mexico City mobile as WhatsApp sends it
    ("525512345678", "+525512345678"),  # the same, as the Cloud API normalises it
    ("5213312345678", "+523312345678"),  # Guadalajara, WhatsApp's form
    ("523312345678", "+523312345678"),
    ("5491123456789", "+5491123456789"),  # Buenos Aires mobile: WhatsApp's wa_id is E.164's form
    ("549111523456789", "+5491123456789"),  # the same with the national mobile "15" as well
    ("14155550100", "+14155550100"),
]


@pytest.mark.parametrize(
    ("written", "customer"),
    [
        *[(f"+{digits}", customer) for digits, customer in NUMBERS],
        ("whatsapp:+5215512345678", "+525512345678"),
        ("+52 1 55 1234 5678", "+525512345678"),
        ("+54 9 11 15 2345-6789", "+5491123456789"),
        ("+54 11 15 2345-6789", "+5491123456789"),  # national mobile form, read by phonenumbers
    ],
)
def test_e164_reads_every_form_of_a_mexican_or_argentine_mobile_as_one(written: str, customer: str) -> None:
    assert e164(written) == customer


@pytest.mark.parametrize("written", ["+52155123456789", "+5215512", "+54 9 11 15 2345 67890"])
def test_numbers_that_are_not_possible_without_the_legacy_digit_either_are_refused(written: str) -> None:
    with pytest.raises(ValueError, match="not a possible phone number"):
        e164(written)


@pytest.mark.parametrize(("digits", "customer"), NUMBERS)
async def test_twilios_whatsapp_door_keys_the_conversation_by_the_one_form(
    client: httpx.AsyncClient, recorder: Recorder, digits: str, customer: str
) -> None:
    fields = twilio_inbound(From=f"whatsapp:+{digits}", To=f"whatsapp:{TWILIO_NUMBER}", WaId=digits)
    response = await client.post(TWILIO_INBOUND, **twilio_post(TWILIO_INBOUND, fields))
    assert response.status_code == 200, response.text
    [message] = recorder.messages
    assert (message.channel, message.customer) == ("whatsapp", customer)


@pytest.mark.parametrize(("digits", "customer"), NUMBERS)
async def test_metas_door_keys_the_conversation_by_the_one_form(
    client: httpx.AsyncClient, recorder: Recorder, digits: str, customer: str
) -> None:
    payload = meta_messages(meta_text(sender=digits), contacts=[{"profile": {"name": "Ana"}, "wa_id": digits}])
    response = await client.post(META, **meta_post(payload))
    assert response.status_code == 200, response.text
    [message] = recorder.messages
    assert (message.customer, message.profile_name) == (customer, "Ana")


async def test_a_mexican_customer_writing_in_both_forms_stays_in_one_conversation_on_each_door(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    for i, digits in enumerate(("5215512345678", "525512345678")):
        fields = twilio_inbound(sid=f"SM{i:032d}", From=f"whatsapp:+{digits}", To=f"whatsapp:{TWILIO_NUMBER}")
        assert (await client.post(TWILIO_INBOUND, **twilio_post(TWILIO_INBOUND, fields))).status_code == 200
        payload = meta_messages(meta_text(f"wamid.{i}", sender=digits))
        assert (await client.post(META, **meta_post(payload))).status_code == 200
    conversations = {ConversationRef(m.channel, m.number, m.customer).id for m in recorder.messages}
    assert conversations == {
        ConversationRef("whatsapp", TWILIO_NUMBER, "+525512345678").id,
        ConversationRef("whatsapp", WHATSAPP_NUMBER, "+525512345678").id,
    }


@pytest.mark.parametrize("digits", ["5215512345678", "525512345678"])
async def test_statuses_in_either_form_reach_the_one_conversation(
    client: httpx.AsyncClient, recorder: Recorder, digits: str
) -> None:
    on_twilio = ConversationRef("whatsapp", TWILIO_NUMBER, "+525512345678").id
    on_meta = ConversationRef("whatsapp", WHATSAPP_NUMBER, "+525512345678").id
    recorder.running.update({on_twilio, on_meta})
    fields = {
        "MessageSid": "SM" + "9" * 32,
        "MessageStatus": "delivered",
        "From": f"whatsapp:{TWILIO_NUMBER}",
        "To": f"whatsapp:+{digits}",
    }
    assert (await client.post(TWILIO_STATUS, **twilio_post(TWILIO_STATUS, fields))).status_code == 200
    status: dict[str, Any] = {"id": "wamid.OUT1", "status": "read", "timestamp": "1760000000", "recipient_id": digits}
    assert (await client.post(META, **meta_post(meta_messages(statuses=[status])))).status_code == 200
    assert [conversation for conversation, _ in recorder.reports] == [on_twilio, on_meta]
