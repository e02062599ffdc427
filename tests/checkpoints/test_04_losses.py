"""Checkpoint 04: Losses.

Every loss is compared with PyTorch in float64 for each reduction, on shapes and values drawn
by Hypothesis (logits up to +-1e4 included); then the facts the lesson teaches: cross-entropy
of uniform logits is ln C and stays finite at huge logits, bad labels and mismatched shapes
are refused, BCE is finite at p = 0 and 1, entropy of uniform and one-hot distributions,
KL(p, p) = 0, KL >= 0, KL's asymmetry, and dtypes.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import show, torch64, values
from tinytorch.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MSELoss,
    entropy,
    kl_divergence,
)
from tinytorch.tensor import Tensor

RTOL, ATOL = 1e-10, 1e-12  # float64 in, float64 out: only rounding differences are allowed
# Around logits of 1e4 one rounding step of float64 is about 2e-12, and a loss can be the
# small difference of two such numbers.
EXTREME_RTOL, EXTREME_ATOL = 1e-9, 1e-9

# The oracle works on tiny tensors, where torch's thread pool costs far more than it saves
# (tens of milliseconds per call on a busy two-core machine).
torch.set_num_threads(1)

REDUCTIONS = ("mean", "sum", "none")
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)


# -- predicates, judged on the trusted side over the values your code produced ------------------

def all_finite(values) -> bool:
    return bool(np.all(np.isfinite(values)))


def mentions_all(message, *parts) -> bool:
    return all(part in message for part in parts)


def mentions_number(message, number) -> bool:
    """`number` appears in `message` as a number of its own (4, not only inside 14 or 0.4)."""
    return re.search(rf"(?<![\w.]){number}(?![\w]|\.\d)", message) is not None


def at_least_pinsker(kl, p, q) -> bool:
    """KL(p || q) >= 1/2 (sum |p - q|)^2 in every row (Pinsker's inequality), so KL >= 0 and 0 only if q = p."""
    bound = 0.5 * np.abs(p - q).sum(axis=-1) ** 2
    return np.shape(kl) == bound.shape and bool(np.all(kl >= bound - 1e-12))


shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
# logits: ordinary values, plus the extreme ones a confident network produces
logit_values = st.one_of(values(-30.0, 30.0), st.sampled_from([1e4, -1e4, 1e3, -1e3, 100.0, -100.0, 0.0]))


@st.composite
def prediction_target_pairs(draw, prediction_values, target_values):
    shape = draw(shapes)
    prediction = draw(hnp.arrays(np.float64, shape, elements=prediction_values))
    target = draw(hnp.arrays(np.float64, shape, elements=target_values))
    return prediction, target


@st.composite
def logits_and_labels(draw):
    n = draw(st.integers(1, 5))
    classes = draw(st.integers(2, 6))
    logits = draw(hnp.arrays(np.float64, (n, classes), elements=logit_values))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1)))
    return logits, labels


def _normalised(w: np.ndarray) -> np.ndarray:
    w = w.copy()
    w[w.sum(axis=-1) == 0, 0] = 1.0  # a distribution needs some mass
    return w / w.sum(axis=-1, keepdims=True)


distribution_shapes = st.tuples(st.integers(1, 4), st.integers(1, 6))
# p may have exact zeros (0 log 0 = 0 must hold); q is positive wherever it is drawn
with_zeros = st.one_of(st.just(0.0), values(0.01, 10.0))


@st.composite
def distributions(draw):
    """Rows of probabilities (last axis sums to 1), possibly with exact zeros."""
    shape = draw(distribution_shapes)
    return _normalised(draw(hnp.arrays(np.float64, shape, elements=with_zeros)))


@st.composite
def distribution_pairs(draw):
    """p (zeros allowed) and q (all positive) of the same shape."""
    shape = draw(distribution_shapes)
    p = _normalised(draw(hnp.arrays(np.float64, shape, elements=with_zeros)))
    q = _normalised(draw(hnp.arrays(np.float64, shape, elements=values(0.01, 10.0))))
    return p, q


