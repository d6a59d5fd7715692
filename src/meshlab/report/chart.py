"""The share chart of a split check: each bucket's observed share against its configured
share, with the band that counts as "as configured" and the confidence intervals the verdict
rests on (read from the report: the chart never recomputes a verdict's numbers)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from meshlab.records import dataclass
from meshlab.report.model import BucketReport, SplitCheckReport
from meshlab.report.svg import (
    BLUE,
    GREEN,
    GREY,
    PAD,
    SMALL,
    STATUS_COLOUR,
    document,
    shape,
    text,
    text_width,
)
from meshlab.report.words import STATUS_WORD, band_text, level, pct, pct_range, pct_short

__all__ = ["share_chart_svg"]

CHART_ROW = 38
CHART_W = 400.0
CHART_RIGHT = 175.0
CHART_AXIS = 26


@dataclass(frozen=True)
class _Scale:
    """Maps a share (0 to 1, clamped) to an x position on the chart's axis."""

    x0: float
    width: float

    def __call__(self, share: float) -> float:
        return self.x0 + self.width * min(1.0, max(0.0, share))


def _axis(px: _Scale, top: float, rows_h: float) -> list[ET.Element]:
    out = []
    for tick in range(11):
        x = px(tick / 10)
        out.append(
            shape(
                "line",
                x1=x,
                y1=top - 6,
                x2=x,
                y2=top + rows_h,
                stroke="currentColor",
                stroke_opacity=0.35 if tick in (0, 10) else 0.12,
                stroke_width=1,
            )
        )
        out.append(text(x, top - 11, f"{tick * 10}%", anchor="middle", size=SMALL, opacity=0.8))
    return out


def _whiskers(lo: float, hi: float, cy: float, half: float) -> str:
    return (
        f"M {lo:.1f} {cy - half:.1f} V {cy + half:.1f} M {lo:.1f} {cy:.1f} H {hi:.1f} "
        f"M {hi:.1f} {cy - half:.1f} V {cy + half:.1f}"
    )


def _pass_interval(split: SplitCheckReport, bucket: BucketReport) -> tuple[float, float] | None:
    """The 1 - beta interval a pass rests on, as the check recorded it (not on a fail)."""
    return bucket.pass_interval if split.outcome != "fail" else None


def _row(split: SplitCheckReport, bucket: BucketReport, px: _Scale, cy: float) -> list[ET.Element]:
    """Band (green), 1 - alpha interval (blue whiskers), 1 - beta interval (thick blue),
    configured share (bar), observed share (dot in the colour of the verdict)."""
    name = bucket.bucket
    out = [text(px.x0 - 12, cy + 4.5, name, anchor="end", weight="600")]
    lo, hi = px(bucket.band[0]), px(bucket.band[1])
    if hi - lo < 3:  # 0% and 100% are exact: a sliver at the value
        lo, hi = lo - 1.5, lo + 1.5
    out.append(
        shape(
            "rect",
            x=lo,
            y=cy - 11,
            width=hi - lo,
            height=22,
            rx=3,
            fill=GREEN,
            fill_opacity=0.28,
            data_part="band",
            data_bucket=name,
        )
    )
    ilo, ihi = px(bucket.interval[0]), px(bucket.interval[1])
    out.append(
        shape(
            "path",
            d=_whiskers(ilo, ihi, cy, 6),
            stroke=BLUE,
            stroke_width=1.5,
            fill="none",
            data_part="interval",
            data_bucket=name,
        )
    )
    decisive = _pass_interval(split, bucket)
    if decisive is not None:
        plo, phi = px(decisive[0]), px(decisive[1])
        out.append(
            shape(
                "line",
                x1=plo,
                y1=cy,
                x2=max(phi, plo + 1),
                y2=cy,
                stroke=BLUE,
                stroke_opacity=0.55,
                stroke_width=7,
                stroke_linecap="round",
                data_part="pass-interval",
                data_bucket=name,
            )
        )
    x = px(bucket.expected)
    out.append(
        shape(
            "line",
            x1=x,
            y1=cy - 14,
            x2=x,
            y2=cy + 14,
            stroke="currentColor",
            stroke_width=2.5,
            data_part="configured",
            data_bucket=name,
        )
    )
    out.append(
        shape(
            "circle",
            cx=px(bucket.share),
            cy=cy,
            r=5.5,
            fill=STATUS_COLOUR.get(bucket.status, GREY),
            stroke="currentColor",
            stroke_width=1,
            data_part="observed",
            data_bucket=name,
            data_status=bucket.status,
        )
    )
    right = px.x0 + px.width + 14
    first, second = _row_texts(split, bucket)
    out.append(text(right, cy - 2, first))
    out.append(text(right, cy + 12, second, size=SMALL, opacity=0.75))
    return out


