"""The consent API: record, look up, import and export consent; journeys on a number that
requires an opt-in are refused until one is recorded."""

from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

import providers
from chatflow.domain.config import parse_config
from tests.flows import FLOWS
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services
from tests.providers.conftest import PHONE_NUMBER_ID, TWILIO_NUMBER, WHATSAPP_NUMBER, make_settings

KEY = "s3cret"
TOML = f"""
[[numbers]]
number = "{TWILIO_NUMBER}"
provider = "twilio"
channel = "sms"
flow = "parrot"
keyword_languages = ["en", "es"]

[[numbers]]
number = "{WHATSAPP_NUMBER}"
provider = "whatsapp_cloud"
flow = "parrot"
phone_number_id = "{PHONE_NUMBER_ID}"
brand = "acme"
require_opt_in = true
"""


async def test_a_whatsapp_journey_needs_an_opt_in_on_record_which_the_api_records_and_exports(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer, imported = new_customer(), new_customer()
    config = parse_config(TOML, make_settings(api_key=KEY), channels=providers.CHANNELS)
    journey = {"flow": "payment", "to": customer, "from": WHATSAPP_NUMBER}
    async with started_services(config, FLOWS, client=dev_env.client, redis=redis) as services:
        whatsapp = services.channels["whatsapp_cloud"] = RecordingChannel(services.channels["whatsapp_cloud"])
        async with running_worker(services), running_app(services) as api:
            anonymous = await api.get(f"/api/consent/{customer}")
            api.headers["Authorization"] = f"Bearer {KEY}"
            refused = await api.post("/api/conversations", json=journey)
            opt_in = {"scope": WHATSAPP_NUMBER, "state": "in", "how": "dashboard", "note": "ops@acme"}
            recorded = await api.post(f"/api/consent/{customer}", json=opt_in)
            started = await api.post("/api/conversations", json=journey)
            sent = await whatsapp.wait_for(customer, 1)
            looked_up = await api.get(f"/api/consent/{customer}")
            bad_import = await api.post(
                "/api/consent/import",
                json={"records": [{"customer": imported, "scope": "brand:acme", "state": "out"}, {"customer": "12"}]},
            )
            good_import = await api.post(
                "/api/consent/import",
                json={
                    "records": [
                        {"customer": imported, "scope": "brand:acme", "state": "out", "at": "2025-03-01T12:00:00+00:00"}
                    ]
                },
            )
            exported = await api.get("/api/consent", params={"scope": "brand:acme"})
            unknown_scope = await api.get("/api/consent", params={"scope": "+15550009999"})
            keyword_opt_in = await api.post(f"/api/consent/{customer}", json={**opt_in, "how": "keyword"})

    assert anonymous.status_code == 401
    assert refused.status_code == 409 and "no opt-in recorded for brand:acme" in refused.json()["error"], refused.text
    assert recorded.status_code == 200 and recorded.json()["state"] == "in"
    assert started.status_code == 202 and sent == ["Your payment failed. Reply PAY for a new link."]
    records = {record["scope"]: record for record in looked_up.json()["records"]}
    assert set(records) == {"brand:acme", TWILIO_NUMBER}
    assert records[TWILIO_NUMBER]["state"] == "unknown"
    assert [(e["how"], e["note"]) for e in records["brand:acme"]["history"]] == [("dashboard", "ops@acme")]
    assert bad_import.status_code == 422 and "records[1]" in bad_import.json()["error"]
    assert good_import.json() == {"imported": 1, "changed": 1}
    assert {(r["customer"], r["state"], r["updated_at"]) for r in exported.json()["records"]} == {
        (customer, "in", records["brand:acme"]["updated_at"]),
        (imported, "out", "2025-03-01T12:00:00.000+00:00"),
    }
    assert unknown_scope.status_code == 422 and "none of ours" in unknown_scope.json()["error"]
    assert keyword_opt_in.status_code == 422  # only a customer's own message is a keyword
