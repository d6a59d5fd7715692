"""The strings Envoy parses (regexes, header names and values, paths), checked as Istio's
validating webhook checks them, so a mistake stops at `kubectl apply` time with file:line
instead of reaching Envoy and ending the run with Envoy's dump.

Sources (istio/istio): pkg/config/validation/validation.go (validateStringRegexp,
ValidateHTTPHeaderNameOrJwtClaimRoute, ValidateHTTPHeaderWithAuthorityOperationName,
ValidateHTTPHeaderOperationName, ValidateHTTPHeaderValue, validateHTTPRouteDestinations),
header_value_validator.go (validateHeaderValue, a port of Envoy's header_parser.cc), and the
CRD's `format: int32` and `duration(self) >= duration('1ms')` rules
(manifests/charts/base/files/crd-all.gen.yaml).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

# validateStringRegexp: Envoy measures RE2 *program size*; Istio approximates it by length.
MAX_REGEX_LENGTH = 1024
# Istio's bootstrap raises Envoy's RE2 limit to this (pkg/bootstrap/config.go,
# `re2.max_program_size.error_level`); Envoy's own default is 100.
MAX_REGEX_PROGRAM_SIZE = 32768
INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1  # Envoy: the weights of a route's weighted clusters may not sum past it

_TCHARS = "!#$%&'*+-.^_`|~A-Za-z0-9"  # RFC 7230 token, spelled as Istio spells it
_HEADER_NAME = re.compile(f"^[{_TCHARS}]+$")
_PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
_JWT_CLAIM = "@request.auth.claims"
# PGV's HTTP_HEADER_VALUE (strict), as Istio copies it: no control characters but tab.
_HEADER_VALUE = re.compile("^[^\x00-\x08\x0a-\x1f\x7f]*$")
# Envoy's non-strict HTTP_HEADER_VALUE for paths and authorities: no NUL, CR or LF.
_NO_NUL_CR_LF = re.compile("^[^\x00\r\n]*$")


@cache
def _re2_options() -> Any:
    import re2  # google-re2: imported on first use so `meshlab --help` stays fast

    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr; the message goes in our error
    return options


def check_regex(value: str, where: str) -> str:
    """A regex Envoy compiles with RE2 (Istio checks it with Go's regexp, RE2 syntax too)."""
    import re2

    if value == "":
        raise ValueError(f"{where}: regex string match should not be empty")
    if len(value) > MAX_REGEX_LENGTH:
        raise ValueError(
            f"{where}: regex is too large ({len(value)} characters), "
            f"Istio allows at most {MAX_REGEX_LENGTH}"
        )
    try:
        compiled = re2.compile(value, _re2_options())
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"{where}: {reason}; Istio uses RE2 style regex-based match "
            "(https://github.com/google/re2/wiki/Syntax: no lookaround, no backreferences)"
        ) from None
    if compiled.programsize > MAX_REGEX_PROGRAM_SIZE:
        raise ValueError(
            f"{where}: regex compiles to an RE2 program of {compiled.programsize} "
            f"instructions, over the {MAX_REGEX_PROGRAM_SIZE} a sidecar accepts "
            "(Istio's webhook lets it through, Envoy would reject the route): simplify it"
        )
    return value


def check_match_header_name(name: str) -> str:
    """ValidateHTTPHeaderNameOrJwtClaimRoute: an RFC 7230 token, a pseudo-header, or a
    JWT claim; plus lowercase (Envoy matches lowercase names, Istio's analyzer warns)."""
    if name == "":
        raise ValueError("header name cannot be empty")
    if name.startswith(_JWT_CLAIM) or name in _PSEUDO_HEADERS:
        return name
    if not _HEADER_NAME.match(name):
        raise ValueError(
            f"header name {name!r} is not a valid header name "
            "(letters, digits and !#$%&'*+-.^_`|~ only; no spaces, no ':' prefix)"
        )
    if name != name.lower():
        raise ValueError(f"header name {name!r} must be lowercase")
    return name


