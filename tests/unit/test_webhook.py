"""What Istio's validating webhook refuses is refused at load time, at its line, with a message
that teaches; what it accepts (and a sidecar runs) still loads, and translates as istiod does.

Each bad case is one VirtualService whose offending line carries `#<`: the error must be
reported on that line (pydantic locates a bad key, a bad value, or the object that is wrong).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.errors import InputError, InputErrors
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import Forward, MeshPlan, build_plan

APPS = Path(__file__).resolve().parents[1] / "data" / "mesh" / "apps.yaml"
HOST = "fleetman-staff-service"


def vs(http: str) -> str:
    """A VirtualService for the staff service whose `http:` list is `http`."""
    return (
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata:\n"
        "  name: staff\n"
        "spec:\n"
        f"  hosts: [{HOST}]\n"
        "  http:\n" + textwrap.indent(textwrap.dedent(http).strip("\n"), "  ") + "\n"
    )


TO_STAFF = f"route: [{{destination: {{host: {HOST}}}}}]"
SPLIT = f"""route:
    - destination: {{host: {HOST}}}
      weight: 50
    - destination: {{host: {HOST}}}
      weight: 50"""

# case id -> (http list with the bad line marked `#<`, a fragment of the message)
BAD = {
    "regex-unbalanced": (
        f"""
        - match:
          - uri: {{regex: "/api/(v1"}}  #<
          {TO_STAFF}
        """,
        "missing ): /api/(v1; Istio uses RE2 style regex",
    ),
    "regex-lookahead": (
        f"""
        - match:
          - headers:
              x-user: {{regex: "(?!admin).*"}}  #<
          {TO_STAFF}
        """,
        "invalid perl operator: (?!",
    ),
    "regex-backreference": (
        f"""
        - match:
          - queryParams:
              q: {{regex: "(a)\\\\1"}}  #<
          {TO_STAFF}
        """,
        "invalid escape sequence",
    ),
    "regex-repeat-too-big": (
        f"""
        - match:
          - authority: {{regex: "a{{1001}}"}}  #<
          {TO_STAFF}
        """,
        "invalid repetition size",
    ),
    "regex-star-in-headers": (
        f"""
        - match:
          - headers:
              x-a: {{regex: "*"}}  #<
          {TO_STAFF}
        """,
        "no argument for repetition operator",
    ),
    "regex-empty": (
        f"""
        - match:
          - method: {{regex: ""}}  #<
          {TO_STAFF}
        """,
        "regex string match should not be empty",
    ),
    "regex-too-long": (
        f"""
        - match:
          - uri: {{regex: "/{"a" * 1100}"}}  #<
          {TO_STAFF}
        """,
        "regex is too large (1101 characters), Istio allows at most 1024",
    ),
    "regex-program-too-big": (
        f"""
        - match:
          - uri: {{regex: "{"[a-z]{1000}" * 40}"}}  #<
          {TO_STAFF}
        """,
        "over the 32768 a sidecar accepts",
    ),
    "uri-rewrite-regex": (
        f"""
        - {TO_STAFF}
          rewrite:
            uriRegexRewrite: {{match: "(", rewrite: "/"}}  #<
        """,
        "uriRegexRewrite.match: missing )",
    ),
    "empty-method-prefix": (
        f"""
        - match:
          - method: {{prefix: ""}}  #<
          {TO_STAFF}
        """,
        "prefix string match should not be empty",
    ),
    "match-header-name-space": (
        f"""
        - match:
          - headers:
              "x user": {{exact: a}}  #<
          {TO_STAFF}
        """,
        "header name 'x user' is not a valid header name",
    ),
    "weight-over-int32": (
        f"""
        - route:
          - destination: {{host: {HOST}}}
            weight: 3000000000  #<
          - destination: {{host: {HOST}}}
            weight: 1
        """,
        "weight 3000000000 is over 2147483647, the CRD's int32 limit",
    ),
    "weights-sum-over-uint32": (
        f"""
        - route:  #<
          - destination: {{host: {HOST}}}
            weight: 2000000000
          - destination: {{host: {HOST}}}
            weight: 2000000000
          - destination: {{host: {HOST}}}
            weight: 2000000000
        """,
        "total destination weight 6000000000 is over 4294967295",
    ),
    "timeout-beyond-go-durations": (
        f"""
        - {TO_STAFF}
          timeout: 400000000000s  #<
        """,
        "is too long: Kubernetes accepts at most 2562047h",
    ),
    "per-try-timeout-below-1ms": (
        f"""
        - {TO_STAFF}
          retries:
            attempts: 2
            perTryTimeout: 500us  #<
        """,
        "must be at least 1ms",
    ),
    "fault-delay-too-long": (
        f"""
        - {TO_STAFF}
          fault:
            delay:
              fixedDelay: 9999999999s  #<
              percentage: {{value: 10}}
        """,
        "is too long",
    ),
    "retry-attempts-over-int32": (
        f"""
        - {TO_STAFF}
          retries:
            attempts: 5000000000  #<
        """,
        "attempts 5000000000 is over 2147483647",
    ),
    "retry-options-with-zero-attempts": (
        f"""
        - {TO_STAFF}
          retries:
            attempts: 0  #<
            perTryTimeout: 2s
        """,
        "http retry policy configured when attempts are set to 0",
    ),
    "set-pseudo-header": (
        f"""
        - {TO_STAFF}
          headers:
            request:
              set:
                ":path": /other  #<
        """,
        "invalid header ':path': header cannot have ':' prefix",
    ),
    "remove-host": (
        f"""
        - {TO_STAFF}
          headers:
            request:
              remove: [host]  #<
        """,
        "cannot set Host header",
    ),
    "response-set-host": (
        f"""
        - {TO_STAFF}
          headers:
            response:
              set:
                host: x  #<
        """,
        "cannot set Host header",
    ),
    "destination-response-pseudo-header": (
        f"""
        - route:
          - destination: {{host: {HOST}}}
            headers:
              response:
                add:
                  ":status": "500"  #<
        """,
        "header cannot have ':' prefix",
    ),
    "header-value-control-character": (
        f"""
        - {TO_STAFF}
          headers:
            request:
              set:
                x-a: "line\\nbreak"  #<
        """,
        "contains a control character",
    ),
    "header-value-lone-percent": (
        f"""
        - {TO_STAFF}
          headers:
            response:
              set:
                x-discount: "100%"  #<
        """,
        "un-escaped %; Envoy reads %NAME% as a variable (e.g. %HOSTNAME%), write %% for a literal",
    ),
    "header-value-unterminated-variable": (
        f"""
        - {TO_STAFF}
          headers:
            request:
              add:
                x-a: "a%b"  #<
        """,
        "un-terminated variable expression",
    ),
    "authority-set-twice": (
        f"""
        - {TO_STAFF}
          headers:
            request:  #<
              set: {{host: a.example}}
              add: {{":authority": b.example}}
        """,
        "authority header cannot be set multiple times",
    ),
    "authority-rewrite-and-header": (
        f"""
        - {TO_STAFF}  #<
          rewrite: {{authority: a.example}}
          headers:
            request:
              set: {{host: b.example}}
        """,
        "authority header cannot be set multiple times: rewrite.authority",
    ),
    "rewrite-nothing": (
        f"""
        - {TO_STAFF}
          rewrite: {{}}  #<
        """,
        "rewrite must specify at least one of uri, uriRegexRewrite, authority",
    ),
    "rewrite-uri-newline": (
        f"""
        - {TO_STAFF}
          rewrite: {{uri: "/a\\nb"}}  #<
        """,
        "rewrite uri '/a\\nb' contains NUL, CR or LF",
    ),
    "redirect-code-not-3xx": (
        """
        - redirect: {uri: /new, redirectCode: 200}  #<
        """,
        "200 is not a valid redirect code, must be 3xx",
    ),
    "redirect-nowhere": (
        """
        - redirect: {redirectCode: 302}  #<
        """,
        "redirect must specify uri, authority, scheme, or port",
    ),
    "redirect-scheme": (
        """
        - redirect: {uri: /new, scheme: ftp}  #<
        """,
        'invalid redirect scheme, must be "http" or "https"',
    ),
    "redirect-with-rewrite": (
        """
        - redirect: {uri: /new}  #<
          rewrite: {uri: /x}
        """,
        "cannot also have fault or rewrite",
    ),
    "direct-response-over-1mb": (
        f"""
        - directResponse:
            status: 200  #<
            body: {{string: "{"x" * (1024 * 1024 + 1)}"}}
        """,
        "directResponse body must be less than 1MB",
    ),
}


def _errors(tmp_path: Path, text: str) -> list[InputError]:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_manifests([path], "default")
    exc = caught.value
    return list(exc.errors) if isinstance(exc, InputErrors) else [exc]


@pytest.mark.parametrize("case", list(BAD))
def test_webhook_refusals_name_the_line_and_teach(tmp_path: Path, case: str) -> None:
    http, fragment = BAD[case]
    text = vs(http)
    marked = [i for i, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith("#<")]
    assert len(marked) == 1
    (error,) = _errors(tmp_path, text)
    assert fragment in error.message, error
    assert error.location is not None, error
    assert error.location.line == marked[0], error


def plan_of(tmp_path: Path, http: str) -> MeshPlan:
    path = tmp_path / "rules.yaml"
    path.write_text(vs(http), encoding="utf-8")
    return build_plan(load_manifests([APPS, path], "default"), "default")


# What Istio accepts must still load (and, in test_envoy_accepts_..., run in Envoy).
ACCEPTED = f"""
- match:
  - uri: {{regex: "/[a-z]{{200}}"}}
    headers:
      "@request.auth.claims.group": {{exact: admin}}
      ":method": {{exact: GET}}
    withoutHeaders:
      x-debug: {{regex: "*"}}
  {TO_STAFF}
  headers:
    response:
      set: {{x-served-by: "%HOSTNAME%", x-discount: "100%%", x-up: "%UPSTREAM_HOST%"}}
