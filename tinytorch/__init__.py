"""tinytorch: the deep-learning framework you build, one module at a time.

There is no copy of your code in this package and no export step. Instead, the package's
search path (`__path__`) is pointed at the folder of the *active source* of every module, so
`from tinytorch.tensor import Tensor` imports `modules/01_tensor/tensor.py` directly.

Which source is active:

- `TITO_SOURCE=modules` (the default) uses the student's files in `modules/`;
  `TITO_SOURCE=solutions` uses the reference implementation in `solutions/`.
- `TITO_REFERENCE=01-04,07` uses the reference for just those modules and the student's
  files for the rest, so a broken module 03 need not block work on module 05.
- `TITO_MODULES_DIR=/some/folder` reads the student's files from another folder laid out like
  `modules/` (the grader uses this for submissions and generated stubs).

The module list comes from `tito.toml`, the course manifest, and nowhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

from grader.errors import TitoError
from grader.manifest import load_manifest

COURSE_ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("modules", "solutions")


def parse_module_numbers(text: str) -> set[int]:
    """Read a selection like "01-04,07" into {1, 2, 3, 4, 7}."""
    numbers: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ImportError(f"TITO_REFERENCE: {part!r} is not a module number or range like 01-04") from None
        numbers.update(range(low, high + 1))
    return numbers


def _active_folders() -> list[str]:
    """One folder per module, the student's or the reference's, in manifest order."""
    try:
        manifest = load_manifest(COURSE_ROOT)
    except TitoError as error:
        raise ImportError(str(error)) from None
    source = os.environ.get("TITO_SOURCE", "modules")
    if source not in SOURCES:
        raise ImportError(f"TITO_SOURCE must be one of {', '.join(SOURCES)}, not {source!r}")
    reference = parse_module_numbers(os.environ.get("TITO_REFERENCE", ""))
    solutions_dir = manifest.root / manifest.solutions_dir
    return [str((solutions_dir if source == "solutions" or module.number in reference else manifest.student_dir)
                / module.folder) for module in manifest.modules]


__path__ = _active_folders()
