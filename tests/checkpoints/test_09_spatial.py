"""Checkpoint 09: convolution, pooling and Flatten, forward and backward.

Oracles: torch.nn.functional.conv2d / max_pool2d / avg_pool2d in float64 (values and the
gradients of every input), central differences of the lesson's six-loop `conv2d_naive` on a
small convolution, `conv2d_naive` itself on a tiny input, a loop-by-loop scatter for
`scatter_windows`, torch.nn.Conv2d holding the same weights, and a tiny conv net whose loss
falls under Adam. Every layer's weights are set from the test's own generator, so no value
depends on the random initialisation (which is checked on its own, by its statistics).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tinytorch.activations import ReLU
from tinytorch.autograd import no_grad
from tinytorch.layers import Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import Adam
from tinytorch.spatial import (
    AvgPool2d,
    Conv2d,
    Flatten,
    MaxPool2d,
    avg_pool2d,
    conv2d,
    conv2d_naive,
    max_pool2d,
    scatter_windows,
    sliding_windows,
)
from tinytorch.tensor import Tensor, manual_seed

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12


def pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def conv_out_shape(x_shape, w_shape, stride, padding):
    """The output shape of section 1's formula (the test's own, to draw upstream gradients)."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    return (x_shape[0], w_shape[0], (x_shape[2] + 2 * ph - w_shape[2]) // sh + 1,
            (x_shape[3] + 2 * pw - w_shape[3]) // sw + 1)


