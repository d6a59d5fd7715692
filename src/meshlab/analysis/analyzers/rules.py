"""The order of HTTP rules: what is never used (IST0130, IST0131 as Istio's webhook warns;
ML0108 for a rule after a catch-all `match`, which Istio's check does not see)."""

from __future__ import annotations

import json

from meshlab.analysis import messages as msg
from meshlab.analysis.analyzers.routes import rule_name
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.names import catch_all as catch_all_reason
from meshlab.mesh.names import resolve_host

_FILTERS = ("port", "sourceLabels", "gateways", "sourceNamespace")
_CONDITIONS = ("scheme", "method", "authority", "headers", "queryParams", "withoutHeaders")


def _as_json(match: istio.HTTPMatchRequest) -> str:
    data = match.model_dump(mode="json", exclude_unset=True)
    data.pop("name", None)  # the name labels a match; it does not change what it matches
    return json.dumps(data, sort_keys=True)


def _covers(earlier: istio.HTTPMatchRequest, later: istio.HTTPMatchRequest) -> bool:
    """Istio's check: a later uri exact/prefix inside an earlier shorter prefix, all else equal
    (a missing method counting as GET)."""
    if earlier.uri is None or later.uri is None or earlier.uri.prefix is None:
        return False
    later_path = later.uri.prefix if later.uri.prefix is not None else later.uri.exact
    if later_path is None or not later_path.startswith(earlier.uri.prefix):
        return False
    skip = {"uri", "name", "method"}
    a = earlier.model_dump(mode="json", exclude=skip)
    b = later.model_dump(mode="json", exclude=skip)
    return a == b and _method(earlier) == _method(later)


def _method(match: istio.HTTPMatchRequest) -> str:
    if match.method is None:
        return json.dumps({"exact": "GET"})
    return json.dumps(match.method.model_dump(mode="json", exclude_none=True), sort_keys=True)


def _match_name(index: int, match: istio.HTTPMatchRequest) -> str:
    return f"[{index}]" + (f' "{match.name}"' if match.name else "")


def _unreachable(
    ctx: Context, vs: Resource, index: int, rule: str, hosts: list[str], reason: str, hint: str
) -> None:
    """IST0130 for rule `index`: an earlier rule without match always takes its requests."""
    location = vs.locate("spec", "http", index)
    ctx.report(msg.UNREACHABLE_RULE(vs, location, rule=rule, reason=reason, hint=hint, hosts=hosts))


def _raw_rules(ctx: Context, vs: Resource, section: str) -> None:
    """tcp and tls rules, as Istio's analyzeUnreachableTCPRules / analyzeUnreachableTLSRules
    (pkg/config/validation/validation.go): a second rule without match, rules after it,
    matches the same as an earlier one (in this rule or before), rules all of whose matches are.
    meshlab does not model these routes, so they are read as written."""
    rules = getattr(vs.body.spec, section) or []
    if not isinstance(rules, list):
        return
    hosts = [resolve_host(h, vs.namespace) for h in vs.body.spec.hosts]
    seen: dict[str, int] = {}
    empty: int | None = None
    for i, rule in enumerate(rules):
        matches = rule.get("match") if isinstance(rule, dict) else None
        name = f"{section}[{i}]"
        if not matches or not isinstance(matches, list):
            if empty is not None:
                reason = f"only the last rule can have no match ({section}[{empty}] has none)"
                ctx.report(
                    msg.UNREACHABLE_RULE(
                        vs, vs.locate("spec", section, i), rule=name, reason=reason, hosts=hosts
                    )
                )
            empty = i
            continue
        if empty is not None:
            reason = f"{section}[{empty}] before it has no match and takes every connection"
            ctx.report(
                msg.UNREACHABLE_RULE(
                    vs, vs.locate("spec", section, i), rule=name, reason=reason, hosts=hosts
                )
            )
            continue
        duplicates = 0
        for j, match in enumerate(matches):
            key = json.dumps(match, sort_keys=True)
            if key in seen:
                duplicates += 1
                ctx.report(
                    msg.INEFFECTIVE_MATCH(
                        vs,
                        vs.locate("spec", section, i, "match", j),
                        match=f"[{j}]",
                        rule=name,
                        reason=f"it is the same as a match of {section}[{seen[key]}]",
                    )
                )
            else:
                seen[key] = i
        if duplicates == len(matches):
            ctx.report(
                msg.UNREACHABLE_RULE(
                    vs,
                    vs.locate("spec", section, i),
                    rule=name,
                    reason="all its matches are used by earlier rules",
                    hosts=hosts,
                )
            )