def _row_texts(split: SplitCheckReport, bucket: BucketReport) -> tuple[str, str]:
    """What the chart writes right of a row: the observed share, then configured and verdict."""
    verdict = STATUS_WORD.get(bucket.status, bucket.status)
    return (
        f"{pct(bucket.share)} ({bucket.count}/{split.requests})",
        f"configured {pct_short(bucket.expected)} · {verdict}",
    )


def _legend_mark(kind: str, x: float, y: float) -> ET.Element:
    if kind == "band":
        return shape("rect", x=x, y=y - 6, width=18, height=12, rx=2, fill=GREEN, fill_opacity=0.22)
    if kind == "configured":
        return shape(
            "line",
            x1=x + 9,
            y1=y - 8,
            x2=x + 9,
            y2=y + 8,
            stroke="currentColor",
            stroke_width=2.5,
        )
    if kind == "observed":
        return shape(
            "circle", cx=x + 9, cy=y, r=5.5, fill=GREEN, stroke="currentColor", stroke_width=1
        )
    if kind == "interval":
        return shape(
            "path", d=_whiskers(x, x + 18, y, 5), stroke=BLUE, stroke_width=1.5, fill="none"
        )
    return shape(
        "line",
        x1=x + 3,
        y1=y,
        x2=x + 15,
        y2=y,
        stroke=BLUE,
        stroke_opacity=0.55,
        stroke_width=7,
        stroke_linecap="round",
    )


def _legend(
    split: SplitCheckReport, buckets: list[BucketReport], x0: float, limit: float, y: float
) -> tuple[list[ET.Element], float]:
    items = [
        ("band", "band: counts as configured"),
        ("configured", "configured share"),
        ("observed", "observed share"),
        ("interval", f"{level(split.tested_alpha())} interval of the true share"),
    ]
    if any(_pass_interval(split, b) for b in buckets):
        items.append(("pass", f"{level(split.beta)} interval: inside the band means pass"))
    out = []
    x = x0
    for kind, words in items:
        item_w = 24 + text_width(words, SMALL) + 18
        if x + item_w > limit and x > x0:
            x, y = x0, y + 20
        out.append(_legend_mark(kind, x, y))
        out.append(text(x + 24, y + 4, words, size=SMALL))
        x += item_w
    return out, y


def share_chart_svg(split: SplitCheckReport, ident: str = "chart") -> str:
    """Each bucket's observed share against its configured share and band, with the
    confidence intervals of the verdict, as an SVG element (a string)."""
    buckets = split.shown_buckets()
    label_w = max([text_width(b.bucket) for b in buckets] + [50]) + 14
    px = _Scale(PAD + label_w, CHART_W)
    top = PAD + CHART_AXIS
    rows_h = CHART_ROW * max(1, len(buckets))
    parts = _axis(px, top, rows_h)
    for i, bucket in enumerate(buckets):
        parts += _row(split, bucket, px, top + CHART_ROW * i + CHART_ROW / 2)
    right_w = max(
        [CHART_RIGHT]
        + [
            14 + max(text_width(first), text_width(second, SMALL))
            for first, second in (_row_texts(split, b) for b in buckets)
        ]
    )
    limit = px.x0 + CHART_W + right_w
    legend, last = _legend(split, buckets, px.x0, limit, top + rows_h + 24)
    tested = level(split.tested_alpha())
    desc = "; ".join(
        f"{b.bucket}: observed {pct(b.share)} ({b.count} of {split.requests}), configured "
        f"{pct_short(b.expected)}, band {band_text(b.band)}, "
        f"{tested} interval {pct_range(b.interval)}"
        for b in buckets
    )
    title = f"Observed vs configured shares of {split.name}"
    return document(
        limit + PAD, last + PAD + 6, "share-chart", ident, title, desc, [*parts, *legend]
    )
