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
# # Module 09: Spatial
#
# A `Linear` layer treats a 28x28 image as 784 unrelated numbers: move the digit one pixel to
# the right and, to the layer, it is a different input. Images have *structure*: nearby pixels
# belong together, and a stroke is a stroke wherever it appears. A **convolution** builds both
# facts in. It slides one small filter (say 5x5) over the whole image, computing the same
# weighted sum at every position, so
#
# - each output looks only at a small neighbourhood (*locality*),
# - the same weights are used everywhere (*weight sharing*): a 5x5 filter has 25 weights
#   whether the image is 28x28 or 1000x1000, and a pattern it detects is detected anywhere.
#
# **Pooling** then shrinks the picture (keep the largest, or the average, of each 2x2 block),
# so later layers see a wider area for the same cost. Conv, pool, conv, pool, then `Linear`
# layers: this is LeNet, the network Yann LeCun and colleagues trained on MNIST in 1998, and
# the 1998 milestone of this course.
#
# In this module you build
#
# - `conv2d(x, weight, bias, stride, padding)` and the layer `Conv2d`,
# - `max_pool2d`, `avg_pool2d` and the layers `MaxPool2d`, `AvgPool2d`,
# - `Flatten`, the bridge from feature maps to `Linear`,
#
# each a new *differentiable primitive*: module 05 cannot differentiate them for you, because
# they are not written with Tensor operations (that would be far too slow). So you write their
# backward by hand, as `Function`s, and record them on their outputs exactly as module 05
# records its own operations.
#
# The milestone trains on 50,000 MNIST images on a laptop CPU, so speed matters. You will
# start from the obvious six nested loops and replace them by **one matrix multiplication**.
# Names and layouts follow PyTorch (`torch.nn.functional.conv2d`, `torch.nn.Conv2d`), so
# weights copy between the two, and the checkpoint compares with PyTorch in float64.

# %%
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.autograd import Function, needs_grad, no_grad, record
from tinytorch.layers import Module
from tinytorch.tensor import Tensor, generator

# %% [markdown]
# ## 1. What a convolution computes
#
# Shapes first, in PyTorch's layout:
#
# | tensor | shape | meaning |
# | --- | --- | --- |
# | input `x` | `(N, C_in, H, W)` | a batch of N images with C_in channels (1 for MNIST, 3 for RGB) |
# | `weight` | `(C_out, C_in, kH, kW)` | C_out filters; each one spans *all* input channels |
# | `bias` | `(C_out,)` | one number per filter |
# | output | `(N, C_out, H_out, W_out)` | one *feature map* per filter |
#
# Output channel `o` at position `(i, j)` is the weighted sum of the `C_in x kH x kW` input
# numbers in the window whose top-left corner is at `(i * stride, j * stride)`:
#
# ```
# out[n, o, i, j] = bias[o] + sum over c, p, q of  x[n, c, i*s + p, j*s + q] * weight[o, c, p, q]
# ```
#
# (Mathematicians would flip the filter and call this a *cross-correlation*; every deep-learning
# framework calls it convolution and does not flip. The filter is learned, so nobody can tell.)
#
# **Padding** `p` adds `p` rows and columns of zeros around the image first, so the filter can
# be centred on border pixels too. **Stride** `s` moves the window `s` pixels at a time. The
# window fits `(H + 2p - kH) // s + 1` times vertically:
#
# ```
# H_out = (H + 2 * padding - kH) // stride + 1        W_out likewise
# ```
#
# A 5x5 filter with padding 2 and stride 1 keeps the size (`28 + 4 - 5 + 1 = 28`); stride 2
# halves it. Each of `kernel_size`, `stride` and `padding` may be one integer (the same for
# height and width) or an `(h, w)` pair, as in PyTorch; `_pair` turns both into a pair.

# %%
def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """`value` as an (h, w) pair of ints: 3 -> (3, 3), (3, 5) stays."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, not {value!r}")
    return int(pair[0]), int(pair[1])


def _as_array(x: Any) -> np.ndarray:
    """The numbers of a Tensor (or anything numpy can read)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# %% [markdown]
