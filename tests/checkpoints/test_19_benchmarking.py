"""Checkpoint 19: a benchmark harness, bootstrap intervals, reports and a submission file.

Oracles: torch.quantile (linear interpolation, numpy's default percentile), torch.mean and
torch.std (unbiased) in float64 for the summary statistics; for the bootstrap, the same
resample rows drawn from a Generator of the same seed (the lesson fixes the recipe: one
`integers(0, n, size=(n_resamples, n))` draw per sample, the baseline's first), with the
statistics and the percentile interval computed by torch; jsonschema (on the trusted side)
for the submission document; closed forms where they teach ([1, 2, 3, 4] by hand, a fake
clock whose durations are known, a fixed table of timings).
"""

from __future__ import annotations

import json
import math
import os
import platform
from datetime import datetime, timedelta

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import same_pair, show, torch64, valid_submission, values
from tinytorch.benchmarking import (
    SUBMISSION_SCHEMA,
    Measurement,
    Speedup,
    bootstrap_ci,
    compare,
    environment,
    make_submission,
    measure,
    percentile_interval,
    plot_data,
    report_table,
    speedup,
    summarize,
    write_submission,
)

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-12, 1e-15
FIELDS = ("median", "mean", "std", "iqr", "min", "max")
STATS_HINT = ("median and IQR with np.percentile's default (linear) method, std with ddof=1 "
              "(divide by n - 1), all as Python floats")
DRAW_HINT = ("one generator = np.random.default_rng(rng); rows = generator.integers(0, n, size=(n_resamples, n)); "
             "the statistic of samples[rows[i]] for each row; the percentile interval of those estimates")
SPEEDUP_HINT = ("ratio = baseline.median / candidate.median; the interval: baseline rows drawn first, then "
                "candidate rows, from one Generator; ratio of the row medians; percentile_interval of the ratios")

# a fixed set of timings (seconds): a slow loop, a vectorised version, a cache that barely helps
TIMINGS = {
    "loops": [0.0121, 0.0124, 0.0123, 0.0130, 0.0122, 0.0126, 0.0127, 0.0159],
    "vectorised": [0.000103, 0.000101, 0.000107, 0.000102, 0.000133, 0.000104, 0.000101, 0.000105, 0.000106],
    "cached": [0.0118, 0.0131, 0.0125, 0.0119, 0.0121, 0.0140, 0.0122],
}


def stats_of(measurement) -> list[float]:
    """The six summary numbers of a Measurement, in FIELDS order."""
    return [getattr(measurement, name) for name in FIELDS]


def given_measurement(samples) -> Measurement:
    """A Measurement built here, without the student's summarize (speedup reads samples and median)."""
    x = np.asarray(samples, dtype=np.float64)
    lower, middle, upper = (float(np.quantile(x, q)) for q in (0.25, 0.5, 0.75))
    return Measurement(x, middle, float(x.mean()), float(x.std(ddof=1)), upper - lower, float(x.min()),
                       float(x.max()))


class FakeClock:
    """A clock that moves only when the timed function runs: call k of `work` lasts durations[k] seconds."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        self.now += self.durations[self.calls]
        self.calls += 1


# -- the oracles (torch, float64) ------------------------------------------------------------------

def torch_stats(samples) -> np.ndarray:
    """median, mean, std (unbiased; 0 for one sample), IQR, min, max by torch."""
    t = torch64(np.ravel(samples))
    q = torch.quantile(t, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    std = torch.std(t, correction=1) if t.numel() > 1 else torch.zeros((), dtype=torch.float64)
    return torch.stack([q[1], t.mean(), std, q[2] - q[0], t.min(), t.max()]).numpy()


def torch_interval(estimates, confidence) -> np.ndarray:
    tail = (1.0 - confidence) / 2.0
    return torch.quantile(torch64(estimates), torch.tensor([tail, 1.0 - tail], dtype=torch.float64)).numpy()


def torch_rows(generator, n, n_resamples) -> torch.Tensor:
    """The resample rows of the lesson's recipe, as a torch index tensor."""
    return torch.from_numpy(generator.integers(0, n, size=(n_resamples, n)))


