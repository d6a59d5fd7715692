"""The message catalogue: every code meshlab reports, its level and its wording.

IST codes mean exactly what they mean in `istioctl analyze` (Istio's
`pkg/config/analysis/msg/messages.yaml`); ML codes are meshlab's own, several taken from
Kiali's validations (noted per message). A code is never reused for another meaning, and
analyzers only call these constructors. `docs/reference/analyzer.md` documents every code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from meshlab.analysis.base import Diagnostic, Level
from meshlab.errors import Location
from meshlab.load.manifests import Resource
from meshlab.records import dataclass

Origin = Literal["istioctl", "kiali", "meshlab"]


@dataclass(frozen=True)
class MessageType:
    """A code with one meaning; `name` tells IST0101's reference kinds apart."""

    code: str
    name: str
    level: Level
    template: str
    origin: Origin
    explains_traffic: bool = False

    def __call__(
        self,
        resource: Resource | str | None,
        location: Location | None = None,
        *,
        hint: str | None = None,
        hosts: Iterable[str] = (),
        **args: Any,
    ) -> Diagnostic:
        if isinstance(resource, Resource):
            ref: str | None = resource.ref
            location = location or resource.location
        else:
            ref = resource
        return Diagnostic(
            code=self.code,
            level=self.level,
            message=self.template.format(**args),
            resource=ref,
            location=location,
            hint=hint,
            hosts=tuple(dict.fromkeys(hosts)),
            explains_traffic=self.explains_traffic,
            name=self.name,
        )


def _m(
    code: str,
    name: str,
    level: Level,
    template: str,
    origin: Origin = "istioctl",
    traffic: bool = False,
) -> MessageType:
    message = MessageType(code, name, level, template, origin, traffic)
    CATALOGUE.append(message)
    return message


CATALOGUE: list[MessageType] = []

# --- istioctl analyze ---------------------------------------------------------------------