# -- MSE -------------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(prediction_target_pairs(values(-1e3, 1e3), values(-1e3, 1e3)))
def test_mse_matches_torch(reduction, pair):
    """MSELoss equals torch.nn.MSELoss for each reduction"""
    prediction, target = pair
    got = MSELoss(reduction=reduction)(Tensor(prediction), Tensor(target))
    expected = torch.nn.MSELoss(reduction=reduction)(torch64(prediction), torch64(target))
    expect_close(got, expected, rtol=RTOL, atol=ATOL,
                 call=f"MSELoss(reduction={reduction!r})(Tensor({show(prediction)}), Tensor({show(target)}))",
                 hint="square the differences, then reduce: mean -> a 0-d tensor, sum -> a 0-d tensor, "
                      "none -> the squared differences in the input's shape")


def test_mse_refuses_mismatched_shapes():
    """MSELoss refuses (4, 1) against (4,) with a ValueError naming both shapes; (4,) against (4,) is fine"""
    prediction, target = Tensor(np.array([[2.5], [0.0], [2.0], [8.0]])), Tensor(np.array([3.0, -0.5, 2.0, 7.0]))
    call = "MSELoss()(Tensor(shape (4, 1)), Tensor(shape (4,)))"
    error = expect_raises(ValueError, lambda: MSELoss()(prediction, target), call=call,
                          message_contains="(4, 1)",
                          hint="broadcasting (4, 1) against (4,) silently compares every prediction with "
                               "every target; check the shapes first and name both in the message")
    expect_that(str(error), mentions_all, "(4,)", call=call, expected="a message that also names (4,)",
                hint="name both shapes, e.g. f'{prediction.shape} and {target.shape}'")
    expect_close(MSELoss()(prediction.reshape(-1), target), np.float64(0.375), rtol=RTOL, atol=ATOL,
                 call="MSELoss()(Tensor([2.5, 0.0, 2.0, 8.0]), Tensor([3.0, -0.5, 2.0, 7.0]))",
                 hint="(0.25 + 0.25 + 0 + 1) / 4: with the prediction reshaped to (4,) the shapes match")


@pytest.mark.parametrize("name", ["BCELoss", "BCEWithLogitsLoss"])
def test_binary_losses_refuse_mismatched_shapes(name):
    """BCELoss and BCEWithLogitsLoss refuse (4, 1) against (4,) with a ValueError, and accept (4,) against (4,)"""
    loss = {"BCELoss": BCELoss, "BCEWithLogitsLoss": BCEWithLogitsLoss}[name]()
    prediction, target = Tensor(np.array([[0.25], [0.5], [0.75], [0.5]])), Tensor(np.array([0.0, 1.0, 1.0, 0.0]))
    expect_raises(ValueError, lambda: loss(prediction, target), call=f"{name}()(Tensor(shape (4, 1)), Tensor(shape (4,)))",
                  hint="broadcasting (4, 1) against (4,) would pair every prediction with every label; "
                       "check that the shapes are equal first")
    expect_close(loss(prediction.reshape(-1), target),
                 getattr(torch.nn, name)()(torch64([0.25, 0.5, 0.75, 0.5]), torch64([0.0, 1.0, 1.0, 0.0])),
                 rtol=RTOL, atol=ATOL, call=f"{name}()(Tensor([0.25, 0.5, 0.75, 0.5]), Tensor([0., 1., 1., 0.]))",
                 hint="with the prediction reshaped to (4,) the shapes match and the loss is the usual mean")


# -- cross-entropy -------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(logits_and_labels())
def test_cross_entropy_matches_torch(reduction, case):
    """CrossEntropyLoss equals torch.nn.CrossEntropyLoss, including logits of +-1e4"""
    logits, labels = case
    got = CrossEntropyLoss(reduction=reduction)(Tensor(logits), Tensor(labels))
    expected = torch.nn.CrossEntropyLoss(reduction=reduction)(torch64(logits), torch.tensor(labels))
    expect_close(got, expected, rtol=EXTREME_RTOL, atol=EXTREME_ATOL,
                 call=f"CrossEntropyLoss(reduction={reduction!r})(Tensor({show(logits)}), Tensor({show(labels)}))",
                 hint="loss = log(sum(exp(x))) - x[true class] per row, with the row's max subtracted "
                      "before exp (log-sum-exp) so nothing overflows; never take log(softmax)")