def torch_bootstrap(samples, seed, n_resamples, confidence, statistic="median") -> np.ndarray:
    generator = np.random.default_rng(seed)
    resampled = torch64(samples)[torch_rows(generator, len(samples), n_resamples)]
    if statistic == "median":
        estimates = torch.quantile(resampled, 0.5, dim=1)
    else:
        estimates = resampled.mean(dim=1)
    return torch_interval(estimates.numpy(), confidence)


def torch_speedups(baseline_samples, candidates, seed, n_resamples, confidence) -> np.ndarray:
    """[[ratio, low, high] per candidate]: one Generator for all, baseline rows first each time."""
    generator = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
    base = torch64(baseline_samples)
    result = []
    for samples in candidates:
        cand = torch64(samples)
        base_rows = torch_rows(generator, len(baseline_samples), n_resamples)
        cand_rows = torch_rows(generator, len(samples), n_resamples)
        ratios = torch.quantile(base[base_rows], 0.5, dim=1) / torch.quantile(cand[cand_rows], 0.5, dim=1)
        ratio = (torch.quantile(base, 0.5) / torch.quantile(cand, 0.5)).item()
        result.append([ratio, *torch_interval(ratios.numpy(), confidence)])
    return np.array(result)


def speedup_cell(row) -> str:
    ratio, low, high = row
    return "{:.2f}x [{:.2f}, {:.2f}]".format(ratio, low, high)


# -- predicates (judged on the trusted side, over the student's recorded values) -------------------

def table_rows(text):
    """The cells of a markdown table, row by row, and the positions of its separator rows."""
    rows, separators = [], []
    for line in text.strip().splitlines():
        line = line.strip()
        if not (line.startswith("|") and line.endswith("|")):
            return None, None
        cells = [cell.strip() for cell in line[1:-1].split("|")]
        if all(cell and set(cell) <= set("-:") and "-" in cell for cell in cells):
            separators.append(len(rows))
        else:
            rows.append(cells)
    return rows, separators


def same_table(text, expected_rows) -> bool:
    """A markdown table with these cells (spaces around cells free), one separator row under the header."""
    if not isinstance(text, str):
        return False
    rows, separators = table_rows(text)
    return rows == [list(row) for row in expected_rows] and separators == [1]


def utc_timestamp(text) -> bool:
    """An ISO 8601 time with a UTC offset of zero, from this century."""
    moment = datetime.fromisoformat(text)
    return moment.utcoffset() == timedelta(0) and moment.year >= 2024


def covers_often(intervals, truth, lowest) -> bool:
    """At least `lowest` of the (low, high) intervals contain `truth`, and every low <= high."""
    intervals = np.asarray(intervals, dtype=np.float64)
    inside = (intervals[:, 0] <= truth) & (truth <= intervals[:, 1])
    return bool(np.all(intervals[:, 0] <= intervals[:, 1]) and inside.mean() >= lowest)


def width_ratio_between(pair, low, high) -> bool:
    """width(first interval) / width(second interval) lies in [low, high]."""
    (a_low, a_high), (b_low, b_high) = pair
    return low <= (a_high - a_low) / (b_high - b_low) <= high


# -- 1. summarize -------------------------------------------------------------------------------------

