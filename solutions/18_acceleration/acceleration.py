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
# # Module 18: Acceleration
#
# Your LeNet trains. Module 09 already replaced six nested loops by one matrix multiplication,
# a speed-up of a thousand. Is it fast now? Compare it with PyTorch: `bench/lenet_step.py`
# times one training step of the 1998 milestone's LeNet (conv 1->16, pool, conv 16->32, pool,
# three Linear layers; batch 64; forward, cross-entropy, backward, Adam) in both frameworks,
# in one run, with the same number of threads, and breaks the time down by operation. On one
# CPU thread it reads roughly like this (milliseconds per step; your machine will differ, the
# proportions less so):
#
# | where the time goes (module 09's reference, a profile of 10 steps) | ms per step |
# | --- | --- |
# | im2col copies (the `reshape` of the transposed windows view) | ~16 |
# | `scatter_windows` (conv backward, and max-pool backward) | ~12 |
# | max pooling: `argmax`, `take_along_axis`, the one-hot backward | ~11 |
# | the matrix products, with their transposes and the padding | ~16 |
# | everything else (Linear, ReLU, loss, Adam, the autograd walk) | ~6 |
#
# The arithmetic, the part a CPU is built for, is a quarter of the step. The rest is numpy
# *moving* numbers: copying windows, scattering gradients, reducing tiny 2x2 blocks. And on a
# machine whose cores are shared, multi-threaded BLAS on matrices this small can be slower
# than one thread (the bench's `--threads` option shows it): a speed-up is something you
# measure, under stated conditions, never something you assume.
#
# This module makes the hot paths fast, each trick taught against the slow version it
# replaces and checked equal to it:
#
# | trick | replaces | checked against |
# | --- | --- | --- |
# | **batch-last im2col**: long contiguous copies, one GEMM per layer | module 09's window view and scatter | six loops (`conv2d_naive`), torch |
# | **fused conv + bias + ReLU**, one node with a hand-written backward | three nodes | torch |
# | **non-overlapping max pooling by strided slabs** | windows, `argmax`, scatter | torch, module 09 |
# | **fused softmax-cross-entropy** that keeps its probabilities | module 04 + 05's loss | torch, module 04 |
# | **fused LayerNorm** with a hand-written backward | eight recorded nodes (module 13) | torch, module 13 |
# | **fused attention**, batched over every head, one node | a loop over heads | a per-head loop, torch |
#
# and `accelerate(model)`, which swaps these into a model you already built, sharing its
# parameter Tensors, so the optimizer you made before keeps working. **Float32 end to end**:
# every function keeps its input's dtype (a float64 input stays float64, which is how the
# checkpoint compares with PyTorch at 1e-10), and never promotes float32 to float64 on the
# way, which would halve the speed of every matmul.

# %%
from __future__ import annotations

import ctypes
import ctypes.util
import math
from typing import Any

import numpy as np

import tinytorch.autograd  # noqa: F401  (gradients for the Tensor operations used below)
from tinytorch.activations import ReLU
from tinytorch.attention import mask_to_bias
from tinytorch.autograd import Function, needs_grad, record, unbroadcast
from tinytorch.layers import Module, Sequential
from tinytorch.spatial import Conv2d, MaxPool2d
from tinytorch.tensor import Tensor
from tinytorch.transformers import CausalSelfAttention, LayerNorm, apply_rope


def _two(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """An (h, w) pair of ints from one int or a pair, like torch's kernel_size/stride/padding."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, not {value!r}")
    return int(pair[0]), int(pair[1])


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """How many times a kernel fits along one axis: (size + 2 padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


# %% [markdown]
# ## 1. Layout is speed
#
# numpy does its work in C loops, but every *innermost* loop is entered from an outer
# iteration that costs a few nanoseconds. Copying a `(64, 16, 10, 10)` block out of a larger
# array whose rows are 14 wide means 10,240 inner loops of 10 numbers each: the overhead is
# paid 10,240 times for very little work each time. The same 102,400 numbers laid out so that
# they are one contiguous run are copied in a single loop, about ten times faster. (The cell
# below measures it.)
#
# Module 09's im2col has exactly this problem. Its windows view is transposed to
# `(N, H_out, W_out, C, kH, kW)` and reshaped: a copy whose innermost run is `kW = 5` numbers.
# Its backward scatters 25 slabs whose runs are `W_out` (10 or 28) numbers, read from a
# gradient matrix where consecutive numbers of a slab are `C * kH * kW` apart.
#
# The cure is to choose the layout for the loops you will run. Put the **batch axis last**:
#
# ```
# x (N, C, H, W)  ->  xt (C, H_pad, W_pad, N)      one transposing copy, with the zero padding
# ```
#
# Now the window of kernel offset `(p, q)` at every output position of every image,
# `xt[:, p : p + H_out, q : q + W_out, :]`, has innermost runs of `W_out * N` numbers
# (640 for LeNet's second layer), and so do the 25 slabs of the backward. This is the CHWN
# layout of cuda-convnet, the library of AlexNet (2012).
#
# **`im2col(x, kernel_size, stride, padding)`** builds the matrix
#
# ```
# cols (C * kH * kW, H_out * W_out * N)     cols[(c, p, q), (i, j, n)] = x_pad[n, c, i*s + p, j*s + q]
# ```
#
# with one copy per kernel offset: allocate `cols` as `(C, kH, kW, H_out, W_out, N)` and fill
# `cols[:, p, q]` with the strided slab `xt[:, p : p + s*(H_out - 1) + 1 : s, q : ... : s, :]`.
# Then the convolution of all N images is **one** matrix product,
# `weight.reshape(C_out, C * kH * kW) @ cols`, of shape `(C_out, H_out * W_out * N)`.
# (The row order `(c, p, q)` is exactly the order of `weight.reshape(C_out, -1)`'s columns.)
#
# **`col2im(dcols, x_shape, kernel_size, stride, padding)`** is its adjoint, the backward of
# im2col: each entry of `dcols` goes back, *added*, to the pixel it was copied from (windows
# overlap, so a pixel collects from up to `kH * kW` entries). The same 25 slabs, with `+=`,
# into a zero `(C, H_pad, W_pad, N)` array; then cut off the padding and transpose back to
# `(N, C, H, W)`.
#
# Keep the dtype of the input everywhere (`np.zeros(..., dtype=x.dtype)`): float32 in, float32
# out.

# %% nbgrader={"grade": false, "grade_id": "im2col", "locked": false, "schema_version": 3, "solution": true, "task": false}
def im2col(x: Any, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, int] = 0) -> np.ndarray:
    """x (N, C, H, W) -> cols (C*kH*kW, H_out*W_out*N), batch last: one column per output position."""
    x = x.data if isinstance(x, Tensor) else np.asarray(x)
    (kh, kw), (sh, sw), (ph, pw) = _two(kernel_size, "kernel_size"), _two(stride, "stride"), _two(padding, "padding")
    n, c, h, w = x.shape
    h_out, w_out = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    ### BEGIN SOLUTION
    xt = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    xt[:, ph:ph + h, pw:pw + w, :] = x.transpose(1, 2, 3, 0)
    cols = np.empty((c, kh, kw, h_out, w_out, n), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, p, q] = xt[:, p:p + sh * (h_out - 1) + 1:sh, q:q + sw * (w_out - 1) + 1:sw, :]
    return cols.reshape(c * kh * kw, h_out * w_out * n)
    ### END SOLUTION


def col2im(dcols: np.ndarray, x_shape: tuple[int, int, int, int], kernel_size: int | tuple[int, int],
           stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0) -> np.ndarray:
    """The adjoint of im2col: add each entry of dcols (C*kH*kW, H_out*W_out*N) back into x_shape (N, C, H, W)."""
    (kh, kw), (sh, sw), (ph, pw) = _two(kernel_size, "kernel_size"), _two(stride, "stride"), _two(padding, "padding")
    n, c, h, w = x_shape
    h_out, w_out = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    ### BEGIN SOLUTION
    slabs = dcols.reshape(c, kh, kw, h_out, w_out, n)
    dxt = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=dcols.dtype)
    for p in range(kh):
        for q in range(kw):
            dxt[:, p:p + sh * (h_out - 1) + 1:sh, q:q + sw * (w_out - 1) + 1:sw, :] += slabs[:, p, q]
    return np.ascontiguousarray(dxt[:, ph:ph + h, pw:pw + w, :].transpose(3, 0, 1, 2))
    ### END SOLUTION


