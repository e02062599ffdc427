"""A module's notebook, paired with its `.py` file so that either can be edited.

`tito check` grades the `.py` file. A student who prefers Jupyter runs `tito notebook 05`,
which writes `modules/05_autograd/autograd.ipynb` paired with `autograd.py` (jupytext's
`formats: ipynb,py:percent`). Before each check, a paired notebook that is newer than its
`.py` is synced into it with jupytext's own `--sync`, so the cells the student edited last are
what gets checked. An unpaired notebook newer than the `.py` is never graded: `tito check`
says so in one line.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from datetime import datetime
from pathlib import Path

from .errors import TitoError
from .manifest import Manifest, Module

PAIRED_FORMATS = "ipynb,py:percent"


def notebook_path(module_file: Path) -> Path:
    return module_file.with_suffix(".ipynb")


def is_paired(notebook: Path) -> bool:
    """Does the notebook's metadata pair it with a percent script (jupytext's `formats`)?"""
    try:
        metadata = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return False
    formats = str(metadata.get("jupytext", {}).get("formats", ""))
    return "ipynb" in formats and "py:percent" in formats


def _jupytext(*arguments: str) -> None:
    """Run jupytext's command line in-process; its chatter is swallowed, a failure is one line."""
    from jupytext.cli import jupytext

    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            jupytext(list(arguments))
    except (Exception, SystemExit) as error:  # noqa: BLE001 - jupytext reports a bad notebook many ways
        detail = chatter.getvalue().strip().splitlines()[-1:] or [f"{type(error).__name__}: {error}"]
        raise TitoError(f"jupytext could not {arguments[0].lstrip('-')} {arguments[-1]}: {detail[0]}") from None


def _back_up(manifest: Manifest, module: Module, path: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    backup = manifest.state_dir / "backups" / module.folder / f"{path.stem}.{stamp}{path.suffix}"
    backup.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, backup)
    return backup


def pair_notebook(manifest: Manifest, module: Module) -> tuple[Path, str]:
    """Create (or pair) the module's notebook; (its path, what was done)."""
    if not module.available:
        raise TitoError(f"module {module.id} is not available yet: there is no file to open as a notebook")
    script = manifest.student_path(module)
    if not script.exists():
        raise TitoError(f"{script} is missing: `tito module reset {module.id}` restores the stub")
    notebook = notebook_path(script)
    if notebook.exists() and is_paired(notebook):
        sync_notebook(script)
        return notebook, "already paired with the .py file (synced)"
    if notebook.exists():
        # an unpaired notebook the student may have edited: both files are kept, the newer one wins
        _back_up(manifest, module, script)
        _back_up(manifest, module, notebook)
        newer = notebook if notebook.stat().st_mtime > script.stat().st_mtime else script
        _jupytext("--set-formats", PAIRED_FORMATS, str(newer))
        return notebook, f"paired with the .py file; the newer {newer.name} was kept (both backed up first)"
    _jupytext("--set-formats", PAIRED_FORMATS, str(script))
    return notebook, "created, paired with the .py file"


def sync_notebook(script: Path) -> str:
    """Before a check: bring the `.py` up to date with a newer paired notebook.

    Returns a one-line note for the student ("" when there is nothing to say)."""
    notebook = notebook_path(script)
    if not notebook.exists() or notebook.stat().st_mtime <= script.stat().st_mtime:
        return ""
    if not is_paired(notebook):
        return (f"{notebook.name} is newer than {script.name} but not paired with it, so it is not what gets "
                f"checked: `tito notebook {script.parent.name[:2]}` pairs them")
    _jupytext("--sync", str(notebook))
    return f"synced your edits in {notebook.name} into {script.name}"