def test_summarize_by_hand():
    """summarize([1, 2, 3, 4]): median 2.5, IQR 1.75..3.25, std with n - 1; one sample has no spread"""
    m = summarize([1, 2, 3, 4])
    expect_close(stats_of(m), [2.5, 2.5, math.sqrt(5 / 3), 1.5, 1.0, 4.0], call="summarize([1, 2, 3, 4])",
                 hint="median is the mean of the two middle values; the 25th percentile sits at position "
                      "(n - 1) * 0.25 = 0.75, between 1 and 2: 1.75; std = sqrt(sum((x - mean)**2) / (n - 1))",
                 rtol=RTOL, atol=ATOL)
    expect_close(stats_of(summarize([0.125])), [0.125, 0.125, 0.0, 0.0, 0.125, 0.125], call="summarize([0.125])",
                 hint="one sample shows no spread: std is 0.0 (np.std with ddof=1 would say nan)", rtol=0, atol=0)


def test_summarize_matches_torch_odd_and_even():
    """median, mean, std, IQR, min and max equal torch's on known timings (odd and even counts)"""
    for name, samples in TIMINGS.items():
        m = summarize(samples)
        expect_close(stats_of(m), torch_stats(samples), call=f"summarize({show(samples)})  # {name}",
                     hint=STATS_HINT, rtol=RTOL, atol=ATOL)


@settings(max_examples=30)
@given(samples=arrays(np.float64, st.integers(2, 40), elements=values(1e-6, 10.0)))
def test_summarize_matches_torch_on_any_samples(samples):
    """summarize agrees with torch.quantile / mean / std on samples drawn by Hypothesis"""
    expect_close(stats_of(summarize(samples)), torch_stats(samples), call=f"summarize({show(samples)})",
                 hint=STATS_HINT, rtol=1e-10, atol=1e-14)


def test_summarize_keeps_a_float64_copy_of_the_samples():
    """summarize keeps the samples in order, as a float64 array of its own"""
    taken = np.array([3, 1, 2, 5], dtype=np.int64)
    m = summarize(taken)
    taken[0] = 100
    expect_equal(m.samples.dtype, np.dtype(np.float64), call="summarize(np.array([3, 1, 2, 5])).samples.dtype",
                 hint="np.array(samples, dtype=np.float64)")
    expect_close(m.samples, [3.0, 1.0, 2.0, 5.0], call="summarize(x).samples after x[0] = 100",
                 hint="keep the samples in the order they were taken, in an array of your own (a copy)",
                 rtol=0, atol=0)
    expect_close(summarize([[0.5, 0.25], [0.75, 1.0]]).samples, [0.5, 0.25, 0.75, 1.0],
                 call="summarize([[0.5, 0.25], [0.75, 1.0]]).samples", hint="flatten: .ravel()", rtol=0, atol=0)


def test_summarize_rejects_empty_and_nan():
    """summarize refuses no samples and samples holding NaN or infinity"""
    expect_raises(ValueError, lambda: summarize([]), call="summarize([])",
                  hint="no samples, no statistics: ValueError")
    expect_raises(ValueError, lambda: summarize([0.1, float("nan"), 0.2]), call="summarize([0.1, nan, 0.2])",
                  hint="one NaN turns every statistic into NaN: check np.isfinite")
    expect_raises(ValueError, lambda: summarize([0.1, float("inf")]), call="summarize([0.1, inf])",
                  hint="check np.isfinite")


# -- 2. measure ------------------------------------------------------------------------------------------

def test_measure_times_after_the_warmup():
    """measure(fn, warmup=2, repeats=5, clock) keeps the 5 durations after the 2 warm-up calls"""
    durations = [k / 1024 for k in (700, 650, 40, 44, 41, 90, 42, 999)]
    clock = FakeClock(durations)
    m = measure(clock.work, warmup=2, repeats=5, clock=clock)
    expect_close(m.samples, durations[2:7], call="measure(fn, warmup=2, repeats=5, clock=fake_clock).samples",
                 hint="the warm-up calls are not timed; time each of the repeats with the clock you are given "
                      "(module 14's Timer(warmup, repeats, clock))", rtol=1e-12, atol=1e-15)
    expect_equal(clock.calls, 7, call="calls of fn by measure(fn, warmup=2, repeats=5, ...)",
                 hint="warmup + repeats calls in all")
    expect_close(stats_of(m), torch_stats(durations[2:7]), call="measure(...) statistics",
                 hint="summarize the Timing's times", rtol=1e-12, atol=1e-15)


