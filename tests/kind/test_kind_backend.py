"""The kind backend end to end on fakes: refusals, the whole run of lab 2 through the same
checks and statistics, and teardown on success, failure and Ctrl-C.

Nothing here is a cluster result: the cluster, Istio and the mesh are test doubles, and the
backend describes itself with the fake kube's answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kind_fakes import Events, FakeKube, FakeRunner

from meshlab.backends.embedded.options import EmbeddedOptions
from meshlab.backends.kind import KindBackend, KindOptions
from meshlab.backends.kind.backend import namespace_for
from meshlab.backends.kind.tools import NODE_IMAGE
from meshlab.backends.registry import available_backends, get_backend
from meshlab.errors import BackendError, BackendUnavailable
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import RunOptions, prepare, run_lab

URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


def _namespace(events: Events) -> str:
    return events.matching("create: Namespace ")[0].split()[-1]


def _order(events: Events, *markers: str) -> list[int]:
    """Index of the first event starting with each marker (they must all exist)."""
    return [next(i for i, e in enumerate(events) if e.startswith(m)) for m in markers]


# --- refusing early ----------------------------------------------------------------------


def test_registered_with_its_options(tmp_path: Path) -> None:
    assert available_backends() == ("embedded", "kind")
    options = KindOptions(kubeconfig=tmp_path / "k", keep_cluster=True, keep_namespace=True)
    backend = get_backend("kind", options)
    assert isinstance(backend, KindBackend)
    assert backend.options == KindOptions(
        kubeconfig=tmp_path / "k", keep_cluster=True, keep_namespace=True
    )
    assert get_backend("kind").options == KindOptions()  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        get_backend("kind", EmbeddedOptions())


def test_kind_has_no_notes_of_the_embedded_backend(make, lab2_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The plan's notes say what the embedded backend leaves out; a real mesh does it all."""
    lab = prepare(lab2_dir).to_deploy()
    assert list(make().notes(lab)) == []


def test_apps_that_pass_no_header_on_are_noted(  # type: ignore[no-untyped-def]
    make, lab2_dir: Path, tmp_path: Path
) -> None:
    """The chain is read by x-request-id: where an app drops it, the report says so."""
    lab = tmp_path / "4-no-propagation"
    shutil.copytree(lab2_dir, lab)
    manifest = lab / "fleetman.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "istio-fleetman-api-gateway:6\n", "istio-fleetman-api-gateway:6-no-header-propagation\n"
        )
    )
    (note,) = make().notes(prepare(lab).to_deploy())
    assert note.message.startswith("Deployment default/api-gateway runs an image that passes")
    assert "reads `not called`" in note.message
    assert note.location is not None
    lines = manifest.read_text().splitlines()
    at = note.location.line - 1  # the Deployment's document, not the image's line
    assert lines[at : at + 4] == [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        "  name: api-gateway",
    ]


def test_no_docker_engine_refuses_before_anything_runs(
    make, runner: FakeRunner, events: Events
) -> None:  # type: ignore[no-untyped-def]
    runner.on(
        "info",
        returncode=1,
        stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock.",
    )
    backend = make()
    with pytest.raises(BackendUnavailable) as info:
        backend.describe()
    assert info.value.exit_code == 2
    assert "Cannot connect to the Docker daemon" in str(info.value)
    with pytest.raises(BackendUnavailable):
        backend.deploy(prepare(Path("labs/2-traffic")).to_deploy()).__enter__()
    assert events == ["run: docker info --format '{{.ServerVersion}}'"]  # asked once, remembered


def test_without_the_kind_extra(make) -> None:  # type: ignore[no-untyped-def]
    backend = make()
    backend.has_module = lambda name: name != "kubernetes"
    with pytest.raises(BackendUnavailable, match=r"pip install 'meshlab\[kind\]'"):
        backend.preflight()


def test_unsupported_istio_version(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BackendUnavailable, match=r"Istio 1\.29\.0 is not one"):
        make(istio_version="1.29.0").preflight()


def test_kubeconfig_that_is_missing_or_unreachable(make, kube: FakeKube, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BackendUnavailable, match="no such file"):
        make(kubeconfig=tmp_path / "missing").preflight()
    config = tmp_path / "course.yaml"
    config.write_text("apiVersion: v1\n")

    def down() -> str:
        raise BackendError("the Kubernetes API server is unreachable: connection refused")

    kube.server_version = down  # type: ignore[method-assign]
    with pytest.raises(BackendUnavailable, match=r"does not answer: .*connection refused"):
        make(kubeconfig=config).preflight()


# --- a whole run -------------------------------------------------------------------------


