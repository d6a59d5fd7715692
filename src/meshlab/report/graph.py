"""The versioned app graph of a split check, drawn the way Kiali draws it: the client, the
service (a triangle), a box per app with a node per version (from the pods' ``app`` and
``version`` labels, with Istio's fallbacks), and edges labelled with their share of the
requests and the count; requests that no pod answered (Envoy's own 503s, aborted faults) get
a node of their own."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import field

from meshlab.backends.base import NO_RESPONSE
from meshlab.records import dataclass
from meshlab.report.model import BucketReport, SplitCheckReport
from meshlab.report.svg import (
    BLUE,
    GREY,
    NODE_H,
    PAD,
    RED,
    SMALL,
    STATUS_COLOUR,
    app_box,
    arrow_defs,
    document,
    node_box,
    shape,
    text,
    text_width,
)
from meshlab.report.traffic import app_and_version
from meshlab.report.words import pct_short, share

__all__ = ["app_graph_svg"]

_ERROR_BUCKET = re.compile(r"HTTP \d{3}")

# Geometry (pixels).
NODE_GAP = 26
BOX_PAD = 12
BOX_TITLE = 22
BOX_GAP = 18
TRIANGLE = 16
CURVE_W = 70.0


def _is_error_bucket(name: str) -> bool:
    return name == NO_RESPONSE or _ERROR_BUCKET.fullmatch(name) is not None


@dataclass
class _VersionNode:
    """One version of an app in the split graph: the requests it answered, the buckets they count
    in, and how many pods served them."""

    app: str
    version: str
    count: int = 0
    buckets: set[str] = field(default_factory=set)
    pods: int = 0


@dataclass
class _Graph:
    """The split graph before it is drawn: the versions by app, the buckets the check judged, the
    configured buckets no pod answered for, and the requests nobody answered."""

    buckets: list[BucketReport]
    apps: dict[str, list[_VersionNode]]
    missing: list[str]  # configured buckets that no pod answered for: the subset never reached
    unanswered: int  # requests no pod answered
    unanswered_label: str

    def bucket(self, name: str) -> BucketReport | None:
        return next((b for b in self.buckets if b.bucket == name), None)

    def status(self, node: _VersionNode) -> str | None:
        if len(node.buckets) != 1:
            return None
        found = self.bucket(next(iter(node.buckets)))
        return found.status if found else None

    def expected(self, node: _VersionNode) -> float | None:
        """The configured share of a node, when its bucket is this node's alone."""
        if len(node.buckets) != 1:
            return None
        bucket = next(iter(node.buckets))
        owners = [n for nodes in self.apps.values() for n in nodes if bucket in n.buckets]
        found = self.bucket(bucket)
        return found.expected if found and len(owners) == 1 else None


def _graph(split: SplitCheckReport) -> _Graph:
    buckets = split.shown_buckets()
    nodes: dict[tuple[str, str], _VersionNode] = {}
    if split.pods is not None:
        for pod in split.pods:
            app, version = app_and_version(pod.labels, pod.name)
            node = nodes.setdefault((app, version), _VersionNode(app, version))
            node.count += pod.count
            node.pods += 1
            node.buckets.add(pod.labels.get(split.by, "unknown"))
    else:  # a report without pods: one node per bucket that names a pod label value
        for bucket in buckets:
            if not _is_error_bucket(bucket.bucket):
                node = _VersionNode(split.service, bucket.bucket, bucket.count, {bucket.bucket})
                nodes[(split.service, bucket.bucket)] = node
    answered = sum(node.count for node in nodes.values())
    apps: dict[str, list[_VersionNode]] = {}
    for node in sorted(nodes.values(), key=lambda n: (n.app, -n.count, n.version)):
        if node.count or split.pods is not None:
            apps.setdefault(node.app, []).append(node)
    seen = {bucket for nodes in apps.values() for node in nodes for bucket in node.buckets}
    missing = [
        b.bucket
        for b in buckets
        if b.expected > 0 and b.bucket not in seen and not _is_error_bucket(b.bucket)
    ]
    unanswered = max(0, split.requests - answered)
    names = []
    for bucket in buckets:
        if _is_error_bucket(bucket.bucket) and bucket.count:
            flags = [f for f in split.response_flags.get(bucket.bucket, {}) if f and f != "-"]
            names.append(bucket.bucket + (f" {','.join(flags)}" if flags else ""))
    return _Graph(buckets, apps, missing, unanswered, ", ".join(names) or "failed")


@dataclass(frozen=True)
class _Target:
    """A node at the right end of a service -> version edge, and what is written over it."""

    x: float
    y: float
    label: str
    sub: str
    style: str  # "" (answered), "missing" (configured, never reached), "failed" (no pod)
    label_x: float  # labels end here: left of the app's box, not on its border