def test_measure_defaults():
    """measure(fn, clock=clock) warms up 3 times and keeps 20 repeats"""
    durations = [(k % 7 + 1) / 256 for k in range(23)] + [5.0]
    clock = FakeClock(durations)
    m = measure(clock.work, clock=clock)
    expect_close(m.samples, durations[3:23], call="measure(fn, clock=fake_clock).samples",
                 hint="warmup=3 and repeats=20 by default", rtol=1e-12, atol=1e-15)


# -- 3. the bootstrap ----------------------------------------------------------------------------------

def test_percentile_interval():
    """percentile_interval cuts (1 - confidence) / 2 off each end, numpy's linear percentiles"""
    estimates = np.random.default_rng(3).standard_normal(101)
    for confidence in (0.95, 0.9, 0.5):
        got = percentile_interval(estimates, confidence)
        expect_close(got, torch_interval(estimates, confidence), call=f"percentile_interval(x, {confidence})",
                     hint="np.percentile(estimates, [100 * (1 - c) / 2, 100 * (1 + c) / 2])", rtol=RTOL, atol=ATOL)
    expect_close(percentile_interval(np.arange(11.0), 0.8), [1.0, 9.0], call="percentile_interval(0..10, 0.8)",
                 hint="the 10th and 90th percentiles of 0, 1, ..., 10", rtol=RTOL, atol=ATOL)


def test_bootstrap_ci_median_matches_torch():
    """bootstrap_ci of the median equals torch's on the same resample rows (same seed)"""
    samples = np.random.default_rng(11).lognormal(-7.0, 0.3, size=15)
    for seed, confidence in ((0, 0.95), (5, 0.9)):
        got = bootstrap_ci(samples, np.median, n_resamples=400, confidence=confidence, rng=seed)
        expect_close(got, torch_bootstrap(samples, seed, 400, confidence),
                     call=f"bootstrap_ci(samples, np.median, n_resamples=400, confidence={confidence}, rng={seed})",
                     hint=DRAW_HINT, rtol=1e-10, atol=ATOL)


def test_bootstrap_ci_mean_and_a_generator():
    """bootstrap_ci takes any statistic, and a Generator as rng as well as a seed"""
    samples = np.random.default_rng(12).exponential(2.0, size=12)
    got = bootstrap_ci(samples, np.mean, n_resamples=300, rng=np.random.default_rng(4))
    expect_close(got, torch_bootstrap(samples, 4, 300, 0.95, statistic="mean"),
                 call="bootstrap_ci(samples, np.mean, n_resamples=300, rng=np.random.default_rng(4))",
                 hint=DRAW_HINT + "; np.random.default_rng(rng) accepts None, a seed or a Generator",
                 rtol=1e-10, atol=ATOL)


def test_bootstrap_ci_default_resamples():
    """bootstrap_ci draws 2000 resamples at 95% by default"""
    samples = np.random.default_rng(13).normal(5.0, 1.0, size=30)
    expect_close(bootstrap_ci(samples, rng=1), torch_bootstrap(samples, 1, 2000, 0.95),
                 call="bootstrap_ci(samples, rng=1)", hint="statistic=np.median, n_resamples=2000, confidence=0.95",
                 rtol=1e-10, atol=ATOL)


def test_bootstrap_ci_covers_the_truth():
    """over 80 simulated experiments, the 95% interval of the median catches the true median most times"""
    experiments = np.random.default_rng(21).normal(1.0, 0.2, size=(80, 25))
    intervals = [bootstrap_ci(samples, np.median, n_resamples=200, rng=k) for k, samples in enumerate(experiments)]
    expect_that(intervals, covers_often, 1.0, 0.8, call="80 x bootstrap_ci(25 samples of N(1, 0.2), np.median)",
                expected="low <= high, and at least 80% of the intervals contain the true median 1.0",
                hint="resample with replacement, n values per resample; the middle 95% of the estimates")


