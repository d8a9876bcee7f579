"""Issue 18, finding 7: with CHATFLOW_ID_KEY (and CHATFLOW_PAYLOAD_KEY) a customer's number is in
no name anyone can list: not in Temporal's workflow ids, search attributes, memos or histories as
Temporal's UI fetches them (no codec), nor in a Redis key name. Without the key it is, which the
same test shows (so it can fail).

The real app (Services, the Redis edge, the forwarder, a real Temporal and worker) takes a journey
started through the API and a signed Twilio webhook from the customer, as in production.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import respx
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.addresses import ID_KEY, ConversationRef
from chatflow.temporal.client import connect
from chatflow.temporal.converter import PAYLOAD_KEY, data_converter
from conversations.demo import Demo
from tests.chatflow.temporal.histories import history_text
from tests.flows import Payment
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services
from tests.providers.conftest import PUBLIC_URL, TWILIO_NUMBER, make_config, twilio_inbound, twilio_post

KEY = "the-api-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
INBOUND = f"{PUBLIC_URL}/webhooks/twilio"
STATUS = f"{PUBLIC_URL}/webhooks/twilio/status"
CALLBACK = "https://business.example/chatflow/status"
LOOPBACK = "http://127.0.0.1:8000"  # the dashboard's cookie is not Secure on loopback


class PiiPayment(Payment):
    # A flow of its own: its runs' results are encrypted under this test's key, which other
    # tests listing "payment" runs on the shared server do not hold.
    name = "pii_payment"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
async def encrypting_client(dev_env: WorkflowEnvironment) -> Client:
    """A client of the test's Temporal as every chatflow process builds one with a payload key."""
    target = dev_env.client.service_client.config.target_host
    return await connect(address=target, namespace=dev_env.client.namespace, env={PAYLOAD_KEY: f"pii:{new_key()}"})


async def where_it_appears(raw: Client, redis: Redis, since: datetime, customer: str) -> set[str]:
    """Every place an outsider can list where the customer's number appears, E.164 or digits only:
    workflow ids; what visibility lists (search attributes, memo); a description; a history
    fetched without the codec, as Temporal's UI shows it; Redis key names."""
    forms = (customer, customer.removeprefix("+"))
    found: set[str] = set()

    def check(place: str, text: str) -> None:
        if any(form in text for form in forms):
            found.add(place)

    query = f"StartTime >= '{since.isoformat()}'"
    async for execution in raw.list_workflows(query):
        check("workflow id", execution.id)
        check("search attributes", str(execution.raw_info.search_attributes))
        check("memo", str(execution.raw_info.memo))
        handle = raw.get_workflow_handle(execution.id, run_id=execution.run_id)
        check("description", str((await handle.describe()).raw_description))
        check("history", history_text(await handle.fetch_history()))
    async for name in redis.scan_iter("*"):
        check("redis key name", name if isinstance(name, str) else name.decode())
    return found


