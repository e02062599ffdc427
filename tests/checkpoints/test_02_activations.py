"""Checkpoint 02: Activations.

Every activation is compared with PyTorch in float64 on arrays drawn by Hypothesis, extreme
values (+-1000, 1e-8) included; softmax and log-softmax are checked over every axis of 3-D
inputs, for overflow (softmax(x + 1000), logits of 1e4), and with temperature.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_that
from tests.checkpoints.common import values
from tinytorch.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.tensor import Tensor

RTOL, ATOL = 1e-10, 1e-12  # float64 in, float64 out: only rounding differences are allowed

EXTREMES = [-1000.0, 1000.0, -50.0, 50.0, -1e-8, 1e-8, 0.0]
EXTREME_ROW = np.array(EXTREMES)

# Ordinary values, with the extremes mixed in often.
ordinary_and_extreme = st.one_of(values(-30.0, 30.0), st.sampled_from(EXTREMES))


def arrays(min_dims: int = 1, max_dims: int = 3, elements=ordinary_and_extreme):
    return hnp.arrays(np.float64, hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, max_side=5),
                      elements=elements)


def tensor_repr(x: np.ndarray) -> str:
    """A short one-line picture of an input for the `call` of a failure."""
    text = " ".join(np.array2string(x, precision=4, threshold=12, separator=", ").split())
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"Tensor({text}, dtype={x.dtype})"


def oracle(function, x: np.ndarray, *args, **kwargs) -> np.ndarray:
    """PyTorch's answer in float64."""
    return function(torch.tensor(np.asarray(x, dtype=np.float64)), *args, **kwargs).numpy()


def float_rtol(logits: np.ndarray) -> float:
    """The relative error that rounding allows a correct softmax of `logits` in their dtype.

    Every correct formulation rounds one logit-sized number: the shifted logits `x - max`, or
    the log-sum-exp in `exp(x - logsumexp(x))`. A number of size M is rounded by up to half a
    unit in its last place, about M * eps / 2, and exp turns that absolute error into a
    relative one. A few more roundings (the exp, the sum, the division) add a few eps. So:
    eps * (max |x| + 8), e.g. 1.2e-4 for float32 logits near 1000, 2e-13 in float64; never
    below RTOL, the float64 tolerance of the other checks.
    """
    eps = float(np.finfo(logits.dtype).eps)
    return max(RTOL, eps * (float(np.max(np.abs(logits))) + 8))


# -- predicates: judged on the grader's side over the values your code produced ----------------

def all_finite(values) -> bool:
    return bool(np.all(np.isfinite(np.asarray(values, dtype=np.float64))))


def probabilities_along(values, dim: int) -> bool:
    """Non-negative, and summing to 1 along `dim` up to float64 rounding."""
    values = np.asarray(values, dtype=np.float64)
    return bool(np.all(values >= 0)) and bool(np.allclose(values.sum(axis=dim), 1.0, rtol=0, atol=1e-12))


def symmetric_sigmoid(pair) -> bool:
    """sigmoid(-x) = 1 - sigmoid(x), up to float64 rounding of 1 - s (absolute, about 1e-16)."""
    of_minus_x, of_x = (np.asarray(v, dtype=np.float64) for v in pair)
    return of_minus_x.shape == of_x.shape and bool(np.allclose(of_minus_x, 1.0 - of_x, rtol=1e-9, atol=ATOL))


# -- ReLU ------------------------------------------------------------------------------------

@given(arrays())
@example(EXTREME_ROW)
def test_relu_matches_torch(x):
    """ReLU matches torch.relu"""
    expect_close(ReLU()(Tensor(x)), oracle(torch.relu, x), rtol=RTOL, atol=ATOL,
                 call=f"ReLU()({tensor_repr(x)})", hint="relu(x) = max(x, 0), elementwise: np.maximum(x.data, 0)")


def test_relu_zeroes_negatives():
    """ReLU zeroes negatives and keeps positives"""
    x = np.array([[-2.0, -1e-8, 0.0], [1e-8, 3.0, 1000.0]])
    expect_close(ReLU()(Tensor(x)), np.array([[0.0, 0.0, 0.0], [1e-8, 3.0, 1000.0]]), rtol=0, atol=0,
                 call=f"ReLU()({tensor_repr(x)})", hint="negatives become 0, everything else passes unchanged")


