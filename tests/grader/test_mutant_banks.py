"""Every bug of every module's bank (tests/mutants/) still applies to the solution.

The kill rates come from bench/mutants.py (too slow for the suite); this fast test keeps the
banks honest meanwhile: a solution edit that makes a bug's `find` text vanish (or repeat) would
otherwise drop the bug from the bank in silence, and the kill rate with it."""

from __future__ import annotations

import sys

import pytest

from grader.manifest import load_manifest
from tests.grader.conftest import COURSE_ROOT

sys.path.insert(0, str(COURSE_ROOT / "bench"))
from mutants import bank_path, load_bank, mutated  # noqa: E402

MANIFEST = load_manifest(COURSE_ROOT)
MODULES = MANIFEST.available_modules()


@pytest.mark.parametrize("module", MODULES, ids=[m.folder for m in MODULES])
def test_every_bug_of_the_bank_applies_to_the_solution(module):
    assert bank_path(module).exists(), f"module {module.id} has no bank of student bugs"
    bank = load_bank(module)
    assert len(bank) >= 20
    assert len({m.id for m in bank}) == len(bank), "bug ids must be unique"
    solution = MANIFEST.solution_path(module).read_text()
    broken = []
    for mutant in bank:
        try:
            assert mutated(solution, mutant) != solution
        except (ValueError, SyntaxError, AssertionError) as error:
            broken.append(f"{mutant.id}: {error or 'changes nothing'}")
    assert not broken, broken
