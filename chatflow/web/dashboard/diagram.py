"""The flow's diagram (`chatflow.flows.graph.svg`) with each step's box named, so the page can
highlight the current step and move the highlight as the conversation goes on."""

from __future__ import annotations

import re
from html import escape, unescape

from chatflow.flows.flow import Flow
from chatflow.flows.graph import graph_of, svg

# In graph.svg, a step is drawn as its box, then its name in bold on the next line.
_NAME = re.compile(r'<text [^>]*font-weight="bold">(?P<name>[^<]*)</text>')


def flow_diagram(flow: type[Flow], step: str) -> str:
    """The SVG, each step's <rect> with data-step="<name>", the current one of class "current"."""
    lines = svg(graph_of(flow)).splitlines()
    for index in range(len(lines) - 1):
        found = _NAME.search(lines[index + 1])
        if lines[index].startswith("<rect x=") and found:
            name = unescape(found["name"])
            current = ' class="current"' if name == step else ""
            lines[index] = lines[index].replace("<rect ", f'<rect data-step="{escape(name)}"{current} ', 1)
    return "\n".join(lines)
