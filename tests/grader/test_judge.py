"""The pieces of the trust boundary, in process: the value codec, the sandbox's copy of a test
file, and the judge's rules for records that are missing, forged, duplicated or extra."""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest

from grader.checkpoint import CheckpointRun
from grader.checkpoint import TestOutcome as Outcome
from grader.expect import Check, judge_value, plausible_error
from grader.judge import Expectations, TrustedTest, judge
from grader.manifest import load_manifest
from grader.sandbox_view import sandbox_source
from grader.values import RaisedError, ValueError_, decode, encode, to_data
from tests.grader.conftest import COURSE_ROOT

MODULE = load_manifest(COURSE_ROOT).find_module("02")


class FakeTensor:
    def __init__(self, data):
        self.data = data


class LyingFloat(float):
    def __eq__(self, other):
        return True


# -- values ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, float("nan"), float("inf"), "text", b"\x00\xff", (1, (2, 3)), [1, [2.0]],
    {"a": (1, 2)}, {1, 2}, np.arange(6.0).reshape(2, 3), np.float32(1.5), np.dtype("float32"),
    np.array(["a", "bc"]), np.zeros((0, 3)),
])
def test_plain_values_survive_the_round_trip(value):
    back = decode(encode(to_data(value)))
    assert type(back) is type(to_data(value))
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and back.shape == value.shape and np.array_equal(back, value)
    elif isinstance(value, float) and np.isnan(value):
        assert np.isnan(back)
    else:
        assert back == value


def test_a_tensor_becomes_its_numbers_and_a_lying_subclass_becomes_plain():
    assert np.array_equal(to_data(FakeTensor(np.ones(3))), np.ones(3))
    plain = to_data(LyingFloat(1.0))
    assert type(plain) is float and plain != 2.0


@pytest.mark.parametrize("raw", [
    {"array": {"dtype": "|O", "shape": [1], "bytes": ""}},            # objects would mean pickle
    {"array": {"dtype": "<f8", "shape": [2], "bytes": "AAAAAAAA8D8="}},  # 8 bytes for 2 floats
    {"pickle": "gASV"}, {"tuple": "not a list"}, {"float": "1e999"}, {"a": 1, "b": 2},
    {"raised": {"types": [1, 2], "message": "x"}},
])
def test_malformed_records_are_refused(raw):
    with pytest.raises(ValueError_):
        decode(raw)


# -- the sandbox's copy of a test file ------------------------------------------------------------------

SOURCE = '''
import numpy as np
import torch
import torch.nn.functional as F
from grader.expect import expect_close, expect_raises, expect_that


def test_example():
    x = np.arange(3.0)
    expected = np.maximum(x, 0) * 2
    got = relu(x)
    expect_close(got, expected, call=f"relu({x})", hint="max(x, 0)", rtol=1e-6)
    expect_close(got, F.relu(torch.tensor(x)).numpy(), call="c")
    expect_raises(ValueError, lambda: relu(None), call="relu(None)", message_contains="secret")
    expect_that(got, non_negative, x, call="c", expected="no negatives")
'''


def test_the_sandbox_copy_keeps_inputs_and_values_under_test_only():
    copy = sandbox_source(SOURCE)
    ast.parse(copy)
    assert "np.maximum" not in copy and "expected =" not in copy   # the answer is never computed
    assert "torch.tensor" not in copy or "_ORACLE" in copy
    assert "import torch" not in copy and "torch = _ORACLE" in copy and "F = _ORACLE" in copy
    assert "secret" not in copy and "max(x, 0)" not in copy and "non_negative" not in copy
    assert "x = np.arange(3.0)" in copy and "got = relu(x)" in copy   # inputs and the student's call stay
    assert "expect_raises(None, lambda: relu(None)" in copy


def test_the_oracle_stand_in_is_inert():
    namespace: dict = {}
    exec(sandbox_source("import torch\nclass M(torch.nn.Module):\n    pass\nvalue = torch.ones(3).sum() + 1\n"), namespace)
    assert repr(namespace["value"]) == "<oracle: not in the sandbox>"
    assert namespace["M"].__mro__[-1] is object


# -- checks and the judge -----------------------------------------------------------------------------

def test_an_impossible_exception_record_is_refused():
    honest = RaisedError(("ShapeError", "ValueError", "Exception", "BaseException", "object"), "bad shape")
    forged = RaisedError(("ValueError", "TypeError", "IndexError", "Exception", "BaseException", "object"), "")
    check = Check("raises", "f()", errors=("TypeError",))
    assert plausible_error(honest)
    assert not plausible_error(forged) and judge_value(check, forged)
    assert judge_value(Check("raises", "f()", errors=("ValueError",)), honest) is None


