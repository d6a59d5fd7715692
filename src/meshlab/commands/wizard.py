"""`meshlab wizard`: Kiali's traffic wizards, offline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


@click.group()
def wizard() -> None:
    """Kiali's traffic wizards, offline: the YAML Kiali would write for a service."""


_WIZARD_OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the YAML here (default: standard output).",
)
_WIZARD_LABEL = click.option(
    "--by",
    "label",
    default="version",
    show_default=True,
    help="The pod label that names versions (Kiali's version_label_name).",
)


@wizard.command("weighted")
@click.argument("service")
@click.argument("lab_dir", type=click.Path(path_type=Path))
@click.argument("weights", nargs=-1, metavar="[VERSION=WEIGHT]...")
@_WIZARD_LABEL
@_WIZARD_OUTPUT
def wizard_weighted(
    service: str, lab_dir: Path, weights: tuple[str, ...], label: str, output: Path | None
) -> None:
    """The VirtualService and DestinationRule of Kiali's weighted routing wizard for SERVICE,
    one subset per version of its pods; weights such as `safe=90 risky=10` (default: even)."""
    from meshlab.mesh.wizard import weighted_routing

    parsed = {}
    for item in weights:
        name, sep, number = item.partition("=")
        if not sep or not number.strip().isdigit():
            raise click.BadParameter(f"{item!r} is not VERSION=WEIGHT", param_hint="WEIGHTS")
        parsed[name.strip()] = int(number)
    _write_wizard(lab_dir, service, output, lambda r, s: weighted_routing(r, s, parsed, label))


@wizard.command("matching")
@click.argument("service")
@click.argument("lab_dir", type=click.Path(path_type=Path))
@click.option(
    "--rule",
    "rules",
    multiple=True,
    required=True,
    metavar="'[COND,...] -> VERSION'",
    help="A rule, first match wins: conditions header:NAME=OP:VALUE, uri=, method=, "
    "authority=, scheme= (OP exact, prefix or regex; default exact); '-> VERSION' matches all.",
)
@_WIZARD_LABEL
@_WIZARD_OUTPUT
def wizard_matching(
    service: str, lab_dir: Path, rules: tuple[str, ...], label: str, output: Path | None
) -> None:
    """The VirtualService and DestinationRule of Kiali's request matching wizard for SERVICE."""
    from meshlab.mesh.wizard import WizardError, parse_rule, request_matching

    try:
        parsed = [parse_rule(rule) for rule in rules]
    except WizardError as exc:
        raise click.BadParameter(str(exc), param_hint="--rule") from None
    _write_wizard(lab_dir, service, output, lambda r, s: request_matching(r, s, parsed, label))


def _write_wizard(
    lab_dir: Path, service_name: str, output: Path | None, build: Callable[[Any, Any], Any]
) -> None:
    import yaml

    from meshlab.mesh.wizard import WizardError, find_service
    from meshlab.pipeline import prepare

    prepared = prepare(lab_dir)
    registry = prepared.plan.registry
    try:
        objects = build(registry, find_service(registry, service_name, prepared.lab.namespace))
    except WizardError as exc:
        raise click.UsageError(str(exc)) from None
    # kubectl shows stored objects with sorted keys, as the course's Kiali-created files are
    text = "---\n".join(yaml.safe_dump(o, sort_keys=True) for o in objects)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.FileError(str(output), hint=exc.strerror or str(exc)) from None
