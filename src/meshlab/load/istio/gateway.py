"""Gateway: servers, ports, hosts (with `ns/` and `./`) and TLS, as Istio's validating webhook
accepts them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from meshlab.load.istio.common import GatewayMeta, IstioNetworkingVersion, check_namespaced_host
from meshlab.load.k8s import check_labels
from meshlab.load.schema import Strict


class GatewayPort(Strict):
    number: int = Field(ge=1, le=65535)
    protocol: str
    name: str | None = None
    targetPort: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        known = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS", "UDP")
        if value.upper() not in known:
            raise ValueError(f"protocol {value!r} is not one of {', '.join(known)}")
        return value


class ServerTLSSettings(Strict):
    httpsRedirect: bool | None = None
    mode: (
        Literal[
            "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"
        ]
        | None
    ) = None
    serverCertificate: str | None = None
    privateKey: str | None = None
    caCertificates: str | None = None
    caCrl: str | None = None
    credentialName: str | None = None
    credentialNames: list[str] = Field(default=[])
    tlsCertificates: Any = None
    subjectAltNames: list[str] = Field(default=[])
    verifyCertificateSpki: list[str] = Field(default=[])
    verifyCertificateHash: list[str] = Field(default=[])
    minProtocolVersion: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = (
        None
    )
    maxProtocolVersion: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = (
        None
    )
    cipherSuites: list[str] = Field(default=[])


class Server(Strict):
    port: GatewayPort
    hosts: list[str] = Field(min_length=1)
    tls: ServerTLSSettings | None = None
    bind: str | None = None
    defaultEndpoint: str | None = None
    name: str | None = None

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return [check_namespaced_host(h, "server host") for h in value]

    @model_validator(mode="after")
    def _tls(self) -> Server:
        if self.port.protocol.upper() in ("HTTPS", "TLS") and self.tls is None:
            raise ValueError(
                f"server on port {self.port.number}: protocol {self.port.protocol} "
                "needs tls settings"
            )
        return self


class GatewaySpec(Strict):
    servers: list[Server] = Field(min_length=1)
    selector: dict[str, str] = Field(default={})

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)

    @model_validator(mode="after")
    def _port_names(self) -> GatewaySpec:
        names = [s.port.name for s in self.servers if s.port.name]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"servers: port names must be unique (duplicate {dupes[0]!r})")
        return self


class Gateway(Strict):
    apiVersion: IstioNetworkingVersion
    kind: Literal["Gateway"]
    metadata: GatewayMeta
    spec: GatewaySpec
    status: Any = None