# %%
if __name__ == "__main__":
    import time

    def per_call_ms(action, repeats: int = 20, rounds: int = 5) -> float:
        """The best of `rounds` averages over `repeats` calls (the least disturbed by other programs)."""
        action()
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(repeats):
                action()
            best = min(best, (time.perf_counter() - start) / repeats * 1e3)
        return best

    big = np.random.default_rng(0).standard_normal((64, 16, 14, 14)).astype(np.float32)
    short_runs = big[:, :, 2:12, 2:12]                        # inner runs of 10 numbers
    one_run = np.ascontiguousarray(short_runs)                # the same numbers, one run
    print(f"copy 102,400 numbers in runs of 10: {per_call_ms(lambda: short_runs.copy()):.3f} ms; "
          f"as one run: {per_call_ms(lambda: one_run.copy()):.3f} ms")
    target = np.zeros_like(big)
    print(f"add them into a (.., 14, 14) image, runs of 10: "
          f"{per_call_ms(lambda: target[:, :, 2:12, 2:12].__iadd__(one_run)):.3f} ms")

# %% [markdown]
# ## 2. The fused convolution: conv + bias + ReLU, one node
#
# In LeNet every convolution is followed by a bias and a ReLU. Module 09 records the
# convolution (with its bias) as one node and module 02's ReLU as another, which allocates
# a second `(N, C_out, H_out, W_out)` array and, in backward, multiplies the gradient by a
# mask in a separate pass. **Fusion** does both in the convolution's own node:
#
# ```
# forward:   out = W2 @ cols + bias[:, None]         (C_out, H_out * W_out * N)
#            if relu: out = max(out, 0), in place
#            result = out.reshape(C_out, H_out, W_out, N), transposed to (N, C_out, H_out, W_out)
# backward:  g = grad, and if relu: g = g * (result > 0)     (ReLU's derivative, from the output)
#            gt = g transposed to (C_out, H_out, W_out, N), as a (C_out, H_out * W_out * N) matrix
#            dweight = (gt @ cols.T).reshape(weight.shape)
#            dbias   = gt.sum(axis=1)
#            dx      = col2im(W2.T @ gt, x.shape, ...)       only if x requires grad
# ```
#
# `result > 0` is exactly where the pre-activation was positive, so the output is all the
# ReLU needs to remember (0 gradient at exactly 0, like module 05's ReLU). Keep `cols` on the
# node: backward needs it for `dweight`.
#
# `conv2d_fast(x, weight, bias=None, stride=1, padding=0, relu=False)` takes what module
# 09's `conv2d` takes (and checks the same shapes, in the given `_check_conv`), plus `relu`.
# Return one gradient per input of the Function: `(dx, dweight)` without a bias,
# `(dx, dweight, dbias)` with one; `dx` is None when `x` does not require grad (the images
# of the first layer never do: skipping their col2im is free speed).

# %%
def _check_conv(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any):
    """(kernel, stride, padding) pairs, with module 09's shape errors."""
    (sh, sw), (ph, pw) = _two(stride, "stride"), _two(padding, "padding")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"conv2d_fast: stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv2d_fast: x must be (N, C_in, H, W) and weight (C_out, C_in, kH, kW); "
                         f"got {x.shape} and {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d_fast: x has {x.shape[1]} channels (shape {x.shape}) but weight expects "
                         f"{weight.shape[1]} (shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"conv2d_fast: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    kh, kw = weight.shape[2:]
    if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
        raise ValueError(f"conv2d_fast: the {kh}x{kw} kernel is larger than the padded input of {x.shape}")
    return (kh, kw), (sh, sw), (ph, pw)


