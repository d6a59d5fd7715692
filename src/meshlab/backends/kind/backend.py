"""The kind backend: the same labs, checks and verdicts as the embedded one, with the traffic
flowing through a real cluster, real istiod, real sidecars and the real fleetman images.

Lifecycle of a session (one `meshlab run`, or one pytest session):

    preflight   kubernetes client present; Docker engine reachable (or the --kubeconfig
                cluster answers). Refuses within seconds, exit 2, saying what to install.
    open        the cluster, once: kind cluster `meshlab` (created or reused) + Istio at the
                pinned version; or the --kubeconfig cluster with the Istio it has.
    deploy      per lab: fresh namespace (istio-injection=enabled) -> probe + lab objects in
                apply order -> rollouts -> the probe sidecar has the lab's routes -> checks.
    teardown    per lab: diagnostics snapshot, namespace deleted (unless --keep-namespace or
                --keep-cluster); per session (`close()`): the kind cluster deleted if meshlab
                created it and --keep-cluster is off. Also on failure and Ctrl-C.
"""

from __future__ import annotations

import atexit
import importlib.util
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from meshlab.backends.base import Backend, LabToDeploy
from meshlab.backends.kind import diagnostics, grading
from meshlab.backends.kind.accesslog import PROBE_POD
from meshlab.backends.kind.apply import (
    Clock,
    Progress,
    Retarget,
    Waiter,
    apply_objects,
    apply_order,
    lab_objects,
)
from meshlab.backends.kind.chain import propagation_notes
from meshlab.backends.kind.cluster import (
    ClusterFactory,
    ClusterHandle,
    ExistingCluster,
    KindSession,
    pytest_kind_cluster,
)
from meshlab.backends.kind.external import (
    StandIns,
    external_notes,
    mesh_config_sidecar,
    rewrite_service_entry,
    stand_ins,
)
from meshlab.backends.kind.grading_rules import Policy
from meshlab.backends.kind.images import GRADING_IMAGE_PREFIXES
from meshlab.backends.kind.istio import ensure_istio, needs_egress, needs_gateway, require_istio
from meshlab.backends.kind.kube import _EXTRA_HINT, Kube, KubeApi, Obj
from meshlab.backends.kind.probe import KindMesh, probe_objects
from meshlab.backends.kind.sidecar_routes import expected_routes
from meshlab.backends.kind.tools import (
    ISTIO_VERSION,
    KIND_VERSION,
    NODE_IMAGE,
    SUPPORTED_ISTIO_VERSIONS,
    Runner,
    SubprocessRunner,
    Tools,
    check_docker,
)
from meshlab.errors import BackendError, BackendUnavailable, MeshlabError
from meshlab.load.manifests import Resource
from meshlab.mesh.model import Note
from meshlab.records import dataclass

MANAGED_BY = "app.kubernetes.io/managed-by"
LAB_LABEL = "meshlab.io/lab"


@dataclass
class KindOptions:
    """What a user may choose about a kind run: their own cluster or meshlab's, what to keep
    afterwards, the Istio version, the rollout timeout, and grading's restrictions."""

    kubeconfig: Path | None = None  # an existing cluster instead of a kind cluster
    keep_cluster: bool = False
    keep_namespace: bool = False
    istio_version: str = ISTIO_VERSION
    cluster_name: str = "meshlab"
    rollout_timeout: float = 600.0  # the first run pulls the fleetman images
    # Grading a submission: pod specs held to the allow-list of grading.py, images to
    # these repository prefixes, tools only with a SHA-256 that meshlab ships.
    grading: bool = False
    grading_images: tuple[str, ...] = GRADING_IMAGE_PREFIXES


def stderr_progress(line: str) -> None:
    print(f"meshlab[kind]: {line}", file=sys.stderr, flush=True)


def lab_slug(lab: str) -> str:
    """The lab folder's name as a DNS label and label value: `2-traffic`."""
    return re.sub(r"[^a-z0-9-]+", "-", lab.lower()).strip("-")[:40].strip("-") or "lab"


def namespace_for(lab: str, suffix: str) -> str:
    """`meshlab-2-traffic-3f9a1c`: a DNS label, unique per run."""
    return f"meshlab-{lab_slug(lab)}-{suffix}"


