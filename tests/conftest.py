"""Shared set-up of every checkpoint and hidden check.

Hypothesis runs with the "grading" profile: no example database, so nothing is written into the
student's folder, and one fixed seed per test, derived from the test's name. The seed makes
every student see the same examples on every run (a grade never depends on luck), and it makes
the examples of a test the same in the trusted run of the reference and in the grading sandbox,
where the test file is a rewritten copy (grader.sandbox_view): Hypothesis's own derandomizing
seed would come from the test's source text, which differs between the two.
"""

import os
import zlib

import hypothesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.internal.conjecture import providers

# Hypothesis also draws numbers and strings it finds as literals in "local" source files: the
# student's module, the test file. Those differ between the trusted run (the reference, the
# original test file) and the sandbox (the student's code, the rewritten copy), so the examples
# would differ too and the student's values would be judged against another input's answers.
# Examples must depend on the test alone: no local constants.
if hasattr(providers, "_get_local_constants"):
    providers._get_local_constants = lambda: providers._local_constants  # the empty set, never filled

settings.register_profile(
    "grading",
    database=None,
    deadline=None,
    max_examples=30,
    print_blob=False,
    report_multiple_bugs=False,  # one clear failure per test, not an ExceptionGroup
    # no "explain" phase: it costs seconds per failing test and a stub fails every test
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("TITO_HYPOTHESIS_PROFILE", "grading"))


def pytest_collection_modifyitems(items):
    for item in items:
        function = getattr(item, "obj", None)
        if getattr(function, "is_hypothesis_test", False):
            name = f"{item.module.__name__}.{item.originalname}".encode()
            hypothesis.seed(zlib.crc32(name))(function)
