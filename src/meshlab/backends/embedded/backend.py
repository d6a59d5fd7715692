"""The embedded backend: our translation plays istiod, one real Envoy plays every proxy of
the lab (the test client's sidecar, a sidecar per workload with each pod's inbound side, the
gateways), and every pod is a local stand-in (many per process). Everything binds 127.0.0.1 and dies
with the run.

Calls between stand-ins leave through the caller's sidecar and enter through the callee's:
a stand-in learns its sidecar's outbound listener ports from an egress file (`egress.py`)
written once Envoy is up, before any request is sent.
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshlab.backends.base import AccessPoint, Backend, Deployed, LabToDeploy, PodInfo
from meshlab.backends.embedded.access import access_points
from meshlab.backends.embedded.castore import mesh_certs, store_path
from meshlab.backends.embedded.certs import MeshCerts
from meshlab.backends.embedded.client import Failure, Reply
from meshlab.backends.embedded.egress import egress_path, write_egress_files
from meshlab.backends.embedded.entry import Entry, entry_for
from meshlab.backends.embedded.envoy.binary import EnvoyBinary, find_envoy
from meshlab.backends.embedded.envoy.bootstrap import prefix_of, render_mesh
from meshlab.backends.embedded.envoy.clusters import Addresses
from meshlab.backends.embedded.envoy.mtls import identities, mesh_tls
from meshlab.backends.embedded.envoy.process import (
    ConfigRefused,
    RunningEnvoy,
    start_envoy,
    write_bootstrap,
)
from meshlab.backends.embedded.hops import pod_finder
from meshlab.backends.embedded.hosts import StandinLaunch, with_egress
from meshlab.backends.embedded.options import EmbeddedOptions
from meshlab.backends.embedded.processes import ManagedProcess, ProcessGroup
from meshlab.backends.embedded.session import EmbeddedSession
from meshlab.backends.embedded.standins import PodSpec, describe
from meshlab.backends.embedded.warm import WarmStart
from meshlab.backends.embedded.watch import Watchdog, request_timeout
from meshlab.errors import BackendError
from meshlab.mesh.plan import MeshPlan, Note
from meshlab.mesh.proxies import MeshProxies
from meshlab.mesh.registry import PodInstance
from meshlab.mesh.request import ProbeRequest

if TYPE_CHECKING:
    from concurrent.futures import Future

# a deployment's folder, pods' ports, running Envoy and the processes the watchdog minds
Started = tuple[Path, Addresses, RunningEnvoy, list[ManagedProcess]]
GATEWAY_HTTP_PORT = 80  # the course's Gateway server port (NodePort 31380 outside)


class EmbeddedBackend(Backend):
    name = "embedded"

    def __init__(
        self, options: EmbeddedOptions | None = None, warm: WarmStart | None = None
    ) -> None:
        """`warm`: processes started before the lab was read (warm.py), used by the first
        deployment that fits them, ended by close() otherwise."""
        self.options = options or EmbeddedOptions()
        self._binary: EnvoyBinary | None = None
        self._warm = warm
        self._finding: Future[EnvoyBinary] | None = None
        if warm is None:
            from concurrent.futures import ThreadPoolExecutor  # a cold start's only (~10 ms)

            # `envoy --version` (~0.1 s, a process) while the caller loads and plans the lab:
            # the CLI makes its backend first; errors (BackendUnavailable) surface at `binary`
            finder = ThreadPoolExecutor(1, thread_name_prefix="meshlab-envoy-find")
            self._finding = finder.submit(find_envoy, self.options.envoy)
            finder.shutdown(wait=False)  # the thread ends with its one task

    @property
    def binary(self) -> EnvoyBinary:
        if self._binary is None and self._warm is not None:
            self._binary = self._warm.binary()  # the running Envoy's answer, if it is one
        if self._binary is None:
            finding, self._finding = self._finding, None
            self._binary = finding.result() if finding else find_envoy(self.options.envoy)
        return self._binary

    def close(self) -> None:
        warm, self._warm = self._warm, None
        if warm is not None:
            warm.close()

    def describe(self) -> Mapping[str, str]:
        return {
            "backend": self.name,
            "envoy": self.binary.describe(),
            "envoy_version": self.binary.version,
            "envoy_path": str(self.binary.path),
            "envoy_source": self.binary.source,
        }

    def notes(self, lab: LabToDeploy) -> Sequence[Note]:
        """The plan's notes: what of Istio our translation leaves out (a real mesh does not)."""
        return list(lab.plan.notes)

    @contextmanager
    def deploy(self, lab: LabToDeploy) -> Iterator[EmbeddedMesh]:
        proxies = lab.proxies
        # ServiceEntry hosts too: loopback stand-ins in place of the outside world
        pods = [_pod_spec(p) for p in lab.plan.registry.all_pods]
        binary = self.binary  # asked of the warm Envoy, if any, before it is taken
        warm, self._warm = self._warm, None
        if warm is not None and not warm.fits(binary, pods):
            warm.close()
            warm = None
        started = self._warm_start(lab, pods, warm) if warm else self._cold_start(lab, pods)
        with started as (workdir, addresses, envoy, serving):
            egress = {name: egress_path(workdir, name) for name in proxies.meshed_pods}
            write_egress_files(proxies, envoy.listener_ports, egress)
            watch = Watchdog(serving, envoy.process, envoy.admin_url)
            mesh = EmbeddedMesh(lab.plan, proxies, lab.namespace, addresses, envoy, watch)
            try:
                yield mesh
            finally:
                mesh.close()

    @contextmanager
    def _cold_start(self, lab: LabToDeploy, pods: list[PodSpec]) -> Iterator[Started]:
        """Every process started now, Envoy on the whole (static) bootstrap."""
        proxies = lab.proxies
        binary = self.binary
        with tempfile.TemporaryDirectory(prefix="meshlab-") as tmp, ProcessGroup() as group:
            workdir = Path(tmp)
            egress = {name: egress_path(workdir, name) for name in proxies.meshed_pods}
            from concurrent.futures import ThreadPoolExecutor

            # istiod's CA: the root and a SPIFFE certificate per identity, from the store
            # kept between runs (castore.py), made beside the stand-ins' start where missing
            ids, now = identities(proxies)[1], datetime.datetime.now(datetime.UTC)
            with ThreadPoolExecutor(1, thread_name_prefix="meshlab-ca") as ca:
                made = ca.submit(mesh_certs, store_path(), workdir / "certs", ids, now)
                # the hosts start on sockets bound here: their ports are known now, and Envoy
                # starts while they import (they are waited for before any request)
                standins = StandinLaunch(group, pods, cwd=workdir, egress=egress)
                addresses = standins.addresses or standins.wait()
                certs = made.result()
            bootstrap = write_bootstrap(self._render(lab, addresses, certs), workdir / "envoy.json")
            try:
                envoy = start_envoy(group, binary, bootstrap, workdir)
            except BackendError:
                # Envoy refuses at start what `--mode validate` refuses. Only then is the
                # validator run: a config a sidecar would reject is exit 2 at the object's
                # file:line, not a crash of the run (exit 3); a start that fails for another
                # reason stays the backend's error. (Validating every run up front cost a third
                # process competing with the stand-ins' start for two cores.)
                _explain_refusal(binary, lab, workdir)
                raise
            standins.wait()
            yield workdir, addresses, envoy, group.processes

    @contextmanager
    def _warm_start(
        self, lab: LabToDeploy, pods: list[PodSpec], warm: WarmStart
    ) -> Iterator[Started]:
        """The processes warm.py started before the lab was read, given their work."""
        egress = {name: egress_path(warm.workdir, name) for name in lab.proxies.meshed_pods}
        ids = identities(lab.proxies)[1]

        def render(addresses: Addresses, certs: MeshCerts) -> dict[str, Any]:
            return self._render(lab, addresses, certs)

        try:
            with warm.deploy(with_egress(pods, egress), ids, render) as deployed:
                yield deployed.workdir, deployed.addresses, deployed.envoy, deployed.serving
        except ConfigRefused as refused:
            # the same exit 2 as a cold start; the warm folder went with its processes
            with tempfile.TemporaryDirectory(prefix="meshlab-") as tmp:
                _explain_refusal(self.binary, lab, Path(tmp))
            raise refused.error from None

    def _render(self, lab: LabToDeploy, addresses: Addresses, certs: MeshCerts) -> dict[str, Any]:
        # no access log: nothing reads it, and writing it cost ~20% of Envoy's throughput
        return render_mesh(
            lab.proxies,
            addresses,
            fixed_ports=self._fixed_ports(lab.proxies),
            tls=mesh_tls(lab.proxies, lab.resources, certs),
            stats_prefixes=self.options.stats_prefixes,
        )

    def _fixed_ports(self, proxies: MeshProxies) -> dict[str, int]:
        gateway = proxies.ingress()
        if gateway is None or self.options.gateway_port is None:
            return {}
        prefix = prefix_of(gateway)
        return {
            prefix + lst.name: self.options.gateway_port
            for lst in gateway.plan.listeners
            if lst.port == GATEWAY_HTTP_PORT
        }