class KindBackend(Backend):
    name = "kind"

    def __init__(
        self,
        options: KindOptions | None = None,
        *,
        runner: Runner | None = None,
        tools: Tools | None = None,
        kube_factory: Callable[[Path], Kube] | None = None,
        cluster_factory: ClusterFactory = pytest_kind_cluster,
        clock: Clock | None = None,
        progress: Progress = stderr_progress,
        which: Callable[[str], str | None] | None = None,
        has_module: Callable[[str], bool] | None = None,
    ) -> None:
        self.options = options or KindOptions()
        self.runner = runner or SubprocessRunner()
        self.tools = tools or Tools(self.runner, which=which, progress=progress)
        if self.options.grading:
            self.tools.pinned_only = True  # no same-origin checksums when grading
        self.kube_factory = kube_factory or KubeApi.from_kubeconfig
        self.cluster_factory = cluster_factory
        self.clock = clock or Clock()
        self.progress = progress
        self.which = which or shutil.which
        self.has_module = has_module or (lambda m: importlib.util.find_spec(m) is not None)
        self.facts: dict[str, str] = {}
        self.last_diagnostics: dict[str, str] = {}
        self._refusal: BackendUnavailable | None = None
        self._checked = False
        self._cluster: ClusterHandle | None = None
        self._kube: Kube | None = None
        self._atexit = False
        self._downloads: list[str] = []

    # -- refusing early -------------------------------------------------------------------

    def preflight(self) -> None:
        """Raise BackendUnavailable (exit 2) unless this machine can run the backend. Fast:
        no download, no cluster; `docker info` or one API call at most."""
        if not self._checked:
            self._checked = True
            try:
                self._preflight()
            except BackendUnavailable as exc:
                self._refusal = exc
        if self._refusal is not None:
            raise self._refusal

    def _preflight(self) -> None:
        version = self.options.istio_version
        if version not in SUPPORTED_ISTIO_VERSIONS:
            raise BackendUnavailable(
                f"Istio {version} is not one the kind backend supports "
                f"({', '.join(SUPPORTED_ISTIO_VERSIONS)})"
            )
        if not self.has_module("kubernetes"):
            raise BackendUnavailable(_EXTRA_HINT)
        kubeconfig = self.options.kubeconfig
        if kubeconfig is not None:
            if not kubeconfig.is_file():
                raise BackendUnavailable(f"--kubeconfig {kubeconfig}: no such file")
            kube = self.kube_factory(kubeconfig)
            try:
                self.facts["kubernetes"] = kube.server_version()
            except MeshlabError as exc:
                kube.close()
                raise BackendUnavailable(
                    f"the cluster of --kubeconfig {kubeconfig} does not answer: {exc}"
                ) from None
            self._kube = kube
            return
        if not self.has_module("pytest_kind"):
            raise BackendUnavailable(_EXTRA_HINT)
        self._downloads = self.tools.preflight(version)
        self.facts["docker"] = check_docker(self.runner, self.which)

    def describe(self) -> Mapping[str, str]:
        self.preflight()
        info = {"backend": self.name, "istio": self.options.istio_version}
        if self.options.kubeconfig is not None:
            info["cluster"] = f"existing cluster from {self.options.kubeconfig}"
        else:
            info |= {
                "cluster": f"kind cluster {self.options.cluster_name}",
                "kind": KIND_VERSION,
                "node_image": NODE_IMAGE,
            }
        if self.options.grading:
            info["grading"] = "pod specs held to the grading allow-list; pinned tools only"
        return {**info, **self.facts}

    # -- the cluster, once per session ----------------------------------------------------

    def _open(self) -> Kube:
        if self._kube is not None and self._cluster is not None:
            return self._kube
        if not self._atexit:
            atexit.register(self.close)
            self._atexit = True
        if self.options.kubeconfig is not None:
            self._cluster = ExistingCluster(self.options.kubeconfig)
            self._kube = self._kube or self.kube_factory(self.options.kubeconfig)
            return self._kube
        for note in self._downloads:
            self.progress(note)
        session = KindSession(
            self.options.cluster_name,
            self.tools,
            self.runner,
            self.tools.cache,
            self.options.keep_cluster,
            self.progress,
            self.cluster_factory,
        )
        session.open()
        self._cluster = session
        self._kube = self.kube_factory(session.kubeconfig)
        self.facts["kubernetes"] = self._kube.server_version()
        self.facts["cluster"] = session.describe()
        return self._kube

    def _istio(self, kube: Kube, resources: Sequence[Resource]) -> None:
        gateway, egress = needs_gateway(resources), needs_egress(resources)
        cluster = self._cluster
        assert cluster is not None
        if isinstance(cluster, KindSession) and cluster.owned:
            version = ensure_istio(
                kube,
                self.runner,
                self.tools,
                cluster.kubeconfig,
                self.options.istio_version,
                gateway,
                self.progress,
                egress,
            )
        else:
            version = require_istio(kube, gateway, str(cluster.kubeconfig), egress)
        self.facts["istio"] = version

    def close(self) -> None:
        """End the session: the kind cluster goes unless it is kept or not ours."""
        if self._atexit:
            atexit.unregister(self.close)
            self._atexit = False
        kube, self._kube = self._kube, None
        cluster, self._cluster = self._cluster, None
        try:
            if kube is not None:
                kube.close()
        finally:
            if cluster is not None:
                cluster.close()

    # -- one lab --------------------------------------------------------------------------

    def notes(self, lab: LabToDeploy) -> Sequence[Note]:
        """Istio itself runs here, so nothing is left out of the mesh; what the access logs
        cannot show is said (apps that do not pass x-request-id on), and so are the external
        ports no stand-in answers."""
        return [*propagation_notes(lab.resources), *external_notes(lab.resources)]

    @contextmanager
    def deploy(self, lab: LabToDeploy) -> Iterator[KindMesh]:
        self.preflight()
        resources, plan = lab.resources, lab.plan
        suffix = secrets.token_hex(3)
        run_namespace = namespace_for(lab.name, suffix)
        retarget = Retarget(lab.namespace, run_namespace)
        if self.options.grading:  # refusals come before any cluster work
            grading.check(resources, Policy(self.options.grading_images))
        objects, standins = self._objects(lab, retarget, run_namespace)
        kube = self._open()
        self._istio(kube, resources)
        self._delete_earlier_runs(kube, lab.name)
        with ExitStack() as stack:
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": run_namespace,
                        "labels": {
                            "istio-injection": "enabled",
                            MANAGED_BY: "meshlab",
                            LAB_LABEL: lab_slug(lab.name),
                        },
                    },
                },
                None,
            )
            stack.callback(self._drop_namespace, kube, run_namespace)
            self.facts["namespace"] = run_namespace
            mesh: KindMesh | None = None
            fqdns = [retarget.cluster(s.fqdn) for s in plan.registry.services]
            try:
                everything = apply_order([*probe_objects(run_namespace), *objects])
                apply_objects(kube, everything, run_namespace, self.progress)
                waiter = Waiter(kube, run_namespace, self.progress, self.clock)
                deployments = [o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"]
                pods = [o["metadata"]["name"] for o in objects if o["kind"] == "Pod"]
                waiter.deployments(deployments, self.options.rollout_timeout)
                waiter.pods([*pods, PROBE_POD], self.options.rollout_timeout)
                mesh = KindMesh(kube, run_namespace, retarget, self.clock, self.progress, suffix)
                mesh.fqdns = fqdns
                mesh.external = standins
                if needs_egress(resources):
                    mesh.use_egress_gateway()
                mesh.wait_for_config(expected_routes(plan, retarget))
                yield mesh
            except KeyboardInterrupt:
                raise  # straight to teardown: no diagnostics when someone wants out
            except MeshlabError as exc:
                self.last_diagnostics = diagnostics.collect(
                    kube, run_namespace, mesh.routes_text if mesh else None
                )
                raise BackendError(f"{exc}\n{diagnostics.render(self.last_diagnostics)}") from exc
            else:
                self.last_diagnostics = diagnostics.collect(
                    kube, run_namespace, mesh.routes_text if mesh else None
                )
            finally:
                if mesh is not None:
                    self.facts["requests_sent"] = str(mesh.requests_sent)
                    self.facts["requests_counted"] = str(mesh.requests_served)
                    self.facts["requests_warmup"] = str(mesh.requests_warmup)

    def _objects(
        self, lab: LabToDeploy, retarget: Retarget, namespace: str
    ) -> tuple[list[Obj], StandIns]:
        """The lab's objects for the run namespace, external hosts' stand-ins included."""
        resources, plan = lab.resources, lab.plan
        local = [n for s in plan.registry.services if s.host is None for n in (s.name, s.fqdn)]
        standins = stand_ins(resources, namespace, local)
        objects = [
            one
            for o in lab_objects(resources, retarget)
            for one in rewrite_service_entry(o, standins)
        ]
        mesh_config_sidecar(resources, objects, namespace)
        if self.options.grading:
            objects = [grading.neutralised(o) for o in objects]
        objects += standins.objects()  # meshlab's own pods, after the grading rules
        return objects, standins

    def _drop_namespace(self, kube: Kube, namespace: str) -> None:
        keep = self.options.keep_namespace or self.options.keep_cluster
        if keep:
            self.progress(
                f"kept namespace {namespace}; delete it with `kubectl delete namespace {namespace}`"
            )
            return
        try:
            kube.delete_namespace(namespace)
        except MeshlabError as exc:
            self.progress(
                f"could not delete namespace {namespace} ({exc}); delete it with "
                f"`kubectl delete namespace {namespace}`"
            )

    def _delete_earlier_runs(self, kube: Kube, lab: str) -> None:
        """Namespaces kept by earlier runs of this lab, on a kind cluster meshlab created."""
        cluster = self._cluster
        if not (isinstance(cluster, KindSession) and cluster.owned):
            return  # on a cluster we did not create, nothing but our own namespace is ours
        selector = f"{MANAGED_BY}=meshlab,{LAB_LABEL}={lab_slug(lab)}"
        for ns in kube.list("v1", "Namespace", None, label_selector=selector):
            name = (ns.get("metadata") or {}).get("name")
            if name:
                self.progress(f"deleting namespace {name}, kept by an earlier run of {lab}")
                kube.delete_namespace(str(name))

    def report_extras(self, passed: bool) -> Mapping[str, str]:
        """Facts learnt during the run, and the diagnostics when something failed."""
        extras = dict(self.facts)
        if not passed:
            extras |= {f"diagnostics_{k}": v for k, v in self.last_diagnostics.items()}
        return extras