@pytest.mark.parametrize("classes", [2, 10, 1000])
def test_cross_entropy_of_uniform_logits_is_log_C(classes):
    """Cross-entropy of equal logits is ln(C): the loss a fresh network should start near"""
    for value in (0.0, 7.5):
        logits = np.full((3, classes), value)
        labels = np.array([0, classes // 2, classes - 1])
        got = CrossEntropyLoss()(Tensor(logits), Tensor(labels))
        expect_close(got, np.float64(math.log(classes)), rtol=RTOL, atol=ATOL,
                     call=f"CrossEntropyLoss()(Tensor(np.full((3, {classes}), {value})), Tensor({show(labels)}))",
                     hint="equal logits give every class probability 1/C, so -log p = ln C; "
                          "the mean reduction returns a 0-d tensor")


def test_cross_entropy_is_finite_at_huge_float32_logits():
    """Cross-entropy stays finite and exact in float32 at logits of 1e4, far past exp's overflow at 88.7"""
    logits = np.array([[1e4, 0.0, -1e4], [100.0, 90.0, 0.0]], dtype=np.float32)
    labels = np.array([2, 0])
    got = CrossEntropyLoss(reduction="none")(Tensor(logits), Tensor(labels))
    expected = np.array([2e4, math.log1p(math.exp(-10.0))])
    call = f"CrossEntropyLoss(reduction='none')(Tensor({show(logits)}, dtype=float32), Tensor({show(labels)}))"
    expect_that(got, all_finite, call=call, expected="finite losses",
                hint="exp(89) is inf in float32: subtract each row's max from its logits before exp")
    expect_close(got, expected, rtol=1e-6, atol=1e-5, call=call,
                 hint="with the max subtracted, the loss is log(sum(exp(x - max))) - (x[label] - max)")


@pytest.mark.parametrize("bad", [7, 4, -1])
def test_cross_entropy_refuses_labels_out_of_range(bad):
    """A label outside 0..C-1 (C itself and -1 included) raises a ValueError naming the label and C; C-1 is fine"""
    logits, labels = Tensor(np.zeros((3, 4))), Tensor(np.array([1, bad, 0]))
    call = f"CrossEntropyLoss()(Tensor(np.zeros((3, 4))), Tensor([1, {bad}, 0]))"
    error = expect_raises(ValueError, lambda: CrossEntropyLoss()(logits, labels), call=call,
                          message_contains=str(bad),
                          hint="check every label is in 0 .. C-1 before indexing (labels run from 0, so C itself "
                               "is out of range, and numpy would read -1 as the last class), and name the bad one")
    expect_that(str(error), mentions_number, 4, call=call, expected="a message that also names C = 4",
                hint="say how many classes there are, so the reader sees why the label is out of range")
    expect_close(CrossEntropyLoss()(logits, Tensor(np.array([1, 3, 0]))), np.float64(math.log(4)), rtol=RTOL, atol=ATOL,
                 call="CrossEntropyLoss()(Tensor(np.zeros((3, 4))), Tensor([1, 3, 0]))",
                 hint="3 = C - 1 is the last valid class; equal logits give ln C")


def test_cross_entropy_refuses_target_of_wrong_shape():
    """CrossEntropyLoss wants logits (N, C) and targets (N,): a ValueError names a target of shape (3, 1)"""
    logits = Tensor(np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 9.0], [2.0, 1.0, 0.0, -1.0]]))
    column = Tensor(np.array([[3], [3], [0]]))
    expect_raises(ValueError, lambda: CrossEntropyLoss()(logits, column),
                  call="CrossEntropyLoss()(logits of shape (3, 4), target of shape (3, 1))", message_contains="(3, 1)",
                  hint="a (3, 1) target would index a (3, 3) block of losses; check target.shape == (N,) and "
                       "name the shape you got")
    expect_raises(ValueError, lambda: CrossEntropyLoss()(Tensor(np.zeros(4)), Tensor(np.array([1]))),
                  call="CrossEntropyLoss()(logits of shape (4,), target of shape (1,))",
                  hint="logits must have two axes, (N, C): a batch of rows of class scores")
    expect_close(CrossEntropyLoss(reduction="none")(logits, Tensor(np.array([3, 3, 0]))),
                 torch.nn.CrossEntropyLoss(reduction="none")(
                     torch64([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 9.0], [2.0, 1.0, 0.0, -1.0]]), torch.tensor([3, 3, 0])),
                 rtol=RTOL, atol=ATOL, call="CrossEntropyLoss(reduction='none')(logits of shape (3, 4), Tensor([3, 3, 0]))",
                 hint="with a target of shape (N,), one loss per row")