DEPRECATED = _m("IST0002", "Deprecated", "warning", "{field} is deprecated: {instead}")
HOST_NOT_FOUND = _m(
    "IST0101",
    "ReferencedResourceNotFound/host",
    "error",
    "destination host {host} is not a Service or ServiceEntry{where}: "
    "requests routed there get 503 NC (no cluster)",
    traffic=True,
)
MIRROR_HOST_NOT_FOUND = _m(
    "IST0101",
    "ReferencedResourceNotFound/mirror-host",
    "error",
    "mirror host {host} is not a Service or ServiceEntry{where}: nothing is mirrored",
)
PORT_NOT_FOUND = _m(
    "IST0101",
    "ReferencedResourceNotFound/host-port",
    "error",
    "port {port} is not a port of {service} (ports: {ports}): "
    "requests routed there get 503 NC (no cluster)",
    traffic=True,
)
SUBSET_NOT_FOUND = _m(
    "IST0101",
    "ReferencedResourceNotFound/host-subset",
    "error",
    'subset "{subset}" of host {host} is not defined by any DestinationRule{defined}',
    traffic=True,
)
GATEWAY_NOT_FOUND = _m(
    "IST0101",
    "ReferencedResourceNotFound/gateway",
    "error",
    "gateway {gateway} does not exist (no Gateway {namespace}/{name})",
)
GATEWAY_SELECTOR_NO_PODS = _m(
    "IST0101",
    "ReferencedResourceNotFound/selector",
    "error",
    "selector {selector} matches no pod: no gateway proxy serves this Gateway",
)
NAMESPACE_NOT_INJECTED = _m(
    "IST0102",
    "NamespaceNotInjected",
    "info",
    "namespace {namespace} is not enabled for Istio injection: its pods get no sidecar, so "
    "no VirtualService or DestinationRule applies to their requests",
)
POD_MISSING_PROXY = _m(
    "IST0103",
    "PodMissingProxy",
    "warning",
    "the pod {pod} is missing the Istio proxy: its requests bypass the mesh's rules",
)
SCHEMA_ERROR = _m("IST0106", "SchemaValidationError", "error", "{message}")
CONFLICTING_MESH_VS = _m(
    "IST0109",
    "ConflictingMeshGatewayVirtualServiceHosts",
    "error",
    "VirtualServices {names} all route host {host} for sidecars; Istio does not merge them: "
    "sidecars use {winner} (the oldest, then by name) and ignore the others for this host",
    traffic=True,
)
CONFLICTING_MESH_VS_WILDCARD = _m(
    "IST0109",
    "ConflictingMeshGatewayVirtualServiceHosts/wildcard",
    "error",
    "VirtualServices {names} claim overlapping hosts for sidecars ({host} here; {others}), "
    "one of them exported to every namespace: istioctl reports them as conflicting; a "
    "request for a name both cover follows the most specific host's rules only",
)
PORT_SELECTOR_REQUIRED = _m(
    "IST0112",
    "VirtualServiceDestinationPortSelectorRequired",
    "error",
    "destination {host} has no port but Service {service} has several ({ports}): "
    "Istio picks the port the request came in on",
    traffic=True,
)
MULTIPLE_SERVICES_PROTOCOL = _m(
    "IST0116",
    "DeploymentAssociatedToMultipleServices",
    "warning",
    "Services {services} select the pods of this Deployment and use port {port} "
    "with different protocols ({protocols})",
)
PORT_NAME_CONVENTION = _m(
    "IST0118",
    "PortNameIsNotUnderNamingConvention",
    "info",
    "port {port} of Service {service} {named}: Istio has to sniff its protocol",
)
UNREACHABLE_RULE = _m(
    "IST0130",
    "VirtualServiceUnreachableRule",
    "warning",
    "rule {rule} is never used: {reason}",
    traffic=True,
)
INEFFECTIVE_MATCH = _m(
    "IST0131",
    "VirtualServiceIneffectiveMatch",
    "info",
    "match {match} of rule {rule} never applies: {reason}",
)
NO_CA_DESTINATION = _m(
    "IST0128",
    "NoServerCertificateVerificationDestinationLevel",
    "warning",
    "TLS mode {mode} but no caCertificates: the server's certificate for host {host} is "
    "not verified",
)
NO_CA_PORT = _m(
    "IST0129",
    "NoServerCertificateVerificationPortLevel",
    "warning",
    "TLS mode {mode} but no caCertificates: the server's certificate for host {host} at "
    "port {port} is not verified",
)
SE_ADDRESSES_REQUIRED = _m(
    "IST0134",
    "ServiceEntryAddressesRequired",
    "warning",
    "port {port} is TCP (or has no protocol) and the ServiceEntry has no addresses: a "
    "sidecar cannot tell its connections apart from other traffic to that port",
)
HOST_NOT_IN_GATEWAY = _m(
    "IST0132",
    "VirtualServiceHostNotFoundInGateway",
    "warning",
    "no host of this VirtualService ({vs_hosts}) is a host of gateway {gateway} "
    "({gateway_hosts}): "
    "the gateway does not route it",
)
SCHEMA_WARNING = _m("IST0133", "SchemaWarning", "warning", "{message}")
CONFLICTING_PORTS = _m(
    "IST0137",
    "DeploymentConflictingPorts",
    "warning",
    "Services {services} send ports {ports} to the same target port {target} of this "
    "Deployment's pods",
)
INGRESS_ROUTE_RULES_NOT_AFFECTED = _m(
    "IST0140",
    "IngressRouteRulesNotAffected",
    "warning",
    "the subsets {splitters} routes {host} to do not apply to requests through gateway "
    "{gateways}: this route sends them to all pods of {host}",
    traffic=True,
)
CONFLICTING_GATEWAYS = _m(
    "IST0145",
    "ConflictingGateways",
    "error",
    "Gateway {other} has the same selector {selector}, port {port} and overlapping hosts "
    "({overlap}): only one of them gets these hosts",
)
GATEWAY_PORT_NOT_ON_SERVICE = _m(
    "IST0162",
    "GatewayPortNotDefinedOnService",
    "warning",
    "port {port} is not a port or targetPort of any Service of the gateway pods "
    "({selector}): no traffic reaches this server",
)
SUBSET_SELECTS_NO_PODS = _m(
    "IST0173",
    "DestinationRuleSubsetNotSelectPods",
    "error",
    'subset "{subset}" (labels {labels}) selects no pods: requests routed to it get 503 UH '
    "(no healthy upstream)",
    traffic=True,
)
UNKNOWN_DR_HOST = _m(
    "IST0174",
    "UnknownDestinationRuleHost",
    "warning",
    "host {host} is not a Service or ServiceEntry: this DestinationRule applies to nothing",
    traffic=True,
)

REFERENCED_INTERNAL_GATEWAY = _m(
    "IST0165",
    "ReferencedInternalGateway",
    "warning",
    "gateway {gateway} is the internal Gateway Istio generates for a Gateway API gateway: "
    "a VirtualService should not name it",
)
SE_CONFLICTING_PROTOCOL = _m(
    "IST0177",
    "ConflictingServiceEntryProtocol",
    "warning",
    "ServiceEntries ({entries}) define host {host} port {port} with different protocols "
    "({protocols}): one of them wins and the other's traffic is handled wrongly",
)

# --- meshlab ------------------------------------------------------------------------------

