"""The `meshlab` console script (cli.program) exits without the interpreter's teardown of
every module, and loses nothing on the way: exit code, output, atexit handlers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# A global whose __del__ runs only when the interpreter tears modules down; an atexit handler
# registered while meshlab runs (as the backend registers its clean-up).
_SCRIPT = """
import atexit, sys
import meshlab.cli as cli

class Teardown:
    def __del__(self):
        print("torn down", flush=True)

keep = Teardown()
inner = cli.main

def main(argv=None):
    atexit.register(lambda: print("handler ran", flush=True))
    print("partial line without newline", end="")
    inner(argv)

cli.main = main
sys.argv = ["meshlab", *sys.argv[1:]]
getattr(cli, sys.argv.pop(1))()
"""


def _meshlab(entry: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, entry, *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [(("--help",), 0, "Usage: meshlab"), (("run", "/no/such/lab"), 2, "no lab.yaml found")],
)
def test_the_program_keeps_exit_code_output_and_handlers(
    args: tuple[str, ...], code: int, said: str
) -> None:
    done = _meshlab("program", *args)
    assert done.returncode == code
    assert said in done.stdout + done.stderr
    assert done.stdout.startswith("partial line without newline")  # flushed before the exit
    assert "handler ran" in done.stdout
    assert "torn down" not in done.stdout  # the teardown was skipped


def test_main_still_exits_as_any_python_program() -> None:
    """The test above can fail: without program(), the module teardown does run."""
    done = _meshlab("main", "--help")
    assert done.returncode == 0
    assert "handler ran" in done.stdout
    assert "torn down" in done.stdout


_PLUGIN_DIST = """\
[pydantic]
spy = meshlab_spy_plugin:plugin
"""
_PLUGIN = """\
import os
from pathlib import Path
Path(os.environ["SPY_MARK"]).write_text("loaded")


class Plugin:  # pydantic's PydanticPluginProtocol: observes nothing
    def new_schema_validator(self, *args, **kwargs):
        return None, None, None


plugin = Plugin()
"""


@pytest.mark.parametrize(
    ("entry", "preset", "loaded"),
    [("program", None, False), ("main", None, True), ("program", "", True)],
    ids=["the-command-skips-plugins", "main-as-a-library-keeps-them", "a-users-setting-stands"],
)
def test_the_command_does_not_load_pydantic_plugins(
    tmp_path: Path, entry: str, preset: str | None, loaded: bool
) -> None:
    """An installed pydantic plugin (an entry point in the `pydantic` group) is loaded on the
    first schema pydantic builds; the `meshlab` command turns plugins off, unless the user
    set PYDANTIC_DISABLE_PLUGINS (here to "", which keeps them)."""
    site = tmp_path / "site"
    dist = site / "meshlab_spy_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: meshlab-spy-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(_PLUGIN_DIST)
    (site / "meshlab_spy_plugin.py").write_text(_PLUGIN)
    mark = tmp_path / "mark"
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env |= {"PYTHONPATH": f"{SRC}{os.pathsep}{site}", "SPY_MARK": str(mark)}
    if preset is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = preset
    lab = SRC.parent / "labs" / "2-traffic"
    argv = ["meshlab", "analyze", str(lab)]
    code = f"import sys, meshlab.cli as c; sys.argv = {argv!r}; c.{entry}()"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert mark.exists() is loaded, done.stderr
