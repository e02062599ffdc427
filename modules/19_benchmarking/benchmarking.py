# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 19: Benchmarking
#
# "My version is 2.3x faster." Faster than what, measured how, and how sure are you? Time the
# same function twenty times and you get twenty different numbers: the operating system
# interrupts you, another program takes the core, the CPU changes its clock speed, caches
# are cold the first time and warm the next. Module 14 built a `Timer` that runs a function
# a few times untimed (the **warm-up**) and then times it `repeats` times. This module turns
# those raw times into claims you can defend:
#
# 1. **Summaries that survive noise.** Timing noise is one-sided: an interrupt can make a
#    run slower, never faster. So the *median* and the *interquartile range* (IQR) describe
#    a benchmark better than the mean and the standard deviation, which one bad run drags
#    around. We keep all of them, and the samples too.
# 2. **Uncertainty.** A median of twenty noisy numbers is itself a noisy number. The
#    **bootstrap** estimates how noisy, from the samples alone, without assuming a bell curve:
#    it gives a confidence interval for the median, and for the **speed-up** (the ratio of
#    two medians) of a candidate against a baseline.
# 3. **Reports.** A table and a plot of every candidate against the baseline, with
#    intervals, and a **submission file**: a JSON document, with a schema, that records the
#    measurements together with the machine they were taken on.
#
# In this module you build
#
# | name | what it does |
# | --- | --- |
# | `Measurement`, `summarize(samples)` | the samples with their median, mean, std, IQR, min, max |
# | `measure(fn, warmup, repeats, clock)` | time `fn` with module 14's `Timer` and summarize |
# | `percentile_interval(estimates, confidence)` | the middle `confidence` of a pile of estimates |
# | `bootstrap_ci(samples, statistic, n_resamples, confidence, rng)` | a percentile-bootstrap confidence interval |
# | `Speedup`, `speedup(baseline, candidate, ...)` | the ratio of medians with its bootstrap interval |
# | `compare(measurements, baseline, ...)` | every candidate's `Speedup` against the baseline |
# | `report_table(measurements, baseline, ...)` | the comparison as a markdown table |
# | `plot_data(speedups)`, `report_plot(speedups, axes)` | the comparison as a bar chart with error bars |
# | `environment()`, `SUBMISSION_SCHEMA`, `make_submission(...)`, `write_submission(path, document)` | the submission file |
#
# The checkpoint checks your statistics against PyTorch's (`torch.quantile`, `torch.std`)
# on known samples, your bootstrap intervals against a PyTorch computation on the same
# resamples, your table on a fixed set of timings, and your submission with `jsonschema`
# against `SUBMISSION_SCHEMA`.
#
# The module needs only numpy. The plot is drawn on a matplotlib `Axes` that *you* create
# and pass in, so tinytorch itself never imports matplotlib.

# %%
from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinytorch.profiling import Timer, format_seconds  # '1.23 ms': the same units as module 14's Timer


# %% [markdown]
# ## 1. A measurement: samples and their summary
#
# A `Measurement` keeps the raw samples (as a float64 array, in the order they were taken)
# and six numbers about them:
#
# | field | what | why |
# | --- | --- | --- |
# | `median` | the middle value (the mean of the two middle values for an even count) | the typical run; one slow outlier cannot move it |
# | `mean` | the average | what a *throughput* is made of (total time / calls), but outliers drag it |
# | `std` | the **sample** standard deviation, `ddof=1` (divide by `n - 1`) | the spread if the noise were a bell curve |
# | `iqr` | 75th percentile minus 25th percentile | the spread of the middle half: robust, like the median |
# | `min`, `max` | the fastest and slowest run | `min` is the "noise-free" time some tools report; `max` shows the outliers |
#
# **Percentiles, exactly.** There are a dozen definitions of a percentile for a finite
# sample. We use numpy's default (`np.percentile(x, q)`, method `"linear"`, also R's type 7
# and `torch.quantile`'s default): sort the `n` samples, put the `q`-th percentile at
# position `(n - 1) * q / 100` counting from 0, and interpolate linearly between the two
# samples around that position. For `[1, 2, 3, 4]`: the 25th percentile sits at position
# 0.75, so it is `1 + 0.75 * (2 - 1) = 1.75`; the 75th at position 2.25, `3.25`; the IQR is
# `1.5`; the median (position 1.5) is `2.5`. (`torch.median` is *not* this: for an even count
# it returns the lower of the two middle values.)
#
# **Why `ddof=1`.** The deviations from the sample's own mean are a little smaller than the
# deviations from the true mean (the sample mean sits in the middle of its own samples by
# construction), so dividing their squares by `n` underestimates the variance; dividing by
# `n - 1` corrects it. It is what `torch.std` and `statistics.stdev` do; `np.std` needs
# `ddof=1` to agree. With a single sample there is no spread to see: `std` is `0.0` (numpy
# would warn and say `nan`).
#
# `summarize` accepts any sequence of numbers (a list, a tuple, an array), flattens it, and
# raises `ValueError` if it is empty or holds a NaN or an infinity: one NaN would silently
# turn every statistic into NaN.

