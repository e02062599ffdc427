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
# # Module 15: Quantization
#
# The MNIST network of the 1986 milestone, `784 -> 256 -> 10`, holds 203,264 weights. In
# float32 each weight takes 4 bytes: 813 KB. Does a weight really need 32 bits? A float32 has
# 24 bits of precision, about seven decimal digits, and a trained network does not care
# whether a weight is 0.0131 or 0.0132. **Quantization** stores each number as an 8-bit
# integer plus one shared float that says how big a step of that integer is. The weights get
# exactly 4x smaller, they move through memory 4x faster, and the arithmetic can run on
# integer units, which are smaller, cheaper and (on hardware built for it) faster than float
# units. Almost every model deployed on a phone runs like this.
#
# In this module you build
#
# | name | what it does |
# | --- | --- |
# | `quantize_per_tensor(x, scale, zero_point)`, `quantize_per_channel(x, scales, zero_points, axis)` | float -> int8 |
# | `dequantize(q, scale, zero_point, axis=None)` | int8 -> float |
# | `choose_qparams(lo, hi, symmetric)` | the scale and zero point that cover a range |
# | `minmax_range(x, axis)`, `percentile_range(x, percentile, axis)` | calibration: which range to cover |
# | `Observer(method)` | watches tensors go by and remembers their range |
# | `fake_quantize(x, scale, zero_point, axis)` | quantize-then-dequantize, differentiable (straight-through) |
# | `integer_matmul(q_x, x_zero_point, q_w)` | int8 x int8 products, accumulated in int32 |
# | `QuantizedLinear`, `QuantizedConv2d` | layers with int8 weights and integer arithmetic |
# | `quantize(model, calibration_batches)` | a whole model: calibrate, then replace every layer |
# | `weight_nbytes(model)` | the bytes the weights occupy, float32 or int8 + scales |
#
# The checkpoint compares your integers with PyTorch's `torch.quantize_per_tensor` and
# `torch.quantize_per_channel` (`int_repr()`), your scales and zero points with PyTorch's
# observers, your fake quantization and its gradient with `torch.fake_quantize_*`, and your
# quantized layers and models with a float64 PyTorch model that fake-quantizes every input and
# weight the same way.

# %%
from __future__ import annotations

import copy
from typing import Any, Iterable

import numpy as np

from tinytorch.autograd import Function, needs_grad, no_grad, record
from tinytorch.layers import Linear, Module
from tinytorch.spatial import Conv2d, sliding_windows
from tinytorch.tensor import Tensor

QMIN, QMAX = -128, 127                 # the int8 range
EPS = float(np.finfo(np.float32).eps)  # the smallest scale we allow (2**-23), as PyTorch's observers


