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
from typing import Any

from chatflow.domain.errors import ChatflowError
from chatflow.flows.flow import Flow
from chatflow.flows.steps import End

FORMATS = ("mermaid", "dot", "svg", "png")
BUILTIN_END = "built-in End"  # what a built-in end is called where a step's kind is shown


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
    builtin: set[str]  # the built-in ends among them (no step of the author's)
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
        builtin={name for name, step in flow.steps.items() if step.builtin},
        kinds={name: BUILTIN_END if step.builtin else type(step).__name__ for name, step in flow.steps.items()},
        edges=edges,
    )


def mermaid(graph: Graph) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {graph.initial}"]
    for edge in graph.edges:
        lines.append(f"    {edge.source} --> {edge.dest}: {edge.label.replace(';', ',')}")
    lines += [f"    {state} --> [*]" for state in graph.states if state in graph.ends]
    lines += [f"    {state} : {state} ({BUILTIN_END})" for state in graph.states if state in graph.builtin]
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
#
# Steps are laid out in layers by their distance from the first step, ordered within a layer to
# keep edges short and uncrossed (barycentres, a few sweeps). Every edge's label is a box in the
# gap under its source's layer, packed so that no two labels overlap, and the edge passes through
# its label: from the source's bottom into the label, then on to its destination. An edge that
# goes down several layers passes through a placeholder in each layer between (so it never
# crosses a step); one that goes back up, or to its own layer, runs outside the steps, along
# the side of the drawing, and enters its destination from that side.

CHAR_WIDTH = 7.2  # average width of a 12px sans-serif character
LINE_HEIGHT = 15
NODE_HEIGHT = 40
NODE_GAP = 36
LABEL_GAP = 14  # between two labels of a gap
GAP_PAD = 26  # above and below a gap's labels
SIDE_LANE = 16  # between two edges running along the side
RUN_GAP = 6  # between two edges running across a gap
MARGIN = 40
DUMMY_WIDTH = 12


@dataclass
class _Node:
    key: str  # a step's name, or "~<edge>:<layer>" for an edge's placeholder
    layer: int
    width: float
    x: float = 0.0


@dataclass
class _Label:
    edge: int
    lines: list[str]
    width: float
    height: float
    want: float = 0.0
    x: float = 0.0  # centre
    y: float = 0.0  # top


def _label_lines(edge: Edge) -> list[str]:
    return list(edge.labels)


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