class FastConv2dFn(Function):
    """conv2d_fast: inputs (x, weight) or (x, weight, bias); keeps the batch-last `cols`."""

    def __init__(self, x: Tensor, weight: Tensor, bias: Tensor | None, *, stride: tuple[int, int],
                 padding: tuple[int, int], relu: bool, cols: np.ndarray) -> None:
        super().__init__(*((x, weight) if bias is None else (x, weight, bias)))
        self.stride, self.padding, self.relu, self.cols = stride, padding, relu, cols


# %% nbgrader={"grade": false, "grade_id": "conv2d-fast", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv2d_fast(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
                padding: int | tuple[int, int] = 0, relu: bool = False) -> Tensor:
    """Module 09's conv2d (then ReLU when relu=True) as one node: x (N, C_in, H, W) -> (N, C_out, H_out, W_out)."""
    x, weight = _tensor(x), _tensor(weight)
    bias = None if bias is None else _tensor(bias)
    kernel, (sh, sw), (ph, pw) = _check_conv(x, weight, bias, stride, padding)
    ### BEGIN SOLUTION
    n, c_out = x.shape[0], weight.shape[0]
    h_out = conv_output_size(x.shape[2], kernel[0], sh, ph)
    w_out = conv_output_size(x.shape[3], kernel[1], sw, pw)
    cols = im2col(x.data, kernel, (sh, sw), (ph, pw))
    out = weight.data.reshape(c_out, -1) @ cols
    if bias is not None:
        out += bias.data.reshape(c_out, 1)
    if relu:
        np.maximum(out, 0, out=out)
    out = np.ascontiguousarray(out.reshape(c_out, h_out, w_out, n).transpose(3, 0, 1, 2))
    result = Tensor(out)
    if needs_grad(x, weight, bias):
        record(result, FastConv2dFn(x, weight, bias, stride=(sh, sw), padding=(ph, pw), relu=relu, cols=cols))
    return result
    ### END SOLUTION