# -- Sigmoid ---------------------------------------------------------------------------------

@given(arrays())
@example(EXTREME_ROW)
def test_sigmoid_matches_torch(x):
    """Sigmoid matches torch.sigmoid, also at +-1000"""
    expect_close(Sigmoid()(Tensor(x)), oracle(torch.sigmoid, x), rtol=RTOL, atol=ATOL,
                 call=f"Sigmoid()({tensor_repr(x)})",
                 hint="1 / (1 + exp(-x)) for x >= 0 and exp(x) / (1 + exp(x)) for x < 0")


def test_sigmoid_of_zero_is_half():
    """Sigmoid of 0 is exactly 0.5"""
    x = np.zeros((2, 3))
    expect_close(Sigmoid()(Tensor(x)), np.full((2, 3), 0.5), rtol=0, atol=0,
                 call=f"Sigmoid()({tensor_repr(x)})", hint="1 / (1 + exp(0)) = 1 / 2")


@given(arrays(elements=values(-30.0, 30.0)))
def test_sigmoid_is_symmetric(x):
    """Sigmoid is symmetric: sigmoid(-x) = 1 - sigmoid(x)"""
    # both values are yours: the relation between them is judged, not a value of the reference
    expect_that((Sigmoid()(Tensor(-x)), Sigmoid()(Tensor(x))), symmetric_sigmoid,
                call=f"(Sigmoid()(-x), Sigmoid()(x)) for x = {tensor_repr(x)}",
                expected="sigmoid(-x) = 1 - sigmoid(x) within rtol 1e-9, atol 1e-12",
                hint="the two branches of the stable formula must agree: exp(x)/(1+exp(x)) = 1 - 1/(1+exp(x))")
    expect_close(Sigmoid()(Tensor(x)), oracle(torch.sigmoid, x), rtol=RTOL, atol=ATOL,
                 call=f"Sigmoid()({tensor_repr(x)})", hint="and each value is the sigmoid itself")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_sigmoid_never_overflows(dtype):
    """Sigmoid of +-1000 gives 0 and 1 without any overflow warning"""
    x = np.array([-1000.0, -100.0, -89.0, -1.0, 0.0, 1.0, 89.0, 100.0, 1000.0], dtype=dtype)
    call = f"Sigmoid()({tensor_repr(x)})"
    with warnings.catch_warnings(record=True) as caught, np.errstate(over="warn", invalid="warn", divide="warn"):
        warnings.simplefilter("always")
        got = Sigmoid()(Tensor(x))
    numeric = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    expect_equal(numeric, [], call=call + ", the numpy warnings it raised",
                 hint="exp(-x) overflows for x = -1000 (and for x = -89 in float32): only ever call exp on "
                      "-|x|, which is <= 0; np.where evaluates both branches, so neither may overflow")
    expect_close(got, oracle(torch.sigmoid, x).astype(dtype), rtol=1e-6 if dtype == np.float32 else RTOL,
                 atol=1e-30, call=call, hint="sigmoid saturates to exactly 0 and 1 for large |x|")


# -- Tanh ------------------------------------------------------------------------------------

@given(arrays())
@example(EXTREME_ROW)
def test_tanh_matches_torch(x):
    """Tanh matches torch.tanh, saturating to +-1"""
    expect_close(Tanh()(Tensor(x)), oracle(torch.tanh, x), rtol=RTOL, atol=ATOL,
                 call=f"Tanh()({tensor_repr(x)})", hint="np.tanh is already stable; the exp formula gives inf/inf = nan")


# -- GELU ------------------------------------------------------------------------------------

@given(arrays())
@example(EXTREME_ROW)
def test_gelu_matches_torch(x):
    """GELU matches torch's GELU(approximate="tanh")"""
    expect_close(GELU()(Tensor(x)), oracle(F.gelu, x, approximate="tanh"), rtol=1e-9, atol=ATOL,
                 call=f"GELU()({tensor_repr(x)})",
                 hint="0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))")


