"""Milestones: locked until every module they require has passed; run as child processes."""

from __future__ import annotations

import os
import subprocess
import sys

from .errors import TitoError
from .manifest import Manifest, Milestone, Module
from .progress import Progress
from .workspace import ModuleState, module_state

PRESETS = ("smoke", "default", "full")


def missing_modules(manifest: Manifest, progress: Progress, milestone: Milestone) -> list[Module]:
    """The required modules whose file, as it is now, has not passed its checkpoint (never
    checked, failed, reset, or edited since it passed: a milestone runs only checked code)."""
    return [module for module in map(manifest.module_by_number, milestone.requires)
            if module_state(manifest, progress, module) is not ModuleState.PASSED]


def is_unlocked(manifest: Manifest, progress: Progress, milestone: Milestone) -> bool:
    return milestone.available and not missing_modules(manifest, progress, milestone)


def newly_unlocked(manifest: Manifest, before: Progress, after: Progress) -> list[Milestone]:
    """Milestones a check has just unlocked (locked with `before`, unlocked with `after`)."""
    return [m for m in manifest.milestones
            if is_unlocked(manifest, after, m) and not is_unlocked(manifest, before, m)]


def run_milestone(manifest: Manifest, progress: Progress, milestone: Milestone, preset: str,
                  extra_env: dict[str, str] | None = None) -> int:
    """Run the milestone's script (it prints, plots and records its own result); its exit code."""
    if not milestone.available:
        raise TitoError(f"milestone {milestone.id} is not available yet in this course")
    missing = missing_modules(manifest, progress, milestone)
    if missing:
        names = ", ".join(f"{m.id} {m.slug} ({module_state(manifest, progress, m).value})" for m in missing)
        raise TitoError(f"milestone {milestone.id} is locked: {names} must pass as the file is now "
                        f"(tito check {missing[0].id})")
    from .data import cached_path

    unfetched = [name for name in milestone.datasets if not cached_path(name).exists()]
    if unfetched:
        raise TitoError(f"milestone {milestone.id} needs the {', '.join(unfetched)} data: run "
                        f"`tito data fetch {unfetched[0]}` first")
    if preset not in PRESETS:
        raise TitoError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(manifest.root), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "Agg")
    env.update(extra_env or {})
    command = [sys.executable, str(manifest.script_path(milestone)), "--preset", preset]
    return subprocess.run(command, cwd=manifest.root, env=env).returncode
