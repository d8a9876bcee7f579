"""The landing page at `/`: what the web app serves, for a person who opens it in a browser.

Links to the journeys API's description, health, readiness and metrics, the dashboard when the
app serves one, and how to chat with each flow bound to a console number.
"""

from __future__ import annotations

from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from chatflow.domain.config import Config

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


def landing_routes(config: Config, *, dashboard: str = "/dashboard") -> list[BaseRoute]:
    """`GET /`. The dashboard (at `dashboard`; "" for none) is linked only when the app serves it."""

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
            + (f"<h2>Talk to a flow</h2><p>From a terminal, through the console channel:</p><dl>{chats}</dl>" if chats else "")
            + "</body></html>"
        )
        return HTMLResponse(body)

    return [Route("/", landing, methods=["GET"])]