def _array(x: Any) -> np.ndarray:
    """The numbers of a Tensor (or of anything numpy can read)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _along(values: Any, axis: int, ndim: int) -> np.ndarray:
    """A (C,) array shaped to broadcast along `axis` of an ndim-array: (C, 1, 1) for axis 0 of 3-D."""
    shape = [1] * ndim
    shape[axis] = -1
    return np.asarray(values).reshape(shape)


# %% [markdown]
# ## 1. The affine map: integers that stand for reals
#
# An int8 holds one of 256 values, `-128 ... 127`. We let integer `q` stand for the real number
#
# `real = scale * (q - zero_point)`
#
# with two **quantization parameters**: the `scale` (a positive float: how much one integer
# step is worth) and the `zero_point` (the integer that stands for 0.0). Going the other way,
# a real `x` becomes the *nearest* representable integer, clamped into the int8 range:
#
# `q = clamp(round(x / scale) + zero_point, -128, 127)`     (**quantize**)
#
# `x_hat = scale * (q - zero_point)`                        (**dequantize**)
#
# The 256 integers cover the interval `[scale * (-128 - zero_point), scale * (127 -
# zero_point)]` with a grid of spacing `scale`. Two kinds of error:
#
# - **rounding** error, for `x` inside the interval: `x` moves to the nearest grid point, at
#   most **half a step** away: `|x_hat - x| <= scale / 2`. Finer grid, smaller error;
# - **clipping** error, for `x` outside: it becomes the end of the grid, however far away it
#   was. A coarser grid covers more.
#
# Choosing the parameters is the trade-off between the two (sections 2 and 3).
#
# **Rounding rule.** `round` here is numpy's `np.round`, which rounds an exact half to the
# nearest *even* integer (`0.5 -> 0`, `1.5 -> 2`, `2.5 -> 2`), as PyTorch does. Python's
# `round` agrees; C's `lround` and the school rule (`floor(x + 0.5)`) round halves up instead.
# Both are within half a step, so neither is wrong, and real data almost never lands exactly
# on a half: the checkpoint keeps its inputs away from those ties.
#
# **Mind the integer types.** numpy keeps an int8 array int8 through arithmetic with a Python
# integer, and wraps silently on overflow: `np.int8(-128) - 100` is `28`, not `-228`. So
# dequantize by first widening to int32, `q.astype(np.int32) - zero_point`, then multiply by
# the scale, and return float32.
#
# **Per channel.** Different rows of a weight matrix can live on very different scales (one
# output neuron with weights around 1, another around 0.01). One scale for the whole tensor
# must cover the biggest row, and the small rows get only a few integer levels. *Per-channel*
# quantization gives each slice along one `axis` (each output channel: axis 0 of a Linear's
# `(out, in)` weight or a Conv2d's `(C_out, C_in, kH, kW)` weight) its own scale and zero
# point: `scales` and `zero_points` are arrays of length `x.shape[axis]`, reshaped to
# broadcast along that axis (`_along` above does it). The cost is one extra float per
# channel; section 8 counts it.
#
# A scale must be positive (`ValueError` otherwise), and `quantize_per_channel` checks that it
# got one scale and one zero point per slice.

# %% nbgrader={"grade": false, "grade_id": "quantize-dequantize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize_per_tensor(x: Any, scale: float, zero_point: int) -> Tensor:
    """int8 Tensor: clamp(round(x / scale) + zero_point, -128, 127), one scale for every element."""
    # YOUR CODE HERE
    raise NotImplementedError()


def quantize_per_channel(x: Any, scales: Any, zero_points: Any, axis: int = 0) -> Tensor:
    """int8 Tensor: like quantize_per_tensor, with scales[c], zero_points[c] for slice c along `axis`."""
    # YOUR CODE HERE
    raise NotImplementedError()


def dequantize(q: Any, scale: Any, zero_point: Any, axis: int | None = None) -> Tensor:
    """float32 Tensor: scale * (q - zero_point); per channel along `axis` when it is given."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: a round trip
#
# Eight numbers, scale 0.1, zero point 0: each comes back within 0.05 (half a step), except
# 20.0, which lies beyond the grid's end (12.7) and is clipped.

# %%
if __name__ == "__main__":
    x = np.array([0.0, 0.26, -0.33, 1.04, -3.71, 12.68, -12.8, 20.0], dtype=np.float32)
    q = quantize_per_tensor(x, 0.1, 0)
    back = dequantize(q, 0.1, 0)
    print("x       ", x)
    print("q       ", q.data)
    print("x_hat   ", back.data.round(4))
    print("|error| ", np.abs(back.data - x).round(4))
    print("wrapping int8 arithmetic:", np.array([-128], dtype=np.int8) - 100, "widened:",
          np.array([-128], dtype=np.int8).astype(np.int32) - 100)

# %% [markdown]
# ## 2. Choosing the scale and the zero point
#
# Suppose we know the range `[lo, hi]` the values live in (section 3 finds it). Which
# parameters cover it best? First, always **stretch the range to include 0**: `lo =
# min(lo, 0)`, `hi = max(hi, 0)`. Zero must be represented *exactly*: zero padding in a
# convolution, the zeros a ReLU produces by the thousand, pruned weights (module 16). If 0.0
# came back as 0.003, every one of them would add a small error, and the errors of a sum do
# not cancel when they all have the same sign.
#
# **Asymmetric (affine) quantization** maps `lo` to -128 and `hi` to 127:
#
# `scale = (hi - lo) / 255`, `zero_point = -128 - round(lo / scale)`,
#
# the zero point clamped into `[-128, 127]`. The whole int8 range is used, whatever the
# range's position: good for activations after a ReLU, which are all `>= 0` (then `lo = 0`
# and `zero_point = -128`: every integer level covers a positive value).
#
# **Symmetric quantization** fixes `zero_point = 0` and covers `[-amax, amax]`, `amax =
# max(-lo, hi)`:
#
# `scale = amax / 127`, `zero_point = 0`,
#
# using the integers `-127 ... 127` (-128 is left out so that `w` and `-w` quantize to `q`
# and `-q`). For a range like `[0, 6]` it wastes half the integers on negative values that
# never occur; in exchange the arithmetic gets simpler (section 6), which is why weights,
# which are roughly centred on zero anyway, are quantized symmetrically.
#
# Two safeguards. A range of all zeros would give `scale = 0` and a division by zero:
# the scale is at least `EPS` (float32's epsilon, 2^-23, what PyTorch's observers use).
# And `lo > hi` is not a range: `ValueError`.
#
# `choose_qparams` works elementwise, so arrays `lo`, `hi` of shape `(C,)` give per-channel
# parameters of shape `(C,)`. Return the scale as **float32** (that is how it is stored: 4
# bytes per scale) and the zero point as **int32**, both of `lo`'s shape. Compute the zero
# point with the float32 scale you return, so that quantizing `lo` gives exactly -128.
# PyTorch computes the same parameters in its observers: `MinMaxObserver(dtype=torch.qint8,
# qscheme=torch.per_tensor_affine)`, and for the symmetric case `qscheme=
# torch.per_tensor_symmetric, quant_min=-127, quant_max=127`.