# -- binary cross-entropy ------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(prediction_target_pairs(values(0.0, 1.0), values(0.0, 1.0)))
def test_bce_matches_torch(reduction, pair):
    """BCELoss equals torch.nn.BCELoss for each reduction, probabilities 0 and 1 included"""
    probability, target = pair
    got = BCELoss(reduction=reduction)(Tensor(probability), Tensor(target))
    expected = torch.nn.BCELoss(reduction=reduction)(torch64(probability), torch64(target))
    expect_close(got, expected, rtol=RTOL, atol=ATOL,
                 call=f"BCELoss(reduction={reduction!r})(Tensor({show(probability)}), Tensor({show(target)}))",
                 hint="-(y log p + (1 - y) log(1 - p)) with each log clamped at -100")


def test_bce_is_finite_and_clamped_at_0_and_1():
    """BCELoss at p = 0 and p = 1 is finite and equals torch's clamped value (100 for a wrong certainty)"""
    probability = np.array([0.0, 1.0, 0.0, 1.0])
    target = np.array([1.0, 0.0, 0.0, 1.0])
    got = BCELoss(reduction="none")(Tensor(probability), Tensor(target))
    expected = torch.nn.BCELoss(reduction="none")(torch64(probability), torch64(target))
    call = f"BCELoss(reduction='none')(Tensor({show(probability)}), Tensor({show(target)}))"
    expect_that(got, all_finite, call=call, expected="finite losses",
                hint="log(0) is -inf, and 0 * -inf is nan: clamp each log term at -100 before multiplying")
    expect_close(got, expected, rtol=RTOL, atol=ATOL, call=call,
                 hint="a certain, wrong answer costs exactly 100; a certain, right one costs 0")


@pytest.mark.parametrize("bad", [2.0, -0.5])
def test_bce_refuses_values_outside_0_1(bad):
    """BCELoss raises a ValueError for a 'probability' outside [0, 1] (logits passed by mistake); 0 and 1 are fine"""
    expect_raises(ValueError, lambda: BCELoss()(Tensor(np.array([0.5, bad])), Tensor(np.array([1.0, 0.0]))),
                  call=f"BCELoss()(Tensor([0.5, {bad}]), Tensor([1.0, 0.0]))",
                  hint="BCELoss takes probabilities; check 0 <= p <= 1 and point to BCEWithLogitsLoss for logits")
    expect_close(BCELoss()(Tensor(np.array([0.5, 1.0, 0.0])), Tensor(np.array([1.0, 1.0, 0.0]))),
                 np.float64(math.log(2) / 3), rtol=RTOL, atol=ATOL,
                 call="BCELoss()(Tensor([0.5, 1.0, 0.0]), Tensor([1.0, 1.0, 0.0]))",
                 hint="0 and 1 are probabilities too (certain and right costs 0); the mean of ln 2, 0, 0")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(prediction_target_pairs(logit_values, values(0.0, 1.0)))
