"""The dashboard's one style sheet and one script, served as they are: no build step, nothing
fetched from elsewhere (kept as Python strings, so they ship with the package wherever it goes)."""

from __future__ import annotations

CSS = """
:root { --ink: #1d2330; --muted: #667085; --line: #d9dee8; --bg: #f6f7fb; --accent: #2f5bd3;
        --ok: #1a7f37; --warn: #9a6700; --bad: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--ink); background: var(--bg); }
header.top { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #1d2330; color: white; }
header.top a { color: white; text-decoration: none; }
header.top .brand { font-weight: 700; font-size: 16px; }
header.top .spacer { flex: 1; }
header.top form { margin: 0; }
header.top button { background: transparent; color: white; border: 1px solid #667; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 20px; margin: 8px 0 14px; word-break: break-all; }
h2 { font-size: 15px; margin: 0 0 10px; }
a { color: var(--accent); }
.banner { padding: 8px 20px; background: #fff4ce; color: #5c4400; border-bottom: 1px solid #f0d97a; }
.flash { padding: 8px 12px; border-radius: 6px; margin-bottom: 12px; }
.flash.ok { background: #e6f4ea; color: #14532d; }
.flash.error { background: #fdecea; color: #7f1d1d; }
.card { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 16px; }
form.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; }
form.filters label, form.action label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 3px; }
input, select, textarea, button { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 5px; background: white; color: var(--ink); }
textarea { width: 100%; min-height: 64px; font-family: ui-monospace, Menlo, Consolas, monospace; }
button { cursor: pointer; background: var(--accent); color: white; border-color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
button.plain, a.button { background: white; color: var(--accent); border: 1px solid var(--line); padding: 5px 10px; border-radius: 5px; text-decoration: none; }
table { width: 100%; border-collapse: collapse; background: white; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfd; }
td.id { white-space: normal; word-break: break-all; }
.pager { display: flex; gap: 10px; align-items: center; margin-top: 12px; color: var(--muted); }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #eef1f6; }
.state.running { background: #e0ecff; color: #1f4fb8; }
.state.ended { background: #eef1f6; color: var(--muted); }
.outcome.completed { color: var(--ok); }
.outcome.cancelled, .outcome.expired { color: var(--warn); }
.outcome.failed, .outcome.terminated { color: var(--bad); font-weight: 600; }
.grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-all; }
pre.data { margin: 0; background: #fafbfd; border: 1px solid var(--line); border-radius: 6px; padding: 8px; overflow: auto; max-height: 220px; }
ol.transcript { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 8px; max-height: 640px; overflow: auto; }
ol.transcript > li { max-width: 80%; padding: 7px 10px; border-radius: 10px; }
ol.transcript > li.in { align-self: flex-start; background: #eef1f6; }
ol.transcript > li.out { align-self: flex-end; background: #dbe7ff; }
ol.transcript .text { white-space: pre-wrap; word-break: break-word; }
ol.transcript .options { margin: 4px 0 0; padding-left: 20px; }
ol.transcript .meta { font-size: 11px; color: var(--muted); margin-top: 3px; }
.status.delivered, .status.read { color: var(--ok); }
.status.failed, .status.undelivered { color: var(--bad); }
.status.sending, .status.queued, .status.sent { color: var(--warn); }
#diagram { text-align: center; overflow-x: auto; }
#diagram svg { max-width: 100%; height: auto; }
#diagram rect.current { fill: #ffe08a; stroke: #b7791f; stroke-width: 3; }
form.action { display: flex; flex-direction: column; gap: 8px; margin-bottom: 14px; }
form.action button { align-self: flex-start; }
ol.transcript > li.out.person { background: #fff1d6; }
table.counts { margin-bottom: 14px; }
ol.trace { margin: 0; padding-left: 34px; max-height: 320px; overflow: auto; font-size: 13px; }
ol.trace time { color: var(--muted); }
table.counts td.count { text-align: right; font-variant-numeric: tabular-nums; }
table.counts td.bar { width: 40%; }
table.counts td.bar progress { width: 100%; height: 8px; accent-color: var(--accent); }
.diagram svg { max-width: 100%; height: auto; }
a.button.selected { font-weight: 700; }
.by { font-weight: 600; }
.muted { color: var(--muted); }
.login { max-width: 380px; margin: 60px auto; }
.login form { display: flex; flex-direction: column; gap: 10px; }
[hidden] { display: none !important; }
.signed-out-note { display: none; }
body.signed-out .signed-out-note { display: block; }
"""

