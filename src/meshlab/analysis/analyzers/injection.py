"""Sidecar injection: IST0102 (a namespace not labelled for injection), IST0103 (a running
pod without its proxy), after Istio's injection.Analyzer
(pkg/config/analysis/analyzers/injection/injection.go)."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.mesh.names import ISTIO_SYSTEM_NAMESPACE

_INJECTION = "istio-injection"
_REVISION = "istio.io/rev"
_SIDECAR_INJECT = "sidecar.istio.io/inject"
# Kubernetes' own namespaces: istioctl analyze leaves them out of the analysis.
_SKIPPED = frozenset({ISTIO_SYSTEM_NAMESPACE, "kube-system", "kube-public", "kube-node-lease"})


class InjectionAnalyzer(Analyzer):
    metadata = Metadata(
        name="injection.Analyzer",
        description="namespaces are labelled for sidecar injection; running pods have proxies",
        inputs=("Namespace", "Pod"),
    )

    def analyze(self, ctx: Context) -> None:
        injected: set[str] = set()
        for namespace in ctx.of_kind("Namespace"):
            if namespace.name in _SKIPPED:
                continue
            labels = namespace.body.metadata.labels
            if labels.get("istio.io/dataplane-mode") == "ambient":
                continue
            if not labels.get(_INJECTION) and _REVISION not in labels:
                ctx.report(
                    msg.NAMESPACE_NOT_INJECTED(
                        namespace,
                        namespace.locate("metadata", "name"),
                        namespace=namespace.name,
                        hint=f"add the label `istio-injection: enabled` (kubectl label "
                        f"namespace {namespace.name} istio-injection=enabled), or "
                        "`istio-injection: disabled` if it needs no sidecars",
                    )
                )
            elif labels.get(_INJECTION, "enabled") == "enabled":
                injected.add(namespace.name)
        for pod in ctx.of_kind("Pod"):
            # A pod as written is injected at admission: only a pod that ran (one with a
            # status, as `kubectl get pod -o yaml` gives it) can be missing its proxy.
            if pod.namespace not in injected or not pod.body.status:
                continue
            meta = pod.body.metadata
            inject = meta.labels.get(_SIDECAR_INJECT, meta.annotations.get(_SIDECAR_INJECT, ""))
            if inject.lower() == "false" or pod.body.spec.hostNetwork:
                continue
            containers = [*pod.body.spec.containers, *pod.body.spec.initContainers]
            if not any(c.name == "istio-proxy" and c.image for c in containers):
                ctx.report(
                    msg.POD_MISSING_PROXY(
                        pod,
                        pod.locate("metadata", "name"),
                        pod=f"{pod.namespace}/{pod.name}",
                        hint="restart or redeploy the workload so the injector adds the "
                        "sidecar (kubectl rollout restart deployment/<name>)",
                    )
                )