def _fast_conv2d_backward(self: FastConv2dFn, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
    """dL/dx (None when x needs no grad), dL/dweight and, with a bias, dL/dbias."""
    x, weight = self.inputs[0], self.inputs[1]
    ### BEGIN SOLUTION
    c_out = weight.shape[0]
    if self.relu:
        grad = grad * (self.output > 0)
    gt = np.ascontiguousarray(grad.transpose(1, 2, 3, 0)).reshape(c_out, -1)
    dweight = (gt @ self.cols.T).reshape(weight.shape)
    dx = None
    if x.requires_grad:
        dcols = weight.data.reshape(c_out, -1).T @ gt
        dx = col2im(dcols, x.shape, weight.shape[2:], self.stride, self.padding)
    if len(self.inputs) == 2:
        return dx, dweight
    return dx, dweight, gt.sum(axis=1)
    ### END SOLUTION


FastConv2dFn.backward = _fast_conv2d_backward

# %% [markdown]
# ## 3. Max pooling without windows
#
# Module 09 pools through the windows view: reshape every window to `kH * kW` numbers (a
# copy), `argmax`, `take_along_axis`; backward builds a one-hot array five axes deep and
# scatters it. For the pooling everyone uses, **non-overlapping** windows (stride equal to the
# kernel, LeNet's 2x2), there is a simpler view. Pixel `(p, q)` of every window is the strided
# slab
#
# ```
# slab(a, p, q) = a[:, :, p : p + kH*H_out : kH, q : q + kW*W_out : kW]      (N, C, H_out, W_out)
# ```
#
# so the maximum is `kH * kW` elementwise `np.maximum`s of slabs (four for 2x2), with no copy
# of the input at all. `H_out = H // kH`: trailing rows and columns that do not fill a window
# are ignored, as in PyTorch.
#
# **Backward, and ties.** The gradient of each window goes to its maximum. When several
# pixels tie (after a ReLU, a window of zeros is common), PyTorch and module 09 choose the
# **first** in row-major order. Walk the offsets in that order, `p` then `q`, carrying the
# gradient each window has still to hand out, `remaining` (a copy of `grad` at first): at each
# offset, `hit = slab(x, p, q) == output`, write `remaining * hit` into `slab(dx, p, q)`, then
# `remaining *= ~hit`. A window's gradient goes to its first maximum and is gone for any later
# tie.
#
# Overlapping windows (stride smaller than the kernel) are not this function's business: it
# raises a ValueError, and `accelerate` leaves such a `MaxPool2d` alone.

# %%
class FastMaxPool2dFn(Function):
    """max_pool2d_fast(x): non-overlapping windows; the output array says where the maxima are."""

    def __init__(self, x: Tensor, *, kernel_size: tuple[int, int]) -> None:
        super().__init__(x)
        self.kernel_size = kernel_size


def _slab(a: np.ndarray, p: int, q: int, kernel: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Pixel (p, q) of every kH x kW window of a (N, C, H, W): a strided view (N, C, H_out, W_out)."""
    (kh, kw), (h_out, w_out) = kernel, out_hw
    return a[:, :, p:p + kh * h_out:kh, q:q + kw * w_out:kw]


# %% nbgrader={"grade": false, "grade_id": "max-pool-fast", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_pool2d_fast(x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None) -> Tensor:
    """Max pooling over non-overlapping kH x kW windows (stride = kernel): (N, C, H, W) -> (N, C, H//kH, W//kW)."""
    x = _tensor(x)
    kh, kw = _two(kernel_size, "kernel_size")
    if stride is not None and _two(stride, "stride") != (kh, kw):
        raise ValueError(f"max_pool2d_fast pools non-overlapping windows only: stride {stride} must equal "
                         f"kernel_size {kernel_size} (use module 09's max_pool2d for overlapping ones)")
    if x.ndim != 4 or x.shape[2] < kh or x.shape[3] < kw or kh < 1 or kw < 1:
        raise ValueError(f"max_pool2d_fast: x must be (N, C, H, W) with H >= {kh} and W >= {kw}, got {x.shape}")
    out_hw = (x.shape[2] // kh, x.shape[3] // kw)
    ### BEGIN SOLUTION
    out = _slab(x.data, 0, 0, (kh, kw), out_hw).copy()
    for p in range(kh):
        for q in range(kw):
            if p or q:
                np.maximum(out, _slab(x.data, p, q, (kh, kw), out_hw), out=out)
    result = Tensor(out)
    if needs_grad(x):
        record(result, FastMaxPool2dFn(x, kernel_size=(kh, kw)))
    return result
    ### END SOLUTION


def _fast_max_pool2d_backward(self: FastMaxPool2dFn, grad: np.ndarray) -> tuple[np.ndarray]:
    """dL/dx: each window's gradient goes to its first maximum in row-major order; zero elsewhere."""
    (x,), (kh, kw) = self.inputs, self.kernel_size
    out_hw = self.output.shape[2:]
    ### BEGIN SOLUTION
    dx = np.zeros(x.shape, dtype=grad.dtype)
    remaining = grad.copy()
    for p in range(kh):
        for q in range(kw):
            hit = _slab(x.data, p, q, (kh, kw), out_hw) == self.output
            _slab(dx, p, q, (kh, kw), out_hw)[...] = remaining * hit
            remaining *= ~hit
    return (dx,)
    ### END SOLUTION


FastMaxPool2dFn.backward = _fast_max_pool2d_backward

# %% [markdown]
# ## 4. Fused softmax-cross-entropy
#
# Module 04 builds cross-entropy from Tensor operations (max, subtract, exp, sum, log,
# gather) and module 05 gives the whole loss one fused backward, `softmax - onehot`, which
# computes the softmax a second time. The fused loss computes the stable log-softmax once,
# **keeps the probabilities** on its node, and its backward is one subtraction:
#
# ```
# shifted = z - max(z, row)               e = exp(shifted),  s = sum(e, row)
# loss_n  = log(s_n) - shifted[n, y_n]    probs = e / s
# dL/dz   = (probs - onehot(y)) * g_n     g_n = g / N for "mean", g for "sum", g[n] for "none"
# ```
#
# `cross_entropy_fast(logits, target, reduction="mean")` takes logits `(N, C)` and integer
# labels `(N,)` (the given checks raise module 04's errors) and returns the loss in the
# logits' dtype: a 0-d Tensor for "mean" and "sum", `(N,)` for "none". The labels get no
# gradient (return None for them). `FusedCrossEntropyLoss(reduction)` is the layer,
# a drop-in for module 04's `CrossEntropyLoss`.

# %%
REDUCTIONS = ("mean", "sum", "none")


class FusedCrossEntropyFn(Function):
    """cross_entropy_fast(logits, target): keeps softmax(logits) as `probs`."""

    def __init__(self, logits: Tensor, target: Tensor, *, probs: np.ndarray, reduction: str) -> None:
        super().__init__(logits, target)
        self.probs, self.reduction = probs, reduction


def _check_cross_entropy(logits: Tensor, target: Tensor, reduction: str) -> np.ndarray:
    """The labels as an integer array, with module 04's errors for bad shapes and labels."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy_fast: reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy_fast takes logits of shape (N, C), got shape {logits.shape}")
    labels = target.data
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"cross_entropy_fast: logits of shape {logits.shape} need targets of shape "
                         f"({logits.shape[0]},), got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy_fast: targets are class indices and must be integers, got {labels.dtype}")
    bad = labels[(labels < 0) | (labels >= logits.shape[1])]
    if bad.size:
        raise ValueError(f"cross_entropy_fast: label {bad[0]} is out of range for {logits.shape[1]} classes")
    return labels


# %% nbgrader={"grade": false, "grade_id": "cross-entropy-fast", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cross_entropy_fast(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of logits (N, C) against integer labels (N,), as one node that keeps softmax(logits)."""
    logits, target = _tensor(logits), _tensor(target)
    labels = _check_cross_entropy(logits, target, reduction)
    ### BEGIN SOLUTION
    z = logits.data
    rows = np.arange(z.shape[0])
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    sums = e.sum(axis=1, keepdims=True)
    losses = np.log(sums[:, 0]) - shifted[rows, labels]
    if reduction == "mean":
        losses = losses.mean()
    elif reduction == "sum":
        losses = losses.sum()
    result = Tensor(np.asarray(losses, dtype=z.dtype))
    if needs_grad(logits):
        record(result, FusedCrossEntropyFn(logits, target, probs=e / sums, reduction=reduction))
    return result
    ### END SOLUTION


def _fused_cross_entropy_backward(self: FusedCrossEntropyFn, grad: np.ndarray) -> tuple[np.ndarray, None]:
    """(probs - onehot(labels)) times each example's share of the gradient; None for the labels."""
    labels = self.inputs[1].data
    ### BEGIN SOLUTION
    n = self.probs.shape[0]
    d = self.probs.copy()
    d[np.arange(n), labels] -= 1
    if self.reduction == "mean":
        d *= grad / n
    elif self.reduction == "sum":
        d *= grad
    else:
        d *= grad[:, np.newaxis]
    return d, None
    ### END SOLUTION


FusedCrossEntropyFn.backward = _fused_cross_entropy_backward


class FusedCrossEntropyLoss(Module):
    """Module 04's CrossEntropyLoss as one fused node (logits (N, C), integer labels (N,))."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"FusedCrossEntropyLoss: reduction must be one of {', '.join(REDUCTIONS)}")
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return cross_entropy_fast(logits, target, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


# %% [markdown]
# ## 5. Fused LayerNorm, with a hand-written backward
#
# Module 13 writes LayerNorm with Tensor operations: mean, subtract, var, add eps, sqrt,
# divide, multiply, add. Eight nodes, eight arrays of the input's size kept for backward,
# and a backward that walks all eight (the variance's node alone recomputes the mean). One
# node instead: over the last axis of size `D`,
#
# ```
# mean = x.mean(-1)        xc = x - mean        var = (xc * xc).mean(-1)
# rstd = 1 / sqrt(var + eps)                   xhat = xc * rstd
# y    = xhat * weight + bias
# ```
#
# and keep `xhat` and `rstd`. The backward is worth deriving once. With `gh = g * weight` (the
# gradient reaching `xhat`), and remembering that `mean` and `rstd` depend on every `x` of the
# row:
#
# ```
# dx      = rstd * (gh - mean(gh, -1) - xhat * mean(gh * xhat, -1))
# dweight = sum of g * xhat over every axis but the last
# dbias   = sum of g over every axis but the last
# ```
#
# The two means are the two corrections: the first because shifting every input of a row by
# the same amount changes nothing (the mean removes it), the second because scaling a row
# changes nothing either (the normalisation removes it). So `dx` is `gh` with its components
# along "all ones" and along `xhat` projected out, scaled by `rstd`.
#
# `layer_norm_fast(x, weight, bias=None, eps=1e-5)`: `weight` and `bias` of shape `(D,)`;
# the result has `x`'s shape and the dtype numpy gives `x` and `weight` together.

# %%
class FusedLayerNormFn(Function):
    """layer_norm_fast: inputs (x, weight) or (x, weight, bias); keeps xhat and rstd."""

    def __init__(self, x: Tensor, weight: Tensor, bias: Tensor | None, *, xhat: np.ndarray,
                 rstd: np.ndarray) -> None:
        super().__init__(*((x, weight) if bias is None else (x, weight, bias)))
        self.xhat, self.rstd = xhat, rstd


# %% nbgrader={"grade": false, "grade_id": "layer-norm-fast", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layer_norm_fast(x: Tensor, weight: Tensor, bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased var), as one node."""
    x, weight = _tensor(x), _tensor(weight)
    bias = None if bias is None else _tensor(bias)
    if weight.shape != (x.shape[-1],) or (bias is not None and bias.shape != (x.shape[-1],)):
        raise ValueError(f"layer_norm_fast: weight and bias must have shape ({x.shape[-1]},), the size of x's "
                         f"last axis; got x {x.shape}, weight {weight.shape}"
                         f"{'' if bias is None else f', bias {bias.shape}'}")
    ### BEGIN SOLUTION
    data = x.data
    centered = data - data.mean(axis=-1, keepdims=True)
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(variance + eps)
    xhat = centered * rstd
    out = xhat * weight.data
    if bias is not None:
        out = out + bias.data
    result = Tensor(out)
    if needs_grad(x, weight, bias):
        record(result, FusedLayerNormFn(x, weight, bias, xhat=xhat, rstd=rstd))
    return result
    ### END SOLUTION


def _fused_layer_norm_backward(self: FusedLayerNormFn, grad: np.ndarray) -> tuple[np.ndarray, ...]:
    """dL/dx, dL/dweight and, with a bias, dL/dbias."""
    weight = self.inputs[1]
    xhat, rstd = self.xhat, self.rstd
    ### BEGIN SOLUTION
    d = xhat.shape[-1]
    gh = grad * weight.data
    dx = rstd * (gh - gh.mean(axis=-1, keepdims=True) - xhat * (gh * xhat).mean(axis=-1, keepdims=True))
    dweight = (grad * xhat).reshape(-1, d).sum(axis=0)
    if len(self.inputs) == 2:
        return dx, dweight
    return dx, dweight, grad.reshape(-1, d).sum(axis=0)
    ### END SOLUTION


FusedLayerNormFn.backward = _fused_layer_norm_backward

# %% [markdown]
# ## 6. Attention: every head at once, one node
#
# Attention has `B * H` independent problems, one per sequence and head. The slow way loops
# over them, one small matrix product each: `attention_per_head` below (given, plain numpy,
# no gradient) is that loop, and the oracle for what follows. The fast way treats the
# leading axes as a *batch*: `q @ k.swapaxes(-1, -2)` on `(B, H, T, d)` arrays is one call
# that runs all `B * H` products inside numpy. Module 12 already does that, but as a chain of
# recorded nodes (transpose, matmul, scale, add the mask, softmax, matmul), each keeping its
# own arrays. `fused_attention` is one node:
#
# ```
# forward:   s = (q @ k^T) * scale + bias          scale = 1 / sqrt(d); bias from mask_to_bias
#            w = softmax(s, -1)                    rows that may read no key: w = 0 (module 12)
#            out = w @ v                           keep w for backward
# backward:  dv = w^T @ g                          dw = g @ v^T
#            ds = w * (dw - sum(dw * w, -1))       softmax's backward, without its Jacobian
#            dq = ds @ k * scale                   dk = ds^T @ q * scale
# ```
#
# (`^T` swaps the last two axes.) Use module 12's `mask_to_bias(attn_mask, is_causal, Tq, Tk,
# dtype)` for the mask, and its rule for fully-masked rows: set their bias to 0 before the
# softmax and their weights to 0 after, so they give zeros, and zero gradient. `q`, `k`, `v`
# may broadcast in their leading axes (one `k` for every head, say): end each gradient with
# module 05's `unbroadcast(grad, input.shape)`.

# %%
def attention_per_head(q: Any, k: Any, v: Any, attn_mask: Any = None, is_causal: bool = False) -> Tensor:
    """The slow oracle: softmax(q k^T / sqrt(d) + mask) v, one (Tq, d) x (d, Tk) product per head, in a loop."""
    q, k, v = (a.data if isinstance(a, Tensor) else np.asarray(a) for a in (q, k, v))
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    tq, tk = q.shape[-2], k.shape[-2]
    q, k, v = (np.broadcast_to(a, lead + a.shape[-2:]) for a in (q, k, v))
    bias = mask_to_bias(attn_mask, is_causal, tq, tk, np.result_type(q, k))
    bias = np.broadcast_to(np.zeros((tq, tk)) if bias is None else bias, lead + (tq, tk))
    out = np.zeros(lead + (tq, v.shape[-1]), dtype=np.result_type(q, k, v))
    for index in np.ndindex(*lead):                      # every sequence, every head
        scores = q[index] @ k[index].T / math.sqrt(q.shape[-1]) + bias[index]
        for row in range(tq):
            if np.all(scores[row] == -np.inf):
                continue                                 # a query that may read nothing gets zeros
            weights = np.exp(scores[row] - scores[row].max())
            out[index][row] = (weights / weights.sum()) @ v[index]
    return Tensor(out)


class FusedAttentionFn(Function):
    """fused_attention(q, k, v): keeps the attention weights and the scale."""

    def __init__(self, q: Tensor, k: Tensor, v: Tensor, *, weights: np.ndarray, scale: float) -> None:
        super().__init__(q, k, v)
        self.weights, self.scale = weights, scale


def _check_attention(q: Tensor, k: Tensor, v: Tensor) -> None:
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"fused_attention needs q, k, v of at least 2 axes (..., T, d); got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"fused_attention: queries {q.shape} and keys {k.shape} must share their last axis d")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"fused_attention: keys {k.shape} and values {v.shape} must have the same number of positions")


# %% nbgrader={"grade": false, "grade_id": "fused-attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def fused_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Any = None, is_causal: bool = False) -> Tensor:
    """softmax(q @ k^T / sqrt(d) + mask) @ v for every leading (batch, head) index at once, as one node."""
    q, k, v = _tensor(q), _tensor(k), _tensor(v)
    _check_attention(q, k, v)
    ### BEGIN SOLUTION
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q.data @ np.swapaxes(k.data, -1, -2)) * scale
    bias = mask_to_bias(attn_mask, is_causal, q.shape[-2], k.shape[-2], scores.dtype)
    dead = None
    if bias is not None:
        dead = np.all(bias == -np.inf, axis=-1, keepdims=True)
        scores = scores + np.where(dead, 0.0, bias).astype(scores.dtype)
    scores -= scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    if dead is not None and dead.any():
        weights = weights * ~dead
    result = Tensor(weights @ v.data)
    if needs_grad(q, k, v):
        record(result, FusedAttentionFn(q, k, v, weights=weights, scale=scale))
    return result
    ### END SOLUTION


def _fused_attention_backward(self: FusedAttentionFn, grad: np.ndarray) -> tuple[np.ndarray, ...]:
    """dL/dq, dL/dk, dL/dv, each summed back to its input's shape."""
    q, k, v = self.inputs
    w, scale = self.weights, self.scale
    ### BEGIN SOLUTION
    dv = np.swapaxes(w, -1, -2) @ grad
    dw = grad @ np.swapaxes(v.data, -1, -2)
    ds = w * (dw - (dw * w).sum(axis=-1, keepdims=True))
    dq = (ds @ k.data) * scale
    dk = (np.swapaxes(ds, -1, -2) @ q.data) * scale
    return unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape)
    ### END SOLUTION


FusedAttentionFn.backward = _fused_attention_backward

# %% [markdown]
# ## 7. Allocation is not free: keep freed memory
#
# Time the three steps of `conv2d_fast` one by one (im2col, the product, the transpose) and
# they add up to a third of what the whole call takes inside a training step. The rest is
# spent *between* them, in memory the operating system hands over. A numpy array of more
# than 128 KiB is, by default, its own `mmap` from the operating system, and glibc's
# `malloc` gives it back (`munmap`, or a trim of the heap) as soon as it is freed. The next
# step asks for the same megabytes again and gets *fresh* pages, and the first write to each
# 4 KiB page is a page fault: the kernel stops the program, finds a page, fills it with zeros.
# For LeNet's first layer (a 5 MB `cols`, two 3 MB outputs) that is thousands of faults per
# step, every step.
#
# PyTorch never pays this twice: its allocator keeps freed blocks and hands them out again.
# numpy asks `malloc` every time, but `malloc` can be told to keep what is freed:
# `mallopt(M_MMAP_THRESHOLD, 32 MiB)` serves blocks up to 32 MiB from the heap, and
# `mallopt(M_TRIM_THRESHOLD, 1 GiB)` stops it from giving the heap's free top back to the
# system. After one step, every later step finds its blocks already mapped. The price is
# memory: the process keeps its peak footprint instead of shrinking between steps, which is
# what a training loop wants anyway.
#
# `reuse_freed_memory()` (given) does this through `ctypes`, Python's door to C libraries,
# on Linux with glibc; elsewhere it changes nothing and returns False. It is a setting of the
# whole process (every array, not only tinytorch's), so `accelerate` calls it once for you.
# `bench/lenet_step.py` measures what it is worth on its own and together with the rest.

# %%
def reuse_freed_memory(keep_mib: int = 1024) -> bool:
    """Ask glibc's malloc to keep freed blocks (up to 32 MiB each, keep_mib in all) for reuse
    instead of returning them to the operating system; True if it agreed, False elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (macOS, Windows): nothing to tune
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 * 2**20)) and bool(mallopt(m_trim_threshold, keep_mib * 2**20))


# %% [markdown]
# ## 8. `accelerate(model)`: fast layers in a model you already built
#
# The fast layers below are subclasses of the layers they replace (so `isinstance(layer,
# Conv2d)` still holds, and modules 15 and 16 still recognise them), built *from* the
# original layer: they take over its settings and **the very same parameter Tensors**
# (`fast.weight is conv.weight`). That is the whole contract of `accelerate`: an optimizer
# holds references to the parameter Tensors, so one built before `accelerate` keeps updating
# the model, and `state_dict` keys do not change.
#
# | original | fast equivalent |
# | --- | --- |
# | `Conv2d` (module 09) | `FastConv2d(conv)`, with `relu=True` when a `ReLU` follows it in a `Sequential` (that `ReLU` becomes `Identity()`) |
# | `MaxPool2d` with stride = kernel | `FastMaxPool2d(pool)` (overlapping pools stay as they are) |
# | `LayerNorm` (module 13) | `FastLayerNorm(norm)` |
# | `CausalSelfAttention` (module 13) | `FastCausalSelfAttention(attn)` (module 13's path when weights or attention dropout are asked for) |
#
# `fast_equivalent(layer)` (given) returns the fast version of one layer, or the layer
# itself. `accelerate(model)` does the walk:
#
# 1. for every module in `model.modules()` (module 03: the model and everything inside it),
#    and every attribute in `vars(module)`: a layer is replaced by `fast_equivalent(layer)`
#    with `setattr`; a list (GPT's `blocks`) has its items replaced in place;
# 2. in every `Sequential`, a `Conv2d` (or a `FastConv2d` without ReLU) at position `i`
#    followed by a `ReLU` at `i + 1`: position `i` becomes `FastConv2d(conv, relu=True)` and
#    position `i + 1` an `Identity()`. Do this *before* step 1 looks at the Sequential's
#    attributes;
# 3. return the model; if the model itself is a single layer, return its fast equivalent.
#
# (`accelerate` also calls `reuse_freed_memory()` of section 7 before it starts: given.)
#
# Calling `accelerate` twice changes nothing the second time: a fast layer is its own fast
# equivalent.

# %%
class Identity(Module):
    """Returns its input: the place a fused ReLU used to be."""

    def forward(self, x: Any) -> Any:
        return x


class FastConv2d(Conv2d):
    """A Conv2d computed by conv2d_fast (optionally with the ReLU that followed it), sharing conv's Tensors."""

    def __init__(self, conv: Conv2d, relu: bool = False) -> None:
        Module.__init__(self)  # not Conv2d.__init__: that would draw new random weights
        self.training = conv.training
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self.weight, self.bias = conv.weight, conv.bias
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        return conv2d_fast(x, self.weight, self.bias, self.stride, self.padding, relu=self.relu)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", relu=True" if self.relu else "")


class FastMaxPool2d(MaxPool2d):
    """A non-overlapping MaxPool2d computed by max_pool2d_fast."""

    def __init__(self, pool: MaxPool2d) -> None:
        Module.__init__(self)
        self.training = pool.training
        self.kernel_size, self.stride = pool.kernel_size, pool.stride

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d_fast(x, self.kernel_size)


class FastLayerNorm(LayerNorm):
    """A LayerNorm computed by layer_norm_fast, sharing norm's weight and bias."""

    def __init__(self, norm: LayerNorm) -> None:
        Module.__init__(self)
        self.training = norm.training
        self.normalized_shape, self.eps = norm.normalized_shape, norm.eps
        self.weight, self.bias = norm.weight, norm.bias

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm_fast(x, self.weight, self.bias, self.eps)


class FastCausalSelfAttention(CausalSelfAttention):
    """Module 13's CausalSelfAttention with fused_attention inside, sharing its projections."""

    def __init__(self, attn: CausalSelfAttention) -> None:
        Module.__init__(self)
        self.__dict__.update({name: value for name, value in vars(attn).items() if name != "training"})
        self.training = attn.training

    def forward(self, x: Tensor, need_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if need_weights or (self.training and self.attn_dropout > 0):
            return super().forward(x, need_weights)  # module 13's path: weights, or dropout on them
        batch, steps, dim = x.shape
        q, k, v = (proj(x).reshape(batch, steps, self.n_heads, self.head_dim).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        if self.rope:
            q, k = apply_rope(q), apply_rope(k)
        heads = fused_attention(q, k, v, is_causal=True)
        return self.dropout(self.out_proj(heads.transpose(1, 2).reshape(batch, steps, dim)))


def fast_equivalent(layer: Any) -> Any:
    """The fast layer for `layer` (sharing its parameters), or `layer` itself when there is none."""
    kind = type(layer)
    if kind is Conv2d:
        return FastConv2d(layer)
    if kind is MaxPool2d and _two(layer.stride, "stride") == _two(layer.kernel_size, "kernel_size"):
        return FastMaxPool2d(layer)
    if kind is LayerNorm:
        return FastLayerNorm(layer)
    if kind is CausalSelfAttention:
        return FastCausalSelfAttention(layer)
    return layer


# %% nbgrader={"grade": false, "grade_id": "accelerate", "locked": false, "schema_version": 3, "solution": true, "task": false}
def accelerate(model: Any) -> Any:
    """Swap, in place, every layer of `model` with a fast equivalent for the fast one, sharing
    its parameter Tensors; fuse Conv2d + ReLU pairs of a Sequential. Returns the model."""
    reuse_freed_memory()  # section 7: a setting of the whole process, harmless to repeat
    ### BEGIN SOLUTION
    if not isinstance(model, Module):
        return model
    for module in model.modules():
        if isinstance(module, Sequential):
            for i in range(len(module) - 1):
                layer, following = getattr(module, str(i)), getattr(module, str(i + 1))
                fusable = type(layer) is Conv2d or (type(layer) is FastConv2d and not layer.relu)
                if fusable and isinstance(following, ReLU):
                    setattr(module, str(i), FastConv2d(layer, relu=True))
                    setattr(module, str(i + 1), Identity())
        for name, value in list(vars(module).items()):
            if isinstance(value, list):
                value[:] = [fast_equivalent(item) for item in value]
            else:
                fast = fast_equivalent(value)
                if fast is not value:
                    setattr(module, name, fast)
    return fast_equivalent(model)
    ### END SOLUTION


# %% [markdown]
# ## 9. Try it: the same LeNet, faster
#
# The milestone's LeNet, accelerated: same parameters, same outputs and gradients (up to
# float32 rounding), and the fast layers in place of the slow ones.

# %%
if __name__ == "__main__":
    from tinytorch.layers import Linear
    from tinytorch.spatial import Flatten
    from tinytorch.tensor import manual_seed

    manual_seed(0)

    def lenet() -> Sequential:
        return Sequential(Conv2d(1, 16, 5, padding=2), ReLU(), MaxPool2d(2), Conv2d(16, 32, 5), ReLU(), MaxPool2d(2),
                          Flatten(), Linear(800, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10))

    slow = lenet()
    fast = lenet()
    fast.load_state_dict(slow.state_dict())
    before = fast.parameters()
    accelerate(fast)
    print(fast)
    print("same parameter Tensors:", all(a is b for a, b in zip(before, fast.parameters())))
    rng = np.random.default_rng(0)
    images = Tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
    labels = rng.integers(0, 10, 64)
    from tinytorch.losses import CrossEntropyLoss
    slow_loss = CrossEntropyLoss()(slow(images), Tensor(labels))
    fast_loss = cross_entropy_fast(fast(images), labels)
    slow_loss.backward()
    fast_loss.backward()
    print(f"loss {slow_loss.item():.6f} vs {fast_loss.item():.6f} ({fast_loss.dtype}); largest gradient difference "
          f"{max(np.abs(a.grad.data - b.grad.data).max() for a, b in zip(slow.parameters(), fast.parameters())):.2e}")

# %% [markdown]
# ## 10. Systems insight: what each trick buys
#
# The cell times one LeNet training step (batch 64, forward, loss, backward) with module 09's
# layers and with the accelerated ones, then each fused operation against its slow version.
# `bench/lenet_step.py` does the same against PyTorch (with Adam, in one run, the same number
# of threads), with a per-operation breakdown. On the 2-core machine this course was written
# on, the reference step took 2.2 times PyTorch's on one thread and 4.2 times on two; the
# accelerated one 1.0 and 1.3 times: the fast layers about 2x, keeping freed memory up to
# another 1.3x.
#
# Things to notice in your numbers:
#
# - **The copies were the cost, not the FLOPs.** Batch-last im2col does the same arithmetic as
#   module 09 and the same number of copies, only with long runs; the gain is all layout.
# - **So were the page faults.** Run the step in a fresh process without `accelerate` and
#   then call `reuse_freed_memory()`: nothing about the computation changes, and it gets
#   faster.
# - **Fusion saves memory too.** The fused conv+ReLU keeps one output array instead of two,
#   fused LayerNorm two arrays (`xhat`, `rstd`) instead of eight, fused attention one
#   `(B, H, T, T)` weight array instead of three (scores, scaled scores, softmax). Memory
#   traffic is time.
# - **float64 costs twice.** The last line times one LeNet-sized matmul in float32 and in
#   float64: twice the bytes to move, half the numbers per vector instruction. One stray
#   float64 array (a `np.zeros(shape)` without a dtype, a float64 constant) promotes
#   everything it touches.
# - **Threads are not free.** Run the bench with `--threads 2` on a machine whose other core
#   is busy: BLAS threads waiting for each other can make small matrix products slower than
#   one thread. Measure before you believe.

# %%
if __name__ == "__main__":
    import time

    from tinytorch.layers import Linear
    from tinytorch.transformers import LayerNorm

    def median_ms(action, repeats: int = 7) -> float:
        action()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
        return float(np.median(times)) * 1e3

    def step(model, loss_fn) -> None:
        loss_fn(model(images), labels).backward()

    from tinytorch.losses import CrossEntropyLoss
    t_slow = median_ms(lambda: step(slow, lambda z, y: CrossEntropyLoss()(z, Tensor(y))))
    t_fast = median_ms(lambda: step(fast, cross_entropy_fast))
    print(f"LeNet step (no optimizer): module 09 {t_slow:.1f} ms, accelerated {t_fast:.1f} ms, {t_slow / t_fast:.1f}x")

    x_ln = Tensor(rng.standard_normal((32, 64, 128)).astype(np.float32), requires_grad=True)
    norm = LayerNorm(128)
    g_ln = rng.standard_normal(x_ln.shape).astype(np.float32)
    t_slow = median_ms(lambda: norm(x_ln).backward(g_ln))
    t_fast = median_ms(lambda: layer_norm_fast(x_ln, norm.weight, norm.bias).backward(g_ln))
    print(f"LayerNorm (32, 64, 128) forward+backward: module 13 {t_slow:.2f} ms, fused {t_fast:.2f} ms")

    from tinytorch.attention import scaled_dot_product_attention
    qkv = [Tensor(rng.standard_normal((8, 4, 128, 32)).astype(np.float32), requires_grad=True) for _ in range(3)]
    g_at = rng.standard_normal((8, 4, 128, 32)).astype(np.float32)
    t_loop = median_ms(lambda: attention_per_head(*qkv, is_causal=True), repeats=3)
    t_slow = median_ms(lambda: scaled_dot_product_attention(*qkv, is_causal=True).backward(g_at))
    t_fast = median_ms(lambda: fused_attention(*qkv, is_causal=True).backward(g_at))
    print(f"causal attention (8, 4, 128, 32): per-head loop (forward only) {t_loop:.1f} ms, module 12 "
          f"forward+backward {t_slow:.2f} ms, fused {t_fast:.2f} ms")

    a32 = rng.standard_normal((32, 400)).astype(np.float32)
    b32 = rng.standard_normal((400, 6400)).astype(np.float32)
    a64, b64 = a32.astype(np.float64), b32.astype(np.float64)
    print(f"(32, 400) @ (400, 6400): float32 {median_ms(lambda: a32 @ b32):.2f} ms, "
          f"float64 {median_ms(lambda: a64 @ b64):.2f} ms")

# %% [markdown]
# ## Checkpoint
#
# `tito check 18` runs `tests/checkpoints/test_18_acceleration.py`. It checks `im2col`
# against the windows of every output position and `col2im` as its adjoint (including
# stride 2 and padding); compares `conv2d_fast` with `torch.nn.functional.conv2d` (and
# `relu`) in float64, values and the gradients of x, weight and bias, for several shapes,
# strides and paddings, and with module 09's six-loop `conv2d_naive`; checks that float32
# stays float32; compares `max_pool2d_fast` with torch's max pooling, values and gradients,
# with ties and odd sizes; `cross_entropy_fast` with `F.cross_entropy` (every reduction,
# extreme logits) and with module 04's loss; `layer_norm_fast` with `F.layer_norm`, with and
# without bias; `fused_attention` with `F.scaled_dot_product_attention` (causal, boolean and
# float masks, rows that may read nothing, keys shared by every head) and with the per-head
# loop; and `accelerate` on a LeNet and on a small GPT block: the same parameter Tensors
# (an optimizer built before keeps training the model, as the same model in torch trains),
# outputs and gradients equal to the unaccelerated model's, and no change on a second call.
