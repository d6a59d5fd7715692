"""A run's Envoy, stand-in host and CA started before the lab is read (backends/embedded/
warm.py): the same mesh as a cold start, nothing left behind, a cold start when it does not
fit, and each worker's own protocol (one JSON line in, one out)."""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil
import pytest

from meshlab.backends.base import LabToDeploy
from meshlab.backends.embedded import hosts
from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.backends.embedded.castore import STORE_ENV, cached_certs, fill_store
from meshlab.backends.embedded.envoy.binary import find_envoy
from meshlab.backends.embedded.processes import module_argv, source_root
from meshlab.backends.embedded.warm import CA_MODULE, CA_NAME, STANDIN_MODULE, WarmStart, begin
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import ProbeRequest

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"
DEFAULT_SA = "spiffe://cluster.local/ns/default/sa/default"  # every pod of lab 2, the client


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def lab2() -> LabToDeploy:
    resources = load_manifests([LAB2 / "fleetman.yaml", LAB2 / "istio-rules.yaml"], "default")
    return LabToDeploy("lab2", "default", resources, build_plan(resources, "default"))


def started(backend: EmbeddedBackend) -> WarmStart:
    warm = begin(backend.options)
    assert warm is not None
    return warm


def gone(warm: WarmStart) -> bool:
    return not warm.workdir.exists() and all(not p.alive for p in warm.group.processes)


def test_a_warm_start_serves_the_lab_like_a_cold_one(backend: EmbeddedBackend) -> None:
    warm = started(backend)
    pids = [p.pid for p in warm.group.processes]
    embedded = EmbeddedBackend(backend.options, warm)
    cold = find_envoy(backend.options.envoy)
    assert (embedded.binary.path, embedded.binary.version) == (cold.path, cold.version)
    with embedded.deploy(lab2()) as mesh, mesh.session() as session:
        assert [p.pid for p in warm.group.processes] == pids  # no process started anew
        outcomes = session.send(ProbeRequest(URL), 200)
        assert {o.status for o in outcomes} == {200}
        shares = Counter(o.labels.get("version") for o in outcomes)
        assert set(shares) == {"safe", "risky"}
        assert shares["risky"] < shares["safe"]
        assert mesh.envoy.process.name == "Envoy"
    assert gone(warm)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in pids)  # fmt: skip


def test_a_lab_needing_more_hosts_lets_the_warm_start_go(
    backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosts, "PODS_PER_HOST", 2)  # lab 2's pods now want two hosts
    warm = started(backend)
    embedded = EmbeddedBackend(backend.options, warm)
    with embedded.deploy(lab2()) as mesh, mesh.session() as session:
        assert gone(warm)  # let go before the cold start
        assert {o.status for o in session.send(ProbeRequest(URL), 20)} == {200}


def _ca_started(warm: WarmStart) -> bool:
    return any(p.name == CA_NAME for p in warm.group.processes)


def test_a_store_holding_the_labs_identities_starts_no_ca(
    backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A later run reads the mesh CA kept by an earlier one: no CA process, same traffic."""
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    kept = fill_store(tmp_path / "mesh-ca", [DEFAULT_SA], now())
    warm = started(backend)
    assert not _ca_started(warm)
    with EmbeddedBackend(backend.options, warm).deploy(lab2()) as mesh, mesh.session() as s:
        assert {o.status for o in s.send(ProbeRequest(URL), 20)} == {200}  # mTLS both ways
        assert not _ca_started(warm)
        tls = json.dumps(json.loads((warm.workdir / "cds.json").read_text()))
        assert str(kept.of(DEFAULT_SA).certificate) in tls
    assert gone(warm)


def test_an_identity_the_store_lacks_starts_the_ca_at_deployment(
    backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    store = tmp_path / "mesh-ca"
    fill_store(store, ["spiffe://cluster.local/ns/other/sa/other"], now())  # a root, not lab 2's
    warm = started(backend)
    assert not _ca_started(warm)
    with EmbeddedBackend(backend.options, warm).deploy(lab2()) as mesh, mesh.session() as s:
        assert _ca_started(warm)
        assert {o.status for o in s.send(ProbeRequest(URL), 20)} == {200}
    assert cached_certs(store, [DEFAULT_SA], now()) is not None  # kept for the next run


def test_a_warm_start_never_used_ends_with_the_backend(backend: EmbeddedBackend) -> None:
    warm = started(backend)
    EmbeddedBackend(backend.options, warm).close()
    assert gone(warm)


def _worker(module: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        module_argv(module, list(args), source_root()),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("kept", [True, False], ids=["into-the-store", "without-a-store"])
def test_the_ca_worker_certifies_what_it_is_sent(tmp_path: Path, kept: bool) -> None:
    ids = ["spiffe://cluster.local/ns/default/sa/a", "spiffe://cluster.local/ns/default/sa/b"]
    worker = _worker(CA_MODULE)
    store = tmp_path / "store" / "mesh-ca"
    request = {"store": str(store) if kept else None, "directory": str(tmp_path / "certs")}
    out, err = worker.communicate(json.dumps({**request, "identities": ids}) + "\n", timeout=30)
    assert worker.returncode == 0, err
    answer = json.loads(out)
    assert sorted(answer["identities"]) == ids
    for cert, key in answer["identities"].values():
        assert Path(cert).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert stat.S_IMODE(Path(key).stat().st_mode) == 0o600
        assert Path(cert).is_relative_to(store if kept else tmp_path / "certs")
    assert Path(answer["ca"]).is_file()
    assert (cached_certs(store, ids, now()) is not None) is kept


@pytest.mark.parametrize("module", [CA_MODULE, STANDIN_MODULE])
def test_a_worker_not_needed_exits_quietly_at_eof(module: str, tmp_path: Path) -> None:
    args = ["--spec", "-"] if module == STANDIN_MODULE else []
    worker = _worker(module, *args)
    out, err = worker.communicate("", timeout=30)
    assert (worker.returncode, out, err) == (0, "", "")


def test_a_host_takes_its_pods_as_one_line_on_stdin() -> None:
    pod = {"name": "p", "namespace": "default", "image": "x/y:1", "labels": {}, "ports": [8080]}
    worker = _worker(STANDIN_MODULE, "--spec", "-")
    try:
        assert worker.stdin is not None
        assert worker.stdout is not None
        worker.stdin.write(json.dumps({"pods": [pod]}) + "\n")
        worker.stdin.flush()
        ready = json.loads(worker.stdout.readline())
        assert ready["ready"] is True
        assert set(ready["pods"]["p"]) == {"8080"}
    finally:
        out, _ = worker.communicate(timeout=30)  # closes stdin: the lifeline's EOF ends it
    assert worker.returncode == 0
    assert out == ""


def test_an_envoy_path_that_is_not_envoy_is_refused_as_before(tmp_path: Path) -> None:
    """The warm start runs whatever --envoy names; when that is no Envoy, the run still ends
    with the cold start's message (exit 2), and nothing it started is left."""
    fake = tmp_path / "envoy"
    fake.write_text("#!/bin/sh\necho not envoy\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-P", "-c", "from meshlab.cli import main; main()", "run", str(LAB2),
         "--envoy", str(fake)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "did not answer `--version` like Envoy" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["envoy"]
