"""ML0002: the kinds a lab carries that meshlab does not simulate, once per kind, so a
student who applies Istio's install files with the app sees them accepted, not ignored."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.mesh.unsimulated import unsimulated_kinds


class UnsimulatedKindsAnalyzer(Analyzer):
    metadata = Metadata(
        name="kinds.UnsimulatedAnalyzer",
        description="objects accepted but not simulated (CRDs, RBAC, Istio's install...)",
        inputs=(),
    )

    def analyze(self, ctx: Context) -> None:
        for group in unsimulated_kinds(ctx.resources):
            first = group.objects[0]
            ctx.report(msg.NOT_SIMULATED(None, first.location, kinds=group.describe()))
