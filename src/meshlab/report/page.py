"""A lab run's JSON report as a page of the course site, with pictures.

For every split check the page shows

* the **versioned app graph**, drawn the way Kiali draws it: the client, the service (a
  triangle), a box per app with a node per version (from the pods' ``app`` and ``version``
  labels, with Istio's fallbacks), and edges labelled with their share of the requests and the
  count; requests that no pod answered (Envoy's own 503s, aborted faults) get a node of their own;
* a **chart** of each bucket's observed share against its configured share, with the band that
  counts as "as configured" and the confidence intervals the verdict rests on;
* a table of the same numbers and, in plain words, why the check passed or failed.

The pictures are SVG written here, inline in the Markdown: no JavaScript, no fonts, nothing
fetched, so the page works offline. ``meshlab results-page REPORT.json -o PAGE.md`` calls
:func:`render_page`.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshlab.backends.base import NO_RESPONSE
from meshlab.checks.stats import Design, anytime_interval
from meshlab.errors import InputError

__all__ = ["app_graph_svg", "load_report", "render_page", "share_chart_svg"]

# Istio's canonical service and revision labels, in the order Istio reads them; Kiali's app
# and version are these (no version label at all: "latest").
APP_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
VERSION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")

# Colours that read on both the light and the dark palette; text uses currentColor.
GREEN = "#2e9e44"
RED = "#e0403a"
AMBER = "#f08c00"
GREY = "#8a96a3"
BLUE = "#1e88e5"
STATUS_COLOUR = {"ok": GREEN, "off": RED, "undecided": AMBER}
STATUS_WORD = {"ok": "as configured", "off": "not as configured", "undecided": "undecided"}

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
FONT_SIZE = 13
SMALL = 11
CHAR = 0.62 * FONT_SIZE  # a generous average glyph width: labels never overflow their boxes

_ERROR_BUCKET = re.compile(r"HTTP \d{3}")


# ------------------------------------------------------------------------------------------
# Reading a report


def load_report(path: Path) -> dict[str, Any]:
    """Read a report written by ``meshlab run --json``; InputError (exit 2) if it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a meshlab JSON report (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is not a meshlab JSON report: invalid JSON at line {exc.lineno}, "
            f"column {exc.colno} ({exc.msg})",
            hint="write one with `meshlab run LAB_DIR --json REPORT.json`",
        ) from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("lab"), str)
        or not isinstance(data.get("checks"), list)
        or not all(isinstance(c, dict) for c in data["checks"])
    ):
        raise InputError(
            f"{path} is not a meshlab JSON report (it needs a `lab` name and a list of `checks`)",
            hint="write one with `meshlab run LAB_DIR --json REPORT.json`",
        )
    return data


