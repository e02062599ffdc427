"""Grading through the sandbox gives the reference full marks and the stub nothing, in every module.

This proves the trust boundary harmless for honest code: the sandbox's copy of each test file
(no oracle, no expected values) still drives the student's code through exactly the inputs of
the trusted run, so the reference's recorded values meet every trusted check; and the stub's
values meet none.
"""

from __future__ import annotations

import pytest

from grader.grading import expectations_cache
from grader.judge import expectations_for, judge, load_expectations
from grader.manifest import load_manifest
from grader.recording import record_in_sandbox
from grader.sandbox import sandbox_problem
from grader.stubs import stub_text
from tests.grader.conftest import COURSE_ROOT

MANIFEST = load_manifest(COURSE_ROOT)
SUITES = [(module, kind) for module in MANIFEST.available_modules() for kind in ("checkpoint", "hidden")]
pytestmark = pytest.mark.skipif(bool(sandbox_problem()), reason=sandbox_problem() or "bwrap present")


# The other direction, the reference at full marks through the sandbox in every module, is proved
# by `tito solution` (test_instructor_pipeline), which grades every solution notebook this way.
@pytest.mark.parametrize("module, kind", SUITES, ids=[f"{m.folder}-{k}" for m, k in SUITES])
def test_the_stub_scores_nothing_through_the_sandbox(module, kind):
    expectations = load_expectations(expectations_for(MANIFEST, module, kind, expectations_cache()))
    assert len(expectations.tests) > 0
    stub = judge(expectations, record_in_sandbox(MANIFEST, module, stub_text(MANIFEST.solution_path(module).read_text()), kind))
    assert stub.passed_count == 0, [t.name for t in stub.tests if t.passed]
