"""IST0106: what the API server or Istio's webhook would refuse at apply time (from the strict
schemas in meshlab.manifests); IST0133 and IST0002: what they accept with a warning."""

from __future__ import annotations

from typing import Any

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.load import istio
from meshlab.load.manifests import Resource


class SchemaAnalyzer(Analyzer):
    metadata = Metadata(
        name="schema.ValidationAnalyzer",
        description="objects Kubernetes or Istio would reject at apply time",
        inputs=(),
    )

    def analyze(self, ctx: Context) -> None:
        for rejected in ctx.rejected:
            for error in rejected.errors:
                ctx.report(
                    msg.SCHEMA_ERROR(
                        rejected.ref, error.location, message=error.message, hint=error.hint
                    )
                )


class DeprecationAnalyzer(Analyzer):
    metadata = Metadata(
        name="deprecation.FieldAnalyzer",
        description="deprecated fields: accepted today, ignored or removed tomorrow",
        inputs=("VirtualService", "DestinationRule", "Sidecar"),
    )

    def analyze(self, ctx: Context) -> None:
        for sidecar in ctx.of_kind("Sidecar"):
            # deprecation/deprecation.go analyzeSidecar: "OutboundTrafficPolicy.EgressProxy
            # ignored" (istiod no longer reads it).
            outbound = sidecar.body.spec.outboundTrafficPolicy
            if outbound is not None and outbound.egressProxy is not None:
                ctx.report(
                    msg.DEPRECATED(
                        sidecar,
                        sidecar.document.locate(
                            (*sidecar.at, "spec", "outboundTrafficPolicy", "egressProxy"),
                            prefer_key=True,
                        ),
                        field="outboundTrafficPolicy.egressProxy",
                        instead="istiod ignores it",
                        hint="route outbound traffic through an egress gateway with a "
                        "VirtualService and a ServiceEntry instead",
                    )
                )
        for vs in ctx.of_kind("VirtualService"):
            spec: istio.VirtualServiceSpec = vs.body.spec
            for i, http in enumerate(spec.http):
                at = ("spec", "http", i)
                delay = http.fault.delay if http.fault else None
                if delay is not None and delay.percent and delay.percentage is None:
                    ctx.report(
                        msg.DEPRECATED(
                            vs,
                            vs.locate(*at, "fault", "delay", "percent"),
                            field="fault.delay.percent",
                            instead="use percentage: {value: ...}",
                            hint=f"write `percentage: {{value: {delay.percent}}}`",
                        )
                    )
                for old in ("mirrorPercent", "mirror_percent"):
                    if getattr(http, old) is not None:
                        ctx.report(
                            msg.DEPRECATED(
                                vs,
                                vs.locate(*at, old),
                                field=old,
                                instead="use mirrorPercentage: {value: ...}",
                            )
                        )
        for dr in ctx.of_kind("DestinationRule"):
            for where, policy in _policies(dr):
                od = policy.outlierDetection if policy else None
                if od is not None and od.consecutiveErrors is not None:
                    ctx.report(
                        msg.SCHEMA_WARNING(
                            dr,
                            dr.locate(*where, "outlierDetection", "consecutiveErrors"),
                            message="outlierDetection.consecutiveErrors is deprecated and "
                            "ignored: no host is ejected for it",
                            hint="use consecutive5xxErrors (or consecutiveGatewayErrors)",
                        )
                    )


def _policies(dr: Resource) -> list[tuple[tuple[str | int, ...], Any]]:
    spec: istio.DestinationRuleSpec = dr.body.spec
    found: list[tuple[tuple[str | int, ...], Any]] = [
        (("spec", "trafficPolicy"), spec.trafficPolicy)
    ]
    for i, port in enumerate(
        spec.trafficPolicy.portLevelSettings or [] if spec.trafficPolicy else []
    ):
        found.append((("spec", "trafficPolicy", "portLevelSettings", i), port))
    for i, subset in enumerate(spec.subsets):
        found.append((("spec", "subsets", i, "trafficPolicy"), subset.trafficPolicy))
    return found