# %%
@dataclass(frozen=True, eq=False)
class Measurement:
    """Repeated samples (seconds, for a benchmark) and their summary statistics."""

    samples: np.ndarray  # float64, in the order they were taken
    median: float
    mean: float
    std: float           # sample standard deviation, ddof=1 (0.0 for one sample)
    iqr: float           # 75th minus 25th percentile, numpy's "linear" method
    min: float
    max: float

    @property
    def n(self) -> int:
        """How many samples."""
        return int(self.samples.size)

    def __str__(self) -> str:
        return f"{format_seconds(self.median)} median, IQR {format_seconds(self.iqr)} (n={self.n})"


# %% nbgrader={"grade": false, "grade_id": "summarize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def summarize(samples: Any) -> Measurement:
    """The Measurement of these samples: float64 copy, median, mean, std (ddof=1), IQR, min, max."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 2. Measuring: warm-up, then repeats
#
# Why throw the first runs away? The first call of a function pays for things the later ones
# do not: memory that must be mapped in, caches that are cold, lazy initialisation (numpy
# picks its BLAS kernels, Python compiles regular expressions), a CPU that is still ramping
# up its clock. A benchmark asks "how long does this take *in steady state*", so the
# `warmup` calls run untimed.
#
# `measure(fn, warmup, repeats, clock)` is module 14's `Timer(warmup, repeats, clock)`
# followed by `summarize` of its `Timing.times`. The `clock` is any function returning
# seconds: `time.perf_counter` by default (the highest-resolution clock Python has, and
# monotonic: it never jumps back when the system clock is adjusted). Passing the clock in
# lets a test drive the timer with a fake clock whose "durations" are known exactly.
#
# One caution the harness cannot fix for you: `perf_counter` ticks in tens of nanoseconds at
# best, and a Python call costs about a hundred. To time something that takes less than a few
# microseconds, time a loop of many calls in `fn` and divide.

# %% nbgrader={"grade": false, "grade_id": "measure", "locked": false, "schema_version": 3, "solution": true, "task": false}
def measure(fn: Callable[[], Any], warmup: int = 3, repeats: int = 20,
            clock: Callable[[], float] = time.perf_counter) -> Measurement:
    """Run fn `warmup` times untimed, then time it `repeats` times with `clock`: the Measurement."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 3. The bootstrap: how sure is a median?
#
# We measured twenty times and found a median of 1.23 ms. Had we measured another twenty,
# we would have found another median. How far apart would the two be? The ideal answer:
# repeat the whole experiment many times and look at the spread of the medians. The
# **bootstrap** (Efron, 1979) fakes that with the one sample we have: it treats the sample
# as a stand-in for the whole population and draws new "experiments" from it.
#
# 1. Draw a **resample**: `n` values from the `n` samples, **with replacement** (some samples
#    appear twice, some not at all).
# 2. Compute the statistic (the median) of the resample.
# 3. Repeat `n_resamples` times (2000 is plenty for a 95% interval).
# 4. The **percentile interval**: the middle `confidence` of those estimates. For 95%, cut
#    2.5% off each end: the 2.5th and the 97.5th percentiles of the estimates.
#
# `percentile_interval(estimates, confidence)` is step 4: the percentiles
# `100 * (1 - confidence) / 2` and `100 * (1 + confidence) / 2` of the estimates, numpy's
# linear method again, as a tuple of two Python floats.
#
# **Reproducibility.** A bootstrap is random, and a benchmark report should come out the same
# when you rerun it on the same data. So the randomness comes from a numpy `Generator`:
# `rng` may be `None` (fresh entropy), a seed (an `int`), or a `Generator` (used as it is),
# and `np.random.default_rng(rng)` turns any of the three into a Generator. To get *the
# same* interval as everybody else from the same seed, draw all the resample indices at once,
# as one `(n_resamples, n)` array:
#
# `rows = generator.integers(0, n, size=(n_resamples, n))`
#
# row `i` is resample `i`, `samples[rows[i]]`. Then apply `statistic` to each resample in
# order. (`statistic` is any function of a 1-D array returning a number: `np.median`,
# `np.mean`, `lambda x: np.percentile(x, 90)`.)
#
# Raise `ValueError` for an empty sample, and for `n_resamples < 1` or a `confidence` outside
# `(0, 1)` (`_check_resampling` below does those two).
#
# **What the interval means, and does not.** A 95% interval procedure catches the true value
# in about 95% of experiments (the checkpoint simulates that). It is about the *statistic*
# (the median), not about single runs: 95% of your runs do *not* fall inside it. And it only
# covers the noise you sampled: a laptop that throttles after a minute, or a different
# machine, are not in it.