# %% nbgrader={"grade": false, "grade_id": "choose-qparams", "locked": false, "schema_version": 3, "solution": true, "task": false}
def choose_qparams(lo: Any, hi: Any, symmetric: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(scale float32, zero_point int32), elementwise over lo/hi, covering [min(lo, 0), max(hi, 0)]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 3. Calibration: which range to cover
#
# For the weights the range is simply there: they are fixed once trained. Activations (the
# inputs of each layer) change with every input, so we **calibrate**: run the float model on
# a few representative batches and record what flows into each layer.
#
# **Min/max** takes the smallest and largest value seen. Nothing is ever clipped, but a single
# outlier decides the scale for everybody: if 99.99% of the values lie in `[-3, 3]` and one is
# 60, the step is 20x larger than the bulk needs, and the bulk is represented by a dozen
# integer levels.
#
# **Percentile** calibration ignores the extreme tail: `lo` is the `(100 - p)`-th percentile
# and `hi` the `p`-th (say `p = 99.99`). The rare outliers are clipped (a large error on a
# few values) and the bulk gets a 20x finer grid (a small error on almost all). Which wins
# depends on the model; for activations with long tails, percentile usually does. Use
# `np.percentile`'s default linear interpolation (PyTorch's `torch.quantile` uses the same).
#
# Both take an optional `axis`: with `axis=None` one range for the whole tensor (floats),
# with an axis one range per slice along it, arrays of shape `(x.shape[axis],)`. Reduce over
# every *other* axis: move `axis` to the front and reshape to `(C, -1)`, then reduce along
# axis 1.

# %% nbgrader={"grade": false, "grade_id": "calibration", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _per_slice(x: np.ndarray, axis: int | None) -> np.ndarray:
    """x flattened (axis None), or as (C, -1) rows, one per slice along `axis`."""
    if axis is None:
        return x.reshape(-1)
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def minmax_range(x: Any, axis: int | None = None) -> tuple[Any, Any]:
    """(smallest, largest) value of x; per slice along `axis` (arrays of shape (C,)) when given."""
    # YOUR CODE HERE
    raise NotImplementedError()


def percentile_range(x: Any, percentile: float = 99.99, axis: int | None = None) -> tuple[Any, Any]:
    """(the (100 - p)-th, the p-th percentile) of x; per slice along `axis` when given."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: one outlier, and rows of different sizes
#
# 10,000 well-behaved values and one 60: min/max calibration spends its grid on the outlier;
# the 99.99th percentile protects the bulk. Then a weight matrix whose rows differ in size by
# 100x: one scale for all of it makes the small row's error as large as the big row's.

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)
    values = np.append(rng.standard_normal(10_000), 60.0).astype(np.float32)
    for name, (lo, hi) in (("min/max", minmax_range(values)), ("percentile", percentile_range(values, 99.99))):
        scale, zero_point = choose_qparams(lo, hi)
        error = np.abs(dequantize(quantize_per_tensor(values, scale, zero_point), scale, zero_point).data - values)
        print(f"{name:10s}: range [{lo:6.2f}, {hi:6.2f}], scale {float(scale):.4f}, "
              f"mean |error| of the bulk {error[:-1].mean():.5f}, error on the outlier {error[-1]:.2f}")

    weight = rng.standard_normal((3, 64)).astype(np.float32) * np.array([[1.0], [0.1], [0.01]], dtype=np.float32)
    t_scale, _ = choose_qparams(*minmax_range(weight), symmetric=True)
    c_scale, c_zero = choose_qparams(*minmax_range(weight, axis=0), symmetric=True)
    per_tensor = dequantize(quantize_per_tensor(weight, t_scale, 0), t_scale, 0).data
    per_channel = dequantize(quantize_per_channel(weight, c_scale, c_zero, 0), c_scale, c_zero, axis=0).data
    for row in range(3):
        print(f"row {row} (|w| ~ {np.abs(weight[row]).mean():.3f}): relative error per tensor "
              f"{np.abs(per_tensor[row] - weight[row]).mean() / np.abs(weight[row]).mean():6.1%}, "
              f"per channel {np.abs(per_channel[row] - weight[row]).mean() / np.abs(weight[row]).mean():6.1%}")

# %% [markdown]
# ## 4. Observers: calibration over many batches
#
# Calibration sees the data one batch at a time. An `Observer` is what watches one spot of
# the model (the input of one layer) during calibration:
#
# - `Observer("minmax")` keeps a running minimum and maximum: after `observe(batch)` for
#   every batch, `range()` is the min and max over *all* of them, exactly as if the batches
#   had been concatenated, and it costs two numbers of memory;
# - `Observer("percentile", percentile=p)` cannot keep a running percentile (a percentile of
#   percentiles is not the percentile of the whole), so it keeps a copy of every value and
#   computes `percentile_range` of all of them in `range()`. Memory grows with the
#   calibration set; PyTorch's `HistogramObserver` keeps a histogram instead. For a few
#   batches a copy is fine;
# - `qparams(symmetric)` is `choose_qparams` of the range.
#
# An unknown method is a `ValueError`, and so is `range()` before anything was observed
# (there is no range yet, and a made-up one would silently break the model).

# %% nbgrader={"grade": false, "grade_id": "observer", "locked": false, "schema_version": 3, "solution": true, "task": false}
METHODS = ("minmax", "percentile")


class Observer:
    """Watches tensors during calibration and remembers their range (minmax or percentile)."""

    def __init__(self, method: str = "minmax", percentile: float = 99.99) -> None:
        """ValueError unless method is one of METHODS; nothing observed yet."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def observe(self, x: Any) -> None:
        """Take one batch into account."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def range(self) -> tuple[float, float]:
        """(lo, hi) over everything observed so far; ValueError if nothing was observed."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def qparams(self, symmetric: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """choose_qparams of range()."""
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 5. Fake quantization, and how to train through a rounding
#
# Before committing a model to integers we want to know what quantization will do to it, and
# ideally train the model to tolerate it. **Fake quantization** simulates the integers in
# float: `fake_quantize(x) = dequantize(quantize(x))`, with the same scale and zero point,
# computed in `x`'s own dtype (do not pass through float32 when `x` is float64). The result
# is a float tensor whose values lie on the int8 grid, and a float model whose layers
# fake-quantize their inputs and weights computes *exactly* what the integer model computes
# (section 7 relies on it: it is how the checkpoint checks your quantized layers).
#
# To train through it (**quantization-aware training**) we need a gradient, and `round` has
# none worth having: its derivative is 0 everywhere except at the halves, where it does not
# exist. Every gradient would be zero and nothing would learn. The standard cure is the
# **straight-through estimator** (Bengio et al., 2013): in backward, pretend the rounding was
# the identity. Clamping is kept honest: a value clipped at the end of the grid does not
# change the output when nudged, so its gradient is zero. So
#
# `d fake_quantize(x) / dx = 1 where -128 <= round(x / scale) + zero_point <= 127, else 0`,
#
# the rule `torch.fake_quantize_per_tensor_affine` uses. `fake_quantize` is a new primitive
# (module 05): compute the value with numpy, and when `needs_grad(x)` record a
# `FakeQuantizeFn` that keeps the boolean mask of the values inside the grid;
# its backward returns `grad` times the mask. `axis=None` means per tensor, an integer axis
# per channel (then `scale` and `zero_point` are arrays along that axis).

# %% nbgrader={"grade": false, "grade_id": "fake-quantize", "locked": false, "schema_version": 3, "solution": true, "task": false}
class FakeQuantizeFn(Function):
    """fake_quantize(x): the straight-through gradient, passed where x was inside the int8 grid."""

    def __init__(self, x: Tensor, inside: np.ndarray) -> None:
        super().__init__(x)
        self.inside = inside

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        # YOUR CODE HERE
        raise NotImplementedError()


def fake_quantize(x: Tensor, scale: Any, zero_point: Any, axis: int | None = None) -> Tensor:
    """dequantize(quantize(x)) in x's dtype, with the straight-through gradient inside the grid."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 6. Integer arithmetic: int8 products, int32 sums
#
# Now the payoff. A linear layer computes `y[n, o] = sum_k x[n, k] W[o, k] + b[o]`. Put in
# the quantized forms, the input per tensor with `(s_x, z_x)` and the weight symmetric per
# output channel with `(s_w[o], 0)`:
#
# `x[n, k] ~ s_x (q_x[n, k] - z_x)`, `W[o, k] ~ s_w[o] q_w[o, k]`, so
#
# `y[n, o] ~ s_x s_w[o] * sum_k (q_x[n, k] - z_x) q_w[o, k] + b[o]`.
#
# The scales are constants per output, pulled out of the sum; what is left inside is **pure
# integer arithmetic**, which is what int8 hardware does: an int8-by-int8 product, added into
# an accumulator, millions of times. The floats come back only once per output, at the end.
# (Symmetric weights are why there is no `- z_w` inside the sum: with a weight zero point the
# sum would need extra correction terms.)
#
# **How big do the integers get?** `q_x - z_x` lies in `[-255, 255]` and `q_w` in `[-127,
# 127]`, so one product is up to 32,385 in size: already near int16's limit of 32,767. A sum
# of 784 of them (MNIST's first layer) reaches 25 million. So the accumulator is **int32**
# (up to 2.1 billion: room for 66,000 worst-case products). In numpy, an int8 `@` int8 is
# computed *in int8* and wraps around silently; widen both operands to int32 first.
#
# `integer_matmul(q_x, x_zero_point, q_w)` takes `q_x` of shape `(..., K)` (int8), its zero
# point, and `q_w` of shape `(out, K)` (int8, zero point 0), and returns the int32 Tensor
# `(..., out)` of the sums `sum_k (q_x[..., k] - z_x) q_w[o, k]`. A hardware kernel would
# keep `q_x` as it is and subtract `z_x * sum_k q_w[o, k]` (a constant per output, computed
# once) afterwards; in numpy, widen and subtract first.

# %% nbgrader={"grade": false, "grade_id": "integer-matmul", "locked": false, "schema_version": 3, "solution": true, "task": false}
def integer_matmul(q_x: Any, x_zero_point: int, q_w: Any) -> Tensor:
    """int32 Tensor (..., out): sum_k (q_x[..., k] - x_zero_point) * q_w[out, k], accumulated in int32."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 7. Quantized layers
#
# `QuantizedLinear(linear, input_scale, input_zero_point, per_channel=True)` is built from a
# trained float `Linear` and the quantization parameters of its *input* (from calibration):
#
# - `__init__` quantizes the weight **symmetrically**, per output channel (axis 0) by
#   default or per tensor with `per_channel=False`, with min/max ranges: `choose_qparams`
#   of `minmax_range(weight, axis=0)` (or `axis=None`); write that once, in
#   `_quantize_weight`, for both layers. It keeps `qweight`, an int8 Tensor of
#   the weight's shape, and `weight_scale`, a float32 array of shape `(out_features,)` (or
#   `()` per tensor); the bias stays float32 (`bias`, a Tensor, or None: it is added once per
#   output, a negligible cost, and real kernels keep it in int32 at the scale `s_x s_w`
#   anyway); the input's `input_scale` (a float) and `input_zero_point` (an int); and
#   `in_features`, `out_features`;
# - `forward(x)`: quantize `x` per tensor with the input's parameters, `integer_matmul` with
#   `qweight`, then back to float: the int32 sums times `input_scale * weight_scale` (one
#   factor per output column), plus the bias. Returns a float32 Tensor of shape
#   `(..., out_features)`, like the float layer.
#
# `QuantizedConv2d(conv, input_scale, input_zero_point, per_channel=True)` does the same for
# a `Conv2d` (module 09), whose weight `(C_out, C_in, kH, kW)` gets one scale per output
# channel (axis 0). Its forward is module 09's im2col in integers:
#
# 1. quantize `x` `(N, C_in, H, W)`;
# 2. **pad with the zero point**, not with 0: the padding stands for the real number 0.0, and
#    the integer for 0.0 is `input_zero_point` (`np.pad(..., constant_values=z_x)`);
# 3. `sliding_windows` of the padded integers (module 09), moved and reshaped to `cols`
#    `(N * H_out * W_out, C_in * kH * kW)`;
# 4. `integer_matmul(cols, z_x, qweight.reshape(C_out, -1))`, scale, add the bias, reshape
#    to `(N, H_out, W_out, C_out)` and move the channels to axis 1.
#
# A quantized layer is for inference only: it has no parameters to train (its tensors do
# not require grad), and no gradient flows through it.

# %% nbgrader={"grade": false, "grade_id": "quantized-layers", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _quantize_weight(weight: np.ndarray, per_channel: bool) -> tuple[Tensor, np.ndarray]:
    """(int8 qweight, float32 scales): symmetric min/max quantization, per output channel or per tensor."""
    # YOUR CODE HERE
    raise NotImplementedError()


class QuantizedLinear(Module):
    """A Linear with int8 weights (symmetric) and int8 inputs: y = s_x s_w (q_x - z_x) @ q_w.T + b."""

    def __init__(self, linear: Linear, input_scale: float, input_zero_point: int, per_channel: bool = True) -> None:
        """qweight (int8), weight_scale (float32), bias (float32 Tensor or None), the input's parameters."""
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in_features) -> float32 (..., out_features), through int8 products and int32 sums."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"input_scale={self.input_scale:.4g}, input_zero_point={self.input_zero_point}")