# ## 2. The obvious way: six nested loops
#
# The formula reads as loops: for every image `n`, output channel `o` and output position
# `(i, j)`, add up `C_in x kH x kW` products. Here it is, written out plainly. It is correct,
# and it is our *oracle*: the fast version must give the same numbers.

# %%
def conv2d_naive(x: Any, weight: Any, bias: Any = None,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0) -> Tensor:
    """The convolution of section 1 with one Python loop per index (slow; no gradient)."""
    x, weight = _as_array(x), _as_array(weight)
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    n_images, c_in, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    h_out, w_out = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    out = np.zeros((n_images, c_out, h_out, w_out), dtype=np.result_type(x, weight))
    for n in range(n_images):
        for o in range(c_out):
            for i in range(h_out):
                for j in range(w_out):
                    total = 0.0 if bias is None else _as_array(bias)[o]
                    for c in range(c_in):
                        for p in range(kh):
                            for q in range(kw):
                                total += padded[n, c, i * sh + p, j * sw + q] * weight[o, c, p, q]
                    out[n, o, i, j] = total
    return Tensor(out)


# %% [markdown]
# Count the work: for LeNet's second layer on a batch of 64 (`6 -> 16` channels, 5x5, output
# 10x10), that is `64 * 16 * 10 * 10 * 6 * 5 * 5 = 15.4` million trips through the inner line,
# each costing Python a few hundred nanoseconds: about five seconds for one layer of one
# batch, and the milestone needs about 800 batches per epoch, with backward on top. Python loops are the
# problem; the arithmetic itself is nothing for numpy.
#
# ## 3. Every window at once, without copying: `sliding_windows`
#
# The trick is to look at the image as an array of *windows*. numpy describes an array by a
# pointer, a shape and **strides** (how many bytes to step along each axis). A window view
# adds two axes that step like the image's rows and columns, and moves the row and column
# axes `stride` pixels at a time: the same memory, read in a new shape, and nothing copied:
#
# ```
# x: (N, C, H, W)   ->   windows: (N, C, H_out, W_out, kH, kW)
# windows[n, c, i, j] = x[n, c, i*s : i*s + kH, j*s : j*s + kW]
# ```
#
# `numpy.lib.stride_tricks.sliding_window_view(x, (kH, kW), axis=(2, 3))` gives every window
# at stride 1, shape `(N, C, H - kH + 1, W - kW + 1, kH, kW)`; slicing the two position axes
# with `::sh` and `::sw` keeps every `stride`-th one. The result is read-only (many windows
# share each pixel, so writing into one would change its neighbours).
#
# `sliding_windows` is used by the convolution and by both poolings. Padding is not its job:
# the convolution pads first.

# %% nbgrader={"grade": false, "grade_id": "sliding-windows", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sliding_windows(x: np.ndarray, kernel_size: int | tuple[int, int],
                    stride: int | tuple[int, int] = 1) -> np.ndarray:
    """A read-only view (N, C, H_out, W_out, kH, kW) of every window of x (N, C, H, W); no copy."""
    ### BEGIN SOLUTION
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    ### END SOLUTION