- match:
  - uri: {{prefix: ""}}
    headers:
      x-canary: {{exact: "yes"}}
  {SPLIT.replace("weight: 50", "weight: 2147483647", 1)}
- match:
  - uri: {{prefix: /new-host}}
  {TO_STAFF}
  headers:
    request:
      set: {{host: new.example, x-a: b}}
- match:
  - uri: {{prefix: /per-destination}}
  route:
  - destination: {{host: {HOST}}}
    weight: 50
    headers:
      request:
        add: {{":authority": a.example}}
  - destination: {{host: {HOST}}}
    weight: 50
- match:
  - uri: {{prefix: /big}}
  directResponse:
    status: 200
    body: {{string: "{"x" * 5000}"}}
- match:
  - uri: {{prefix: /old}}
  rewrite: {{uri: "new"}}
  {TO_STAFF}
"""


def test_what_istio_accepts_still_loads_and_translates_as_istiod(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, ACCEPTED)
    (vhost,) = [v for v in plan.route_tables["8080"] if v.service and v.service.name == HOST]
    routes = vhost.routes
    assert routes[0].match.path.value == "/[a-z]{200}"
    # host/:authority in headers.request is istiod's host rewrite, never a header Envoy refuses
    assert routes[2].authority_rewrite == "new.example"
    assert routes[2].request_headers.set == (("x-a", "b"),)
    forward = routes[3].action
    assert isinstance(forward, Forward)
    assert forward.targets[0].authority_rewrite == "a.example"
    assert forward.targets[0].request_headers.add == ()
    assert routes[5].prefix_rewrite == "new"


@pytest.mark.envoy
def test_what_istio_accepts_envoy_accepts(tmp_path: Path) -> None:
    """Big RE2 programs, host rewrites from headers, a 5 KB direct response, %% and
    %HOSTNAME%: valid Envoy config as meshlab renders them (Envoy's own verdict)."""
    from meshlab.backends.embedded.envoy.binary import find_envoy
    from meshlab.backends.embedded.envoy.validate import EnvoyValidation

    with EnvoyValidation(find_envoy(), plan_of(tmp_path, ACCEPTED), tmp_path) as check:
        check.result()


def test_bootstrap_carries_istios_limits_only_when_used(tmp_path: Path) -> None:
    config = render_bootstrap(plan := plan_of(tmp_path, ACCEPTED), placeholder_addresses(plan))
    (layer,) = config["layered_runtime"]["layers"]
    assert layer["static_layer"] == {"re2.max_program_size.error_level": "32768"}
    route_config = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"
    ]["route_config"]
    assert route_config["max_direct_response_body_size_bytes"] == 1024 * 1024
    weighted = next(
        r["route"]["weighted_clusters"]["clusters"]
        for v in route_config["virtual_hosts"]
        for r in v["routes"]
        if r.get("match", {}).get("prefix") == "/per-destination"
    )
    assert weighted[0]["host_rewrite_literal"] == "a.example"
    plain = plan_of(tmp_path, f"- {TO_STAFF}")
    assert "layered_runtime" not in render_bootstrap(plain, placeholder_addresses(plain))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("foo", None),
        ("%HOSTNAME%", None),
        ("100%%", None),
        ("prefix %HOSTNAME% suffix", None),
        ("%REQ(x-a)%", None),
        ('%PER_REQUEST_STATE(["a", "b"])%', None),
        ("abc%123", "un-terminated variable expression"),
        ("%START_TIME%%", "un-escaped %"),
        ('%X(["a" x])%', "expecting ',', ']', or whitespace"),
        ("%X(a) y%", "expecting '%' or whitespace"),
    ],
)
def test_header_value_syntax_as_istio_reads_it(value: str, problem: str | None) -> None:
    """The examples of Istio's ValidateHTTPHeaderValue doc comment, and each error branch."""
    from meshlab.load.istio.webhook import check_header_value

    if problem is None:
        assert check_header_value(value) == value
    else:
        with pytest.raises(ValueError, match=re.escape(problem)):
            check_header_value(value)
