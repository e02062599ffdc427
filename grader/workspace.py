"""The student's files: their state against progress, and resetting one without losing it."""

from __future__ import annotations

import enum
import hashlib
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

from .errors import TitoError
from .manifest import Manifest, Module
from .progress import Progress, store_for
from .stubs import stub_text


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def digests_path(manifest: Manifest) -> Path:
    """The sha256 of every checkpoint as released (written by `tito release`, shipped to students)."""
    return manifest.root / "tests" / "checkpoints" / "SHA256SUMS"


def released_checkpoint_digests(manifest: Manifest) -> dict[str, str]:
    """file name -> sha256, as `tito release` recorded them ({} if the file is absent or unreadable)."""
    try:
        lines = digests_path(manifest).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    pairs = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    return {pair[1]: pair[0] for pair in pairs if len(pair) == 2}


def checkpoint_digests_text(manifest: Manifest) -> str:
    lines = ["# sha256 of each checkpoint as released: `tito status` and `tito doctor` tell an edited one"]
    shared = manifest.root / "tests" / "checkpoints" / "common.py"  # helpers several checkpoints import
    for path in [shared, *map(manifest.checkpoint_path, manifest.available_modules())]:
        lines.append(f"{file_sha256(path)}  {path.name}")
    return "\n".join(lines) + "\n"


def write_checkpoint_digests(manifest: Manifest) -> Path:
    path, text = digests_path(manifest), checkpoint_digests_text(manifest)
    if not path.exists() or path.read_text() != text:  # unchanged: leave the file alone
        path.write_text(text)
    return path


def checked_with_edited_checkpoint(manifest: Manifest, module: Module, checkpoint_sha256: str) -> bool:
    released = released_checkpoint_digests(manifest).get(manifest.checkpoint_path(module).name)
    return bool(released and checkpoint_sha256 and checkpoint_sha256 != released)


def edited_checkpoints(manifest: Manifest) -> list[str]:
    """The checkpoint files whose content differs from the released one."""
    released = released_checkpoint_digests(manifest)
    return [name for name, digest in released.items()
            if file_sha256(manifest.root / "tests" / "checkpoints" / name) != digest]


class ModuleState(enum.Enum):
    UNAVAILABLE = "not yet available"
    MISSING = "file missing"
    NOT_CHECKED = "not checked"
    PASSED = "passed"
    FAILED = "failed"
    MODIFIED = "modified since check"

    @property
    def symbol(self) -> str:
        return {"UNAVAILABLE": " ", "MISSING": "!", "NOT_CHECKED": "·", "PASSED": "✓",
                "FAILED": "✗", "MODIFIED": "~"}[self.name]


def module_state(manifest: Manifest, progress: Progress, module: Module) -> ModuleState:
    if not module.available:
        return ModuleState.UNAVAILABLE
    path = manifest.student_path(module)
    if not path.exists():
        return ModuleState.MISSING
    result = progress.modules.get(module.id)
    if result is None:
        return ModuleState.NOT_CHECKED
    if result.sha256 != file_sha256(path):
        return ModuleState.MODIFIED
    return ModuleState.PASSED if result.status == "passed" else ModuleState.FAILED


def pristine_stub(manifest: Manifest, module: Module) -> str:
    """The untouched stub: generated from the solution, the distribution's originals/ copy,
    or the course's committed copy in git."""
    if manifest.solution_path(module).exists():
        return stub_text(manifest.solution_path(module).read_text())
    relative = Path(manifest.modules_dir) / module.file
    original = manifest.root / "originals" / relative
    if original.exists():
        return original.read_text()
    try:
        return subprocess.run(["git", "show", f"HEAD:{relative.as_posix()}"], cwd=manifest.root,
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise TitoError(f"no pristine copy of {relative} to reset from (no solutions/, no originals/, not a git checkout)") from None


def reset_module(manifest: Manifest, module: Module) -> Path | None:
    """Put the stub back in place of the student's file; return where the old file was saved."""
    if not module.available:
        raise TitoError(f"module {module.id} is not available yet: nothing to reset")
    path = manifest.student_path(module)
    stub = pristine_stub(manifest, module)
    backup = None
    if path.exists():
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        backup = manifest.state_dir / "backups" / module.folder / f"{path.stem}.{stamp}{path.suffix}"
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stub)
    try:
        with store_for(manifest.state_dir).update() as progress:  # the stub was never checked
            progress.modules.pop(module.id, None)
    except OSError:
        pass  # a read-only state folder: status still shows the file as modified since its check
    return backup
