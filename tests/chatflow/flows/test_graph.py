import xml.etree.ElementTree as ET

import pytest

from chatflow import Ask, End, Flow, hours, yes
from chatflow.flows.graph import GraphError, dot, graph_of, mermaid, render, svg
from conversations.demo import Demo

SVG = "{http://www.w3.org/2000/svg}"


def table_edges() -> set[tuple[str, str, str]]:
    """Every (source, trigger, dest) in the transition table the engine runs."""
    return {
        (source, trigger, str(t.dest))
        for trigger, event in Demo.table.events.items()
        for source, transitions in event.transitions.items()
        for t in transitions
    }


def test_the_graph_is_the_transition_table() -> None:
    graph = graph_of(Demo)
    drawn = {(e.source, label, e.dest) for e in graph.edges for label in e.labels}
    assert drawn == table_edges()
    assert graph.initial == "greet"
    assert {"nobody_free", "goodbye"} <= graph.ends


def test_mermaid() -> None:
    text = mermaid(graph_of(Demo))
    lines = text.splitlines()
    assert lines[:2] == ["stateDiagram-v2", "    [*] --> greet"]
    assert "    menu --> opening_hours: choice:Opening hours" in lines
    assert "    menu --> goodbye: reply:bye/goodbye/adios/chao | no_match | timeout" in lines
    assert "    goodbye --> [*]" in lines


def test_dot() -> None:
    text = dot(graph_of(Demo))
    assert text.startswith('digraph "demo" {')
    assert '"ask_order" -> "order_status" [label="reply:anything"];' in text


def test_svg_is_well_formed_and_shows_every_step_and_label() -> None:
    root = ET.fromstring(svg(graph_of(Demo)))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for state in graph_of(Demo).states:
        assert state in texts
    assert "choice:Track my order" in texts
    assert len(list(root.iter(f"{SVG}path"))) == len(graph_of(Demo).edges) + 1  # + the arrowhead


def test_unknown_format() -> None:
    with pytest.raises(GraphError):
        render(Demo, "gif")


class Reminder(Flow):
    ask = Ask("Confirm?", branches={yes: "confirmed"}, timeout=hours(24), on_timeout="expired")
    confirmed = End("completed", "Thanks!")


def test_built_in_ends_are_marked_as_such() -> None:
    graph = graph_of(Reminder)
    assert graph.builtin == {"completed", "cancelled", "expired", "failed"}
    assert Reminder.own_steps() == ["ask", "confirmed"]
    assert "    expired : expired (built-in End)" in mermaid(graph).splitlines()
    assert "confirmed : " not in mermaid(graph)
    assert '"expired" [label="expired\\nbuilt-in End", peripheries=2];' in dot(graph)
    assert "built-in End" in [t.text for t in ET.fromstring(svg(graph)).iter(f"{SVG}text")]