def _num(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def _int(value: Any) -> int:
    return int(_num(value))


def _pair(value: Any, default: tuple[float, float]) -> tuple[float, float]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return (_num(value[0], default[0]), _num(value[1], default[1]))
    return default


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


@dataclass(frozen=True)
class Bucket:
    name: str
    expected: float
    count: int
    share: float
    band: tuple[float, float]
    interval: tuple[float, float]
    status: str


@dataclass
class Split:
    """The parts of a split check's report the pictures need."""

    name: str
    outcome: str
    requests: int
    by: str
    url: str
    method: str
    test: str
    alpha: float
    beta: float
    delta: float
    buckets: list[Bucket]
    pods: list[tuple[str, dict[str, str], int]] | None  # None: a report from before `pods`
    flags: dict[str, dict[str, int]]

    @property
    def sequential(self) -> bool:
        return self.test.startswith("sequential")

    @property
    def service(self) -> str:
        """The host the request was sent to: the service node of the graph."""
        match = re.match(r"[a-z]+://([^/:?#]+)", self.url)
        return match.group(1) if match else "service"

    def tested_alpha(self) -> float:
        """The level of the buckets' intervals: alpha, split Bonferroni-wise over the shares
        in (0, 1) that carry a test (the larger share of a two-way split mirrors the other)."""
        inner = sum(1 for b in self.buckets if 0.0 < b.expected < 1.0)
        tests = 1 if inner <= 2 else inner
        return self.alpha / tests

    def pass_interval(self, bucket: Bucket) -> tuple[float, float] | None:
        """The 1 - beta anytime interval that decides a pass (sequential test, shares in
        (0, 1)): a share passes once it lies inside the band."""
        if not self.sequential or not 0.0 < bucket.expected < 1.0 or self.requests <= 0:
            return None
        try:
            design = Design(alpha=self.alpha, beta=self.beta, delta=self.delta)
        except (TypeError, ValueError):
            return None
        return anytime_interval(bucket.expected, bucket.count, self.requests, self.beta, design)


def _split(check: Mapping[str, Any]) -> Split:
    requests = _int(check.get("requests"))
    buckets = []
    for raw in check.get("buckets") or []:
        if not isinstance(raw, dict):
            continue
        count = _int(raw.get("count"))
        expected = _num(raw.get("expected"))
        buckets.append(
            Bucket(
                name=_str(raw.get("bucket"), "?"),
                expected=expected,
                count=count,
                share=_num(raw.get("share"), count / requests if requests else 0.0),
                band=_pair(raw.get("band"), (expected, expected)),
                interval=_pair(raw.get("interval"), (0.0, 1.0)),
                status=_str(raw.get("status"), "undecided"),
            )
        )
    if not buckets:  # no verdict per bucket: at least draw what was expected and observed
        expected_map = _dict(check.get("expected"))
        observed = _dict(check.get("observed"))
        for name in [*expected_map, *(k for k in observed if k not in expected_map)]:
            count = _int(observed.get(name))
            share = _num(expected_map.get(name))
            buckets.append(
                Bucket(
                    name=str(name),
                    expected=share,
                    count=count,
                    share=count / requests if requests else 0.0,
                    band=(share, share),
                    interval=(0.0, 1.0),
                    status="undecided",
                )
            )
    pods: list[tuple[str, dict[str, str], int]] | None = None
    if isinstance(check.get("pods"), list):
        pods = []
        for raw in check["pods"]:
            if isinstance(raw, dict):
                labels = _dict(raw.get("labels"))
                pods.append(
                    (
                        _str(raw.get("name"), "?"),
                        {str(k): str(v) for k, v in labels.items()},
                        _int(raw.get("count")),
                    )
                )
    request = _dict(check.get("request"))
    flags_raw = _dict(check.get("response_flags"))
    flags = {
        str(bucket): {str(f): _int(n) for f, n in per.items()}
        for bucket, per in flags_raw.items()
        if isinstance(per, dict)
    }
    return Split(
        name=_str(check.get("name"), "check"),
        outcome=_str(check.get("outcome"), "?"),
        requests=requests,
        by=_str(check.get("by"), "version"),
        url=_str(request.get("url")),
        method=_str(request.get("method"), "GET"),
        test=_str(check.get("method")),
        alpha=_num(check.get("alpha"), 1e-6),
        beta=_num(check.get("beta"), 1e-3),
        delta=_num(check.get("delta"), 0.1),
        buckets=buckets,
        pods=pods,
        flags=flags,
    )


# ------------------------------------------------------------------------------------------
# Formatting helpers


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pct_short(x: float) -> str:
    """50%, 12.5%, 0.1%: no trailing zeros, for configured weights and band edges."""
    return f"{100 * x:.2f}".rstrip("0").rstrip(".") + "%"


def _range(pair: tuple[float, float]) -> str:
    lo, hi = pair
    return f"{100 * lo:.1f}–{100 * hi:.1f}%"


def _band_text(band: tuple[float, float]) -> str:
    lo, hi = band
    if lo == hi:
        return f"exactly {_pct_short(lo)}"
    return f"{_pct_short(lo)}–{_pct_short(hi)}"


def _level(alpha: float) -> str:
    """`99.9999%` for alpha = 1e-6, as the verdicts on the terminal write it."""
    digits = max(0, math.ceil(-math.log10(alpha)) - 2) if alpha > 0 else 0
    return f"{100 * (1 - alpha):.{digits}f}%"


def _x(text: object) -> str:
    """Text for SVG and HTML."""
    return html.escape(str(text), quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def _md(text: object) -> str:
    """Text from a report, safe inside a Markdown paragraph, table cell or title."""
    escaped = _MD_SPECIAL.sub(r"\\\1", str(text))
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _title(text: object) -> str:
    """An admonition title: quoted, and the quotes in the text cannot end it early."""
    return '"' + _md(text).replace('"', "&quot;") + '"'


def _code(text: object) -> str:
    """An inline code span that survives any backticks in the text."""
    value = str(text).replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * CHAR * size / FONT_SIZE


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "check"


def _svg_open(width: float, height: float, kind: str, ident: str, title: str, desc: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="meshlab-{kind}" data-meshlab="{kind}" '
        f'id="{ident}" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="{_x(FONT)}" font-size="{FONT_SIZE}" '
        f'style="max-width: 100%; height: auto; color: inherit">\n'
        f'<title id="{ident}-title">{_x(title)}</title>\n'
        f'<desc id="{ident}-desc">{_x(desc)}</desc>\n'
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: int = FONT_SIZE,
    weight: str = "normal",
    fill: str = "currentColor",
    opacity: float = 1.0,
) -> str:
    extra = f' font-size="{size}"' if size != FONT_SIZE else ""
    extra += f' font-weight="{weight}"' if weight != "normal" else ""
    extra += f' fill-opacity="{opacity:g}"' if opacity != 1.0 else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>'
        f"{_x(text)}</text>\n"
    )


# ------------------------------------------------------------------------------------------
# The versioned app graph


def _first_label(labels: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((labels[name] for name in names if labels.get(name)), None)


def _workload(pod: str) -> str:
    """staff-service-d6ecf67d01-0 -> staff-service: a Deployment's pod minus its two suffixes."""
    parts = pod.split("-")
    return "-".join(parts[:-2]) if len(parts) > 2 else pod


@dataclass
class _VersionNode:
    app: str
    version: str
    count: int = 0
    buckets: set[str] = field(default_factory=set)
    pods: int = 0


@dataclass
class _Graph:
    apps: dict[str, list[_VersionNode]]
    missing: list[str]  # configured buckets that no pod answered for: the subset never reached
    unanswered: int  # requests no pod answered
    unanswered_label: str


def _graph(split: Split) -> _Graph:
    nodes: dict[tuple[str, str], _VersionNode] = {}
    if split.pods is not None:
        for pod, labels, count in split.pods:
            app = _first_label(labels, APP_LABELS) or _workload(pod)
            version = _first_label(labels, VERSION_LABELS) or "latest"
            node = nodes.setdefault((app, version), _VersionNode(app, version))
            node.count += count
            node.pods += 1
            node.buckets.add(labels.get(split.by, "unknown"))
        answered = sum(node.count for node in nodes.values())
    else:  # a report without pods: one node per bucket that names a pod label value
        for bucket in split.buckets:
            if _is_error_bucket(bucket.name):
                continue
            node = _VersionNode(split.service, bucket.name, bucket.count, {bucket.name})
            nodes[(split.service, bucket.name)] = node
        answered = sum(node.count for node in nodes.values())
    apps: dict[str, list[_VersionNode]] = {}
    for node in sorted(nodes.values(), key=lambda n: (n.app, -n.count, n.version)):
        if node.count or split.pods is not None:
            apps.setdefault(node.app, []).append(node)
    seen = {bucket for nodes in apps.values() for node in nodes for bucket in node.buckets}
    missing = [
        b.name
        for b in split.buckets
        if b.expected > 0 and b.name not in seen and not _is_error_bucket(b.name)
    ]
    unanswered = max(0, split.requests - answered)
    errors = [b for b in split.buckets if _is_error_bucket(b.name) and b.count]
    names = []
    for bucket in errors:
        flags = [f for f in split.flags.get(bucket.name, {}) if f and f != "-"]
        names.append(bucket.name + (f" {','.join(flags)}" if flags else ""))
    return _Graph(apps, missing, unanswered, ", ".join(names) or "failed")


def _is_error_bucket(name: str) -> bool:
    return name == NO_RESPONSE or _ERROR_BUCKET.fullmatch(name) is not None


def _node_status(split: Split, node: _VersionNode) -> str | None:
    if len(node.buckets) != 1:
        return None
    bucket = next(iter(node.buckets))
    found = next((b for b in split.buckets if b.name == bucket), None)
    return found.status if found else None


def _node_expected(split: Split, graph: _Graph, node: _VersionNode) -> float | None:
    """The configured share of a node, when its bucket is this node's alone."""
    if len(node.buckets) != 1:
        return None
    bucket = next(iter(node.buckets))
    owners = [n for nodes in graph.apps.values() for n in nodes if bucket in n.buckets]
    found = next((b for b in split.buckets if b.name == bucket), None)
    return found.expected if found and len(owners) == 1 else None


@dataclass(frozen=True)
class _Target:
    """A node at the right end of a service -> version edge, and what is written over it."""

    x: float
    y: float
    label: str
    sub: str
    style: str  # "" (answered), "missing" (configured, never reached), "failed" (no pod)
    label_x: float  # labels end here: left of the app's box, not on its border


# Geometry of the graph (pixels).
PAD = 16
NODE_H = 34
NODE_GAP = 26
BOX_PAD = 12
BOX_TITLE = 22
BOX_GAP = 18
TRIANGLE = 16
CURVE_W = 70.0


@dataclass
class _Canvas:
    """Shapes drawn so far, and how far they reach."""

    shapes: list[str] = field(default_factory=list)
    backdrops: list[str] = field(default_factory=list)  # drawn first: the app boxes
    targets: list[_Target] = field(default_factory=list)
    y: float = PAD
    right: float = 0.0


def _edge_labels(split: Split, graph: _Graph) -> list[tuple[str, str]]:
    n = split.requests
    labels = []
    for nodes in graph.apps.values():
        for node in nodes:
            expected = _node_expected(split, graph, node)
            sub = f"configured {_pct_short(expected)}" if expected is not None else ""
            labels.append((f"{_share(node.count, n)} · {node.count} req", sub))
    for bucket in graph.missing:
        expected = next((b.expected for b in split.buckets if b.name == bucket), 0.0)
        labels.append(("0 req", f"configured {_pct_short(expected)}"))
    if graph.unanswered:
        labels.append((f"{_share(graph.unanswered, n)} · {graph.unanswered} req", ""))
    return labels


def _draw_app(
    canvas: _Canvas,
    split: Split,
    app: str,
    nodes: list[_VersionNode],
    x: float,
    labels: list[tuple[str, str]],
) -> None:
    """A box per app holding a node per version (no box for a single version, as in Kiali)."""
    node_w = max(max(_text_width(node.version) for node in nodes) + 28, 90.0)
    boxed = len(nodes) > 1
    inner_x = x + (BOX_PAD if boxed else 0)
    top = canvas.y
    y = top + ((BOX_TITLE + BOX_PAD) if boxed else 0)
    for node, (label, sub) in zip(nodes, labels, strict=True):
        colour = STATUS_COLOUR.get(_node_status(split, node) or "", GREY)
        canvas.shapes.append(
            f'<rect x="{inner_x:.1f}" y="{y:.1f}" width="{node_w:.1f}" height="{NODE_H}" '
            f'rx="7" fill="{colour}" fill-opacity="0.16" stroke="{colour}" stroke-width="2" '
            f'data-node="version" data-app="{_x(app)}" data-version="{_x(node.version)}"/>\n'
        )
        canvas.shapes.append(
            _text(
                inner_x + node_w / 2,
                y + NODE_H / 2 + 4.5,
                node.version,
                anchor="middle",
                weight="600",
            )
        )
        canvas.targets.append(_Target(inner_x, y + NODE_H / 2, label, sub, "", x - 10))
        y += NODE_H
        if not boxed:  # a lone version carries its app's name underneath
            canvas.shapes.append(
                _text(inner_x + node_w / 2, y + 14, app, anchor="middle", size=SMALL)
            )
            y += 16
        y += NODE_GAP
    y -= NODE_GAP
    if boxed:
        y += BOX_PAD
        width = max(node_w, _text_width(app, SMALL)) + 2 * BOX_PAD
        canvas.backdrops.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{y - top:.1f}" '
            f'rx="10" fill="currentColor" fill-opacity="0.04" stroke="currentColor" '
            f'stroke-opacity="0.45" stroke-dasharray="5 4" data-node="box" data-app="{_x(app)}"/>\n'
        )
        canvas.shapes.append(_text(x + BOX_PAD, top + 16, app, size=SMALL, weight="600"))
        canvas.right = max(canvas.right, x + width)
    else:
        canvas.right = max(canvas.right, x + max(node_w, _text_width(app, SMALL)))
    canvas.y = y + BOX_GAP


def _draw_missing(
    canvas: _Canvas, split: Split, bucket: str, x: float, label: tuple[str, str]
) -> None:
    """A configured destination that no request reached (its pods never answered)."""
    caption = f"{split.by}={bucket}: not reached"
    node_w = max(_text_width(bucket) + 28, _text_width(caption, SMALL) + 12, 90.0)
    y = canvas.y
    canvas.shapes.append(
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w:.1f}" height="{NODE_H}" rx="7" '
        f'fill="none" stroke="{GREY}" stroke-width="2" stroke-dasharray="4 3" '
        f'data-node="missing" data-bucket="{_x(bucket)}"/>\n'
    )
    canvas.shapes.append(
        _text(x + node_w / 2, y + NODE_H / 2 + 4.5, bucket, anchor="middle", opacity=0.7)
    )
    canvas.shapes.append(
        _text(x + node_w / 2, y + NODE_H + 14, caption, anchor="middle", size=SMALL)
    )
    canvas.targets.append(_Target(x, y + NODE_H / 2, label[0], label[1], "missing", x - 10))
    canvas.y = y + NODE_H + 16 + BOX_GAP
    canvas.right = max(canvas.right, x + node_w)