def expectations(*checks: Check) -> Expectations:
    trusted = Expectations("02", "checkpoint")
    trusted.tests["t::a"] = TrustedTest("a", list(checks))
    return trusted


def recorded(values: dict, outcome: str = "passed") -> CheckpointRun:
    run = CheckpointRun(MODULE, collected=1)
    run.tests.append(Outcome("a", outcome == "passed", "" if outcome == "passed" else "boom", "t::a"))
    run.values = {key: [(kind, encode(value)) for kind, value in entries] for key, entries in values.items()}
    return run


CLOSE = Check("close", "f(x)", expected=np.array([1.0, 2.0]), rtol=1e-6, atol=0)
EQUAL = Check("equal", "g(x)", expected=(2, 3))


def test_a_test_passes_only_when_every_check_is_met_in_order():
    good = {("t::a", 0): [("close", np.array([1.0, 2.0]))], ("t::a", 1): [("equal", (2, 3))]}
    assert judge(expectations(CLOSE, EQUAL), recorded(good)).passed_count == 1
    wrong = {("t::a", 0): [("close", np.array([1.0, 2.5]))], ("t::a", 1): [("equal", (2, 3))]}
    assert "largest difference" in judge(expectations(CLOSE, EQUAL), recorded(wrong)).tests[0].message


@pytest.mark.parametrize("values, why", [
    ({("t::a", 0): [("close", np.array([1.0, 2.0]))]}, "no value was recorded"),
    ({("t::a", 0): [("close", np.array([1.0, 2.0])), ("close", np.array([1.0, 2.0]))],
      ("t::a", 1): [("equal", (2, 3))]}, "conflicting"),
    ({("t::a", 0): [("close", np.array([1.0, 2.0]))], ("t::a", 1): [("equal", (2, 3))],
      ("t::a", 2): [("equal", 1)]}, "do not line up"),
    ({("t::a", 0): [("equal", np.array([1.0, 2.0]))], ("t::a", 1): [("equal", (2, 3))]}, "check stands"),
])
def test_missing_duplicate_extra_or_misplaced_records_fail(values, why):
    verdict = judge(expectations(CLOSE, EQUAL), recorded(values))
    assert verdict.passed_count == 0 and why in verdict.tests[0].message


def test_a_test_that_raised_fails_whatever_was_recorded_and_a_forged_pass_does_not_help():
    good = {("t::a", 0): [("close", np.array([1.0, 2.0]))], ("t::a", 1): [("equal", (2, 3))]}
    run = recorded(good, outcome="failed")
    run.tests.insert(0, Outcome("a", True, "", "t::a"))  # a forged "passed" before the real failure
    verdict = judge(expectations(CLOSE, EQUAL), run)
    assert verdict.passed_count == 0 and "boom" in verdict.tests[0].message


def test_a_test_the_student_run_never_reached_fails():
    run = CheckpointRun(MODULE, collected=None, errors=["cannot import your code: syntax error in x.py:3"])
    verdict = judge(expectations(CLOSE), run)
    assert verdict.passed_count == 0 and verdict.errors and "syntax error" in verdict.tests[0].message


def test_no_test_file_computes_a_verdict_next_to_the_students_code():
    """A bool computed in the sandbox could be forged: checks go through values and predicates."""
    manifest = load_manifest(COURSE_ROOT)
    files = [COURSE_ROOT / "tests" / "checkpoints" / "common.py"]
    files += [path for module in manifest.available_modules()
              for path in (manifest.checkpoint_path(module), manifest.hidden_path(module))]
    offenders = [path.name for path in files if "expect_true" in path.read_text()]
    assert not offenders, offenders
    for path in files:  # and every file has a sandbox copy (parses, no oracle import left)
        copy = sandbox_source(path.read_text(), str(path))
        oracle_imports = re.findall(r"^\s*(?:import|from) (?:torch|tiktoken)\b(?!\w)", copy, re.M)
        assert not oracle_imports, (path.name, oracle_imports)


def test_containers_of_arrays_compare_item_by_item():
    check = Check("equal", "pair", expected=(np.arange(3), np.ones(2)))
    assert judge_value(check, (np.arange(3), np.ones(2))) is None
    assert judge_value(check, (np.arange(3), np.zeros(2)))
    assert judge_value(check, [np.arange(3), np.ones(2)])  # a list is not the tuple that was asked for
