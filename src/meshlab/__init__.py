"""meshlab: check Istio traffic rules by sending real traffic through a real Envoy.

The public API, for labs' own tests and for tools built on meshlab::

    import meshlab

    report = meshlab.run_lab(Path("labs/2-traffic"))       # load -> mesh -> backend -> checks
    report.model().model_dump_json()                        # the JSON report (meshlab.RunReport)
    meshlab.analyze_paths([Path("labs/2-traffic")])         # `meshlab analyze`, offline

Every name is imported on first use (PEP 562): stand-in pods start as
`python -m meshlab.backends.embedded.standins`, which imports this package, and must not pay
for pydantic or scipy. Everything else in the package is internal and may change.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshlab.analysis import Diagnostic, analyze, analyze_paths
    from meshlab.backends.base import Backend, Deployed, LabToDeploy, Outcome, Session
    from meshlab.backends.fake import FakeBackend
    from meshlab.backends.registry import available_backends, get_backend
    from meshlab.checks import CheckResult, load_checked_lab
    from meshlab.checks.stats import Design
    from meshlab.errors import BackendError, BackendUnavailable, InputError, MeshlabError
    from meshlab.mesh.request import ProbeRequest
    from meshlab.pipeline import LabReport, PreparedLab, RunOptions, prepare, run_lab
    from meshlab.report.model import RunReport
    from meshlab.version import __version__

# name -> the module that defines it
_EXPORTS = {
    "Backend": "meshlab.backends.base",
    "BackendError": "meshlab.errors",
    "BackendUnavailable": "meshlab.errors",
    "CheckResult": "meshlab.checks",
    "Deployed": "meshlab.backends.base",
    "Design": "meshlab.checks.stats",
    "Diagnostic": "meshlab.analysis",
    "FakeBackend": "meshlab.backends.fake",
    "InputError": "meshlab.errors",
    "LabReport": "meshlab.pipeline",
    "LabToDeploy": "meshlab.backends.base",
    "MeshlabError": "meshlab.errors",
    "Outcome": "meshlab.backends.base",
    "PreparedLab": "meshlab.pipeline",
    "ProbeRequest": "meshlab.mesh.request",
    "RunOptions": "meshlab.pipeline",
    "RunReport": "meshlab.report.model",
    "Session": "meshlab.backends.base",
    "__version__": "meshlab.version",
    "analyze": "meshlab.analysis",
    "analyze_paths": "meshlab.analysis",
    "available_backends": "meshlab.backends.registry",
    "get_backend": "meshlab.backends.registry",
    "load_checked_lab": "meshlab.checks",
    "prepare": "meshlab.pipeline",
    "run_lab": "meshlab.pipeline",
}

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "CheckResult",
    "Deployed",
    "Design",
    "Diagnostic",
    "FakeBackend",
    "InputError",
    "LabReport",
    "LabToDeploy",
    "MeshlabError",
    "Outcome",
    "PreparedLab",
    "ProbeRequest",
    "RunOptions",
    "RunReport",
    "Session",
    "__version__",
    "analyze",
    "analyze_paths",
    "available_backends",
    "get_backend",
    "load_checked_lab",
    "prepare",
    "run_lab",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'meshlab' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