# %%
def _check_resampling(n_resamples: int, confidence: float) -> None:
    """ValueError unless n_resamples >= 1 and 0 < confidence < 1."""
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1 (0.95 for 95%), got {confidence}")


# %% nbgrader={"grade": false, "grade_id": "bootstrap", "locked": false, "schema_version": 3, "solution": true, "task": false}
def percentile_interval(estimates: Any, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high): the 100*(1-c)/2 and 100*(1+c)/2 percentiles of the estimates (numpy's linear method)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def bootstrap_ci(samples: Any, statistic: Callable[[np.ndarray], float] = np.median, n_resamples: int = 2000,
                 confidence: float = 0.95, rng: Any = None) -> tuple[float, float]:
    """Percentile-bootstrap interval of statistic(samples): resample rows = rng.integers(0, n, (n_resamples, n))."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 4. The speed-up, with its interval
#
# The **speed-up** of a candidate over a baseline is the ratio of their median times,
#
# `ratio = baseline.median / candidate.median`
#
# so that bigger is better: `2.0` means the candidate takes half the time, `0.5` that it
# takes twice as long. Its interval comes from a **two-sample bootstrap**: the two
# measurements were taken independently, so each side is resampled independently, from its
# own samples, and each pair of resamples gives one ratio of medians:
#
# ```
# generator = np.random.default_rng(rng)
# b_rows = generator.integers(0, n_baseline, size=(n_resamples, n_baseline))    # first the baseline
# c_rows = generator.integers(0, n_candidate, size=(n_resamples, n_candidate))  # then the candidate
# ratio_i = median(baseline.samples[b_rows[i]]) / median(candidate.samples[c_rows[i]])
# ```
#
# and the interval is `percentile_interval` of the `n_resamples` ratios. (`np.median(...,
# axis=1)` takes the median of every row at once.) Resampling both sides matters: resample
# only the candidate and you pretend the baseline's median is known exactly, and the interval
# comes out too narrow. Resampling both with the *same* rows would pair run 3 of the
# baseline with run 3 of the candidate, as if they had something in common.
#
# Times must be positive (a zero time makes the ratio infinite): `ValueError` otherwise,
# and for bad `n_resamples` or `confidence`.
#
# A `Speedup` is `significant` when its interval does not contain 1: then the data say, at
# that confidence, that the candidate is faster (`low > 1`) or slower (`high < 1`). An
# interval like `[0.97, 1.08]` says "no difference I can see with this many runs", which is
# a perfectly good result.

# %% nbgrader={"grade": false, "grade_id": "speedup", "locked": false, "schema_version": 3, "solution": true, "task": false}
@dataclass(frozen=True)
class Speedup:
    """baseline.median / candidate.median with its bootstrap interval [low, high] at `confidence`."""

    ratio: float
    low: float
    high: float
    confidence: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes 1: clearly faster (low > 1) or clearly slower (high < 1)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __str__(self) -> str:
        return f"{self.ratio:.2f}x [{self.low:.2f}, {self.high:.2f}]"


def speedup(baseline: Measurement, candidate: Measurement, n_resamples: int = 2000, confidence: float = 0.95,
            rng: Any = None) -> Speedup:
    """Speedup(baseline.median / candidate.median, interval from resampling each side independently)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 5. The comparison report