def test_bootstrap_ci_narrows_like_one_over_root_n():
    """16 times more samples make the interval of the median about 4 times narrower"""
    rng = np.random.default_rng(22)
    few = bootstrap_ci(rng.normal(0.0, 1.0, size=25), n_resamples=500, rng=1)
    many = bootstrap_ci(rng.normal(0.0, 1.0, size=400), n_resamples=500, rng=1)
    expect_that((few, many), width_ratio_between, 2.5, 6.5,
                call="width of bootstrap_ci(25 samples) / width of bootstrap_ci(400 samples)",
                expected="between 2.5 and 6.5 (sqrt(400 / 25) = 4)",
                hint="each resample has as many values as the sample itself")


def test_bootstrap_ci_rejects_bad_settings():
    """bootstrap_ci refuses an empty sample, no resamples, and a confidence outside (0, 1)"""
    expect_raises(ValueError, lambda: bootstrap_ci([], rng=0), call="bootstrap_ci([])", hint="no samples: ValueError")
    expect_raises(ValueError, lambda: bootstrap_ci([1.0, 2.0], n_resamples=0, rng=0),
                  call="bootstrap_ci([1, 2], n_resamples=0)", hint="at least one resample")
    expect_raises(ValueError, lambda: bootstrap_ci([1.0, 2.0], confidence=95, rng=0),
                  call="bootstrap_ci([1, 2], confidence=95)", hint="confidence is a fraction: 0.95 for 95%")


# -- 4. the speed-up ------------------------------------------------------------------------------------

def test_speedup_matches_torch():
    """speedup: the ratio of medians and its two-sample bootstrap interval equal torch's (same seed)"""
    rng = np.random.default_rng(31)
    slow = rng.lognormal(np.log(2e-3), 0.1, size=12)
    fast = rng.lognormal(np.log(5e-4), 0.2, size=17)
    s = speedup(given_measurement(slow), given_measurement(fast), n_resamples=500, rng=9)
    expect_close([s.ratio, s.low, s.high, s.confidence], [*torch_speedups(slow, [fast], 9, 500, 0.95)[0], 0.95],
                 call="speedup(baseline of 12 runs, candidate of 17 runs, n_resamples=500, rng=9): "
                      "[ratio, low, high, confidence]", hint=SPEEDUP_HINT, rtol=1e-10, atol=ATOL)


def test_speedup_direction_and_confidence():
    """a candidate that takes half the time has a speed-up of 2, not 0.5; the confidence is kept"""
    base = given_measurement([4.0, 4.1, 3.9, 4.0, 4.2])
    half = given_measurement([2.0, 2.05, 1.95, 2.0, 2.1])
    s = speedup(base, half, n_resamples=200, confidence=0.9, rng=2)
    expect_close([s.ratio, s.low, s.high, s.confidence], [2.0, *torch_speedups(base.samples, [half.samples], 2, 200,
                                                                               0.9)[0][1:], 0.9],
                 call="speedup(runs of ~4 s, runs of ~2 s, n_resamples=200, confidence=0.9, rng=2)",
                 hint="speed-up = baseline.median / candidate.median: bigger is better", rtol=1e-10, atol=ATOL)


def test_speedup_significance():
    """a Speedup is significant exactly when its interval leaves out 1"""
    cases = [(2.0, 1.5, 2.5), (1.0, 0.9, 1.1), (0.5, 0.4, 0.6), (1.2, 1.0, 1.3), (0.95, 0.9, 1.0)]
    got = [Speedup(ratio, low, high, 0.95).significant for ratio, low, high in cases]
    expect_equal(got, [True, False, True, False, False], call=f"Speedup(ratio, low, high).significant for {cases}",
                 hint="significant when low > 1 (clearly faster) or high < 1 (clearly slower); an interval "
                      "that touches 1 contains it")


