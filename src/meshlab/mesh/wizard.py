"""Kiali's traffic wizards, offline: the VirtualService and DestinationRule that Kiali's
"weighted routing" and "request matching" wizards write for a service, computed from the
lab's pods, so a student can compare them with their own (the course's "Kiali-auto method").

What Kiali writes (kiali frontend `IstioWizards/WizardActions.ts`, `buildIstioConfig`; the
course used the older wizard ids `weighted_routing` and `matching_routing`):
- a DestinationRule and a VirtualService named after the service, in its namespace, each
  labelled `kiali_wizard: <wizard id>`;
- DR `host` and every destination `host`: the service's FQDN; VS `hosts`: its short name;
- one subset per workload that carries the version label, named by the label's value, with
  that one label (workloads without it are left out);
- integer weights; Kiali's default is `floor(100/n)` each with the remainder on the last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from meshlab.mesh.registry import MeshService, Registry, selects_pod
from meshlab.records import dataclass

WEIGHTED = "weighted_routing"
MATCHING = "matching_routing"
API_VERSION = "networking.istio.io/v1beta1"  # what the course's Kiali wrote


class WizardError(ValueError):
    """The wizard cannot run as asked (no such service, no versions, weights off); the message
    says what Kiali would have let the student choose."""


@dataclass(frozen=True)
class Match:
    """One request-matching condition, as Kiali's form has them."""

    field: Literal["headers", "uri", "method", "authority", "scheme"]
    op: Literal["exact", "prefix", "regex"]
    value: str
    name: str = ""  # the header's name (headers only)


@dataclass(frozen=True)
class MatchRule:
    """Requests matching all of `matches` (none: every request) go to `version`."""

    matches: tuple[Match, ...]
    version: str


def find_service(registry: Registry, name: str, namespace: str) -> MeshService:
    found = next(
        (s for s in registry.services if s.name == name and s.namespace == namespace), None
    )
    if found is None:
        known = ", ".join(sorted(s.name for s in registry.services if s.namespace == namespace))
        raise WizardError(f"no Service {namespace}/{name} in the lab (Services: {known or 'none'})")
    return found


def versions(registry: Registry, service: MeshService, label: str = "version") -> list[str]:
    """The version label's values of the workloads behind the service, in the lab's order."""
    found: dict[str, None] = {}
    for pod in registry.pods:
        if selects_pod(service, pod) and label in pod.labels:
            found[pod.labels[label]] = None
    if not found:
        raise WizardError(
            f"no workload behind Service {service.name} has a {label!r} label: Kiali offers "
            "no versions to route to"
        )
    return list(found)


def default_weights(names: Sequence[str]) -> dict[str, int]:
    """Kiali's sliders at rest: floor(100/n) each, the remainder on the last."""
    share = 100 // len(names)
    weights = dict.fromkeys(names, share)
    weights[names[-1]] += 100 - share * len(names)
    return weights


def weighted_routing(
    registry: Registry,
    service: MeshService,
    weights: Mapping[str, int] | None = None,
    label: str = "version",
) -> list[dict[str, Any]]:
    """[VirtualService, DestinationRule] as Kiali's weighted routing wizard writes them."""
    known = versions(registry, service, label)
    chosen = dict(weights) if weights else default_weights(known)
    _check_weights(chosen, known)
    route = [
        {"destination": _destination(service, version), "weight": weight}
        for version, weight in chosen.items()
    ]
    return [
        _virtual_service(service, WEIGHTED, [{"route": route}]),
        _destination_rule(service, WEIGHTED, known, label),
    ]


def request_matching(
    registry: Registry,
    service: MeshService,
    rules: Sequence[MatchRule],
    label: str = "version",
) -> list[dict[str, Any]]:
    """[VirtualService, DestinationRule] as Kiali's request matching wizard writes them:
    one `http` rule per rule given, in order (the first match wins)."""
    known = versions(registry, service, label)
    if not rules:
        raise WizardError("give at least one rule")
    http = []
    for rule in rules:
        if rule.version not in known:
            raise WizardError(f"no version {rule.version!r} (versions: {', '.join(known)})")
        entry: dict[str, Any] = {}
        if rule.matches:
            entry["match"] = [_match(rule.matches)]
        entry["route"] = [{"destination": _destination(service, rule.version)}]
        http.append(entry)
    return [
        _virtual_service(service, MATCHING, http),
        _destination_rule(service, MATCHING, known, label),
    ]


def _check_weights(weights: Mapping[str, int], known: Sequence[str]) -> None:
    unknown = [v for v in weights if v not in known]
    if unknown:
        raise WizardError(
            f"no version {unknown[0]!r} behind the service (versions: {', '.join(known)})"
        )
    if any(w < 0 for w in weights.values()) or sum(weights.values()) != 100:
        raise WizardError(
            f"weights must be whole numbers from 0 that add up to 100, as Kiali's sliders do "
            f"(these add up to {sum(weights.values())})"
        )


def _match(matches: Sequence[Match]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for match in matches:
        if match.field == "headers":
            out.setdefault("headers", {})[match.name] = {match.op: match.value}
        else:
            out[match.field] = {match.op: match.value}
    return out


def _metadata(service: MeshService, wizard: str) -> dict[str, Any]:
    return {
        "labels": {"kiali_wizard": wizard},
        "name": service.name,
        "namespace": service.namespace,
    }


def _destination(service: MeshService, version: str) -> dict[str, str]:
    return {"host": service.fqdn, "subset": version}


def _virtual_service(
    service: MeshService, wizard: str, http: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "VirtualService",
        "metadata": _metadata(service, wizard),
        "spec": {"hosts": [service.name], "http": http},
    }


def _destination_rule(
    service: MeshService, wizard: str, known: Sequence[str], label: str
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "DestinationRule",
        "metadata": _metadata(service, wizard),
        "spec": {
            "host": service.fqdn,
            "subsets": [{"labels": {label: version}, "name": version} for version in known],
        },
    }


_FIELDS = ("uri", "method", "authority", "scheme")
_OPS = ("exact", "prefix", "regex")


def parse_rule(text: str) -> MatchRule:
    """`header:end-user=exact:jason, uri=prefix:/api -> risky`; `-> safe` matches every
    request. The operator defaults to `exact`, as in Kiali's form."""
    conditions, arrow, version = text.rpartition("->")
    if not arrow or not version.strip():
        raise WizardError(
            f"rule {text!r}: write CONDITIONS -> VERSION, e.g. 'header:end-user=jason -> risky'"
        )
    matches = tuple(_parse_match(part.strip()) for part in conditions.split(",") if part.strip())
    return MatchRule(matches, version.strip())


def _parse_match(text: str) -> Match:
    target, equals, spec = text.partition("=")
    if not equals:
        raise WizardError(f"condition {text!r}: write FIELD=OP:VALUE, e.g. uri=prefix:/api")
    op, colon, value = spec.partition(":")
    if not colon or op not in _OPS:
        op, value = "exact", spec
    if target.startswith("header:") and target[7:]:
        return Match("headers", op, value, target[7:].lower())  # type: ignore[arg-type]
    if target in _FIELDS:
        return Match(target, op, value)  # type: ignore[arg-type]
    raise WizardError(
        f"condition {text!r}: match on header:NAME, {', '.join(_FIELDS)} (as Kiali's form does)"
    )
