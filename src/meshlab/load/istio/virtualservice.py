"""VirtualService: routes, matches, weights, retries, faults, rewrites, as Istio's validating
webhook accepts them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from meshlab.load.istio.common import (
    IstioMeta,
    IstioNetworkingVersion,
    PortSelector,
    StringMatch,
    UriMatch,
    WithoutHeaderMatch,
    check_host,
    check_route_duration,
)
from meshlab.load.istio.webhook import (
    INT32_MAX,
    UINT32_MAX,
    check_envoy_path,
    check_header_value,
    check_match_header_name,
    check_operation_header_name,
    check_regex,
    is_authority_header,
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


def _strict_name(name: str) -> str:
    return check_operation_header_name(name, authority_allowed=False)


def _request_name(name: str) -> str:
    return check_operation_header_name(name, authority_allowed=True)


# Key and value types: pydantic then reports a bad name or value at its own YAML line.
StrictHeaderName = Annotated[str, AfterValidator(_strict_name)]
RequestHeaderName = Annotated[str, AfterValidator(_request_name)]
HeaderValue = Annotated[str, AfterValidator(check_header_value)]
MatchHeaderName = Annotated[str, AfterValidator(check_match_header_name)]


class HeaderOperations(Strict):
    """Response headers, and what a request may remove: Istio's ValidateHTTPHeaderOperationName
    (no `host`, no `:` prefix) and ValidateHTTPHeaderValue."""

    set: dict[StrictHeaderName, HeaderValue] = Field(default={})
    add: dict[StrictHeaderName, HeaderValue] = Field(default={})
    remove: list[StrictHeaderName] = Field(default=[])

    def authority(self) -> str | None:
        """The value of a `host`/`:authority` set or add (validation allows one)."""
        found = [v for k, v in (*self.set.items(), *self.add.items()) if is_authority_header(k)]
        return found[-1] if found else None


class RequestHeaderOperations(HeaderOperations):
    """ValidateHTTPHeaderWithAuthorityOperationName: request set/add may name `host` or
    `:authority`; istiod turns that into a host rewrite (route.go translateAppendHeaders)."""

    set: dict[RequestHeaderName, HeaderValue] = Field(default={})
    add: dict[RequestHeaderName, HeaderValue] = Field(default={})


class Headers(Strict):
    request: RequestHeaderOperations | None = None
    response: HeaderOperations | None = None

    @model_validator(mode="after")
    def _one_authority(self) -> Headers:
        if self.request is not None:
            names = [k for k in (*self.request.set, *self.request.add) if is_authority_header(k)]
            if len(names) > 1:
                raise ValueError(
                    f"authority header cannot be set multiple times (got {', '.join(names)})"
                )
        return self


class HTTPRouteDestination(Strict):
    destination: Destination
    weight: int | None = None
    headers: Headers | None = None

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError(f"weight {value} must be zero or more")
        if value is not None and value > INT32_MAX:
            raise ValueError(
                f"weight {value} is over {INT32_MAX}, the CRD's int32 limit "
                "(weights are relative: 90/10 says the same as 900000/100000)"
            )
        return value


class HTTPMatchRequest(Strict):
    name: str | None = None
    uri: UriMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[MatchHeaderName, StringMatch] = Field(default={})
    port: int | None = Field(default=None, ge=1, le=65535)
    sourceLabels: dict[str, str] = Field(default={})
    gateways: list[str] = Field(default=[])
    queryParams: dict[str, StringMatch] = Field(default={})
    ignoreUriCase: bool = False
    withoutHeaders: dict[MatchHeaderName, WithoutHeaderMatch] = Field(default={})
    sourceNamespace: str | None = None
    statPrefix: str | None = None


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
        if value > INT32_MAX:
            raise ValueError(f"attempts {value} is over {INT32_MAX}, the CRD's int32 limit")
        return value

    @model_validator(mode="after")
    def _disabled(self) -> HTTPRetry:
        # agent.ValidateHTTPRetry: attempts 0 disables retries, so the rest would be ignored.
        if self.attempts == 0 and (
            self.perTryTimeout is not None
            or self.retryOn is not None
            or self.retryRemoteLocalities is not None
        ):
            raise ValueError(
                "http retry policy configured when attempts are set to 0 (disabled): "
                "set attempts, or remove perTryTimeout/retryOn/retryRemoteLocalities"
            )
        return self


class Percent(Strict):
    value: float = Field(ge=0, le=100)


class FaultDelay(Strict):
    fixedDelay: str | None = None
    percentage: Percent | None = None
    percent: int | None = Field(default=None, ge=0, le=100)
    exponentialDelay: str | None = None

    @field_validator("fixedDelay")
    @classmethod
    def _fixed(cls, value: str | None) -> str | None:
        return None if value is None else check_route_duration(value)

    @model_validator(mode="after")
    def _delay(self) -> FaultDelay:
        if self.exponentialDelay is not None:
            raise ValueError("exponentialDelay is not supported by Istio")
        if self.fixedDelay is None:
            raise ValueError("delay needs fixedDelay")
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


class RegexRewrite(Strict):
    match: str
    rewrite: str

    @model_validator(mode="after")
    def _regex(self) -> RegexRewrite:
        # validateURIRegexRewrite
        if not self.match or not self.rewrite:
            raise ValueError("uriRegexRewrite requires both match and rewrite")
        check_regex(self.match, "uriRegexRewrite.match")
        return self


class HTTPRewrite(Strict):
    """validateHTTPRewrite. A uri without a leading `/` is accepted, as Istio does: Envoy
    replaces the matched prefix with it verbatim."""

    uri: str | None = None
    authority: str | None = None
    uriRegexRewrite: RegexRewrite | None = None

    @model_validator(mode="after")
    def _rewrite(self) -> HTTPRewrite:
        if self.uri and self.uriRegexRewrite is not None:
            raise ValueError("rewrite may only contain one of uri or uriRegexRewrite")
        if not self.uri and self.uriRegexRewrite is None and not self.authority:
            raise ValueError("rewrite must specify at least one of uri, uriRegexRewrite, authority")
        if self.uri:
            check_envoy_path(self.uri, "rewrite uri")
        if self.authority:
            check_header_value(self.authority)
        return self


class HTTPRedirect(Strict):
    """validateHTTPRedirect: something to redirect to, a 3xx code, an http(s) scheme."""

    uri: str | None = None
    authority: str | None = None
    port: int | None = Field(default=None, ge=0, le=65535)
    derivePort: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str | None = None
    redirectCode: int = 301

    @model_validator(mode="after")
    def _redirect(self) -> HTTPRedirect:
        if not (self.uri or self.authority or self.port or self.scheme or self.derivePort):
            raise ValueError("redirect must specify uri, authority, scheme, or port")
        if not 300 <= self.redirectCode <= 399:
            raise ValueError(f"{self.redirectCode} is not a valid redirect code, must be 3xx")
        if self.scheme and self.scheme not in ("http", "https"):
            raise ValueError('invalid redirect scheme, must be "http" or "https"')
        if self.uri:
            check_envoy_path(self.uri, "redirect uri")
        if self.authority:
            check_envoy_path(self.authority, "redirect authority")
        return self


class HTTPBody(Strict):
    string: str | None = None
    bytes: str | None = None


MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024  # validateHTTPDirectResponse


class HTTPDirectResponse(Strict):
    status: int = Field(ge=200, le=599)
    body: HTTPBody | None = None

    @model_validator(mode="after")
    def _size(self) -> HTTPDirectResponse:
        text = (self.body.string or self.body.bytes or "") if self.body else ""
        if len(text.encode("utf-8", "surrogatepass")) > MAX_DIRECT_RESPONSE_BYTES:
            raise ValueError("directResponse body must be less than 1MB")
        return self


class HTTPRoute(Strict):
    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default=[])
    route: list[HTTPRouteDestination] = Field(default=[])
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
        total = sum(d.weight or 0 for d in self.route)
        if len(self.route) > 1 and total == 0:
            raise ValueError("total destination weight = 0: at least one weight must be positive")
        if len(self.route) > 1 and total > UINT32_MAX:
            raise ValueError(
                f"total destination weight {total} is over {UINT32_MAX}, the most Envoy "
                "accepts: weights are relative, divide them"
            )
        if self.redirect is not None and (self.fault is not None or self.rewrite is not None):
            raise ValueError("an HTTP route with a redirect cannot also have fault or rewrite")
        request = self.headers.request if self.headers else None
        if self.rewrite and self.rewrite.authority and request and request.authority():
            # validateAuthorityRewrite: the authority is rewritten in one place only
            raise ValueError(
                "authority header cannot be set multiple times: rewrite.authority and a "
                "host/:authority header in headers.request"
            )
        return self


class VirtualServiceSpec(Strict):
    hosts: list[str] = Field(default=[])
    gateways: list[str] = Field(default=[])
    http: list[HTTPRoute] = Field(default=[])
    tls: Any = None
    tcp: Any = None
    exportTo: list[str] = Field(default=[])

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        return [check_host(host) for host in value]

    @model_validator(mode="after")
    def _hosts(self) -> VirtualServiceSpec:
        if not self.hosts:
            # A delegate (pkg/config/validation/validation.go, ValidateVirtualService): a
            # root VirtualService's `delegate` names it; it has no gateways, tls or tcp.
            for field, value in (("gateways", self.gateways), ("tls", self.tls), ("tcp", self.tcp)):
                if value:
                    raise ValueError(
                        f"{field}: a VirtualService without hosts is a delegate, and a delegate "
                        f"has no {field}"
                    )
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