def test_bce_with_logits_matches_torch(reduction, pair):
    """BCEWithLogitsLoss equals torch.nn.BCEWithLogitsLoss, including logits of +-1e4"""
    logits, target = pair
    got = BCEWithLogitsLoss(reduction=reduction)(Tensor(logits), Tensor(target))
    expected = torch.nn.BCEWithLogitsLoss(reduction=reduction)(torch64(logits), torch64(target))
    expect_close(got, expected, rtol=EXTREME_RTOL, atol=EXTREME_ATOL,
                 call=f"BCEWithLogitsLoss(reduction={reduction!r})(Tensor({show(logits)}), Tensor({show(target)}))",
                 hint="max(x, 0) - x*y + log(1 + exp(-|x|)): the exponent is never positive, so nothing overflows")


def test_bce_with_logits_is_exact_at_extreme_float32_logits():
    """BCEWithLogitsLoss gives the true loss at logits of +-1e4 in float32, where sigmoid is exactly 0 or 1"""
    logits = np.array([1e4, -1e4, 1e4, -1e4, 30.0], dtype=np.float32)
    target = np.array([0.0, 1.0, 1.0, 0.0, 0.0], dtype=np.float32)
    got = BCEWithLogitsLoss(reduction="none")(Tensor(logits), Tensor(target))
    call = f"BCEWithLogitsLoss(reduction='none')(Tensor({show(logits)}, dtype=float32), Tensor({show(target)}))"
    expect_close(got, np.array([1e4, 1e4, 0.0, 0.0, 30.0]), rtol=1e-6, atol=1e-6, call=call,
                 hint="a confident wrong logit x costs |x| (not the clamp value 100), a confident right one 0; "
                      "use max(x, 0) - x*y + log(1 + exp(-|x|))")


# -- entropy and KL ------------------------------------------------------------------------

@pytest.mark.parametrize("classes", [1, 2, 10, 1000])
def test_entropy_of_uniform_is_log_C(classes):
    """The entropy of the uniform distribution over C outcomes is ln(C), along any axis"""
    p = np.full((2, classes), 1.0 / classes)
    expect_close(entropy(Tensor(p)), np.full(2, math.log(classes)), rtol=RTOL, atol=ATOL,
                 call=f"entropy(Tensor(np.full((2, {classes}), 1/{classes})))",
                 hint="-sum p log p along the last axis: C terms of -(1/C) log(1/C)")
    expect_close(entropy(Tensor(p.T), axis=0), np.full(2, math.log(classes)), rtol=RTOL, atol=ATOL,
                 call=f"entropy(Tensor(np.full(({classes}, 2), 1/{classes})), axis=0)",
                 hint="sum along the axis you were given")


def test_entropy_of_one_hot_is_zero():
    """A one-hot distribution has entropy exactly 0 (0 log 0 counts as 0, not nan)"""
    p = np.eye(4)[[0, 3, 1]]
    got = entropy(Tensor(p))
    expect_close(got, np.zeros(3), rtol=0, atol=1e-15, call=f"entropy(Tensor({show(p)}))",
                 hint="0 * log(0) is 0 * -inf = nan in floating point; treat terms with p = 0 as 0")


@given(distributions(), st.sampled_from([-1, 1, 0, -2]))
def test_entropy_matches_torch(p, axis):
    """entropy equals torch's sum of entr(p) along the chosen axis, zeros included"""
    got = entropy(Tensor(p), axis=axis)
    expected = torch.special.entr(torch64(p)).sum(axis)
    expect_close(got, expected, rtol=RTOL, atol=ATOL, call=f"entropy(Tensor({show(p)}), axis={axis})",
                 hint="-sum p log p along `axis`, with 0 log 0 = 0; the result drops that axis")


@given(distributions())
def test_kl_of_p_with_itself_is_zero(p):
    """KL(p || p) is 0 for every distribution p, also one with zeros"""
    got = kl_divergence(Tensor(p), Tensor(p))
    expect_close(got, np.zeros(p.shape[0]), rtol=0, atol=1e-12, call=f"kl_divergence(p, p) with p = {show(p)}",
                 hint="sum p (log p - log q): each term vanishes when q = p; entries with p = 0 count as 0, not nan")