def _draw_unanswered(canvas: _Canvas, graph: _Graph, x: float, label: str) -> None:
    """Requests no pod answered: Envoy's own 503s (no cluster, no healthy upstream), faults."""
    title = "no pod answered"
    node_w = max(_text_width(title), _text_width(graph.unanswered_label, SMALL)) + 28
    y = canvas.y
    canvas.shapes.append(
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w:.1f}" height="{NODE_H}" rx="7" '
        f'fill="{RED}" fill-opacity="0.12" stroke="{RED}" stroke-width="2" '
        f'stroke-dasharray="4 3" data-node="unanswered"/>\n'
    )
    canvas.shapes.append(_text(x + node_w / 2, y + NODE_H / 2 + 4.5, title, anchor="middle"))
    canvas.shapes.append(
        _text(x + node_w / 2, y + NODE_H + 14, graph.unanswered_label, anchor="middle", size=SMALL)
    )
    canvas.targets.append(_Target(x, y + NODE_H / 2, label, "", "failed", x - 10))
    canvas.y = y + NODE_H + 16 + BOX_GAP
    canvas.right = max(canvas.right, x + node_w)


def _arrow_defs(ident: str) -> str:
    markers = "".join(
        f'<marker id="{ident}-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        f'fill="{colour}"/></marker>\n'
        for name, colour in (("arrow", GREY), ("arrow-red", RED))
    )
    return f"<defs>\n{markers}</defs>\n"