def test_speedup_rejects_bad_settings():
    """speedup refuses zero times and a confidence outside (0, 1)"""
    ok = given_measurement([1.0, 1.1, 0.9])
    zero = given_measurement([0.0, 1.0, 1.0])
    expect_raises(ValueError, lambda: speedup(ok, zero, rng=0), call="speedup(ok, a measurement with a 0.0 time)",
                  hint="a zero time makes the ratio infinite: every time must be positive")
    expect_raises(ValueError, lambda: speedup(zero, ok, rng=0), call="speedup(a measurement with a 0.0 time, ok)",
                  hint="check the baseline's times too")
    expect_raises(ValueError, lambda: speedup(ok, ok, confidence=1.0, rng=0), call="speedup(ok, ok, confidence=1.0)",
                  hint="confidence lies strictly between 0 and 1")


# -- 5. reports ----------------------------------------------------------------------------------------------

def timing_measurements() -> dict[str, Measurement]:
    return {name: given_measurement(samples) for name, samples in TIMINGS.items()}


def test_compare_uses_one_generator_in_order():
    """compare gives every candidate's speed-up against the baseline, drawing from one Generator in order"""
    measurements = timing_measurements()
    speedups = compare(measurements, "loops", n_resamples=300, rng=5)
    expect_equal(list(speedups), ["vectorised", "cached"], call="list(compare(timings, 'loops'))",
                 hint="every name but the baseline's, in the dictionary's order")
    expect_close([[s.ratio, s.low, s.high] for s in speedups.values()],
                 torch_speedups(TIMINGS["loops"], [TIMINGS["vectorised"], TIMINGS["cached"]], 5, 300, 0.95),
                 call="compare(timings, 'loops', n_resamples=300, rng=5): [ratio, low, high] per candidate",
                 hint="generator = np.random.default_rng(rng) once, then speedup(baseline, candidate, ..., generator) "
                      "for each candidate in turn", rtol=1e-10, atol=ATOL)


def test_report_table_on_fixed_timings():
    """report_table on a fixed set of timings: one row per measurement, medians, IQRs, speed-ups with intervals"""
    table = report_table(timing_measurements(), "loops", n_resamples=1000, rng=7)
    expect_that(table, same_table, [
        ["name", "median", "IQR", "speed-up vs loops (95% CI)"],
        ["loops", "12.5 ms", "500 us", "1.00x (baseline)"],
        ["vectorised", "104 us", "4 us", speedup_cell(torch_speedups(TIMINGS["loops"], [TIMINGS["vectorised"]],
                                                                     7, 1000, 0.95)[0])],
        ["cached", "12.2 ms", "800 us", speedup_cell(torch_speedups(
            TIMINGS["loops"], [TIMINGS["vectorised"], TIMINGS["cached"]], 7, 1000, 0.95)[1])],
    ], call="report_table(timings, baseline='loops', n_resamples=1000, rng=7)",
        expected="the header, a separator row, then one row per measurement in order (see the lesson's example)",
        hint="cells: name | format_seconds(median) | format_seconds(iqr) | str(speedup) or '1.00x (baseline)'")


def test_report_table_header_and_unknown_baseline():
    """report_table names the confidence in its header and refuses an unknown baseline"""
    two = {name: given_measurement(TIMINGS[name]) for name in ("loops", "cached")}
    table = report_table(two, "cached", n_resamples=200, confidence=0.9, rng=1)
    expect_that(table, same_table, [
        ["name", "median", "IQR", "speed-up vs cached (90% CI)"],
        ["loops", "12.5 ms", "500 us", speedup_cell(torch_speedups(TIMINGS["cached"], [TIMINGS["loops"]], 1, 200,
                                                                   0.9)[0])],
        ["cached", "12.2 ms", "800 us", "1.00x (baseline)"],
    ], call="report_table({'loops': ..., 'cached': ...}, 'cached', n_resamples=200, confidence=0.9, rng=1)",
        expected="rows in the dictionary's order (the baseline last here), the 90% interval in the header",
        hint="f'speed-up vs {baseline} ({confidence:.0%} CI)'")
    expect_raises((ValueError, KeyError), lambda: report_table(two, "numpy"), call="report_table(timings, 'numpy')",
                  hint="the baseline must be one of the measurements' names")


