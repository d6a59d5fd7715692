"""Envoy's own verdict on the bootstrap (`envoy --mode validate`) when the real Envoy would not
start.

The schemas refuse what Istio's webhook refuses; some configs pass the webhook and still make
a sidecar reject (NACK) its routes, e.g. an unknown `%VAR%` in a header value. Without this
net such a config ends the run as a backend failure (exit 3) with Envoy's dump; with it, the
student gets exit 2, Envoy's sentence, and the file:line of the object that produced it.

The check runs only after the run's Envoy failed to start (Envoy refuses at start whatever
validate mode refuses), so a good lab never pays for it; it needs no ports (a copy of the
bootstrap with placeholder pod ports, otherwise the same) and maps Envoy's message back to the
object that produced it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from meshlab.backends.embedded.envoy.binary import EnvoyBinary
from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.errors import BackendError, InputError, Location
from meshlab.load.manifests import Resource
from meshlab.mesh.plan import MeshPlan, RoutePlan
from meshlab.records import dataclass

VALIDATE_TIMEOUT = 60.0
MESSAGE_LIMIT = 800

_INTRO = re.compile(r"error initializing configuration '[^']*':\s*", re.DOTALL)
_LOG_PREFIX = re.compile(r"^\[[^\]]*\]\[\d+\]\[\w+\]\[\w+\] \[[^\]]*\] ", re.MULTILINE)
_DUMP = re.compile(r":\s*\{\s*\n")  # Envoy appends the whole config after parse errors
_INDEX = {
    "listener": re.compile(r"(?:\blisteners|Listeners)\[(\d+)\]"),
    "vhost": re.compile(r"(?:virtual_hosts|VirtualHosts)\[(\d+)\]"),
    "route": re.compile(r"(?:\broutes|\.Routes)\[(\d+)\]"),
    "cluster": re.compile(
        r"(?:static_resources\.clusters|StaticResourcesValidationError\.Clusters)\[(\d+)\]"
    ),
}
_VARIABLE = re.compile(r"%([A-Z_][A-Z0-9_]*)")


class EnvoyValidation:
    """`with EnvoyValidation(binary, plan, workdir) as check: ...; check.result()`: Envoy
    validates in the background; leaving the block early ends it."""

    def __init__(self, binary: EnvoyBinary, plan: MeshPlan, workdir: Path) -> None:
        self.plan = plan
        self.config = render_bootstrap(plan, placeholder_addresses(plan))
        self.path = workdir / "envoy-validate.json"
        self.path.write_text(json.dumps(self.config, indent=1, sort_keys=True), encoding="utf-8")
        self.output = workdir / "envoy-validate.log"
        self.started = time.monotonic()
        with self.output.open("wb") as sink:
            self.process = subprocess.Popen(
                [
                    str(binary.path),
                    "--mode",
                    "validate",
                    "-c",
                    str(self.path),
                    "-l",
                    "error",
                    "--disable-hot-restart",
                ],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env={},
                start_new_session=True,  # a terminal Ctrl-C reaches us; we end it in __exit__
            )

    def __enter__(self) -> EnvoyValidation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def result(self) -> None:
        """Wait for Envoy's verdict: InputError (exit 2) naming the object if it refuses."""
        remaining = VALIDATE_TIMEOUT - (time.monotonic() - self.started)
        try:
            code = self.process.wait(timeout=max(remaining, 0.1))
        except subprocess.TimeoutExpired:
            raise BackendError(
                f"envoy --mode validate did not finish within {VALIDATE_TIMEOUT:.0f} s"
            ) from None
        if code != 0:
            text = self.output.read_text(encoding="utf-8", errors="replace")
            raise refusal(text, self.plan, self.config)


def refusal(output: str, plan: MeshPlan, config: dict[str, Any]) -> InputError:
    """Envoy's complaint as an input error at the object (and line) that produced it."""
    message = envoy_message(output)
    found = find_route(message, plan, config)
    if found is not None:
        route, quoted = found
        vs = route.virtual_service
        what = vs.ref if vs else "the default route"
        location = route.location or (vs.location if vs else None)
        if vs is not None and quoted:
            location = _field_quoting(vs, quoted, location) or location
        return InputError(
            f"Envoy refuses the route built from {what}: {message}",
            location,
            hint="Istio's webhook lets this through, but a sidecar would reject (NACK) the "
            "route; fix the value Envoy quotes",
        )
    cluster_location = find_cluster(message, plan, config)
    if cluster_location is not None:
        where, ref = cluster_location
        return InputError(
            f"Envoy refuses the cluster built from {ref}: {message}",
            where,
            hint="a sidecar would reject (NACK) this cluster; fix the value Envoy quotes",
        )
    return InputError(
        f"Envoy refuses the configuration built from this lab: {message}",
        hint="meshlab could not tie Envoy's message to a manifest; if the lab looks right, "
        "this is a meshlab bug: please report it with `meshlab envoy-config`",
    )


