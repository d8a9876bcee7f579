"""The Meta app chatflow sends with and that signs the webhooks, from the environment; and the
option each number bound to whatsapp_cloud needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chatflow.domain.channel import setting


@dataclass(frozen=True)
class CloudSettings:
    access_token: str = setting(
        "WHATSAPP_ACCESS_TOKEN", required=True, doc="the Meta app's access token (a system user's in production)"
    )
    app_secret: str = setting("WHATSAPP_APP_SECRET", required=True, doc="the secret the app's webhooks are signed with")
    verify_token: str = setting(
        "WHATSAPP_VERIFY_TOKEN", required=True, doc="any string you choose: the token of the subscription handshake"
    )
    # Another Graph API host (a test double) or version.
    api_url: str = setting("CHATFLOW_WHATSAPP_API_URL", "https://graph.facebook.com", doc="Graph API base")
    api_version: str = setting("CHATFLOW_WHATSAPP_API_VERSION", "21.0", doc="Graph API version")
    # The WhatsApp Business Account whose templates `chatflow templates sync` reads: only it
    # needs one, sending does not.
    business_account_id: str = setting(
        "WHATSAPP_BUSINESS_ACCOUNT_ID",
        doc="the WhatsApp Business Account whose templates `chatflow templates sync` reads (sending needs none)",
    )


PHONE_NUMBER_ID = "phone_number_id"


def binding_options(entry: Mapping[str, object]) -> dict[str, str]:
    """The options of a [[numbers]] entry bound to whatsapp_cloud: Meta's id of the number, which
    its webhooks name the number by and its API sends from."""
    value = entry.get(PHONE_NUMBER_ID)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'whatsapp_cloud numbers need {PHONE_NUMBER_ID} = "..." (the id Meta gives the number)')
    return {PHONE_NUMBER_ID: value.strip()}
