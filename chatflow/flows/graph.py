"""`chatflow graph`: a flow's state machine as a diagram, drawn from the `Flow.table` the engine runs.

Mermaid and Graphviz DOT are text. SVG is laid out here (layers by distance from the first step)
rather than by transitions' diagram extension: its Graphviz engines need the `dot` program and
its Mermaid engine only writes Mermaid, and a diagram should not need a system package. PNG does
need Graphviz's `dot` on the PATH (rasterising text without it would mean a font stack of our own).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import deque
from dataclasses import dataclass, field
from html import escape

from chatflow.domain.errors import ChatflowError
from chatflow.flows.flow import Flow
from chatflow.flows.steps import End

FORMATS = ("mermaid", "dot", "svg", "png")


class GraphError(ChatflowError):
    pass


@dataclass
class Edge:
    source: str
    dest: str
    labels: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " | ".join(self.labels)


@dataclass
class Graph:
    name: str
    initial: str
    states: list[str]  # only those an edge touches, plus the first step
    ends: set[str]  # End steps: the conversation is over there
    kinds: dict[str, str]  # step name -> step type (Ask, Say, ...)
    edges: list[Edge]


def graph_of(flow: type[Flow]) -> Graph:
    """Read the flow's transition table: one edge per (source, dest), its triggers as labels."""
    table = flow.table
    merged: dict[tuple[str, str], Edge] = {}
    for trigger, event in table.events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                key = (source, str(transition.dest))
                merged.setdefault(key, Edge(*key)).labels.append(trigger)
    order = list(table.states)
    edges = sorted(merged.values(), key=lambda e: (order.index(e.source), order.index(e.dest)))
    touched = {table.initial} | {e.source for e in edges} | {e.dest for e in edges}
    return Graph(
        name=flow.name,
        initial=str(table.initial),
        states=[s for s in order if s in touched],
        ends={name for name, step in flow.steps.items() if isinstance(step, End)},
        kinds={name: type(step).__name__ for name, step in flow.steps.items()},
        edges=edges,
    )


def mermaid(graph: Graph) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {graph.initial}"]
    for edge in graph.edges:
        lines.append(f"    {edge.source} --> {edge.dest}: {edge.label.replace(';', ',')}")
    lines += [f"    {state} --> [*]" for state in graph.states if state in graph.ends]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(*lines: str) -> str:
    return _quoted("\n".join(lines)).replace("\n", "\\n")