@pytest.fixture
def id_key(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """CHATFLOW_ID_KEY for the whole process (the worker and the web app alike), or unset."""
    if request.param:
        monkeypatch.setenv(ID_KEY, new_key())
    else:
        monkeypatch.delenv(ID_KEY, raising=False)
    return str(request.param)


@pytest.mark.parametrize("id_key", [True, False], ids=["with-id-key", "without"], indirect=True)
async def test_with_an_id_key_no_listed_name_holds_the_customers_number(
    id_key: str, encrypting_client: Client, dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    hashed = id_key == "True"
    customer = new_customer()
    plain_id = f"chat:sms:{TWILIO_NUMBER}:{customer}"
    since = datetime.now(UTC)
    config = make_config(api_key=KEY, callback_url=CALLBACK, callback_secret="whsec-pii")
    async with (
        started_services(config, [Demo, PiiPayment], client=encrypting_client, redis=redis) as services,
        respx.mock(assert_all_called=False) as business,
    ):
        reports = business.post(CALLBACK).mock(return_value=httpx.Response(204))
        sends = f"SM{uuid.uuid4().hex}"  # message ids of this test's own: report workflows are named by them
        bot = services.channels["twilio"] = RecordingChannel(services.channels["twilio"], ids=sends)
        async with running_worker(services), running_app(services, LOOPBACK) as web:
            journey = {"flow": "pii_payment", "to": customer, "from": TWILIO_NUMBER, "data": {"phone": customer}}
            started = await web.post("/api/conversations", json=journey, headers=AUTH)
            assert started.status_code == 202, started.text
            conversation = started.json()["id"]
            assert (conversation != plain_id) is hashed
            assert conversation == ConversationRef("sms", TWILIO_NUMBER, customer).id
            assert await bot.wait_for(customer, 1) == ["Your payment failed. Reply PAY for a new link."]

            # The customer answers by SMS: a signed webhook reaches the same conversation.
            reply = twilio_post(INBOUND, twilio_inbound("SM" + uuid.uuid4().hex, "PAY", From=customer))
            assert (await web.post(INBOUND, **reply)).status_code == 200
            assert (await bot.wait_for(customer, 2))[1] == "Thanks, all settled."
            # Its delivery status reaches the conversation too.
            status = {"AccountSid": config.settings.environment["TWILIO_ACCOUNT_SID"], "From": TWILIO_NUMBER}
            status |= {
                "To": customer,
                "MessageSid": f"{sends}-1",
                "MessageStatus": "delivered",
                "SmsStatus": "delivered",
            }
            assert (await web.post(STATUS, **twilio_post(STATUS, status))).status_code in (200, 204)
            # ...and the business's delivery report names the customer by their number (the memo).
            for _ in range(600):
                if reports.calls:
                    break
                await asyncio.sleep(0.05)
            [report] = [json.loads(call.request.content) for call in reports.calls]
            assert (report["conversation_id"], report["customer"], report["status"]) == (
                conversation,
                customer,
                "delivered",
            )

            # A caller who knows the number finds the conversation by it (the id is computed).
            await encrypting_client.get_workflow_handle(conversation).result()
            found = await web.get(f"/api/conversations/{plain_id}", headers=AUTH)
            assert found.status_code == 200, found.text
            view = found.json()
            assert view["id"] == conversation and view["outcome"] == "completed"
            assert [turn["text"] for turn in view["transcript"]][-2:] == ["PAY", "Thanks, all settled."]

            # A signed-in operator still sees the number on the dashboard when they ask for it.
            assert (await web.post("/dashboard/login", data={"key": KEY, "next": "/dashboard"})).status_code == 303
            rows = (await web.get("/dashboard/api/conversations", params={"show": "1", "customer": customer})).json()
            assert [row["customer"] for row in rows["rows"]] == [customer]
            page = await web.get(f"/dashboard/conversations/{conversation}", params={"show": "1"})
            assert page.status_code == 200 and f'id="fact-customer">{customer}<' in page.text
            masked = (await web.get("/dashboard/api/conversations", params={"customer": customer})).json()
            assert [row["customer"] for row in masked["rows"]] == [customer[:5] + "*****" + customer[-2:]]
            # Unless asked, the page holds no number at all once ids hold none (links included).
            assert (customer not in str(masked)) is hashed

    leaks = await where_it_appears(dev_env.client, redis, since, customer)
    if hashed:
        assert leaks == set()
    else:
        # Without the id key the number is in the id, and so everywhere the id goes; and in the
        # journey data Temporal indexes unencrypted.
        assert {"workflow id", "search attributes", "redis key name"} <= leaks, leaks


async def test_a_memo_under_another_deployments_key_of_the_same_id_reads_as_unreadable() -> None:
    # A namespace shared with another deployment that also calls its key k1: listing its runs
    # must not fail on cryptography's InvalidTag, which the readers of memos do not expect.
    theirs = await data_converter({PAYLOAD_KEY: f"k1:{new_key()}"}).encode([{"customer": "+14155550100"}])
    with pytest.raises(ValueError, match="does not decrypt"):
        await data_converter({PAYLOAD_KEY: f"k1:{new_key()}"}).decode(theirs)
