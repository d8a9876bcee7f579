"""The baseline's webhook and worker, each run in a process of its own by `bench.serve`.

The webhook does what a first version does: read the form, check Twilio's signature, and
signal-with-start the customer's workflow before answering, so Temporal's answer time is the
webhook's. The send activity posts to the Messages API with one shared async HTTP client.
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker
from twilio.request_validator import RequestValidator

from bench.baseline.workflow import SEND, TASK_QUEUE, BaselineConversation, Inbound, Outbound, Start
from bench.config import ACCOUNT_SID, AUTH_TOKEN, NUMBER

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def workflow_id(customer: str) -> str:
    return f"baseline-{NUMBER}-{customer}"


def web_app(client: Client, public_url: str, history_limit: int) -> Starlette:
    validator = RequestValidator(AUTH_TOKEN)

    async def twilio(request: Request) -> Response:
        fields = {key: str(value) for key, value in (await request.form()).items()}
        url = public_url + request.url.path
        if not validator.validate(url, fields, request.headers.get("X-Twilio-Signature", "")):
            return Response("bad signature", status_code=403)
        customer = fields.get("From", "")
        await client.start_workflow(
            BaselineConversation.run,
            Start(customer, history_limit),
            id=workflow_id(customer),
            task_queue=TASK_QUEUE,
            start_signal="inbound",
            start_signal_args=[Inbound(fields.get("MessageSid", ""), fields.get("Body", ""))],
        )
        return Response(EMPTY_TWIML, media_type="text/xml")

    return Starlette(routes=[Route("/webhooks/twilio", twilio, methods=["POST"])])


class Sender:
    def __init__(self, api_url: str) -> None:
        self.url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        self.http = httpx.AsyncClient(auth=(ACCOUNT_SID, AUTH_TOKEN), limits=limits, timeout=10)

    @activity.defn(name=SEND)
    async def send(self, message: Outbound) -> str:
        response = await self.http.post(self.url, data={"To": message.to, "From": NUMBER, "Body": message.body})
        if response.status_code == 429 or response.status_code >= 500:
            raise ApplicationError(f"Twilio answered {response.status_code}")  # retried
        if response.status_code >= 400:
            raise ApplicationError(f"Twilio refused: {response.text[:200]}", non_retryable=True)
        return str(response.json()["sid"])


def worker(client: Client, sender: Sender, max_cached: int) -> Worker:
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[BaselineConversation],
        activities=[sender.send],
        max_cached_workflows=max_cached,
    )