def envoy_message(output: str) -> str:
    """Envoy's sentence, without log prefixes, the config dump, or protobuf's odd spacing."""
    text = _LOG_PREFIX.sub("", output)
    intro = _INTRO.search(text)
    if intro:
        text = text[intro.end() :]
    dump = _DUMP.search(text)
    if dump:
        text = text[: dump.start()]
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


@dataclass(frozen=True)
class _Site:
    """One route of the plan beside the Envoy route rendered from it, with the listener, vhost and
    route indices an Envoy message names it by."""

    listener: int
    vhost: int
    route: int
    plan: RoutePlan
    rendered: dict[str, Any]


def _route_sites(plan: MeshPlan, config: dict[str, Any]) -> list[_Site]:
    sites = []
    listeners = config["static_resources"]["listeners"]
    for li, (listener, rendered) in enumerate(zip(plan.listeners, listeners, strict=True)):
        if listener.route_table is None:
            continue
        hcm = rendered["filter_chains"][0]["filters"][0]["typed_config"]
        vhosts = hcm["route_config"]["virtual_hosts"]
        for vi, (vhost, vrendered) in enumerate(
            zip(plan.route_tables[listener.route_table], vhosts, strict=True)
        ):
            for ri, (route, rrendered) in enumerate(
                zip(vhost.routes, vrendered["routes"], strict=True)
            ):
                sites.append(_Site(li, vi, ri, route, rrendered))
    return sites


def find_route(
    message: str, plan: MeshPlan, config: dict[str, Any]
) -> tuple[RoutePlan, str | None] | None:
    """The route Envoy complains about, and what of it Envoy quotes: by the indices its path
    names, then by the longest value of the route its message quotes (a regex, a header
    value, a name)."""
    indices = {k: int(m.group(1)) for k, r in _INDEX.items() if (m := r.search(message))}
    sites = [
        s
        for s in _route_sites(plan, config)
        if indices.get("listener", s.listener) == s.listener
        and indices.get("vhost", s.vhost) == s.vhost
        and indices.get("route", s.route) == s.route
    ]
    scored = [(_quoted(message, s.rendered), s) for s in sites]
    best = max((len(quoted) for quoted, _ in scored), default=0)
    if best > 0:
        return next((s.plan, quoted) for quoted, s in scored if len(quoted) == best)
    if {"vhost", "route"} <= indices.keys() and sites:
        with_vs = [s for s in sites if s.plan.virtual_service is not None]
        return (with_vs or sites)[0].plan, None
    return None


def find_cluster(
    message: str, plan: MeshPlan, config: dict[str, Any]
) -> tuple[Location | None, str] | None:
    """A DestinationRule's cluster Envoy names by index or by name."""
    rendered = config["static_resources"]["clusters"]
    index = _INDEX["cluster"].search(message)
    names = (
        [rendered[int(index.group(1))]["name"]]
        if index and int(index.group(1)) < len(rendered)
        else [c["name"] for c in rendered if c["name"] in message]
    )
    for name in names:
        cluster = plan.clusters.get(name)
        if cluster is not None and cluster.destination_rule is not None:
            return cluster.destination_rule.location, cluster.destination_rule.ref
    return None


def _quoted(message: str, rendered: Any) -> str:
    """The longest string in `rendered` (or `%VARIABLE` name in one) that `message` quotes."""
    best = ""
    for value in _strings(rendered):
        for candidate in (value, *_VARIABLE.findall(value)):
            if len(candidate) >= 3 and candidate in message and len(candidate) > len(best):
                best = candidate
    return best


def _field_quoting(vs: Resource, quoted: str, route_at: Location | None) -> Location | None:
    """The line of the VirtualService field holding what Envoy quotes: the first at or after
    the route's own line (routes come in file order), else the first anywhere."""
    hits = []
    for path, text in _leaves(vs.document.data, ()):
        if quoted in text and tuple(path[: len(vs.at)]) == tuple(vs.at):
            hits.append(vs.document.locate(path, prefer_key=path[-1] == text))
    after = [h for h in hits if route_at is None or h.line >= route_at.line]
    return min(after or hits, key=lambda h: h.line) if hits else None


def _leaves(value: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    """(path, text) for every string value and mapping key under `value`."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            out.append(((*path, key), str(key)))
            out += _leaves(item, (*path, key))
        return out
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return []


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