def _explain_refusal(binary: EnvoyBinary, lab: LabToDeploy, workdir: Path) -> None:
    """`envoy --mode validate` on the lab's config: InputError (exit 2) at the object's
    file:line when Envoy refuses something of the lab's; returns when it does not."""
    from meshlab.backends.embedded.envoy.validate import EnvoyValidation  # refusals only

    with EnvoyValidation(binary, lab.plan, workdir) as validation:
        validation.result()


def _pod_spec(pod: PodInstance) -> PodSpec:
    return PodSpec(
        name=pod.name,
        namespace=pod.namespace,
        image=pod.image,
        labels=dict(pod.labels),
        container_ports=tuple(sorted({p.number for p in pod.ports})),
    )


class EmbeddedMesh(Deployed):
    """A deployed lab: sessions send requests where their origin enters the mesh."""

    def __init__(
        self,
        plan: MeshPlan,
        proxies: MeshProxies,
        namespace: str,
        addresses: Mapping[str, Mapping[int, int]],
        envoy: RunningEnvoy,
        watch: Watchdog,
    ):
        self.plan = plan
        self.proxies = proxies
        self.namespace = namespace
        self.envoy = envoy
        self.watch = watch
        self.request_timeout = request_timeout(max(_longest_wait(p.plan) for p in proxies.all))
        # the endpoints' pods: the lab's, the external stand-ins and the egress gateway's
        pods = {
            e.pod.name: e.pod
            for s in plan.registry.services
            for endpoints in s.endpoints.values()
            for e in endpoints
        }
        pods |= {p.name: p for p in plan.registry.all_pods}
        self.pods_by_name = pods
        self.by_address = {
            f"127.0.0.1:{local}": pods[name]
            for name, ports in addresses.items()
            for local in ports.values()
        }
        self.pod_of = pod_finder(self.by_address, pods)
        self._pods = [
            PodInfo(p.name, dict(p.labels), p.image, describe(p.image))
            for p in plan.registry.all_pods
        ]
        self._sessions: set[EmbeddedSession] = set()

    @property
    def pods(self) -> Sequence[PodInfo]:
        return self._pods

    def entry(self, request: ProbeRequest) -> Entry:
        return entry_for(self.proxies, self.envoy.listener_ports, request, self.namespace)

    def unreachable(self, request: ProbeRequest) -> str | None:
        """Why a request cannot even be sent (DNS, nothing listening), else None."""
        return self.entry(request).refusal

    def session(self) -> EmbeddedSession:
        session = EmbeddedSession(
            self.entry,
            self.pod_of,
            self.pods_by_name,
            self.request_timeout,
            self._watch,
            self.watch.after_batch,
            self._sessions.discard,
        )
        self._sessions.add(session)
        return session

    def _watch(self, result: Reply | Failure) -> None:
        """As each answer arrives: a request that got none may mean a dead or stopped backend."""
        if isinstance(result, Failure):
            if result.timed_out:
                self.watch.after_timeout()  # a stopped or mute backend: BackendError
            else:
                self.watch.raise_if_dead()

    def access_points(self) -> Sequence[AccessPoint]:
        return access_points(self.proxies, self.envoy.listener_ports)

    def close(self) -> None:
        """At teardown: the sessions a check left open lose their connections."""
        for session in list(self._sessions):
            session.close()


def _longest_wait(plan: MeshPlan) -> float:
    """The longest a request may rightly take in this lab: its longest fault delay, plus
    Envoy's retry back-offs (each at most 10 times the base interval, 250 ms by default)."""
    longest = 0.0
    for table in plan.route_tables.values():
        for host in table:
            for route in host.routes:
                delay = (route.fault.delay_s or 0.0) if route.fault else 0.0
                retry = route.retry
                each = 10 * retry.backoff_s if retry and retry.backoff_s else 0.25
                backoff = retry.attempts * each if retry else 0.0
                longest = max(longest, delay + backoff)
    return longest


__all__ = ["EmbeddedBackend", "EmbeddedMesh", "EmbeddedSession"]
