"""Issue #9, items 5 and 9: every invalid input is an InputError at its file and line (exit 2
from the CLI), never a traceback; symbolic links never make meshlab read outside the lab."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from meshlab.analysis import analyze_paths
from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.cli import main
from meshlab.errors import InputError, InputErrors, reading_input
from meshlab.pipeline import prepare

REPO = Path(__file__).parents[2]
TRAFFIC_LAB = REPO / "labs" / "2-traffic"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    copy = tmp_path / "lab"
    shutil.copytree(TRAFFIC_LAB, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return copy


def edit(lab: Path, name: str, old: str, new: str) -> None:
    path = lab / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def lab_yaml(old: str, new: str) -> Callable[[Path], None]:
    return lambda lab: edit(lab, "lab.yaml", old, new)


def annotate(value: str) -> Callable[[Path], None]:
    return lambda lab: edit(
        lab,
        "fleetman.yaml",
        "  name: position-simulator\n",
        f"  name: position-simulator\n  annotations:\n    note: {value}\n",
    )


REQUESTS = "requests: auto"
CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # name: (edit, file the error must name, words the message must hold)
    "invalid date as a number": (lab_yaml(REQUESTS, "requests: 2024-02-30"), "lab.yaml", ""),
    "!!int with a bad value": (lab_yaml(REQUESTS, "requests: !!int abc"), "lab.yaml", "int"),
    "!!float with a bad value": (lab_yaml(REQUESTS, "requests: !!float x"), "lab.yaml", "float"),
    "!!bool with a bad value": (lab_yaml(REQUESTS, "requests: !!bool maybe"), "lab.yaml", "bool"),
    "!!timestamp with a bad value": (
        lab_yaml(REQUESTS, "requests: !!timestamp 2024-13-45"),
        "lab.yaml",
        "requests",
    ),
    "unknown tag": (lab_yaml(REQUESTS, "requests: !!python/name:os.system x"), "lab.yaml", "tag"),
    "an integer over 4300 digits": (
        lab_yaml(REQUESTS, "requests: " + "9" * 5000),
        "lab.yaml",
        "out of range",
    ),
    "a hex integer over 64 bits": (
        lab_yaml(REQUESTS, "requests: 0x" + "f" * 3000),
        "lab.yaml",
        "out of range",
    ),
    "a float that overflows": (lab_yaml(REQUESTS, "requests: 1.0e+999"), "lab.yaml", "finite"),
    "url port out of range": (lab_yaml(":8080", ":99999"), "lab.yaml", "port"),
    "url port not a number": (lab_yaml(":8080", ":http"), "lab.yaml", "port"),
    "url port zero": (lab_yaml(":8080", ":0"), "lab.yaml", "port"),
    "url over 64 KB": (lab_yaml(URL, URL + "x" * 70_000), "lab.yaml", "at most"),
    "url with a space": (lab_yaml("City%20Truck", "City Truck"), "lab.yaml", "printable"),
    "url host not a name": (
        lab_yaml("fleetman-staff-service:8080", "bad_host!:8080"),
        "lab.yaml",
        "host",
    ),
    "non-ASCII header value": (
        lab_yaml("    by: version", '      headers: {x-user: "é"}\n    by: version'),
        "lab.yaml",
        "printable ASCII",
    ),
    "control character in a header name": (
        lab_yaml("    by: version", '      headers: {"x\\u0001": a}\n    by: version'),
        "lab.yaml",
        "token",
    ),
    "newline in a header value": (
        lab_yaml("    by: version", '      headers: {x-a: "a\\nb"}\n    by: version'),
        "lab.yaml",
        "printable ASCII",
    ),
    ".nan in expect": (
        lab_yaml("expect: {safe: 90, risky: 10}", "expect: {safe: .nan, risky: 1}"),
        "lab.yaml",
        "finite",
    ),
    ".inf in expect": (
        lab_yaml("expect: {safe: 90, risky: 10}", "expect: {safe: .inf, risky: 1}"),
        "lab.yaml",
        "finite",
    ),
    "huge expect weight": (
        lab_yaml("expect: {safe: 90, risky: 10}", "expect: {safe: 1.0e+300, risky: 1.0e+300}"),
        "lab.yaml",
        "less than or equal",
    ),
    ".inf points": (lab_yaml(REQUESTS, "points: .inf"), "lab.yaml", "finite"),
    "-.inf points": (lab_yaml(REQUESTS, "points: -.inf"), "lab.yaml", "finite"),
    "manifest name with NUL": (
        lab_yaml("[fleetman.yaml, istio-rules.yaml]", '[fleetman.yaml, "a\\0.yaml"]'),
        "lab.yaml",
        "file name",
    ),
    "manifest name too long": (
        lab_yaml("[fleetman.yaml, istio-rules.yaml]", "[fleetman.yaml, " + "a" * 300 + "]"),
        "lab.yaml",
        "cannot be used",
    ),
    "manifest path over PATH_MAX": (
        lab_yaml("[fleetman.yaml, istio-rules.yaml]", "[fleetman.yaml, " + "a/" * 3000 + "]"),
        "lab.yaml",
        "file name",
    ),
    "image string too long for exec": (
        lambda lab: edit(
            lab, "fleetman.yaml", "image: richardchesterwood", "image: " + "a" * 200_000
        ),
        "fleetman.yaml",
        "image",
    ),
    "label set too large for exec": (
        lambda lab: edit(
            lab,
            "fleetman.yaml",
            "        version: safe\n",
            "        version: safe\n" + "".join(f"        k{i}: {'v' * 60}\n" for i in range(2000)),
        ),
        "fleetman.yaml",
        "labels",
    ),
    "lone surrogate in a string": (
        lab_yaml("title: Canary release", 'title: "\\ud800" #'),
        "lab.yaml",
        "surrogate",
    ),
    "name with a trailing newline": (
        lambda lab: edit(
            lab, "istio-rules.yaml", "  name: fleetman-staff-service\n", '  name: "x\\n"\n'
        ),
        "istio-rules.yaml",
        "name",
    ),
    "virtual service host with a newline": (
        lambda lab: edit(
            lab, "istio-rules.yaml", "  - fleetman-staff-service\n", '  - "a\\n1 passed"\n'
        ),
        "istio-rules.yaml",
        "host",
    ),
}


@pytest.mark.parametrize(
    "where", [annotate("2024-02-30"), lab_yaml("Canary release", "2024-02-30")]
)
def test_invalid_dates_are_strings_as_kubernetes_reads_them(
    lab: Path, where: Callable[[Path], None]
) -> None:
    """PyYAML's timestamp constructor raises ValueError on `2024-02-30`; kubectl sends the
    text as it is, and so does meshlab."""
    where(lab)
    prepared = prepare(lab)
    assert "2024-02-30" in prepared.lab.title or any(
        "2024-02-30" in r.body.metadata.annotations.values() for r in prepared.resources
    )


def prepare_and_render(lab: Path) -> None:
    prepared = prepare(lab)
    render_bootstrap(prepared.plan, placeholder_addresses(prepared.plan))


def first_error(exc: InputError) -> InputError:
    return exc.errors[0] if isinstance(exc, InputErrors) else exc


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_input_is_an_input_error_at_its_line(lab: Path, case: str) -> None:
    change, file, words = CASES[case]
    change(lab)
    with pytest.raises(InputError) as caught:
        prepare_and_render(lab)
    error = first_error(caught.value)
    assert error.location is not None, str(error)
    assert error.location.path.name == file
    assert error.location.line >= 1
    assert words in error.message
    assert "\n" not in str(error).split("\n  hint:")[0]  # one line per error, escaped


def run_cli(*args: str | Path) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    code = exited.value.code
    assert isinstance(code, int)
    return code, ""


def test_cli_exits_2_without_a_traceback(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab_yaml(":8080", ":99999")(lab)
    code, _ = run_cli("envoy-config", lab)
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert re.search(r"lab\.yaml:\d+:\d+: error:.*port", err)


def test_an_unexpected_exception_while_reading_input_is_exit_2() -> None:
    @reading_input("the lab")
    def load() -> None:
        raise KeyError("surprise")

    with pytest.raises(InputError) as caught:
        load()
    assert "the lab could not be read: KeyError" in str(caught.value)
    assert "report it" in str(caught.value)


class _Stop(SystemExit):
    """What the CLI raises on SIGTERM (cli.Stopped)."""


class _Stopping:
    def __set_name__(self, owner: type, name: str) -> None:
        raise _Stop(143)


def test_a_stop_while_reading_input_stays_a_stop() -> None:
    """SIGTERM as pydantic builds a class: Python 3.11 wraps what `__set_name__` raises in a
    RuntimeError; the stop goes on unwinding (exit 143), not as unreadable input (exit 2)."""

    @reading_input("the lab")
    def load() -> None:
        type("Model", (), {"field": _Stopping()})

    with pytest.raises(_Stop):
        load()

    @reading_input("the lab")
    def interrupted() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ValueError("while handling it") from exc

    with pytest.raises(KeyboardInterrupt):
        interrupted()


@pytest.mark.parametrize(("stop", "code"), [(_Stop(143), 143), (KeyboardInterrupt(), 130)])
def test_a_stop_python_wrapped_is_still_a_stop_at_the_cli(
    stop: BaseException, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM or Ctrl-C that reaches the CLI inside another exception (a class built
    lazily mid-command) exits as the stop it is, not as an internal error (exit 3)."""
    import meshlab.backends.embedded.envoy.bootstrap as bootstrap

    def stopped(*args: object) -> object:
        raise RuntimeError("Error calling __set_name__") from stop

    monkeypatch.setattr(bootstrap, "render_bootstrap", stopped)
    assert run_cli("envoy-config", TRAFFIC_LAB)[0] == code