class _Layout:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.rows: list[list[_Node]] = []
        self.nodes: dict[str, _Node] = {}
        for index, names in enumerate(_layers(graph)):
            row = [_Node(n, index, max(len(n), len(graph.kinds[n])) * CHAR_WIDTH + 24) for n in names]
            self.rows.append(row)
            self.nodes.update({node.key: node for node in row})
        # Each edge as the chain of nodes it passes: source, placeholders, destination.
        self.chains: list[list[str]] = []
        for index, edge in enumerate(graph.edges):
            source, dest = self.nodes[edge.source], self.nodes[edge.dest]
            chain = [edge.source]
            for layer in range(source.layer + 1, dest.layer):
                placeholder = _Node(f"~{index}:{layer}", layer, DUMMY_WIDTH)
                self.rows[layer].append(placeholder)
                self.nodes[placeholder.key] = placeholder
                chain.append(placeholder.key)
            self.chains.append([*chain, edge.dest])
        self._order()
        self._place()
        self.labels = [self._label(index, edge) for index, edge in enumerate(graph.edges)]
        self._place_labels()

    def forward(self, index: int) -> bool:
        edge = self.graph.edges[index]
        return self.nodes[edge.dest].layer > self.nodes[edge.source].layer

    def _links(self) -> list[tuple[str, str]]:
        """Consecutive nodes of the forward edges' chains: the links between adjacent layers."""
        return [
            (chain[i], chain[i + 1])
            for index, chain in enumerate(self.chains)
            if self.forward(index)
            for i in range(len(chain) - 1)
        ]

    def _order(self) -> None:
        links = self._links()
        for sweep in range(6):
            down = sweep % 2 == 0
            rows = self.rows[1:] if down else list(reversed(self.rows[:-1]))
            for row in rows:
                position = {n.key: i for r in self.rows for i, n in enumerate(r)}
                near = [(b, a) if down else (a, b) for a, b in links]

                def centre(
                    node: _Node, near: list[tuple[str, str]] = near, position: dict[str, int] = position
                ) -> float:
                    around = [position[other] for mine, other in near if mine == node.key]
                    return sum(around) / len(around) if around else position[node.key]

                row.sort(key=centre)

    def _place(self) -> None:
        links = self._links()
        for row in self.rows:
            x = 0.0
            for node in row:
                node.x = x + node.width / 2
                x += node.width + NODE_GAP
        for sweep in range(8):
            down = sweep % 2 == 0
            for row in self.rows if down else reversed(self.rows):
                for node in row:
                    around = [
                        self.nodes[b if a == node.key else a].x
                        for a, b in links
                        if node.key in (a, b)
                        and self.nodes[b if a == node.key else a].layer == node.layer + (-1 if down else 1)
                    ]
                    if around:
                        node.x = sum(around) / len(around)
                _spread(row, lambda n: n.x, lambda n, x: setattr(n, "x", x), lambda n: n.width, NODE_GAP)
        left = min(n.x - n.width / 2 for n in self.nodes.values())
        for node in self.nodes.values():
            node.x += MARGIN + self.side_room() - left

    def side_room(self) -> float:
        """Room at the left for edges that run back up along the side."""
        back = sum(1 for index in range(len(self.graph.edges)) if not self.forward(index))
        return SIDE_LANE * (back + 1)

    def _label(self, index: int, edge: Edge) -> _Label:
        lines = _label_lines(edge)
        width = max(len(line) for line in lines) * CHAR_WIDTH + 10
        return _Label(index, lines, width, len(lines) * LINE_HEIGHT + 4)

    def _place_labels(self) -> None:
        self.gaps: list[list[_Label]] = [[] for _ in self.rows]
        for label in self.labels:
            chain = self.chains[label.edge]
            source = self.nodes[chain[0]]
            if self.forward(label.edge):
                label.want = (source.x + self.nodes[chain[1]].x) / 2
            else:  # towards the left side, where it goes back up
                label.want = source.x - source.width / 2
            self.gaps[source.layer].append(label)
        for gap in self.gaps:
            gap.sort(key=lambda label: label.want)
            _spread(gap, lambda lb: lb.want, lambda lb, x: setattr(lb, "x", x), lambda lb: lb.width, LABEL_GAP)
        # Edges that go back up (or across) run along the left side, innermost the shortest.
        back = [lb.edge for lb in self.labels if not self.forward(lb.edge)]
        span = {i: self.nodes[self.chains[i][0]].layer - self.nodes[self.chains[i][-1]].layer for i in back}
        self.lane = {i: k for k, i in enumerate(sorted(back, key=lambda i: (span[i], i)))}
        # Each leaves its label by a run of its own under the gap's labels (leftmost label highest)
        # and reaches its destination from the left when nothing stands in the way, else from
        # above, by a channel of its own just over the destination's layer.
        self.run: dict[int, int] = {}
        self.channel: dict[int, int] = {}
        for gap in self.gaps:
            for k, label in enumerate(lb for lb in gap if lb.edge in self.lane):
                self.run[label.edge] = k
        for i in back:
            dest = self.nodes[self.chains[i][-1]]
            if self.rows[dest.layer][0] is not dest:
                self.channel[i] = sum(1 for j in self.channel if self.nodes[self.chains[j][-1]].layer == dest.layer)
        entries = [
            sum(1 for j in self.channel if self.nodes[self.chains[j][-1]].layer == r) for r in range(len(self.rows))
        ]
        # Vertical positions: each layer, then the gap of labels under it.
        y = MARGIN + 30.0 + RUN_GAP * entries[0]
        self.row_y: list[float] = []
        self.gap_bottom: list[float] = []
        for index, gap in enumerate(self.gaps):
            self.row_y.append(y)
            y += NODE_HEIGHT + GAP_PAD
            tallest = max((label.height for label in gap), default=0.0)
            for label in gap:
                label.y = y + (tallest - label.height) / 2
            y += tallest
            self.gap_bottom.append(y)
            if index < len(self.gaps) - 1:
                runs = sum(1 for label in gap if label.edge in self.lane) + entries[index + 1]
                y += max(GAP_PAD, RUN_GAP * (runs + 1) + 8)
        self.height = y + MARGIN
        right = max([n.x + n.width / 2 for n in self.nodes.values()] + [lb.x + lb.width / 2 for lb in self.labels])
        left = min([n.x - n.width / 2 for n in self.nodes.values()] + [lb.x - lb.width / 2 for lb in self.labels])
        shift = max(0.0, MARGIN + self.side_room() - left)
        for node in self.nodes.values():
            node.x += shift
        for label in self.labels:
            label.x += shift
        self.width = right + shift + MARGIN
        self.inner_lane = MARGIN + self.side_room() - SIDE_LANE

    def top(self, key: str) -> float:
        return self.row_y[self.nodes[key].layer]


def _spread(items: list[Any], want: Any, put: Any, width: Any, gap: float) -> None:
    """Place items (in their order) as near their wanted centres as they fit without overlapping."""
    if not items:
        return
    placed: list[float] = []
    for item in items:
        x = want(item)
        if placed:
            previous = items[len(placed) - 1]
            x = max(x, placed[-1] + (width(previous) + width(item)) / 2 + gap)
        placed.append(x)
    # Pushing right drifts the row: centre it back on what the items wanted.
    drift = sum(p - want(item) for p, item in zip(placed, items, strict=True)) / len(items)
    for p, item in zip(placed, items, strict=True):
        put(item, p - drift)


