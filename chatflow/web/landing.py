"""The landing page at `/`: what the web app serves, for a person who opens it in a browser.

Links to the journeys API's description, health, readiness and metrics, the dashboard when the
app serves one, and how to chat with each flow bound to a console number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from chatflow.domain.config import Config
from chatflow.domain.errors import BadRequest
from chatflow.web.errors import refused_response


class Mail(Protocol):
    @property
    def to(self) -> list[str]: ...
    @property
    def subject(self) -> str: ...
    @property
    def text(self) -> str: ...


class Mailbox(Protocol):
    """The mail `chatflow dev` catches (an SMTP server of its own when CHATFLOW_SMTP_URL is unset)."""

    @property
    def count(self) -> int: ...

    def since(self, count: int) -> Sequence[Mail]: ...

    async def wait_after(self, count: int, timeout: float) -> None: ...


MAIL_PATH = "/dev/mail"
MAIL_SHOWN = 10  # emails on the landing page, newest first
MAIL_WAIT = 30.0  # seconds a read of /dev/mail may wait for the next email


def _mail_json(email: Mail) -> dict[str, object]:
    return {"to": list(email.to), "subject": email.subject, "text": email.text}


DEFAULT_URL = "http://127.0.0.1:8000"  # where `chatflow chat` looks without --url
LINKS = (
    ("/openapi.json", "Journeys API", "start flows for customers, follow them, send them events (OpenAPI 3.1)"),
    ("/healthz", "Health", "the process answers"),
    ("/readyz", "Readiness", "Temporal and Redis answer (503 says which does not)"),
    ("/metrics", "Metrics", "Prometheus: webhooks, sends, active conversations"),
)
STYLE = (
    "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:46rem;"
    "margin:3rem auto;padding:0 1rem;color:#1d2330;line-height:1.5}"
    "h1{font-size:1.6rem;margin-bottom:.2rem}p.lead{color:#586174;margin-top:0}"
    "dt{font-weight:600;margin-top:.8rem}dd{margin-left:0;color:#586174}"
    "a{color:#1f4fb8}code{background:#eef1f6;padding:1px 5px;border-radius:4px}"
)


def serves(app: Starlette, path: str) -> bool:
    """Whether `app` has a route at `path` (a page, or anything mounted there)."""
    for route in app.router.routes:
        if isinstance(route, Route | Mount) and route.path.rstrip("/") == path.rstrip("/"):
            return True
    return False


def landing_routes(config: Config, *, dashboard: str = "/dashboard", mailbox: Mailbox | None = None) -> list[BaseRoute]:
    """`GET /`. The dashboard (at `dashboard`; "" for none) is linked only when the app serves it.
    With a `mailbox` (chatflow dev), the page shows the mail caught, and `GET /dev/mail?after=N&wait=S`
    gives it to `chatflow chat`."""

    async def landing(request: Request) -> Response:
        links = list(LINKS)
        if dashboard and serves(request.app, dashboard):
            links.insert(0, (dashboard, "Dashboard", "conversations: find them, read them, end them"))
        items = "".join(
            f'<dt><a href="{escape(path)}">{escape(title)}</a> <code>{escape(path)}</code></dt><dd>{escape(what)}</dd>'
            for path, title, what in links
        )
        console = [b for b in config.numbers if b.provider == "console"]
        base = str(request.base_url).rstrip("/")
        url = "" if base == DEFAULT_URL else f" --url {base}"
        chats = "".join(
            f"<dt><code>chatflow chat {escape(b.flow)}{escape(url)}</code></dt><dd>console number {escape(b.number)}</dd>"
            for b in console
        )
        body = (
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>chatflow</title>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><style>{STYLE}</style></head><body>"
            f"<h1>chatflow</h1><p class=lead>Conversations by SMS and WhatsApp, as chat flows written in Python.</p>"
            f"<dl>{items}</dl>"
            + (
                f"<h2>Talk to a flow</h2><p>From a terminal, through the console channel:</p><dl>{chats}</dl>"
                if chats
                else ""
            )
            + (_caught(mailbox) if mailbox is not None else "")
            + "</body></html>"
        )
        return HTMLResponse(body)

    async def mail(request: Request) -> Response:
        assert mailbox is not None
        try:
            after = int(request.query_params.get("after", "0"))
            wait = min(float(request.query_params.get("wait", "0")), MAIL_WAIT)
            if after < 0 or not math.isfinite(wait):
                raise ValueError
        except ValueError:
            return refused_response(BadRequest("after must be a count of emails and wait a number of seconds"))
        if wait > 0 and mailbox.count <= after:
            await mailbox.wait_after(after, wait)
        return JSONResponse({"emails": [_mail_json(e) for e in mailbox.since(after)], "next": mailbox.count})

    routes: list[BaseRoute] = [Route("/", landing, methods=["GET"])]
    if mailbox is not None:
        routes.append(Route(MAIL_PATH, mail, methods=["GET"]))
    return routes


def _caught(mailbox: Mailbox) -> str:
    """The newest emails chatflow dev caught: to, subject, text."""
    emails = list(mailbox.since(max(0, mailbox.count - MAIL_SHOWN)))[::-1]
    if not emails:
        items = '<p>None yet. Emails your flows send (<code>Notify(channel="email")</code>) show here.</p>'
    else:
        items = (
            "<dl>"
            + "".join(
                f"<dt>To {escape(', '.join(e.to))}: {escape(e.subject)}</dt><dd><pre>{escape(e.text)}</pre></dd>"
                for e in emails
            )
            + "</dl>"
        )
    return (
        f"<h2>Mail caught by chatflow dev</h2><p>An SMTP server of its own takes the email channel's mail "
        f"(CHATFLOW_SMTP_URL is unset); nothing leaves this machine. Also as JSON: "
        f'<a href="{MAIL_PATH}"><code>{MAIL_PATH}</code></a>.</p>{items}'
    )