@given(distribution_pairs())
def test_kl_is_never_negative(pair):
    """KL(p || q) >= 0 for any two distributions"""
    p, q = pair
    got = kl_divergence(Tensor(p), Tensor(q))
    expect_equal(got.shape, (p.shape[0],), call=f"kl_divergence(p, q).shape with p.shape = {p.shape}",
                 hint="KL sums over the last axis, one number per distribution")
    expect_that(got, at_least_pinsker, p, q, call=f"kl_divergence({show(p)}, {show(q)})",
                expected="values >= 0, indeed >= 1/2 (sum |p - q|)^2 in every row (Pinsker's inequality)",
                hint="KL(p || q) = sum p log(p / q); check the order of p and q and the sign")


def test_kl_is_asymmetric():
    """KL((0.5, 0.5) || (0.9, 0.1)) = ln(5/3) = 0.511 but KL((0.9, 0.1) || (0.5, 0.5)) = 0.368"""
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    pq, qp = kl_divergence(Tensor(p), Tensor(q)), kl_divergence(Tensor(q), Tensor(p))
    expect_close(pq, np.float64(math.log(5 / 3)), rtol=RTOL, atol=ATOL,
                 call="kl_divergence(Tensor([0.5, 0.5]), Tensor([0.9, 0.1]))",
                 hint="0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1) = ln(5/3); the first argument weights the terms")
    expect_close(qp, np.float64(0.9 * math.log(1.8) + 0.1 * math.log(0.2)), rtol=RTOL, atol=ATOL,
                 call="kl_divergence(Tensor([0.9, 0.1]), Tensor([0.5, 0.5]))",
                 hint="0.9 ln(0.9/0.5) + 0.1 ln(0.1/0.5): swapping p and q changes the answer")


def test_kl_is_infinite_where_only_q_is_zero():
    """KL ignores outcomes with p = 0 (even where q = 0 too) and is infinite where q = 0 but p > 0"""
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.75, 0.0])
    expect_close(kl_divergence(Tensor(p), Tensor(q)), np.float64(0.5 * math.log(2) + 0.5 * math.log(2 / 3)),
                 rtol=RTOL, atol=ATOL, call="kl_divergence(Tensor([0.5, 0.5, 0.0]), Tensor([0.25, 0.75, 0.0]))",
                 hint="a term with p = 0 is 0 whatever q is; 0 * log(0 / 0) must not become nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        infinite = kl_divergence(Tensor(np.array([0.5, 0.5])), Tensor(np.array([1.0, 0.0])))
    expect_close(infinite, np.float64(np.inf), call="kl_divergence(Tensor([0.5, 0.5]), Tensor([1.0, 0.0]))",
                 hint="q gives probability 0 to an outcome p says happens: the divergence is infinite, "
                      "so do not clamp q or add a small epsilon to it")


@given(distribution_pairs())
def test_kl_matches_torch(pair):
    """kl_divergence(p, q) equals torch's kl_div(q.log(), p, reduction='none').sum(-1), also along axis=0"""
    p, q = pair
    got = kl_divergence(Tensor(p), Tensor(q))
    expected = torch.nn.functional.kl_div(torch64(q).log(), torch64(p), reduction="none").sum(-1)
    expect_close(got, expected, rtol=RTOL, atol=ATOL, call=f"kl_divergence(Tensor({show(p)}), Tensor({show(q)}))",
                 hint="sum over the last axis of p (log p - log q), with terms where p = 0 counted as 0")
    expect_close(kl_divergence(Tensor(p.T), Tensor(q.T), axis=0), expected, rtol=RTOL, atol=ATOL,
                 call=f"kl_divergence(Tensor({show(p.T)}), Tensor({show(q.T)}), axis=0)",
                 hint="sum along the axis you were given: axis=0 reduces the columns")


# -- what comes back -----------------------------------------------------------------------

OTHER = {np.float32: np.float64, np.float64: np.float32}


def _float_cases(dtype):
    """name -> (computation, shape of its result), inputs in `dtype` (targets sometimes in the other float dtype)."""
    def t(values):
        return Tensor(np.array(values, dtype=dtype))
    other = OTHER[dtype]
    labels = Tensor(np.array([2, 0]))
    return {
        "MSELoss()": (lambda: MSELoss()(t([1.0, 2.0]), t([0.5, 3.0])), ()),
        "MSELoss(reduction='sum')": (lambda: MSELoss(reduction="sum")(t([1.0, 2.0]), t([0.5, 3.0])), ()),
        f"MSELoss() with a {np.dtype(other).name} numpy target": (
            lambda: MSELoss()(t([1.0, 2.0]), np.array([0.5, 3.0], dtype=other)), ()),
        "CrossEntropyLoss()": (lambda: CrossEntropyLoss()(t([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]]), labels), ()),
        "CrossEntropyLoss(reduction='none')": (
            lambda: CrossEntropyLoss(reduction="none")(t([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]]), labels), (2,)),
        "BCELoss()": (lambda: BCELoss()(t([0.2, 0.9]), t([0.0, 1.0])), ()),
        f"BCELoss() with a {np.dtype(other).name} numpy target": (
            lambda: BCELoss()(t([0.2, 0.9]), np.array([0.0, 1.0], dtype=other)), ()),
        "BCEWithLogitsLoss()": (lambda: BCEWithLogitsLoss()(t([-1.0, 3.0]), t([0.0, 1.0])), ()),
        f"BCEWithLogitsLoss() with a {np.dtype(other).name} numpy target": (
            lambda: BCEWithLogitsLoss()(t([-1.0, 3.0]), np.array([0.0, 1.0], dtype=other)), ()),
        "entropy": (lambda: entropy(t([[0.2, 0.8], [1.0, 0.0]])), (2,)),
        "kl_divergence": (lambda: kl_divergence(t([[0.2, 0.8]]), t([[0.5, 0.5]])), (1,)),
    }


