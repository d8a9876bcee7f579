"""The dashboard's routes: pages, their live JSON, the actions, sign-in, and its two assets.

GET  /dashboard                               the conversations, filtered and paged
GET  /dashboard/conversations/{id}            one conversation, live
GET  /dashboard/api/conversations             the list's rows, as JSON (for live updates)
GET  /dashboard/api/conversations/{id}        the conversation, as JSON (polled by its page)
POST /dashboard/conversations/{id}/end        end it (reason)            } a session and its
POST /dashboard/conversations/{id}/events     a business event (name, data) } CSRF token
POST /dashboard/conversations/{id}/takeover   a person takes it over       }
POST /dashboard/conversations/{id}/replies    their reply to the customer  }
POST /dashboard/conversations/{id}/handback   back to the bot              }
GET  /dashboard/flows                         each flow: where customers wait, how they ended
GET  /dashboard/operations                    dead letters (retry them), opt-out lookup
POST /dashboard/operations/dead-letters/{id}/retry
GET  /dashboard/login, POST /dashboard/login  sign in with CHATFLOW_API_KEY
POST /dashboard/logout
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from chatflow.domain.addresses import ConversationRef, e164
from chatflow.domain.config import Config
from chatflow.domain.errors import Invalid, NotFound, Refused, TooManyRequests, UnknownFlow
from chatflow.domain.messages import BusinessEvent
from chatflow.edge.consent import Scopes
from chatflow.edge.dead_letters import count_dead_letters, list_dead_letters, retry_dead_letter
from chatflow.edge.optout import OptOuts
from chatflow.edge.sinks import dead_letters as sink_dead_letters
from chatflow.edge.sinks import source_counts
from chatflow.journeys.service import Journeys
from chatflow.web.access import Throttle, client_address
from chatflow.web.body import parse_json, read_body
from chatflow.web.dashboard import assets, views
from chatflow.web.dashboard.diagram import flow_diagram
from chatflow.web.dashboard.flow_stats import PERIODS, FlowStats
from chatflow.web.dashboard.listing import PAGE_SIZES, ConversationList, Filters
from chatflow.web.dashboard.session import COOKIE, COOKIE_PATH, Session, Sessions
from chatflow.web.dashboard.views import BASE, Chrome
from chatflow.web.errors import refused_headers, status_of

FORM = "application/x-www-form-urlencoded"
MAX_FORM = 64 * 1024
SECURITY_HEADERS = {
    # Nothing but the dashboard's own script and style; no framing; ids (numbers) never leak as referrers.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
DONE = {
    "ended": "The conversation is told to end.",
    "already": "It had already ended.",
    "event": "Event reported.",
    "taken": "You have the conversation: the bot is quiet until you hand it back.",
    "sent": "Reply sent.",
    "handed": "Handed back: the bot goes on where it was.",
    "handed_unanswered": "Handed back with the customer's messages since your last reply: a flow waiting for a "
    "reply has them, in order; otherwise they went unanswered (the decision trace says which).",
    "retried": "Handed to the forwarder again.",
}

Page = Callable[[Request, Session], Awaitable[Response]]


class Dashboard:
    def __init__(self, config: Config, journeys: Journeys, throttle: Throttle) -> None:
        self.config = config
        self.journeys = journeys
        self.on = bool(config.settings.api_key)  # no key, no dashboard: never open to all
        self.sessions = Sessions(config.settings.api_key, journeys.redis)
        self.throttle = throttle
        self.conversations = ConversationList(journeys)
        self.flow_stats = FlowStats(journeys)

    def routes(self) -> list[BaseRoute]:
        page, json, action = self._page, self._json, self._action
        return [
            Route(BASE, page(self.list_page), methods=["GET"]),
            Route(f"{BASE}/", page(self.list_page), methods=["GET"]),
            Route(f"{BASE}/conversations/{{id:str}}", page(self.conversation_page), methods=["GET"]),
            Route(f"{BASE}/api/conversations", json(self.list_json), methods=["GET"]),
            Route(f"{BASE}/api/conversations/{{id:str}}", json(self.conversation_json), methods=["GET"]),
            Route(f"{BASE}/conversations/{{id:str}}/end", action(self.end), methods=["POST"]),
            Route(f"{BASE}/conversations/{{id:str}}/events", action(self.event), methods=["POST"]),
            Route(f"{BASE}/conversations/{{id:str}}/takeover", action(self.take_over), methods=["POST"]),
            Route(f"{BASE}/conversations/{{id:str}}/replies", action(self.reply), methods=["POST"]),
            Route(f"{BASE}/conversations/{{id:str}}/handback", action(self.hand_back), methods=["POST"]),
            Route(f"{BASE}/flows", page(self.flows_page), methods=["GET"]),
            Route(f"{BASE}/operations", page(self.operations_page), methods=["GET"]),
            Route(f"{BASE}/operations/dead-letters/{{id:str}}/retry", action(self.retry), methods=["POST"]),
            Route(f"{BASE}/login", self._open(self.login_form), methods=["GET"]),
            Route(f"{BASE}/login", self._open(self.login), methods=["POST"]),
            Route(f"{BASE}/logout", action(self.logout), methods=["POST"]),
            Route(f"{BASE}/static/dashboard.css", self.css, methods=["GET"]),
            Route(f"{BASE}/static/dashboard.js", self.js, methods=["GET"]),
        ]

    # -- who is asking -----------------------------------------------------------------------------

    async def session_of(self, request: Request) -> Session | None:
        return await self.sessions.read(request.cookies.get(COOKIE, ""))

    def _set_cookie(self, request: Request, response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(self.sessions.ttl.total_seconds()),
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=secure_cookie(request),
        )

    def chrome(self, request: Request, session: Session | None) -> Chrome:
        show = request.query_params.get("show") == "1"
        params = {k: v for k, v in request.query_params.items() if k not in ("show", "done")}
        if not show:
            params["show"] = "1"
        return Chrome(
            csrf=session.csrf if session else "",
            signed_in=session is not None,
            show=show,
            toggle_href=views.page_href(request.url.path, params) if session is not None else "",
        )

    def _open(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Every route but the assets: 503 without a key, 503 when Redis (the sessions) is away."""

        async def serve(request: Request) -> Response:
            if not self.on:
                return secured(HTMLResponse(views.off_page(), status_code=503))
            try:
                return secured(await handler(request))
            except RedisError as error:
                return secured(HTMLResponse(views.esc(f"cannot reach Redis, where sessions are kept: {error}"), 503))

        return serve

    def _page(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            session = await self.session_of(request)
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(views.page_href(f"{BASE}/login", {"next": target}), 303)
            return await page(request, session)

        return self._open(guarded)

    def _json(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            session = await self.session_of(request)
            if session is None:
                return JSONResponse({"error": "sign in at /dashboard/login"}, status_code=401)
            try:
                return await page(request, session)
            except Refused as refused:
                return JSONResponse({"error": refused.reason}, status_code=status_of(refused))

        return self._open(guarded)

    def _action(
        self, action: Callable[[Request, Session, dict[str, str]], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            session = await self.session_of(request)
            if session is None:
                return forbidden("no session: sign in first")
            try:
                form = await read_form(request)
            except Refused as refused:
                return HTMLResponse(views.esc(refused.reason), status_code=status_of(refused))
            if not self.sessions.csrf_matches(session, form.get("csrf", "")):
                return forbidden("the form's CSRF token does not match this session: reload the page and try again")
            return await action(request, session, form)

        return self._open(guarded)

    # -- sign in and out ---------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        next_url = safe_next(request.query_params.get("next", ""))
        return HTMLResponse(views.login_page(Chrome(), next_url=next_url))

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except Refused as refused:
            return HTMLResponse(views.esc(refused.reason), status_code=status_of(refused))
        next_url = safe_next(form.get("next", ""))
        client = client_address(request)
        try:
            await self.throttle.check(client)
        except TooManyRequests as throttled:
            page = views.login_page(Chrome(), next_url=next_url, error=throttled.reason)
            return HTMLResponse(page, status_code=429, headers=refused_headers(throttled))
        if not self.sessions.key_matches(form.get("key", "")):
            await self.throttle.failed(client)
            page = views.login_page(Chrome(), next_url=next_url, error="That is not the API key.")
            return HTMLResponse(page, status_code=401)
        session = await self.sessions.issue()
        response = RedirectResponse(next_url, 303)
        self._set_cookie(request, response, session.id)
        return response

    async def logout(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        await self.sessions.revoke(session)  # the cookie is worth nothing from now on, wherever a copy is
        response = RedirectResponse(f"{BASE}/login", 303)
        secure = secure_cookie(request)
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure)
        return response

    # -- the list ----------------------------------------------------------------------------------

    async def _list(self, request: Request) -> tuple[views.ListPage, dict[str, str]]:
        params = request.query_params
        filters = Filters.from_params(params)
        show = params.get("show") == "1"
        size_text = params.get("size", str(PAGE_SIZES[0]))
        size = int(size_text) if size_text.isdigit() else 0
        cursor = params.get("after", "")
        keep = {**filters.items(), "size": str(size) if size != PAGE_SIZES[0] else "", "show": "1" if show else ""}
        view = views.ListPage(
            filters=filters.items(),
            size=size,
            sizes=PAGE_SIZES,
            flows=self.conversations.flows(),
            numbers=sorted({b.number for b in self.config.numbers}),
            rows=[],
        )
        try:
            page = await self.conversations.page(filters, size=size, cursor=cursor)
        except Invalid as error:
            view.error = error.reason
            return view, keep
        view.rows = views.list_rows(page.rows, show)
        if page.next:
            view.next_href = views.page_href(BASE, {**keep, "after": page.next})
        if cursor:
            view.first_href = views.page_href(BASE, keep)
        return view, keep

    async def list_page(self, request: Request, session: Session) -> Response:
        view, keep = await self._list(request)
        poll = (
            ""
            if request.query_params.get("after") or view.error
            else views.page_href(f"{BASE}/api/conversations", keep)
        )
        html = views.list_page(view, self.chrome(request, session), poll=poll)
        return HTMLResponse(html, status_code=422 if view.error else 200)

    async def list_json(self, request: Request, session: Session) -> Response:
        view, _ = await self._list(request)
        if view.error:
            raise Invalid(view.error)
        return JSONResponse({"rows": view.rows, "next": view.next_href})

    # -- a conversation ----------------------------------------------------------------------------

    async def _view(self, request: Request) -> dict[str, Any]:
        conversation = request.path_params["id"]
        try:
            ConversationRef.parse(conversation)
        except ValueError as error:
            raise NotFound(str(error)) from None
        view = await self.journeys.get(conversation, request.query_params.get("run", ""))
        return views.conversation_json(view, request.query_params.get("show") == "1")

    async def conversation_page(
        self, request: Request, session: Session, *, error: str = "", status: int = 200
    ) -> Response:
        try:
            view = await self._view(request)
        except NotFound as missing:
            content = f"<h1>Not found</h1>{views.flash(error=missing.reason)}"
            return HTMLResponse(views.layout("Not found", content, self.chrome(request, session)), status_code=404)
        show = request.query_params.get("show") == "1"
        address = ConversationRef.parse(view["id"])
        try:
            version = view.get("version")
            flow = self.journeys.flows.get(view["flow"], version if isinstance(version, int) else None)
            diagram = flow_diagram(flow, view["step"])
        except UnknownFlow:
            diagram = ""
        page = views.ConversationPage(
            view=view,
            channel=address.channel,
            number=address.number,
            customer=views.shown(await self.journeys.customer(view["id"]), show),
            diagram=diagram,
            done=DONE.get(request.query_params.get("done", ""), ""),
            error=error,
            runs=await self.journeys.runs(view["id"]),
        )
        run = request.query_params.get("run", "")
        poll = views.conversation_href(view["id"], show, run).replace(f"{BASE}/", f"{BASE}/api/", 1)
        html = views.conversation_page(page, self.chrome(request, session), csrf=session.csrf, poll=poll)
        return HTMLResponse(html, status_code=status)

    async def conversation_json(self, request: Request, session: Session) -> Response:
        return JSONResponse(await self._view(request))

    # -- actions -----------------------------------------------------------------------------------

    def _back(self, request: Request, done: str) -> Response:
        return RedirectResponse(views.conversation_href(request.path_params["id"]) + f"?done={done}", 303)

    async def _refused(self, request: Request, session: Session, refused: Refused) -> Response:
        return await self.conversation_page(request, session, error=refused.reason, status=status_of(refused))

    async def end(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        reason = form.get("reason", "").strip()[:500] or "ended by an operator"
        try:
            ending = await self.journeys.end(request.path_params["id"], reason)
        except Refused as refused:
            return await self._refused(request, session, refused)
        return self._back(request, "ended" if ending else "already")

    async def event(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        try:
            name = form.get("name", "").strip()
            if not name:
                raise Invalid("the event needs a name")
            data = parse_data(form.get("data", ""))
            await self.journeys.event(request.path_params["id"], BusinessEvent(name=name, data=data))
        except Refused as refused:
            return await self._refused(request, session, refused)
        return self._back(request, "event")

    async def take_over(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        taking = self.journeys.take_over(request.path_params["id"], form.get("operator", ""))
        return await self._do(request, session, taking, "taken")

    async def reply(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        replying = self.journeys.reply(request.path_params["id"], form.get("operator", ""), form.get("text", ""))
        return await self._do(request, session, replying, "sent")

    async def hand_back(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        # Said at hand-back: what the customer wrote to the person that the person did not answer.
        unanswered: list[str] = []
        with contextlib.suppress(Refused):
            unanswered = (await self.journeys.get(request.path_params["id"])).get("unanswered") or []
        handing = self.journeys.hand_back(request.path_params["id"], form.get("operator", ""))
        return await self._do(request, session, handing, "handed_unanswered" if unanswered else "handed")

    async def _do(self, request: Request, session: Session, action: Awaitable[object], done: str) -> Response:
        """Back to the conversation saying `done`, or its page with the reason the action was refused."""
        try:
            await action
        except Refused as refused:
            return await self._refused(request, session, refused)
        return self._back(request, done)

    # -- flows and operations ----------------------------------------------------------------------

    async def flows_page(self, request: Request, session: Session) -> Response:
        period = request.query_params.get("period", "24h")
        cards: list[views.FlowCard] = []
        error = ""
        try:
            for figures in await self.flow_stats.figures(period):
                newest = self.journeys.flows.get(figures.name)
                cards.append(
                    views.FlowCard(
                        name=figures.name,
                        versions=figures.versions,
                        running=figures.running,
                        waiting=figures.waiting,
                        outcomes=figures.outcomes,
                        endings=figures.endings,
                        branches=figures.branches,
                        diagram=flow_diagram(newest, ""),
                        builtin=frozenset(name for name, step in newest.steps.items() if step.builtin),
                    )
                )
        except Invalid as invalid:
            error = invalid.reason
        html = views.flows_page(cards, self.chrome(request, session), period=period, periods=list(PERIODS), error=error)
        return HTMLResponse(html, status_code=422 if error else 200)

    async def operations_page(
        self, request: Request, session: Session, *, error: str = "", status: int = 200
    ) -> Response:
        redis = self.journeys.redis
        page = views.OperationsPage(
            letters=[letter.as_json() for letter in await list_dead_letters(redis)],
            total=await count_dead_letters(redis),
            sources={source.name: await source_counts(redis, source.name) for source in self.config.sources},
            sink_failures={sink.name: await sink_dead_letters(redis, sink.name) for sink in self.config.sinks},
            customer=request.query_params.get("customer", "").strip(),
            done=DONE.get(request.query_params.get("done", ""), ""),
            error=error,
        )
        if page.customer:
            try:
                customer = e164(page.customer, what="customer")
            except ValueError as invalid:
                page.error, status = str(invalid), 422
            else:
                optouts = OptOuts(redis, Scopes(self.config.numbers))
                ours = {binding.number: binding.address for binding in self.config.numbers}
                page.opted_out = {
                    number: await optouts.is_opted_out(address, address.of(customer))
                    for number, address in sorted(ours.items())
                }
        return HTMLResponse(
            views.operations_page(page, self.chrome(request, session), csrf=session.csrf), status_code=status
        )

    async def retry(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        try:
            await retry_dead_letter(self.journeys.redis, request.path_params["id"])
        except Refused as refused:
            return await self.operations_page(request, session, error=refused.reason, status=status_of(refused))
        return RedirectResponse(f"{BASE}/operations?done=retried", 303)

    # -- assets ------------------------------------------------------------------------------------

    async def css(self, request: Request) -> Response:
        return Response(assets.CSS, media_type="text/css", headers={"Cache-Control": "no-cache"})

    async def js(self, request: Request) -> Response:
        return Response(assets.JS, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def forbidden(reason: str) -> Response:
    return secured(HTMLResponse(views.esc(reason), status_code=403))


async def read_form(request: Request) -> dict[str, str]:
    body = await read_body(request, limit=MAX_FORM, expected=FORM)
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=20))
    except (UnicodeDecodeError, ValueError):
        raise Invalid("the form could not be read") from None


def parse_data(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    data = parse_json(text, what="data")
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object")
    return data


def safe_next(target: str) -> str:
    """Where to go after signing in: a dashboard page of this app, never another site."""
    if (target == BASE or target.startswith((f"{BASE}/", f"{BASE}?"))) and not any(c in target for c in "\\\r\n"):
        return target
    return BASE


def secure_cookie(request: Request) -> bool:
    """`Secure`, unless this request came over plain http to a loopback address (`chatflow dev`),
    where a browser would otherwise never send the cookie back."""
    if request.url.scheme != "http":
        return True
    server = request.scope.get("server")
    try:
        return not (server and ipaddress.ip_address(server[0]).is_loopback)
    except ValueError:  # a unix socket's path, or a name
        return True


def dashboard_routes(config: Config, journeys: Journeys, throttle: Throttle) -> list[BaseRoute]:
    return Dashboard(config, journeys, throttle).routes()
