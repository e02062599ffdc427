"""Hidden checks for module 19 (benchmarking): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import json

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
# the checkpoint's oracles and helpers: both files test against one reference
from tests.checkpoints.test_19_benchmarking import (
    ATOL,
    FIELDS,
    TIMINGS,
    FakeClock,
    given_measurement,
    same_table,
    speedup_cell,
    stats_of,
    torch_interval,
    torch_rows,
    torch_speedups,
    torch_stats,
    valid_submission,
)
from tests.checkpoints.common import same_pair, torch64
from tinytorch.benchmarking import (
    SUBMISSION_SCHEMA,
    bootstrap_ci,
    compare,
    make_submission,
    measure,
    percentile_interval,
    report_table,
    speedup,
    summarize,
    write_submission,
)

torch.set_num_threads(1)


def torch_bootstrap_p90(samples, seed, n_resamples, confidence) -> np.ndarray:
    """The interval of the 90th percentile, torch on the lesson's resample rows."""
    rows = torch_rows(np.random.default_rng(seed), len(samples), n_resamples)
    estimates = torch.quantile(torch64(samples)[rows], 0.9, dim=1)
    return torch_interval(estimates.numpy(), confidence)


def within(interval, low, high) -> bool:
    """low <= interval[0] <= interval[1] <= high."""
    return bool(low <= interval[0] <= interval[1] <= high)


def test_one_sample():
    """summarize of a single sample: std and IQR are 0, every other statistic is the sample"""
    expect_close(stats_of(summarize([0.125])), [0.125, 0.125, 0.0, 0.0, 0.125, 0.125], call="summarize([0.125])",
                 hint="one sample shows no spread: std is 0.0 (not nan)", rtol=0, atol=0)
    clock = FakeClock([1.0, 0.5, 2.0])
    m = measure(clock.work, warmup=0, repeats=1, clock=clock)
    expect_close(stats_of(m), [1.0, 1.0, 0.0, 0.0, 1.0, 1.0], call="measure(fn, warmup=0, repeats=1, clock=fake)",
                 hint="no warm-up: the first call is timed", rtol=0, atol=1e-15)


def test_bootstrap_any_statistic_and_any_rng():
    """bootstrap_ci of the 90th percentile; a fresh generator (rng=None) gives a sensible interval"""
    samples = np.random.default_rng(41).gamma(2.0, 1.0, size=20)
    got = bootstrap_ci(samples, lambda x: np.percentile(x, 90), n_resamples=300, confidence=0.8, rng=6)
    expect_close(got, torch_bootstrap_p90(samples, 6, 300, 0.8),
                 call="bootstrap_ci(samples, lambda x: np.percentile(x, 90), n_resamples=300, confidence=0.8, rng=6)",
                 hint="apply the statistic you are given to each resample", rtol=1e-10, atol=ATOL)
    fresh = bootstrap_ci(samples, n_resamples=200)
    expect_that(fresh, within, float(samples.min()), float(samples.max()), call="bootstrap_ci(samples, rng=None)",
                expected="an interval inside [min, max] of the samples", hint="np.random.default_rng(None)")
    expect_close(percentile_interval([3.0], 0.95), [3.0, 3.0], call="percentile_interval([3.0])",
                 hint="one estimate: both ends are it", rtol=0, atol=0)


def test_speedup_slower_candidate_and_bad_values():
    """a slower candidate has a speed-up below 1; negative times and zero resamples are refused"""
    rng = np.random.default_rng(42)
    fast = rng.lognormal(np.log(1e-3), 0.05, size=6)
    slow = rng.lognormal(np.log(3e-3), 0.05, size=11)
    s = speedup(given_measurement(fast), given_measurement(slow), n_resamples=250, confidence=0.99, rng=8)
    expect_close([s.ratio, s.low, s.high], torch_speedups(fast, [slow], 8, 250, 0.99)[0],
                 call="speedup(6 fast runs, 11 slow runs, n_resamples=250, confidence=0.99, rng=8)",
                 hint="each side resampled with its own size", rtol=1e-10, atol=ATOL)
    expect_raises(ValueError, lambda: speedup(given_measurement([1.0, 2.0]), given_measurement([-1.0, 1.0, 1.0])),
                  call="speedup(ok, times with -1.0)", hint="every time must be positive")
    expect_raises(ValueError, lambda: speedup(given_measurement([1.0, 2.0]), given_measurement([1.0, 2.0]),
                                              n_resamples=0), call="speedup(ok, ok, n_resamples=0)",
                  hint="at least one resample")


