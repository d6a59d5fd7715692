"""VirtualService: routes, matches, weights, retries, faults, rewrites, as Istio's validating
webhook accepts them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from meshlab.load.istio.common import (
    IstioMeta,
    IstioNetworkingVersion,
    PortSelector,
    StringMatch,
    check_host,
    check_route_duration,
)
from meshlab.load.k8s import check_dns1123_label
from meshlab.load.schema import Strict


class Destination(Strict):
    host: str = Field(min_length=1)
    subset: str | None = None
    port: PortSelector | None = None

    @field_validator("subset")
    @classmethod
    def _subset(cls, value: str | None) -> str | None:
        # Istio's webhook validates the reference too, not only the DestinationRule's names.
        return None if value is None else check_dns1123_label(value, "subset name")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value, "destination host")


class HeaderOperations(Strict):
    set: dict[str, str] = Field(default_factory=dict)
    add: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class Headers(Strict):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPRouteDestination(Strict):
    destination: Destination
    weight: int | None = None
    headers: Headers | None = None

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError(f"weight {value} must be zero or more")
        return value


class HTTPMatchRequest(Strict):
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)
    port: int | None = Field(default=None, ge=1, le=65535)
    sourceLabels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    queryParams: dict[str, StringMatch] = Field(default_factory=dict)
    ignoreUriCase: bool = False
    withoutHeaders: dict[str, StringMatch] = Field(default_factory=dict)
    sourceNamespace: str | None = None
    statPrefix: str | None = None

    @field_validator("headers", "withoutHeaders")
    @classmethod
    def _header_names(cls, value: dict[str, StringMatch]) -> dict[str, StringMatch]:
        for name in value:
            if name != name.lower():
                raise ValueError(f"header name {name!r} must be lowercase")
        return value


class HTTPRetry(Strict):
    attempts: int = 0
    perTryTimeout: str | None = None
    retryOn: str | None = None
    retryRemoteLocalities: bool | None = None
    retryIgnorePreviousHosts: bool | None = None
    backoff: str | None = None

    @field_validator("perTryTimeout", "backoff")
    @classmethod
    def _durations(cls, value: str | None) -> str | None:
        return None if value is None else check_route_duration(value)

    @field_validator("attempts")
    @classmethod
    def _attempts(cls, value: int) -> int:
        if value < 0:
            raise ValueError("attempts cannot be negative")
        return value


class Percent(Strict):
    value: float = Field(ge=0, le=100)


class FaultDelay(Strict):
    fixedDelay: str | None = None
    percentage: Percent | None = None
    percent: int | None = Field(default=None, ge=0, le=100)
    exponentialDelay: str | None = None

    @model_validator(mode="after")
    def _delay(self) -> FaultDelay:
        if self.exponentialDelay is not None:
            raise ValueError("exponentialDelay is not supported by Istio")
        if self.fixedDelay is None:
            raise ValueError("delay needs fixedDelay")
        check_route_duration(self.fixedDelay)
        return self


class FaultAbort(Strict):
    httpStatus: int | None = Field(default=None, ge=200, le=599)
    grpcStatus: str | None = None
    http2Error: str | None = None
    percentage: Percent | None = None

    @model_validator(mode="after")
    def _abort(self) -> FaultAbort:
        if self.http2Error is not None:
            raise ValueError("http2Error is not supported by Istio")
        if self.httpStatus is None and self.grpcStatus is None:
            raise ValueError("abort needs httpStatus or grpcStatus")
        return self


class HTTPFaultInjection(Strict):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None

    @model_validator(mode="after")
    def _some(self) -> HTTPFaultInjection:
        if self.delay is None and self.abort is None:
            raise ValueError("fault needs delay and/or abort")
        return self


class HTTPRewrite(Strict):
    uri: str | None = None
    authority: str | None = None
    uriRegexRewrite: Any = None


class HTTPRedirect(Strict):
    uri: str | None = None
    authority: str | None = None
    port: int | None = None
    derivePort: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str | None = None
    redirectCode: int = 301


class HTTPBody(Strict):
    string: str | None = None
    bytes: str | None = None


class HTTPDirectResponse(Strict):
    status: int = Field(ge=200, le=599)
    body: HTTPBody | None = None


class HTTPRoute(Strict):
    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(default_factory=list)
    redirect: HTTPRedirect | None = None
    directResponse: HTTPDirectResponse | None = None
    delegate: Any = None
    rewrite: HTTPRewrite | None = None
    timeout: str | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: Any = None
    mirrorPercentage: Percent | None = None
    mirrorPercent: Any = None
    mirror_percent: Any = None
    corsPolicy: Any = None
    headers: Headers | None = None

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | None) -> str | None:
        return None if value is None else check_route_duration(value)

    @model_validator(mode="after")
    def _actions(self) -> HTTPRoute:
        actions = [
            name
            for name, present in (
                ("route", bool(self.route)),
                ("redirect", self.redirect is not None),
                ("directResponse", self.directResponse is not None),
                ("delegate", self.delegate is not None),
            )
            if present
        ]
        if not actions:
            raise ValueError("an HTTP route needs one of route, redirect, directResponse, delegate")
        if len(actions) > 1:
            raise ValueError(
                f"route, redirect, directResponse are exclusive (got {', '.join(actions)})"
            )
        if len(self.route) > 1 and sum(d.weight or 0 for d in self.route) == 0:
            raise ValueError("total destination weight = 0: at least one weight must be positive")
        return self


class VirtualServiceSpec(Strict):
    hosts: list[str] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)
    tls: Any = None
    tcp: Any = None
    exportTo: list[str] = Field(default_factory=list)

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        return [check_host(host) for host in value]

    @model_validator(mode="after")
    def _hosts(self) -> VirtualServiceSpec:
        if not self.hosts:
            raise ValueError("hosts: a VirtualService must have at least one host")
        bound_to_mesh = not self.gateways or "mesh" in self.gateways
        if bound_to_mesh and "*" in self.hosts:
            raise ValueError('hosts: "*" is not allowed for VirtualServices bound to the mesh')
        if not self.http and not self.tls and not self.tcp:
            raise ValueError("a VirtualService needs http, tcp or tls routes")
        return self


class VirtualService(Strict):
    apiVersion: IstioNetworkingVersion
    kind: Literal["VirtualService"]
    metadata: IstioMeta
    spec: VirtualServiceSpec
    status: Any = None