def is_authority_header(name: str) -> bool:
    """isAuthorityHeader: istiod turns setting these into a host rewrite."""
    return name.lower() in (":authority", "host")


def check_operation_header_name(name: str, *, authority_allowed: bool) -> str:
    """ValidateHTTPHeaderWithAuthorityOperationName (request set/add: `host`/`:authority`
    allowed, they become a host rewrite) or ValidateHTTPHeaderOperationName (everything
    else: `host` and `:`-prefixed names refused; Envoy may not modify them)."""
    if name == "":
        raise ValueError("header name cannot be empty")
    if authority_allowed and is_authority_header(name):
        return name
    if name.lower() == "host":
        raise ValueError(
            f"invalid header {name!r}: cannot set Host header here "
            "(to change the authority sent upstream use rewrite.authority, or set it in "
            "headers.request)"
        )
    if name.startswith(":"):
        raise ValueError(
            f"invalid header {name!r}: header cannot have ':' prefix "
            "(Envoy may not modify pseudo-headers)"
        )
    if not _HEADER_NAME.match(name):
        raise ValueError(f"header name {name!r} is not a valid header name")
    return name


def check_header_value(value: str) -> str:
    """ValidateHTTPHeaderValue: no control characters, and Envoy's `%VAR%` syntax intact
    (a literal percent sign is written `%%`)."""
    if not _HEADER_VALUE.match(value):
        raise ValueError(
            f"header value {value!r} contains a control character "
            "(only printable characters and tab are allowed)"
        )
    problem = _format_problem(value)
    if problem:
        raise ValueError(
            f"header value {value!r}: {problem}; Envoy reads %NAME% as a variable "
            "(e.g. %HOSTNAME%), write %% for a literal percent sign"
        )
    return value


# Istio's validateHeaderValue parser states: character -> next state, and what any other
# character does (stay, move, or an "expecting ..." problem).
_MOVES: dict[str, tuple[dict[str, str], str]] = {
    "literal": ({}, "literal"),
    "name": ({"%": "literal", "(": "array"}, "name"),
    "array": ({"[": "string?", " ": "array"}, "string"),
    "delimiter": (
        {",": "string?", "]": "args-end", " ": "delimiter"},
        "expecting ',', ']', or whitespace",
    ),
    "string?": ({'"': "string", " ": "string?"}, "expecting '\"'"),
    "string": ({")": "end", '"': "delimiter"}, "string"),
    "args-end": ({")": "end", " ": "args-end"}, "expecting ')' or whitespace"),
    "end": ({"%": "literal", " ": "end"}, "expecting '%' or whitespace"),
}


def _format_problem(value: str) -> str | None:
    """Istio's validateHeaderValue (header_value_validator.go), itself a port of Envoy's
    header_parser.cc: `%VAR%`, `%VAR(arg)%`, `%VAR(["a","b"])%`, and `%%` for a literal %."""
    state, pos = "literal", 0
    while pos < len(value):
        ch = value[pos]
        if state == "literal" and ch == "%":
            if pos + 1 == len(value):
                return "un-escaped %"
            if value[pos + 1] == "%":
                pos += 2
                continue
            state = "name"
        elif state == "string" and ch == "\\":
            if pos + 1 == len(value):
                return "un-terminated backslash in JSON string"
            pos += 1
        else:
            moves, default = _MOVES[state]
            state = moves.get(ch, default)
            if state.startswith("expecting"):
                return state
        pos += 1
    return None if state == "literal" else "un-terminated variable expression"


def check_envoy_path(value: str, what: str) -> str:
    """Paths and authorities Envoy copies into headers (prefix_rewrite, path_redirect,
    host_rewrite_literal): its PGV rule refuses NUL, CR and LF. Istio's webhook does not
    look, so a real mesh would have Envoy reject the route; meshlab refuses it here."""
    if not _NO_NUL_CR_LF.match(value):
        raise ValueError(f"{what} {value!r} contains NUL, CR or LF, which Envoy refuses")
    return value
