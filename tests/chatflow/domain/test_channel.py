"""A channel owns its configuration: its settings and their environment names, the options of the
numbers bound to it, and the kinds of address it carries; chatflow's Settings know none of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import pytest

from chatflow.domain.addresses import MAILTO, TEL, Address
from chatflow.domain.channel import Channel, ChannelSpec, Resources, missing_settings, read_settings, setting
from chatflow.domain.config import Config, Settings, parse_config
from chatflow.domain.errors import ConfigError


@dataclass(frozen=True)
class MailerSettings:
    url: str = setting("MAILER_URL", required=True)
    region: str = setting("MAILER_REGION", "eu")


def pool(entry: Mapping[str, object]) -> dict[str, str]:
    if not isinstance(entry.get("pool", "default"), str):
        raise ValueError("pool must be a name")
    return {"pool": str(entry.get("pool", "default"))}


def build(config: Config, resources: Resources) -> Channel:
    raise NotImplementedError  # never built here: the config is all these tests read


MAILER = ChannelSpec(
    name="mailer",
    address_kinds={"email": MAILTO, "sms": TEL},
    settings=MailerSettings,
    build=build,
    option_keys=("pool",),
    options=pool,
)


def parse(entry: str, environment: Mapping[str, str] | None = None) -> Config:
    settings = Settings.from_env({"MAILER_URL": "https://mailer.test", **(environment or {})})
    return parse_config(f'[[numbers]]\nprovider = "mailer"\nflow = "demo"\n{entry}\n', settings, channels=[MAILER])


def test_a_channels_settings_are_read_from_the_environment_names_it_declares() -> None:
    settings = Settings.from_env({"MAILER_URL": "https://mailer.test", "CHATFLOW_API_KEY": "k"})
    assert MAILER.environment == ("MAILER_URL", "MAILER_REGION")
    assert read_settings(MailerSettings, settings.environment) == MailerSettings("https://mailer.test", "eu")
    assert MAILER.missing_settings(settings) == []
    assert MAILER.missing_settings(Settings.from_env({"MAILER_REGION": "us"})) == ["MAILER_URL"]
    assert missing_settings(MailerSettings()) == ["MAILER_URL"]


def test_chatflows_settings_name_no_channel() -> None:
    names = {field.name for field in fields(Settings)}
    assert not {name for name in names if "twilio" in name or "whatsapp" in name or "meta" in name}
    assert "MAILER_URL" not in repr(Settings.from_env({"MAILER_URL": "secret"}))  # the environment is not shown


def test_a_binding_is_an_address_of_a_kind_its_channel_carries() -> None:
    [email] = parse('address = "Support@Shop.Example"').numbers
    assert (email.address, email.channel, email.number) == (
        Address("mailto", "Support@shop.example"),
        "email",
        "Support@shop.example",
    )
    [sms] = parse('address = "tel:+15005550006"').numbers  # the channel follows from the kind
    assert (str(sms.address), sms.channel) == ("tel:+15005550006", "sms")
    [sms] = parse('number = "+15005550006"\nchannel = "sms"').numbers
    assert (str(sms.address), sms.channel) == ("tel:+15005550006", "sms")


def test_a_binding_has_the_options_its_channel_reads() -> None:
    assert parse('address = "news@shop.example"\npool = "bulk"').numbers[0].options == {"pool": "bulk"}
    assert parse('address = "news@shop.example"').numbers[0].options == {"pool": "default"}


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('address = "news@shop"', "entry 1: 'news@shop' has a domain that is not a host name"),
        ('address = "fax:+15005550006"', "'fax:\\+15005550006' is not an email address"),
        ('address = "tel:+15005550006"\nchannel = "email"', "a tel address is not one mailer carries on email"),
        ('number = "+15005550006"\naddress = "news@shop.example"', "needs number = .* or address = .*, not both"),
        ('channel = "email"', "needs number = .* or address = .*, not both"),
        ('address = "news@shop.example"\npool = 3', "entry 1: pool must be a name"),
        ('address = "news@shop.example"\npol = "bulk"', "unknown key 'pol'; did you mean 'pool'"),
        ('number = "15005550006"\nchannel = "sms"', "must be in E.164 form"),
    ],
)
def test_a_bad_binding_is_a_config_error_saying_what_is_wrong(entry: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse(entry)


def test_a_bound_channel_without_its_settings_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="needs MAILER_URL in the environment"):
        parse_config(
            '[[numbers]]\nprovider = "mailer"\nflow = "demo"\naddress = "a@shop.example"\n',
            Settings.from_env({}),
            channels=[MAILER],
        )
