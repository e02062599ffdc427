"""Hidden checks of module 02: inputs left untouched, masked logits, strided inputs, float32 at
low temperature, and 0-d tensors."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal
from tinytorch.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.tensor import Tensor

RTOL, ATOL = 1e-10, 1e-12

ALL = {
    "ReLU()": (ReLU, torch.relu),
    "Sigmoid()": (Sigmoid, torch.sigmoid),
    "Tanh()": (Tanh, torch.tanh),
    "GELU()": (GELU, lambda t: F.gelu(t, approximate="tanh")),
    "Softmax(dim=0)": (lambda: Softmax(dim=0), lambda t: torch.softmax(t, dim=0)),
    "LogSoftmax(dim=0)": (lambda: LogSoftmax(dim=0), lambda t: torch.log_softmax(t, dim=0)),
}


def logits(index: int) -> np.ndarray:
    """The input of the index-th activation, drawn the same way whenever it is needed."""
    return np.random.default_rng([20, index]).standard_normal((3, 4)) * 5


def test_input_is_left_unchanged():
    """No activation changes the numbers of its input tensor"""
    for index, (name, (make, reference)) in enumerate(ALL.items()):
        x = Tensor(logits(index))
        got = make()(x)
        expect_close(x, logits(index), rtol=0, atol=0, call=f"x after {name}(x)",
                     hint="compute into new arrays (z = z - max, not z -= max on x.data): the caller still needs x")
        expect_close(got, reference(torch.tensor(logits(index))), rtol=RTOL, atol=ATOL, call=f"{name}(x)",
                     hint="the result must still match torch")


def test_masked_logits_get_zero_probability():
    """Logits of -inf (an attention mask) get probability 0 and log-probability -inf"""
    x = np.array([[0.5, -np.inf, 2.0, -np.inf], [-np.inf, 1000.0, -np.inf, -1000.0]])
    with warnings.catch_warnings(record=True) as caught, np.errstate(over="warn", invalid="warn", divide="warn"):
        warnings.simplefilter("always")
        probabilities = Softmax(dim=-1)(Tensor(x))
        log_probabilities = LogSoftmax(dim=-1)(Tensor(x))
    numeric = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    call = "Softmax / LogSoftmax(dim=-1) of logits with -inf entries"
    expect_equal(numeric, [], call=call + ", the numpy warnings raised",
                 hint="exp(-inf - max) is exactly 0; only subtract a finite max and never take log(0)")
    expect_close(probabilities, torch.softmax(torch.tensor(x), dim=-1), rtol=RTOL, atol=0,
                 call=f"Softmax(dim=-1)({x.tolist()})", hint="masked positions must get exactly 0")
    expect_close(log_probabilities, torch.log_softmax(torch.tensor(x), dim=-1), rtol=RTOL, atol=ATOL,
                 call=f"LogSoftmax(dim=-1)({x.tolist()})", hint="masked positions get -inf, the others stay finite")


def test_strided_input_and_middle_dim_with_temperature():
    """Softmax and LogSoftmax over a middle axis of a transposed 4-D view, with temperature"""
    rng = np.random.default_rng(21)
    x = (rng.standard_normal((2, 3, 4, 5)) * 4).transpose(0, 2, 1, 3)  # a non-contiguous view
    t = torch.tensor(np.ascontiguousarray(x))
    expect_close(Softmax(dim=1, temperature=0.7)(Tensor(x)), torch.softmax(t / 0.7, dim=1), rtol=RTOL, atol=ATOL,
                 call="Softmax(dim=1, temperature=0.7)(x of shape (2, 4, 3, 5), transposed)",
                 hint="reduce along self.dim with keepdims=True; strides do not matter to numpy")
    expect_close(LogSoftmax(dim=-2, temperature=3.0)(Tensor(x)), torch.log_softmax(t / 3.0, dim=-2),
                 rtol=RTOL, atol=1e-10, call="LogSoftmax(dim=-2, temperature=3.0)(x of shape (2, 4, 3, 5), transposed)",
                 hint="divide by the temperature, then log-sum-exp along self.dim")


def test_low_temperature_in_float32():
    """At temperature 0.01, float32 logits of 50 give finite, correct results without warnings"""
    x = np.array([[50.0, 49.5, -50.0, 0.0], [-3.0, 40.0, 40.25, 12.0]], dtype=np.float32)
    call = f"Softmax / LogSoftmax(temperature=0.01)({x.tolist()}, float32)"
    with warnings.catch_warnings(record=True) as caught, np.errstate(over="warn", invalid="warn", divide="warn"):
        warnings.simplefilter("always")
        probabilities = Softmax(temperature=0.01)(Tensor(x))
        log_probabilities = LogSoftmax(temperature=0.01)(Tensor(x))
    numeric = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    expect_equal(numeric, [], call=call + ", the numpy warnings raised",
                 hint="x / 0.01 is 5000, far past float32's exp limit of 88.7: subtract the max after dividing")
    expect_equal(probabilities.dtype, np.dtype(np.float32), call=call + " .dtype", hint="float32 in, float32 out")
    t = torch.tensor(x.astype(np.float64)) / 0.01
    # Any correct float32 formulation rounds the logits x / T (about 5000) once: half a unit in
    # the last place is 2.4e-4, which exp turns into a relative error of the probabilities and
    # an absolute error of the log-probabilities. eps * (5000 + 8) = 6e-4 allows for it.
    error = float(np.finfo(np.float32).eps) * (5000 + 8)
    expect_close(probabilities, torch.softmax(t, dim=-1).numpy().astype(np.float32), rtol=error, atol=1e-30,
                 call=call, hint="the stable softmax of x / T")
    expect_close(log_probabilities, torch.log_softmax(t, dim=-1).numpy().astype(np.float32), rtol=1e-6, atol=error,
                 call=call, hint="(z - max) - log(sum(exp(z - max))) with z = x / T: finite even at -10000")


def test_elementwise_on_a_0d_tensor():
    """Elementwise activations of a 0-d tensor return a 0-d tensor of the same dtype"""
    for name in ("ReLU()", "Sigmoid()", "Tanh()", "GELU()"):
        make, reference = ALL[name]
        for value in (-2.5, 0.0, 1e-8, 700.0):
            x = np.array(value)
            got = make()(Tensor(x))
            call = f"{name}(Tensor({value}, dtype=float64), a 0-d tensor)"
            expect_equal(isinstance(got, Tensor), True, call=f"isinstance({call}, Tensor)",
                         hint="wrap the numpy result in a Tensor")
            expect_equal((got.shape, got.dtype), ((), np.dtype(np.float64)), call=call + " (.shape, .dtype)",
                         hint="a scalar stays a scalar; numpy may hand back np.float64, which keeps float64")
            expect_close(got, reference(torch.tensor(x)), rtol=RTOL, atol=ATOL, call=call,
                         hint="the same formula as for arrays")
