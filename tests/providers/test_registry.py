"""The one list of channels, and which of them a process gets from its config."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

import providers
from chatflow.domain.channel import Resources
from chatflow.domain.config import Config, Settings, parse_config
from chatflow.domain.errors import ConfigError
from providers.console import ConsoleChannel, Outbox, RedisOutbox
from providers.twilio import TwilioChannel
from providers.whatsapp_cloud import WhatsAppCloudChannel
from tests.providers.conftest import make_config


async def test_every_configured_channel_is_built_under_its_name(config: Config) -> None:
    async with httpx.AsyncClient() as http:
        channels = providers.build_channels(config, Resources(http=http))
    assert isinstance(channels["console"], ConsoleChannel)
    assert isinstance(channels["twilio"], TwilioChannel)
    assert isinstance(channels["whatsapp_cloud"], WhatsAppCloudChannel)
    assert {name: channel.name for name, channel in channels.items()} == {
        "twilio": "twilio",
        "whatsapp_cloud": "whatsapp_cloud",
        "console": "console",
    }


@pytest.mark.parametrize(
    "unset",
    [
        {"TWILIO_AUTH_TOKEN": "", "WHATSAPP_ACCESS_TOKEN": ""},
        {"TWILIO_ACCOUNT_SID": "", "WHATSAPP_APP_SECRET": ""},
    ],
)
async def test_channels_without_their_settings_are_left_out(unset: dict[str, str]) -> None:
    async with httpx.AsyncClient() as http:
        assert set(providers.build_channels(make_config(**unset), Resources(http=http))) == {"console"}


async def test_the_console_keeps_its_messages_in_redis_when_there_is_redis(config: Config, redis: Redis) -> None:
    async with httpx.AsyncClient() as http:
        in_memory = providers.build_channels(config, Resources(http=http))["console"]
        in_redis = providers.build_channels(config, Resources(http=http, redis=redis))["console"]
    assert isinstance(in_memory, ConsoleChannel) and isinstance(in_memory.outbox, Outbox)
    assert isinstance(in_redis, ConsoleChannel) and isinstance(in_redis.outbox, RedisOutbox)


async def test_channels_have_unique_names_and_routes(config: Config) -> None:
    assert [spec.name for spec in providers.CHANNELS] == ["twilio", "whatsapp_cloud", "email", "console"]
    async with httpx.AsyncClient() as http:
        channels = providers.build_channels(config, Resources(http=http))
    routes = [(route.method, route.path) for channel in channels.values() for route in channel.routes()]
    assert len(routes) == len(set(routes))


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('provider = "fax"', "provider 'fax' is not one of twilio, whatsapp_cloud, email, console"),
        ('provider = "twilio"\nchannel = "console"', "channel 'console' is not one of sms, whatsapp for twilio"),
        ('provider = "whatsapp_cloud"', "whatsapp_cloud numbers need phone_number_id"),
    ],
)
def test_the_config_is_checked_against_the_channels(entry: str, says: str) -> None:
    toml = f'[[numbers]]\nnumber = "+15005550006"\nflow = "demo"\n{entry}\n'
    with pytest.raises(ConfigError, match=says):
        parse_config(toml, Settings(), channels=providers.CHANNELS)


@pytest.mark.parametrize(
    ("provider", "missing"),
    [
        ("twilio", "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"),
        ("whatsapp_cloud", "WHATSAPP_ACCESS_TOKEN, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN"),
    ],
)
def test_a_number_bound_to_a_channel_needs_its_settings(provider: str, missing: str) -> None:
    options = 'phone_number_id = "1"\n' if provider == "whatsapp_cloud" else ""
    toml = f'[[numbers]]\nnumber = "+15005550006"\nflow = "demo"\nprovider = "{provider}"\n{options}'
    with pytest.raises(ConfigError, match=missing):
        parse_config(toml, Settings(), channels=providers.CHANNELS)
    parse_config(toml, Settings(), channels=providers.CHANNELS, check_secrets=False)


def test_the_console_needs_no_account_and_stands_in_for_any_channel() -> None:
    toml = '[[numbers]]\nnumber = "+15005550006"\nflow = "demo"\nprovider = "console"\nchannel = "whatsapp"\n'
    [binding] = parse_config(toml, Settings(), channels=providers.CHANNELS).numbers
    assert (binding.provider, binding.channel) == ("console", "whatsapp")
