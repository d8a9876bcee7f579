"""`python -m bench.journey_cost`: what a payment-recovery conversation costs Temporal, chatflow
against the baseline written by hand (`bench.baseline.payment_recovery`), counted as the cost
scenario counts (`bench.history`: events, workflow tasks, billable actions).

The journey most of them take: the shop's API looked up (a regular customer), the link to pay
again sent, a wait of up to 24 hours for the payment gateway's `payment_succeeded`, which comes
(here a few seconds in, as soon as the conversation waits), then the thanks. chatflow's side
runs `conversations/payment_recovery.py` on the worker `Services.worker()` builds, started as the
journeys API starts it (`start_journey`) and told of the payment as the events API tells it
(`send_event`); the shop's API is a loopback Starlette app. Both on one Temporal dev server (in
memory) in one run.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from bench.baseline.payment_recovery import WORKFLOW, BaselinePaymentRecovery, ShopAndSms
from bench.history import fetch_runs, tally
from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.messages import BusinessEvent
from chatflow.runtime.processes import free_port
from chatflow.runtime.services import Services, connect_redis
from chatflow.runtime.testing import start_valkey
from chatflow.temporal.client import send_event, start_journey
from chatflow.testing import dev_server
from conversations.payment_recovery import PaymentRecovery
from providers.console import ConsoleChannel, Outbox

NUMBER = "+15005550006"
TIMEOUT = 60.0
# A history ending on one of these has nothing in flight.
IDLE = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_MARKER_RECORDED,
}


def shop() -> Starlette:
    async def customer(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["id"], "tier": "regular"})

    return Starlette(routes=[Route("/customers/{id}", customer)])


async def _waiting(client: Client, workflow_id: str) -> None:
    """Until the workflow waits: it has started its wait's timer and has no task in flight."""
    for _ in range(int(TIMEOUT / 0.1)):
        events = (await fetch_runs(client, workflow_id))[-1]
        timer = any(event.event_type == EventType.EVENT_TYPE_TIMER_STARTED for event in events)
        if timer and events[-1].event_type in IDLE:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{workflow_id} never reached its wait")


async def _closed(client: Client, workflow_id: str) -> dict[str, Any]:
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(int(TIMEOUT / 0.1)):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return tally(await fetch_runs(client, workflow_id))
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{workflow_id} still running after {TIMEOUT:.0f} s")


async def ours(client: Client, redis_url: str, shop_url: str) -> dict[str, Any]:
    task_queue = f"bench-journey-{uuid.uuid4().hex[:8]}"
    config = Config(
        numbers=[
            NumberBinding(address=Address("tel", NUMBER), provider="console", channel="sms", flow="payment_recovery")
        ],
        flow_modules=[],
        settings=Settings(http_allow=("127.0.0.1",)),  # the shop's stand-in, on loopback
    )
    # An Http step's host comes from the flow's defaults only, never from the journey's data:
    # the shipped flow pointed at the stand-in, as SHOP_API_URL would point it at a real shop.
    flow = type("PaymentRecovery", (PaymentRecovery,), {"name": PaymentRecovery.name, "defaults": {"api": shop_url}})
    redis = connect_redis(redis_url)
    services = await Services.start(config, [flow], client=client, redis=redis, task_queue=task_queue)
    services.channels["console"] = ConsoleChannel(Outbox())
    worker, _ = services.worker()
    ref = ConversationRef("sms", NUMBER, "+14155550123", "console")
    data = {"customer_id": "c-1", "order_id": "A-1001", "payment_link": "https://pay.example/A-1001"}
    try:
        async with worker:
            await start_journey(client, ref, "payment_recovery", data, task_queue=task_queue)
            await _waiting(client, ref.id)
            await send_event(client, ref.id, BusinessEvent("payment_succeeded"))
            return await _closed(client, ref.id)
    finally:
        await services.aclose()


async def baseline(client: Client) -> dict[str, Any]:
    task_queue = f"bench-journey-baseline-{uuid.uuid4().hex[:8]}"
    workflow_id = f"baseline-payment-{uuid.uuid4().hex[:8]}"
    activities = ShopAndSms()
    job = {
        "customer": "+14155550123",
        "customer_id": "c-1",
        "order_id": "A-1001",
        "payment_link": "https://pay.example/A-1001",
    }
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BaselinePaymentRecovery],
        activities=[activities.get_customer, activities.cash_on_delivery, activities.send],
    ):
        handle = await client.start_workflow(WORKFLOW, job, id=workflow_id, task_queue=task_queue)
        await _waiting(client, workflow_id)
        await handle.signal("payment_succeeded")
        return await _closed(client, workflow_id)


async def run() -> dict[str, Any]:
    valkey = start_valkey()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(shop(), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with dev_server() as env:
            return {
                "ours": await ours(env.client, valkey.connection_url, f"http://127.0.0.1:{port}"),
                "baseline": await baseline(env.client),
            }
    finally:
        server.should_exit = True
        await serving
        valkey.stop()


def main() -> None:
    result = asyncio.run(run())
    out = Path("bench/results/journey_cost.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for path, counted in result.items():
        print(
            f"{path:>8}: {counted['events']} events, {counted['workflow_tasks']} workflow tasks, "
            f"{counted['actions']} actions ({counted['actions_grouped']} grouped): {counted['actions_by_kind']}"
        )


if __name__ == "__main__":
    main()