class QuantizedConv2d(Module):
    """A Conv2d with int8 weights (symmetric, per output channel) and int8 inputs, im2col in integers."""

    def __init__(self, conv: Conv2d, input_scale: float, input_zero_point: int, per_channel: bool = True) -> None:
        """qweight (int8, C_out x C_in x kH x kW), weight_scale, bias, the conv's settings and the input's parameters."""
        super().__init__()
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """x (N, C_in, H, W) -> float32 (N, C_out, H_out, W_out)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, input_scale={self.input_scale:.4g}, "
                f"input_zero_point={self.input_zero_point}")


# %% [markdown]
# ## Try it: one layer, float and int8
#
# A `Linear(64, 8)` and its quantized twin on the same inputs: the outputs agree to about a
# percent, and the int8 weight is exactly a quarter of the float one.

# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    layer = Linear(64, 8)
    inputs = Tensor(np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32))
    scale, zero_point = choose_qparams(*minmax_range(inputs))
    twin = QuantizedLinear(layer, float(scale), int(zero_point))
    print(twin)
    float_out, int8_out = layer(inputs).data, twin(inputs).data
    print("largest difference:", float(np.abs(float_out - int8_out).max()), "of outputs up to",
          float(np.abs(float_out).max()))
    print("weight bytes: float32", layer.weight.data.nbytes, "int8", twin.qweight.data.nbytes,
          "+ scales", twin.weight_scale.nbytes)

# %% [markdown]
# ## 8. A whole model: calibrate, then convert
#
# `quantize(model, calibration_batches)` turns a trained float model into an int8 one, the
# way PyTorch's post-training static quantization does ("prepare", "calibrate", "convert"):
#
# 1. **copy** the model (`copy.deepcopy`) and put the copy in evaluation mode: the caller's
#    float model stays as it was (you will want to compare the two), and calibration must
#    not run dropout;
# 2. **prepare**: put an `Observed(layer, Observer(method, percentile))` in the place of
#    every `Linear` and `Conv2d` of the copy. `Observed` (given below) shows each input to
#    its observer and then runs the layer. `_layer_slots` (given) finds every such layer,
#    wherever it sits (an attribute of a module, an item of a list of layers, inside a
#    `Sequential`, or the model itself), as `(owner, key, layer)`, and `_put(owner, key, new)`
#    replaces it there. A layer used in two places is one layer: give it one observer (keyed
#    by `id(layer)`) and, later, one quantized layer;
# 3. **calibrate**: run the copy on every calibration batch, under `no_grad()`. A batch may
#    be a Tensor, a numpy array, or an `(inputs, labels)` pair from a DataLoader (module 08):
#    take its first item;
# 4. **convert**: in each slot, a `QuantizedLinear` or `QuantizedConv2d` built from the float
#    layer, with its observer's *asymmetric* per-tensor parameters (`observer.qparams()`)
#    for the input, and `per_channel` for the weight. A layer no batch ever reached has no
#    range: its observer's `ValueError` says so, and so does an empty set of batches.
#
# Everything else (activations, pooling, `Flatten`) stays float: it is cheap, and our
# quantized layers take float inputs and give float outputs. (A production int8 model keeps
# the activations in int8 between layers too, "requantizing" each output; the arithmetic is
# the same, there is just less converting.)
#
# **Measuring the win.** `weight_nbytes(model)` adds up, over every layer of the model
# (`model.modules()`, each once): a float `Linear` or `Conv2d` counts its weight's
# `nbytes` (4 per number), a quantized layer its `qweight` (1 per number) plus its
# `weight_scale` (4 per scale). Biases are not weights and are not counted.

# %%
class Observed(Module):
    """A layer with an observer in front: calibration sees every input the layer gets."""

    def __init__(self, layer: Module, observer: Observer) -> None:
        super().__init__()
        self.layer, self.observer = layer, observer

    def forward(self, x: Tensor) -> Tensor:
        self.observer.observe(x)
        return self.layer(x)


QUANTIZABLE = (Linear, Conv2d)


def _layer_slots(holder: list) -> list[tuple[Any, Any, Module]]:
    """(owner, key, layer) for every Linear/Conv2d inside holder[0] (holder[0] itself included):
    owner is a module (key: an attribute name) or a list (key: an index)."""
    slots: list[tuple[Any, Any, Module]] = []
    seen: set[int] = set()

    def visit(owner: Any, key: Any, value: Any) -> None:
        if isinstance(value, QUANTIZABLE):
            slots.append((owner, key, value))
        elif isinstance(value, Module) and id(value) not in seen:
            seen.add(id(value))
            for name, child in list(vars(value).items()):
                visit(value, name, child)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(value, index, item)

    visit(holder, 0, holder[0])
    return slots


def _put(owner: Any, key: Any, value: Any) -> None:
    """Replace what sits at owner[key] (a list) or owner.key (a module)."""
    if isinstance(owner, list):
        owner[key] = value
    else:
        setattr(owner, key, value)


# %% nbgrader={"grade": false, "grade_id": "quantize-model", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize(model: Module, calibration_batches: Iterable[Any], per_channel: bool = True,
             method: str = "minmax", percentile: float = 99.99) -> Module:
    """A quantized copy of `model`: every Linear/Conv2d replaced by its int8 version, inputs calibrated."""
    # YOUR CODE HERE
    raise NotImplementedError()


def weight_nbytes(model: Module) -> int:
    """Bytes of every weight in the model: float32 for Linear/Conv2d, int8 + float32 scales when quantized."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: quantize a small classifier
