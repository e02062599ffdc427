"""Shared set-up of every checkpoint and hidden check.

Hypothesis runs with the "grading" profile: derandomized, so every student sees the same
examples on every run and a grade never depends on luck; no example database, so nothing is
written into the student's folder.
"""

import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "grading",
    derandomize=True,
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
