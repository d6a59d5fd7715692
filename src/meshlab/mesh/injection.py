"""Which pods get a sidecar: the injection decision istiod's webhook makes at admission.

Istio's injectRequired (pkg/kube/inject/webhook.go) and the analyzers' DeploymentInMesh
(pkg/config/analysis/analyzers/util/in_mesh.go): a pod that already carries an `istio-proxy`
container is in the mesh; else its `sidecar.istio.io/inject` label (or annotation) decides;
else its Namespace's `istio-injection: enabled` label (or an `istio.io/rev` revision label);
hostNetwork pods never get one. A lab rarely carries its Namespace object (the course labels
`default` with a separate file): without one, meshlab takes the namespace as injected, as the
course's clusters are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from meshlab.load.manifests import Resource

INJECT_KEY = "sidecar.istio.io/inject"
NAMESPACE_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"


def namespaces_of(resources: Sequence[Resource]) -> dict[str, Resource]:
    """The lab's Namespace objects by name: injection reads their labels."""
    return {r.name: r for r in resources if r.kind == "Namespace"}


def has_sidecar(owner: Resource, namespaces: Mapping[str, Resource]) -> bool:
    """Whether the pods of `owner` (a Deployment or a Pod) run with a sidecar."""
    if owner.kind == "Deployment":
        template = owner.body.spec.template
        metadata, spec = template.metadata, template.spec
    else:
        metadata, spec = owner.body.metadata, owner.body.spec
    if spec is None:
        return False
    if any(c.name == "istio-proxy" and c.image for c in spec.containers):
        return True
    if getattr(spec, "hostNetwork", None):
        return False
    for values in (metadata.labels, metadata.annotations):
        if INJECT_KEY in values:
            return bool(str(values[INJECT_KEY]).lower() == "true")
    namespace = namespaces.get(owner.namespace)
    if namespace is None:
        return True
    labels = namespace.body.metadata.labels
    return bool(labels.get(NAMESPACE_LABEL) == "enabled" or REVISION_LABEL in labels)
