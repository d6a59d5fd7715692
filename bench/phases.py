"""`python bench/phases.py OUT.json meshlab-args...`: the `meshlab` CLI with a clock on its
phases, for bench/run.py's process_wall breakdown.

meshlab has no timing option, so this wrapper times it from outside: it stamps the wall clock
(time.time(), comparable with the parent's) when the interpreter reaches it, after importing
the CLI, around `prepare`, at the embedded backend's deployment (entered, yielded, left) and
when `main` returns, and writes them to OUT.json at exit. The parent adds the spawn and exit
times. It imports the pipeline and the embedded backend with the CLI (a run imports them
anyway, a little later): their cost counts as "import", and the phases add up to what the
same run costs unwrapped (bench/run.py reports both walls).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STAMPS: dict[str, float] = {"started": time.time()}


def _stamp(name: str) -> None:
    STAMPS.setdefault(name, time.time())  # the first deployment and check only


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    from meshlab import cli, pipeline
    from meshlab.backends.embedded import backend

    _stamp("imported")
    prepare = pipeline.prepare

    def timed_prepare(*a: Any, **k: Any) -> Any:
        _stamp("prepare")
        try:
            return prepare(*a, **k)
        finally:
            _stamp("prepared")

    deploy = backend.EmbeddedBackend.deploy

    @contextmanager
    def timed_deploy(self: backend.EmbeddedBackend, lab: Any) -> Iterator[Any]:
        _stamp("deploy")
        with deploy(self, lab) as mesh:
            _stamp("deployed")
            try:
                yield mesh
            finally:
                _stamp("checked")
        _stamp("torn_down")

    pipeline.prepare = timed_prepare  # type: ignore[assignment]
    backend.EmbeddedBackend.deploy = timed_deploy  # type: ignore[assignment,method-assign]
    sys.argv = ["meshlab", *args]
    try:
        cli.main()
    except SystemExit as done:
        STAMPS["exit_code"] = float(done.code if isinstance(done.code, int) else 0)
    finally:
        _stamp("returned")
        with open(out, "w", encoding="utf-8") as f:
            json.dump(STAMPS, f)


if __name__ == "__main__":
    main()
