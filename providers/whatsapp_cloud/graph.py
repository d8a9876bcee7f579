"""Where Meta's Graph API is, for this deployment (CHATFLOW_WHATSAPP_API_URL and _VERSION)."""

from __future__ import annotations

from chatflow.domain.config import Settings


def graph_url(settings: Settings, *path: str) -> str:
    return "/".join([f"{settings.whatsapp_api_url}/v{settings.whatsapp_api_version}", *path])
