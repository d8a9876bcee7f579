import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from chatflow.web.metrics import WebhookMetrics, inbound_provider, metrics_routes


def sample(name: str, labels: dict[str, str], text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


async def test_webhooks_are_counted_by_provider_and_outcome_and_metrics_parse(dev_env) -> None:
    async def answer(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("", status_code=int(request.query_params.get("status", "200")))

    app = Starlette(
        routes=[Route("/webhooks/twilio", answer, methods=["POST"]), *metrics_routes(dev_env.client)],
    )
    app.add_middleware(WebhookMetrics)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        before = (await http.get("/metrics")).text
        await http.post("/webhooks/twilio")
        await http.post("/webhooks/twilio?status=403")
        after = (await http.get("/metrics")).text

    name = "chatflow_webhooks_total"
    for outcome in ("accepted", "rejected"):
        labels = {"provider": "twilio", "outcome": outcome}
        assert sample(name, labels, after) == sample(name, labels, before) + 1
    families = {f.name for f in text_string_to_metric_families(after)}
    assert {"chatflow_webhooks", "chatflow_webhook_duration_seconds", "chatflow_sends", "chatflow_active_conversations"} <= families


def test_only_inbound_posts_count_as_webhooks() -> None:
    assert inbound_provider("POST", "/webhooks/twilio/status") == "twilio"
    assert inbound_provider("POST", "/webhooks/whatsapp") == "whatsapp_cloud"
    assert inbound_provider("POST", "/console/messages") == "console"
    assert inbound_provider("GET", "/console/messages") is None
    assert inbound_provider("POST", "/webhooks/twilioX") is None
