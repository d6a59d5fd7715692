"""Every error meshlab raises on purpose, so callers can map them to exit codes.

    MeshlabError
     ├── InputError            bad user input: YAML, lab.yaml, manifests (exit 2, file:line)
     ├── BackendUnavailable    the chosen backend cannot run on this machine (exit 2)
     └── BackendError          the backend broke while running (exit 3)

Anything else escaping the CLI is a bug in meshlab and is reported as one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_BACKEND = 3


@dataclass(frozen=True, order=True)
class Location:
    """A position in a file, 1-based like every compiler message a student has seen."""

    path: Path
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{_display(self.path)}:{self.line}:{self.column}"

    def short(self) -> str:
        """`file.yaml:14`: the form used inside sentences."""
        return f"{self.path.name}:{self.line}"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class MeshlabError(Exception):
    """Base class: the message is meant for the person at the terminal."""

    exit_code = EXIT_BACKEND


class InputError(MeshlabError):
    """Input a student or instructor can fix; carries where it is when we know it."""

    exit_code = EXIT_INPUT

    def __init__(
        self, message: str, location: Location | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        hint = f"\n  hint: {self.hint}" if self.hint else ""
        return f"{where}error: {self.message}{hint}"


class InputErrors(InputError):
    """Several input errors found in one pass, reported together like a compiler would."""

    def __init__(self, errors: list[InputError]) -> None:
        super().__init__(f"{len(errors)} errors", errors[0].location if errors else None)
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class BackendUnavailable(MeshlabError):
    """The backend cannot start here (no Envoy binary, no Docker): nothing was run."""

    exit_code = EXIT_INPUT


class BackendError(MeshlabError):
    """The backend failed mid-run (Envoy crashed, a stand-in died); includes what it said."""

    exit_code = EXIT_BACKEND


class ErrorCollector:
    """Gathers InputErrors across a whole lab so a student sees every mistake in one run."""

    def __init__(self) -> None:
        self.errors: list[InputError] = []

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Run the block; an InputError ends it (not the caller's loop) and is kept."""
        try:
            yield
        except InputErrors as exc:
            self.errors.extend(exc.errors)
        except InputError as exc:
            self.errors.append(exc)

    def add(self, error: InputError) -> None:
        self.errors.append(error)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InputErrors(self.errors) if len(self.errors) > 1 else self.errors[0]
