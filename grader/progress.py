"""The student's progress: `.tito/progress.json`, written atomically.

Per module: status, score, when it was checked and the sha256 of the file that was checked
(so `tito status` can say "modified since check"). Per milestone: the last run's preset,
metrics and whether it achieved its target.

A progress file that cannot be read is never fatal: it is moved aside to
`progress.json.corrupt-<time>`, a warning says so, and tito carries on with empty progress.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

FORMAT_VERSION = 1


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class ModuleResult:
    status: str            # "passed" or "failed"
    score: float
    points: float
    passed: int
    total: int
    checked_at: str
    sha256: str            # of the student's file that was checked
    checkpoint_sha256: str = ""  # of the checkpoint file it was checked with
    cause: str = ""        # a failure that came from an earlier module: "module 01 did not import"


@dataclass
class MilestoneResult:
    preset: str
    metrics: dict[str, float]
    achieved: bool
    ran_at: str
    plots: list[str] = field(default_factory=list)
    substitute_data: str | None = None  # the data set the run did without (it used the documentation text)


@dataclass
class Progress:
    modules: dict[str, ModuleResult] = field(default_factory=dict)      # keyed by "01"
    milestones: dict[str, MilestoneResult] = field(default_factory=dict)  # keyed by milestone id

    def to_json(self) -> dict:
        return {"version": FORMAT_VERSION,
                "modules": {k: asdict(v) for k, v in self.modules.items()},
                "milestones": {k: asdict(v) for k, v in self.milestones.items()}}

    @classmethod
    def from_json(cls, raw: dict) -> Progress:
        if not isinstance(raw, dict) or raw.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown progress format (version {raw.get('version') if isinstance(raw, dict) else '?'})")
        return cls(
            modules={k: ModuleResult(**_known(ModuleResult, v)) for k, v in _table(raw, "modules").items()},
            milestones={k: MilestoneResult(**_known(MilestoneResult, v)) for k, v in _table(raw, "milestones").items()},
        )

    def module_passed(self, module_id: str) -> bool:
        result = self.modules.get(module_id)
        return result is not None and result.status == "passed"


FIELD_TYPES = {"str": (str,), "float": (int, float), "int": (int,), "bool": (bool,),
               "dict[str, float]": (dict,), "list[str]": (list,)}


def _known(kind: type, raw: dict) -> dict:
    """The fields of `kind`, type-checked; a key written by an older (or newer) tito is ignored."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object, not {type(raw).__name__}")
    values = {}
    for name, spec in kind.__dataclass_fields__.items():
        if name not in raw:
            continue
        allowed = FIELD_TYPES.get(str(spec.type), (object,))
        value = raw[name]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ValueError(f"{kind.__name__}.{name} is {value!r}, not a {spec.type}")
        values[name] = value
    return values


def _table(raw: dict, key: str) -> dict:
    table = raw.get(key, {})
    if not isinstance(table, dict):
        raise ValueError(f'"{key}" must be an object, not {type(table).__name__}')
    return table


class ProgressStore:
    """Reads and writes one progress file; `update()` is a locked read-modify-write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []

    def load(self) -> Progress:
        if not self.path.exists():
            return Progress()
        try:
            return Progress.from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError, RecursionError) as error:
            return self._set_aside(error)
        except OSError as error:
            self.warnings.append(f"progress file {self.path} cannot be read ({error.strerror}); showing none")
            return Progress()

    def _set_aside(self, error: Exception) -> Progress:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        counter = 1
        while aside.exists():  # two set aside in the same instant keep both
            aside, counter = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{counter}"), counter + 1
        try:
            os.replace(self.path, aside)
        except OSError as problem:
            self.warnings.append(f"progress file {self.path} could not be read ({type(error).__name__}: {error}) "
                                 f"nor set aside ({problem.strerror}); showing no progress")
            return Progress()
        self.warnings.append(
            f"progress file {self.path} could not be read ({type(error).__name__}: {error}); "
            f"kept it as {aside.name} and started fresh: re-run `tito check` to restore results"
        )
        return Progress()

    def save(self, progress: Progress) -> None:
        """Write to a temporary file in the same folder, then rename: never a half-written file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".progress-", suffix=".json")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as f:
                json.dump(progress.to_json(), f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    @contextlib.contextmanager
    def update(self) -> Iterator[Progress]:
        """Load, let the caller change, save; an exclusive lock keeps two tito runs apart."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            progress = self.load()
            yield progress
            self.save(progress)


def store_for(state_dir: Path) -> ProgressStore:
    """The progress store in tito's state folder (`Manifest.state_dir`)."""
    return ProgressStore(state_dir / "progress.json")