class UnreachableRulesAnalyzer(Analyzer):
    metadata = Metadata(
        name="virtualservice.UnreachableRulesAnalyzer",
        description="HTTP rules and matches that an earlier rule always takes first",
        inputs=("VirtualService",),
    )

    def analyze(self, ctx: Context) -> None:
        for vs in ctx.of_kind("VirtualService"):
            self._rules(ctx, vs)
            for section in ("tcp", "tls"):
                _raw_rules(ctx, vs, section)

    def _rules(self, ctx: Context, vs: Resource) -> None:
        spec: istio.VirtualServiceSpec = vs.body.spec
        hosts = [resolve_host(h, vs.namespace) for h in spec.hosts]
        seen: dict[str, int] = {}
        earlier: list[istio.HTTPMatchRequest] = []
        empty_rule: int | None = None
        catch_all: tuple[int, str] | None = None
        for i, http in enumerate(spec.http):
            name = rule_name(i, http)
            at = ("spec", "http", i)
            first = rule_name(empty_rule, spec.http[empty_rule]) if empty_rule is not None else ""
            if not http.match:
                if empty_rule is not None:
                    _unreachable(
                        ctx,
                        vs,
                        i,
                        name,
                        hosts,
                        f"only the last rule can have no match ({first} has none)",
                        "a rule without match takes every request: move it last",
                    )
                elif catch_all is not None:
                    self._after_catch_all(ctx, vs, i, name, catch_all, spec)
                empty_rule = i
                continue
            if empty_rule is not None:
                _unreachable(
                    ctx,
                    vs,
                    i,
                    name,
                    hosts,
                    f"{first} before it has no match and takes every request",
                    "put rules with a match (headers, uri...) before the rule without match",
                )
                continue
            duplicates = 0
            for j, match in enumerate(http.match):
                key = _as_json(match)
                if key in seen:
                    duplicates += 1
                    ctx.report(
                        msg.INEFFECTIVE_MATCH(
                            vs,
                            vs.locate(*at, "match", j),
                            match=_match_name(j, match),
                            rule=name,
                            reason="it is the same as a match of "
                            + rule_name(seen[key], spec.http[seen[key]]),
                        )
                    )
                    continue
                covering = next((e for e in earlier if _covers(e, match)), None)
                if covering is not None and covering.uri is not None:
                    ctx.report(
                        msg.INEFFECTIVE_MATCH(
                            vs,
                            vs.locate(*at, "match", j),
                            match=_match_name(j, match),
                            rule=name,
                            reason=f"an earlier match with uri prefix {covering.uri.prefix!r} "
                            "already takes these requests",
                        )
                    )
                seen[key] = i
            if duplicates == len(http.match):
                ctx.report(
                    msg.UNREACHABLE_RULE(
                        vs,
                        vs.locate(*at),
                        rule=name,
                        reason="all its matches are used by earlier rules",
                        hosts=hosts,
                    )
                )
                continue
            if catch_all is not None:
                self._after_catch_all(ctx, vs, i, name, catch_all, spec)
                continue
            earlier += http.match
            why = next((w for m in http.match if (w := catch_all_reason(m))), None)
            if why is not None:
                catch_all = (i, why)

    @staticmethod
    def _after_catch_all(
        ctx: Context,
        vs: Resource,
        index: int,
        name: str,
        catch_all: tuple[int, str],
        spec: istio.VirtualServiceSpec,
    ) -> None:
        first, why = catch_all
        ctx.report(
            msg.RULE_AFTER_CATCH_ALL(
                vs,
                vs.locate("spec", "http", index),
                rule=name,
                earlier=rule_name(first, spec.http[first]),
                why=why,
                hosts=[resolve_host(h, vs.namespace) for h in spec.hosts],
                hint="order rules from the most specific match to the catch-all",
            )
        )