def test_gelu_is_the_tanh_approximation():
    """GELU is the tanh approximation GPT-2 uses, not the erf form"""
    x = np.array([-3.0, -1.0, -0.75, 0.0, 0.5, 1.0, 2.0])
    # the tanh form at these points, from its formula (math.tanh), to 12 digits
    expected = np.array([-0.003637392082, -0.158808009392, -0.170039444834, 0.0,
                         0.345714009825, 0.841191990608, 1.954597694088])
    expect_close(GELU()(Tensor(x)), expected, rtol=1e-10, atol=1e-11,
                 call=f"GELU()({tensor_repr(x)})",
                 hint="use the tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); the exact erf form "
                      "gives 0.841345 at x = 1 instead of 0.841192")


# -- Softmax ---------------------------------------------------------------------------------

@given(arrays())
@example(EXTREME_ROW)
def test_softmax_matches_torch(x):
    """Softmax over the last axis matches torch.softmax, also with logits of +-1000"""
    expect_close(Softmax()(Tensor(x)), oracle(torch.softmax, x, dim=-1), rtol=RTOL, atol=ATOL,
                 call=f"Softmax(dim=-1)({tensor_repr(x)})",
                 hint="subtract the max along dim (keepdims=True) before exp, then divide by the sum along dim")


@pytest.mark.parametrize("dim", [0, 1, -1])
@given(x=arrays(min_dims=3, max_dims=3))
def test_softmax_any_dim(x, dim):
    """Softmax over dim 0, 1 or -1 of a 3-D tensor matches torch"""
    expect_close(Softmax(dim=dim)(Tensor(x)), oracle(torch.softmax, x, dim=dim), rtol=RTOL, atol=ATOL,
                 call=f"Softmax(dim={dim})({tensor_repr(x)} of shape {x.shape})",
                 hint="use axis=self.dim and keepdims=True in both the max and the sum, so they broadcast back")


@given(x=arrays(min_dims=2, max_dims=3), dim=st.sampled_from([0, -1]))
def test_softmax_sums_to_one(x, dim):
    """Softmax gives non-negative numbers that sum to 1 along dim"""
    got = Softmax(dim=dim)(Tensor(x))
    call = f"Softmax(dim={dim})({tensor_repr(x)})"
    expect_that(got, probabilities_along, dim, call=call, expected=f"all values >= 0, summing to 1 along dim {dim}",
                hint="divide exp along dim by its sum along the same dim (keepdims=True); nan means exp overflowed")
    expect_close(got, oracle(torch.softmax, x, dim=dim), rtol=RTOL, atol=ATOL, call=call,
                 hint="and the probabilities are softmax's: exp(x - max) / sum(exp(x - max)) along dim")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_softmax_shift_by_1000(dtype):
    """softmax(x + 1000) equals softmax(x) and is finite"""
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 4.5]])
    shifted = (x + 1000.0).astype(dtype)  # exact in float32 too
    call = f"Softmax(dim=-1)({tensor_repr(shifted)})"
    got = Softmax(dim=-1)(Tensor(shifted))
    expect_that(got, all_finite, call=call, expected="finite probabilities",
                hint="exp(1000) is inf and inf / inf is nan: subtract the max along dim before exp")
    # the tolerance is what rounding a logit of about 1000 allows (float_rtol): in float32,
    # exp(z - logsumexp(z)) is as correct as exp(z - max) / sum, and about 3e-5 less precise
    expect_close(got, oracle(torch.softmax, x, dim=-1).astype(dtype), rtol=float_rtol(shifted),
                 atol=ATOL, call=call,
                 hint="softmax does not change when every logit moves by the same amount")


