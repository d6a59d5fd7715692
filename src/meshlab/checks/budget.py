"""The checks' budgets, refused before anything starts: how many checks, how many `expect`
buckets, and the requests each check may send (its fixed N, or its sequential test's cap).
And, once the manifests are known, what a check's request names in them (`request.from`,
`by.service`: meshlab.checks.origins).

Why before: a check whose test needs more requests than its budget can only end
"inconclusive: budget" after spending the whole budget; saying so at once (exit 2, with the
check's file:line) saves the run and tells the instructor which flag to raise.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshlab.checks.base import Check, registry
from meshlab.checks.origins import check_origin, client_plan
from meshlab.checks.split import SampledSpec
from meshlab.checks.stats import Design
from meshlab.errors import ErrorCollector, InputError
from meshlab.load.budgets import Budgets, flag_for, over
from meshlab.load.manifests import Resource
from meshlab.mesh.plan import MeshPlan


def refuse_checks(
    checks: Sequence[Check],
    plan: MeshPlan,
    budgets: Budgets,
    design: Design | None = None,
    override: int | None = None,
    resources: Sequence[Resource] | None = None,
) -> None:
    """InputError(s) for every check over budget, all reported together. With `resources`
    (the lab's manifests), also every check whose request names what the lab lacks, and a
    workload's own plan sizes the checks sent from it."""
    if len(checks) > budgets.checks:
        first_over = checks[budgets.checks]
        raise over(
            "checks",
            f"{len(checks)} checks in lab.yaml "
            f"({first_over.name!r} is number {budgets.checks + 1})",
            budgets.checks,
            first_over.location,
        )
    if override is not None and override > budgets.check_requests:
        raise InputError(
            f"--requests {override} is over the budget: the limit is {budgets.check_requests} "
            f"requests per check ({flag_for('check_requests')})"
        )
    errors = ErrorCollector()
    for check in checks:
        with errors.collecting():
            client = plan
            spec = check.spec
            if resources is not None and isinstance(spec, SampledSpec):
                check_origin(spec.request, spec.hop, resources, plan, check.locate)
                client = client_plan(spec.request.origin, resources, plan)
            _refuse_check(check, client, budgets, design or Design(), override)
    errors.raise_if_any()


def _refuse_check(
    check: Check, plan: MeshPlan, budgets: Budgets, design: Design, override: int | None
) -> None:
    expect = check.raw.get("expect")
    if isinstance(expect, dict) and len(expect) > budgets.expect_buckets:
        raise over(
            "expect_buckets",
            f"check {check.name!r} expects {len(expect)} buckets",
            budgets.expect_buckets,
            check.locate("expect"),
        )
    limit = budgets.check_requests
    planned = registry()[check.kind].planned_requests(check, plan, design, override, limit)
    if planned is None or planned <= limit:
        return
    fixed = override is not None or isinstance(check.raw.get("requests"), int)
    keyed = [k for k in ("keys", "per_key") if isinstance(check.raw.get(k), int)]
    if keyed and not fixed:  # kind: sticky, its numbers as the lab fixes them
        where = check.locate(keyed[0])
        found = f"check {check.name!r} asks for {planned:,} requests (keys × per_key)"
    elif fixed:
        where = check.locate("requests") if override is None else check.location
        found = f"check {check.name!r} asks for {planned} requests"
    else:
        where = check.locate("expect") if "expect" in check.raw else check.location
        found = (
            f"check {check.name!r}: its split cannot be judged within the budget (the "
            f"sequential test may need up to {planned:,} requests: the smaller a share, the "
            "more requests it takes to tell it from half of it)"
        )
    raise over("check_requests", found, limit, where)
