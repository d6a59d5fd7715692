"""ServiceEntry and the workload entries it may carry, as Istio's validating webhook accepts
them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from meshlab.load.istio.common import IstioMeta, IstioNetworkingVersion, check_host
from meshlab.load.k8s import check_labels
from meshlab.load.schema import Strict


class ServiceEntryPort(Strict):
    number: int = Field(ge=1, le=65535)
    protocol: str | None = None
    name: str | None = None
    targetPort: int | None = Field(default=None, ge=1, le=65535)


class WorkloadSelector(Strict):
    labels: dict[str, str] = Field(default={})

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)


class WorkloadEntrySpec(Strict):
    address: str | None = None
    ports: dict[str, int] = Field(default={})
    labels: dict[str, str] = Field(default={})
    network: str | None = None
    locality: str | None = None
    weight: int | None = Field(default=None, ge=0)
    serviceAccount: str | None = None


class ServiceEntrySpec(Strict):
    hosts: list[str] = Field(min_length=1)
    addresses: list[str] = Field(default=[])
    ports: list[ServiceEntryPort] = Field(default=[])
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] | None = None
    endpoints: list[WorkloadEntrySpec] = Field(default=[])
    workloadSelector: WorkloadSelector | None = None
    exportTo: list[str] = Field(default=[])
    subjectAltNames: list[str] = Field(default=[])

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if host == "*":
                raise ValueError('hosts: "*" is not allowed in a ServiceEntry')
            check_host(host, "host")
        return value

    @model_validator(mode="after")
    def _ports(self) -> ServiceEntrySpec:
        names = [p.name for p in self.ports if p.name]
        if len(names) != len(set(names)):
            raise ValueError("ports: port names must be unique")
        if self.endpoints and self.workloadSelector is not None:
            raise ValueError("only one of endpoints and workloadSelector can be set")
        return self


class ServiceEntry(Strict):
    apiVersion: IstioNetworkingVersion
    kind: Literal["ServiceEntry"]
    metadata: IstioMeta
    spec: ServiceEntrySpec
    status: Any = None