def test_a_bug_elsewhere_is_exit_3_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import meshlab.backends.embedded.envoy.bootstrap as bootstrap

    def broken(*args: object) -> object:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(bootstrap, "render_bootstrap", broken)
    monkeypatch.delenv("MESHLAB_DEBUG", raising=False)
    code, _ = run_cli("envoy-config", TRAFFIC_LAB)
    err = capsys.readouterr().err
    assert code == 3
    assert "internal error: ZeroDivisionError: a bug" in err
    assert "Traceback" not in err
    monkeypatch.setenv("MESHLAB_DEBUG", "1")
    code, _ = run_cli("envoy-config", TRAFFIC_LAB)
    assert code == 3
    assert "Traceback" in capsys.readouterr().err


# --- item 9: symbolic links --------------------------------------------------------------------


SECRET = "title: the instructor's secret answers\n"


def test_lab_yaml_linking_outside_the_folder_is_refused(tmp_path: Path, lab: Path) -> None:
    outside = tmp_path / "secret.yaml"
    outside.write_text(SECRET + "nonsense: [", encoding="utf-8")
    (lab / "lab.yaml").unlink()
    (lab / "lab.yaml").symlink_to(outside)
    for path in (lab, lab / "lab.yaml"):
        with pytest.raises(InputError) as caught:
            prepare(path)
        assert "symbolic link to a file outside the lab folder" in str(caught.value)
        assert "secret" not in str(caught.value)