ANALYSIS_INCOMPLETE = _m(
    "ML0001",
    "AnalysisIncomplete",
    "info",
    "no {missing} in the input: {count} analyzers that need them were skipped or held "
    "back findings ({skipped})",
    origin="meshlab",
)
NOT_SIMULATED = _m(
    "ML0002",
    "NotSimulated",
    "info",
    "not simulated: {kinds}",
    origin="meshlab",
)
LONE_DESTINATION_WEIGHT = _m(
    "ML0101",
    "LoneDestinationWeight",
    "warning",
    "the only destination of rule {rule} has weight {weight}: a lone destination gets all "
    "the traffic (100%) whatever its weight",
    origin="kiali",
    traffic=True,
)
DUPLICATE_DESTINATION = _m(
    "ML0102",
    "DuplicateDestination",
    "warning",
    "rule {rule} names {destination} {count} times: their weights add up ({weights})",
    origin="kiali",
    traffic=True,
)
UNUSED_SUBSET = _m(
    "ML0103",
    "SubsetNotReferenced",
    "info",
    'subset "{subset}" is not the destination of any VirtualService route: it gets no traffic',
    origin="kiali",
)
SUBSETS_WITHOUT_VS = _m(
    "ML0104",
    "SubsetsWithoutVirtualService",
    "warning",
    "subsets of {host} are defined but no VirtualService routes to that host: sidecars "
    "spread its traffic over all its pods and the subsets take no part",
    origin="kiali",
    traffic=True,
)
SUBSET_WITHOUT_LABELS = _m(
    "ML0105",
    "SubsetWithoutLabels",
    "warning",
    'subset "{subset}" has no labels: it selects every pod of {host}',
    origin="kiali",
    traffic=True,
)
DUPLICATE_SUBSET = _m(
    "ML0106",
    "DuplicateSubset",
    "warning",
    'subset "{subset}" of host {host} is also defined by {other}: Istio merges the two '
    "DestinationRules and keeps the first definition ({winner})",
    origin="kiali",
    traffic=True,
)
WEIGHTS_NOT_100 = _m(
    "ML0107",
    "WeightsNotHundred",
    "info",
    "weights of rule {rule} add up to {total}, not 100: each destination gets weight/{total} "
    "({shares})",
    origin="kiali",
    traffic=True,
)
RULE_AFTER_CATCH_ALL = _m(
    "ML0108",
    "RuleAfterCatchAll",
    "warning",
    "rule {rule} is never used: {earlier} matches every request ({why}) and Istio stops at "
    "the first catch-all route",
    origin="meshlab",
    traffic=True,
)
SUBSET_NO_ENDPOINTS = _m(
    "ML0109",
    "SubsetSelectsNoEndpoints",
    "error",
    'subset "{subset}" (labels {labels}) selects pods ({pods}) but none of them is behind '
    "Service {service}: requests routed to it get 503 UH (no healthy upstream)",
    origin="meshlab",
    traffic=True,
)
SERVICE_SELECTS_NO_PODS = _m(
    "ML0110",
    "ServiceSelectsNoPods",
    "warning",
    "selector {selector} matches no pod: requests to Service {service} get 503 UH "
    "(no healthy upstream)",
    origin="kiali",
    traffic=True,
)
VS_HOST_NOT_FOUND = _m(
    "ML0111",
    "VirtualServiceHostNotFound",
    "warning",
    "host {host} is not a Service or ServiceEntry: no request goes to it, so these rules "
    "route nothing (a Service you meant keeps its default route, all pods equally)",
    origin="meshlab",
    traffic=True,
)
MISSING_VERSION_LABEL = _m(
    "ML0201",
    "MissingVersionLabel",
    "warning",
    "the pods of this Deployment serve {service}, which is split by version, but have no "
    '`version` label: Kiali\'s versioned graph shows them as version "latest"',
    origin="kiali",
)
OVERLAPPING_SELECTORS = _m(
    "ML0202",
    "OverlappingDeploymentSelectors",
    "info",
    "selector {selector} also matches the pods of Deployment {other} (allowed: each "
    "Deployment tells its own pods apart by pod-template-hash)",
    origin="meshlab",
)
VS_NOT_FOR_MESH = _m(
    "ML0203",
    "VirtualServiceNotForMesh",
    "info",
    "gateways {gateways} do not include mesh: sidecars ignore this VirtualService, so "
    "requests between pods to {vs_hosts} do not follow its rules",
    origin="meshlab",
    traffic=True,
)


def by_code() -> dict[str, list[MessageType]]:
    found: dict[str, list[MessageType]] = {}
    for message in CATALOGUE:
        found.setdefault(message.code, []).append(message)
    return found
