"""`tito doctor`: is this machine and this course folder ready? Each check is one line."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from dataclasses import dataclass

from .manifest import Manifest
from .progress import store_for

# (import name, distribution name, required version or None)
PACKAGES = [
    ("numpy", "numpy", None), ("torch", "torch", "2.13.0"), ("click", "click", None),
    ("rich", "rich", None), ("yaml", "PyYAML", None), ("pytest", "pytest", None),
    ("pytest_timeout", "pytest-timeout", None), ("hypothesis", "hypothesis", None),
    ("tiktoken", "tiktoken", None), ("matplotlib", "matplotlib", None),
    ("jupytext", "jupytext", None), ("nbgrader", "nbgrader", None),
]


@dataclass
class Finding:
    ok: bool
    what: str
    detail: str


def check_python() -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    return Finding(sys.version_info >= (3, 11), "python", f"{version} (3.11 or newer needed)")


def check_package(module: str, distribution: str, wanted: str | None) -> Finding:
    try:
        importlib.import_module(module)
        version = importlib.metadata.version(distribution)
    except Exception as error:  # noqa: BLE001 - any failure to import is the finding
        return Finding(False, distribution, f"not importable: {type(error).__name__}: {error}")
    ok = wanted is None or version.split("+")[0] == wanted
    return Finding(ok, distribution, version + ("" if ok else f" (need {wanted})"))


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
    findings += [check_package(*entry) for entry in PACKAGES]
    findings.append(Finding(True, "tito.toml", f"{len(manifest.modules)} modules ({len(manifest.available_modules())} available), {len(manifest.milestones)} milestones"))
    findings += check_module_files(manifest)
    findings.append(check_progress(manifest))
    return findings