def svg(graph: Graph) -> str:
    layout = _Layout(graph)
    nodes = layout.nodes
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width:.0f}" height="{layout.height:.0f}" '
        f'viewBox="0 0 {layout.width:.0f} {layout.height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{escape(graph.name)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    first = nodes[graph.initial]
    top = layout.top(graph.initial)
    out.append(f'<circle cx="{first.x:.1f}" cy="{MARGIN:.1f}" r="6" fill="#333"/>')
    out.append(_line(first.x, MARGIN + 6, first.x, top))
    for index in range(len(graph.edges)):
        out.append(_edge_path(layout, index))
    for label in layout.labels:
        out.append(
            f'<rect x="{label.x - label.width / 2:.1f}" y="{label.y:.1f}" width="{label.width:.1f}" '
            f'height="{label.height:.1f}" rx="4" fill="white" stroke="#ccd" stroke-width="0.8"/>'
        )
        for line, text in enumerate(label.lines):
            out.append(
                f'<text x="{label.x:.1f}" y="{label.y + 14 + line * LINE_HEIGHT:.1f}" text-anchor="middle" '
                f'fill="#333">{escape(text)}</text>'
            )
    for state in graph.states:
        node = nodes[state]
        y = layout.top(state)
        stroke = 'stroke-width="3"' if state in graph.ends else 'stroke-width="1.5"'
        out.append(
            f'<rect x="{node.x - node.width / 2:.1f}" y="{y:.1f}" width="{node.width:.1f}" height="{NODE_HEIGHT}" '
            f'rx="8" fill="#eef4ff" stroke="#335" {stroke}/>'
        )
        out.append(
            f'<text x="{node.x:.1f}" y="{y + 17:.1f}" text-anchor="middle" font-weight="bold">{escape(state)}</text>'
        )
        out.append(
            f'<text x="{node.x:.1f}" y="{y + 32:.1f}" text-anchor="middle" fill="#667" font-size="10">{escape(graph.kinds[state])}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _line(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#555" marker-end="url(#arrow)"/>'


def _down(x1: float, y1: float, x2: float, y2: float) -> str:
    """A smooth curve downwards, leaving and arriving vertically."""
    middle = (y1 + y2) / 2
    return f" C {x1:.1f} {middle:.1f}, {x2:.1f} {middle:.1f}, {x2:.1f} {y2:.1f}"


def _edge_path(layout: _Layout, index: int) -> str:
    chain = layout.chains[index]
    label = layout.labels[index]
    source = layout.nodes[chain[0]]
    bottom = layout.top(chain[0]) + NODE_HEIGHT
    d = f"M {source.x:.1f} {bottom:.1f}" + _down(source.x, bottom, label.x, label.y)
    d += f" L {label.x:.1f} {label.y + label.height:.1f}"
    x, y = label.x, label.y + label.height
    dashed = ""
    if layout.forward(index):
        for key in chain[1:]:
            node = layout.nodes[key]
            top = layout.top(key)
            d += _down(x, y, node.x, top)
            x, y = node.x, top
            if key.startswith("~"):  # through the placeholder's layer, straight down
                y = top + NODE_HEIGHT
                d += f" L {x:.1f} {y:.1f}"
    else:
        dest = layout.nodes[chain[-1]]
        side = layout.inner_lane - SIDE_LANE * layout.lane[index]
        run = layout.gap_bottom[source.layer] + RUN_GAP * (layout.run[index] + 1)
        d += f" L {x:.1f} {run - 4:.1f} Q {x:.1f} {run:.1f}, {x - 4:.1f} {run:.1f}"
        d += f" L {side + 4:.1f} {run:.1f} Q {side:.1f} {run:.1f}, {side:.1f} {run - 4:.1f}"
        top = layout.top(chain[-1])
        if index in layout.channel:  # from above, by its channel over the destination's layer
            over = top - RUN_GAP * (layout.channel[index] + 1)
            enter = dest.x - dest.width / 4
            d += f" L {side:.1f} {over + 4:.1f} Q {side:.1f} {over:.1f}, {side + 4:.1f} {over:.1f}"
            d += f" L {enter - 4:.1f} {over:.1f} Q {enter:.1f} {over:.1f}, {enter:.1f} {over + 4:.1f} L {enter:.1f} {top:.1f}"
        else:  # from the left: nothing stands between the side and the destination
            middle = top + NODE_HEIGHT / 2
            d += f" L {side:.1f} {middle + 4:.1f} Q {side:.1f} {middle:.1f}, {side + 4:.1f} {middle:.1f}"
            d += f" L {dest.x - dest.width / 2:.1f} {middle:.1f}"
        dashed = ' stroke-dasharray="4 3"'
    return f'<path d="{d}" fill="none" stroke="#555"{dashed} marker-end="url(#arrow)"/>'


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