@dataclass
class _Canvas:
    """Shapes drawn so far, and how far they reach."""

    shapes: list[ET.Element] = field(default_factory=list)
    backdrops: list[ET.Element] = field(default_factory=list)  # drawn first: the app boxes
    targets: list[_Target] = field(default_factory=list)
    y: float = PAD
    right: float = 0.0


def _edge_labels(split: SplitCheckReport, graph: _Graph) -> list[tuple[str, str]]:
    n = split.requests
    labels = []
    for nodes in graph.apps.values():
        for node in nodes:
            expected = graph.expected(node)
            sub = f"configured {pct_short(expected)}" if expected is not None else ""
            labels.append((f"{share(node.count, n)} · {node.count} req", sub))
    for bucket in graph.missing:
        found = graph.bucket(bucket)
        labels.append(("0 req", f"configured {pct_short(found.expected if found else 0.0)}"))
    if graph.unanswered:
        labels.append((f"{share(graph.unanswered, n)} · {graph.unanswered} req", ""))
    return labels


def _draw_app(
    canvas: _Canvas,
    graph: _Graph,
    app: str,
    nodes: list[_VersionNode],
    x: float,
    labels: list[tuple[str, str]],
) -> None:
    """A box per app holding a node per version (no box for a single version, as in Kiali)."""
    node_w = max(max(text_width(node.version) for node in nodes) + 28, 90.0)
    boxed = len(nodes) > 1
    inner_x = x + (BOX_PAD if boxed else 0)
    top = canvas.y
    y = top + ((BOX_TITLE + BOX_PAD) if boxed else 0)
    for node, (label, sub) in zip(nodes, labels, strict=True):
        colour = STATUS_COLOUR.get(graph.status(node) or "", GREY)
        canvas.shapes += node_box(
            inner_x,
            y,
            node_w,
            node.version,
            {"fill": colour, "fill_opacity": 0.16, "stroke": colour},
            {"data_node": "version", "data_app": app, "data_version": node.version},
            weight="600",
        )
        canvas.targets.append(_Target(inner_x, y + NODE_H / 2, label, sub, "", x - 10))
        y += NODE_H
        if not boxed:  # a lone version carries its app's name underneath
            canvas.shapes.append(
                text(inner_x + node_w / 2, y + 14, app, anchor="middle", size=SMALL)
            )
            y += 16
        y += NODE_GAP
    y -= NODE_GAP
    if boxed:
        y += BOX_PAD
        width = max(node_w, text_width(app, SMALL)) + 2 * BOX_PAD
        canvas.backdrops.append(app_box(x, top, width, y - top, app))
        canvas.shapes.append(text(x + BOX_PAD, top + 16, app, size=SMALL, weight="600"))
        canvas.right = max(canvas.right, x + width)
    else:
        canvas.right = max(canvas.right, x + max(node_w, text_width(app, SMALL)))
    canvas.y = y + BOX_GAP


def _draw_missing(
    canvas: _Canvas, split: SplitCheckReport, bucket: str, x: float, label: tuple[str, str]
) -> None:
    """A configured destination that no request reached (its pods never answered)."""
    caption = f"{split.by}={bucket}: not reached"
    node_w = max(text_width(bucket) + 28, text_width(caption, SMALL) + 12, 90.0)
    y = canvas.y
    canvas.shapes += node_box(
        x,
        y,
        node_w,
        bucket,
        {"fill": "none", "stroke": GREY, "stroke_dasharray": "4 3"},
        {"data_node": "missing", "data_bucket": bucket},
        opacity=0.7,
    )
    canvas.shapes.append(
        text(x + node_w / 2, y + NODE_H + 14, caption, anchor="middle", size=SMALL)
    )
    canvas.targets.append(_Target(x, y + NODE_H / 2, label[0], label[1], "missing", x - 10))
    canvas.y = y + NODE_H + 16 + BOX_GAP
    canvas.right = max(canvas.right, x + node_w)


def _draw_unanswered(canvas: _Canvas, graph: _Graph, x: float, label: str) -> None:
    """Requests no pod answered: Envoy's own 503s (no cluster, no healthy upstream), faults."""
    title = "no pod answered"
    node_w = max(text_width(title), text_width(graph.unanswered_label, SMALL)) + 28
    y = canvas.y
    canvas.shapes += node_box(
        x,
        y,
        node_w,
        title,
        {"fill": RED, "fill_opacity": 0.12, "stroke": RED, "stroke_dasharray": "4 3"},
        {"data_node": "unanswered"},
    )
    canvas.shapes.append(
        text(x + node_w / 2, y + NODE_H + 14, graph.unanswered_label, anchor="middle", size=SMALL)
    )
    canvas.targets.append(_Target(x, y + NODE_H / 2, label, "", "failed", x - 10))
    canvas.y = y + NODE_H + 16 + BOX_GAP
    canvas.right = max(canvas.right, x + node_w)