def app_graph_svg(check: Mapping[str, Any], ident: str = "graph") -> str:
    """The versioned app graph of one split check, as an SVG element (a string).

    Left to right: the client, the service it called (a triangle), then a box per app with a
    node per version. Edges from the service carry their share of the requests (of all the
    service's requests, Kiali's "traffic distribution") and the count.
    """
    split = _split(check)
    graph = _graph(split)
    n = split.requests
    labels = _edge_labels(split, graph)
    label_w = max(
        [_text_width(a) for a, _ in labels] + [_text_width(b, SMALL) for _, b in labels] + [60]
    )
    client_x = PAD + 20.0
    service_x = (
        client_x
        + 20
        + max(110.0, _text_width(f"{n} req") + 40, _text_width(split.service) / 2 + 50)
    )
    straight = label_w + 24
    box_x = service_x + TRIANGLE + CURVE_W + straight

    canvas = _Canvas(right=box_x)
    for app, nodes in graph.apps.items():
        first = len(canvas.targets)
        _draw_app(canvas, split, app, nodes, box_x, labels[first : first + len(nodes)])
    for bucket in graph.missing:
        _draw_missing(canvas, split, bucket, box_x, labels[len(canvas.targets)])
    if graph.unanswered:
        _draw_unanswered(canvas, graph, box_x, labels[-1][0])
    bottom = canvas.y - BOX_GAP

    ys = [t.y for t in canvas.targets]
    mid = max((min(ys) + max(ys)) / 2 if ys else PAD + 40, PAD + 30)
    edges = [
        f'<line x1="{client_x + 18:.1f}" y1="{mid:.1f}" x2="{service_x - TRIANGLE - 4:.1f}" '
        f'y2="{mid:.1f}" stroke="{GREY}" stroke-width="2" marker-end="url(#{ident}-arrow)" '
        f'data-edge="client"/>\n',
        _text((client_x + service_x) / 2, mid - 7, f"{n} req", anchor="middle"),
    ]
    start_x = service_x + TRIANGLE
    for target in canvas.targets:
        bend_x = target.x - straight
        colour, marker = (RED, "arrow-red") if target.style == "failed" else (GREY, "arrow")
        dash = ' stroke-dasharray="6 4"' if target.style else ""
        edges.append(
            f'<path d="M {start_x:.1f} {mid:.1f} C {start_x + CURVE_W / 2:.1f} {mid:.1f}, '
            f"{bend_x - CURVE_W / 2:.1f} {target.y:.1f}, {bend_x:.1f} {target.y:.1f} "
            f'L {target.x - 3:.1f} {target.y:.1f}" fill="none" stroke="{colour}" '
            f'stroke-width="2"{dash} marker-end="url(#{ident}-{marker})" data-edge="version"/>\n'
        )
        edges.append(_text(target.label_x, target.y - 7, target.label, anchor="end"))
        if target.sub:
            edges.append(
                _text(
                    target.label_x,
                    target.y + 16,
                    target.sub,
                    anchor="end",
                    size=SMALL,
                    opacity=0.75,
                )
            )
    ends = [
        f'<circle cx="{client_x:.1f}" cy="{mid:.1f}" r="16" fill="{BLUE}" fill-opacity="0.16" '
        f'stroke="{BLUE}" stroke-width="2" data-node="client"/>\n',
        _text(client_x, mid + 34, "client", anchor="middle", size=SMALL),
        f'<polygon points="{service_x - TRIANGLE:.1f},{mid + TRIANGLE * 0.8:.1f} '
        f"{service_x + TRIANGLE:.1f},{mid + TRIANGLE * 0.8:.1f} {service_x:.1f},"
        f'{mid - TRIANGLE:.1f}" fill="{BLUE}" fill-opacity="0.16" stroke="{BLUE}" '
        f'stroke-width="2" stroke-linejoin="round" data-node="service"/>\n',
        _text(service_x, mid + 34, split.service, anchor="middle", size=SMALL),
    ]
    width = canvas.right + PAD
    height = max(bottom + PAD, mid + 44, 2 * PAD + 90)
    answered = ", ".join(
        f"{node.app} {node.version}: {node.count} of {n}"
        for nodes in graph.apps.values()
        for node in nodes
    )
    desc = f"Requests from the client to {split.service}, by app and version: {answered or 'none'}"
    if graph.unanswered:
        desc += f"; no pod answered {graph.unanswered} ({graph.unanswered_label})"
    title = f"Versioned app graph of {split.name}"
    return (
        _svg_open(width, height, "app-graph", ident, title, desc)
        + _arrow_defs(ident)
        + "".join(canvas.backdrops)
        + "".join(edges)
        + "".join(canvas.shapes)
        + "".join(ends)
        + "</svg>"
    )


