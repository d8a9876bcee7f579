"""Channel adapters: how chatflow talks to Twilio, Meta WhatsApp Cloud and the local console."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from chatflow.domain.config import Config
    from providers.base import Provider


def build_providers(config: Config, http: httpx.AsyncClient | None = None) -> dict[str, Provider]:
    """The providers a worker sends through: the console always, the others when configured.

    Imports happen here rather than at the top so that importing `providers.base` (as the
    workflow sandbox does) never loads the Twilio SDK.
    """
    import httpx

    from providers.console import ConsoleProvider
    from providers.twilio import TwilioProvider
    from providers.whatsapp_cloud import WhatsAppCloudProvider

    settings = config.settings
    http = http or httpx.AsyncClient()
    providers: dict[str, Provider] = {"console": ConsoleProvider()}
    # Twilio's client refuses to be built without credentials; a number bound to a provider
    # that is not configured is caught by the config check, and the send activity names it.
    if settings.twilio_account_sid and settings.twilio_auth_token:
        providers["twilio"] = TwilioProvider(settings, http)
    if settings.whatsapp_access_token:
        providers["whatsapp_cloud"] = WhatsAppCloudProvider(config, http)
    return providers
