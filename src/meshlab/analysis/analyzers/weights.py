"""Weights as Kiali reads them: a lone destination's weight, a destination named twice,
weights that do not add up to 100 (Istio treats them as relative since 1.15)."""

from __future__ import annotations

from collections import Counter

from meshlab.analysis import messages as msg
from meshlab.analysis.analyzers.routes import rule_name
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.load import istio
from meshlab.mesh.names import resolve_host


class WeightsAnalyzer(Analyzer):
    metadata = Metadata(
        name="virtualservice.WeightsAnalyzer",
        description="route weights say what the mesh will do with them",
        inputs=("VirtualService",),
    )

    def analyze(self, ctx: Context) -> None:
        for vs in ctx.of_kind("VirtualService"):
            spec: istio.VirtualServiceSpec = vs.body.spec
            for i, http in enumerate(spec.http):
                at = ("spec", "http", i, "route")
                name = rule_name(i, http)
                hosts = [resolve_host(r.destination.host, vs.namespace) for r in http.route]
                if len(http.route) == 1:
                    weight = http.route[0].weight
                    if weight is not None and weight != 100:
                        ctx.report(
                            msg.LONE_DESTINATION_WEIGHT(
                                vs,
                                vs.locate(*at, 0, "weight"),
                                rule=name,
                                weight=weight,
                                hosts=hosts,
                                hint="remove the weight, or add the destination that should "
                                f"get the other {100 - weight}%",
                            )
                        )
                    continue
                if len(http.route) < 2:
                    continue
                keys = [
                    (resolve_host(r.destination.host, vs.namespace), r.destination.subset)
                    for r in http.route
                ]
                counts = Counter(keys)
                for key, count in counts.items():
                    if count < 2:
                        continue
                    first = keys.index(key)
                    d = http.route[first].destination
                    weights = " + ".join(
                        str(r.weight or 0)
                        for r, k in zip(http.route, keys, strict=True)
                        if k == key
                    )
                    ctx.report(
                        msg.DUPLICATE_DESTINATION(
                            vs,
                            vs.locate(*at, keys.index(key, first + 1)),
                            rule=name,
                            destination=f"{d.host}" + (f' subset "{d.subset}"' if d.subset else ""),
                            count=count,
                            weights=weights,
                            hosts=hosts,
                            hint="name each destination once, with the total weight",
                        )
                    )
                total = sum(r.weight or 0 for r in http.route)
                if total not in (0, 100):
                    shares = ", ".join(
                        f"{r.destination.subset or r.destination.host} "
                        f"{100 * (r.weight or 0) / total:.1f}%"
                        for r in http.route
                    )
                    ctx.report(
                        msg.WEIGHTS_NOT_100(
                            vs,
                            vs.locate(*at),
                            rule=name,
                            total=total,
                            shares=shares,
                            hosts=hosts,
                        )
                    )