def _share(count: int, n: int) -> str:
    return _pct(count / n) if n else "–"


# ------------------------------------------------------------------------------------------
# The chart: observed vs configured share, band and intervals

CHART_ROW = 38
CHART_W = 400.0
CHART_RIGHT = 175.0
CHART_AXIS = 26


@dataclass(frozen=True)
class _Scale:
    x0: float
    width: float

    def __call__(self, share: float) -> float:
        return self.x0 + self.width * min(1.0, max(0.0, share))


def _chart_axis(px: _Scale, top: float, rows_h: float) -> list[str]:
    out = []
    for tick in range(11):
        x = px(tick / 10)
        opacity = 0.35 if tick in (0, 10) else 0.12
        out.append(
            f'<line x1="{x:.1f}" y1="{top - 6:.1f}" x2="{x:.1f}" y2="{top + rows_h:.1f}" '
            f'stroke="currentColor" stroke-opacity="{opacity}" stroke-width="1"/>\n'
        )
        out.append(_text(x, top - 11, f"{tick * 10}%", anchor="middle", size=SMALL, opacity=0.8))
    return out


def _chart_row(split: Split, bucket: Bucket, px: _Scale, cy: float) -> list[str]:
    """Band (green), 1 - alpha interval (blue whiskers), 1 - beta interval (thick blue),
    configured share (bar), observed share (dot in the colour of the verdict)."""
    name = _x(bucket.name)
    out = [_text(px.x0 - 12, cy + 4.5, bucket.name, anchor="end", weight="600")]
    lo, hi = px(bucket.band[0]), px(bucket.band[1])
    if hi - lo < 3:  # 0% and 100% are exact: a sliver at the value
        lo, hi = lo - 1.5, lo + 1.5
    out.append(
        f'<rect x="{lo:.1f}" y="{cy - 11:.1f}" width="{hi - lo:.1f}" height="22" rx="3" '
        f'fill="{GREEN}" fill-opacity="0.28" data-part="band" data-bucket="{name}"/>\n'
    )
    ilo, ihi = px(bucket.interval[0]), px(bucket.interval[1])
    out.append(
        f'<path d="M {ilo:.1f} {cy - 6:.1f} V {cy + 6:.1f} M {ilo:.1f} {cy:.1f} H {ihi:.1f} '
        f'M {ihi:.1f} {cy - 6:.1f} V {cy + 6:.1f}" stroke="{BLUE}" stroke-width="1.5" '
        f'fill="none" data-part="interval" data-bucket="{name}"/>\n'
    )
    decisive = split.pass_interval(bucket) if split.outcome != "fail" else None
    if decisive is not None:
        plo, phi = px(decisive[0]), px(decisive[1])
        out.append(
            f'<line x1="{plo:.1f}" y1="{cy:.1f}" x2="{max(phi, plo + 1):.1f}" y2="{cy:.1f}" '
            f'stroke="{BLUE}" stroke-opacity="0.55" stroke-width="7" stroke-linecap="round" '
            f'data-part="pass-interval" data-bucket="{name}"/>\n'
        )
    x = px(bucket.expected)
    out.append(
        f'<line x1="{x:.1f}" y1="{cy - 14:.1f}" x2="{x:.1f}" y2="{cy + 14:.1f}" '
        f'stroke="currentColor" stroke-width="2.5" data-part="configured" data-bucket="{name}"/>\n'
    )
    colour = STATUS_COLOUR.get(bucket.status, GREY)
    out.append(
        f'<circle cx="{px(bucket.share):.1f}" cy="{cy:.1f}" r="5.5" fill="{colour}" '
        f'stroke="currentColor" stroke-width="1" data-part="observed" data-bucket="{name}" '
        f'data-status="{_x(bucket.status)}"/>\n'
    )
    right = px.x0 + px.width + 14
    first, second = _row_texts(split, bucket)
    out.append(_text(right, cy - 2, first))
    out.append(_text(right, cy + 12, second, size=SMALL, opacity=0.75))
    return out


