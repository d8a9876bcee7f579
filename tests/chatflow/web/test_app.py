"""The assembled web app: webhooks go through the inbound edge (opt-out, help, dedupe), statuses
on to the business, and the app's loops stop with it."""

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import respx
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.signing import signature
from chatflow.edge.optout import OptOuts
from chatflow.temporal.workflow import ConversationWorkflow
from conversations.demo import Demo
from tests.chatflow.runtime.devstack import ROOT, chatflow_env
from tests.helpers import (
    ConversationHandle,
    RecordingChannel,
    new_customer,
    running_app,
    running_worker,
    started_services,
)
from tests.providers.conftest import PUBLIC_URL, TWILIO_NUMBER, make_config, twilio_inbound, twilio_post

URL = f"{PUBLIC_URL}/webhooks/twilio"
CALLBACK = "https://hooks.example.com/chatflow"


async def test_stop_by_sms_is_confirmed_in_twiml_and_silences_the_customer(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()

    def sms(sid: str, text: str) -> dict[str, Any]:
        return twilio_post(URL, twilio_inbound(sid, text, From=customer))

    async with started_services(make_config(), [Demo], client=dev_env.client, redis=redis) as services:
        bot = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        async with running_worker(services), running_app(services) as web:
            hello = await web.post(URL, **sms("SM" + "1" * 32, "hello"))
            again = await web.post(URL, **sms("SM" + "1" * 32, "hello"))
            greeting = await bot.wait_for(customer, 2)  # the demo's greeting and menu
            stop = await web.post(URL, **sms("SM" + "2" * 32, "Stop"))
            later = await web.post(URL, **sms("SM" + "3" * 32, "are you there?"))
            help = await web.post(URL, **sms("SM" + "4" * 32, "HELP"))
            # STOP ends the conversation at once; what reached it is in its transcript.
            conversation = ConversationRef("sms", TWILIO_NUMBER, customer).id
            handle: ConversationHandle = dev_env.client.get_workflow_handle_for(ConversationWorkflow.run, conversation)
            result = await handle.result()
            snapshot = await handle.query(ConversationWorkflow.snapshot)

    assert [r.status_code for r in (hello, again, stop, later, help)] == [200] * 5
    # The retry, STOP and what followed: no flow.
    assert [t.text for t in snapshot.transcript if t.direction == "in"] == ["hello"]
    assert result.outcome == "cancelled"  # the conversation was ended
    assert bot.to(customer) == greeting  # nothing more was sent to the customer
    assert "<Message>" in stop.text and "unsubscribed" in stop.text.lower()
    assert "<Message>" not in later.text
    assert "<Message>" in help.text
    assert await OptOuts(redis).is_opted_out(Address("tel", TWILIO_NUMBER), Address("tel", customer))


async def test_delivery_statuses_reach_the_business_callback_signed(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    config = make_config(callback_url=CALLBACK, callback_secret="hook-secret")
    status_url = f"{PUBLIC_URL}/webhooks/twilio/status"
    customer = new_customer()
    fields = {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered", "From": TWILIO_NUMBER, "To": customer}
    async with started_services(config, [Demo], client=dev_env.client, redis=redis) as services:
        with respx.mock(base_url=CALLBACK) as hooks:
            hook = hooks.post("").mock(side_effect=[httpx.Response(503), httpx.Response(204)])
            async with running_worker(services), running_app(services) as web:
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
    assert body["status"] == "delivered" and body["customer"] == customer and body["number"] == TWILIO_NUMBER
    assert request.headers["X-Chatflow-Signature"] == signature("hook-secret", request.content)


# Run apart, in a process of its own: an app whose loops do not stop keeps polling Redis (and
# forwarding its buffer) for as long as the process lives.
STOPS = """
import asyncio, os, sys
from chatflow.domain.config import Config, Settings
from chatflow.runtime.services import Services
from tests.helpers import running_app

async def main(address, redis_url):
    settings = Settings(temporal_address=address, redis_url=redis_url)
    services = await Services.start(Config(numbers=[], flow_modules=[], settings=settings), [])

    async def start_ready_stop():
        async with running_app(services) as web:
            assert (await web.get("/readyz")).status_code == 200

    for attempt in range(5):
        serving = asyncio.create_task(start_ready_stop())
        done, _ = await asyncio.wait([serving], timeout=10)
        if not done:
            print(f"attempt {attempt + 1}: the app's loops did not stop within 10 s of its shutdown", flush=True)
            os._exit(1)
        serving.result()
    print("stopped", flush=True)
    os._exit(0)

asyncio.run(main(*sys.argv[1:3]))
"""


def test_the_apps_loops_stop_when_it_stops_right_after_starting(dev_env: WorkflowEnvironment, valkey_url: str) -> None:
    """`chatflow web` stopped (SIGTERM) just after it started, on the Redis client it runs on."""
    address = dev_env.client.service_client.config.target_host
    done = subprocess.run(
        [sys.executable, "-c", STOPS, address, f"{valkey_url}/9"],  # a database no other test uses
        cwd=ROOT,
        env=chatflow_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.strip() == "stopped"
