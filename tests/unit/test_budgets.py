"""Budgets: each one refused before start with its message (file:line, the limit, the flag),
and the ones spent while running end a check "inconclusive: budget" while the run goes on."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from meshlab.backends.fake import FakeBackend, weighted_pods
from meshlab.checks import registry
from meshlab.checks.ledger import CheckBudget, RunLedger
from meshlab.checks.stats import sequential_cap, sequential_cap_estimate
from meshlab.errors import InputError
from meshlab.load.budgets import Budgets, flag_for
from meshlab.mesh import registry as mesh_registry
from meshlab.options import RunSettings
from meshlab.pipeline import RunOptions, prepare, run_lab

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"


def lab_copy(tmp_path: Path) -> Path:
    lab = tmp_path / "lab"
    shutil.copytree(LAB2, lab)
    return lab


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, count))


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def refusal(lab: Path, budgets: Budgets | None = None, requests: int | None = None) -> str:
    with pytest.raises(InputError) as caught:
        prepare(lab, budgets, requests=requests)
    return str(caught.value)


# --- refused before start ------------------------------------------------------------------


def test_replicas_over_the_pod_budget_name_the_deployment_and_line(tmp_path: Path) -> None:
    lab = lab_copy(tmp_path)
    edit(lab / "fleetman.yaml", "replicas: 1", "replicas: 5000")
    line = line_of(lab / "fleetman.yaml", "replicas: 5000")
    message = refusal(lab)
    assert re.search(
        rf"fleetman\.yaml:{line}:\d+: error: 5006 pods requested \(by 7 objects, the most "
        rf"Deployment default/\S+, fleetman\.yaml:{line}: replicas: 5000\); the limit is 64 "
        r"\(--max-pods\)",
        message,
    ), message


def test_absurd_replicas_are_refused_before_any_pod_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = lab_copy(tmp_path)
    # (past 2^63 the YAML loader refuses the number itself; this one is a valid int64)
    edit(lab / "fleetman.yaml", "replicas: 1", "replicas: 1000000000000000000")

    def no_pods(*args: object) -> None:
        raise AssertionError("pods were built before the budget was checked")

    monkeypatch.setattr(mesh_registry, "_pods_of", no_pods)
    assert "the limit is 64 (--max-pods)" in refusal(lab)


@pytest.mark.parametrize(
    ("budgets", "expected"),
    [
        (Budgets(objects=5), r"14 objects in the manifests \(.* is number 6\); the limit is 5 "),
        (Budgets(services=2), r"5 Services \(Service default/\S+ is number 3\); the limit is 2 "),
        (Budgets(manifest_bytes=1000), r"the lab's files are \d+ bytes .*the limit is 1000 "),
        (Budgets(pods=3), r"7 pods requested .*; the limit is 3 \(--max-pods\)"),
    ],
)
def test_each_object_budget_refuses_with_its_message(
    tmp_path: Path, budgets: Budgets, expected: str
) -> None:
    message = refusal(lab_copy(tmp_path), budgets)
    assert re.search(expected, message), message
    assert "over budget: nothing was started" in message


def test_too_many_checks_and_expect_buckets(tmp_path: Path) -> None:
    lab = lab_copy(tmp_path)
    buckets = ", ".join(f"v{i}: 1" for i in range(40))
    (lab / "lab.yaml").write_text(
        "title: budgets\nmanifests: [fleetman.yaml, istio-rules.yaml]\nchecks:\n"
        + "".join(
            f"  - name: c{i}\n    kind: split\n    request: {{url: 'http://fleetman-staff-service"
            f":8080/'}}\n    expect: {{{buckets}}}\n"
            for i in range(3)
        )
    )
    assert re.search(
        r"lab\.yaml:\d+:\d+: error: 3 checks in lab\.yaml \('c2' is number 3\); "
        r"the limit is 2 \(--max-checks\)",
        refusal(lab, Budgets(checks=2)),
    )
    message = refusal(lab)
    assert "check 'c0' expects 40 buckets; the limit is 32 (--max-expect-buckets)" in message
    assert message.count("--max-expect-buckets") >= 3  # every check's, together


def test_fixed_requests_over_budget(tmp_path: Path) -> None:
    lab = lab_copy(tmp_path)
    edit(lab / "lab.yaml", "requests: auto", "requests: 100000000")
    line = line_of(lab / "lab.yaml", "requests: 100000000")
    message = refusal(lab)
    assert re.search(
        rf"lab\.yaml:{line}:\d+: error: check 'canary-split' asks for 100000000 requests; "
        r"the limit is 40000 \(--max-check-requests\)",
        message,
    ), message
    assert "--requests 50000 is over the budget" in refusal(LAB2, requests=50000)


def test_a_split_no_budget_can_judge_is_refused_at_once(tmp_path: Path) -> None:
    """9999/1 needs a cap of 3.8 million requests: refused from the estimate (sizing it
    exactly would take a minute), whether written in `expect` or configured by weights."""
    lab = lab_copy(tmp_path)
    edit(lab / "lab.yaml", "expect: {safe: 90, risky: 10}", "expect: configured")
    edit(lab / "istio-rules.yaml", "weight: 90", "weight: 9999")
    edit(lab / "istio-rules.yaml", "weight: 10", "weight: 1")
    message = refusal(lab)
    assert "its split cannot be judged within the budget" in message
    assert re.search(r"may need up to 3,8\d\d,\d\d\d requests", message), message
    assert "the limit is 40000 (--max-check-requests)" in message
    assert "lab.yaml" in message  # the check's expect line
    # 99/1 (cap 37,690) fits the default budget: the lab prepares.
    edit(lab / "istio-rules.yaml", "weight: 9999", "weight: 99")
    assert prepare(lab).checks


def test_the_cap_estimate_is_close_to_the_exact_cap() -> None:
    for weights in ({"a": 9, "b": 1}, {"a": 99, "b": 1}, {"a": 1, "b": 1}, {"a": 95, "b": 5}):
        exact, estimate = sequential_cap(weights), sequential_cap_estimate(weights)
        assert 0.9 * exact <= estimate <= 1.1 * exact, (weights, exact, estimate)


def test_flags_and_settings_name_every_budget() -> None:
    settings = RunSettings.from_values({"max_pods": "5", "max_check_seconds": "2.5"})
    assert settings.budgets() == Budgets(pods=5, check_seconds=2.5)
    assert settings.run_options().budgets.pods == 5
    assert flag_for("check_requests") == "--max-check-requests"
    with pytest.raises(ValueError, match="--max-run-seconds: 'never' is not a number"):
        RunSettings.from_values({"max_run_seconds": "never"})
    with pytest.raises(ValueError, match="--max-pods must be a positive number"):
        Budgets(pods=0)


# --- spent while running -------------------------------------------------------------------


def two_checks(tmp_path: Path) -> Path:
    lab = lab_copy(tmp_path)
    text = (lab / "lab.yaml").read_text()
    second = text.split("checks:\n", 1)[1].replace("canary-split", "second-split")
    (lab / "lab.yaml").write_text(text + second)
    return lab


def test_run_request_budget_ends_checks_inconclusive_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    backend = FakeBackend(weighted_pods({"safe": 9, "risky": 1}))
    options = RunOptions(budgets=Budgets(run_requests=100))
    report = run_lab(two_checks(tmp_path), options, backend=backend)
    first, second = report.results
    assert (first.outcome, first.passed, first.requests) == ("inconclusive", False, 100)
    assert first.message.startswith(
        "canary-split inconclusive: budget (100 requests in this run; the limit is 100)"
    ), first.message
    assert "--max-run-requests raises the limit" in first.message
    assert first.details["budget"]["flag"] == "--max-run-requests"
    assert (second.outcome, second.passed, second.requests) == ("inconclusive", False, 0)
    assert not report.passed


@pytest.mark.parametrize(
    ("ledger", "reason"),
    [
        (RunLedger(Budgets(check_requests=50)), "50 requests; the limit is 50"),
        (RunLedger(memory_mb=lambda: 1e6), "memory: 1000000 MB; the limit is 3072 MB"),
    ],
)
def test_check_budgets_end_the_check_inconclusive(ledger: RunLedger, reason: str) -> None:
    prepared = prepare(LAB2)
    backend = FakeBackend(weighted_pods({"safe": 9, "risky": 1}))
    check = prepared.checks[0]
    with backend.deploy(prepared.to_deploy()) as mesh:
        context = prepared.context(mesh)
        context.budget = ledger.for_check()
        result = registry()[check.kind].run(check, context)
    assert result.outcome == "inconclusive"
    assert not result.passed
    assert result.message.startswith(f"canary-split inconclusive: budget ({reason})")


def test_a_verdict_reached_when_the_budget_stops_stands() -> None:
    """The sequential test is anytime-valid: a fail seen at the stop is a fail."""
    prepared = prepare(LAB2)
    backend = FakeBackend(weighted_pods({"safe": 1}))  # the canary gets nothing
    check = prepared.checks[0]
    with backend.deploy(prepared.to_deploy()) as mesh:
        context = prepared.context(mesh, requests=400)  # fixed N, stopped at 300
        context.budget = RunLedger(Budgets(run_requests=300)).for_check()
        result = registry()[check.kind].run(check, context)
    assert (result.outcome, result.requests) == ("fail", 300)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_budget_paces_batches_and_stops() -> None:
    clock = Clock()
    ledger = RunLedger(Budgets(check_seconds=10, run_seconds=25), clock=clock)
    budget: CheckBudget = ledger.for_check()
    assert budget.allow(10, None) == (1, None)  # the first request measures the pace
    budget.spent(1)
    clock.now = 3.0
    assert budget.allow(10, 3.0) == (2, None)  # 7 s left: two more 3-second requests
    clock.now = 10.0
    count, stop = budget.allow(10, 3.0)
    assert count == 0
    assert stop is not None
    assert (stop.reason, stop.flag) == ("time: 10.0 s; the limit is 10 s", "--max-check-seconds")
    clock.now = 26.0
    stop = ledger.for_check().allow(10, 3.0)[1]
    assert stop is not None
    assert stop.reason == "time: the run took 26.0 s; the limit is 25 s"


def test_the_memory_reader_loads_while_the_lab_deploys(monkeypatch: pytest.MonkeyPatch) -> None:
    """psutil (the first memory reading's import) is loaded in a thread started just before
    the deployment, whose waits hide it; the checks still read memory as before."""
    import threading

    from meshlab import pipeline

    loaded = threading.Event()
    deploying: list[bool] = []
    monkeypatch.setattr(pipeline, "load_memory_reader", loaded.set)
    backend = FakeBackend(weighted_pods({"safe": 9, "risky": 1}))
    deploy = backend.deploy

    def watched_deploy(lab: object) -> object:
        deploying.append(loaded.wait(5))  # started before the deployment began
        return deploy(lab)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "deploy", watched_deploy)
    report = run_lab(LAB2, RunOptions(requests=20), backend=backend)
    assert deploying == [True]
    assert report.results[0].requests == 20


def test_work_while_deploying_fails_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error there is not the student's to read (whoever needs the work meets it later)."""
    import threading

    from meshlab import pipeline

    reported: list[object] = []
    monkeypatch.setattr(threading, "excepthook", reported.append)
    done = threading.Event()

    def work() -> None:
        done.set()
        raise ImportError("no psutil here")

    pipeline._while_deploying(work)
    assert done.wait(5)
    for thread in threading.enumerate():
        if thread.name == "meshlab-while-deploying":
            thread.join(5)
    assert reported == []
