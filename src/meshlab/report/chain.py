"""The versioned app graph of a whole chain of calls (a check's `traffic`), drawn the way
Kiali draws its versioned-app graph: columns by call depth, from the origin on the left; a
box per app holding a node per version (no box for an app seen in one version); the calls
no pod answered as a red dashed node of their own; an edge per caller, callee and Service,
labelled with its share of that caller's calls to that Service, the count, and its error rate
(4xx, 5xx and no response, as Kiali counts errors). Failing edges and nodes are red.

Everything drawn is aggregated by app and version (`TrafficGraph`), and at most MAX_EDGES
edges are drawn, so the picture stays small whatever the number of requests or pods."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import field

from meshlab.records import dataclass
from meshlab.report.model import ChainEdge, GraphNode, TrafficGraph
from meshlab.report.svg import (
    BLUE,
    GREEN,
    GREY,
    NODE_H,
    PAD,
    RED,
    SMALL,
    app_box,
    arrow_defs,
    document,
    node_box,
    shape,
    text,
    text_width,
)
from meshlab.report.words import pct

__all__ = ["MAX_EDGES", "chain_graph_svg"]

MAX_EDGES = 120  # the busiest edges drawn; the rest are counted in the description
MAX_NAME = 32  # characters of a name drawn; the data attributes keep the whole of it
SLOT = 42  # the height an edge ending on a node needs for its two label lines
BOX_PAD = 12
BOX_TITLE = 22
GAP = 22  # between blocks of a column
CURVE = 60.0
ORIGIN_R = 16


def _cut(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def _edge_label(edge: ChainEdge, total: int) -> tuple[str, str]:
    """`91.0% · 910 req` (the share of the caller's calls to that Service) and `3.0% err`."""
    share = pct(edge.requests / total) if total else "–"
    err = f"{pct(edge.error_rate)} err" if edge.failed else ""
    return f"{share} · {edge.requests} req", err


@dataclass
class _Block:
    """An app's box (or lone version node) or an unanswered node, in one column."""

    app: str
    nodes: list[GraphNode]
    heights: list[float]
    width: float
    node_w: float
    boxed: bool
    x: float = 0.0
    y: float = 0.0

    @property
    def height(self) -> float:
        inner = sum(self.heights) + GAP * (len(self.nodes) - 1)
        if self.boxed:
            return inner + BOX_TITLE + 2 * BOX_PAD
        return inner + 16  # the caption under a lone node


@dataclass
class _Layout:
    """Where the chain graph's nodes ended up and the SVG drawn so far (app boxes behind, nodes and
    edges in front), shared by the steps that place nodes and route edges."""

    places: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    shapes: list[ET.Element] = field(default_factory=list)
    backdrops: list[ET.Element] = field(default_factory=list)
    label_x: dict[str, float] = field(default_factory=dict)  # labels of edges into a node end here


def _blocks(graph: TrafficGraph, incoming: Counter[str]) -> dict[int, list[_Block]]:
    """The nodes grouped into blocks and the blocks into columns (an app's column: the
    smallest depth of its versions)."""
    by_app: dict[str, list[GraphNode]] = defaultdict(list)
    columns: dict[int, list[_Block]] = defaultdict(list)
    for node in graph.nodes:
        if node.kind == "version":
            by_app[node.app].append(node)
    for app, members in by_app.items():
        members.sort(key=lambda n: (-n.requests, n.version))
        boxed = len(members) > 1
        names = [n.version for n in members] if boxed else [app]
        node_w = max(max(text_width(_cut(name)) for name in names) + 28, 90.0)
        caption = _cut(app if boxed else f"version {members[0].version}")
        width = max(node_w, text_width(caption, SMALL)) + (2 * BOX_PAD if boxed else 0)
        heights = [float(max(NODE_H, SLOT * incoming[n.id])) for n in members]
        depth = min(n.depth for n in members)
        columns[depth].append(_Block(app, members, heights, width, node_w, boxed))
    for node in graph.nodes:
        if node.kind == "unanswered":
            node_w = max(text_width("no pod answered"), text_width(_cut(node.app), SMALL)) + 28
            height = float(max(NODE_H, SLOT * incoming[node.id]))
            columns[node.depth].append(_Block(node.app, [node], [height], node_w, node_w, False))
    return columns


def _place(columns: dict[int, list[_Block]], left: float, gaps: dict[int, float]) -> float:
    """x and y of every block, columns centred on the tallest; returns the picture's height."""
    heights = {d: sum(b.height for b in bs) + GAP * (len(bs) - 1) for d, bs in columns.items()}
    tallest = max(heights.values(), default=NODE_H)
    x = left
    for depth in sorted(columns):
        x += gaps.get(depth, 0.0)
        y = PAD + (tallest - heights[depth]) / 2
        for block in columns[depth]:
            block.x, block.y = x, y
            y += block.height + GAP
        x += max(b.width for b in columns[depth])
    return tallest


def _draw_block(block: _Block, layout: _Layout, failing: set[str]) -> None:
    inner_x = block.x + (BOX_PAD if block.boxed else 0)
    y = block.y + ((BOX_TITLE + BOX_PAD) if block.boxed else 0)
    for node, height in zip(block.nodes, block.heights, strict=True):
        if node.kind == "unanswered":
            look: dict[str, object] = {
                "fill": RED,
                "fill_opacity": 0.12,
                "stroke": RED,
                "stroke_dasharray": "4 3",
            }
            data = {"data_node": "unanswered", "data_service": node.app}
            name = "no pod answered"
        else:
            colour = RED if node.id in failing else GREEN
            look = {"fill": colour, "fill_opacity": 0.16, "stroke": colour}
            data = {"data_node": "version", "data_app": node.app, "data_version": node.version}
            name = _cut(node.version if block.boxed else node.app)
        layout.shapes += node_box(inner_x, y, block.node_w, name, look, data, height=height)
        layout.places[node.id] = (inner_x, y, block.node_w, height)
        layout.label_x[node.id] = block.x - 8
        y += height
        if not block.boxed:  # a lone version: its app inside, the version underneath
            caption = node.app if node.kind == "unanswered" else f"version {node.version}"
            layout.shapes.append(
                text(inner_x + block.node_w / 2, y + 14, _cut(caption), anchor="middle", size=SMALL)
            )
        y += GAP
    if block.boxed:
        layout.backdrops.append(app_box(block.x, block.y, block.width, block.height, block.app))
        layout.shapes.append(
            text(block.x + BOX_PAD, block.y + 16, _cut(block.app), size=SMALL, weight="600")
        )


def _draw_edges(
    graph: TrafficGraph, edges: list[ChainEdge], layout: _Layout, ident: str
) -> list[ET.Element]:
    """Each edge from its source's right side to a slot of its own on the target's left side,
    straight for the last stretch where its labels sit."""
    totals: Counter[tuple[str, str]] = Counter()
    for edge in graph.edges:
        totals[(edge.source, edge.service)] += edge.requests
    slots: Counter[str] = Counter()
    ends: dict[str, int] = Counter(e.target for e in edges)
    out: list[ET.Element] = []
    for edge in edges:
        if edge.source not in layout.places or edge.target not in layout.places:
            continue
        sx, sy, sw, sh = layout.places[edge.source]
        tx, ty, _, th = layout.places[edge.target]
        k = slots[edge.target]
        slots[edge.target] += 1
        start_x, start_y = sx + sw, sy + sh / 2
        end_y = ty + th * (k + 0.5) / ends[edge.target]
        label_x = layout.label_x[edge.target]
        label, err = _edge_label(edge, totals[(edge.source, edge.service)])
        straight = max(text_width(label), text_width(err, SMALL)) + 14
        bend_x = max(label_x - straight, start_x + 8)
        curve = (
            f"M {start_x:.1f} {start_y:.1f} C {start_x + CURVE / 2:.1f} {start_y:.1f}, "
            f"{bend_x - CURVE / 2:.1f} {end_y:.1f}, {bend_x:.1f} {end_y:.1f} "
            f"L {tx - 3:.1f} {end_y:.1f}"
        )
        failed = edge.failed > 0
        out.append(
            shape(
                "path",
                d=curve,
                fill="none",
                stroke=RED if failed else GREY,
                stroke_width=2,
                stroke_dasharray="6 4" if not edge.callee_app else None,
                marker_end=f"url(#{ident}-{'arrow-red' if failed else 'arrow'})",
                data_edge="call",
                data_source=edge.source,
                data_target=edge.target,
                data_requests=edge.requests,
                data_errors=edge.failed,
            )
        )
        out.append(text(label_x, end_y - 7, label, anchor="end"))
        if err:
            out.append(text(label_x, end_y + 16, err, anchor="end", size=SMALL, fill=RED))
    return out


def chain_graph_svg(graph: TrafficGraph, ident: str = "chain", title: str = "") -> str:
    """The versioned app graph of a whole chain, as an SVG element (a string)."""
    edges = sorted(graph.edges, key=lambda e: -e.requests)[:MAX_EDGES]
    incoming: Counter[str] = Counter(e.target for e in edges)
    failing = {e.target for e in graph.edges if e.failed}
    columns = _blocks(graph, incoming)
    origin_name = _cut(graph.origin)
    origin_w = max(2 * ORIGIN_R + 8, text_width(origin_name, SMALL))
    # the gap before a column holds the curves and the labels of the edges ending there
    column_of = {n.id: depth for depth, bs in columns.items() for b in bs for n in b.nodes}
    gaps = dict.fromkeys(columns, 40.0)
    for edge in edges:
        if edge.target in column_of:
            label, err = _edge_label(edge, max(edge.requests, 1))
            width = max(text_width(label), text_width(err, SMALL)) + 14 + CURVE + 16
            depth = column_of[edge.target]
            gaps[depth] = max(gaps[depth], width)
    height = _place(columns, PAD + origin_w, gaps)
    layout = _Layout()
    for blocks in columns.values():
        for block in blocks:
            _draw_block(block, layout, failing)
    centre_x = PAD + origin_w / 2
    centre_y = PAD + height / 2
    layout.places["origin"] = (centre_x - ORIGIN_R, centre_y - ORIGIN_R, 2 * ORIGIN_R, 2 * ORIGIN_R)
    ends = [
        shape(
            "circle",
            cx=centre_x,
            cy=centre_y,
            r=ORIGIN_R,
            fill=BLUE,
            fill_opacity=0.16,
            stroke=BLUE,
            stroke_width=2,
            data_node="origin",
        ),
        text(centre_x, centre_y + ORIGIN_R + 18, origin_name, anchor="middle", size=SMALL),
    ]
    drawn = _draw_edges(graph, edges, layout, ident)
    right = max(
        [x + w for x, _, w, _ in layout.places.values()]
        + [b.x + b.width for bs in columns.values() for b in bs]
    )
    bottom = max([PAD + height, centre_y + ORIGIN_R + 24])
    parts = [arrow_defs(ident), *layout.backdrops, *drawn, *layout.shapes, *ends]
    return document(
        right + PAD,
        bottom + PAD,
        "chain-graph",
        ident,
        title or "Versioned app graph of the whole chain",
        _describe(graph, len(edges)),
        parts,
    )


def _describe(graph: TrafficGraph, drawn: int) -> str:
    """The graph in words, for screen readers: every app's versions and the failing calls."""
    apps: dict[str, list[str]] = defaultdict(list)
    for node in graph.nodes:
        if node.kind == "version":
            apps[node.app].append(f"{node.version} {node.requests}")
    said = "; ".join(f"{app}: {', '.join(versions)}" for app, versions in apps.items())
    failing = [e for e in graph.edges if e.failed]
    desc = f"{graph.requests} requests from {graph.origin}. Calls answered by app and version: "
    desc += said or "none"
    if failing:
        desc += ". Failed calls: " + "; ".join(
            f"{e.failed} of {e.requests} to {e.service} ({', '.join(e.errors)})" for e in failing
        )
    if drawn < len(graph.edges):
        desc += f". {len(graph.edges) - drawn} smaller edges not drawn"
    return desc