# -- LogSoftmax ------------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [0, 1, -1])
@given(x=arrays(min_dims=3, max_dims=3))
@example(x=np.array([[[1000.0, 0.0], [-1000.0, 1e-8]], [[-50.0, 50.0], [0.0, -1000.0]]]))
def test_log_softmax_matches_torch(x, dim):
    """LogSoftmax over dim 0, 1 or -1 of a 3-D tensor matches torch.log_softmax"""
    expect_close(LogSoftmax(dim=dim)(Tensor(x)), oracle(torch.log_softmax, x, dim=dim), rtol=RTOL, atol=1e-10,
                 call=f"LogSoftmax(dim={dim})({tensor_repr(x)} of shape {x.shape})",
                 hint="(x - max) - log(sum(exp(x - max))) along dim, with keepdims=True; never log(softmax(x))")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_log_softmax_of_huge_logits(dtype):
    """LogSoftmax is finite and exact for logits of 1e4"""
    x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4]], dtype=dtype)
    call = f"LogSoftmax(dim=-1)({tensor_repr(x)})"
    got = LogSoftmax(dim=-1)(Tensor(x))
    expect_that(got, all_finite, call=call, expected="finite log-probabilities",
                hint="log(softmax(x)) is log(0) = -inf where a probability underflows: use the log-sum-exp trick")
    expect_close(got, oracle(torch.log_softmax, x, dim=-1).astype(dtype), rtol=1e-6 if dtype == np.float32 else RTOL,
                 atol=ATOL, call=call, hint="(x - max) - log(sum(exp(x - max))): the log term is log(1) = 0 here")


@given(arrays(min_dims=2, max_dims=2, elements=values(-10.0, 10.0)))
def test_log_softmax_is_log_of_softmax(x):
    """exp(LogSoftmax(x)) equals softmax(x)"""
    expect_close(np.exp(LogSoftmax(dim=-1)(Tensor(x)).data), oracle(torch.softmax, x, dim=-1), rtol=1e-9, atol=ATOL,
                 call=f"exp(LogSoftmax(dim=-1)({tensor_repr(x)})) vs softmax of the same logits",
                 hint="both subtract the same max; log-softmax subtracts the log of the same sum")


# -- temperature -----------------------------------------------------------------------------

temperatures = st.sampled_from([0.1, 0.5, 2.0, 10.0])


@given(x=arrays(min_dims=1, max_dims=2, elements=values(-10.0, 10.0)), temperature=temperatures)
def test_softmax_temperature_matches_torch(x, temperature):
    """Softmax(temperature=T)(x) equals torch.softmax(x / T)"""
    expect_close(Softmax(temperature=temperature)(Tensor(x)), oracle(torch.softmax, x / temperature, dim=-1),
                 rtol=RTOL, atol=ATOL, call=f"Softmax(temperature={temperature})({tensor_repr(x)})",
                 hint="divide the logits by the temperature first, then the stable softmax")


@given(x=arrays(min_dims=1, max_dims=2, elements=values(-10.0, 10.0)), temperature=temperatures)
def test_log_softmax_temperature_matches_torch(x, temperature):
    """LogSoftmax(temperature=T)(x) equals torch.log_softmax(x / T)"""
    expect_close(LogSoftmax(temperature=temperature)(Tensor(x)),
                 oracle(torch.log_softmax, x / temperature, dim=-1), rtol=RTOL, atol=1e-10,
                 call=f"LogSoftmax(temperature={temperature})({tensor_repr(x)})",
                 hint="divide the logits by the temperature first, then the log-sum-exp trick")


def test_low_temperature_is_argmax():
    """A temperature near 0 puts all the probability on the largest logit"""
    x = np.array([[0.5, 2.0, -1.0, 1.9], [3.0, -3.0, 0.0, 2.5]])
    one_hot = np.eye(4)[x.argmax(axis=-1)]
    call = f"Softmax(temperature=0.001)({tensor_repr(x)})"
    got = Softmax(temperature=0.001)(Tensor(x))
    expect_that(got, all_finite, call=call, expected="finite probabilities",
                hint="x / 0.001 makes logits of 3000: without subtracting the max, exp overflows")
    expect_close(got, one_hot, rtol=0, atol=1e-12, call=call,
                 hint="as T -> 0, softmax(x / T) becomes one-hot on the argmax (greedy decoding)")