#
# A `Sequential` of three `Linear` layers with ReLUs, with weights chosen by least squares so
# that it separates three clusters of points. Calibrate on a few batches, quantize, and
# compare: the predictions barely change and the weights are 4x smaller.

# %%
if __name__ == "__main__":
    from tinytorch.activations import ReLU
    from tinytorch.layers import Sequential
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 16)).astype(np.float32) * 2
    labels = rng.integers(0, 3, 600)
    points = (centers[labels] + rng.standard_normal((600, 16))).astype(np.float32)
    model = Sequential(Linear(16, 64), ReLU(), Linear(64, 64), ReLU(), Linear(64, 3))
    with no_grad():
        hidden = model[3](model[2](model[1](model[0](Tensor(points))))).data
    model[4].weight.data = np.linalg.lstsq(hidden, np.eye(3)[labels], rcond=None)[0].T.astype(np.float32)
    int8_model = quantize(model, [points[i:i + 100] for i in range(0, 300, 100)])
    print(int8_model)
    with no_grad():
        float_accuracy = (model(Tensor(points)).data.argmax(1) == labels).mean()
    int8_accuracy = (int8_model(Tensor(points)).data.argmax(1) == labels).mean()
    print(f"accuracy: float {float_accuracy:.3f}, int8 {int8_accuracy:.3f}; weights: "
          f"{weight_nbytes(model):,} bytes -> {weight_nbytes(int8_model):,} bytes "
          f"({weight_nbytes(model) / weight_nbytes(int8_model):.2f}x smaller)")