def test_lab_2_runs_through_the_same_checks(  # type: ignore[no-untyped-def]
    make, kube: FakeKube, events: Events, lab2_dir: Path, tmp_path: Path
) -> None:
    kube.istiod_version = None  # a fresh cluster: Istio gets installed
    backend = make()
    report = run_lab(lab2_dir, RunOptions(backend="kind"), backend=backend)
    backend.close()

    (result,) = report.results
    assert result.passed, result.message
    assert result.message.startswith("canary-split passed: risky got")
    assert result.details["method"].startswith("sequential")
    assert {p["labels"]["version"] for p in result.details["pods"]} == {"safe", "risky"}
    assert report.backend["backend"] == "kind"
    assert report.backend["node_image"] == NODE_IMAGE

    namespace = _namespace(events)
    assert namespace.startswith("meshlab-2-traffic-")
    kubeconfig = tmp_path / "cache" / "clusters" / "meshlab" / "kubeconfig"
    # the run, in order: refuse-or-go, cluster, Istio, namespace, objects, waits, sync,
    # traffic, diagnostics snapshot, namespace gone, cluster gone
    markers = [
        "run: docker info",
        f"run: kind create cluster --name=meshlab --kubeconfig={kubeconfig} --image={NODE_IMAGE}",
        "api: connect kubeconfig",
        "run: istioctl install",
        f"create: Namespace {namespace}",
        f"create: ConfigMap {namespace}/meshlab-probe",
        f"create: Telemetry {namespace}/meshlab-access-log",
        f"create: Service {namespace}/fleetman-webapp",
        f"create: Pod {namespace}/meshlab-probe",  # the probe first: its pull starts early
        f"create: Deployment {namespace}/staff-service-risky",
        f"create: DestinationRule {namespace}/fleetman-staff-service",
        f"create: VirtualService {namespace}/fleetman-staff-service",
        f"watch: Deployment {namespace}",
        f"watch: Pod {namespace}",
        "exec: meshlab-probe python3 /meshlab/probe.py envoy",
        "exec: meshlab-probe python3 /meshlab/probe.py batch",
        f"delete: Namespace {namespace}",
        "api: close",
        "run: kind delete cluster --name=meshlab",
    ]
    positions = _order(events, *markers)
    assert positions == sorted(positions)
    namespace_obj = kube.objects.get(("Namespace", None, namespace))
    assert namespace_obj is None  # deleted
    extras = dict(backend.report_extras(passed=True))
    assert extras["namespace"] == namespace
    assert int(extras["requests_sent"]) >= int(extras["requests_counted"]) == result.requests
    assert extras["istio"] == "1.31.1"
    assert not any(k.startswith("diagnostics") for k in extras)