def app_graph_svg(split: SplitCheckReport, ident: str = "graph") -> str:
    """The versioned app graph of one split check, as an SVG element (a string).

    Left to right: the client, the service it called (a triangle), then a box per app with a
    node per version. Edges from the service carry their share of the requests (of all the
    service's requests, Kiali's "traffic distribution") and the count.
    """
    graph = _graph(split)
    n = split.requests
    labels = _edge_labels(split, graph)
    label_w = max(
        [text_width(a) for a, _ in labels] + [text_width(b, SMALL) for _, b in labels] + [60]
    )
    client_x = PAD + 20.0
    service_x = (
        client_x + 20 + max(110.0, text_width(f"{n} req") + 40, text_width(split.service) / 2 + 50)
    )
    straight = label_w + 24
    box_x = service_x + TRIANGLE + CURVE_W + straight

    canvas = _Canvas(right=box_x)
    for app, nodes in graph.apps.items():
        first = len(canvas.targets)
        _draw_app(canvas, graph, app, nodes, box_x, labels[first : first + len(nodes)])
    for bucket in graph.missing:
        _draw_missing(canvas, split, bucket, box_x, labels[len(canvas.targets)])
    if graph.unanswered:
        _draw_unanswered(canvas, graph, box_x, labels[-1][0])
    bottom = canvas.y - BOX_GAP

    ys = [t.y for t in canvas.targets]
    mid = max((min(ys) + max(ys)) / 2 if ys else PAD + 40, PAD + 30)
    edges = [
        shape(
            "line",
            x1=client_x + 18,
            y1=mid,
            x2=service_x - TRIANGLE - 4,
            y2=mid,
            stroke=GREY,
            stroke_width=2,
            marker_end=f"url(#{ident}-arrow)",
            data_edge="client",
        ),
        text((client_x + service_x) / 2, mid - 7, f"{n} req", anchor="middle"),
    ]
    start_x = service_x + TRIANGLE
    for target in canvas.targets:
        bend_x = target.x - straight
        colour, marker = (RED, "arrow-red") if target.style == "failed" else (GREY, "arrow")
        curve = (
            f"M {start_x:.1f} {mid:.1f} C {start_x + CURVE_W / 2:.1f} {mid:.1f}, "
            f"{bend_x - CURVE_W / 2:.1f} {target.y:.1f}, {bend_x:.1f} {target.y:.1f} "
            f"L {target.x - 3:.1f} {target.y:.1f}"
        )
        edges.append(
            shape(
                "path",
                d=curve,
                fill="none",
                stroke=colour,
                stroke_width=2,
                stroke_dasharray="6 4" if target.style else None,
                marker_end=f"url(#{ident}-{marker})",
                data_edge="version",
            )
        )
        edges.append(text(target.label_x, target.y - 7, target.label, anchor="end"))
        if target.sub:
            edges.append(
                text(
                    target.label_x,
                    target.y + 16,
                    target.sub,
                    anchor="end",
                    size=SMALL,
                    opacity=0.75,
                )
            )
    triangle = (
        f"{service_x - TRIANGLE:.1f},{mid + TRIANGLE * 0.8:.1f} "
        f"{service_x + TRIANGLE:.1f},{mid + TRIANGLE * 0.8:.1f} "
        f"{service_x:.1f},{mid - TRIANGLE:.1f}"
    )
    ends = [
        shape(
            "circle",
            cx=client_x,
            cy=mid,
            r=16,
            fill=BLUE,
            fill_opacity=0.16,
            stroke=BLUE,
            stroke_width=2,
            data_node="client",
        ),
        text(client_x, mid + 34, split.client, anchor="middle", size=SMALL),
        shape(
            "polygon",
            points=triangle,
            fill=BLUE,
            fill_opacity=0.16,
            stroke=BLUE,
            stroke_width=2,
            stroke_linejoin="round",
            data_node="service",
        ),
        text(service_x, mid + 34, split.service, anchor="middle", size=SMALL),
    ]
    width = canvas.right + PAD
    height = max(bottom + PAD, mid + 44, 2 * PAD + 90)
    answered = ", ".join(
        f"{node.app} {node.version}: {node.count} of {n}"
        for nodes in graph.apps.values()
        for node in nodes
    )
    desc = (
        f"Requests from the {split.client} to {split.service}, by app and version: "
        f"{answered or 'none'}"
    )
    if graph.unanswered:
        desc += f"; no pod answered {graph.unanswered} ({graph.unanswered_label})"
    parts = [arrow_defs(ident), *canvas.backdrops, *edges, *canvas.shapes, *ends]
    title = f"Versioned app graph of {split.name}"
    return document(width, height, "app-graph", ident, title, desc, parts)
