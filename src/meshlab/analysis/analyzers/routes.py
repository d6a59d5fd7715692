"""Walking a VirtualService's destinations, typed (http) or raw (tcp, tls: not simulated)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.load.yamlio import PathKey
from meshlab.records import dataclass


@dataclass(frozen=True)
class DestinationRef:
    """One `destination:` (or `mirror:`) of a VirtualService and where it is written."""

    vs: Resource
    host: str
    subset: str | None
    port: int | None
    at: PathKey  # path of the destination mapping inside the VirtualService
    mirror: bool = False

    def locate(self, field: str | None = None) -> Any:
        return self.vs.locate(*self.at, field) if field else self.vs.locate(*self.at)


def rule_name(index: int, http: istio.HTTPRoute | None = None, section: str = "http") -> str:
    name = http.name if http is not None else None
    return f"{section}[{index}]" + (f' "{name}"' if name else "")


def destinations(vs: Resource, *, mirrors: bool = True) -> Iterator[DestinationRef]:
    spec: istio.VirtualServiceSpec = vs.body.spec
    for i, http in enumerate(spec.http):
        for j, route in enumerate(http.route):
            d = route.destination
            port = d.port.number if d.port else None
            yield DestinationRef(
                vs, d.host, d.subset, port, ("spec", "http", i, "route", j, "destination")
            )
        if not mirrors:
            continue
        if http.mirror is not None:
            m = http.mirror
            at: PathKey = ("spec", "http", i, "mirror")
            yield DestinationRef(vs, m.host, m.subset, m.port.number if m.port else None, at, True)
        if isinstance(http.mirrors, list):
            for j, item in enumerate(http.mirrors):
                if isinstance(item, dict):
                    yield from _raw(
                        vs,
                        item.get("destination"),
                        ("spec", "http", i, "mirrors", j, "destination"),
                        True,
                    )
    for section in ("tcp", "tls"):
        rules = getattr(spec, section)
        if not isinstance(rules, list):
            continue
        for i, rule in enumerate(rules):
            routes = rule.get("route") if isinstance(rule, dict) else None
            for j, route in enumerate(routes if isinstance(routes, list) else []):
                if isinstance(route, dict):
                    yield from _raw(
                        vs,
                        route.get("destination"),
                        ("spec", section, i, "route", j, "destination"),
                    )


def _raw(vs: Resource, raw: Any, at: PathKey, mirror: bool = False) -> Iterator[DestinationRef]:
    if not isinstance(raw, dict) or not isinstance(raw.get("host"), str):
        return
    port = raw.get("port")
    number = port.get("number") if isinstance(port, dict) else None
    subset = raw.get("subset")
    yield DestinationRef(
        vs,
        raw["host"],
        subset if isinstance(subset, str) else None,
        number if isinstance(number, int) else None,
        at,
        mirror,
    )