# %% [markdown]
# ## Systems insight: 4x smaller is certain, faster is up to the hardware
#
# **Memory.** An int8 weight is 1 byte instead of 4: `qweight.nbytes * 4 ==
# weight.nbytes`, exactly. The scales cost 4 bytes per output channel, so MNIST's `784 ->
# 256 -> 10` MLP goes from 813,056 bytes to 203,264 + 1,064 = 204,328 bytes: 3.98x smaller.
# (The 2018 systems milestone asks for at least 3.9x with at most half a point of accuracy
# lost.) Memory is often the real limit: a 7-billion-parameter language model needs 28 GB in
# float32, 7 GB in int8, and generating each token reads every weight once, so 4x fewer bytes
# means up to 4x more tokens per second when memory bandwidth is the bottleneck, as it usually
# is.
#
# **Speed.** Integer hardware is cheaper per operation (an 8-bit multiplier is a small
# fraction of a 32-bit float multiplier's area and energy), and CPUs (AVX-512 VNNI, Arm's
# dot-product instructions) and GPUs (int8 tensor cores) have instructions that do many
# int8 products into int32 sums at once. numpy has none of them: its integer `@` is a plain
# loop, without the decades of BLAS tuning behind its float `@`. So *on your machine, in
# numpy*, the integer model is no faster than the float one, and usually several times slower.
# The cell measures both on your machine: the same sums, computed by very different code. The lesson is the one of module 14: what counts is what the
# hardware does with your numbers, not how many operations a formula has.
#
# **Error.** Each halving of the step (one more bit) halves the worst-case rounding error;
# the cell quantizes the same weights with grids of 4, 6 and 8 bits and prints the mean
# relative error: about 4x smaller for every 2 bits.