# %% [markdown]
# ## 4. The convolution as one matrix multiplication (im2col)
#
# Look at the formula again with the windows in hand: `out[n, o, i, j]` is the dot product of
# window `(n, i, j)`, flattened to `C_in * kH * kW` numbers, with filter `o`, flattened the
# same way. So:
#
# 1. **pad** `x` with zeros (`np.pad`, on the last two axes only);
# 2. take the **windows**, move the channel axis next to the kernel axes,
#    `(N, H_out, W_out, C_in, kH, kW)`, and reshape to a matrix `cols` of shape
#    `(N * H_out * W_out, C_in * kH * kW)`: one row per output position, one column per
#    weight. This reshape copies (the windows overlap), and it is the famous *im2col*
#    ("image to columns") of Caffe and cuDNN;
# 3. **one matmul**: `cols @ weight.reshape(C_out, -1).T` has shape
#    `(N * H_out * W_out, C_out)`; add the bias, reshape to `(N, H_out, W_out, C_out)` and
#    move the channel axis back: `(N, C_out, H_out, W_out)`.
#
# Millions of Python steps become one call to an optimised matrix multiplication (BLAS), which
# uses the CPU's vector units and every core. The price is memory: `cols` holds every input
# pixel `kH * kW` times over (section 9 measures both).
#
# ### Recording the gradient
#
# `conv2d` is a new primitive, so it records its own node, exactly the way module 05's
# recorder does: if `needs_grad(x, weight, bias)` (module 05: recording is on and some input
# requires grad), build a `Conv2dFn` (section 5), store the output array in its
# `output`, and mark the result with `requires_grad = True` and `_grad_fn = function`.
# Module 05's `record(out, function)` (section 2.11) does the marking. `Conv2dFn` keeps
# `cols`: backward needs exactly that matrix, and recomputing it would cost a second copy.
#
# Check the shapes and say what is wrong in the language of the lesson: `x` must be 4-D, its
# channel count must equal `weight.shape[1]`, `bias` (if given) must have `C_out` numbers,
# and the (padded) input must be at least as large as the kernel, or the output would be
# empty. A ValueError naming the shapes, please.

# %%
class Conv2dFn(Function):
    """conv2d(x, weight, bias): inputs (x, weight) or (x, weight, bias); keeps im2col's `cols`."""

    def __init__(self, x: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                 stride: tuple[int, int], padding: tuple[int, int], cols: np.ndarray) -> None:
        super().__init__(*((x, weight) if bias is None else (x, weight, bias)))
        self.stride, self.padding, self.cols = stride, padding, cols


# %% nbgrader={"grade": false, "grade_id": "conv2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
           stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0) -> Tensor:
    """x (N, C_in, H, W), weight (C_out, C_in, kH, kW), bias (C_out,) -> (N, C_out, H_out, W_out)."""
    ### BEGIN SOLUTION
    x = x if isinstance(x, Tensor) else Tensor(x)
    weight = weight if isinstance(weight, Tensor) else Tensor(weight)
    if bias is not None and not isinstance(bias, Tensor):
        bias = Tensor(bias)
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv2d: x must be (N, C_in, H, W) and weight (C_out, C_in, kH, kW); "
                         f"got x of shape {x.shape} and weight of shape {weight.shape}")
    n_images, c_in, height, width = x.shape
    c_out, weight_c_in, kh, kw = weight.shape
    if c_in != weight_c_in:
        raise ValueError(f"conv2d: x has {c_in} channels (shape {x.shape}) but weight expects "
                         f"{weight_c_in} input channels (shape {weight.shape})")
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"conv2d: bias must have shape ({c_out},), one per output channel; got {bias.shape}")
    if height + 2 * ph < kh or width + 2 * pw < kw:
        raise ValueError(f"conv2d: the {kh}x{kw} kernel is larger than the padded input "
                         f"{height + 2 * ph}x{width + 2 * pw} (x of shape {x.shape}, padding {(ph, pw)})")

    padded = np.pad(x.data, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x.data
    windows = sliding_windows(padded, (kh, kw), (sh, sw))  # (N, C, Ho, Wo, kh, kw), a view
    h_out, w_out = windows.shape[2], windows.shape[3]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n_images * h_out * w_out, c_in * kh * kw)
    out = cols @ weight.data.reshape(c_out, -1).T  # (N*Ho*Wo, C_out)
    if bias is not None:
        out = out + bias.data
    out = np.ascontiguousarray(out.reshape(n_images, h_out, w_out, c_out).transpose(0, 3, 1, 2))
    result = Tensor(out)
    if needs_grad(x, weight, bias):
        record(result, Conv2dFn(x, weight, bias, stride=(sh, sw), padding=(ph, pw), cols=cols))
    return result
    ### END SOLUTION


