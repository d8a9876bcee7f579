"""The assembled web app: webhooks go through the inbound edge (opt-out, help, dedupe)."""

import httpx
from temporalio.testing import WorkflowEnvironment

from chatflow.app import create_app
from chatflow.edge.optout import OptOuts
from chatflow.messages import InboundMessage
from tests.providers.conftest import CUSTOMER, PUBLIC_URL, TWILIO_NUMBER, make_config, twilio_inbound, twilio_post

URL = f"{PUBLIC_URL}/webhooks/twilio"


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
