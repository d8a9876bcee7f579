"""Every registered channel holds to what chatflow relies on, with the kit it supplies
(`tests/providers/<name>/kit.py`, see tests/providers/conformance.py)."""

from __future__ import annotations

import importlib
import re

import httpx
import pytest

import providers
from chatflow.domain.addresses import address_kind, mask_addresses
from chatflow.domain.channel import ChannelSpec
from chatflow.domain.errors import PermanentSendError, RetryableSendError
from chatflow.domain.messages import STATUS_RANK, DeliveryUpdate
from tests.providers.conformance import Call, ChannelKit
from tests.providers.conftest import Recorder, webhook_client

SPECS = {spec.name: spec for spec in providers.CHANNELS}


def kit_of(name: str) -> ChannelKit:
    kit = importlib.import_module(f"tests.providers.{name}.kit").KIT
    assert isinstance(kit, ChannelKit)
    return kit


class Everyone(Recorder):
    """Takes a status for any conversation the channel names: what is checked is the status."""

    async def report(self, conversation: str, update: DeliveryUpdate) -> bool:
        self.reports.append((conversation, update))
        return True


async def request(name: str, call: Call, recorder: Recorder) -> httpx.Response:
    kit = kit_of(name)
    async with webhook_client(kit.config(), recorder) as client:
        return await client.request(call.method, call.url, content=call.content, headers=call.headers)


channels = pytest.mark.parametrize("name", list(SPECS))


@channels
def test_every_registered_channel_has_a_kit_and_registers_the_kinds_it_carries(name: str) -> None:
    kit, spec = kit_of(name), SPECS[name]
    assert isinstance(spec, ChannelSpec) and spec.address_kinds
    for kind in spec.address_kinds.values():
        assert address_kind(kind.name) is kind
    assert kit.customer.kind in {kind.name for kind in spec.address_kinds.values()}
    assert any(binding.provider == name for binding in kit.config().numbers)


@channels
async def test_a_request_signed_as_the_provider_signs_it_is_taken(name: str) -> None:
    kit, spec, recorder = kit_of(name), SPECS[name], Everyone()
    response = await request(name, kit.good, recorder)
    assert response.is_success, response.text
    [message] = recorder.messages
    assert (message.provider, message.customer) == (name, kit.customer.value)
    assert spec.address_kinds[message.channel].name == kit.customer.kind


@channels
async def test_a_forged_request_is_refused_and_changes_nothing(name: str) -> None:
    kit, recorder = kit_of(name), Everyone()
    if kit.forged is None:
        assert kit.no_signature, "a channel without a forged request says why it has no signature"
        pytest.skip(kit.no_signature)
    response = await request(name, kit.forged, recorder)
    assert response.status_code == 403 and response.text
    assert (recorder.delivered, recorder.reports) == ([], [])


@channels
async def test_a_malformed_request_is_a_4xx_with_a_reason(name: str) -> None:
    kit, recorder = kit_of(name), Everyone()
    response = await request(name, kit.bad, recorder)
    assert 400 <= response.status_code < 500 and response.text
    assert (recorder.delivered, recorder.reports) == ([], [])


@channels
async def test_a_send_the_provider_refuses_for_good_is_permanent(name: str) -> None:
    kit = kit_of(name)
    async with kit.permanent(kit.config()) as (channel, message):
        with pytest.raises(PermanentSendError):
            await channel.send(message)


@channels
async def test_a_send_worth_trying_again_is_retryable(name: str) -> None:
    kit = kit_of(name)
    if kit.retryable is None:
        assert kit.no_retryable, "a channel without a retryable failure says why"
        pytest.skip(kit.no_retryable)
    async with kit.retryable(kit.config()) as (channel, message):
        with pytest.raises(RetryableSendError):
            await channel.send(message)


@channels
def test_its_customers_addresses_are_masked(name: str) -> None:
    address = kit_of(name).customer
    masked = address.masked()
    assert masked.startswith(f"{address.kind}:") and masked != str(address)
    hidden = re.sub(r"[^0-9A-Za-z]", "", address.value)
    assert hidden not in re.sub(r"[^0-9A-Za-z*]", "", masked)
    assert "*" in masked
    logged = mask_addresses(f"message from {address.value} received")
    assert hidden not in re.sub(r"[^0-9A-Za-z*]", "", logged), "log lines must not hold the address whole"


@channels
async def test_its_statuses_map_onto_chatflows(name: str) -> None:
    kit = kit_of(name)
    if not kit.statuses:
        assert kit.no_statuses, "a channel without status callbacks says why"
        pytest.skip(kit.no_statuses)
    for call, status in kit.statuses:
        recorder = Everyone()
        response = await request(name, call, recorder)
        assert response.is_success, response.text
        assert recorder.reports, f"no status reported for {status}"
        assert {update.status for _, update in recorder.reports} == {status}
        assert status in STATUS_RANK


@channels
def test_its_settings_are_in_the_settings_reference(name: str) -> None:
    from tests.test_docs import settings_reference

    rows = [line for line in settings_reference().splitlines() if line.startswith(f"| `{name}` |")]
    assert rows, f"docs/settings.md has no row for {name}"
    for setting in SPECS[name].environment:
        assert any(f"`{setting}`" in row for row in rows), f"{setting} of {name} is not in docs/settings.md"