#
# A benchmark usually compares several versions of one computation (a loop, a vectorised
# version, a cached one) against one **baseline**. `compare(measurements, baseline)` gives
# the `Speedup` of every other entry against `measurements[baseline]`, in the dictionary's
# order, skipping the baseline itself. It makes **one** Generator, `np.random.default_rng(rng)`,
# and passes it to each `speedup` in turn (so the second comparison continues the random
# stream where the first stopped). Its default `rng=0` makes a report reproducible: the same
# timings give the same table. An unknown baseline is a `ValueError` that lists the names.
#
# `report_table` writes the comparison as a markdown table, one row per measurement in the
# dictionary's order, with cells separated by `" | "`:
#
# ```
# | name | median | IQR | speed-up vs loops (95% CI) |
# | --- | ---: | ---: | ---: |
# | loops | 12.3 ms | 410 us | 1.00x (baseline) |
# | numpy | 102 us | 3.1 us | 120.59x [117.21, 124.30] |
# ```
#
# The header names the baseline and the confidence (`f"{confidence:.0%}"`), times go through
# `format_seconds`, the baseline's row says `1.00x (baseline)`, and every other row shows its
# `Speedup` as `str(speedup)`: `f"{ratio:.2f}x [{low:.2f}, {high:.2f}]"`. Lines are joined
# with `"\n"`. (The checkpoint reads the cells, so extra spaces for alignment are fine.)
#
# For the plot, `plot_data(speedups)` gathers what a bar chart with error bars needs:
# `{"names": [...], "ratio": array, "xerr": array of shape (2, N)}`. Matplotlib's `xerr`
# wants *distances* from the bar's end, not the ends of the interval: row 0 is how far the
# interval reaches below the ratio (`ratio - low`), row 1 how far above (`high - ratio`).
# A bootstrap interval of a ratio is usually lopsided (longer above than below), and the two
# rows keep that. `report_plot` (given) draws it on a log scale, where a 2x slowdown and a 2x
# speed-up sit at the same distance from the line at 1.

# %% nbgrader={"grade": false, "grade_id": "report", "locked": false, "schema_version": 3, "solution": true, "task": false}
def compare(measurements: dict[str, Measurement], baseline: str, n_resamples: int = 2000, confidence: float = 0.95,
            rng: Any = 0) -> dict[str, Speedup]:
    """{name: speedup(measurements[baseline], measurement)} for every other name, in order, one Generator."""
    # YOUR CODE HERE
    raise NotImplementedError()


def report_table(measurements: dict[str, Measurement], baseline: str, n_resamples: int = 2000,
                 confidence: float = 0.95, rng: Any = 0) -> str:
    """A markdown table: name | median | IQR | speed-up vs baseline with its interval, one row per measurement."""
    # YOUR CODE HERE
    raise NotImplementedError()


