"""The course manifest, `tito.toml`, read into dataclasses.

Every fact about modules, milestones and grading limits comes from here; no other file in
the grader hard-codes a module number, a file name or a target.
"""

from __future__ import annotations

import operator
import os
import re
import tomllib
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from .data import DataSet, parse_datasets
from .errors import TitoError

MANIFEST_NAME = "tito.toml"


@dataclass(frozen=True)
class Module:
    number: int
    slug: str
    title: str
    prerequisites: tuple[int, ...]   # the modules whose code this one imports
    points: float
    available: bool

    @property
    def id(self) -> str:
        """The two-digit id students type: "05"."""
        return f"{self.number:02d}"

    @property
    def folder(self) -> str:
        """The module's folder name: "05_autograd"."""
        return f"{self.id}_{self.slug}"

    @property
    def file(self) -> str:
        """Relative to modules/ and solutions/: "05_autograd/autograd.py"."""
        return f"{self.folder}/{self.slug}.py"

    @property
    def checkpoint(self) -> str:
        """Relative to the course root: "tests/checkpoints/test_05_autograd.py"."""
        return f"tests/checkpoints/test_{self.folder}.py"


@dataclass(frozen=True)
class Target:
    """A condition on one metric a milestone reports, e.g. accuracy >= 0.98."""

    metric: str
    op: str
    value: float

    COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}

    @classmethod
    def parse(cls, metric: str, text: str) -> Target:
        match = re.fullmatch(r"\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*", text) if isinstance(text, str) else None
        if not match:
            raise TitoError(f"tito.toml: target {metric} = {text!r} must look like '>= 0.98'")
        return cls(metric, match.group(1), float(match.group(2)))

    def met_by(self, value: float) -> bool:
        return self.COMPARISONS[self.op](value, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Milestone:
    id: str
    year: int | None
    title: str
    script: str
    requires: tuple[int, ...]
    datasets: tuple[str, ...]   # fetched with `tito data fetch` before the milestone can run
    available: bool
    targets: tuple[Target, ...]
    smoke_targets: tuple[Target, ...]

    @property
    def label(self) -> str:
        return f"{self.year} {self.id}" if self.year else self.id

    def targets_for(self, preset: str) -> tuple[Target, ...]:
        return self.smoke_targets if preset == "smoke" else self.targets


@dataclass(frozen=True)
class Grading:
    test_timeout_seconds: float
    checkpoint_timeout_seconds: float
    memory_mb: int
    workers: int
    hidden_share: float = 0.2  # of a module's points, earned by the hidden checks in `tito grade`
    sandbox_wall_seconds: float = 300.0  # one sandboxed run (checkpoint or hidden checks) in `tito grade`

    def split_points(self, points: float) -> tuple[float, float]:
        """A module's points as (visible checkpoint, hidden checks)."""
        hidden = round(points * self.hidden_share, 2)
        return round(points - hidden, 2), hidden


@dataclass
class Manifest:
    root: Path
    name: str
    modules_dir: str
    solutions_dir: str
    grading: Grading
    modules: list[Module] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    datasets: dict[str, DataSet] = field(default_factory=dict)

    # -- paths ---------------------------------------------------------------------------------

    @property
    def student_dir(self) -> Path:
        """The folder of the student's files: $TITO_MODULES_DIR (as for the router), else modules/."""
        return Path(os.environ.get("TITO_MODULES_DIR") or self.root / self.modules_dir).absolute()

    def student_path(self, module: Module) -> Path:
        return self.student_dir / module.file

    def solution_path(self, module: Module) -> Path:
        return self.root / self.solutions_dir / module.file

    def checkpoint_path(self, module: Module) -> Path:
        return self.root / module.checkpoint

    def hidden_path(self, module: Module) -> Path:
        """The instructor's hidden checks (absent from a student distribution)."""
        return self.root / "tests" / "hidden" / f"test_{module.folder}.py"

    def script_path(self, milestone: Milestone) -> Path:
        return self.root / milestone.script

    @property
    def state_dir(self) -> Path:
        """Where tito keeps progress, backups, logs and milestone plots ($TITO_STATE_DIR or .tito/)."""
        return Path(os.environ.get("TITO_STATE_DIR") or self.root / ".tito").absolute()

    def has_solutions(self) -> bool:
        """False in a student distribution, which ships no solutions."""
        return (self.root / self.solutions_dir).is_dir()

    # -- lookups -------------------------------------------------------------------------------

    def available_modules(self) -> list[Module]:
        return [m for m in self.modules if m.available]

    def module_by_number(self, number: int) -> Module:
        return next(m for m in self.modules if m.number == number)

    def find_module(self, text: str) -> Module:
        """Resolve what a user typed ("5", "05", "autograd", "05_autograd") to a module."""
        wanted = text.strip().lower()
        for module in self.modules:
            if wanted in (module.slug, module.folder) or (wanted.isdigit() and int(wanted) == module.number):
                return module
        valid = ", ".join(module.id for module in self.modules)
        raise TitoError(f"unknown module {text!r}: use a number ({valid}) or a name like 'tensor' or '01_tensor'")

    def find_milestone(self, text: str) -> Milestone:
        wanted = text.strip().lower()
        for milestone in self.milestones:
            if wanted in (milestone.id, str(milestone.year)):
                return milestone
        valid = ", ".join(m.id for m in self.milestones)
        raise TitoError(f"unknown milestone {text!r}: use one of {valid} (or its year)")

    def find_dataset(self, text: str) -> DataSet:
        if text.strip().lower() in self.datasets:
            return self.datasets[text.strip().lower()]
        raise TitoError(f"unknown data set {text!r}: use one of {', '.join(self.datasets)}")

    def dependencies(self, module: Module) -> list[Module]:
        """Every module `module` builds on: its prerequisites, theirs, and so on, in order."""
        wanted, stack = set(), list(module.prerequisites)
        while stack:
            number = stack.pop()
            if number not in wanted:
                wanted.add(number)
                stack.extend(self.module_by_number(number).prerequisites)
        return [m for m in self.modules if m.number in wanted]


def find_course_root(start: Path | None = None) -> Path:
    """The folder holding tito.toml: $TITO_ROOT, else the nearest one above `start`/cwd."""
    if os.environ.get("TITO_ROOT"):
        root = Path(os.environ["TITO_ROOT"]).resolve()
        if not (root / MANIFEST_NAME).is_file():
            raise TitoError(f"TITO_ROOT={root} has no {MANIFEST_NAME}")
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MANIFEST_NAME).is_file():
            return folder
    # The grader is installed from the course folder, so fall back to the package's own course.
    package_course = Path(__file__).resolve().parent.parent
    if (package_course / MANIFEST_NAME).is_file():
        return package_course
    raise TitoError(f"no {MANIFEST_NAME} here or in any parent folder: run tito inside the course folder")


