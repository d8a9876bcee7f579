"""Twilio's Content API: the account's content templates with their WhatsApp approvals, and the
contents chatflow creates to show choices as buttons on WhatsApp.

A choice list goes to a Twilio WhatsApp customer as quick replies (up to 3) or a list picker (up
to 10) only through a Content resource, which must exist before the send. chatflow uses one
content per shape, every part of it a variable, named `chatflow_quick_reply_<n>` and
`chatflow_list_picker_<n>` (`..._described` when each row has a description):
`chatflow templates sync --create` creates the shapes the flows' choice steps need, once per
account; a send only looks them up (by name, cached) and fills in the text, titles and ids as
ContentVariables. So sends create nothing (asking again sends the same), and history keeps only
the text and the options, as on every other channel. Without the content, choices go as the
numbered menu, as on SMS.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from chatflow.domain.errors import ChatflowError, ConfigError
from chatflow.domain.messages import Option, TemplateMessage
from chatflow.domain.templates import ApprovedTemplate, placeholders
from providers._http import call_json
from providers.twilio.settings import TwilioSettings

CONTENT_API = "https://content.twilio.com"
TIMEOUT = 15.0
PAGE_SIZE = 500
MAX_PAGES = 100
QUICK_REPLIES, QUICK_REPLY_TITLE = 3, 20  # in a session, WhatsApp takes three quick replies
LIST_ITEMS, ITEM_TITLE, ITEM_DESCRIPTION = 10, 24, 72
MAX_BODY = 1024
LIST_BUTTON = "Choose"
PREFIX = "chatflow_"
# How long a look-up of the account's contents is trusted when a needed one was not there: a
# `templates sync --create` meanwhile is seen this much later at most.
STALE_AFTER = 300.0

log = logging.getLogger("chatflow.providers.twilio")


@dataclass(frozen=True)
class Shape:
    """The content a choice list needs: quick replies or a list picker of `count` choices."""

    kind: str  # quick-reply | list-picker
    count: int
    described: bool = False  # list rows with a description

    @property
    def friendly_name(self) -> str:
        suffix = "_described" if self.described else ""
        return f"{PREFIX}{self.kind.replace('-', '_')}_{self.count}{suffix}"

    def content(self) -> dict[str, Any]:
        """The body of the POST that creates it: every part a variable, with samples."""
        numbered = iter(range(2, 2 + self.count * 3))
        choices = []
        for _ in range(self.count):
            choice = {key: f"{{{{{next(numbered)}}}}}" for key in ("title", "id")}
            if self.described:
                choice["description"] = f"{{{{{next(numbered)}}}}}"
            choices.append(choice)
        if self.kind == "quick-reply":
            types = {"twilio/quick-reply": {"body": "{{1}}", "actions": choices}}
        else:
            items = [{"item": c["title"], **{k: v for k, v in c.items() if k != "title"}} for c in choices]
            types = {"twilio/list-picker": {"body": "{{1}}", "button": LIST_BUTTON, "items": items}}
        samples = self.variables("Which one?", [Option(str(i), f"Choice {i}", "A choice") for i in range(1, 11)])
        return {"friendly_name": self.friendly_name, "language": "en", "variables": samples, "types": types}

    def variables(self, text: str, options: Sequence[Option]) -> dict[str, str]:
        """The ContentVariables that say `text` and `options` through this shape."""
        limit = QUICK_REPLY_TITLE if self.kind == "quick-reply" else ITEM_TITLE
        values = {"1": text}
        number = 2
        for option in options[: self.count]:
            for field in ("title", "id", "description")[: 3 if self.described else 2]:
                value = {"title": option.title[:limit], "id": option.id, "description": option.description}[field]
                values[str(number)] = value[:ITEM_DESCRIPTION] if field == "description" else value
                number += 1
        return values


def shape_for(text: str, options: Sequence[Option]) -> Shape | None:
    """The content that shows `options` as buttons on WhatsApp; None when they cannot be (none,
    more than ten, a body over WhatsApp's limit)."""
    if not options or len(options) > LIST_ITEMS or len(text) > MAX_BODY:
        return None
    if len(options) <= QUICK_REPLIES:
        return Shape("quick-reply", len(options))
    return Shape("list-picker", len(options), all(option.description for option in options))


class ContentApi:
    """The account's contents, over httpx (the SDK's Content client needs aiohttp)."""

    def __init__(self, settings: TwilioSettings, http: httpx.AsyncClient) -> None:
        if not settings.account_sid or not settings.auth_token:
            raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to read Twilio's content templates")
        self.base = settings.content_url.rstrip("/")
        self.auth = (settings.account_sid, settings.auth_token)
        self.http = http

    def _url(self, url: str) -> str:
        # Twilio's next_page_url names its own host: keep to ours (a test double's, a region's).
        return self.base + url[len(CONTENT_API) :] if url.startswith(CONTENT_API) else url

    async def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        return await call_json(
            self.http,
            method,
            self._url(url),
            api="Twilio's Content API",
            error_of=_error_of,
            auth=self.auth,
            timeout=TIMEOUT,
            **kwargs,
        )

    async def approved(self) -> list[ApprovedTemplate]:
        """Every content of the account with its WhatsApp approval (`/v1/ContentAndApprovals`)."""
        url: str | None = f"{self.base}/v1/ContentAndApprovals"
        params: dict[str, str] | None = {"PageSize": str(PAGE_SIZE)}
        found: list[ApprovedTemplate] = []
        for _ in range(MAX_PAGES):
            if not url:
                return found
            page = await self._call("GET", url, params=params)
            found += [parse_content(item) for item in page.get("contents", []) if isinstance(item, dict)]
            meta = page.get("meta")
            following = meta.get("next_page_url") if isinstance(meta, dict) else None
            url, params = (following, None) if isinstance(following, str) else (None, None)
        raise ChatflowError(f"Twilio's Content API kept paging past {MAX_PAGES * PAGE_SIZE} contents")

    async def create(self, shape: Shape) -> str:
        """Create the content of `shape`; its SID."""
        body = await self._call("POST", f"{self.base}/v1/Content", json=shape.content())
        return str(body.get("sid", ""))


def _error_of(body: dict[str, Any]) -> tuple[str, str]:
    return str(body.get("code") or ""), str(body.get("message") or "")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def parse_content(item: dict[str, Any]) -> ApprovedTemplate:
    """One content of `/v1/ContentAndApprovals`: the name WhatsApp approved it under (its
    friendly name when it was never submitted), its language, approval and variables."""
    approval = item.get("approval_requests")
    approval = approval if isinstance(approval, dict) else {}
    variables = tuple(dict.fromkeys(name for text in _strings(item.get("types")) for name in placeholders(text)))
    friendly = str(item.get("friendly_name") or "")
    return ApprovedTemplate(
        provider="twilio",
        name=str(approval.get("name") or friendly),
        language=str(item.get("language") or ""),
        status=str(approval.get("status") or "unsubmitted").upper(),
        category=str(approval.get("category") or "").upper(),
        sid=str(item.get("sid") or ""),
        variables=variables,
        friendly_name=friendly,
        rejection_reason=str(approval.get("rejection_reason") or ""),
    )


def same_language(declared: str, theirs: str) -> bool:
    """`en_US` declared and `en` at Twilio are one language: Twilio's are ISO 639-1 codes."""
    ours = declared.replace("-", "_").lower()
    other = theirs.replace("-", "_").lower()
    return ours == other or ours.split("_")[0] == other


class Contents:
    """What a send needs from the account's contents, looked up once and kept: the SID of each
    choice-list shape, and of each approved WhatsApp template by name and language."""

    def __init__(self, api: ContentApi) -> None:
        self.api = api
        self.contents: list[ApprovedTemplate] = []
        self.fetched_at: float | None = None

    async def _refresh(self, force: bool) -> None:
        now = time.monotonic()
        if self.fetched_at is not None and not (force and now - self.fetched_at > STALE_AFTER):
            return
        try:
            self.contents = await self.api.approved()
        except ChatflowError as error:
            log.warning("could not read Twilio's content templates: %s", error)
        self.fetched_at = now

    async def _find(self, match: Any) -> ApprovedTemplate | None:
        await self._refresh(force=False)
        found = next((c for c in self.contents if match(c)), None)
        if found is None:
            await self._refresh(force=True)
            found = next((c for c in self.contents if match(c)), None)
        return found

    async def shape_sid(self, shape: Shape) -> str:
        found = await self._find(lambda c: c.friendly_name == shape.friendly_name)
        return found.sid if found is not None else ""

    async def template_sid(self, template: TemplateMessage) -> str:
        """The approved content WhatsApp knows as `template` (its name and language); "" for none."""
        found = await self._find(
            lambda c: c.approved and c.name == template.name and same_language(template.language, c.language)
        )
        return found.sid if found is not None else ""


def content_variables(values: dict[str, str]) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))
