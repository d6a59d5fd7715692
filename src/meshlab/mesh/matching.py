"""How a sidecar picks what handles a request: the listener by port, the virtual host by the
Host header (Envoy's most specific domain), then the first route whose match holds. One
place, read by the expectations (`expect.py`) and by `meshlab explain`, which also says why
each earlier route did not match.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from meshlab.mesh.model import MeshPlan, RouteMatchPlan, StringMatchPlan, VirtualHostPlan
from meshlab.mesh.names import most_specific, specificity
from meshlab.mesh.request import ProbeRequest
from meshlab.records import dataclass


@dataclass(frozen=True)
class VirtualHostChoice:
    """The virtual host Envoy picks for a request's Host header, and the domain that won, so
    `meshlab explain` can say why this vhost and not another."""

    vhost: VirtualHostPlan
    domain: str  # the domain that named the request's host


def choose_virtual_host(plan: MeshPlan, host: str, port: int) -> VirtualHostChoice | None:
    """Envoy picks the vhost whose domain names the host most specifically (exact, then the
    longest wildcard, `*` last), the order of Istio's host specificity."""
    listener = plan.listener_for(port)
    if listener is None or listener.route_table is None:
        return None
    best: tuple[tuple[int, int], VirtualHostChoice] | None = None
    for vhost in plan.route_tables[listener.route_table]:
        domain = most_specific(host, vhost.domains)
        if domain is not None and (best is None or specificity(domain) < best[0]):
            best = (specificity(domain), VirtualHostChoice(vhost, domain))
    return best[1] if best else None


def virtual_host_for(plan: MeshPlan, host: str, port: int) -> VirtualHostPlan | None:
    choice = choose_virtual_host(plan, host, port)
    return choice.vhost if choice else None


def mismatch(match: RouteMatchPlan, request: ProbeRequest) -> str | None:
    """None when the route's match holds for the request, else why not, in a student's words."""
    parts = urlsplit(request.url)
    path = parts.path or "/"
    if not _string_matches(match.path, path, match.case_sensitive):
        return f"path {path} does not match {describe(match.path)}"
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers.update(
        {
            ":method": request.method,
            ":authority": f"{request.host}:{request.port}" if request.port != 80 else request.host,
            ":scheme": parts.scheme or "http",
            ":path": request.path,
        }
    )
    for header in match.headers:
        value = headers.get(header.name)
        if header.claim is not None:
            if header.invert:
                continue  # an absent claim is not the excluded value
            return (
                f"JWT claim {'.'.join(header.claim)} is never present: no "
                "RequestAuthentication validates a token at the client's sidecar"
            )
        if header.invert and header.match.kind == "present":
            ok = value is None
        elif header.invert:  # treat_missing_header_as_empty: an absent header reads as ""
            ok = not _string_matches(header.match, value or "", True)
        else:
            ok = value is not None and _string_matches(header.match, value, True)
        if not ok:
            wanted = ("not " if header.invert else "") + describe(header.match)
            got = "absent" if value is None else repr(value)
            return f"header {header.name} should be {wanted}, and is {got}"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, matcher in match.query:
        if name not in query or not _string_matches(matcher, query[name], True):
            got = "absent" if name not in query else repr(query[name])
            return f"query parameter {name} should be {describe(matcher)}, and is {got}"
    return None


def describe(matcher: StringMatchPlan) -> str:
    """`prefix "/api"`, `exact "jason"`, `regex "v[12]"`, `present`."""
    return "present" if matcher.kind == "present" else f'{matcher.kind} "{matcher.value}"'


def _string_matches(matcher: StringMatchPlan, value: str, case_sensitive: bool) -> bool:
    if matcher.kind == "present":
        return True
    if matcher.kind == "regex":  # Envoy's safe_regex matches the whole value
        flags = 0 if case_sensitive else re.IGNORECASE
        return re.fullmatch(matcher.value, value, flags) is not None
    left, right = (
        (value, matcher.value) if case_sensitive else (value.lower(), matcher.value.lower())
    )
    return left == right if matcher.kind == "exact" else left.startswith(right)
