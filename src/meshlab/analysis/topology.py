"""A pod's labels as istiod matches subsets against them: its own, plus the labels it takes
from the Node it runs on (region, zone, subzone, hostname).

Istio's rule (pkg/config/analysis/analyzers/destinationrule/subset.go, PodNotSelectedAnalyzer,
with pilot/pkg/serviceregistry/util/label/label.go AugmentLabels and SplitLocalityLabel, and
pilot/pkg/networking/util/util.go LocalityToString): the Node's topology labels are joined into
a locality string `region/zone/subzone` (a subzone without a zone is dropped, an empty region
stays an empty first part), split again, and each non-empty part overrides the pod's label of
that name; `kubernetes.io/hostname` is the pod's `nodeName` whenever it has one, Node or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshlab.load.manifests import Resource
from meshlab.mesh.registry import PodInstance

REGION = "topology.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
SUBZONE = "topology.istio.io/subzone"
HOSTNAME = "kubernetes.io/hostname"
NODE_LABELS = frozenset({REGION, ZONE, SUBZONE, HOSTNAME})


def locality(node_labels: Mapping[str, str]) -> str:
    """LocalityToString of the Node's region, zone and subzone labels."""
    text = node_labels.get(REGION, "")
    zone, subzone = node_labels.get(ZONE, ""), node_labels.get(SUBZONE, "")
    if not zone:
        return text
    text += "/" + zone
    return text + "/" + subzone if subzone else text


def augmented(
    labels: Mapping[str, str], node_name: str, node_labels: Mapping[str, str] | None
) -> dict[str, str]:
    """AugmentLabels with no cluster or network (the analyzer passes none either)."""
    out = dict(labels)
    parts = (locality(node_labels) if node_labels is not None else "").split("/")
    for name, value in zip((REGION, ZONE, SUBZONE), parts, strict=False):
        if value:
            out[name] = value
    if node_name:
        out[HOSTNAME] = node_name
    return out


def node_name(pod: PodInstance) -> str:
    """`spec.nodeName` of the pod (or of the Deployment's pod template): "" when unscheduled."""
    spec: Any = pod.owner.body.spec
    if pod.owner.kind == "Deployment":
        spec = spec.template.spec
    name = getattr(spec, "nodeName", None)
    return name if isinstance(name, str) else ""


def pod_labels(pods: Sequence[PodInstance], nodes: Sequence[Resource]) -> dict[int, dict[str, str]]:
    """id(pod) -> the labels a subset selector is matched against, for the pods that run on a
    named node (the others are matched on their own labels)."""
    by_name = {n.name: dict(n.body.metadata.labels) for n in nodes}
    found: dict[int, dict[str, str]] = {}
    for pod in pods:
        name = node_name(pod)
        if name:
            found[id(pod)] = augmented(pod.labels, name, by_name.get(name))
    return found


def hint(
    selector: Mapping[str, str], pods: Sequence[PodInstance], placed: dict[int, dict[str, str]]
) -> str:
    """What the pods have of the topology labels a subset asks for, and where that comes from."""
    keys = sorted(NODE_LABELS & set(selector))
    seen = sorted(
        {
            f"{k}={placed[id(p)][k]}"
            for p in pods
            if id(p) in placed
            for k in keys
            if k in placed[id(p)]
        }
    )
    have = f"the pods here have {', '.join(seen)}" if seen else "no pod here has them"
    return (
        "a pod takes topology labels from the Node it runs on (spec.nodeName; an empty "
        f"Node label adds nothing): {have}"
    )
