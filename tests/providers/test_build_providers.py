"""Which providers a worker gets from its config."""

from chatflow.domain.config import Config
from providers import build_providers
from providers.console import ConsoleProvider
from providers.twilio import TwilioProvider
from providers.whatsapp_cloud import WhatsAppCloudProvider
from tests.providers.conftest import make_config


def test_every_configured_provider_is_built_under_its_name(config: Config) -> None:
    providers = build_providers(config)
    assert isinstance(providers["console"], ConsoleProvider)
    assert isinstance(providers["twilio"], TwilioProvider)
    assert isinstance(providers["whatsapp_cloud"], WhatsAppCloudProvider)
    assert {name: provider.name for name, provider in providers.items()} == {
        "console": "console",
        "twilio": "twilio",
        "whatsapp_cloud": "whatsapp_cloud",
    }


def test_providers_without_credentials_are_left_out() -> None:
    config = make_config(twilio_auth_token="", whatsapp_access_token="")
    assert set(build_providers(config)) == {"console"}
