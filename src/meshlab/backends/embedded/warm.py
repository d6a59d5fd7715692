"""A run's Envoy, stand-in host and CA, started before the lab is read.

`meshlab run` spends ~0.4 s importing and reading the lab on one core while the other idles;
Envoy's own start (~0.1 s), the stand-in host's interpreter and imports and the CA's
`cryptography` import (~0.1 s each) need nothing from the lab. Started first, they run on the
idle core, and the deployment that follows only hands them their work: the pods (one JSON
line on the host's stdin), the identities to certify (one line to the CA, when the mesh CA
kept between runs lacks one: castore.py) and the lab's clusters and listeners (Envoy's file
subscription, envoy/dynamic.py). With a usable store the CA is not started at all.

What it does not change: the processes, their isolation and their teardown are the ones of
a cold start (processes.py); the config Envoy runs is the same (`render_mesh`). A lab whose
pods need more than one host, or a run whose Envoy turns out to be another binary, lets the
warm processes go and starts cold. Nothing but the mesh CA's store outlives the run.
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshlab.backends.embedded.castore import cached_certs, has_root, store_path
from meshlab.backends.embedded.certs import Identity, MeshCerts
from meshlab.backends.embedded.envoy.binary import (
    VERSION_TIMEOUT,
    EnvoyBinary,
    likely_envoy,
    version_in,
)
from meshlab.backends.embedded.envoy.dynamic import dynamic_bootstrap, write_empty_resources
from meshlab.backends.embedded.envoy.spawn import (
    ENVOY,
    StartingEnvoy,
    spawn_envoy,
    write_bootstrap,
)
from meshlab.backends.embedded.options import EmbeddedOptions
from meshlab.backends.embedded.processes import (
    ManagedProcess,
    ProcessGroup,
    child_env,
    module_argv,
    source_root,
)
from meshlab.errors import BackendError
from meshlab.records import dataclass

if TYPE_CHECKING:
    from meshlab.backends.embedded.envoy.process import RunningEnvoy
    from meshlab.backends.embedded.standins import PodSpec

# started first thing in a run: this module imports only what starting needs; what handing
# out the work needs (hosts, the Envoy admin client) the run has imported by then
STANDIN_MODULE = "meshlab.backends.embedded.standins"  # as hosts.py runs it, `--spec -`
CA_MODULE = "meshlab.backends.embedded.ca_worker"

WORK_TIMEOUT = 20.0  # a host or the CA answers its line in milliseconds once imported
HOST_NAME = "stand-in host"
CA_NAME = "mesh CA"
Render = Callable[[dict[str, dict[int, int]], MeshCerts], dict[str, Any]]


@dataclass
class WarmDeployment:
    """What a deployment gets from a warm start: its processes, running the lab."""

    group: ProcessGroup
    workdir: Path
    addresses: dict[str, dict[int, int]]
    envoy: RunningEnvoy
    serving: list[ManagedProcess]  # the host and Envoy (the CA has done its work)


class WarmStart:
    """Envoy (no listeners yet), one stand-in host (no pods yet) and the CA (no identities
    yet), in a temporary folder of their own; `close()` ends them and removes it."""

    def __init__(self, options: EmbeddedOptions) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="meshlab-"))
        self.group = ProcessGroup()
        self.envoy: StartingEnvoy | None = None
        self.source: str | None = None
        self.path: Path | None = None
        try:
            root = source_root()
            env = child_env()  # never a sidecar's MESHLAB_EGRESS inherited from ours
            found = likely_envoy(options.envoy)
            if found is not None:
                self.source, self.path = found
                write_empty_resources(self.workdir)
                config = dynamic_bootstrap(self.workdir, options.stats_prefixes)
                bootstrap = write_bootstrap(config, self.workdir / "envoy.json")
                self.envoy = spawn_envoy(self.group, self.path, bootstrap, self.workdir)
            self.host = self.group.spawn(
                HOST_NAME,
                module_argv(STANDIN_MODULE, ["--spec", "-"], root),
                env=env,
                cwd=self.workdir,
            )
            # the CA only where a run may need to sign: a store with a usable root lets the
            # lab's identities be read from it (castore.py); a missing one starts it later
            self.store = store_path()
            self.ca: ManagedProcess | None = None
            if self.store is None or not has_root(self.store, _now()):
                self.ca = self._start_ca()
        except BaseException:
            self.close()
            raise

    def _start_ca(self) -> ManagedProcess:
        return self.group.spawn(
            CA_NAME,
            module_argv(CA_MODULE, [], source_root()),
            env=child_env(),
            cwd=self.workdir,
        )

    def binary(self) -> EnvoyBinary | None:
        """The running Envoy's binary and version (its admin /server_info), without a
        `--version` process; None if it is not an Envoy that answers."""
        if self.envoy is None or self.path is None or self.source is None:
            return None
        from meshlab.backends.embedded.client import get_json

        try:
            # as long as `--version` would be given: an executable that is not Envoy may hang
            admin = self.envoy.admin_url(time.monotonic() + VERSION_TIMEOUT)
            info = get_json(f"{admin}/server_info", 5)
        except (BackendError, OSError, ValueError):
            return None
        version = version_in(f"version: {info.get('version', '')}")
        return None if version is None else EnvoyBinary(self.path.resolve(), version, self.source)

    def fits(self, binary: EnvoyBinary, pods: Sequence[PodSpec]) -> bool:
        """Whether this warm start can play the lab: the run's Envoy, every process alive,
        all pods on one host."""
        from meshlab.backends.embedded.hosts import MAX_HOSTS, PODS_PER_HOST, spread

        return (
            self.envoy is not None
            and self.path is not None
            and self.path.resolve() == binary.path
            and all(p.alive for p in self.group.processes)
            and len(spread(pods, PODS_PER_HOST, MAX_HOSTS)) == 1
        )

    @contextmanager
    def deploy(
        self, pods: Sequence[PodSpec], identities: Iterable[str], render: Render
    ) -> Iterator[WarmDeployment]:
        """Hand out the work: the pods to the host, the identities to the CA, then the config
        `render` makes of their ports and certificates to Envoy. Ends every process on exit."""
        from meshlab.backends.embedded.envoy.process import take_resources
        from meshlab.backends.embedded.hosts import check_ready, host_name
        from meshlab.backends.embedded.standins.pods import pod_record

        assert self.envoy is not None, "fits() first"
        envoy = self.envoy
        with self:
            deadline = time.monotonic() + WORK_TIMEOUT
            ids = sorted(set(identities))
            certs = None if self.store is None else cached_certs(self.store, ids, _now())
            ca = None
            if certs is None:  # something to sign: the CA, started now if it was not
                ca = self.ca or self._start_ca()
                store = None if self.store is None else str(self.store)
                directory = str(self.workdir / "certs")
                ca.send_json_line({"store": store, "directory": directory, "identities": ids})
            # named and membered as a cold start names its one host, for every message
            self.host.name = host_name(1, 1, pods, set())
            self.host.members = tuple(f"{p.namespace}/{p.name}" for p in pods)
            self.host.send_json_line({"pods": [pod_record(p) for p in pods]})
            line = self.host.read_json_line(max(deadline - time.monotonic(), 0.0))
            addresses = check_ready(pods, self.host, line)
            if certs is None:
                assert ca is not None
                certs = _certs(ca.read_json_line(max(deadline - time.monotonic(), 0.0)))
            running = take_resources(envoy, self.workdir, render(addresses, certs))
            yield WarmDeployment(
                self.group, self.workdir, addresses, running, [self.host, self.group[ENVOY]]
            )

    def close(self) -> None:
        """End every process and remove the folder (idempotent)."""
        try:
            self.group.close()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> WarmStart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _certs(line: dict[str, Any]) -> MeshCerts:
    """The CA's answer line as MeshCerts; BackendError when it is not one."""
    try:
        identities = {
            spiffe: Identity(spiffe, Path(files[0]), Path(files[1]))
            for spiffe, files in line["identities"].items()
        }
        return MeshCerts(Path(line["ca"]), identities)
    except (KeyError, TypeError, IndexError, AttributeError):
        raise BackendError(f"the mesh CA answered something else: {str(line)[:300]}") from None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def begin(options: EmbeddedOptions) -> WarmStart | None:
    """A warm start, or None where one cannot start (the cold start then says why)."""
    try:
        return WarmStart(options)
    except (OSError, BackendError, RuntimeError):
        return None
