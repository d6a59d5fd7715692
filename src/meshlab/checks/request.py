"""A check's request as lab.yaml writes it (`request:`): URL, method, headers, and where it
starts (`from:`). Validated strictly, as a client library and Envoy would accept it, so a
mistake is an error at its line before anything starts (exit 2), never a backend crash."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Discriminator, Field, Tag, field_validator

from meshlab.checks.base import CheckSpec
from meshlab.load.schema import Strict
from meshlab.mesh.request import MESH, Origin, ProbeRequest

_METHODS = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ORIGIN_WORDS = ("mesh", "browser", "no-sidecar")
_FROM_HELP = "mesh (the default), browser, no-sidecar or {workload: NAME}"
# A Deployment or Pod name (DNS-1123 subdomain), optionally `namespace/name`.
_WORKLOAD = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)

# What a client library and Envoy accept on the wire: printable ASCII URLs of a sane size
# (Envoy refuses request headers over 60 KiB), RFC 9110 header names (tokens) and values.
MAX_URL_LENGTH = 8192
MAX_HEADER_VALUE = 8192
MAX_HEADERS = 64
_URL_CHARS = re.compile(r"[!-~]+")  # printable ASCII, no spaces: percent-encode the rest
_HOSTNAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[ \t!-~]*")
_SET_BY_THE_CLIENT = {"host", "content-length", "transfer-encoding", "connection"}


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:60] + "...")


class WorkloadFrom(Strict):
    """`from: {workload: webapp}`: the request leaves that workload's pod, through its sidecar."""

    workload: str

    @field_validator("workload")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > 317 or not _WORKLOAD.fullmatch(value):
            raise ValueError(
                f"{_shown(value)} is not a Deployment or Pod name (such as webapp, or "
                "namespace/name): lowercase letters, digits, '-' and '.'"
            )
        return value


# A tag with "[" is read as a union member's name by meshlab.load.schema, so an error inside
# the mapping is reported at its own key (`request.from.workload`), not at a member's name.
MAPPING = "mapping[fields]"


def word_or_mapping(value: Any) -> str:
    """Which form of a `word | {mapping}` field the YAML value is: only that form's errors
    are reported (pydantic would otherwise report both forms' complaints)."""
    return MAPPING if isinstance(value, dict | Strict) else "str"


def _origin_word(value: Any) -> Any:
    """Any spelling but the three words and a mapping is refused with the choices spelt out
    (pydantic's own union message would list Python types)."""
    if isinstance(value, dict) or value in ORIGIN_WORDS:
        return value
    shown = _shown(value) if isinstance(value, str) else type(value).__name__
    raise ValueError(f"{shown} is not where a request can start: {_FROM_HELP}")


class RequestSpec(Strict):
    url: str
    method: _METHODS = "GET"
    headers: dict[str, str] = Field(default={}, max_length=MAX_HEADERS)
    # `from` is a Python keyword: the field is `from_`, lab.yaml spells it `from`
    from_: Annotated[
        Annotated[Literal["mesh", "browser", "no-sidecar"], Tag("str")]
        | Annotated[WorkloadFrom, Tag(MAPPING)],
        Discriminator(word_or_mapping),
    ] = Field(default="mesh", alias="from")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if len(value) > MAX_URL_LENGTH:
            raise ValueError(f"url is {len(value)} characters; at most {MAX_URL_LENGTH}")
        if not _URL_CHARS.fullmatch(value):
            raise ValueError(
                f"url {_shown(value)} must be printable ASCII without spaces "
                "(percent-encode the rest: a space is %20)"
            )
        parts = urlsplit(value)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"url {_shown(value)} must look like http://service:port/path")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError(f"url {_shown(value)}: the port must be a number from 1 to 65535")
        host = parts.hostname
        if not (_HOSTNAME.fullmatch(host) or _is_ip(host)) or len(host) > 253:
            raise ValueError(
                f"url {_shown(value)}: {_shown(host)} is not a host name "
                "(a Service name such as fleetman-staff-service, or a DNS name)"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(
                    f"header name {_shown(name)} must be a token: letters, digits and "
                    "!#$%&'*+-.^_`|~ (no spaces, colons or control characters)"
                )
            if name.lower().startswith("x-meshlab-"):
                raise ValueError(
                    f"header {name!r}: x-meshlab-* headers are meshlab's own bookkeeping "
                    "(which pod answered, which calls were behind it); a request cannot set them"
                )
            if name.lower() in _SET_BY_THE_CLIENT:
                raise ValueError(
                    f"header {name!r} is set by the client from the url; put the host in url"
                )
            if len(text) > MAX_HEADER_VALUE or not _HEADER_VALUE.fullmatch(text):
                raise ValueError(
                    f"header {name}: value {_shown(text)} must be printable ASCII "
                    f"(at most {MAX_HEADER_VALUE} characters, no control characters)"
                )
        return value

    @field_validator("from_", mode="before")
    @classmethod
    def _from(cls, value: Any) -> Any:
        return _origin_word(value)

    @property
    def origin(self) -> Origin:
        if isinstance(self.from_, WorkloadFrom):
            return Origin("workload", self.from_.workload)
        return MESH if self.from_ == "mesh" else Origin(self.from_)

    def probe(self) -> ProbeRequest:
        return ProbeRequest(self.url, self.method, dict(self.headers), self.origin)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class RequestedSpec(CheckSpec):
    """A check kind whose requests are all shaped by its `request:` (and so start at its
    `from:`): what lets a run know where its requests can start (pipeline.py)."""

    request: RequestSpec
