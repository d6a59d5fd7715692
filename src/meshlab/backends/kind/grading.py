"""Grading safety: what a submitted lab may ask of the grading runner's kind node.

With `grading` on, the kind backend reads every pod spec a lab carries (Pods and the pod
templates of Deployments; the loader admits no other workload kind) before anything is
applied, and refuses each field that is not on an allow-list of what a course lab needs.
Every refusal is an InputError (exit 2) naming the object and the field's file:line; all
of them are reported together. An allow-list, not a deny-list: a field Kubernetes adds
next year is refused until someone decides it is harmless.

Refuse or neutralise? Refused: whatever changes what runs or with which privileges
(host namespaces, host paths, capabilities, images, commands, scheduling), because
silently rewriting it would grade a lab other than the one submitted. Neutralised
(rewritten, and said so in the docs): only fields that matter to nobody's traffic but can
break a shared cluster — `hostPort` (two runs would collide on the node's port; meshlab
never reaches pods through the node, as with `nodePort`), a `clusterIP` other than `None`
(two runs would collide on the address), and a `terminationGracePeriodSeconds` above
MAX_GRACE_SECONDS (it would hold the namespace's deletion for that long).

Not covered here: how many pods or objects (the run's budgets), and where Istio objects
send traffic (a ServiceEntry or WorkloadEntry can point the mesh at any address the node
reaches; see docs/reference/backends.md).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from meshlab.backends.kind.accesslog import PROBE_POD, TELEMETRY_NAME
from meshlab.backends.kind.grading_rules import POD_SPEC, FieldPath, Finding, Policy, shown
from meshlab.backends.kind.kube import Obj
from meshlab.backends.kind.origins import PLAIN_PROBE_POD
from meshlab.errors import InputError, InputErrors
from meshlab.load.manifests import Resource
from meshlab.load.yamlio import PathKey

MAX_GRACE_SECONDS = 30  # Kubernetes' default
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]{1,253}$")

# --- labels and annotations -----------------------------------------------------------------

# Annotations istiod's injector reads that only tune logging or interception of the lab's
# own traffic. Every other Istio annotation is refused: some change the sidecar's image
# (sidecar.istio.io/proxyImage), add volumes to it (userVolume, userVolumeMount, may be a
# hostPath), make its init container privileged (enableCoreDump) or rewrite its bootstrap.
ISTIO_ANNOTATIONS = frozenset(
    {
        "sidecar.istio.io/inject",
        "sidecar.istio.io/logLevel",
        "sidecar.istio.io/componentLogLevel",
        "sidecar.istio.io/agentLogLevel",
        "sidecar.istio.io/rewriteAppHTTPProbers",
        "sidecar.istio.io/proxyCPU",
        "sidecar.istio.io/proxyMemory",
        "sidecar.istio.io/proxyCPULimit",
        "sidecar.istio.io/proxyMemoryLimit",
        "traffic.sidecar.istio.io/includeInboundPorts",
        "traffic.sidecar.istio.io/excludeInboundPorts",
        "traffic.sidecar.istio.io/includeOutboundPorts",
        "traffic.sidecar.istio.io/excludeOutboundPorts",
        "traffic.sidecar.istio.io/includeOutboundIPRanges",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges",
    }
)
_PROFILE_ANNOTATIONS = (
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
)


def _domain(key: str) -> str:
    return key.rpartition("/")[0].lower()


def _meta(meta: Any, at: FieldPath) -> Iterator[Finding]:
    if not isinstance(meta, Mapping):
        return
    for kind in ("labels", "annotations"):
        for key in meta.get(kind) or {}:
            domain, where = _domain(str(key)), (*at, kind, str(key))
            if domain == "meshlab.io" or domain.endswith(".meshlab.io"):
                yield Finding(where, "is meshlab's own (its probe is selected by it)")
            elif kind == "annotations" and str(key).startswith(_PROFILE_ANNOTATIONS):
                yield Finding(where, "sets a security profile; a graded lab keeps the default")
            elif (
                kind == "annotations"
                and (domain == "istio.io" or domain.endswith(".istio.io"))
                and key not in ISTIO_ANNOTATIONS
            ):
                yield Finding(
                    where,
                    "is an Istio injection setting a graded lab may not use: it can change "
                    "the sidecar's image, volumes or privileges (the few that only tune "
                    "logging or interception are allowed; the docs list them)",
                )


# --- objects ----------------------------------------------------------------------------------


def pod_spec_paths(kind: str) -> tuple[FieldPath, FieldPath] | None:
    """(metadata path, spec path) of the pod an object of this kind describes."""
    if kind == "Pod":
        return ("metadata",), ("spec",)
    if kind == "Deployment":
        return ("spec", "template", "metadata"), ("spec", "template", "spec")
    return None


def _get(data: Any, path: FieldPath) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def findings(obj: Mapping[str, Any], policy: Policy | None = None) -> list[Finding]:
    """Every refused field of one object (as written), in the order they appear."""
    policy = policy or Policy()
    found: list[Finding] = []
    name = _get(obj, ("metadata", "name"))
    if name in (PROBE_POD, PLAIN_PROBE_POD, TELEMETRY_NAME):
        found.append(Finding(("metadata", "name"), "is the name of meshlab's own probe object"))
    paths = pod_spec_paths(str(obj.get("kind")))
    if paths is not None:
        found += _meta(_get(obj, paths[0]), paths[0])
        found += POD_SPEC(_get(obj, paths[1]), paths[1], policy)
    if obj.get("kind") == "Service" and _get(obj, ("spec", "externalIPs")):
        found.append(
            Finding(
                ("spec", "externalIPs"),
                "may not be set in a graded lab: the node would capture traffic to those "
                "addresses, whatever they belong to",
            )
        )
    return found


def _path_part(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    return f".{part}" if _PLAIN_KEY.match(part) else f"[{shown(part)}]"


def refusals(resources: Sequence[Resource], policy: Policy | None = None) -> list[InputError]:
    """Each refused field as an InputError at its file:line."""
    errors = []
    for resource in resources:
        data: Any = resource.document.data
        for key in resource.at:
            data = data[key]
        for finding in findings(data, policy):
            dotted = "".join(_path_part(p) for p in finding.path).lstrip(".")
            where: PathKey = (*resource.at, *finding.path)
            errors.append(
                InputError(
                    f"{resource.ref}: {dotted} {finding.message}",
                    resource.document.locate(where, prefer_key=True),
                    hint="grading runs only what a course lab needs; see 'Grading safety on "
                    "kind' in docs/reference/backends.md",
                )
            )
    return errors


def check(resources: Sequence[Resource], policy: Policy | None = None) -> None:
    """Raise every refusal at once (exit 2), before anything is applied."""
    errors = refusals(resources, policy)
    if errors:
        raise InputErrors(errors) if len(errors) > 1 else errors[0]


def neutralised(obj: Obj) -> Obj:
    """The object with the fields that only a shared cluster cares about rewritten."""
    out = copy.deepcopy(obj)
    if out.get("kind") == "Service" and isinstance(out.get("spec"), dict):
        spec = out["spec"]
        if spec.get("clusterIP") not in (None, "None"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
    paths = pod_spec_paths(str(out.get("kind")))
    spec = _get(out, paths[1]) if paths else None
    if not isinstance(spec, dict):
        return out
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace > MAX_GRACE_SECONDS:
        spec["terminationGracePeriodSeconds"] = MAX_GRACE_SECONDS
    for group in ("containers", "initContainers"):
        for container in spec.get(group) or []:
            for port in (container.get("ports") or []) if isinstance(container, dict) else []:
                if isinstance(port, dict):
                    port.pop("hostPort", None)
                    port.pop("hostIP", None)
    return out