def test_the_namespace_is_labelled_for_injection(
    make, kube: FakeKube, events: Events, lab2_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    backend = make(keep_namespace=True)
    with backend.deploy(prepare(lab2_dir).to_deploy()):
        pass
    namespace = _namespace(events)
    labels = kube.objects[("Namespace", None, namespace)]["metadata"]["labels"]
    assert labels == {
        "istio-injection": "enabled",
        "app.kubernetes.io/managed-by": "meshlab",
        "meshlab.io/lab": "2-traffic",
    }
    assert not events.matching("delete: Namespace")
    backend.close()


def test_a_failing_split_gets_the_clusters_diagnostics(
    make, kube: FakeKube, lab2_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    kube.mesh.weights = {"safe": 0.5, "risky": 0.5}
    backend = make()
    report = run_lab(lab2_dir, RunOptions(backend="kind"), backend=backend)
    backend.close()
    assert not report.passed
    extras = dict(backend.report_extras(passed=False))
    assert "weight 90" in extras["diagnostics_routes"]
    assert "staff-service-risky-7d9f8-00000: 2/2 ready, ready" in extras["diagnostics_pods"]
    assert extras["diagnostics_events"] == "(no events)"


def test_namespace_and_cluster_go_when_a_check_breaks(  # type: ignore[no-untyped-def]
    make, kube: FakeKube, events: Events, lab2_dir: Path
) -> None:
    kube.drop_log_lines = True  # the mesh answers, the access log never shows it
    backend = make()
    with pytest.raises(BackendError) as info:
        run_lab(lab2_dir, RunOptions(backend="kind"), backend=backend)
    backend.close()
    message = str(info.value)
    assert "logged no access-log line" in message
    assert "cluster diagnostics:" in message
    assert "routes:" in message
    namespace = _namespace(events)
    positions = _order(events, f"delete: Namespace {namespace}", "run: kind delete cluster")
    assert positions == sorted(positions)


def test_ctrl_c_in_the_middle_of_traffic(make, events: Events, lab2_dir: Path) -> None:  # type: ignore[no-untyped-def]
    backend = make()
    lab = prepare(lab2_dir).to_deploy()
    with pytest.raises(KeyboardInterrupt), backend.deploy(lab) as mesh:  # noqa: PT012 (Ctrl-C after traffic)
        mesh.send(ProbeRequest(URL), 10)
        raise KeyboardInterrupt
    execs_before_teardown = len(events.matching("exec:"))
    backend.close()
    namespace = _namespace(events)
    assert events[-3:] == [
        f"delete: Namespace {namespace}",
        "api: close",
        "run: kind delete cluster --name=meshlab "
        f"--kubeconfig={backend.tools.cache}/clusters/meshlab/kubeconfig",
    ]
    assert len(events.matching("exec:")) == execs_before_teardown  # no diagnostics on Ctrl-C


def test_ctrl_c_while_waiting_for_rollouts(
    make, kube: FakeKube, events: Events, lab2_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    kube.interrupt_in_watch = True
    backend = make()
    with pytest.raises(KeyboardInterrupt), backend.deploy(prepare(lab2_dir).to_deploy()):
        pass
    backend.close()
    namespace = _namespace(events)
    assert events[-4:] == [
        f"watch: Deployment {namespace}",
        f"delete: Namespace {namespace}",
        "api: close",
        events[-1],
    ]
    assert events[-1].startswith("run: kind delete cluster --name=meshlab")


def test_rollouts_that_never_finish(make, kube: FakeKube, events: Events, lab2_dir: Path) -> None:  # type: ignore[no-untyped-def]
    kube.ready = False
    backend = make(rollout_timeout=30)
    with (
        pytest.raises(BackendError) as info,
        backend.deploy(prepare(lab2_dir).to_deploy()),
    ):
        pass
    backend.close()
    assert "timed out after 30 s waiting for rollouts" in str(info.value)
    assert "ImagePullBackOff" in str(info.value)  # the pods part of the diagnostics
    assert events.matching("delete: Namespace")


def test_keep_cluster_keeps_cluster_and_namespace(
    make, events: Events, lab2_dir: Path, progress: list[str]
) -> None:  # type: ignore[no-untyped-def]
    backend = make(keep_cluster=True)
    with backend.deploy(prepare(lab2_dir).to_deploy()):
        pass
    backend.close()
    assert not events.matching("delete:")
    assert not events.matching("run: kind delete")
    assert any("kept kind cluster meshlab" in line for line in progress)


def test_a_second_run_on_a_kept_cluster_is_quick_and_tidies_up(  # type: ignore[no-untyped-def]
    make, kube: FakeKube, events: Events, lab2_dir: Path
) -> None:
    first = make(keep_cluster=True)
    with first.deploy(prepare(lab2_dir).to_deploy()):
        pass
    first.close()
    old = _namespace(events)
    events.clear()
    second = make()
    with second.deploy(prepare(lab2_dir).to_deploy()):
        pass
    second.close()
    assert not events.matching("run: kind create")
    assert not events.matching("run: istioctl install")  # Istio 1.31.1 is there already
    new = _namespace(events)
    positions = _order(events, f"delete: Namespace {old}", f"create: Namespace {new}")
    assert positions == sorted(positions)  # the earlier run's namespace of this lab goes first
    assert events[-1].startswith("run: kind delete cluster")


def test_an_existing_cluster_is_used_and_never_deleted(  # type: ignore[no-untyped-def]
    make, kube: FakeKube, events: Events, lab2_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "course.yaml"
    config.write_text("apiVersion: v1\n")
    kube.objects[("Namespace", None, "meshlab-2-traffic-other1")] = {
        "metadata": {
            "name": "meshlab-2-traffic-other1",
            "labels": {"app.kubernetes.io/managed-by": "meshlab", "meshlab.io/lab": "2-traffic"},
        }
    }  # another student's run on the shared cluster
    backend = make(kubeconfig=config)
    report = run_lab(lab2_dir, RunOptions(backend="kind"), backend=backend)
    backend.close()
    assert report.passed
    assert report.backend["cluster"] == f"existing cluster from {config}"
    assert not events.matching("run:")  # no docker, no kind, no istioctl
    assert events.matching("delete: Namespace ") == [f"delete: Namespace {_namespace(events)}"]
    assert ("Namespace", None, "meshlab-2-traffic-other1") in kube.objects


def test_an_existing_cluster_without_istio_is_refused(
    make, kube: FakeKube, events: Events, lab2_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "course.yaml"
    config.write_text("apiVersion: v1\n")
    kube.istiod_version = None
    backend = make(kubeconfig=config)
    with (
        pytest.raises(BackendUnavailable, match="runs no Istio"),
        backend.deploy(prepare(lab2_dir).to_deploy()),
    ):
        pass
    backend.close()
    assert not events.matching("create:")


def test_namespace_names() -> None:
    assert namespace_for("2-traffic", "3f9a1c") == "meshlab-2-traffic-3f9a1c"
    assert namespace_for("Lab_7 (Faults)", "3f9a1c") == "meshlab-lab-7-faults-3f9a1c"
    assert len(namespace_for("x" * 80, "3f9a1c")) <= 63
