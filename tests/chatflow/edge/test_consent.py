"""The consent ledger: a customer's opt-out holds for every number of a brand, in the words of the
number's languages, with the history of how it changed."""

import asyncio
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

import providers
from chatflow.domain.addresses import Address
from chatflow.domain.config import NumberBinding, parse_config
from chatflow.domain.messages import InboundMessage
from chatflow.edge.consent import ConsentLedger, Scopes
from chatflow.edge.dedupe import Dedupe
from chatflow.edge.inbound import InboundEdge
from chatflow.edge.optout import OptOuts
from tests.flows import FLOWS
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services
from tests.providers.conftest import (
    PHONE_NUMBER_ID,
    PUBLIC_URL,
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    make_settings,
    twilio_inbound,
    twilio_post,
)

KEY = "s3cret"
BRAND_TOML = f"""
[[numbers]]
number = "{TWILIO_NUMBER}"
provider = "twilio"
channel = "sms"
flow = "parrot"
brand = "acme"

[[numbers]]
number = "{WHATSAPP_NUMBER}"
provider = "whatsapp_cloud"
flow = "parrot"
phone_number_id = "{PHONE_NUMBER_ID}"
brand = "acme"
"""
SPANISH = NumberBinding(Address("tel", TWILIO_NUMBER), "console", "sms", "parrot", keyword_languages=("es", "en"))


async def until_ended(api: httpx.AsyncClient, conversation: str) -> dict[str, Any]:
    for _ in range(400):
        view: dict[str, Any] = (await api.get(f"/api/conversations/{conversation}")).json()
        if view.get("outcome"):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"{conversation} never ended: {view}")


async def test_a_stop_to_the_brands_sms_number_keeps_its_whatsapp_number_from_messaging_them(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    config = parse_config(BRAND_TOML, make_settings(api_key=KEY), channels=providers.CHANNELS)
    async with started_services(config, FLOWS, client=dev_env.client, redis=redis) as services:
        whatsapp = services.channels["whatsapp_cloud"] = RecordingChannel(services.channels["whatsapp_cloud"])
        services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        async with running_worker(services), running_app(services) as web:
            url = f"{PUBLIC_URL}/webhooks/twilio"
            stop = await web.post(url, **twilio_post(url, twilio_inbound("SM" + "5" * 32, "STOP", From=customer)))
            web.headers["Authorization"] = f"Bearer {KEY}"
            body = {"flow": "payment", "to": customer, "from": WHATSAPP_NUMBER}
            started = await web.post("/api/conversations", json=body)
            view = await until_ended(web, started.json()["id"])

    assert stop.status_code == 200 and "unsubscribed" in stop.text
    assert started.status_code in (200, 201, 202), started.text
    # The WhatsApp number's send was refused: the journey took its failure branch, and said why.
    assert view["outcome"] == "failed" and "opted out" in view["reason"], view
    assert whatsapp.to(customer) == []
    record = await OptOuts(redis, Scopes(config.numbers)).lookup(WHATSAPP_NUMBER, customer)
    assert (record.scope, record.state) == ("brand:acme", "out")
    assert [(e.how, e.number, e.word) for e in record.history] == [("keyword", TWILIO_NUMBER, "STOP")]


async def test_spanish_words_opt_out_and_in_and_are_answered_in_spanish(redis: Redis) -> None:
    delivered: list[str] = []

    async def deliver(message: InboundMessage, flow: str) -> None:
        delivered.append(message.text)

    optouts = OptOuts(redis)
    edge = InboundEdge(deliver, optouts, Dedupe(redis))
    customer = new_customer()

    def sms(text: str, n: int) -> InboundMessage:
        return InboundMessage(f"consent-es-{customer}-{n}", "sms", "console", customer, TWILIO_NUMBER, text)

    baja = await edge.receive(SPANISH, sms("Baja", 1))
    out = await optouts.is_opted_out(TWILIO_NUMBER, customer)
    alta = await edge.receive(SPANISH, sms("ALTA", 2))
    parar = await edge.receive(SPANISH, sms("parar!", 3))
    ayuda = await edge.receive(SPANISH, sms("Ayuda", 4))
    stop_in_english = await edge.receive(SPANISH, sms("START", 5))

    assert (baja.action, out) == ("opted_out", True)
    assert baja.reply.startswith("Te has dado de baja")
    assert (alta.action, alta.reply) == ("opted_in", "Te has vuelto a suscribir. Responde BAJA para darte de baja.")
    assert parar.action == "opted_out" and "baja" in parar.reply
    assert ayuda.action == "help" and ayuda.reply.startswith("Responde BAJA")
    # English stays answered, in English, on a number that names it too.
    assert stop_in_english.reply == "You have been resubscribed. Reply STOP to unsubscribe."
    assert delivered == []
    # An English-only number takes BAJA for an ordinary message.
    english = NumberBinding(Address("tel", TWILIO_NUMBER), "console", "sms", "parrot")
    assert (await edge.receive(english, sms("BAJA", 6))).action == "delivered"


async def test_the_ledger_keeps_how_and_when_consent_changed_and_the_newest_wins(redis: Redis) -> None:
    ledger = ConsentLedger(redis)
    customer = new_customer()
    assert (await ledger.lookup(TWILIO_NUMBER, customer)).state == "unknown"
    await ledger.change(TWILIO_NUMBER, customer, "in", "import", note="crm export", at_ms=1_000)
    assert not await ledger.change(TWILIO_NUMBER, customer, "out", "keyword", word="STOP", at_ms=500)  # older
    assert await ledger.change(TWILIO_NUMBER, customer, "out", "dashboard", note="ops@acme", at_ms=2_000)
    record = await ledger.lookup(TWILIO_NUMBER, customer)
    assert record.state == "out" and await ledger.is_opted_out(TWILIO_NUMBER, customer)
    assert [(e.state, e.how, e.note) for e in record.history] == [
        ("in", "import", "crm export"),
        ("out", "dashboard", "ops@acme"),
    ]
    assert record.updated_at == "1970-01-01T00:00:02.000+00:00"
    assert [r.customer async for r in ledger.export(TWILIO_NUMBER)] == [customer]