def _row_texts(split: Split, bucket: Bucket) -> tuple[str, str]:
    """What the chart writes right of a row: the observed share, then configured and verdict."""
    verdict = STATUS_WORD.get(bucket.status, bucket.status)
    return (
        f"{_pct(bucket.share)} ({bucket.count}/{split.requests})",
        f"configured {_pct_short(bucket.expected)} · {verdict}",
    )


def _legend_mark(kind: str, x: float, y: float) -> str:
    if kind == "band":
        return (
            f'<rect x="{x:.1f}" y="{y - 6:.1f}" width="18" height="12" rx="2" fill="{GREEN}" '
            f'fill-opacity="0.22"/>\n'
        )
    if kind == "configured":
        return (
            f'<line x1="{x + 9:.1f}" y1="{y - 8:.1f}" x2="{x + 9:.1f}" y2="{y + 8:.1f}" '
            f'stroke="currentColor" stroke-width="2.5"/>\n'
        )
    if kind == "observed":
        return (
            f'<circle cx="{x + 9:.1f}" cy="{y:.1f}" r="5.5" fill="{GREEN}" '
            f'stroke="currentColor" stroke-width="1"/>\n'
        )
    if kind == "interval":
        return (
            f'<path d="M {x:.1f} {y - 5:.1f} V {y + 5:.1f} M {x:.1f} {y:.1f} H {x + 18:.1f} '
            f'M {x + 18:.1f} {y - 5:.1f} V {y + 5:.1f}" stroke="{BLUE}" stroke-width="1.5" '
            f'fill="none"/>\n'
        )
    return (
        f'<line x1="{x + 3:.1f}" y1="{y:.1f}" x2="{x + 15:.1f}" y2="{y:.1f}" stroke="{BLUE}" '
        f'stroke-opacity="0.55" stroke-width="7" stroke-linecap="round"/>\n'
    )


def _chart_legend(split: Split, x0: float, limit: float, y: float) -> tuple[list[str], float]:
    level = _level(split.tested_alpha())
    items = [
        ("band", "band: counts as configured"),
        ("configured", "configured share"),
        ("observed", "observed share"),
        ("interval", f"{level} interval of the true share"),
    ]
    if split.outcome != "fail" and any(split.pass_interval(b) for b in split.buckets):
        items.append(("pass", f"{_level(split.beta)} interval: inside the band means pass"))
    out = []
    x = x0
    for kind, text in items:
        item_w = 24 + _text_width(text, SMALL) + 18
        if x + item_w > limit and x > x0:
            x, y = x0, y + 20
        out.append(_legend_mark(kind, x, y))
        out.append(_text(x + 24, y + 4, text, size=SMALL))
        x += item_w
    return out, y


def share_chart_svg(check: Mapping[str, Any], ident: str = "chart") -> str:
    """Each bucket's observed share against its configured share and band, with the
    confidence intervals of the verdict, as an SVG element (a string)."""
    split = _split(check)
    label_w = max([_text_width(b.name) for b in split.buckets] + [50]) + 14
    px = _Scale(PAD + label_w, CHART_W)
    top = PAD + CHART_AXIS
    rows_h = CHART_ROW * max(1, len(split.buckets))
    out = _chart_axis(px, top, rows_h)
    for i, bucket in enumerate(split.buckets):
        out += _chart_row(split, bucket, px, top + CHART_ROW * i + CHART_ROW / 2)
    right_w = max(
        [CHART_RIGHT]
        + [
            14 + max(_text_width(first), _text_width(second, SMALL))
            for first, second in (_row_texts(split, b) for b in split.buckets)
        ]
    )
    limit = px.x0 + CHART_W + right_w
    legend, last = _chart_legend(split, px.x0, limit, top + rows_h + 24)
    level = _level(split.tested_alpha())
    desc = "; ".join(
        f"{b.name}: observed {_pct(b.share)} ({b.count} of {split.requests}), configured "
        f"{_pct_short(b.expected)}, band {_band_text(b.band)}, "
        f"{level} interval {_range(b.interval)}"
        for b in split.buckets
    )
    title = f"Observed vs configured shares of {split.name}"
    return (
        _svg_open(limit + PAD, last + PAD + 6, "share-chart", ident, title, desc)
        + "".join(out)
        + "".join(legend)
        + "</svg>"
    )