# %%
if __name__ == "__main__":
    import time

    rng = np.random.default_rng(2)
    activations = rng.integers(-128, 128, (256, 784)).astype(np.int8)
    weights = rng.integers(-127, 128, (256, 784)).astype(np.int8)

    def best_time(function, repeats: int = 3) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return min(times)

    int_seconds = best_time(lambda: integer_matmul(activations, 3, weights))
    a32, w32 = activations.astype(np.float32), weights.astype(np.float32)
    float_seconds = best_time(lambda: a32 @ w32.T)
    print(f"(256 x 784) @ (784 x 256): int32 sums {int_seconds * 1e3:.1f} ms, float32 BLAS "
          f"{float_seconds * 1e3:.2f} ms ({int_seconds / float_seconds:.0f}x)")
    print("float32 bytes", w32.nbytes, "int8 bytes", weights.nbytes, "ratio", w32.nbytes / weights.nbytes)

    w = rng.standard_normal((256, 784)).astype(np.float32)
    for bits in (4, 6, 8):
        levels = 2 ** (bits - 1) - 1
        step = np.abs(w).max(axis=1, keepdims=True) / levels
        w_hat = np.clip(np.round(w / step), -levels, levels) * step
        print(f"{bits} bits: mean relative error {np.abs(w_hat - w).mean() / np.abs(w).mean():.4f}")

