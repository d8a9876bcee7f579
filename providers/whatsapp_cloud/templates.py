"""The WhatsApp Business Account's message templates, read from the Graph API.

`GET /{WABA_ID}/message_templates` answers a page of templates (`data`) and, while more are
left, `paging.next`: the URL of the next page, to be followed as is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from chatflow.domain.channel import read_settings
from chatflow.domain.errors import ChatflowError, ConfigError
from chatflow.domain.messages import Option
from chatflow.domain.templates import ApprovedTemplate, DeclaredTemplate, TemplateCheck, placeholders, shown
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


PROVIDER = "whatsapp_cloud"


def _count(n: int) -> str:
    return f"{n} parameter{'' if n == 1 else 's'}"


def _parameters(part: str, ours: Sequence[str], theirs: Sequence[str], named: bool) -> Iterator[str]:
    if len(ours) != len(theirs):
        yield f"{part} takes {_count(len(theirs))} ({shown(theirs)}), the step gives {len(ours)}"
    elif named and any(not name for name in ours):
        yield f"{part} takes named parameters ({shown(theirs)}), the step gives them by position"
    elif not named and any(ours):
        yield f"{part} takes positional parameters ({shown(theirs)}), the step names them ({shown(ours)})"
    elif named and set(ours) != set(theirs):
        yield f"{part} takes {shown(theirs)}, the step gives {shown(ours)}"


def differences(template: DeclaredTemplate, found: ApprovedTemplate) -> list[str]:
    """What differs between a declared template and the account's one of its name and language."""
    found_differences = []
    if not found.approved:
        reason = f" ({found.rejection_reason})" if found.rejection_reason not in ("", "NONE") else ""
        found_differences.append(f"status is {found.status or 'unknown'}{reason}, not APPROVED")
    if found.header == ("media",):
        if not template.header_media or len(template.header) != 1:
            found_differences.append(
                "header is an image, video or document: the step must give its link (header_media=)"
            )
    else:
        found_differences += _parameters("header", template.header, found.header, found.named)
    found_differences += _parameters("body", template.body, found.body, found.named)
    ours = dict(template.buttons)
    for index, kind in sorted(found.buttons.items()):
        if index not in ours and kind != "quick_reply":  # a quick reply's payload may be left out
            found_differences.append(f"button {index} ({kind}) takes a parameter the step does not give")
    for index, kind in sorted(ours.items()):
        if found.buttons.get(index) != kind:
            found_differences.append(f"button {index} is not a {kind} button that takes a parameter")
    return found_differences


def check(declared: Sequence[DeclaredTemplate], approved: Sequence[ApprovedTemplate], account: str) -> list[str]:
    problems = []
    for template in declared:
        named = [t for t in approved if t.name == template.name]
        if not named:
            problems.append(
                template.problem(PROVIDER, f"no template of that name in WhatsApp Business Account {account}")
            )
            continue
        # A language chosen from the data at send time may be any of the template's.
        found = named if template.language_from_data else [t for t in named if t.language == template.language]
        if not found:
            languages = ", ".join(sorted({t.language for t in named}))
            problems.append(template.problem(PROVIDER, f"no {template.language} version (the account has {languages})"))
            continue
        for version in found:
            problems += [template.problem(PROVIDER, what) for what in differences(template, version)]
    return problems


async def sync_templates(
    environment: Mapping[str, str],
    declared: Sequence[DeclaredTemplate],
    choices: Mapping[str, Sequence[Option]],
    http: httpx.AsyncClient,
    create: bool,
) -> TemplateCheck:
    """The declared templates checked against the WhatsApp Business Account's (choices need no
    template of their own on the Cloud API: they go as interactive messages)."""
    settings = read_settings(CloudSettings, environment)
    approved = await fetch_templates(settings, http)
    return TemplateCheck(problems=check(declared, approved, settings.business_account_id))
