"""The WhatsApp Business Account's message templates, read from the Graph API.

`GET /{WABA_ID}/message_templates` answers a page of templates (`data`) and, while more are
left, `paging.next`: the URL of the next page, to be followed as is.
"""

from __future__ import annotations

from typing import Any

import httpx

from chatflow.domain.errors import ChatflowError, ConfigError
from chatflow.domain.templates import ApprovedTemplate, placeholders
from providers._http import call_json
from providers.whatsapp_cloud.graph import graph_url
from providers.whatsapp_cloud.send import TIMEOUT
from providers.whatsapp_cloud.settings import CloudSettings

FIELDS = "name,language,status,category,components,parameter_format"
PAGE_SIZE = 100
MAX_PAGES = 200  # 20,000 templates: far over the 6,000 WhatsApp allows an account
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
BUTTON_KINDS = {"URL": "url", "QUICK_REPLY": "quick_reply", "COPY_CODE": "copy_code"}


async def fetch_templates(settings: CloudSettings, http: httpx.AsyncClient) -> list[ApprovedTemplate]:
    """Every template of the account in every language; ConfigError when the account id or the
    token is missing, ChatflowError when the Graph API does not answer with them."""
    if not settings.business_account_id:
        raise ConfigError(
            "WHATSAPP_BUSINESS_ACCOUNT_ID is not set: the WhatsApp Business Account whose templates to read"
        )
    if not settings.access_token:
        raise ConfigError("WHATSAPP_ACCESS_TOKEN is not set: the token that reads the account's templates")
    url: str | None = graph_url(settings, settings.business_account_id, "message_templates")
    params: dict[str, str] | None = {"fields": FIELDS, "limit": str(PAGE_SIZE)}
    headers = {"Authorization": f"Bearer {settings.access_token}"}
    found: list[ApprovedTemplate] = []
    for _ in range(MAX_PAGES):
        if url is None:
            return found
        page = await call_json(
            http, "GET", url, api="the Graph API", error_of=_error_of, params=params, headers=headers, timeout=TIMEOUT
        )
        found += [parse_template(item) for item in page.get("data", []) if isinstance(item, dict)]
        paging = page.get("paging")
        following = paging.get("next") if isinstance(paging, dict) else None
        url, params = (following, None) if isinstance(following, str) and following else (None, None)
    raise ChatflowError(f"the Graph API kept paging past {MAX_PAGES * PAGE_SIZE} templates")


def _error_of(body: dict[str, Any]) -> tuple[str, str]:
    said = body.get("error")
    said = said if isinstance(said, dict) else {}
    return str(said.get("code") or ""), str(said.get("message") or "")


def parse_template(item: dict[str, Any]) -> ApprovedTemplate:
    """One entry of `data`: its name, language, status and the parameters each part takes."""
    header: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    buttons: dict[int, str] = {}
    for component in item.get("components") or []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            if str(component.get("format", "")).upper() in MEDIA_FORMATS:
                header = ("media",)
            else:
                header = placeholders(str(component.get("text", "")))
        elif kind == "BODY":
            body = placeholders(str(component.get("text", "")))
        elif kind == "BUTTONS":
            buttons = _dynamic_buttons(component.get("buttons") or [])
    return ApprovedTemplate(
        provider="whatsapp_cloud",
        name=str(item.get("name", "")),
        language=str(item.get("language", "")),
        status=str(item.get("status", "")).upper(),
        category=str(item.get("category", "")).upper(),
        header=header,
        body=body,
        buttons=buttons,
        named=str(item.get("parameter_format", "")).upper() == "NAMED",
        rejection_reason=str(item.get("rejected_reason", "") or ""),
    )


def _dynamic_buttons(buttons: list[Any]) -> dict[int, str]:
    """The buttons a send gives a parameter to, by index: a URL with a placeholder, a quick reply
    (its payload), a coupon code. A phone number or a fixed URL takes none."""
    dynamic: dict[int, str] = {}
    for index, button in enumerate(buttons):
        if not isinstance(button, dict):
            continue
        kind = BUTTON_KINDS.get(str(button.get("type", "")).upper())
        if kind == "url" and not placeholders(str(button.get("url", ""))):
            continue
        if kind is not None:
            dynamic[index] = kind
    return dynamic
