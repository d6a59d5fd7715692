"""The class report of `meshlab grade`: the JSON contract other tools read (and `--merge`
reads back). Fields beyond the contract (`seconds`, `ignored`, `shard`) ride along; readers
of the contract ignore them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from meshlab.version import __version__


class _Model(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, extra="ignore")


class GradedCheck(_Model):
    """One of the instructor's checks, as it went for one student."""

    name: str
    points: float
    points_awarded: float = 0.0
    outcome: str = "not run"  # pass | fail | inconclusive | error | not run
    message: str = ""
    seconds: float = 0.0


class GradedSubmission(_Model):
    """One student's submission. `error` is None, or why it could not run (0 points)."""

    name: str
    points: float = 0.0
    max_points: float = 0.0
    passed: bool = False
    error: str | None = None
    ignored: list[str] = Field(default=[])  # files of the submission not used, why
    seconds: float = 0.0
    checks: list[GradedCheck] = Field(default=[])


class ClassReport(_Model):
    """The whole batch (or one shard of it), submissions sorted by name."""

    lab: str
    meshlab: str = __version__
    shard: str | None = None  # "I/N" when this report is one shard of a class
    backend: dict[str, str] = Field(default={})  # as `meshlab run --json` says it
    submissions: list[GradedSubmission] = Field(default=[])

    @property
    def check_names(self) -> list[str]:
        """The lab's checks in lab.yaml's order (every submission lists all of them)."""
        for submission in self.submissions:
            if submission.checks:
                return [c.name for c in submission.checks]
        return []
