"""SVG for the results page, built as ElementTree elements (the serializer escapes the text):
one helper per kind of element, and the document around them. No JavaScript, no fonts,
nothing fetched: the pictures work offline and inline in Markdown."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CHAR",
    "FONT",
    "FONT_SIZE",
    "NODE_H",
    "SMALL",
    "arrow_defs",
    "document",
    "node_box",
    "shape",
    "text",
    "text_width",
]

SVG_NS = "http://www.w3.org/2000/svg"

# Colours that read on both the light and the dark palette; text uses currentColor.
GREEN = "#2e9e44"
RED = "#e0403a"
AMBER = "#f08c00"
GREY = "#8a96a3"
BLUE = "#1e88e5"
STATUS_COLOUR = {"ok": GREEN, "off": RED, "undecided": AMBER}

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
FONT_SIZE = 14
SMALL = 12  # legends and second lines: still readable when the page scales the picture down
CHAR = 0.62 * FONT_SIZE  # a generous average glyph width: labels never overflow their boxes
PAD = 16  # margin around a picture
NODE_H = 34  # a graph node's height


def text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * CHAR * size / FONT_SIZE


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{round(value, 2):g}"
    return str(value)


def shape(tag: str, **attrs: object) -> ET.Element:
    """An element; `stroke_width=2` is the attribute `stroke-width="2"`, None leaves it out."""
    return ET.Element(
        tag, {k.replace("_", "-"): _value(v) for k, v in attrs.items() if v is not None}
    )


def text(
    x: float,
    y: float,
    content: object,
    *,
    anchor: str = "start",
    size: int = FONT_SIZE,
    weight: str = "normal",
    fill: str = "currentColor",
    opacity: float = 1.0,
) -> ET.Element:
    element = shape(
        "text",
        x=x,
        y=y,
        text_anchor=anchor,
        fill=fill,
        font_size=size if size != FONT_SIZE else None,
        font_weight=weight if weight != "normal" else None,
        fill_opacity=opacity if opacity != 1.0 else None,
    )
    element.text = str(content)
    return element


def document(
    width: float,
    height: float,
    kind: str,
    ident: str,
    title: str,
    desc: str,
    parts: Iterable[ET.Element],
) -> str:
    """The <svg> element (as text, one element per line), titled and described for screen
    readers; `ident` keeps the ids of several pictures on one page apart."""
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "class": f"meshlab-{kind}",
            "data-meshlab": kind,
            "id": ident,
            "viewBox": f"0 0 {width:.0f} {height:.0f}",
            "width": f"{width:.0f}",
            "height": f"{height:.0f}",
            "role": "img",
            "aria-labelledby": f"{ident}-title {ident}-desc",
            "font-family": FONT,
            "font-size": str(FONT_SIZE),
            "style": "max-width: 100%; height: auto; color: inherit",
        },
    )
    ET.SubElement(root, "title", {"id": f"{ident}-title"}).text = title
    ET.SubElement(root, "desc", {"id": f"{ident}-desc"}).text = desc
    root.extend(parts)
    # One element per line and never a blank one: Markdown keeps the block as raw HTML.
    root.text = "\n"
    for element in root.iter():
        if element is not root:
            element.tail = "\n"
    return ET.tostring(root, encoding="unicode")


def app_box(x: float, y: float, width: float, height: float, app: str) -> ET.Element:
    """Kiali's dashed box around an app's version nodes (drawn first, as a backdrop)."""
    return shape(
        "rect",
        x=x,
        y=y,
        width=width,
        height=height,
        rx=10,
        fill="currentColor",
        fill_opacity=0.04,
        stroke="currentColor",
        stroke_opacity=0.45,
        stroke_dasharray="5 4",
        data_node="box",
        data_app=app,
    )


def node_box(
    x: float,
    y: float,
    width: float,
    name: str,
    look: Mapping[str, object],
    data: Mapping[str, str],
    *,
    height: float = NODE_H,
    **label: Any,
) -> list[ET.Element]:
    """A graph node as Kiali draws one: a rounded box (NODE_H high unless more edges end on
    it), its name centred; `look` is its fill and stroke, `data` the attributes tests and
    pages find it by."""
    box = shape("rect", x=x, y=y, width=width, height=height, rx=7, stroke_width=2, **look, **data)
    name_y = y + height / 2 + 4.5
    return [box, text(x + width / 2, name_y, name, anchor="middle", **label)]


def arrow_defs(ident: str) -> ET.Element:
    """Arrow heads for the edges of a graph: grey, and red for failing edges."""
    defs = shape("defs")
    for name, colour in (("arrow", GREY), ("arrow-red", RED)):
        marker = ET.SubElement(
            defs,
            "marker",
            {
                "id": f"{ident}-{name}",
                "viewBox": "0 0 10 10",
                "refX": "9",
                "refY": "5",
                "markerWidth": "7",
                "markerHeight": "7",
                "orient": "auto-start-reverse",
            },
        )
        marker.append(shape("path", d="M 0 0 L 10 5 L 0 10 z", fill=colour))
    return defs
