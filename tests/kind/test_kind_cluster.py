"""The kind cluster's lifecycle through pytest-kind's real KindCluster, with its subprocess
calls recorded: the exact kind command lines, reuse, and deleting only what meshlab made."""

from __future__ import annotations

from pathlib import Path

import pytest
from kind_fakes import Events, FakeRunner, FakeSubprocess

from meshlab.backends.kind.cluster import ExistingCluster, KindSession
from meshlab.backends.kind.tools import NODE_IMAGE, Tools
from meshlab.errors import BackendError

KIND = "kind"


@pytest.fixture
def tools(runner: FakeRunner, tmp_path: Path) -> Tools:
    kind = tmp_path / "bin" / "kind"
    kind.parent.mkdir()
    kind.write_text("")
    return Tools(runner, cache=tmp_path / "cache", env={"MESHLAB_KIND": str(kind)})


def _session(tools: Tools, runner: FakeRunner, keep: bool = False) -> KindSession:
    return KindSession("meshlab", tools, runner, tools.cache, keep, lambda line: None)


def test_a_new_cluster_is_created_with_the_pinned_node_image(
    tools: Tools,
    runner: FakeRunner,
    events: Events,
    kind_subprocess: FakeSubprocess,
    tmp_path: Path,
) -> None:
    session = _session(tools, runner)
    session.open()
    kubeconfig = tmp_path / "cache" / "clusters" / "meshlab" / "kubeconfig"
    assert events == [
        "run: kind version",
        "run: kind get clusters",  # meshlab: does it exist already?
        "run: kind get clusters",  # pytest-kind's own check
        f"run: kind create cluster --name=meshlab --kubeconfig={kubeconfig} --image={NODE_IMAGE}",
    ]
    assert session.owned
    assert session.created_now
    assert (tmp_path / "cache" / "clusters" / "meshlab" / "created-by-meshlab").is_file()
    assert (tmp_path / "cache" / "clusters" / "meshlab" / ".pytest-kind").is_dir()
    assert not (Path.cwd() / ".pytest-kind").exists()  # not in the user's project
    session.close()
    assert events[-1] == f"run: kind delete cluster --name=meshlab --kubeconfig={kubeconfig}"
    assert not session.marker.exists()


def test_keep_cluster_keeps_it_and_the_next_run_reuses_it(
    tools: Tools, runner: FakeRunner, events: Events, kind_subprocess: FakeSubprocess
) -> None:
    first = _session(tools, runner, keep=True)
    first.open()
    first.close()
    assert not events.matching("run: kind delete")
    events.clear()
    second = _session(tools, runner)  # no --keep-cluster this time: meshlab made it, so it goes
    second.open()
    kubeconfig = second.kubeconfig
    assert events == [
        "run: kind version",
        "run: kind get clusters",
        f"run: kind export kubeconfig --name=meshlab --kubeconfig={kubeconfig}",
        "run: kind get clusters",  # pytest-kind finds it and only reads the kubeconfig
    ]
    assert second.owned
    assert not second.created_now
    second.close()
    assert len(events.matching("run: kind delete cluster --name=meshlab")) == 1


def test_a_cluster_meshlab_did_not_create_is_never_deleted(
    tools: Tools, runner: FakeRunner, events: Events, kind_subprocess: FakeSubprocess
) -> None:
    runner.clusters.append("meshlab")  # someone's own cluster of that name, no marker
    session = _session(tools, runner)
    session.open()
    assert not session.owned
    session.close()
    assert not events.matching("run: kind create")
    assert not events.matching("run: kind delete")
    assert "not created by meshlab" in session.describe()


def test_a_failed_create_deletes_the_half_made_cluster(
    tools: Tools, runner: FakeRunner, events: Events, kind_subprocess: FakeSubprocess
) -> None:
    runner.on("create", "cluster", returncode=1, stderr="ERROR: failed to create cluster")
    session = _session(tools, runner, keep=True)
    with pytest.raises(BackendError, match=r"kind failed: `.*kind create cluster --name=meshlab"):
        session.open()
    assert events[-1].startswith("run: kind delete cluster --name=meshlab")


def test_ctrl_c_during_create_deletes_the_cluster_then_stops(
    tools: Tools, runner: FakeRunner, events: Events, kind_subprocess: FakeSubprocess
) -> None:
    runner.interrupt_on = ("create", "cluster")
    session = _session(tools, runner)
    with pytest.raises(KeyboardInterrupt):
        session.open()
    assert events[-2].startswith("run: kind create cluster")
    assert events[-1].startswith("run: kind delete cluster --name=meshlab")
    assert not session.marker.exists()


def test_kind_cannot_list_clusters(tools: Tools, runner: FakeRunner) -> None:
    runner.on("get", "clusters", returncode=1, stderr="failed to list nodes: docker: not found")
    with pytest.raises(BackendError, match="kind could not list its clusters"):
        _session(tools, runner).open()


def test_an_existing_cluster_is_only_described() -> None:
    cluster = ExistingCluster(Path("/home/me/.kube/course"))
    cluster.close()  # nothing to do, nothing deleted
    assert cluster.describe() == "existing cluster from /home/me/.kube/course"
    assert cluster.owned is False