def _float_case_value(name):
    """The exact (float64) value of each case of _float_cases, by its formula."""
    def lse(row):
        return math.log(sum(math.exp(v) for v in row))
    softplus_1, softplus_3 = math.log1p(math.exp(-1.0)), math.log1p(math.exp(-3.0))
    values = {
        "MSELoss": 0.625, "MSELoss(reduction='sum')": 1.25,
        "CrossEntropyLoss()": (lse([1, 2, 3]) - 3 + lse([0, 0, 5])) / 2,
        "CrossEntropyLoss(reduction='none')": [lse([1, 2, 3]) - 3, lse([0, 0, 5])],
        "BCELoss": -(math.log(0.8) + math.log(0.9)) / 2,
        "BCEWithLogitsLoss": (softplus_1 + softplus_3) / 2,
        "entropy": [-(0.2 * math.log(0.2) + 0.8 * math.log(0.8)), 0.0],
        "kl_divergence": [0.2 * math.log(0.4) + 0.8 * math.log(1.6)],
    }
    key = name if name in values else name.split("(")[0]
    return np.array(values[key], dtype=np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_results_are_tensors_in_the_input_dtype(dtype):
    """Every loss returns a Tensor in the prediction's float dtype, 0-d for mean and sum, with the right value"""
    tolerance = 1e-5 if dtype is np.float32 else 1e-10
    for name, (compute, shape) in _float_cases(dtype).items():
        got = compute()
        call = f"{name} on {np.dtype(dtype).name} inputs"
        expect_equal(isinstance(got, Tensor), True, call=f"isinstance({call}, Tensor)",
                     hint="wrap the result in a Tensor (Tensor operations already return one)")
        expect_equal(got.dtype, np.dtype(dtype), call=call + " .dtype",
                     hint="the prediction decides the dtype: start forward with _as_tensor(target, like=prediction); "
                          "Python numbers in Tensor arithmetic take the tensor's dtype too")
        expect_equal(got.shape, shape, call=call + " .shape",
                     hint="mean and sum reduce to a 0-d tensor; 'none' and entropy/KL keep one value per row")
        expect_close(got, _float_case_value(name), rtol=tolerance, atol=tolerance, call=call,
                     hint="the same formula in either dtype")