# %% [markdown]
# ## Checkpoint
#
# `tito check 15` runs `tests/checkpoints/test_15_quantization.py`. It compares your int8
# values with `torch.quantize_per_tensor` and `torch.quantize_per_channel` (`int_repr()`),
# including values clamped at both ends and per-channel axes 0, 1 and of 4-D weights;
# `dequantize` with the closed form, including zero points that overflow int8 arithmetic;
# the round-trip error (at most half a step inside the grid) on values drawn by Hypothesis;
# `choose_qparams` with PyTorch's `MinMaxObserver` and `PerChannelMinMaxObserver`,
# symmetric and asymmetric, that 0.0 is exact and that an all-zero range gets scale `EPS`; `minmax_range` and `percentile_range`
# with `torch.amin`/`amax` and `torch.quantile`, per tensor and per channel; the `Observer`
# over several batches; `fake_quantize` and its straight-through gradient with
# `torch.fake_quantize_per_channel_affine` in float64; `integer_matmul` with exact int64
# products (int32 results, sums far beyond int16); `QuantizedLinear` and `QuantizedConv2d`
# (stride, padding with a nonzero zero point) with a float64 PyTorch layer on fake-quantized
# inputs and weights; `quantize` on MLPs and a small CNN against a PyTorch model calibrated
# with PyTorch's observers (min/max and percentile), the replacement of every layer wherever
# it sits, an untouched original, calibration with dropout off, accuracy kept on a small
# classification task; and `weight_nbytes`,
# exactly 4x smaller for the weights and at least 3.9x with the scales for an MNIST-sized MLP.