# %% [markdown]
# ## 5. Backward: three gradients and a scatter
#
# Forward was `out2d = cols @ W2.T + bias`, with `W2 = weight.reshape(C_out, -1)`: a `Linear`
# layer applied to every window. So backward is module 05's matmul rule, plus one new step.
# Let `g` be `dL/d(out)` of shape `(N, C_out, H_out, W_out)`, rearranged to the matrix
# `g2 = g.transpose(0, 2, 3, 1).reshape(-1, C_out)` (rows in the order of `cols`):
#
# - `dL/dbias = g.sum(axis=(0, 2, 3))`: the bias was added at every position of every image.
# - `dL/dweight = (g2.T @ cols).reshape(weight.shape)`: each weight met every window.
# - `dL/dcols = g2 @ W2`, shape `(N * H_out * W_out, C_in * kH * kW)`: the gradient of every
#   window entry. But windows *overlap*: with a 3x3 kernel at stride 1 a pixel sits in up to
#   nine windows, and its gradient is the **sum** of what all of them send back (one value
#   used in many places, exactly module 05's accumulation). Undoing im2col means adding each
#   window's gradient back where the window came from: `scatter_windows`.
#
# `scatter_windows(dwindows, x_shape, kernel_size, stride)` is the *adjoint* of
# `sliding_windows`: it takes gradients of shape `(N, C, H_out, W_out, kH, kW)` and returns
# an array of `x_shape`. Loop over the `kH * kW` kernel offsets `(p, q)` (25 steps for 5x5,
# never one per pixel): offset `(p, q)` of window `(i, j)` is pixel `(i*s + p, j*s + q)`, so
#
# ```
# dx[:, :, p : p + s*(H_out-1) + 1 : s, q : q + s*(W_out-1) + 1 : s] += dwindows[:, :, :, :, p, q]
# ```
#
# adds the whole `(N, C, H_out, W_out)` slab in one vectorised step. Pixels no window reaches
# (the last rows when the stride does not divide evenly) get zero, correctly: they did not
# influence the output.
#
# Finally `dL/dx` is the scatter of `dL/dcols` (reshaped to `(N, H_out, W_out, C_in, kH, kW)`
# and transposed to the windows' layout) into the *padded* shape, with the padding cut off:
# the zeros we added are not inputs, and their gradient is thrown away.
#
# Two practical points. An input that does not require grad (the images themselves, in the
# first layer) needs no `dL/dx`: return None for it and skip the work, module 05's
# `backward` skips a None. And return one gradient per input: two when there is no bias,
# three when there is.

# %% nbgrader={"grade": false, "grade_id": "conv2d-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def scatter_windows(dwindows: np.ndarray, x_shape: tuple[int, ...], kernel_size: int | tuple[int, int],
                    stride: int | tuple[int, int] = 1) -> np.ndarray:
    """The adjoint of sliding_windows: add each window's (N, C, Ho, Wo, kH, kW) values back into x_shape."""
    ### BEGIN SOLUTION
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    h_out, w_out = dwindows.shape[2], dwindows.shape[3]
    dx = np.zeros(x_shape, dtype=dwindows.dtype)
    for p in range(kh):
        for q in range(kw):
            dx[:, :, p:p + sh * (h_out - 1) + 1:sh, q:q + sw * (w_out - 1) + 1:sw] += dwindows[:, :, :, :, p, q]
    return dx
    ### END SOLUTION


