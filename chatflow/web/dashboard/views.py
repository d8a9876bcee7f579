"""The dashboard's pages, as HTML strings: every value from a conversation goes through `esc`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from chatflow.domain.addresses import ConversationRef, mask_value
from chatflow.journeys.service import OUTCOMES, STATES

BASE = "/dashboard"


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def shown(number: str, show: bool) -> str:
    return number if show else mask_value(number)


def title_of(conversation: str, show: bool) -> str:
    """The conversation id, its customer masked unless `show` (a keyed token, CHATFLOW_ID_KEY,
    names nobody: shown as it is)."""
    try:
        address = ConversationRef.parse(conversation)
    except ValueError:
        return conversation
    if address.hashed:
        return conversation
    return conversation.removesuffix(address.customer) + shown(address.customer, show)


def conversation_href(conversation: str, show: bool = False, run: str = "") -> str:
    """A conversation's page: its newest run, or the run `run` (one per conversation the
    customer had on that number)."""
    return page_href(
        f"{BASE}/conversations/{quote(conversation, safe=':+')}", {"run": run, "show": "1" if show else ""}
    )


def when(at: object) -> str:
    return str(at).replace("T", " ")[:19] if at else ""


@dataclass
class Chrome:
    """What every page shows around its content."""

    csrf: str = ""  # the session's token, for the sign-out form ("" when signed out)
    signed_in: bool = False
    show: bool = False  # customer numbers in full
    toggle_href: str = ""  # the same page with `show` flipped


def layout(
    title: str, content: str, chrome: Chrome, *, poll: str = "", page: str = "", every: int = 1500, banner: str = ""
) -> str:
    right = ""
    if chrome.toggle_href:
        label = "Hide numbers" if chrome.show else "Show numbers"
        right += f'<a class="toggle" id="toggle-numbers" href="{esc(chrome.toggle_href)}">{label}</a>'
    if chrome.signed_in:
        right += (
            f'<form method="post" action="{BASE}/logout"><input type="hidden" name="csrf" value="{esc(chrome.csrf)}">'
            '<button type="submit">Sign out</button></form>'
        )
    polled = f' data-poll="{esc(poll)}" data-page="{esc(page)}" data-every="{every}"' if poll else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · chatflow</title>
<link rel="stylesheet" href="{BASE}/static/dashboard.css">
<script src="{BASE}/static/dashboard.js" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="{BASE}">chatflow</a><a href="{BASE}">Conversations</a>
<a href="{BASE}/flows" id="nav-flows">Flows</a><a href="{BASE}/operations" id="nav-operations">Operations</a>
<span class="spacer"></span>{right}</header>
{banner}
<main{polled}>
<div class="flash error signed-out-note">Your session has ended: <a href="{BASE}/login">sign in again</a>.</div>
{content}
</main>
</body>
</html>
"""


def flash(done: str = "", error: str = "") -> str:
    if error:
        return f'<div class="flash error" id="flash" role="alert">{esc(error)}</div>'
    if done:
        return f'<div class="flash ok" id="flash" role="status">{esc(done)}</div>'
    return ""


def off_page() -> str:
    """What the dashboard shows when the server has no API key: nothing of any conversation."""
    banner = (
        '<div class="banner" id="off-banner"><strong>The dashboard is off:</strong> CHATFLOW_API_KEY is not set '
        "on the server. Set it and restart to sign in with it.</div>"
    )
    return layout("Dashboard off", "<h1>Dashboard off</h1>", Chrome(), banner=banner)


def login_page(chrome: Chrome, *, next_url: str, error: str = "") -> str:
    content = f"""<div class="card login">
<h1>Sign in</h1>
{flash(error=error)}
<form method="post" action="{BASE}/login">
<label for="key">API key (CHATFLOW_API_KEY)</label>
<input type="password" id="key" name="key" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{esc(next_url)}">
<button type="submit">Sign in</button>
</form>
</div>"""
    return layout("Sign in", content, chrome)


def _options(values: Sequence[tuple[str, str]], selected: str) -> str:
    return "".join(
        f'<option value="{esc(value)}"{" selected" if value == selected else ""}>{esc(label)}</option>'
        for value, label in values
    )