def test_plot_data():
    """plot_data: names, ratios, and error-bar lengths below and above each ratio"""
    speedups = {"a": Speedup(2.0, 1.5, 2.75, 0.95), "b": Speedup(0.5, 0.45, 0.625, 0.95),
                "c": Speedup(1.0, 0.875, 1.25, 0.95)}
    data = plot_data(speedups)
    expect_equal(sorted(data), ["names", "ratio", "xerr"], call="sorted(plot_data(speedups))",
                 hint='{"names": ..., "ratio": ..., "xerr": ...}')
    expect_equal(list(data["names"]), ["a", "b", "c"], call="plot_data(speedups)['names']",
                 hint="the names in the dictionary's order")
    expect_close(data["ratio"], [2.0, 0.5, 1.0], call="plot_data(speedups)['ratio']", hint="each Speedup's ratio",
                 rtol=RTOL, atol=ATOL)
    expect_close(data["xerr"], [[0.5, 0.05, 0.125], [0.75, 0.125, 0.25]], call="plot_data(speedups)['xerr']",
                 hint="shape (2, N): row 0 is ratio - low, row 1 is high - ratio (distances, not the ends)",
                 rtol=RTOL, atol=1e-12)


# -- 6. the submission ---------------------------------------------------------------------------------------

def test_environment():
    """environment() names python, numpy, the platform and the cpu count"""
    expect_equal(environment(), {"python": platform.python_version(), "numpy": np.__version__,
                                 "platform": platform.platform(), "cpu_count": os.cpu_count()},
                 call="environment()", hint="platform.python_version(), np.__version__, platform.platform(), "
                                            "os.cpu_count()")


def test_submission_passes_the_schema():
    """make_submission with a baseline and metrics gives a document that SUBMISSION_SCHEMA accepts"""
    document = make_submission("sum of squares", timing_measurements(),
                               metrics={"accuracy": np.float32(0.5), "bytes": np.int64(4096)},
                               baseline="loops", n_resamples=200, rng=3)
    expect_that(document, valid_submission, SUBMISSION_SCHEMA,
                call="make_submission('sum of squares', timings, metrics={'accuracy': np.float32(0.5), "
                     "'bytes': np.int64(4096)}, baseline='loops')",
                expected="a document valid under SUBMISSION_SCHEMA, plain JSON types",
                hint="every key the schema requires, nothing else; float(...) and .tolist(): JSON cannot hold "
                     "numpy values")
    expect_that(document["created"], utc_timestamp, call="make_submission(...)['created']",
                expected="an ISO 8601 time in UTC", hint='datetime.now(timezone.utc).isoformat(timespec="seconds")')


