"""Every analyzer, in alphabetical order of metadata name (a meta-test keeps it sorted)."""

from __future__ import annotations

from meshlab.analysis.analyzers.conflicts import ConflictingMeshHostsAnalyzer
from meshlab.analysis.analyzers.destinationrules import (
    DestinationRuleHostAnalyzer,
    SubsetPodsAnalyzer,
    SubsetUsageAnalyzer,
)
from meshlab.analysis.analyzers.destinations import (
    DestinationHostAnalyzer,
    DestinationSubsetAnalyzer,
)
from meshlab.analysis.analyzers.gateways import (
    ConflictingGatewaysAnalyzer,
    GatewaySelectorAnalyzer,
    VirtualServiceGatewayAnalyzer,
)
from meshlab.analysis.analyzers.ingress import (
    IngressRouteRulesAnalyzer,
    InternalGatewayAnalyzer,
)
from meshlab.analysis.analyzers.injection import InjectionAnalyzer
from meshlab.analysis.analyzers.kinds import UnsimulatedKindsAnalyzer
from meshlab.analysis.analyzers.rules import UnreachableRulesAnalyzer
from meshlab.analysis.analyzers.schema import DeprecationAnalyzer, SchemaAnalyzer
from meshlab.analysis.analyzers.serviceentries import (
    ConflictingProtocolAnalyzer,
    ProtocolAddressesAnalyzer,
)
from meshlab.analysis.analyzers.services import PortNameAnalyzer, ServicePodsAnalyzer
from meshlab.analysis.analyzers.tls import CaCertificateAnalyzer
from meshlab.analysis.analyzers.vshosts import VirtualServiceHostAnalyzer
from meshlab.analysis.analyzers.weights import WeightsAnalyzer
from meshlab.analysis.analyzers.workloads import (
    MultiServiceAnalyzer,
    OverlappingSelectorsAnalyzer,
    VersionLabelAnalyzer,
)
from meshlab.analysis.base import Analyzer

ANALYZERS: tuple[Analyzer, ...] = (
    MultiServiceAnalyzer(),
    OverlappingSelectorsAnalyzer(),
    VersionLabelAnalyzer(),
    DeprecationAnalyzer(),
    CaCertificateAnalyzer(),
    SubsetPodsAnalyzer(),
    SubsetUsageAnalyzer(),
    DestinationRuleHostAnalyzer(),
    ConflictingGatewaysAnalyzer(),
    GatewaySelectorAnalyzer(),
    InjectionAnalyzer(),
    UnsimulatedKindsAnalyzer(),
    SchemaAnalyzer(),
    PortNameAnalyzer(),
    ServicePodsAnalyzer(),
    ProtocolAddressesAnalyzer(),
    ConflictingProtocolAnalyzer(),
    ConflictingMeshHostsAnalyzer(),
    DestinationHostAnalyzer(),
    DestinationSubsetAnalyzer(),
    VirtualServiceGatewayAnalyzer(),
    VirtualServiceHostAnalyzer(),
    IngressRouteRulesAnalyzer(),
    InternalGatewayAnalyzer(),
    UnreachableRulesAnalyzer(),
    WeightsAnalyzer(),
)


def analyzers() -> tuple[Analyzer, ...]:
    return ANALYZERS
