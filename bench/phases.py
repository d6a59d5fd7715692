"""`python bench/phases.py OUT.json meshlab-args...`: the `meshlab` CLI with a clock on its
phases, for bench/run.py's process_wall breakdown.

meshlab has no timing option, so this wrapper times it from outside: it stamps the wall clock
(time.time(), comparable with the parent's) when the interpreter reaches it, once the backend
is made (so "import" holds the CLI's imports, the processes a run starts ahead where it does,
and the pipeline's imports), around `prepare`, at the embedded backend's deployment (entered,
yielded, left) and when `main` returns, and writes them to OUT.json at exit. The parent adds
the spawn and exit times. Nothing is imported ahead of the run: the pipeline and the embedded
backend are clocked as the run imports them (where a checkout has no `get_backend` hook point,
they are imported first, as before).
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


def _clock(pipeline: Any, backend: Any) -> None:
    """Wrap `prepare` and the embedded backend's `deploy` with stamps."""
    prepare = pipeline.prepare

    def timed_prepare(*a: Any, **k: Any) -> Any:
        _stamp("prepare")
        try:
            return prepare(*a, **k)
        finally:
            _stamp("prepared")

    deploy = backend.EmbeddedBackend.deploy

    @contextmanager
    def timed_deploy(self: Any, lab: Any) -> Iterator[Any]:
        _stamp("deploy")
        with deploy(self, lab) as mesh:
            _stamp("deployed")
            try:
                yield mesh
            finally:
                _stamp("checked")
        _stamp("torn_down")

    pipeline.prepare = timed_prepare
    backend.EmbeddedBackend.deploy = timed_deploy


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    from meshlab import cli
    from meshlab.backends import registry

    if "warm_start" in vars(registry):  # the run starts processes before its imports
        get_backend = registry.get_backend

        def clocked_backend(*a: Any, **k: Any) -> Any:
            made = get_backend(*a, **k)
            from meshlab import pipeline  # the run imports it next, before `prepare`
            from meshlab.backends.embedded import backend

            _clock(pipeline, backend)
            _stamp("imported")
            return made

        registry.get_backend = clocked_backend
    else:
        from meshlab import pipeline
        from meshlab.backends.embedded import backend

        _stamp("imported")
        _clock(pipeline, backend)
    sys.argv = ["meshlab", *args]
    try:
        cli.main(None)
    except SystemExit as done:
        STAMPS["exit_code"] = float(done.code if isinstance(done.code, int) else 0)
    finally:
        _stamp("returned")
        with open(out, "w", encoding="utf-8") as f:
            json.dump(STAMPS, f)


if __name__ == "__main__":
    main()