def list_rows(rows: Sequence[Mapping[str, Any]], show: bool) -> list[dict[str, Any]]:
    """The rows as the page and its live JSON show them: customers masked unless `show`."""
    return [
        {
            **row,
            "title": title_of(row["id"], show),
            "customer": shown(row["customer"], show),
            "href": conversation_href(row["id"], show, row.get("run_id", "")),
        }
        for row in rows
    ]


@dataclass
class ListPage:
    filters: Mapping[str, str]
    size: int
    sizes: Sequence[int]
    flows: Sequence[str]
    numbers: Sequence[str]
    rows: list[dict[str, Any]]  # from list_rows
    next_href: str = ""
    first_href: str = ""  # set when this is not the first page
    error: str = ""


def list_page(view: ListPage, chrome: Chrome, *, poll: str) -> str:
    f = view.filters
    show = '<input type="hidden" name="show" value="1">' if chrome.show else ""
    form = f"""<form class="filters card" id="filters" method="get" action="{BASE}">
<label>Flow<select name="flow" id="filter-flow">{_options([("", "any"), *[(n, n) for n in view.flows]], f.get("flow", ""))}</select></label>
<label>Version<input name="version" id="filter-version" value="{esc(f.get("version", ""))}" placeholder="2" size="3"></label>
<label>Step<input name="step" id="filter-step" value="{esc(f.get("step", ""))}" placeholder="ask_rating" size="12"></label>
<label>State<select name="state" id="filter-state">{_options([("", "any"), *[(s, s) for s in STATES]], f.get("state", ""))}</select></label>
<label>Outcome<select name="outcome" id="filter-outcome">{_options([("", "any"), *[(o, o) for o in OUTCOMES]], f.get("outcome", ""))}</select></label>
<label>Our number<select name="number" id="filter-number">{_options([("", "any"), *[(n, n) for n in view.numbers]], f.get("number", ""))}</select></label>
<label>Customer<input name="customer" id="filter-customer" value="{esc(f.get("customer", ""))}" placeholder="+14155550100" size="16"></label>
<label>Data<input name="data" id="filter-data" value="{esc(f.get("data", ""))}" placeholder="order_id=A-1001" size="16"></label>
<label>Per page<select name="size">{_options([(str(s), str(s)) for s in view.sizes], str(view.size))}</select></label>
{show}<button type="submit">Filter</button> <a class="button" href="{BASE}">Clear</a>
</form>"""
    lines = "".join(
        f"""<tr><td class="id"><a href="{esc(r["href"])}">{esc(r["title"])}</a></td>
<td>{esc(r["flow"])}{esc(f" v{r['version']}" if r["version"] else "")}</td><td>{esc(r["step"])}</td>
<td><span class="state {esc(r["state"])}">{esc(r["state"])}</span></td>
<td><span class="outcome {esc(r["outcome"])}">{esc(r["outcome"])}</span></td><td>{esc(r["channel"])}</td>
<td>{esc(r["customer"])}</td><td>{esc(when(r["started_at"]))}</td><td>{esc(when(r["closed_at"]))}</td></tr>"""
        for r in view.rows
    )
    hidden = " hidden" if view.rows else ""
    pager = []
    if view.first_href:
        pager.append(f'<a class="button" href="{esc(view.first_href)}" id="first-page">First page</a>')
    if view.next_href:
        pager.append(f'<a class="button" href="{esc(view.next_href)}" id="next-page" rel="next">Next page</a>')
    content = f"""<h1>Conversations</h1>
{flash(error=view.error)}
{form}
<table id="conversations">
<thead><tr><th>Conversation</th><th>Flow</th><th>Step</th><th>State</th><th>Outcome</th><th>Channel</th><th>Customer</th><th>Started</th><th>Ended</th></tr></thead>
<tbody>{lines}</tbody>
</table>
<p class="muted" id="empty"{hidden}>No conversations{" match these filters" if f else " yet"}.</p>
<div class="pager">{"".join(pager)}<span class="muted">Running conversations first, newest first; then ended ones, most recent first.</span></div>"""
    return layout("Conversations", content, chrome, poll=poll, page="list", every=3000)


