"""ServiceEntries: IST0134 (a TCP port with no address to tell it by), IST0177 (two
ServiceEntries give one host and port different protocols), after Istio's
analyzers/serviceentry/protocoladdresses.go and conflictingserviceentries.go."""

from __future__ import annotations

from collections import defaultdict

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.load import istio
from meshlab.load.manifests import Resource


class ProtocolAddressesAnalyzer(Analyzer):
    metadata = Metadata(
        name="serviceentry.Analyzer",
        description="ServiceEntries with TCP ports have addresses",
        inputs=("ServiceEntry",),
    )

    def analyze(self, ctx: Context) -> None:
        for entry in ctx.of_kind("ServiceEntry"):
            spec: istio.ServiceEntrySpec = entry.body.spec
            allocated = isinstance(entry.body.status, dict) and entry.body.status.get("addresses")
            if spec.addresses or allocated:
                continue
            for i, port in enumerate(spec.ports):
                # The mesh's default config: no DNS capture, so no automatic addresses.
                if not port.protocol or port.protocol.upper() == "TCP":
                    ctx.report(
                        msg.SE_ADDRESSES_REQUIRED(
                            entry,
                            entry.locate("spec", "ports", i),
                            port=port.number,
                            hint="add `addresses:` (the service's IPs or CIDR), or give the "
                            "port a protocol such as HTTP or TLS that carries the host name",
                        )
                    )


def _scopes(spec: istio.ServiceEntrySpec, namespace: str) -> set[str]:
    if not spec.exportTo or "*" in spec.exportTo:
        return {"*"}
    return {namespace if scope == "." else scope for scope in spec.exportTo}


class ConflictingProtocolAnalyzer(Analyzer):
    metadata = Metadata(
        name="serviceentry.ConflictingServiceEntryProtocolAnalyzer",
        description="ServiceEntries agree on the protocol of a host and port",
        inputs=("ServiceEntry",),
    )

    def analyze(self, ctx: Context) -> None:
        index: dict[tuple[str, str, int], list[tuple[str, Resource]]] = defaultdict(list)
        for entry in ctx.of_kind("ServiceEntry"):
            spec: istio.ServiceEntrySpec = entry.body.spec
            for scope in _scopes(spec, entry.namespace):
                for host in spec.hosts:
                    for port in spec.ports:
                        protocol = (port.protocol or "").upper()
                        index[(scope, host, port.number)].append((protocol, entry))
        reported: set[str] = set()
        for (scope, host, number), own in sorted(index.items(), key=lambda item: item[0]):
            # a namespace's scope also sees what is exported everywhere
            public = index.get(("*", host, number), []) if scope != "*" else []
            entries = [*own, *public]
            if len({protocol for protocol, _ in entries}) < 2:
                continue
            names = sorted({f"{e.namespace}/{e.name}" for _, e in entries})
            protocols = sorted({protocol or "(unset)" for protocol, _ in entries})
            for _, entry in entries:
                if entry.ref in reported:
                    continue
                reported.add(entry.ref)
                ctx.report(
                    msg.SE_CONFLICTING_PROTOCOL(
                        entry,
                        entry.locate("metadata", "name"),
                        entries=", ".join(names),
                        host=host,
                        port=number,
                        protocols=", ".join(protocols),
                        hint="give the port one protocol in every ServiceEntry, or merge them",
                    )
                )