def test_report_with_the_baseline_alone_and_in_the_middle():
    """a report of the baseline alone has one row; a baseline in the middle keeps the dictionary's order"""
    alone = {"only": given_measurement([2e-6, 3e-6, 2.5e-6])}
    expect_that(report_table(alone, "only"), same_table, [["name", "median", "IQR", "speed-up vs only (95% CI)"],
                                                          ["only", "2.5 us", "500 ns", "1.00x (baseline)"]],
                call="report_table({'only': ...}, 'only')", expected="the header, the separator, one row",
                hint="nothing to compare with: just the baseline's row")
    expect_equal(compare(alone, "only"), {}, call="compare({'only': ...}, 'only')", hint="no other measurement")
    ordered = {name: given_measurement(TIMINGS[name]) for name in ("vectorised", "loops", "cached")}
    expect_that(report_table(ordered, "loops", n_resamples=150, rng=2), same_table, [
        ["name", "median", "IQR", "speed-up vs loops (95% CI)"],
        ["vectorised", "104 us", "4 us", speedup_cell(torch_speedups(TIMINGS["loops"], [TIMINGS["vectorised"]],
                                                                     2, 150, 0.95)[0])],
        ["loops", "12.5 ms", "500 us", "1.00x (baseline)"],
        ["cached", "12.2 ms", "800 us", speedup_cell(torch_speedups(
            TIMINGS["loops"], [TIMINGS["vectorised"], TIMINGS["cached"]], 2, 150, 0.95)[1])],
    ], call="report_table({'vectorised', 'loops', 'cached'}, 'loops', n_resamples=150, rng=2)",
        expected="rows in the dictionary's order, the baseline where it stands",
        hint="loop over measurements.items(), not baseline first")


def test_submission_of_unequal_runs_and_integer_metrics(tmp_path):
    """a submission of measurements of different lengths, metrics given as ints, written to a new folder"""
    measurements = {"a": given_measurement([0.5, 0.25]), "b": given_measurement([0.125, 0.25, 0.375, 0.5, 0.75])}
    document = make_submission("mixed", measurements, metrics={"params": 1200, "layers": 3}, baseline="b",
                               n_resamples=100, confidence=0.8, rng=4)
    expect_that(document, valid_submission, SUBMISSION_SCHEMA, call="make_submission('mixed', ..., baseline='b')",
                expected="a document valid under SUBMISSION_SCHEMA", hint="plain floats and lists")
    expect_close([document["measurements"][k][f] for k in ("a", "b") for f in FIELDS],
                 np.concatenate([torch_stats([0.5, 0.25]), torch_stats([0.125, 0.25, 0.375, 0.5, 0.75])]),
                 call="document['measurements'] statistics", hint="each Measurement's own numbers",
                 rtol=1e-12, atol=ATOL)
    expect_close([document["speedups"]["a"][k] for k in ("ratio", "low", "high", "confidence")],
                 [*torch_speedups([0.125, 0.25, 0.375, 0.5, 0.75], [[0.5, 0.25]], 4, 100, 0.8)[0], 0.8],
                 call="document['speedups']['a'] with confidence=0.8, rng=4", hint="pass confidence and rng on",
                 rtol=1e-10, atol=ATOL)
    path = write_submission(tmp_path / "runs" / "2024" / "mixed.json", document)
    expect_that((json.loads(path.read_text()), document), same_pair,
                call="json.loads(write_submission(new/folder/file, doc)), doc", expected="the same document",
                hint="make the parent folders: path.parent.mkdir(parents=True, exist_ok=True)")


def test_submission_refuses_infinite_metrics_and_numpy_samples_stay_plain():
    """an infinite metric is refused; samples given as a numpy array still become a plain list"""
    measurements = {"x": summarize(np.array([0.5, 0.75, 1.0], dtype=np.float32))}
    expect_raises(ValueError, lambda: make_submission("x", measurements, metrics={"ratio": float("inf")}),
                  call="make_submission('x', ..., metrics={'ratio': inf})", hint="JSON has no infinity either")
    document = make_submission("x", measurements, metrics={"size": np.float32(2.5)})
    expect_that(document, valid_submission, SUBMISSION_SCHEMA,
                call="make_submission('x', {float32 samples}, metrics={'size': np.float32(2.5)})",
                expected="plain JSON types only", hint="float(...) and .tolist()")