def conversation_json(view: Mapping[str, Any], show: bool) -> dict[str, Any]:
    """What the conversation page shows, as its live JSON: the customer masked unless `show`."""
    return {
        "id": view["id"],
        "run_id": view.get("run_id", ""),
        "title": title_of(view["id"], show),
        "state": view.get("state", ""),
        "flow": view.get("flow", ""),
        "version": view.get("version"),
        "step": view.get("step", ""),
        "outcome": view.get("outcome", ""),
        "reason": view.get("reason", ""),
        "data": view.get("data", {}),
        "transcript": view.get("transcript", []),
        "operator": view.get("operator", ""),
        "unanswered": view.get("unanswered", []),
        "trace": view.get("trace", []),
    }


def _turn(turn: Mapping[str, Any]) -> str:
    direction = "in" if turn.get("direction") == "in" else "out"
    options = ""
    if turn.get("options"):
        options = '<ol class="options">' + "".join(f"<li>{esc(o)}</li>" for o in turn["options"]) + "</ol>"
    meta = f"<time>{esc(when(turn.get('at')))}</time>"
    if turn.get("by"):
        direction += " person"
        meta += f' · <span class="by">{esc(turn["by"])}</span>'
    if turn.get("to"):  # a notification (Notify): to someone, or on another channel
        meta += f' · <span class="to">to {esc(turn["to"])} by {esc(turn.get("channel", ""))}</span>'
    if turn.get("direction") == "out":
        status = str(turn.get("status", ""))
        meta += f' · <span class="status {esc(status)}">{esc(status)}</span>'
        if turn.get("error_code"):
            meta += f' <span class="status failed">({esc(turn["error_code"])})</span>'
    return f'<li class="{direction}"><div class="text">{esc(turn.get("text", ""))}</div>{options}<div class="meta">{meta}</div></li>'


def _run(run: Mapping[str, Any], conversation: str, current: bool, show: bool) -> str:
    """One of the customer's conversations on the number: a link to its own page."""
    href = esc(conversation_href(conversation, show, str(run["run_id"])))
    state = esc(run["state"])
    mark = ' class="current"' if current else ""
    shown_here = " (shown)" if current else ""
    return (
        f'<li{mark}><a href="{href}">{esc(when(run["started_at"]))}</a> {esc(run["flow"])} · '
        f'<span class="state {state}">{state}</span>{shown_here}</li>'
    )


@dataclass
class ConversationPage:
    view: dict[str, Any]  # from conversation_json
    channel: str
    number: str
    customer: str
    diagram: str  # SVG, or "" when the flow is not deployed here
    done: str = ""
    error: str = ""
    runs: list[dict[str, Any]] = field(
        default_factory=list
    )  # the customer's conversations on this number, newest first