def test_lab_yaml_linking_inside_the_folder_is_fine(lab: Path) -> None:
    (lab / "real.yaml").write_text((lab / "lab.yaml").read_text(), encoding="utf-8")
    (lab / "lab.yaml").unlink()
    (lab / "lab.yaml").symlink_to("real.yaml")
    assert prepare(lab).lab.title


def test_a_symlink_loop_as_a_manifest_is_an_input_error(lab: Path) -> None:
    (lab / "loop.yaml").symlink_to("loop.yaml")
    edit(lab, "lab.yaml", "[fleetman.yaml, istio-rules.yaml]", "[fleetman.yaml, loop.yaml]")
    with pytest.raises(InputError) as caught:
        prepare(lab)
    assert "loop.yaml" in str(caught.value)


def test_analyze_refuses_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    shutil.copy(TRAFFIC_LAB / "istio-rules.yaml", folder / "rules.yaml")
    outside = tmp_path / "secret.yaml"
    outside.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: answers}\n")
    assert len(analyze_paths([folder]).files) == 1
    (folder / "more.yaml").symlink_to(outside)
    with pytest.raises(InputError) as caught:
        analyze_paths([folder])
    assert "more.yaml is a symbolic link to a file outside" in str(caught.value)


def test_analyze_exits_2_on_a_symlink_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "x.yml").symlink_to(tmp_path)
    code, _ = run_cli("analyze", folder)
    assert code == 2
    assert "outside" in capsys.readouterr().err
