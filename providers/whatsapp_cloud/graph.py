"""Where Meta's Graph API is, for this deployment (CHATFLOW_WHATSAPP_API_URL and _VERSION)."""

from __future__ import annotations

from providers.whatsapp_cloud.settings import CloudSettings


def graph_url(settings: CloudSettings, *path: str) -> str:
    return "/".join([f"{settings.api_url.rstrip('/')}/v{settings.api_version}", *path])