def dot(graph: Graph) -> str:
    lines = [
        f"digraph {_quoted(graph.name)} {{",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        "    __start [shape=point];",
        f"    __start -> {_quoted(graph.initial)};",
    ]
    for state in graph.states:
        shape = ", peripheries=2" if state in graph.ends else ""
        lines.append(f"    {_quoted(state)} [label={_label(state, graph.kinds[state])}{shape}];")
    for edge in graph.edges:
        lines.append(f"    {_quoted(edge.source)} -> {_quoted(edge.dest)} [label={_label(*edge.labels)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- SVG: a layered layout, top to bottom -------------------------------------------------------

CHAR_WIDTH = 7.2  # average width of a 12px sans-serif character
NODE_HEIGHT = 40
LAYER_GAP = 120
NODE_GAP = 40
MARGIN = 40


def _layers(graph: Graph) -> list[list[str]]:
    """States by breadth-first distance from the first step; unreachable ones last."""
    depth = {graph.initial: 0}
    queue = deque([graph.initial])
    while queue:
        state = queue.popleft()
        for edge in graph.edges:
            if edge.source == state and edge.dest not in depth:
                depth[edge.dest] = depth[state] + 1
                queue.append(edge.dest)
    last = max(depth.values()) + 1
    layers: list[list[str]] = [[] for _ in range(last + 1)]
    for state in graph.states:
        layers[depth.get(state, last)].append(state)
    return [layer for layer in layers if layer]


def svg(graph: Graph) -> str:
    layers = _layers(graph)
    width_of = {s: max(len(s), len(graph.kinds[s])) * CHAR_WIDTH + 24 for s in graph.states}
    row_widths = [sum(width_of[s] for s in layer) + NODE_GAP * (len(layer) - 1) for layer in layers]
    canvas_width = max(row_widths) + 2 * MARGIN + 160  # room at the sides for edges going back up
    box: dict[str, tuple[float, float, float]] = {}  # state -> (x centre, y top, width)
    for row, (layer, row_width) in enumerate(zip(layers, row_widths, strict=True)):
        x = (canvas_width - row_width) / 2
        y = MARGIN + 30 + row * LAYER_GAP
        for state in layer:
            box[state] = (x + width_of[state] / 2, y, width_of[state])
            x += width_of[state] + NODE_GAP
    height = MARGIN * 2 + 30 + (len(layers) - 1) * LAYER_GAP + NODE_HEIGHT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{canvas_width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {canvas_width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{escape(graph.name)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    cx, top, _ = box[graph.initial]
    out.append(f'<circle cx="{cx:.1f}" cy="{MARGIN:.1f}" r="6" fill="#333"/>')
    out.append(_line(cx, MARGIN + 6, cx, top))
    for index, edge in enumerate(graph.edges):
        out += _edge(box, edge, index)
    for state in graph.states:
        cx, top, width = box[state]
        stroke = 'stroke-width="3"' if state in graph.ends else 'stroke-width="1.5"'
        out.append(
            f'<rect x="{cx - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" height="{NODE_HEIGHT}" '
            f'rx="8" fill="#eef4ff" stroke="#335" {stroke}/>'
        )
        out.append(f'<text x="{cx:.1f}" y="{top + 17:.1f}" text-anchor="middle" font-weight="bold">{escape(state)}</text>')
        out.append(f'<text x="{cx:.1f}" y="{top + 32:.1f}" text-anchor="middle" fill="#667" font-size="10">{escape(graph.kinds[state])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _line(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#555" marker-end="url(#arrow)"/>'


def _text(x: float, y: float, label: str) -> str:
    # A white halo keeps a label readable where it crosses a line.
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="#333" stroke="white" '
        f'stroke-width="4" paint-order="stroke">{escape(label)}</text>'
    )


def _curve(p0: tuple[float, float], c1: tuple[float, float], c2: tuple[float, float], p3: tuple[float, float], t: float) -> tuple[float, float]:
    u = 1 - t
    x = u**3 * p0[0] + 3 * u * u * t * c1[0] + 3 * u * t * t * c2[0] + t**3 * p3[0]
    y = u**3 * p0[1] + 3 * u * u * t * c1[1] + 3 * u * t * t * c2[1] + t**3 * p3[1]
    return x, y


def _edge(box: dict[str, tuple[float, float, float]], edge: Edge, index: int) -> list[str]:
    sx, stop, _ = box[edge.source]
    dx, dtop, _ = box[edge.dest]
    if dtop > stop:  # downwards: bottom of the source to top of the destination
        p0, p3 = (sx, stop + NODE_HEIGHT), (dx, dtop)
        c1, c2 = (sx, stop + NODE_HEIGHT + 30), (dx, dtop - 30)
        dashed, t = "", 0.7 - 0.15 * (index % 2)  # labels of a fan alternate in height
    elif dtop == stop:  # same layer: an arc below both
        p0, p3 = (sx, stop + NODE_HEIGHT), (dx, dtop + NODE_HEIGHT)
        c1, c2 = (sx, stop + NODE_HEIGHT + 55), (dx, dtop + NODE_HEIGHT + 55)
        dashed, t = ' stroke-dasharray="4 3"', 0.5
    else:  # back up: from the source's top to the destination's bottom, bowed to one side
        side = -1 if sx < dx else 1
        bow = side * (70 + 14 * (index % 4))
        p0, p3 = (sx, stop), (dx, dtop + NODE_HEIGHT)
        c1, c2 = (sx + bow, stop - 40), (dx + bow, dtop + NODE_HEIGHT + 40)
        dashed, t = ' stroke-dasharray="4 3"', 0.3
    path = f"M {p0[0]:.1f} {p0[1]:.1f} C {c1[0]:.1f} {c1[1]:.1f}, {c2[0]:.1f} {c2[1]:.1f}, {p3[0]:.1f} {p3[1]:.1f}"
    lx, ly = _curve(p0, c1, c2, p3, t)
    return [
        f'<path d="{path}" fill="none" stroke="#555"{dashed} marker-end="url(#arrow)"/>',
        _text(lx, ly + 4, edge.label),
    ]


def png(graph: Graph) -> bytes:
    program = shutil.which("dot")
    if program is None:
        raise GraphError("png needs Graphviz's `dot` on the PATH (apt install graphviz); --format svg needs nothing")
    done = subprocess.run([program, "-Tpng"], input=dot(graph).encode(), capture_output=True, check=False)
    if done.returncode != 0:
        raise GraphError(f"dot failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def render(flow: type[Flow], fmt: str) -> bytes:
    graph = graph_of(flow)
    if fmt == "png":
        return png(graph)
    writers = {"mermaid": mermaid, "dot": dot, "svg": svg}
    if fmt not in writers:
        raise GraphError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    return writers[fmt](graph).encode()
