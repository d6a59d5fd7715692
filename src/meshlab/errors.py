"""Every error meshlab raises on purpose, so callers can map them to exit codes.

    MeshlabError
     ├── InputError            bad user input: YAML, lab.yaml, manifests (exit 2, file:line)
     ├── BackendUnavailable    the chosen backend cannot run on this machine (exit 2)
     └── BackendError          the backend broke while running (exit 3)

Anything else escaping the CLI is a bug in meshlab and is reported as one (exit 3), except
while input is read (`reading_input`): there it says which input could not be read (exit 2).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

from meshlab.records import dataclass

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_BACKEND = 3


# What a terminal, a CI log or an XML file must never get raw from a manifest: C0 and C1
# controls (newlines, ANSI escapes, carriage returns), DEL, Unicode line separators,
# bidirectional overrides and lone surrogates (a file name that is not UTF-8). Escaped as
# \xNN / \uNNNN so the text stays readable.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff]"
)
_UNPRINTABLE_BUT_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff]"
)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` safe to print on one line (or, with `newlines`, on its own lines): a title or
    a host from a manifest can never forge an output line or move the cursor."""
    pattern = _UNPRINTABLE_BUT_NEWLINE if newlines else _UNPRINTABLE
    return pattern.sub(_escape_char, text)


@dataclass(frozen=True, order=True)
class Location:
    """A position in a file, 1-based like every compiler message a student has seen."""

    path: Path
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{printable(_display(self.path))}:{self.line}:{self.column}"

    def short(self) -> str:
        """`file.yaml:14`: the form used inside sentences."""
        return f"{printable(self.path.name)}:{self.line}"


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
        hint = f"\n  hint: {printable(self.hint)}" if self.hint else ""
        return f"{where}error: {printable(self.message)}{hint}"


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


P = ParamSpec("P")
R = TypeVar("R")


def reading_input(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function that reads and validates input (`what`, e.g. "the lab"): an
    exception it did not mean to raise still says the input could not be read (exit 2),
    never a traceback. A meshlab bug hides behind it, so the message asks for a report."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except MeshlabError:
                raise
            except (RecursionError, MemoryError) as exc:
                raise InputError(
                    f"{what} is too large or too deeply nested to read ({type(exc).__name__})"
                ) from exc
            except Exception as exc:
                stop = stop_behind(exc)
                if stop is not None:
                    raise stop from None  # Ctrl-C or SIGTERM while reading: a stop, not input
                raise InputError(
                    f"{what} could not be read: {type(exc).__name__}: {exc}",
                    hint="this input is unusual, but meshlab should have said what is wrong "
                    "with it: please report it (with the files) as a meshlab bug",
                ) from exc

        return guarded

    return decorate


def stop_behind(error: BaseException) -> BaseException | None:
    """The KeyboardInterrupt or SystemExit (the CLI's SIGTERM is one) that `error` wraps, if
    any: Python 3.11 turns one raised in a class's `__set_name__` (pydantic builds classes as
    a lab is read and as check kinds are imported) into a RuntimeError caused by it. Whoever
    catches Exception re-raises it, so a stop stays a stop."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if not isinstance(current, Exception):
            return current
        current = current.__cause__ or current.__context__
    return None