# ------------------------------------------------------------------------------------------
# The page


def render_page(report: Mapping[str, Any], source: str | Path | None = None) -> str:
    """The Markdown page of one lab run (``report`` as written by ``meshlab run --json``)."""
    lab = _str(report.get("lab"), "lab")
    title = _str(report.get("title"))
    checks = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    passed = sum(1 for c in checks if c.get("passed") is True)
    points = _num(report.get("points"))
    awarded = _num(report.get("points_awarded"))
    backend = _dict(report.get("backend_info"))
    backend_text = _str(backend.get("envoy")) or _str(report.get("backend"), "?")
    backend_name = _str(report.get("backend"), _str(backend.get("backend"), "?"))
    seconds = _num(report.get("seconds"))
    requests = sum(_int(c.get("requests")) for c in checks)

    lines = [
        "<!-- Generated by `meshlab results-page`"
        + (f" from {_x(str(source))}" if source is not None else "")
        + ". Do not edit: run the lab and render the page again. -->",
        "",
        f"# Results of lab {_md(lab)}",
        "",
    ]
    if title:
        lines += [f"**{_md(title)}**: the checks of one run of the lab, from its JSON report.", ""]
    all_passed = report.get("passed") is True
    kind = "success" if all_passed else "failure"
    checks_word = "check" if len(checks) == 1 else "checks"
    headline = (
        f"Passed: {passed} of {len(checks)} {checks_word}, {awarded:g}/{points:g} points"
        if all_passed
        else f"Failed: {len(checks) - passed} of {len(checks)} {checks_word} failed, "
        f"{awarded:g}/{points:g} points"
    )
    backend_line = backend_name + (f" — {backend_text}" if backend_text != backend_name else "")
    lines += [
        f"!!! {kind} {_title(headline)}",
        "",
        f"    Backend: {_md(backend_line)}. {requests} requests in {seconds:.1f} s, "
        f"report written by meshlab {_md(_str(report.get('meshlab'), '?'))}.",
        "",
    ]
    notes = [n for n in report.get("notes") or [] if isinstance(n, dict)]
    if notes:
        lines += [f"!!! warning {_title('Not simulated by this backend')}", ""]
        for note in notes:
            where = _str(note.get("location"))
            lines.append(
                f"    - {_md(_str(note.get('message')))}" + (f" ({_code(where)})" if where else "")
            )
        lines.append("")
    lines += _diagnostics(report.get("diagnostics"), "the lab's files")
    used: set[str] = set()
    for index, check in enumerate(checks):
        lines += _check_section(check, index, used)
    return "\n".join(lines).rstrip("\n") + "\n"


def _check_section(check: Mapping[str, Any], index: int, used: set[str]) -> list[str]:
    name = _str(check.get("name"), f"check {index + 1}")
    outcome = _str(check.get("outcome"), "?")
    message = _str(check.get("message"))
    slug = _slug(name)
    while slug in used:
        slug += "-x"
    used.add(slug)
    verdict = {
        "pass": "passed",
        "fail": "failed",
        "inconclusive": "inconclusive (counts as passed)",
    }
    lines = [f"## {_md(name)}: {verdict.get(outcome, _md(outcome))}", ""]
    first = message.splitlines()[0] if message else outcome
    kind = {"pass": "success", "fail": "failure", "inconclusive": "warning"}.get(outcome, "note")
    lines += [
        f"!!! {kind} {_title('Verdict')}",
        "",
        f"    {_md(first)}",
        "",
    ]
    if check.get("kind") == "split" or "buckets" in check:
        lines += _split_section(check, slug)
    lines += _diagnostics(check.get("diagnostics"), "this check")
    if message:
        fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", message)), default=0) + 1)
        lines += [f"??? note {_title('Everything meshlab run printed')}", "", f"    {fence}text"]
        lines += [f"    {line}" if line else "" for line in message.splitlines()]
        lines += [f"    {fence}", ""]
    return lines


LEVELS = ("error", "warning", "info")