def conversation_page(page: ConversationPage, chrome: Chrome, *, csrf: str, poll: str) -> str:
    view = page.view
    conversation = view["id"]
    running = view["state"] == "running"
    operator = str(view.get("operator") or "")
    person, bot = running and bool(operator), running and not operator
    unanswered = ", ".join(f"\u201c{text}\u201d" for text in view.get("unanswered", []))
    action = f"{BASE}/conversations/{quote(conversation, safe=':+')}"
    token = f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
    diagram = page.diagram or f'<p class="muted">Flow {esc(view["flow"]) or "?"} is not deployed on this web app.</p>'
    transcript = "".join(_turn(t) for t in view["transcript"])
    trace = "".join(f"<li><time>{esc(when(line['at']))}</time> {esc(line['text'])}</li>" for line in view["trace"])
    version = "" if view.get("version") is None else f"<dt>Version</dt><dd>{esc(view['version'])}</dd>"
    runs = "".join(_run(run, conversation, run["run_id"] == view.get("run_id"), chrome.show) for run in page.runs)
    content = f"""<p><a href="{BASE}{"?show=1" if chrome.show else ""}">← Conversations</a></p>
<h1 id="title">{esc(view["title"])}</h1>
{flash(page.done, page.error)}
<div class="grid">
<div>
<section class="card"><h2>Conversation</h2>
<dl class="facts">
<dt>State</dt><dd><span id="fact-state" class="state {esc(view["state"])}">{esc(view["state"])}</span></dd>
<dt>Flow</dt><dd id="fact-flow">{esc(view["flow"])}</dd>{version}
<dt>Step</dt><dd id="fact-step">{esc(view["step"])}</dd>
<dt>Taken over by</dt><dd id="fact-operator">{esc(operator)}</dd>
<dt>Outcome</dt><dd id="fact-outcome" class="outcome {esc(view["outcome"])}">{esc(view["outcome"])}</dd>
<dt>Reason</dt><dd id="fact-reason">{esc(view["reason"])}</dd>
<dt>Channel</dt><dd>{esc(page.channel)}</dd>
<dt>Our number</dt><dd>{esc(page.number)}</dd>
<dt>Customer</dt><dd id="fact-customer">{esc(page.customer)}</dd>
</dl></section>
<section class="card"><h2>Conversations with this customer <span class="muted">(on this number, newest first)</span></h2>
<ol class="runs" id="runs">{runs}</ol></section>
<section class="card"><h2>Data</h2><pre class="data" id="data">{esc(json.dumps(view["data"], indent=2, ensure_ascii=False))}</pre></section>
<section class="card" id="actions"><h2>Actions</h2>
<p class="muted when-ended"{"" if not running else " hidden"}>This conversation has ended: there is nothing to act on.</p>
<form class="action when-running" id="end-form" method="post" action="{esc(action)}/end"{"" if running else " hidden"}>
{token}<label>Reason<input name="reason" id="end-reason" value="ended by an operator" maxlength="500"></label>
<button type="submit" class="danger" id="end-button">End conversation</button>
</form>
<form class="action when-running" id="event-form" method="post" action="{esc(action)}/events"{"" if running else " hidden"}>
{token}<label>Business event<input name="name" id="event-name" required maxlength="200" placeholder="payment_succeeded"></label>
<label>Data (a JSON object)<textarea name="data" id="event-data" spellcheck="false">{{}}</textarea></label>
<button type="submit" id="event-button">Report event</button>
</form>
<div id="takeover">
<form class="action when-running when-bot" id="takeover-form" method="post" action="{esc(action)}/takeover"{"" if bot else " hidden"}>
{token}<label>Your name<input name="operator" id="takeover-operator" required maxlength="100" placeholder="Ana"></label>
<button type="submit" id="takeover-button">Take over</button>
<span class="muted">The bot stops answering and its timers stand still until you hand back.</span>
</form>
<form class="action when-running when-person" id="reply-form" method="post" action="{esc(action)}/replies"{"" if person else " hidden"}>
{token}<input type="hidden" name="operator" class="operator-field" value="{esc(operator)}">
<label>Reply to the customer<textarea name="text" id="reply-text" required maxlength="4096"></textarea></label>
<button type="submit" id="reply-button">Send</button>
</form>
<p class="warning" id="unanswered"{"" if person and unanswered else " hidden"}>The customer wrote since your last reply:
<span id="unanswered-texts">{esc(unanswered)}</span>. Reply, or hand back: a flow waiting for a reply gets it, in order.</p>
<form class="action when-running when-person" id="handback-form" method="post" action="{esc(action)}/handback"{"" if person else " hidden"}>
{token}<input type="hidden" name="operator" class="operator-field" value="{esc(operator)}">
<button type="submit" id="handback-button">Hand back to the bot</button>
</form>
</div>
</section>
</div>
<div>
<section class="card"><h2>Transcript</h2><ol class="transcript" id="transcript">{transcript}</ol></section>
<section class="card"><h2>Decision trace <span class="muted">(steps, replies matched, timeouts, HTTP calls, refusals)</span></h2>
<ol class="trace" id="trace">{trace}</ol></section>
</div>
</div>
<section class="card"><h2>Flow <span class="muted">(the current step highlighted)</span></h2><div id="diagram">{diagram}</div></section>"""
    return layout(view["title"], content, chrome, poll=poll, page="conversation")


@dataclass
class FlowCard:
    name: str
    versions: list[int]
    running: dict[int, int]
    waiting: dict[str, int]
    outcomes: dict[str, int]
    endings: dict[str, int]
    diagram: str  # the newest version's SVG
    builtin: frozenset[str] = frozenset()  # endings that are built-in ends, not the author's steps
    branches: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # see FlowFigures


