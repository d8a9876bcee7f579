"""Mixpanel's cohort syncs to a custom webhook, behind basic auth."""

import base64
import json

import pytest

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import Forbidden
from chatflow.domain.source import SourceBinding
from providers.mixpanel import spec

SYNC = {
    "action": "add_members",
    "parameters": {
        "mixpanel_cohort_name": "Churn risk",
        "mixpanel_cohort_id": 1234,
        "members": [{"mixpanel_distinct_id": "u1", "phone": "+14155550100"}],
    },
}
ENVIRONMENT = {"MIXPANEL_WEBHOOK_USER": "mixpanel", "MIXPANEL_WEBHOOK_SECRET": "p4ss"}


def request(body: bytes, credentials: str = "mixpanel:p4ss") -> WebhookRequest:
    auth = "Basic " + base64.b64encode(credentials.encode()).decode()
    return WebhookRequest("POST", "http://test/webhooks/mixpanel", {"authorization": auth}, {}, body)


def test_a_sync_is_typed_by_its_action_and_the_same_page_has_the_same_id() -> None:
    source = spec.build(SourceBinding("mixpanel", "mixpanel", "m"), ENVIRONMENT)
    body = json.dumps(SYNC).encode()
    (event,) = source.verify(request(body))
    assert event.type == "add_members"
    assert event.object["parameters"]["members"][0]["phone"] == "+14155550100"
    assert source.verify(request(body))[0].id == event.id


def test_wrong_or_missing_credentials_are_refused() -> None:
    source = spec.build(SourceBinding("mixpanel", "mixpanel", "m"), ENVIRONMENT)
    body = json.dumps(SYNC).encode()
    with pytest.raises(Forbidden):
        source.verify(request(body, "mixpanel:guess"))
    with pytest.raises(Forbidden):
        source.verify(WebhookRequest("POST", "http://test/webhooks/mixpanel", {}, {}, body))
    assert spec.missing("mixpanel", {}) == ["MIXPANEL_WEBHOOK_USER", "MIXPANEL_WEBHOOK_SECRET"]