def pool_out_shape(x_shape, kernel, stride):
    (kh, kw) = pair(kernel)
    (sh, sw) = (kh, kw) if stride is None else pair(stride)
    return (*x_shape[:2], (x_shape[2] - kh) // sh + 1, (x_shape[3] - kw) // sw + 1)


def torch_conv(x, weight, bias, stride, padding, upstream):
    """torch's conv2d output and the gradients of x, weight and bias (None when absent)."""
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(weight, requires_grad=True)
    tb = None if bias is None else torch.tensor(bias, requires_grad=True)
    out = F.conv2d(tx, tw, tb, stride=stride, padding=padding)
    out.backward(torch.tensor(upstream))
    return out.detach(), tx.grad, tw.grad, None if tb is None else tb.grad


def torch_pool(name, x, kernel, stride, upstream):
    """torch's max_pool2d or avg_pool2d of x, and the gradient of x for the upstream gradient."""
    tx = torch.tensor(x, requires_grad=True)
    out = getattr(F, name)(tx, kernel, stride)
    out.backward(torch.tensor(upstream))
    return out.detach(), tx.grad


def check_conv_against_torch(x0, w0, b0, stride, padding, rng):
    """Run conv2d forward and backward and compare everything with torch."""
    call = f"conv2d(x {x0.shape}, weight {w0.shape}, {'bias' if b0 is not None else 'bias=None'}, stride={stride}, padding={padding})"
    x, w = Tensor(x0, requires_grad=True), Tensor(w0, requires_grad=True)
    b = None if b0 is None else Tensor(b0, requires_grad=True)
    out = conv2d(x, w, b, stride=stride, padding=padding)
    expect_equal(tuple(out.shape), tuple(F.conv2d(torch.tensor(x0), torch.tensor(w0), stride=stride, padding=padding).shape),
                 call=f"{call}.shape", hint="H_out = (H + 2 * padding - kH) // stride + 1, and W_out likewise")
    upstream = rng.standard_normal(conv_out_shape(x0.shape, w0.shape, stride, padding))
    expect_close(out, torch_conv(x0, w0, b0, stride, padding, upstream)[0], rtol=RTOL, atol=ATOL, call=call,
                 hint="out[n, o, i, j] = bias[o] + sum over c, p, q of padded_x[n, c, i*s + p, j*s + q] * weight[o, c, p, q]")
    out.backward(upstream)
    expect_close(w.grad, torch_conv(x0, w0, b0, stride, padding, upstream)[2], rtol=RTOL, atol=ATOL,
                 call=f"weight.grad after {call}.backward(g)",
                 hint="dL/dweight = (g2.T @ cols).reshape(weight.shape), with g2 rows in the same order as cols")
    expect_close(x.grad, torch_conv(x0, w0, b0, stride, padding, upstream)[1], rtol=RTOL, atol=ATOL,
                 call=f"x.grad after {call}.backward(g)",
                 hint="scatter dL/dcols back with scatter_windows into the padded shape, then cut the padding off")
    if b0 is not None:
        expect_close(b.grad, torch_conv(x0, w0, b0, stride, padding, upstream)[3], rtol=RTOL, atol=ATOL,
                     call=f"bias.grad after {call}.backward(g)",
                     hint="the bias is added at every position of every image: g.sum(axis=(0, 2, 3))")


# -- predicates, judged on the trusted side over the values your code produced -----------------


def same_arrays(pair):
    """The two arrays of `pair` have the same shape and numbers."""
    first, second = (np.asarray(a) for a in pair)
    return first.shape == second.shape and bool(np.array_equal(first, second))


def kaiming_uniform(weight, bound):
    """Numbers in [-bound, bound] that fill the range, mean 0 and standard deviation bound / sqrt(3)."""
    weight = np.asarray(weight, dtype=np.float64)
    largest = np.abs(weight).max()
    return (largest <= bound * (1 + 1e-6) and largest > 0.95 * bound and abs(weight.mean()) < 0.05 * bound
            and abs(weight.std() / (bound / np.sqrt(3)) - 1) < 0.03)


def nonzero_gradient(grad, shape):
    """A finite gradient of the given shape, not all zeros."""
    grad = np.asarray(grad, dtype=np.float64)
    return grad.shape == tuple(shape) and bool(np.all(np.isfinite(grad))) and bool(np.any(grad != 0))


def falls_below(losses, fraction):
    """The last loss is below `fraction` times the first, and every loss is a finite number."""
    losses = np.asarray(losses, dtype=np.float64)
    return losses.ndim == 1 and len(losses) >= 2 and bool(np.all(np.isfinite(losses))) and losses[-1] < fraction * losses[0]


def mentions(text, *words):
    """`text` contains every word."""
    return isinstance(text, str) and all(word in text for word in words)


# -- the windows --------------------------------------------------------------------------


def window_loops(x, kernel, stride):
    """Every window, cut out one by one (the oracle of sliding_windows)."""
    (kh, kw), (sh, sw) = kernel, stride
    h_out, w_out = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.zeros((*x.shape[:2], h_out, w_out, kh, kw), dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            out[:, :, i, j] = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
    return out


def scatter_loops(g, shape, kernel, stride):
    """Each window's values added back where the window came from, one window at a time."""
    (kh, kw), (sh, sw) = kernel, stride
    out = np.zeros(shape)
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            out[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += g[:, :, i, j]
    return out


def test_sliding_windows_is_a_view_of_every_window():
    """sliding_windows gives (N, C, H_out, W_out, kH, kW) windows at the stride, without copying"""
    x = np.arange(2 * 3 * 7 * 6, dtype=np.float64).reshape(2, 3, 7, 6)
    windows = sliding_windows(x, (3, 2), (2, 1))
    expect_equal(windows.shape, (2, 3, 3, 5, 3, 2), call="sliding_windows(x of shape (2, 3, 7, 6), (3, 2), (2, 1)).shape",
                 hint="(H - kH) // sH + 1 = 3 window rows and (W - kW) // sW + 1 = 5 window columns")
    expect_equal(windows[1, 2, 2, 4], x[1, 2, 4:7, 4:6], call="sliding_windows(x, (3, 2), (2, 1))[1, 2, 2, 4]",
                 hint="window (i, j) is x[n, c, i*sH : i*sH + kH, j*sW : j*sW + kW]")
    expect_equal(np.asarray(windows), window_loops(x, (3, 2), (2, 1)), call="sliding_windows(x of shape (2, 3, 7, 6), (3, 2), (2, 1))",
                 hint="every window (i, j) is x[n, c, i*sH : i*sH + kH, j*sW : j*sW + kW]")
    expect_equal(bool(np.shares_memory(windows, x)), True, call="np.shares_memory(sliding_windows(x, ...), x)",
                 hint="sliding_window_view reads the same memory with new strides; slicing with ::stride keeps it a view")


@settings(max_examples=15)
@given(kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       extra=st.tuples(st.integers(0, 4), st.integers(0, 4)), seed=st.integers(0, 1000))
def test_scatter_windows_is_the_adjoint_of_sliding_windows(kernel, stride, extra, seed):
    """scatter_windows adds each window's values back where it came from: overlapping windows add up"""
    rng = np.random.default_rng(seed)
    shape = (2, 2, kernel[0] + extra[0], kernel[1] + extra[1])
    g = rng.standard_normal((2, 2, extra[0] // stride[0] + 1, extra[1] // stride[1] + 1, *kernel))
    scattered = scatter_windows(g, shape, kernel, stride)
    expect_equal(scattered.shape, shape, call=f"scatter_windows(g, {shape}, {kernel}, {stride}).shape",
                 hint="the result has the shape of the x the windows came from")
    expect_close(scattered, scatter_loops(g, shape, kernel, stride), rtol=1e-12, atol=1e-12,
                 call=f"scatter_windows(g of shape {g.shape}, {shape}, kernel={kernel}, stride={stride})",
                 hint="loop over the kH * kW offsets (p, q) and ADD g[..., p, q] into x[:, :, p::sH, q::sW] "
                      "(limited to H_out and W_out positions): a pixel in several windows gets the sum, and "
                      "sum(sliding_windows(x) * g) == sum(x * scatter_windows(g)) for every x")


# -- conv2d -------------------------------------------------------------------------------


def test_conv2d_equals_the_six_loops():
    """conv2d equals conv2d_naive, the six nested loops of the lesson, on a tiny input"""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 3, 2)), rng.standard_normal(2)
    for stride, padding in ((1, 0), (2, 1), ((1, 2), (2, 0))):
        expect_close(conv2d(Tensor(x), Tensor(w), Tensor(b), stride, padding),
                     conv2d_naive(x, w, b, stride, padding), rtol=RTOL, atol=ATOL,
                     call=f"conv2d(x (2, 3, 5, 4), weight (2, 3, 3, 2), bias, stride={stride}, padding={padding})",
                     hint="the im2col matmul must compute exactly the sum the six loops compute")


CONV_CASES = [
    # (x shape, weight shape, stride, padding)
    ((2, 1, 6, 6), (4, 1, 3, 3), 1, 0),
    ((2, 3, 7, 5), (2, 3, 3, 3), 1, 1),
    ((1, 2, 9, 8), (3, 2, 5, 5), 2, 2),
    ((3, 4, 6, 9), (5, 4, 1, 1), 2, 0),
    ((2, 3, 8, 5), (4, 3, 3, 2), (2, 1), (1, 2)),
    ((1, 2, 5, 7), (2, 2, 4, 3), (1, 2), 1),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_values_and_gradients_match_torch(x_shape, w_shape, stride, padding):
    """conv2d's output and the gradients of x, weight and bias equal torch's (float64)"""
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    check_conv_against_torch(rng.standard_normal(x_shape), rng.standard_normal(w_shape),
                             rng.standard_normal(w_shape[0]), stride, padding, rng)


@settings(max_examples=15)
@given(n=st.integers(1, 2), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)), stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), extra=st.tuples(st.integers(0, 4), st.integers(0, 4)),
       seed=st.integers(0, 1000))
def test_conv2d_any_shape_matches_torch(n, c_in, c_out, kernel, stride, padding, extra, seed):
    """conv2d matches torch on shapes, kernels, strides and paddings drawn at random"""
    rng = np.random.default_rng(seed)
    x_shape = (n, c_in, max(1, kernel[0] + extra[0] - padding[0]), max(1, kernel[1] + extra[1] - padding[1]))
    check_conv_against_torch(rng.standard_normal(x_shape), rng.standard_normal((c_out, c_in, *kernel)),
                             rng.standard_normal(c_out), stride, padding, rng)


def test_conv2d_without_bias():
    """conv2d with bias=None equals torch's, and backward gives x and weight their gradients"""
    rng = np.random.default_rng(3)
    check_conv_against_torch(rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((3, 2, 3, 3)), None, 2, 1, rng)


def central_differences(arrays, index, probe, stride, padding):
    """d sum(conv2d_naive(x, weight, bias) * probe) / d arrays[index], by central differences (eps 1e-6)."""
    numeric = np.zeros_like(arrays[index])
    for position in np.ndindex(*arrays[index].shape):
        shifted = [a.copy() for a in arrays]
        shifted[index][position] += 1e-6
        up = np.sum(conv2d_naive(*shifted, stride, padding).data * probe)
        shifted[index][position] -= 2e-6
        numeric[position] = (up - np.sum(conv2d_naive(*shifted, stride, padding).data * probe)) / 2e-6
    return numeric


def test_conv2d_central_differences():
    """conv2d's gradients agree with central differences (eps 1e-6) for x, weight and bias"""
    rng = np.random.default_rng(4)
    x0, w0, b0 = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((2, 2, 3, 2)), rng.standard_normal(2)
    stride, padding = (2, 1), 1
    probe = rng.standard_normal(conv_out_shape(x0.shape, w0.shape, stride, padding))
    x, w, b = Tensor(x0, requires_grad=True), Tensor(w0, requires_grad=True), Tensor(b0, requires_grad=True)
    conv2d(x, w, b, stride, padding).backward(probe)
    for index, (name, tensor) in enumerate((("x", x), ("weight", w), ("bias", b))):
        expect_close(tensor.grad, central_differences([x0, w0, b0], index, probe, stride, padding), rtol=1e-5, atol=1e-7,
                     call=f"{name}.grad of sum(conv2d(x, weight, bias, stride=(2, 1), padding=1) * probe)",
                     hint="the gradient is the slope (L(v + eps) - L(v - eps)) / (2 eps) for every number v")


def test_conv2d_gradients_only_where_asked():
    """Only inputs that require grad get a .grad: images without it, or a frozen weight, still give the others theirs"""
    rng = np.random.default_rng(5)
    x0, w0 = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((3, 1, 3, 3))
    upstream = rng.standard_normal((2, 3, 6, 6))
    x, w = Tensor(x0), Tensor(w0, requires_grad=True)
    conv2d(x, w, padding=1).backward(upstream)
    expect_equal(x.grad is None, True, call="x.grad is None after conv2d(x, weight, padding=1).backward(g), x without requires_grad",
                 hint="only tensors with requires_grad=True receive a .grad")
    expect_close(w.grad, torch_conv(x0, w0, None, 1, 1, upstream)[2], rtol=RTOL, atol=ATOL,
                 call="weight.grad after conv2d(x, weight, padding=1).backward(g)",
                 hint="return None for dL/dx when x does not require grad, but still compute dL/dweight")
    x, w = Tensor(x0, requires_grad=True), Tensor(w0)
    conv2d(x, w, padding=1).backward(upstream)
    expect_equal(w.grad is None, True, call="weight.grad is None after conv2d(x, frozen weight, padding=1).backward(g)",
                 hint="a weight without requires_grad gets no .grad")
    expect_close(x.grad, torch_conv(x0, w0, None, 1, 1, upstream)[1], rtol=RTOL, atol=ATOL,
                 call="x.grad after conv2d(x, frozen weight, padding=1).backward(g)",
                 hint="record the Function when ANY input (x, weight or bias) requires grad: a conv layer deep in "
                      "a network gets an x that requires grad")


def test_conv2d_shape_errors():
    """conv2d says what is wrong when channels do not match or the kernel is larger than the input"""
    rng = np.random.default_rng(6)
    x0, w0 = rng.standard_normal((1, 3, 5, 5)), rng.standard_normal((4, 3, 5, 5))
    expect_close(conv2d(Tensor(x0), Tensor(w0)), F.conv2d(torch.tensor(x0), torch.tensor(w0)), rtol=RTOL, atol=ATOL,
                 call="conv2d(x of shape (1, 3, 5, 5), weight of shape (4, 3, 5, 5))",
                 hint="a kernel as large as the input fits exactly once: output (1, 4, 1, 1)")
    x = Tensor(np.zeros((1, 3, 5, 5)))
    expect_raises(ValueError, lambda: conv2d(x, Tensor(np.zeros((4, 2, 3, 3)))),
                  call="conv2d(x of shape (1, 3, 5, 5), weight of shape (4, 2, 3, 3))", message_contains="channel",
                  hint="x.shape[1] (input channels) must equal weight.shape[1]: raise a ValueError that says so")
    error = expect_raises(ValueError, lambda: conv2d(x, Tensor(np.zeros((4, 3, 7, 7)))),
                          call="conv2d(x of shape (1, 3, 5, 5), weight of shape (4, 3, 7, 7))",
                          hint="a 7x7 kernel does not fit in a 5x5 input without padding: the output would be empty")
    expect_that(str(error), mentions, "7", "5", call="the message of conv2d(x (1, 3, 5, 5), weight (4, 3, 7, 7))",
                expected="a message that names the kernel size 7 and the input size 5",
                hint="check the sizes yourself before taking the windows, and name them in the ValueError")


# -- pooling ------------------------------------------------------------------------------

POOL_CASES = [
    # (x shape, kernel, stride)
    ((2, 3, 6, 8), 2, None),
    ((1, 2, 6, 5), 3, 1),
    ((2, 2, 7, 9), 3, 2),
    ((1, 2, 6, 7), (2, 3), (2, 1)),
]


@pytest.mark.parametrize("x_shape, kernel, stride", POOL_CASES)
def test_max_pool2d_matches_torch(x_shape, kernel, stride):
    """max_pool2d's values and gradient equal torch's"""
    rng = np.random.default_rng(sum(x_shape) + int(np.sum(kernel)))
    x0 = rng.standard_normal(x_shape)
    upstream = rng.standard_normal(pool_out_shape(x_shape, kernel, stride))
    x = Tensor(x0, requires_grad=True)
    out = max_pool2d(x, kernel, stride)
    call = f"max_pool2d(x of shape {x_shape}, {kernel}, stride={stride})"
    expect_close(out, torch_pool("max_pool2d", x0, kernel, stride, upstream)[0], rtol=RTOL, atol=ATOL, call=call,
                 hint="the largest value of each window, per channel; stride defaults to kernel_size")
    out.backward(upstream)
    expect_close(x.grad, torch_pool("max_pool2d", x0, kernel, stride, upstream)[1], rtol=RTOL, atol=ATOL,
                 call=f"x.grad after {call}.backward(g)",
                 hint="each window's gradient goes to its argmax pixel; where windows overlap, the pixel gets the sum")


@pytest.mark.parametrize("x_shape, kernel, stride", POOL_CASES)
def test_avg_pool2d_matches_torch(x_shape, kernel, stride):
    """avg_pool2d's values and gradient equal torch's"""
    rng = np.random.default_rng(sum(x_shape) + int(np.sum(kernel)) + 1)
    x0 = rng.standard_normal(x_shape)
    upstream = rng.standard_normal(pool_out_shape(x_shape, kernel, stride))
    x = Tensor(x0, requires_grad=True)
    out = avg_pool2d(x, kernel, stride)
    call = f"avg_pool2d(x of shape {x_shape}, {kernel}, stride={stride})"
    expect_close(out, torch_pool("avg_pool2d", x0, kernel, stride, upstream)[0], rtol=RTOL, atol=ATOL, call=call,
                 hint="the mean of each window, per channel; stride defaults to kernel_size")
    out.backward(upstream)
    expect_close(x.grad, torch_pool("avg_pool2d", x0, kernel, stride, upstream)[1], rtol=RTOL, atol=ATOL,
                 call=f"x.grad after {call}.backward(g)",
                 hint="every pixel of a window gets 1 / (kH * kW) of that window's gradient")


def test_max_pool2d_ties_go_to_the_first_maximum():
    """When pixels tie for the maximum, the whole gradient goes to the first one (row-major), like torch"""
    x0 = np.array([[[[1.0, 1.0, 0.0, 2.0],
                     [1.0, 1.0, 2.0, 2.0],
                     [0.0, 0.0, 0.0, 0.0],
                     [0.0, 0.0, 0.0, 0.0]]]])
    x = Tensor(x0, requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    expected = np.array([[[[1.0, 0.0, 0.0, 1.0],
                           [0.0, 0.0, 0.0, 0.0],
                           [1.0, 0.0, 1.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0]]]])
    expect_equal(x.grad.data, expected, call="x.grad after max_pool2d(x, 2).sum().backward(), x with tied maxima",
                 hint="np.argmax of the flattened window returns the first maximum: one pixel per window gets the gradient")


def test_pool_layers():
    """MaxPool2d and AvgPool2d default the stride to the kernel size, take an explicit one, and drop incomplete windows"""
    rng = np.random.default_rng(8)
    x0 = rng.standard_normal((2, 3, 7, 5))
    for layer, name in ((MaxPool2d(2), "max_pool2d"), (AvgPool2d(2), "avg_pool2d")):
        expect_close(layer(Tensor(x0)), getattr(F, name)(torch.tensor(x0), 2), rtol=RTOL, atol=ATOL,
                     call=f"{type(layer).__name__}(2)(x of shape (2, 3, 7, 5))",
                     hint="stride=None means stride = kernel_size: output (2, 3, 3, 2)")
    for layer, name in ((MaxPool2d((3, 2), stride=(2, 1)), "max_pool2d"), (AvgPool2d((3, 2), stride=(2, 1)), "avg_pool2d")):
        expect_close(layer(Tensor(x0)), getattr(F, name)(torch.tensor(x0), (3, 2), (2, 1)), rtol=RTOL, atol=ATOL,
                     call=f"{type(layer).__name__}((3, 2), stride=(2, 1))(x of shape (2, 3, 7, 5))",
                     hint="kernel_size and stride may be (h, w) pairs; forward passes both on to the function")


# -- Flatten ------------------------------------------------------------------------------


def test_flatten_shape_and_gradient():
    """Flatten keeps the batch axis, merges the rest, and sends gradients back in the input's shape"""
    rng = np.random.default_rng(9)
    x0 = rng.standard_normal((2, 3, 4, 5))
    x = Tensor(x0, requires_grad=True)
    out = Flatten()(x)
    expect_equal(out.shape, (2, 60), call="Flatten()(x of shape (2, 3, 4, 5)).shape",
                 hint="(N, C, H, W) -> (N, C * H * W): start_axis=1 keeps the batch axis")
    expect_equal(out.data, x0.reshape(2, 60), call="Flatten()(x).data", hint="the same numbers in row-major order")
    upstream = rng.standard_normal((2, 60))
    out.backward(upstream)
    expect_equal(x.grad.data, upstream.reshape(2, 3, 4, 5), call="x.grad after Flatten()(x).backward(g)",
                 hint="use Tensor.reshape, which module 05 already differentiates")
    expect_equal(Flatten(start_axis=2)(Tensor(x0)).data, x0.reshape(2, 3, 20), call="Flatten(start_axis=2)(x of shape (2, 3, 4, 5))",
                 hint="merge the axes from start_axis to the end")
    expect_equal(Flatten()(Tensor(np.zeros((0, 3, 4, 5)))).shape, (0, 60), call="Flatten()(x of shape (0, 3, 4, 5)).shape",
                 hint="a batch of zero images still has a shape: compute C * H * W yourself instead of passing -1")


# -- Conv2d -------------------------------------------------------------------------------


def test_conv2d_layer_parameters():
    """Conv2d has float32 parameters weight (C_out, C_in, kH, kW) and bias (C_out,), named like torch, and uses both"""
    layer = Conv2d(3, 8, (3, 5))
    names = [name for name, _ in layer.named_parameters()]
    expect_equal(names, ["weight", "bias"], call="[name for name, _ in Conv2d(3, 8, (3, 5)).named_parameters()]",
                 hint="store self.weight, then self.bias, as Tensors with requires_grad=True")
    expect_equal(layer.weight.shape, (8, 3, 3, 5), call="Conv2d(3, 8, (3, 5)).weight.shape",
                 hint="PyTorch's layout: (out_channels, in_channels, kH, kW)")
    expect_equal(layer.bias.shape, (8,), call="Conv2d(3, 8, (3, 5)).bias.shape", hint="one bias per output channel")
    for name in ("weight", "bias"):
        expect_equal(str(getattr(layer, name).dtype), "float32", call=f"Conv2d(3, 8, (3, 5)).{name}.dtype",
                     hint="parameters are float32, like PyTorch's")
    expect_equal((layer.kernel_size, layer.stride, layer.padding), ((3, 5), (1, 1), (0, 0)),
                 call="(layer.kernel_size, layer.stride, layer.padding) of Conv2d(3, 8, (3, 5))",
                 hint="keep the settings as (h, w) pairs, as torch.nn.Conv2d does")
    rng = np.random.default_rng(7)
    w0 = rng.standard_normal((8, 3, 3, 5)).astype(np.float32)
    b0 = rng.standard_normal(8).astype(np.float32)
    x0 = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    layer.weight.data[...] = w0
    layer.bias.data[...] = b0
    expect_close(layer(Tensor(x0)), F.conv2d(torch.tensor(x0, dtype=torch.float64), torch.tensor(w0, dtype=torch.float64),
                                             torch.tensor(b0, dtype=torch.float64)),
                 rtol=1e-4, atol=1e-4, call="Conv2d(3, 8, (3, 5)) with weight w and bias b, on x of shape (2, 3, 6, 7)",
                 hint="forward is conv2d(x, self.weight, self.bias, self.stride, self.padding) (float32: about 6 digits)")
    no_bias = Conv2d(2, 4, 3, bias=False)
    expect_equal([name for name, _ in no_bias.named_parameters()], ["weight"],
                 call="named_parameters() of Conv2d(2, 4, 3, bias=False)", hint="bias=False: self.bias = None")


def test_conv2d_layer_initialisation():
    """Conv2d's weights are Kaiming uniform in +-sqrt(6 / fan_in), the bias zero, reproducible with manual_seed"""
    manual_seed(0)
    first = Conv2d(16, 64, 3)
    expect_that(first.weight.data, kaiming_uniform, float(np.sqrt(6 / (16 * 3 * 3))), call="Conv2d(16, 64, 3).weight",
                expected=f"uniform in [-b, b] with b = sqrt(6 / fan_in) = {np.sqrt(6 / 144):.4f}: every |w| <= b, the "
                         f"largest close to b, mean about 0, standard deviation b / sqrt(3) = {np.sqrt(2 / 144):.4f} within 3%",
                hint="fan_in = in_channels * kH * kW = 144 (the numbers one output sums); "
                     "generator().uniform(-bound, bound, size=...)")
    expect_equal(first.bias.data, np.zeros(64, dtype=np.float32), call="Conv2d(16, 64, 3).bias",
                 hint="start the bias at zero, like Linear")
    manual_seed(0)
    again = Conv2d(16, 64, 3)
    expect_that((again.weight.data, first.weight.data), same_arrays, call="Conv2d(16, 64, 3).weight after manual_seed(0), twice",
                expected="the same weights", hint="draw from tinytorch.tensor.generator(), so manual_seed makes models reproducible")


def torch_conv_layer(weight, bias, kernel, stride, padding, x):
    """torch.nn.Conv2d(2, 3, ...) holding `weight` and `bias`, applied to x (float64)."""
    reference = torch.nn.Conv2d(2, 3, kernel, stride=stride, padding=padding).double()
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(weight))
        reference.bias.copy_(torch.tensor(bias))
        return reference(torch.tensor(x))


@pytest.mark.parametrize("size, kernel, stride, padding", [((28, 28), 5, 1, 2), ((13, 9), 3, 2, 0), ((10, 7), (3, 1), (2, 3), (1, 0))])
def test_conv2d_layer_matches_torch(size, kernel, stride, padding):
    """Conv2d holding the same weights as torch.nn.Conv2d gives the same output, of shape (H + 2p - k)//s + 1"""
    rng = np.random.default_rng(10)
    kh, kw = pair(kernel)
    w0, b0 = rng.standard_normal((3, 2, kh, kw)), rng.standard_normal(3)
    x0 = rng.standard_normal((2, 2, *size))
    layer = Conv2d(2, 3, kernel, stride=stride, padding=padding)
    layer.weight.data = w0.copy()  # float64, for an exact comparison
    layer.bias.data = b0.copy()
    call = f"Conv2d(2, 3, {kernel}, stride={stride}, padding={padding})(x of shape {x0.shape})"
    out = layer(Tensor(x0))
    expect_equal(tuple(out.shape), conv_out_shape(x0.shape, w0.shape, stride, padding), call=f"{call}.shape",
                 hint="H_out = (H + 2 * padding - kH) // stride + 1")
    expect_close(out, torch_conv_layer(w0, b0, kernel, stride, padding, x0), rtol=RTOL, atol=ATOL, call=call,
                 hint="forward is conv2d(x, self.weight, self.bias, self.stride, self.padding)")


def test_tiny_conv_net_trains():
    """A tiny conv net learns horizontal versus vertical bars: the loss falls over 15 Adam steps"""
    rng = np.random.default_rng(11)
    images = rng.normal(0.0, 0.1, (16, 1, 8, 8)).astype(np.float32)
    labels = np.arange(16) % 2
    for index, label in enumerate(labels):
        row = rng.integers(0, 8)
        if label == 0:
            images[index, 0, row, :] += 1.0
        else:
            images[index, 0, :, row] += 1.0
    model = Sequential(Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(4 * 4 * 4, 2))
    conv, linear = model[0], model[4]
    conv.weight.data[...] = rng.uniform(-0.5, 0.5, (4, 1, 3, 3))  # a fixed start, whatever the initialisation
    conv.bias.data[...] = 0.0
    linear.weight.data[...] = rng.uniform(-0.2, 0.2, linear.weight.shape)
    linear.bias.data[...] = 0.0
    optimizer = Adam(model.parameters(), lr=0.02)
    losses = []
    grads = []
    for _ in range(15):
        loss = CrossEntropyLoss()(model(Tensor(images)), Tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        grads.append(None if conv.weight.grad is None else conv.weight.grad.data.copy())
        optimizer.step()
        losses.append(loss.item())
    expect_that(grads[0], nonzero_gradient, (4, 1, 3, 3),
                call="model[0].weight.grad after loss.backward(), model = Conv2d -> ReLU -> MaxPool2d -> Flatten -> Linear",
                expected="a nonzero gradient of shape (4, 1, 3, 3)",
                hint="conv2d must record a Conv2dFn on its output when weight requires grad")
    expect_that(losses, falls_below, 0.5, call="training loss over 15 Adam steps (lr 0.02)",
                expected="the last loss below half the first",
                hint="if the loss barely moves, a gradient is probably wrong or not recorded")


def test_conv_pool_chain_matches_torch():
    """Gradients flow through conv -> max pool -> conv -> avg pool exactly as in torch"""
    rng = np.random.default_rng(12)
    x0, w1, b1 = rng.standard_normal((2, 2, 10, 9)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    w2 = rng.standard_normal((2, 3, 2, 2))
    upstream = rng.standard_normal((2, 2, 3, 2))
    leaves = [Tensor(a, requires_grad=True) for a in (x0, w1, b1, w2)]
    x, tw1, tb1, tw2 = leaves
    out = avg_pool2d(conv2d(max_pool2d(conv2d(x, tw1, tb1, padding=1), 2), tw2, stride=1), 2, 1)
    expect_close(out, torch_chain(x0, w1, b1, w2, upstream)[0], rtol=RTOL, atol=ATOL,
                 call="avg_pool2d(conv2d(max_pool2d(conv2d(x, w1, b1, padding=1), 2), w2), 2, 1)",
                 hint="each primitive must equal torch's on its own first")
    out.backward(upstream)
    for number, (name, ours) in enumerate(zip(("x", "w1", "b1", "w2"), leaves)):
        expect_close(ours.grad, torch_chain(x0, w1, b1, w2, upstream)[1][number], rtol=RTOL, atol=ATOL,
                     call=f"{name}.grad after the chain's backward(g)",
                     hint="every Function returns gradients shaped like its inputs; module 05 chains them")


def torch_chain(x0, w1, b1, w2, upstream):
    """torch's value of the chain and the gradients of its four leaves."""
    leaves = [torch.tensor(a, requires_grad=True) for a in (x0, w1, b1, w2)]
    tx, tw1, tb1, tw2 = leaves
    out = F.avg_pool2d(F.conv2d(F.max_pool2d(F.conv2d(tx, tw1, tb1, padding=1), 2), tw2), 2, 1)
    out.backward(torch.tensor(upstream))
    return out.detach(), [leaf.grad for leaf in leaves]


def test_no_grad_records_nothing():
    """Under no_grad(), conv2d and the poolings return tensors without a graph (and the right values)"""
    rng = np.random.default_rng(13)
    x0, w0 = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    x = Tensor(x0, requires_grad=True)
    layer = Conv2d(2, 3, 3)
    layer.weight.data = w0.copy()
    with no_grad():
        outputs = {"Conv2d(2, 3, 3)(x)": layer(x), "max_pool2d(x, 2)": max_pool2d(x, 2), "avg_pool2d(x, 2)": avg_pool2d(x, 2)}
    for call, out in outputs.items():
        expect_equal((out.requires_grad, getattr(out, "_grad_fn", None) is None), (False, True),
                     call=f"(out.requires_grad, out._grad_fn is None) for out = {call} under no_grad()",
                     hint="record a Function only when is_grad_enabled() and an input requires grad")
    expect_close(outputs["Conv2d(2, 3, 3)(x)"], F.conv2d(torch.tensor(x0), torch.tensor(w0)), rtol=RTOL, atol=ATOL,
                 call="Conv2d(2, 3, 3) with weight w, zero bias, on x, under no_grad()",
                 hint="no_grad() changes what is recorded, never the value")
    expect_close(outputs["max_pool2d(x, 2)"], F.max_pool2d(torch.tensor(x0), 2), rtol=RTOL, atol=ATOL,
                 call="max_pool2d(x, 2) under no_grad()", hint="no_grad() changes what is recorded, never the value")
    recorded = layer(x)
    expect_equal((recorded.requires_grad, recorded._grad_fn is not None), (True, True),
                 call="(out.requires_grad, out._grad_fn is not None) for out = Conv2d(2, 3, 3)(x), recording on",
                 hint="outside no_grad(), mark the output: record(out, Conv2dFn(...))")


def test_float32_stays_float32():
    """float32 images through Conv2d and the poolings stay float32"""
    x0 = np.random.default_rng(14).standard_normal((2, 1, 8, 8)).astype(np.float32)
    x = Tensor(x0)
    for call, out in (("Conv2d(1, 2, 3)(x)", Conv2d(1, 2, 3)(x)), ("max_pool2d(x, 2)", max_pool2d(x, 2)),
                      ("avg_pool2d(x, 2)", avg_pool2d(x, 2))):
        expect_equal(str(out.dtype), "float32", call=f"{call}.dtype, x float32",
                     hint="keep the input's dtype: float64 doubles the memory and halves the speed")
    expect_close(avg_pool2d(x, 2), x0.astype(np.float64).reshape(2, 1, 4, 2, 4, 2).mean(axis=(3, 5)), rtol=1e-5, atol=1e-5,
                 call="avg_pool2d(x float32 of shape (2, 1, 8, 8), 2)", hint="the mean of each 2x2 block")