def _conv2d_backward(self: Conv2dFn, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
    """dL/dx (None if x needs no grad), dL/dweight and, when there is a bias, dL/dbias."""
    x, weight = self.inputs[0], self.inputs[1]
    (sh, sw), (ph, pw) = self.stride, self.padding
    ### BEGIN SOLUTION
    n_images, c_out, h_out, w_out = grad.shape
    c_in, kh, kw = weight.shape[1:]
    g2 = grad.transpose(0, 2, 3, 1).reshape(-1, c_out)
    dweight = (g2.T @ self.cols).reshape(weight.shape)
    dx = None
    if x.requires_grad:
        dcols = (g2 @ weight.data.reshape(c_out, -1)).reshape(n_images, h_out, w_out, c_in, kh, kw)
        padded_shape = (n_images, c_in, x.shape[2] + 2 * ph, x.shape[3] + 2 * pw)
        dpadded = scatter_windows(dcols.transpose(0, 3, 1, 2, 4, 5), padded_shape, (kh, kw), (sh, sw))
        dx = dpadded[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    if len(self.inputs) == 2:
        return dx, dweight
    return dx, dweight, grad.sum(axis=(0, 2, 3))
    ### END SOLUTION


Conv2dFn.backward = _conv2d_backward  # a method of Conv2dFn, written in its own cell

# %% [markdown]
# ## 6. Pooling
#
# Pooling summarises each `k x k` window of each channel by one number, with no weights:
#
# - **max pooling** keeps the largest: "is this feature present anywhere in the block?";
# - **average pooling** keeps the mean: a blur followed by subsampling.
#
# Channels stay separate (a pooled map has the same `C` as its input), and the stride
# defaults to the kernel size, so the windows tile the image without overlap: a 2x2 pool
# halves height and width. The output size is the convolution's formula without padding,
# `(H - k) // s + 1`; the last rows and columns that do not fill a window are dropped.
#
# Both forwards are the windows of section 3 and one reduction over the last two axes.
#
# **Backward.** Average pooling gives each of the `kH * kW` pixels of a window the share
# `1 / (kH * kW)` of the window's gradient. Max pooling is a selection: the output *is* the
# maximal pixel, so its gradient goes to that one pixel, and the others (which could move a
# little without changing the output) get zero. So the forward must remember **where** each
# maximum was: the index, within the flattened window, of `argmax`. When several pixels tie
# for the maximum, we pick the **first** in row-major order (`np.argmax` does exactly that),
# as PyTorch's CPU kernel does. Where windows overlap (kernel 3, stride 1) a pixel can be the
# maximum of several windows and receives the sum: the scatter of section 5 again, with each
# window's gradient placed at its argmax and zeros elsewhere.
#
# Both functions record their own node, like `conv2d`, with the Function classes below.

# %%
class MaxPool2dFn(Function):
    """max_pool2d(x): remembers the flat index of each window's maximum (`argmax`)."""

    def __init__(self, x: Tensor, *, kernel_size: tuple[int, int], stride: tuple[int, int],
                 argmax: np.ndarray) -> None:
        super().__init__(x)
        self.kernel_size, self.stride, self.argmax = kernel_size, stride, argmax


class AvgPool2dFn(Function):
    """avg_pool2d(x)."""

    def __init__(self, x: Tensor, *, kernel_size: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__(x)
        self.kernel_size, self.stride = kernel_size, stride


def _pool_arguments(x: Tensor, kernel_size: Any, stride: Any, name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(kernel, stride) pairs, stride defaulting to the kernel, with clear errors on bad shapes."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"{name}: kernel_size and stride must be >= 1, got {kernel_size} and {stride}")
    if x.ndim != 4:
        raise ValueError(f"{name}: x must be (N, C, H, W), got shape {x.shape}")
    if x.shape[2] < kernel[0] or x.shape[3] < kernel[1]:
        raise ValueError(f"{name}: the {kernel[0]}x{kernel[1]} window is larger than the "
                         f"{x.shape[2]}x{x.shape[3]} input (shape {x.shape})")
    return kernel, stride


# %% nbgrader={"grade": false, "grade_id": "pooling", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_pool2d(x: Tensor, kernel_size: int | tuple[int, int],
               stride: int | tuple[int, int] | None = None) -> Tensor:
    """The maximum of each window, per channel: (N, C, H, W) -> (N, C, H_out, W_out)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    (kh, kw), (sh, sw) = _pool_arguments(x, kernel_size, stride, "max_pool2d")
    ### BEGIN SOLUTION
    windows = sliding_windows(x.data, (kh, kw), (sh, sw))
    flat = windows.reshape(*windows.shape[:4], kh * kw)
    argmax = flat.argmax(axis=-1)  # the first maximum of each window
    out = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    result = Tensor(out)
    if needs_grad(x):
        record(result, MaxPool2dFn(x, kernel_size=(kh, kw), stride=(sh, sw), argmax=argmax))
    return result
    ### END SOLUTION


def _max_pool2d_backward(self: MaxPool2dFn, grad: np.ndarray) -> tuple[np.ndarray]:
    """dL/dx: each window's gradient goes to its (first) maximum; overlapping windows add up."""
    (x,), (kh, kw) = self.inputs, self.kernel_size
    ### BEGIN SOLUTION
    onehot = self.argmax[..., None] == np.arange(kh * kw)  # (N, C, Ho, Wo, kh*kw)
    dwindows = (onehot * grad[..., None]).reshape(*grad.shape, kh, kw)
    return (scatter_windows(dwindows, x.shape, (kh, kw), self.stride),)
    ### END SOLUTION


def avg_pool2d(x: Tensor, kernel_size: int | tuple[int, int],
               stride: int | tuple[int, int] | None = None) -> Tensor:
    """The mean of each window, per channel: (N, C, H, W) -> (N, C, H_out, W_out)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    (kh, kw), (sh, sw) = _pool_arguments(x, kernel_size, stride, "avg_pool2d")
    ### BEGIN SOLUTION
    out = sliding_windows(x.data, (kh, kw), (sh, sw)).mean(axis=(-2, -1))
    result = Tensor(out)
    if needs_grad(x):
        record(result, AvgPool2dFn(x, kernel_size=(kh, kw), stride=(sh, sw)))
    return result
    ### END SOLUTION


def _avg_pool2d_backward(self: AvgPool2dFn, grad: np.ndarray) -> tuple[np.ndarray]:
    """dL/dx: each pixel of a window gets 1 / (kH * kW) of the window's gradient."""
    (x,), (kh, kw) = self.inputs, self.kernel_size
    ### BEGIN SOLUTION
    share = grad / (kh * kw)
    dwindows = np.broadcast_to(share[..., None, None], (*grad.shape, kh, kw))
    return (scatter_windows(dwindows, x.shape, (kh, kw), self.stride),)
    ### END SOLUTION


MaxPool2dFn.backward = _max_pool2d_backward
AvgPool2dFn.backward = _avg_pool2d_backward

# %% [markdown]
# ## 7. The layers: `Conv2d`, `MaxPool2d`, `AvgPool2d`, `Flatten`
#
# Each layer is a `Module` (module 03) that stores its settings and calls the function.
#
# **`Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True)`** owns
# `weight` of shape `(out_channels, in_channels, kH, kW)` and `bias` of shape
# `(out_channels,)` (or None), float32 Tensors with `requires_grad=True`: PyTorch's layout,
# so `torch_conv.weight.copy_(torch.tensor(conv.weight.data))` moves a model over. Keep the
# settings as attributes named like PyTorch's, with pairs: `kernel_size`, `stride`,
# `padding`, plus `in_channels`, `out_channels`.
#
# *Initialisation.* Each output sums `fan_in = in_channels * kH * kW` products (the numbers
# of one filter), exactly what `in_features` is for `Linear`. Draw the weights from the
# Kaiming (He) **uniform** distribution `U(-b, b)` with `b = sqrt(6 / fan_in)`: its variance
# `b**2 / 3 = 2 / fan_in` is that of module 03's Kaiming normal, the variance that keeps the
# signal's scale through ReLU layers. Draw from `tinytorch.tensor.generator()` (so
# `manual_seed` makes a model reproducible) and start the bias at zero, like `Linear`.
#
# **`MaxPool2d(kernel_size, stride=None)`**, **`AvgPool2d(kernel_size, stride=None)`**: no
# parameters; the stride defaults to the kernel size.
#
# **`Flatten(start_axis=1)`** reshapes `(N, C, H, W)` to `(N, C * H * W)`, keeping the batch
# axis, so a `Linear` can follow the last pooling layer. It is written with `Tensor.reshape`,
# which module 05 already differentiates: no Function needed. (Compute the merged size
# yourself rather than passing -1: a batch of zero images still has a shape.)

# %% nbgrader={"grade": false, "grade_id": "layers", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Conv2d(Module):
    """A 2-D convolution layer with a learned weight (C_out, C_in, kH, kW) and bias (C_out,)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 bias: bool = True) -> None:
        """Kaiming-uniform float32 weight, zero bias; settings kept as pairs, named like torch."""
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        ### BEGIN SOLUTION
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        kh, kw = self.kernel_size
        fan_in = in_channels * kh * kw
        bound = math.sqrt(6.0 / fan_in)
        weight = generator().uniform(-bound, bound, size=(out_channels, in_channels, kh, kw))
        self.weight = Tensor(weight.astype(np.float32), requires_grad=True)
        self.bias = Tensor(np.zeros(out_channels, dtype=np.float32), requires_grad=True) if bias else None
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """conv2d of x (N, C_in, H, W) with this layer's weight, bias, stride and padding."""
        ### BEGIN SOLUTION
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class MaxPool2d(Module):
    """Max pooling over kH x kW windows (stride defaults to the kernel size)."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return max_pool2d(x, self.kernel_size, self.stride)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2d(Module):
    """Average pooling over kH x kW windows (stride defaults to the kernel size)."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return avg_pool2d(x, self.kernel_size, self.stride)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class Flatten(Module):
    """(N, C, H, W) -> (N, C * H * W): merge the axes from start_axis on (differentiable)."""

    def __init__(self, start_axis: int = 1) -> None:
        super().__init__()
        self.start_axis = start_axis

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        start = self.start_axis % x.ndim
        return x.reshape(*x.shape[:start], int(np.prod(x.shape[start:], dtype=np.int64)))
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}"


# %% [markdown]
# ## 8. Try it: a small LeNet
#
# LeNet-5's shape on a 28x28 digit: conv 5x5 (padding 2) to 6 maps, pool, conv 5x5 to 16
# maps, pool, then three `Linear` layers. The gradient of one weight agrees with central
# differences, and the fast convolution agrees with the six loops.

# %%
if __name__ == "__main__":
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    lenet = Sequential(
        Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2),   # (N, 6, 14, 14)
        Conv2d(6, 16, 5), ReLU(), MaxPool2d(2),             # (N, 16, 5, 5)
        Flatten(), Linear(16 * 5 * 5, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10),
    )
    print(lenet)
    rng = np.random.default_rng(0)
    images = Tensor(rng.random((8, 1, 28, 28)))
    labels = Tensor(rng.integers(0, 10, 8))
    for p in lenet.parameters():  # float64, for an exact comparison
        p.data = p.data.astype(np.float64)
    loss = CrossEntropyLoss()(lenet(images), labels)
    loss.backward()
    conv = lenet[3]
    print("logits:", lenet(images).shape, " parameters:", lenet.num_parameters())
    h = 1e-6
    with no_grad():
        conv.weight.data[2, 1, 0, 3] += h
        up = CrossEntropyLoss()(lenet(images), labels).item()
        conv.weight.data[2, 1, 0, 3] -= 2 * h
        down = CrossEntropyLoss()(lenet(images), labels).item()
        conv.weight.data[2, 1, 0, 3] += h
    print(f"dloss/dweight[2, 1, 0, 3]: autograd {conv.weight.grad.data[2, 1, 0, 3]:.8f}, "
          f"central differences {(up - down) / (2 * h):.8f}")

    x_small, w_small = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    fast = conv2d(x_small, w_small, stride=2, padding=1)
    slow = conv2d_naive(x_small, w_small, stride=2, padding=1)
    print("fast == naive:", np.allclose(fast.data, slow.data), fast.shape)

# %% [markdown]
# ## 9. Systems insight: what one matmul buys, and what a conv layer costs
#
# **Speed.** The cell times the six loops against im2col + matmul on a batch of 8 RGB images
# of 32x32 (CIFAR's size), 3 -> 16 channels, 3x3 kernel, padding 1. Expect a factor of about
# a thousand: the work is identical, but one version asks Python to do 3.5 million small steps
# and the other hands numpy one `(8192, 27) @ (27, 16)` product.
#
# **Parameters.** A conv layer has `C_out * C_in * kH * kW + C_out` parameters, *whatever the
# image size*: LeNet's second conv has `16 * 6 * 25 + 16 = 2,416`. A `Linear` layer from the
# same `6 x 14 x 14` input to the same `16 x 10 x 10` output would need
# `1176 * 1600 + 1600 = 1.88` million. Weight sharing is a 780x saving.
#
# **Compute.** The parameters are reused at every output position, so a conv layer is cheap
# in memory but not in arithmetic: `2 * N * C_out * H_out * W_out * C_in * kH * kW` FLOPs
# (a multiply and an add per weight per position). That is why convolutional networks are
# compute-bound, and why the matmul matters so much.
#
# **Memory.** The price of im2col: `cols` holds each input pixel up to `kH * kW` times. For a
# 3x3 kernel that is 9x the input's memory, kept alive by the graph until backward. GPU
# libraries avoid storing it with implicit-GEMM and Winograd algorithms; module 18 returns
# to these trade-offs.

# %%
if __name__ == "__main__":
    import time

    def best_time(function, repeats: int = 3) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return min(times)

    rng = np.random.default_rng(1)
    x_batch = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    w_batch = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    naive_seconds = best_time(lambda: conv2d_naive(x_batch, w_batch, padding=1), repeats=1)
    fast_seconds = best_time(lambda: conv2d(x_batch, w_batch, padding=1))
    print(f"conv2d on (8, 3, 32, 32), 3 -> 16 channels, 3x3: six loops {naive_seconds * 1e3:.0f} ms, "
          f"im2col + matmul {fast_seconds * 1e3:.2f} ms, {naive_seconds / fast_seconds:.0f}x faster")

    def conv_cost(layer: Conv2d, height: int, width: int, batch: int = 1) -> tuple[int, int]:
        """(parameters, FLOPs of one forward pass) of `layer` on `batch` images of height x width."""
        kh, kw = layer.kernel_size
        h_out = (height + 2 * layer.padding[0] - kh) // layer.stride[0] + 1
        w_out = (width + 2 * layer.padding[1] - kw) // layer.stride[1] + 1
        flops = 2 * batch * layer.out_channels * h_out * w_out * layer.in_channels * kh * kw
        return layer.num_parameters(), flops

    for layer, size in ((Conv2d(1, 6, 5, padding=2), 28), (Conv2d(6, 16, 5), 14), (Conv2d(3, 64, 3, padding=1), 224)):
        params, flops = conv_cost(layer, size, size)
        print(f"{layer} on {size}x{size}: {params:,} parameters, {flops / 1e6:,.1f} MFLOPs per image")

    cols_bytes = 8 * 32 * 32 * 3 * 3 * 3 * x_batch.itemsize
    print(f"im2col matrix for the batch above: {cols_bytes / 2**10:.0f} KiB, "
          f"{cols_bytes / x_batch.nbytes:.0f}x the input's {x_batch.nbytes / 2**10:.0f} KiB")

# %% [markdown]
# ## Checkpoint
#
# `tito check 09` runs `tests/checkpoints/test_09_spatial.py`. It compares `conv2d` with
# `torch.nn.functional.conv2d` in float64, values and the gradients of `x`, `weight` and
# `bias`, for several channel counts, kernel sizes, strides (1 and 2), paddings (0, 1, 2),
# non-square inputs and kernels, and without a bias; checks a small convolution against
# central differences and against `conv2d_naive`; checks `sliding_windows` and
# `scatter_windows` (the adjoint property); compares `max_pool2d` and `avg_pool2d` (kernel 2
# stride 2, kernel 3 stride 1, kernel 3 stride 2 on odd sizes, ties) with PyTorch, values and
# gradients; checks `Flatten`'s shape and gradient; checks `Conv2d`'s parameters (names,
# shapes, dtype, initialisation bounds), its output shape, and equal outputs with a
# `torch.nn.Conv2d` holding the same weights; trains a tiny conv net a few Adam steps; and
# checks that nothing is recorded under `no_grad()`.
