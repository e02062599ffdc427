"""Importing autograd upgrades Tensor in place; modules 01-04 must behave exactly as before."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.grader.conftest import COURSE_ROOT


def test_checkpoints_01_to_04_still_pass_with_autograd_imported(manifest):
    files = [str(manifest.checkpoint_path(manifest.module_by_number(n))) for n in (1, 2, 3, 4)]
    code = ("import sys, pytest, tinytorch.autograd\n"
            "from tinytorch.tensor import Tensor\n"
            "assert hasattr(Tensor, 'backward'), 'autograd did not attach to Tensor'\n"
            f"sys.exit(pytest.main({files!r} + ['-q', '-p', 'no:cacheprovider']))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=COURSE_ROOT, capture_output=True, text=True,
                          env={**os.environ, "TITO_SOURCE": "solutions"}, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
