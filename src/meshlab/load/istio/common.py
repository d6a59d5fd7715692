"""What every Istio networking kind shares: API versions, durations, string matches, host
names as the webhook accepts them, object metadata."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from meshlab.load.istio.webhook import check_regex
from meshlab.load.k8s import ObjectMeta, check_dns1123_label
from meshlab.load.schema import Strict

ISTIO_NETWORKING_VERSIONS = (
    "networking.istio.io/v1alpha3",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1",
)
SECURITY_VERSIONS = ("security.istio.io/v1beta1", "security.istio.io/v1")
IstioNetworkingVersion = Literal[
    "networking.istio.io/v1alpha3", "networking.istio.io/v1beta1", "networking.istio.io/v1"
]

_DURATION = re.compile(r"^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$")
# The CRD checks durations with CEL's duration(), which parses them as Go does: at most
# math.MaxInt64 nanoseconds (crd-all.gen.yaml `duration(self) >= duration('1ms')`).
MAX_DURATION_SECONDS = (2**63 - 1) / 1e9
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> float:
    """Seconds in a protobuf/Go duration such as `1.5s` or `1m30s`."""
    if not _DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration (examples: 10ms, 1.5s, 2m)")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(
            f"duration {text!r} is too long: Kubernetes accepts at most 2562047h (about 292 years)"
        )
    return seconds


def check_route_duration(text: str) -> str:
    """Istio rejects route durations below 1ms or with sub-millisecond parts."""
    seconds = parse_duration(text)
    if seconds < 1e-3:
        raise ValueError(f"duration {text!r} must be at least 1ms")
    if abs(round(seconds * 1000) - seconds * 1000) > 1e-6:
        raise ValueError(f"duration {text!r} must be a whole number of milliseconds")
    return text


class StringMatch(Strict):
    """Istio's validateStringMatch: a non-empty prefix (Envoy's StringMatcher wants one) and a
    regex RE2 compiles; used for scheme, method, authority, headers and queryParams."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    _empty_prefix_ok: ClassVar[bool] = False
    _star_regex_ok: ClassVar[bool] = False

    @model_validator(mode="after")
    def _one_of(self) -> StringMatch:
        chosen = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"set only one of exact, prefix, regex (got {', '.join(chosen)})")
        if self.prefix == "" and not self._empty_prefix_ok:
            raise ValueError("prefix string match should not be empty (omit the match instead)")
        if self.regex is not None and not (self._star_regex_ok and self.regex == "*"):
            check_regex(self.regex, "regex")
        return self


class UriMatch(StringMatch):
    """validateStringMatchRegexp: Envoy's path prefix may be empty, so only the regex counts."""

    _empty_prefix_ok: ClassVar[bool] = True


class WithoutHeaderMatch(StringMatch):
    """withoutHeaders: `regex: "*"` is not RE2, istiod turns it into a presence match."""

    _star_regex_ok: ClassVar[bool] = True


class PortSelector(Strict):
    number: int = Field(ge=1, le=65535)


class IstioMeta(ObjectMeta):
    """Istio's kinds are custom resources: a name is a DNS-1123 subdomain (dots allowed), as
    for any object; only Gateways are stricter (GatewayMeta)."""


class GatewayMeta(ObjectMeta):
    """Istio's ValidateGateway: "Gateway name must conform to the DNS label format (no dots)"
    (pkg/config/validation/validation.go)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_dns1123_label(value, "Gateway name")


_HOST = re.compile(
    r"^(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?)$"
)


def check_host(value: str, what: str = "host") -> str:
    """A DNS name, maybe with a leading `*.` wildcard, or `*` (Istio's ValidateWildcardDomain)."""
    if len(value) > 255 or not _HOST.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not a valid host name "
            "(examples: reviews.default.svc.cluster.local, *.example.com)"
        )
    return value


def check_namespaced_host(value: str, what: str = "host") -> str:
    """`[namespace/]host` as Gateway servers and Sidecar egress write them."""
    namespace, slash, host = value.rpartition("/")
    if slash and namespace not in (".", "*", "~"):
        check_dns1123_label(namespace, f"namespace of {what}")
    if host != "*":
        check_host(host, what)
    return value  # the `ns/` stays: it says which namespaces may bind the host