def plot_data(speedups: dict[str, Speedup]) -> dict[str, Any]:
    """{"names": list, "ratio": (N,) array, "xerr": (2, N) array of ratio - low (row 0) and high - ratio (row 1)}."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %%
def report_plot(speedups: dict[str, Speedup], axes: Any, baseline: str = "baseline") -> Any:
    """Horizontal bars from 1 to each speed-up, with its interval, on a log scale, drawn on a matplotlib Axes."""
    data = plot_data(speedups)
    rows = np.arange(len(data["names"]))
    colors = ["tab:green" if r >= 1 else "tab:red" for r in data["ratio"]]
    axes.barh(rows, data["ratio"] - 1.0, left=1.0, xerr=data["xerr"], color=colors, capsize=4)
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xscale("log")
    axes.set_yticks(rows, data["names"])
    axes.set_xlabel(f"speed-up vs {baseline} (log scale); error bars: bootstrap interval")
    return axes


# %% [markdown]
# ## 6. The submission file
#
# A number without its context is not a result: 1.23 ms on which machine, with which numpy
# (which links which BLAS), how many runs? A **submission** is a JSON document that keeps the
# measurements together with that context, so that results from different people and
# machines can be collected and compared, and checked by a program before anyone trusts them.
#
# The program's check is a **JSON Schema**: a JSON document (here a Python dict,
# `SUBMISSION_SCHEMA` below, given) that says which keys a submission must have, of which
# types, within which bounds. Any language has a validator for it (Python's is the
# `jsonschema` package: `jsonschema.validate(document, SUBMISSION_SCHEMA)`); tinytorch does
# not need one, the checkpoint validates your document with it. Read the schema: it *is* the
# specification of `make_submission`.
#
# `environment()` describes the machine: `{"python": platform.python_version(), "numpy":
# np.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count()}`.
#
# `make_submission(name, measurements, metrics=None, baseline=None)` builds the document:
#
# - `schema_version`: `1`; `name`: the name given (not empty); `created`: the current time
#   in UTC, ISO 8601 (`datetime.now(timezone.utc).isoformat(timespec="seconds")`);
#   `environment`: `environment()`; `baseline`: the baseline's name or `None`;
# - `measurements`: for every name, `{"samples": [...], "median", "mean", "std", "iqr",
#   "min", "max"}`;
# - `speedups`: `{}` without a baseline, else `compare(measurements, baseline, n_resamples,
#   confidence, rng)` with each `Speedup` as `{"ratio", "low", "high", "confidence"}`;
# - `metrics`: other numbers worth keeping (an accuracy, a model size in bytes), `{}` if
#   none.
#
# **Plain types only.** `json` writes Python's `int`, `float`, `str`, `list`, `dict`, `None`
# and nothing else: a numpy array or an `np.float32` is a `TypeError` when you write the file.
# Convert with `float(...)` and `.tolist()`. And JSON has no NaN or infinity (Python's `json`
# would write the non-standard `NaN` unless told `allow_nan=False`): `make_submission`
# raises `ValueError` for a metric that is not finite, an empty name, no measurements or an
# unknown baseline.
#
# `write_submission(path, document)` writes the document with `json.dumps(document,
# indent=2, allow_nan=False)` and a final newline, creates the parent folders if needed, and
# returns the `Path`.

# %%
_SECONDS = {"type": "number", "minimum": 0}

SUBMISSION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "TinyTorch benchmark submission, version 1",
    "type": "object",
    "required": ["schema_version", "name", "created", "environment", "baseline", "measurements", "speedups",
                 "metrics"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": 1},
        "name": {"type": "string", "minLength": 1},
        "created": {"type": "string", "format": "date-time"},
        "environment": {
            "type": "object",
            "required": ["python", "numpy", "platform", "cpu_count"],
            "properties": {
                "python": {"type": "string", "minLength": 1},
                "numpy": {"type": "string", "minLength": 1},
                "platform": {"type": "string", "minLength": 1},
                "cpu_count": {"type": ["integer", "null"], "minimum": 1},
            },
        },
        "baseline": {"type": ["string", "null"]},
        "measurements": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"$ref": "#/$defs/measurement"},
        },
        "speedups": {"type": "object", "additionalProperties": {"$ref": "#/$defs/speedup"}},
        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
    },
    "$defs": {
        "measurement": {
            "type": "object",
            "required": ["samples", "median", "mean", "std", "iqr", "min", "max"],
            "additionalProperties": False,
            "properties": {
                "samples": {"type": "array", "minItems": 1, "items": _SECONDS},
                "median": _SECONDS, "mean": _SECONDS, "std": _SECONDS, "iqr": _SECONDS,
                "min": _SECONDS, "max": _SECONDS,
            },
        },
        "speedup": {
            "type": "object",
            "required": ["ratio", "low", "high", "confidence"],
            "additionalProperties": False,
            "properties": {
                "ratio": {"type": "number", "exclusiveMinimum": 0},
                "low": {"type": "number", "exclusiveMinimum": 0},
                "high": {"type": "number", "exclusiveMinimum": 0},
                "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            },
        },
    },
}


# %% nbgrader={"grade": false, "grade_id": "submission", "locked": false, "schema_version": 3, "solution": true, "task": false}
def environment() -> dict[str, Any]:
    """{"python", "numpy", "platform", "cpu_count"}: the machine and software the numbers were measured on."""
    # YOUR CODE HERE
    raise NotImplementedError()


def make_submission(name: str, measurements: dict[str, Measurement], metrics: dict[str, float] | None = None,
                    baseline: str | None = None, n_resamples: int = 2000, confidence: float = 0.95,
                    rng: Any = 0) -> dict[str, Any]:
    """The submission document (plain JSON types) that SUBMISSION_SCHEMA describes."""
    # YOUR CODE HERE
    raise NotImplementedError()


def write_submission(path: str | os.PathLike, document: dict[str, Any]) -> Path:
    """Write the document as strict JSON (indent=2, no NaN, final newline), making folders; the Path."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: three ways to sum the squares
