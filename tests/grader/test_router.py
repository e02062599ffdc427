"""The import router: which file `import tinytorch.<slug>` loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.grader.conftest import COURSE_ROOT


def loaded_files(env: dict[str, str], *slugs: str) -> list[Path]:
    """Import tinytorch.<slug> in a fresh interpreter with `env`; the files that were loaded."""
    code = "import importlib, sys\n" + "".join(
        f"print(importlib.import_module('tinytorch.{slug}').__file__)\n" for slug in slugs)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TITO_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=COURSE_ROOT, env={**clean, **env},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [Path(line).resolve() for line in done.stdout.split()]


def test_default_loads_the_students_file():
    assert loaded_files({}, "tensor") == [COURSE_ROOT / "modules/01_tensor/tensor.py"]


def test_tito_source_solutions_loads_the_reference():
    assert loaded_files({"TITO_SOURCE": "solutions"}, "tensor") == [COURSE_ROOT / "solutions/01_tensor/tensor.py"]


def test_tito_reference_mixes_per_module():
    files = loaded_files({"TITO_REFERENCE": "01-03"}, "tensor", "layers", "losses")
    assert files == [COURSE_ROOT / "solutions/01_tensor/tensor.py", COURSE_ROOT / "solutions/03_layers/layers.py",
                     COURSE_ROOT / "modules/04_losses/losses.py"]


def test_a_later_module_imports_the_same_tensor_class_the_test_sees():
    code = ("from tinytorch.tensor import Tensor\nfrom tinytorch.layers import Linear\n"
            "print(type(Linear(2, 3).weight) is Tensor)")
    done = subprocess.run([sys.executable, "-c", code], cwd=COURSE_ROOT, capture_output=True, text=True,
                          env={**os.environ, "TITO_SOURCE": "solutions"})
    assert done.stdout.strip() == "True", done.stderr


def test_tito_modules_dir_points_at_another_student_folder(tmp_path):
    (tmp_path / "01_tensor").mkdir()
    (tmp_path / "01_tensor" / "tensor.py").write_text("MARK = 'elsewhere'\n")
    assert loaded_files({"TITO_MODULES_DIR": str(tmp_path)}, "tensor") == [tmp_path.resolve() / "01_tensor/tensor.py"]


def test_a_bad_source_name_is_a_clear_import_error():
    done = subprocess.run([sys.executable, "-c", "import tinytorch"], cwd=COURSE_ROOT, capture_output=True,
                          text=True, env={**os.environ, "TITO_SOURCE": "answers"})
    assert done.returncode != 0
    assert "TITO_SOURCE must be one of modules, solutions, not 'answers'" in done.stderr
