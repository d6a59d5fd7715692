"""IST0128, IST0129: a DestinationRule that originates TLS (SIMPLE or MUTUAL) without
`caCertificates` does not verify the server it talks to, after Istio's
destinationrule.CaCertificateAnalyzer (analyzers/destinationrule/ca-certificates.go)."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.load import istio
from meshlab.load.manifests import Resource

_ORIGINATING = ("SIMPLE", "MUTUAL")


def _unverified(tls: istio.ClientTLSSettings | None, dr: Resource) -> bool:
    if tls is None or tls.mode not in _ORIGINATING or tls.caCertificates:
        return False
    # A credentialName on a DestinationRule with a workloadSelector carries its own CA.
    return not (tls.credentialName and dr.body.spec.workloadSelector is not None)


class CaCertificateAnalyzer(Analyzer):
    metadata = Metadata(
        name="destinationrule.CaCertificateAnalyzer",
        description="TLS origination (SIMPLE/MUTUAL) sets caCertificates to verify the server",
        inputs=("DestinationRule",),
    )

    def analyze(self, ctx: Context) -> None:
        hint = (
            "set caCertificates (e.g. /etc/ssl/certs/ca-certificates.crt) so the server's "
            "certificate is verified"
        )
        for dr in ctx.of_kind("DestinationRule"):
            spec: istio.DestinationRuleSpec = dr.body.spec
            policy = spec.trafficPolicy
            if policy is None:
                continue
            if _unverified(policy.tls, dr):
                ctx.report(
                    msg.NO_CA_DESTINATION(
                        dr,
                        dr.locate("spec", "trafficPolicy", "tls", "mode"),
                        mode=policy.tls.mode if policy.tls else "",
                        host=spec.host,
                        hint=hint,
                    )
                )
            for i, settings in enumerate(policy.portLevelSettings or []):
                if _unverified(settings.tls, dr):
                    port = settings.port.number if settings.port else None
                    ctx.report(
                        msg.NO_CA_PORT(
                            dr,
                            dr.locate("spec", "trafficPolicy", "portLevelSettings", i, "tls"),
                            mode=settings.tls.mode if settings.tls else "",
                            host=spec.host,
                            port=port,
                            hint=hint,
                        )
                    )
