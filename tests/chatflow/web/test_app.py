"""The assembled web app: webhooks go through the inbound edge (opt-out, help, dedupe)."""

import asyncio
import json

import httpx
import respx
from temporalio.testing import WorkflowEnvironment

from chatflow.web.app import create_app
from chatflow.edge.delivery_reports import DeliveryReporter, signature
from chatflow.temporal.worker import build_worker
from chatflow.edge.optout import OptOuts
from chatflow.domain.messages import InboundMessage
from tests.providers.conftest import CUSTOMER, PUBLIC_URL, TWILIO_NUMBER, make_config, twilio_inbound, twilio_post

URL = f"{PUBLIC_URL}/webhooks/twilio"
CALLBACK = "https://hooks.example.com/chatflow"


async def test_stop_by_sms_is_confirmed_in_twiml_and_silences_the_customer(dev_env: WorkflowEnvironment, redis):
    delivered: list[InboundMessage] = []

    async def deliver(message: InboundMessage, flow: str) -> None:
        delivered.append(message)

    app = create_app(make_config(), dev_env.client, deliver=deliver, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as web:
        hello = await web.post(URL, **twilio_post(URL, twilio_inbound("SM" + "1" * 32, "hello")))
        again = await web.post(URL, **twilio_post(URL, twilio_inbound("SM" + "1" * 32, "hello")))
        stop = await web.post(URL, **twilio_post(URL, twilio_inbound("SM" + "2" * 32, "Stop")))
        later = await web.post(URL, **twilio_post(URL, twilio_inbound("SM" + "3" * 32, "are you there?")))
        help = await web.post(URL, **twilio_post(URL, twilio_inbound("SM" + "4" * 32, "HELP")))

    assert [r.status_code for r in (hello, again, stop, later, help)] == [200] * 5
    assert [m.text for m in delivered] == ["hello"]  # the retry, STOP and what followed: no flow
    assert "<Message>" in stop.text and "unsubscribed" in stop.text.lower()
    assert "<Message>" not in later.text
    assert "<Message>" in help.text
    assert await OptOuts(redis).is_opted_out(TWILIO_NUMBER, CUSTOMER)


async def test_delivery_statuses_reach_the_business_callback_signed(dev_env: WorkflowEnvironment, redis):
    config = make_config(callback_url=CALLBACK, callback_secret="hook-secret")
    app = create_app(config, dev_env.client, redis=redis)
    reporter = DeliveryReporter(CALLBACK, "hook-secret")
    status_url = f"{PUBLIC_URL}/webhooks/twilio/status"
    fields = {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered", "From": TWILIO_NUMBER, "To": CUSTOMER}
    with respx.mock(base_url=CALLBACK) as hooks:
        hook = hooks.post("").mock(side_effect=[httpx.Response(503), httpx.Response(204)])
        async with build_worker(dev_env.client, [], {}, reporter=reporter):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as web:
                answer = await web.post(status_url, **twilio_post(status_url, fields))
                repeat = await web.post(status_url, **twilio_post(status_url, fields))
            for _ in range(300):
                if hook.call_count == 2:
                    break
                await asyncio.sleep(0.05)
    assert (answer.status_code, repeat.status_code) == (200, 200)
    assert hook.call_count == 2  # the 503 was retried; the repeated status was not reported again
    request = hook.calls.last.request
    body = json.loads(request.content)
    assert body["status"] == "delivered" and body["customer"] == CUSTOMER and body["number"] == TWILIO_NUMBER
    assert request.headers["X-Chatflow-Signature"] == signature("hook-secret", request.content)