def test_high_temperature_is_uniform():
    """A very high temperature makes every class almost equally likely"""
    x = np.array([[0.5, 2.0, -1.0, 1.9], [3.0, -3.0, 0.0, 2.5]])
    call = f"Softmax(temperature=1e4)({tensor_repr(x)})"
    expect_close(Softmax(temperature=1e4)(Tensor(x)), np.full((2, 4), 0.25), rtol=0, atol=1e-3, call=call,
                 hint="as T grows, x / T goes to 0 for every class and softmax goes to uniform")


# -- the contract every class keeps ------------------------------------------------------------

# name -> (how to make it, torch's function for the expected value)
ALL = {
    "ReLU()": (ReLU, torch.relu),
    "Sigmoid()": (Sigmoid, torch.sigmoid),
    "Tanh()": (Tanh, torch.tanh),
    "GELU()": (GELU, lambda t: F.gelu(t, approximate="tanh")),
    "Softmax(dim=1)": (lambda: Softmax(dim=1), lambda t: torch.softmax(t, dim=1)),
    "LogSoftmax(dim=1)": (lambda: LogSoftmax(dim=1), lambda t: torch.log_softmax(t, dim=1)),
}


def sample(dtype) -> np.ndarray:
    """The input of the contract test, drawn the same way whenever it is needed."""
    return (np.random.default_rng(2).standard_normal((2, 3, 4)) * 3).astype(dtype)


@pytest.mark.parametrize("name", list(ALL))
def test_shape_and_dtype_are_kept(name):
    """Every activation returns a new Tensor of the input's shape and dtype, leaving the input unchanged"""
    make, reference = ALL[name]
    for dtype in (np.float32, np.float64):
        x = Tensor(sample(dtype))
        call = f"{name}(Tensor of shape (2, 3, 4), dtype={np.dtype(dtype).name})"
        got = make()(x)
        expect_equal(isinstance(got, Tensor), True, call=f"isinstance({call}, Tensor)",
                     hint="wrap the numpy result: return Tensor(result)")
        expect_equal(got.shape, (2, 3, 4), call=call + " .shape", hint="activations never change the shape")
        expect_equal(got.dtype, np.dtype(dtype), call=call + " .dtype",
                     hint="float32 in, float32 out: a numpy float64 scalar such as np.sqrt(2 / np.pi) promotes "
                          "float32 arrays to float64, a Python float (math.sqrt(2 / math.pi)) does not")
        # float32 values of size ~3: a few roundings of eps = 1.2e-7 each, relative and absolute
        expect_close(got, reference(torch.tensor(sample(dtype).astype(np.float64))).numpy(),
                     rtol=1e-5 if dtype == np.float32 else 1e-9, atol=1e-6 if dtype == np.float32 else ATOL,
                     call=call, hint="the same formula in either dtype")
        expect_equal(x.data, sample(dtype), call=f"the input after {call}",
                     hint="compute into new arrays (z = z - max, not z -= max on x.data; no out=x.data): "
                          "the caller still needs x")


def test_calling_goes_through_forward(monkeypatch):
    """Calling an activation runs its forward method (autograd hooks in there)"""
    x = Tensor(np.linspace(-2.0, 2.0, 6).reshape(2, 3))
    for name, (make, reference) in ALL.items():
        activation = make()
        cls = type(activation)
        original = cls.forward
        seen = []

        def spy(self, tensor, original=original, seen=seen):
            seen.append(tensor)
            result = original(self, tensor)
            seen.append(result)
            return result

        monkeypatch.setattr(cls, "forward", spy)
        got = activation(x)
        monkeypatch.undo()
        # identity facts have no value to record: whether forward saw x and gave back what __call__ returned
        expect_equal((len(seen) // 2, len(seen) == 2 and seen[0] is x and got is seen[1]), (1, True),
                     call=f"({name}(x): calls of forward, and __call__ returned forward's result for x)",
                     hint="do all the work in forward; __call__ only returns self.forward(x), because module 05 "
                          "wraps forward to build the gradient graph")
        expect_close(got, reference(torch.tensor(np.linspace(-2.0, 2.0, 6).reshape(2, 3))), rtol=RTOL, atol=ATOL,
                     call=f"{name}(x) with x = Tensor(np.linspace(-2.0, 2.0, 6).reshape(2, 3))",
                     hint="the value forward computes")