#
# A Python loop, a generator expression and numpy, on 100,000 numbers, the loop as the
# baseline. (Why `np.sum(values * values)` and not `values @ values`? On a busy machine a
# multi-threaded BLAS can wait for cores other programs hold, and take milliseconds for what
# one thread does in microseconds: time both and see.) The table says how much faster each
# is, with an interval; the plot shows it; the submission is written and validated
# (`jsonschema` comes with the course's tools, not with tinytorch).

# %%
if __name__ == "__main__":
    values = np.random.default_rng(0).standard_normal(100_000)
    as_list = values.tolist()

    def python_loop() -> float:
        total = 0.0
        for v in as_list:
            total += v * v
        return total

    results = {
        "python loop": measure(python_loop, repeats=15),
        "generator": measure(lambda: sum(v * v for v in as_list), repeats=15),
        "numpy": measure(lambda: float(np.sum(values * values)), repeats=15),
    }
    for key, result in results.items():
        print(f"{key:12s} {result}")
    print()
    print(report_table(results, baseline="python loop"))

    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    figure = Figure(figsize=(7, 2.5), layout="constrained")
    report_plot(compare(results, "python loop"), figure.add_subplot(), baseline="python loop")
    figure.savefig("benchmark_report.png", dpi=120)

    import jsonschema
    document = make_submission("sum of squares", results, metrics={"n": 100_000}, baseline="python loop")
    jsonschema.validate(document, SUBMISSION_SCHEMA)
    print("wrote", write_submission("benchmark_submission.json", document), "and benchmark_report.png")

# %% [markdown]
# ## Systems insight: the noise floor, and what more runs buy
#
# Compare a function **with itself** (an "A/A test"): the true speed-up is exactly 1, and the
# interval you get shows how big a difference your setup can see at all. Anything inside it
# is noise. The cell times the same numpy sort as two "versions", with 10 and with 40 runs
# each. Two things to see:
#
# - The A/A interval contains 1 (most of the time: it is a 95% interval), and its width is
#   your **noise floor**: with 10 runs on a busy laptop a few percent, so an "optimisation"
#   that gains 2% cannot be told apart from nothing.
# - Four times as many runs make the interval about **half** as wide: the uncertainty of a
#   median, like that of a mean, shrinks like `1 / sqrt(n)`. Halving it again costs four times
#   more runs again. That is why a benchmark says how many runs it took, and why the
#   submission keeps every sample.
#
# Look also at `mean` against `median` and at `max` against `min` in the printed
# measurements: on a shared machine the mean sits above the median (noise only ever adds
# time) and a single slow run can be several times the median.

# %%
if __name__ == "__main__":
    data = np.random.default_rng(1).standard_normal(20_000)
    for runs in (10, 40):
        first = measure(lambda: np.sort(data), repeats=runs)
        second = measure(lambda: np.sort(data), repeats=runs)
        same = speedup(first, second, rng=0)
        print(f"{runs} runs each: A/A speed-up {same}, interval width {same.high - same.low:.3f}, "
              f"significant: {same.significant}; mean/median {first.mean / first.median:.3f}, "
              f"max/min {first.max / first.min:.2f}")

# %% [markdown]
# ## Checkpoint
#
# `tito check 19` runs `tests/checkpoints/test_19_benchmarking.py`. It checks `summarize`
# against `torch.quantile` (linear percentiles), `torch.mean` and `torch.std` (unbiased) in
# float64 on known samples (even and odd counts, `[1, 2, 3, 4]` by hand) and on samples drawn
# by Hypothesis, and that it rejects empty and NaN samples; `measure` with a fake clock
# whose durations are known (warm-up excluded, every argument passed on to the `Timer`);
# `percentile_interval` against `torch.quantile`; `bootstrap_ci` and `speedup` against a
# PyTorch computation on the same resample rows (the same seed must give the same interval),
# the direction of the ratio, the coverage of the interval over many simulated experiments
# and its `1 / sqrt(n)` narrowing; `compare` and `report_table` on a fixed set of timings;
# `plot_data`; and `make_submission`, validated with `jsonschema` against
# `SUBMISSION_SCHEMA`, with its numbers, its environment and its errors, written by
# `write_submission` and read back as the same document.
