"""PeerAuthentication (security.istio.io): which traffic a workload's sidecar accepts, mutual
TLS or plaintext, as Istio's validating webhook accepts it
(pkg/config/validation/validation.go ValidatePeerAuthentication)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from meshlab.load.istio.common import IstioMeta
from meshlab.load.k8s import check_labels
from meshlab.load.schema import Strict

MtlsMode = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]


class PeerMtls(Strict):
    mode: MtlsMode = "UNSET"


class PeerSelector(Strict):
    """`selector.matchLabels`: the workloads (in the policy's namespace) it applies to."""

    matchLabels: dict[str, str] = Field(default={})

    @field_validator("matchLabels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)


class PeerAuthenticationSpec(Strict):
    selector: PeerSelector | None = None
    mtls: PeerMtls | None = None
    # keys are container (target) port numbers; JSON (and so the API server) has string keys
    portLevelMtls: dict[str, PeerMtls] = Field(default={})

    @field_validator("portLevelMtls", mode="before")
    @classmethod
    def _port_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

    @property
    def ports(self) -> dict[int, PeerMtls]:
        """portLevelMtls by container port number."""
        return {int(k): v for k, v in self.portLevelMtls.items()}

    @model_validator(mode="after")
    def _ports_need_a_selector(self) -> PeerAuthenticationSpec:
        """validation.go: "portLevelMtls requires selector" -- a port means a workload's port."""
        if self.portLevelMtls and (self.selector is None or not self.selector.matchLabels):
            raise ValueError(
                "portLevelMtls requires a selector: port-level modes apply to the selected "
                "workloads' container ports (add selector.matchLabels, or use mtls.mode)"
            )
        for port in self.portLevelMtls:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"portLevelMtls: {port!r} must be a port number from 1 to 65535")
        return self


class PeerAuthentication(Strict):
    apiVersion: Literal["security.istio.io/v1beta1", "security.istio.io/v1"]
    kind: Literal["PeerAuthentication"]
    metadata: IstioMeta
    spec: PeerAuthenticationSpec = Field(default_factory=PeerAuthenticationSpec)
    status: Any = None