def _fits(value: object, annotation: object) -> bool:
    """Does a TOML value have the type a manifest field declares (int, float, str, bool, tuples)?"""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple:
        return isinstance(value, (list, tuple)) and all(_fits(item, args[0]) for item in value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        return any(_fits(value, arg) for arg in args)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)  # str, bool


def _describe(annotation: object) -> str:
    """How a manifest field's type reads in an error: "a whole number", "a list of whole numbers"."""
    if typing.get_origin(annotation) is tuple:
        return "a list of " + {"a whole number": "whole numbers", "text": "strings"}.get(
            _describe(typing.get_args(annotation)[0]), "entries")
    if type(None) in typing.get_args(annotation):
        return " or ".join(_describe(a) for a in typing.get_args(annotation) if a is not type(None)) + " (or omitted)"
    return {int: "a whole number", float: "a number", str: "text", bool: "true or false"}.get(annotation, "a table")


def _typed(cls: type, where: str, values: dict) -> object:
    """cls(**values), or one line naming the first field whose value has the wrong type."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for name, value in values.items():
        if name not in known:
            raise TitoError(f"{MANIFEST_NAME}: {where} has an unknown field {name!r}")
        if not _fits(value, hints[name]):
            raise TitoError(f"{MANIFEST_NAME}: {where}.{name} = {value!r} should be {_describe(hints[name])}")
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    for name in required:
        if name not in values:
            raise TitoError(f"{MANIFEST_NAME}: {where} needs a field {name!r}")
    return cls(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


def load_manifest(root: Path | None = None) -> Manifest:
    root = root or find_course_root()
    path = root / MANIFEST_NAME
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise TitoError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise TitoError(f"{path}: not a text file (TOML is UTF-8 text)") from None

    try:
        grading = _typed(Grading, "[grading]", raw["grading"])
        modules = [
            _typed(Module, f"[[modules]] #{i + 1}", {"available": False, **entry})
            for i, entry in enumerate(raw["modules"])
        ]
        milestones = [
            _typed(Milestone, f"[[milestones]] {entry.get('id', f'#{i + 1}')}", {
                "year": None, "datasets": [], "available": False,
                **{k: v for k, v in entry.items() if k not in ("target", "smoke_target")},
                "targets": tuple(Target.parse(k, v) for k, v in entry.get("target", {}).items()),
                "smoke_targets": tuple(Target.parse(k, v) for k, v in entry.get("smoke_target", {}).items()),
            })
            for i, entry in enumerate(raw.get("milestones", []))
        ]
        course = raw["course"]
        for name in ("name", "modules_dir", "solutions_dir"):
            if not isinstance(course[name], str):
                raise TitoError(f"{MANIFEST_NAME}: [course].{name} = {course[name]!r} should be text")
        return Manifest(
            root=root, name=course["name"], modules_dir=course["modules_dir"],
            solutions_dir=course["solutions_dir"], grading=grading,
            modules=modules, milestones=milestones, datasets=parse_datasets(raw.get("data", {})),
        )
    except KeyError as error:
        raise TitoError(f"{path}: a required entry is missing: {error}") from None
    except (TypeError, AttributeError) as error:
        raise TitoError(f"{path}: malformed entry: {error}") from None