def _rank(diagnostic: Mapping[str, Any]) -> int:
    level = _str(diagnostic.get("level"), "info")
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def _diagnostics(raw: Any, about: str) -> list[str]:
    """What `meshlab analyze` found (the report's `diagnostics`): errors and warnings in plain
    view, info folded away."""
    items = [d for d in raw or [] if isinstance(d, dict)] if isinstance(raw, list) else []
    if not items:
        return []
    lines: list[str] = []
    serious = [d for d in items if _str(d.get("level")) in ("error", "warning")]
    rest = [d for d in items if d not in serious]
    for group, collapsed in ((serious, False), (rest, True)):
        if not group:
            continue
        counts = {level: sum(1 for d in group if _str(d.get("level")) == level) for level in LEVELS}
        summary = (
            ", ".join(
                f"{count} {level}{'s' if count != 1 and level != 'info' else ''}"
                for level, count in counts.items()
                if count
            )
            or f"{len(group)} findings"
        )
        kind = "failure" if counts["error"] else "warning" if counts["warning"] else "info"
        marker = "???" if collapsed else "!!!"
        lines += [f"{marker} {kind} {_title(f'Analysis of {about}: {summary}')}", ""]
        for d in sorted(group, key=_rank):
            where = _str(d.get("location"))
            resource = _str(d.get("resource"))
            hint = _str(d.get("hint"))
            lines.append(
                f"    - **{_md(_str(d.get('code'), '?'))}** {_md(_str(d.get('level'), ''))}"
                + (f" · {_md(resource)}" if resource else "")
                + f": {_md(_str(d.get('message')))}"
                + (f" ({_code(where)})" if where else "")
                + (f". Hint: {_md(hint)}" if hint else "")
            )
        lines.append("")
    return lines


def _split_section(check: Mapping[str, Any], slug: str) -> list[str]:
    split = _split(check)
    n = split.requests
    expect = _str(check.get("expect"))
    route = _str(check.get("route"))
    said = "configured" if expect != "explicit" else "expected"
    lines = [
        f"The check sent {_code(f'{split.method} {split.url}')} {n} times, as a pod in the "
        f"lab's namespace would, and counted the answers by the pod label {_code(split.by)}. "
        + (
            f"The expected split is the one the configuration gives: {_md(route)}."
            if expect == "configured" and route
            else "The expected split comes from the weights in `lab.yaml`."
            if expect == "explicit"
            else ""
        ),
        "",
        "### Who answered",
        "",
        '<figure class="meshlab-figure">',
        app_graph_svg(check, f"{slug}-graph"),
        "<figcaption>The versioned app graph, as Kiali draws it: a box per app, a node per "
        "version (the pods' <code>app</code> and <code>version</code> labels), each edge with "
        "its share of the requests and their number. Green: as configured; red: not as "
        "configured; amber: undecided.</figcaption>",
        "</figure>",
        "",
        "### Observed and configured shares",
        "",
        '<figure class="meshlab-figure">',
        share_chart_svg(check, f"{slug}-chart"),
        "<figcaption>Dot: the observed share. Bar: the configured share. Green: the band that "
        "counts as configured. Blue: the confidence intervals of the verdict.</figcaption>",
        "</figure>",
        "",
    ]
    level = _level(split.tested_alpha())
    lines += [
        f"| Bucket | {said.capitalize()} | Observed | Band | {level} interval | Verdict |",
        "|---|---|---|---|---|---|",
    ]
    for b in split.buckets:
        lines.append(
            f"| {_md(b.name)} | {_pct_short(b.expected)} | {_pct(b.share)} ({b.count}/{n}) | "
            f"{_band_text(b.band)} | {_range(b.interval)} | "
            f"{STATUS_WORD.get(b.status, _md(b.status))} |"
        )
    lines += ["", "In plain words:", ""]
    lines += [f"- {sentence}" for sentence in _explain(split, said)]
    lines.append("")
    causes = [c for c in check.get("causes") or [] if isinstance(c, dict)]
    if causes:
        lines += [f"!!! warning {_title('Likely causes')}", ""]
        for cause in causes:
            where = _str(cause.get("location"))
            lines.append(
                f"    - {_md(_str(cause.get('bucket')))}: {_md(_str(cause.get('reason')))}"
                + (f" ({_code(where)})" if where else "")
                + f"; the mesh answers {_md(_str(cause.get('effect')))}."
            )
        lines.append("")
    return lines


def _explain(split: Split, said: str) -> Iterable[str]:
    """One sentence per bucket: what was configured, what happened, what the test concluded."""
    n = split.requests
    level = _level(split.tested_alpha())
    beta_level = _level(split.beta)
    for b in split.buckets:
        name = f"**{_md(b.name)}**"
        got = f"{b.count} of {n} requests ({_pct(b.share)})"
        if b.expected == 0.0:
            if b.count:
                yield (
                    f"{name} got {got} but is {said} to get none: a bucket that must stay "
                    "empty received a request, which fails the check at once."
                )
            else:
                yield f"{name} got none, as {said}."
            continue
        if b.expected == 1.0:
            if b.status == "ok":
                yield f"{name} got every request ({n}), as {said}."
            else:
                yield f"{name} is {said} to get every request and got {got}."
            continue
        head = f"{name} is {said} to get {_pct_short(b.expected)} and got {got}."
        decisive = split.pass_interval(b)
        if b.status == "ok" and decisive is not None:
            yield (
                f"{head} The {beta_level} interval of its true share, {_range(decisive)}, lies "
                f"inside the band {_band_text(b.band)}, so the share counts as {said}."
            )
        elif b.status == "ok":
            yield (
                f"{head} Its {level} interval, {_range(b.interval)}, contains the {said} "
                f"share, so the test found no evidence against it."
            )
        elif b.status == "off":
            yield (
                f"{head} Its {level} interval, {_range(b.interval)}, leaves out "
                f"{_pct_short(b.expected)}: that share is not what the mesh delivers."
            )
        else:
            yield (
                f"{head} The counts do not decide yet whether the share lies in the band "
                f"{_band_text(b.band)} (its {level} interval is {_range(b.interval)})."
            )