JS = r"""
// The dashboard's live parts: pages poll a JSON view of what they show and redraw it.
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function when(at) {
    return at ? String(at).replace("T", " ").slice(0, 19) : "";
  }

  function poll(url, every, draw) {
    var last = null;
    var stopped = false;
    function tick() {
      if (stopped) return;
      if (document.hidden) { setTimeout(tick, every); return; }
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (answer) {
          if (answer.status === 401) { stopped = true; document.body.classList.add("signed-out"); return null; }
          return answer.ok ? answer.text() : null;
        })
        .then(function (text) {
          if (text && text !== last) { last = text; draw(JSON.parse(text)); }
        })
        .catch(function () {})
        .then(function () {
          // An ended conversation changes only if the customer starts another: look less often.
          var ended = last !== null && JSON.parse(last).state === "ended";
          setTimeout(tick, ended ? every * 4 : every);
        });
    }
    setTimeout(tick, every);
  }

  function turn(t) {
    var item = el("li", (t.direction === "in" ? "in" : "out") + (t.by ? " person" : ""));
    item.appendChild(el("div", "text", t.text));
    if (t.options && t.options.length) {
      var options = el("ol", "options");
      t.options.forEach(function (o) { options.appendChild(el("li", "", o)); });
      item.appendChild(options);
    }
    var meta = el("div", "meta");
    meta.appendChild(el("time", "", when(t.at)));
    if (t.by) {
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(el("span", "by", t.by));
    }
    if (t.direction === "out") {
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(el("span", "status " + (t.status || ""), t.status || ""));
      if (t.error_code) meta.appendChild(el("span", "status failed", " (" + t.error_code + ")"));
    }
    item.appendChild(meta);
    return item;
  }

  function drawConversation(view) {
    var list = document.getElementById("transcript");
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.replaceChildren.apply(list, (view.transcript || []).map(turn));
    if (atBottom) list.scrollTop = list.scrollHeight;
    ["state", "flow", "step", "outcome", "reason", "operator"].forEach(function (name) {
      var node = document.getElementById("fact-" + name);
      if (node) node.textContent = view[name] || "";
    });
    var state = document.getElementById("fact-state");
    if (state) state.className = "state " + (view.state || "");
    var outcome = document.getElementById("fact-outcome");
    if (outcome) outcome.className = "outcome " + (view.outcome || "");
    document.getElementById("data").textContent = JSON.stringify(view.data || {}, null, 2);
    var trace = document.getElementById("trace");
    if (trace) {
      trace.replaceChildren.apply(trace, (view.trace || []).map(function (line) {
        var item = el("li");
        item.appendChild(el("time", "", when(line.at)));
        item.appendChild(document.createTextNode(" " + line.text));
        return item;
      }));
    }
    document.querySelectorAll("#diagram rect[data-step]").forEach(function (box) {
      box.classList.toggle("current", box.getAttribute("data-step") === view.step);
    });
    document.querySelectorAll(".when-running").forEach(function (node) {
      node.hidden = view.state !== "running";
    });
    document.querySelectorAll(".when-ended").forEach(function (node) {
      node.hidden = view.state === "running";
    });
    // Who has the conversation: the bot (take over) or a person (reply, hand back).
    var running = view.state === "running";
    document.querySelectorAll(".when-bot").forEach(function (node) {
      node.hidden = !running || !!view.operator;
    });
    document.querySelectorAll(".when-person").forEach(function (node) {
      node.hidden = !running || !view.operator;
    });
    document.querySelectorAll(".operator-field").forEach(function (node) {
      node.value = view.operator || "";
    });
    var unanswered = document.getElementById("unanswered");
    if (unanswered) {
      var waiting = view.unanswered || [];
      unanswered.hidden = !running || !view.operator || !waiting.length;
      document.getElementById("unanswered-texts").textContent = waiting.map(function (t) { return "\u201c" + t + "\u201d"; }).join(", ");
    }
  }

  function drawList(view) {
    var body = document.querySelector("#conversations tbody");
    body.replaceChildren.apply(body, view.rows.map(function (r) {
      var line = el("tr");
      var id = el("td", "id");
      var link = el("a", "", r.title);
      link.href = r.href;
      id.appendChild(link);
      line.appendChild(id);
      line.appendChild(el("td", "", r.flow + (r.version ? " v" + r.version : "")));
      line.appendChild(el("td", "", r.step));
      var state = el("td");
      state.appendChild(el("span", "state " + r.state, r.state));
      line.appendChild(state);
      var outcome = el("td");
      outcome.appendChild(el("span", "outcome " + r.outcome, r.outcome));
      line.appendChild(outcome);
      line.appendChild(el("td", "", r.channel));
      line.appendChild(el("td", "", r.customer));
      line.appendChild(el("td", "", when(r.started_at)));
      line.appendChild(el("td", "", when(r.closed_at)));
      return line;
    }));
    var empty = document.getElementById("empty");
    if (empty) empty.hidden = view.rows.length > 0;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var transcript = document.getElementById("transcript");
    if (transcript) transcript.scrollTop = transcript.scrollHeight;  // the latest message in view
    var root = document.querySelector("main[data-poll]");
    if (!root) return;
    var draw = root.getAttribute("data-page") === "conversation" ? drawConversation : drawList;
    poll(root.getAttribute("data-poll"), Number(root.getAttribute("data-every")) || 1500, draw);
  });
})();
"""