def test_submission_numbers():
    """the submission keeps every sample, the statistics, the speed-ups and the metrics"""
    document = make_submission("run", timing_measurements(), metrics={"accuracy": 0.98, "bytes": 4096},
                               baseline="loops", n_resamples=200, rng=3)
    expect_equal([document["schema_version"], document["name"], document["baseline"]], [1, "run", "loops"],
                 call="make_submission('run', ..., baseline='loops'): schema_version, name, baseline",
                 hint="schema_version is 1")
    entries = document["measurements"]
    expect_equal(list(entries), list(TIMINGS), call="list(document['measurements'])", hint="one entry per measurement")
    for name, samples in TIMINGS.items():
        expect_close(entries[name]["samples"], samples, call=f"document['measurements'][{name!r}]['samples']",
                     hint="samples.tolist()", rtol=0, atol=0)
        expect_close([entries[name][key] for key in FIELDS], torch_stats(samples),
                     call=f"document['measurements'][{name!r}]: {', '.join(FIELDS)}",
                     hint="the Measurement's own statistics, as floats", rtol=1e-10, atol=ATOL)
    expect_equal(list(document["speedups"]), ["vectorised", "cached"], call="list(document['speedups'])",
                 hint="compare(measurements, baseline, ...): every name but the baseline")
    expect_close([[s["ratio"], s["low"], s["high"], s["confidence"]] for s in document["speedups"].values()],
                 np.hstack([torch_speedups(TIMINGS["loops"], [TIMINGS["vectorised"], TIMINGS["cached"]], 3, 200, 0.95),
                            np.full((2, 1), 0.95)]),
                 call="document['speedups'] with n_resamples=200, rng=3: ratio, low, high, confidence",
                 hint="compare(measurements, baseline, n_resamples, confidence, rng)", rtol=1e-10, atol=ATOL)
    expect_equal(document["metrics"], {"accuracy": 0.98, "bytes": 4096.0}, call="document['metrics']",
                 hint="each metric as a float")
    expect_equal(document["environment"], environment(), call="document['environment']", hint="environment()")


def test_submission_without_baseline():
    """without a baseline or metrics the submission has no speed-ups, no metrics, and still passes the schema"""
    document = make_submission("single", {"only": given_measurement([0.5, 0.25, 0.75])})
    expect_equal([document["baseline"], document["speedups"], document["metrics"]], [None, {}, {}],
                 call="make_submission('single', {...}): baseline, speedups, metrics", hint="None, {} and {}")
    expect_that(document, valid_submission, SUBMISSION_SCHEMA, call="make_submission('single', {'only': ...})",
                expected="a document valid under SUBMISSION_SCHEMA", hint="the keys are required even when empty")


def test_submission_rejects_what_json_cannot_hold():
    """make_submission refuses a NaN metric, an unknown baseline, an empty name and no measurements"""
    measurements = {"only": given_measurement([0.5, 0.25, 0.75])}
    expect_raises(ValueError, lambda: make_submission("x", measurements, metrics={"loss": float("nan")}),
                  call="make_submission('x', ..., metrics={'loss': nan})", hint="JSON has no NaN: ValueError")
    expect_raises(ValueError, lambda: make_submission("x", measurements, baseline="other"),
                  call="make_submission('x', {'only': ...}, baseline='other')",
                  hint="the baseline must be one of the measurements")
    expect_raises(ValueError, lambda: make_submission("", measurements), call="make_submission('', ...)",
                  hint="a submission needs a name")
    expect_raises(ValueError, lambda: make_submission("x", {}), call="make_submission('x', {})",
                  hint="a submission needs at least one measurement")


def test_write_submission_round_trip(tmp_path):
    """write_submission writes strict, indented JSON (making its folder) that reads back as the same document"""
    document = {"schema_version": 1, "name": "tiny", "values": [0.1, 0.25, 1e-7], "nested": {"n": 3, "none": None}}
    path = tmp_path / "results" / "submission.json"
    returned = write_submission(path, document)
    expect_that((str(returned), str(path)), same_pair, call="str(write_submission(path, document)), str(path)",
                expected="the path it was given", hint="return Path(path)")
    expect_equal(type(returned).__name__, type(path).__name__, call="type(write_submission(path, document))",
                 hint="a pathlib.Path")
    expect_equal(path.read_text(), json.dumps(document, indent=2) + "\n", call="the file write_submission wrote",
                 hint='json.dumps(document, indent=2, allow_nan=False) + "\\n"')
    expect_raises(ValueError, lambda: write_submission(tmp_path / "bad.json", {"loss": float("nan")}),
                  call="write_submission(path, {'loss': nan})", hint="json.dumps(..., allow_nan=False) refuses NaN")
