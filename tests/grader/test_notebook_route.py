"""The notebook route: `tito notebook NN` pairs a notebook with the module's .py, and
`tito check` grades what the student last edited and ran in Jupyter."""

from __future__ import annotations

import json
import os

import nbformat
from nbclient import NotebookClient

from grader.manifest import load_manifest
from tests.grader.conftest import COURSE_ROOT

MANIFEST = load_manifest(COURSE_ROOT)
RELU_LINE = "return Tensor(np.maximum(x.data, 0))"


def test_an_edited_and_executed_notebook_cell_is_what_tito_check_grades(tito, finished_student):
    script = finished_student / MANIFEST.find_module("02").file
    made = tito("notebook", "02")
    assert made.code == 0, made.stderr
    notebook_file = script.with_suffix(".ipynb")
    assert "created, paired with the .py file" in made.stdout
    assert json.loads(notebook_file.read_text())["metadata"]["jupytext"]["formats"] == "ipynb,py:percent"

    # in Jupyter: break ReLU in its cell, run the notebook, save
    notebook = nbformat.read(notebook_file, as_version=4)
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and RELU_LINE in c.source]
    cell.source = cell.source.replace(RELU_LINE, "return Tensor(x.data)  # forgot the max")
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(script.parent)}}).execute()
    nbformat.write(notebook, notebook_file)
    os.utime(notebook_file, (script.stat().st_mtime + 5,) * 2)  # saved after the .py, as in Jupyter

    checked = tito("check", "02")
    assert checked.code == 1
    assert "note: synced your edits in activations.ipynb into activations.py" in checked.stdout
    assert "# forgot the max" in script.read_text()
    assert "✗" in checked.stdout and "ReLU" in checked.stdout


def test_an_unpaired_newer_notebook_is_named_in_one_line(tito, finished_student):
    script = finished_student / MANIFEST.find_module("02").file
    notebook_file = script.with_suffix(".ipynb")
    notebook_file.write_text(json.dumps(nbformat.v4.new_notebook()))
    os.utime(notebook_file, (script.stat().st_mtime + 5,) * 2)
    checked = tito("check", "02")
    assert checked.code == 0, checked.stdout + checked.stderr
    assert ("note: activations.ipynb is newer than activations.py but not paired with it, so it is not what gets "
            "checked: `tito notebook 02` pairs them") in " ".join(checked.stdout.split())


def test_notebook_for_a_module_not_yet_available_is_one_line(tito, course_without_module_20):
    made = tito("notebook", "20")
    assert made.code == 2 and "module 20 is not available yet" in made.stderr and "Traceback" not in made.stderr
