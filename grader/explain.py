"""Turn an exception raised in a checkpoint into one message a student can act on.

- NotImplementedError -> "not written yet: Tensor.__add__ (modules/01_tensor/tensor.py:120)"
- SyntaxError         -> "syntax error in modules/01_tensor/tensor.py:12: invalid syntax"
- a timeout           -> "took longer than 30 s (an infinite loop?) in Tensor.sum (...:88)"
- MemoryError         -> "ran out of memory (limit 4096 MB) in ..."
- AssertionError      -> its message (grader.expect writes call / expected / got / hint)
- anything else       -> "TypeError: ... raised in Linear.forward (modules/...:40)"
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from types import TracebackType

from .settings import RunSettings

TIMEOUT_MARK = "Timeout"  # how pytest-timeout's failure message begins
IMPORT_MARGIN = 10.0  # seconds on top of the per-test limit for importing a test file (numpy, the oracle)


class ImportTimeout(Exception):
    """Importing a test file (and so the student's module) took longer than the per-test limit."""


def _student_folders() -> list[Path]:
    """The folders the router loads module sources from (student's or reference)."""
    tinytorch = sys.modules.get("tinytorch")
    return [Path(p).resolve() for p in getattr(tinytorch, "__path__", [])]


def _shown_path(filename: str) -> str:
    """A path relative to the course root when possible: short and clickable."""
    root = RunSettings.from_env().root_for_messages or os.getcwd()
    try:
        return str(Path(filename).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return filename


def _is_source_file(filename: str, folders: list[Path]) -> bool:
    return Path(filename).resolve().parent in folders


def _module_folder_of(filename: str) -> str:
    """"05_autograd" for .../05_autograd/autograd.py."""
    return Path(filename).parent.name


def _innermost_source_frame(tb: TracebackType | None):
    """The deepest traceback entry inside a module source file, else the deepest of all."""
    entries = traceback.extract_tb(tb) if tb else []
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    folders = _student_folders()
    for frame, entry in zip(reversed(frames), reversed(entries)):
        if _is_source_file(entry.filename, folders):
            return frame, entry
    return (frames[-1], entries[-1]) if frames else (None, None)


def _where(tb: TracebackType | None) -> str:
    frame, entry = _innermost_source_frame(tb)
    if frame is None:
        return ""
    return f"{frame.f_code.co_qualname} ({_shown_path(entry.filename)}:{entry.lineno})"


def _unwrap(error: BaseException) -> BaseException:
    """pytest wraps import failures of a test file in CollectError; the cause is what matters."""
    while type(error).__name__ == "CollectError" and error.__cause__ is not None:
        error = error.__cause__
    return error


def explain(error: BaseException, tb: TracebackType | None = None) -> str:
    """One message, in the language of the lesson, for an exception from a checkpoint."""
    error = _unwrap(error)
    tb = error.__traceback__ or tb
    settings = RunSettings.from_env()
    checking = settings.checking

    if isinstance(error, SystemExit):
        return f"your module exited while being imported (sys.exit({error.code!r}) in {_where(tb)}): remove the call"

    if isinstance(error, SyntaxError):
        line = (error.text or "").strip()
        where = f"{_shown_path(error.filename or '?')}:{error.lineno}"
        return f"syntax error in {where}: {error.msg}" + (f"\n    {line}" if line else "")

    if isinstance(error, NotImplementedError):
        frame, entry = _innermost_source_frame(tb)
        if frame is None:
            return "not written yet"
        message = f"not written yet: {frame.f_code.co_qualname} ({_shown_path(entry.filename)}:{entry.lineno})"
        owner = _module_folder_of(entry.filename)
        if checking and not owner.startswith(checking):
            message += f"\n  that is module {owner}, which this test relies on: finish it first (tito check {owner[:2]})"
            if settings.reference_available:
                message += f", or run `tito check {checking} --reference-deps` to use the reference for it"
        return message

    if isinstance(error, MemoryError):
        limit = settings.memory_mb
        return f"ran out of memory (limit {limit} MB) in {_where(tb)}: is something allocated far bigger than needed?"

    if isinstance(error, ImportTimeout):
        return (f"importing took longer than {settings.test_timeout + IMPORT_MARGIN:g} s and was stopped (an endless "
                f"loop at module level?) in {_where(tb)}")

    text = str(error)
    if text.startswith(TIMEOUT_MARK):
        return f"took longer than {settings.test_timeout:g} s and was stopped (an infinite loop?) in {_where(tb)}"

    if isinstance(error, AssertionError):
        return text or "assertion failed"

    where = _where(tb)
    return f"{type(error).__name__}: {text}" + (f"\n  raised in {where}" if where else "")
