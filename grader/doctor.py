"""`tito doctor`: is this machine and this course folder ready? Each check is one line."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import tomllib
from dataclasses import dataclass

from packaging.requirements import Requirement

from .manifest import Manifest
from .progress import store_for
from .sandbox import bwrap_path, sandbox_problem
from .workspace import edited_checkpoints

IMPORT_NAMES = {"pyyaml": "yaml", "pytest-timeout": "pytest_timeout", "pytest-xdist": "xdist"}  # where the import name is not the project's


@dataclass
class Finding:
    ok: bool
    what: str
    detail: str


def check_python() -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    return Finding(sys.version_info >= (3, 11), "python", f"{version} (3.11 or newer needed)")


def requirements(manifest: Manifest) -> list[Requirement]:
    """The project's dependencies, as pyproject.toml lists them (the one list of them)."""
    with open(manifest.root / "pyproject.toml", "rb") as handle:
        return [Requirement(text) for text in tomllib.load(handle)["project"]["dependencies"]]


def check_package(requirement: Requirement) -> Finding:
    name = requirement.name
    try:
        importlib.import_module(IMPORT_NAMES.get(name.lower(), name.replace("-", "_")))
        version = importlib.metadata.version(name)
    except Exception as error:  # noqa: BLE001 - any failure to import is the finding
        return Finding(False, name, f"not importable: {type(error).__name__}: {error}")
    ok = requirement.specifier.contains(version.split("+")[0], prereleases=True)
    return Finding(ok, name, version + ("" if ok else f" (need {requirement.specifier})"))


def check_sandbox(manifest: Manifest) -> Finding:
    """bubblewrap: required to grade (instructors), optional for a student's `tito check`."""
    problem = sandbox_problem()
    if not problem:
        return Finding(True, "sandbox", f"bubblewrap at {bwrap_path()} works (tito check and tito grade use it)")
    if manifest.has_solutions():
        return Finding(False, "sandbox", f"{problem}; `tito grade` refuses to run without it")
    return Finding(True, "sandbox", f"{problem.split(':')[0]}: tito check runs without it (optional for students)")


def check_checkpoint_files(manifest: Manifest) -> Finding:
    edited = edited_checkpoints(manifest)
    if edited and manifest.has_solutions():  # an instructor changing a checkpoint: a reminder, not a fault
        return Finding(True, "checkpoints", f"changed since the last `tito release`: {', '.join(edited)} "
                                            "(`tito release --stubs` records them)")
    if edited:
        return Finding(False, "checkpoints", f"edited since the release: {', '.join(edited)} "
                                             "(your checks ran against changed tests; restore them from the course)")
    return Finding(True, "checkpoints", "every checkpoint file is as released")


def check_module_files(manifest: Manifest) -> list[Finding]:
    findings = []
    for module in manifest.available_modules():
        path = manifest.student_path(module)
        if not path.exists():
            findings.append(Finding(False, f"module {module.id}", f"{path} is missing: `tito module reset {module.id}` restores the stub"))
            continue
        try:
            compile(path.read_text(), str(path), "exec")
        except SyntaxError as error:
            findings.append(Finding(False, f"module {module.id}", f"syntax error in {path.relative_to(manifest.root) if path.is_relative_to(manifest.root) else path}:{error.lineno}: {error.msg}"))
            continue
        if not manifest.checkpoint_path(module).exists():
            findings.append(Finding(False, f"module {module.id}", f"checkpoint {module.checkpoint} is missing"))
            continue
        findings.append(Finding(True, f"module {module.id}", f"{module.slug}: file and checkpoint present"))
    return findings


def check_progress(manifest: Manifest) -> Finding:
    store = store_for(manifest.state_dir)
    progress = store.load()
    if store.warnings:
        return Finding(False, "progress", store.warnings[0])
    return Finding(True, "progress", f"{store.path} ({len(progress.modules)} modules recorded)")


def run_doctor(manifest: Manifest) -> list[Finding]:
    findings = [check_python()]
    findings += [check_package(requirement) for requirement in requirements(manifest)]
    findings.append(check_sandbox(manifest))
    findings.append(check_checkpoint_files(manifest))
    findings.append(Finding(True, "tito.toml", f"{len(manifest.modules)} modules ({len(manifest.available_modules())} available), {len(manifest.milestones)} milestones"))
    findings += check_module_files(manifest)
    findings.append(check_progress(manifest))
    return findings
