"""`meshlab list` and `meshlab doctor`: which labs there are, and whether a run can start here."""

from __future__ import annotations

from pathlib import Path

import click

from meshlab.errors import printable


@click.command("list")
@click.argument(
    "labs_dir", type=click.Path(path_type=Path, exists=True, file_okay=False), required=False
)
def list_labs(labs_dir: Path | None) -> None:
    """List the labs under LABS_DIR with their checks (default: the project's `labs/`,
    found from any folder inside the project)."""
    from meshlab.checks import load_checked_lab
    from meshlab.load.lab import LAB_FILE

    folder = labs_dir if labs_dir is not None else _find_labs(Path.cwd())
    # in course order: `2-traffic` before `10-service-entries`
    lab_files = sorted(folder.glob(f"*/{LAB_FILE}"), key=lambda f: _course_order(f.parent.name))
    if not lab_files:
        raise click.UsageError(f"no lab in {folder}: a lab is a folder with a {LAB_FILE}")
    for lab_file in lab_files:
        checked = load_checked_lab(lab_file)
        checks = ", ".join(f"{c.name} ({c.kind})" for c in checked.checks)
        click.echo(printable(f"{checked.lab.name}: {checked.lab.title} — {checks}"))


def _find_labs(start: Path) -> Path:
    """The folder of labs for a command run from `start`: `start` itself when it holds labs,
    the folder holding the lab `start` is, else `labs/` in `start` or a folder above it, up to
    the project's root (the first folder with `.git` or `pyproject.toml`)."""
    from meshlab.load.lab import LAB_FILE

    if any(start.glob(f"*/{LAB_FILE}")):
        return start
    if (start / LAB_FILE).is_file():
        return start.parent
    for folder in (start, *start.parents):
        if any((folder / "labs").glob(f"*/{LAB_FILE}")):
            return folder / "labs"
        if (folder / ".git").exists() or (folder / "pyproject.toml").is_file():
            break
    raise click.UsageError(
        f"no folder of labs in {start} or its project: give one, e.g. `meshlab list path/to/labs`"
    )


@click.command()
@click.option(
    "--envoy", "envoy", type=click.Path(path_type=Path), default=None, envvar="MESHLAB_ENVOY"
)
def doctor(envoy: Path | None) -> None:
    """Say which Envoy the embedded backend would run, and whether it works."""
    import datetime

    from meshlab.backends.embedded.castore import describe, store_path
    from meshlab.backends.embedded.envoy.binary import find_envoy

    binary = find_envoy(envoy)
    click.echo(f"embedded backend: {binary.describe()} at {binary.path}")
    click.echo(describe(store_path(), datetime.datetime.now(datetime.UTC)))
    click.echo(f"kind backend: {_kind_status()}")


def _kind_status() -> str:
    """Whether `--backend kind` could start here (the same fast check a run makes)."""
    from meshlab.backends.registry import get_backend
    from meshlab.errors import BackendUnavailable

    try:
        info = get_backend("kind").describe()
    except BackendUnavailable as exc:
        return f"cannot run here: {exc}"
    image = info["node_image"].split("@")[0]
    return (
        f"can start here (Docker engine {info.get('docker', '?')}); would use kind "
        f"{info['kind']}, {image}, Istio {info['istio']}"
    )


def _course_order(name: str) -> tuple[int, str]:
    """A lab folder's section number first (`10-service-entries` -> 10), then its name."""
    number = name.split("-", 1)[0]
    return (int(number) if number.isdigit() else 1 << 30, name)