def _counts(
    title: str, counts: Mapping[Any, int], *, href: Callable[[Any], str], label: Callable[[Any], str] = str
) -> str:
    total = sum(counts.values()) or 1  # bars are shares of the table (no inline styles: the CSP forbids them)
    rows = "".join(
        f'<tr><td><a href="{esc(href(key))}">{esc(label(key))}</a></td><td class="count">{count}</td>'
        f'<td class="bar"><progress value="{count}" max="{total}">{count}</progress></td></tr>'
        for key, count in counts.items()
    )
    return f'<table class="counts"><thead><tr><th>{esc(title)}</th><th>Conversations</th><th></th></tr></thead><tbody>{rows}</tbody></table>'


def _split_outcomes(flow: str, split: str, branches: Mapping[str, Mapping[str, int]], period: str) -> str:
    """An experiment's results: how the customers sent down each branch ended, each count a link
    to those conversations."""
    outcomes = list(next(iter(branches.values()), {}))
    head = "".join(f"<th>{esc(outcome)}</th>" for outcome in outcomes)

    def cell(branch: str, outcome: str, count: int) -> str:
        href = page_href(BASE, {"flow": flow, "data": f"split:{split}={branch}", "outcome": outcome})
        return f'<td class="count"><a href="{esc(href)}">{count}</a></td>'

    rows = "".join(
        f"<tr><td>{esc(branch)}</td>{''.join(cell(branch, o, counts.get(o, 0)) for o in outcomes)}</tr>"
        for branch, counts in branches.items()
    )
    title = f"Split {split}: ended in the last {period}, by branch"
    return f'<table class="counts split" id="split-{esc(flow)}-{esc(split)}"><thead><tr><th>{esc(title)}</th>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _flow_card(card: FlowCard, period: str) -> str:
    def listed(**filters: str) -> str:
        return page_href(BASE, {"flow": card.name, **filters})

    versions = ", ".join(f"v{v}" for v in card.versions)
    return f"""<section class="card flow" id="flow-{esc(card.name)}">
<h2>{esc(card.name)} <span class="muted">deployed: {esc(versions)}</span></h2>
<div class="grid">
<div>
{_counts("Running, by version", card.running, href=lambda v: listed(version=str(v), state="running"), label=lambda v: f"v{v}")}
{_counts("Waiting at step", card.waiting, href=lambda s: listed(step=s, state="running"))}
{_counts(f"Ended in the last {period}", card.outcomes, href=lambda o: listed(outcome=o))}
{_counts(f"Ending reached in the last {period}", card.endings, href=lambda s: listed(step=s, state="ended"), label=lambda s: f"{s} (built-in)" if s in card.builtin else s)}
{"".join(_split_outcomes(card.name, split, branches, period) for split, branches in card.branches.items())}
</div>
<div class="diagram">{card.diagram}</div>
</div>
</section>"""


def flows_page(
    cards: Sequence[FlowCard], chrome: Chrome, *, period: str, periods: Sequence[str], error: str = ""
) -> str:
    choose = " ".join(
        f'<a class="button{" selected" if p == period else ""}" href="{BASE}/flows?period={p}" id="period-{p}">{p}</a>'
        for p in periods
    )
    cards_html = "".join(_flow_card(card, period) for card in cards)
    content = f"""<h1>Flows</h1>
{flash(error=error)}
<p class="period">Period: {choose}</p>
{cards_html or '<p class="muted">No flows are deployed on this web app.</p>'}"""
    return layout("Flows", content, chrome)


@dataclass
class OperationsPage:
    letters: list[dict[str, Any]]  # DeadLetter.as_json()
    total: int  # dead letters in all (the page lists the oldest first, up to its limit)
    customer: str = ""  # the opt-out lookup, as typed
    opted_out: dict[str, bool] | None = None  # our number -> opted out, once looked up
    done: str = ""
    error: str = ""
    sources: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> its counters
    sink_failures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # sink -> batches put aside


