"""The run options (meshlab.options.RUN_OPTIONS) as click options: `meshlab run` and
`meshlab grade` take the same ones, with the same names, help and validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from meshlab.options import RUN_OPTIONS, RunOption


class _Parsed(click.ParamType[Any, Any]):
    """A run option's own parser as a click type: its ValueError is click's usage error."""

    def __init__(self, option: RunOption) -> None:
        self.option = option
        self.name = (option.metavar or option.dest).lower()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str) or self.option.parse is None:
            return value
        try:
            return self.option.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def run_options(command: Callable[..., None]) -> Callable[..., None]:
    """RUN_OPTIONS as click options (the pytest plugin adds the same ones to pytest)."""
    for option in reversed(RUN_OPTIONS):
        if option.is_flag:
            decorate = click.option(option.flag, option.dest, is_flag=True, help=option.help)
        else:
            kind: click.ParamType[Any, Any] = (
                click.Choice(option.choices) if option.choices else _Parsed(option)
            )
            decorate = click.option(
                option.flag,
                option.dest,
                type=kind,
                default=option.default,
                show_default=option.default is not None,
                metavar=option.metavar,
                help=option.help,
            )
        command = decorate(command)
    return command