def _sources(sources: dict[str, dict[str, int]]) -> str:
    if not sources:
        return ""
    rows = "".join(
        f"""<tr><td>{esc(name)}</td><td>{esc(_received(counts))}</td><td>{counts.get("refused", 0)}</td>
<td>{counts.get("duplicate", 0)}</td><td>{counts.get("unmatched", 0)}</td><td>{counts.get("ignored", 0)}</td></tr>"""
        for name, counts in sources.items()
    )
    return f"""<section class="card"><h2>Sources</h2>
<p class="muted">Signed webhooks of other systems (POST /webhooks/&lt;source&gt;): events received by type, signatures refused,
redeliveries acknowledged, events by key that found no conversation (kept a while for one), types the mapping ignores.</p>
<table id="sources"><thead><tr><th>Source</th><th>Received</th><th>Refused</th><th>Duplicates</th><th>Unmatched keys</th><th>Ignored</th></tr></thead>
<tbody>{rows}</tbody></table></section>"""


def _received(counts: dict[str, int]) -> str:
    """`payment_intent.succeeded 3, charge.refunded 1`: events received by type."""
    by_type = [
        f"{what.removeprefix('received:')} {count}" for what, count in counts.items() if what.startswith("received:")
    ]
    return ", ".join(by_type) or "none yet"


def _sink_failures(failures: dict[str, list[dict[str, Any]]]) -> str:
    if not failures:
        return ""
    rows = "".join(
        f"""<tr><td>{esc(name)}</td><td>{esc(when(letter["at"]))}</td><td>{esc(letter["reason"])}</td><td>{letter["attempts"]}</td><td>{len(letter["events"])}</td></tr>"""
        for name, letters in failures.items()
        for letter in letters
    )
    return f"""<section class="card"><h2>Sink failures</h2>
<p class="muted">Lifecycle events a sink refused for good or kept failing to take, put aside so the events behind them went on.</p>
<table id="sink-failures"><thead><tr><th>Sink</th><th>Put aside</th><th>Why</th><th>Attempts</th><th>Events</th></tr></thead>
<tbody>{rows}</tbody></table>
<p class="muted"{" hidden" if rows else ""}>No sink failures.</p></section>"""


def operations_page(page: OperationsPage, chrome: Chrome, *, csrf: str) -> str:
    token = f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
    letters = "".join(
        f"""<tr><td>{esc(when(letter["at"]))}</td><td>{esc(letter["reason"])}</td><td>{esc(letter["kind"])}</td>
<td class="id">{esc(title_of(str(letter["conversation"]), chrome.show))}</td><td>{esc(letter["flow"])}</td><td>{esc(letter["size"])}</td>
<td><form method="post" action="{BASE}/operations/dead-letters/{quote(str(letter["id"]), safe="")}/retry">{token}
<button type="submit" class="retry">Retry</button></form></td></tr>"""
        for letter in page.letters
    )
    lookup = ""
    if page.opted_out is not None:
        lines = "".join(
            f'<li>{esc(number)}: <strong class="{"bad" if out else "ok"}">{"opted out" if out else "subscribed"}</strong></li>'
            for number, out in page.opted_out.items()
        )
        lookup = f'<ul id="optout-result">{lines or "<li>No numbers in the config.</li>"}</ul>'
    content = f"""<h1>Operations</h1>
{flash(page.done, page.error)}
<section class="card"><h2>Dead letters <span class="muted" id="dead-letter-count">{page.total}</span></h2>
<p class="muted">Messages the forwarder could not hand to Temporal (too large, unreadable, refused). They block
nothing; retry one once its cause is fixed: it is handed on once, even if an earlier attempt got through.</p>
<table id="dead-letters"><thead><tr><th>Put aside</th><th>Why</th><th>Kind</th><th>Conversation</th><th>Flow</th><th>Bytes</th><th></th></tr></thead>
<tbody>{letters}</tbody></table>
<p class="muted"{" hidden" if page.letters else ""}>No dead letters.</p>
</section>
<section class="card"><h2>Opt-outs</h2>
<form method="get" action="{BASE}/operations" id="optout-form">
<label>Customer<input name="customer" id="optout-customer" value="{esc(page.customer)}" placeholder="+14155550100" size="16" required></label>
<button type="submit">Look up</button>
</form>
{lookup}
</section>
{_sources(page.sources)}
{_sink_failures(page.sink_failures)}"""
    return layout("Operations", content, chrome)


def page_href(path: str, params: Mapping[str, str]) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{path}?{query}" if query else path
