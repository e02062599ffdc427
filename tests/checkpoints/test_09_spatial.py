"""Checkpoint 09: convolution, pooling and Flatten, forward and backward.

Oracles: torch.nn.functional.conv2d / max_pool2d / avg_pool2d in float64 (values and the
gradients of every input), central differences on a small convolution, the six-loop
`conv2d_naive` of the lesson on a tiny input, the adjoint identity between
`sliding_windows` and `scatter_windows`, torch.nn.Conv2d holding copied weights, and a tiny
conv net whose loss falls under Adam.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.expect import expect_close, expect_equal, expect_raises, expect_true
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


def torch_conv(x, weight, bias, stride, padding, upstream):
    """torch's conv2d output and the gradients of x, weight and bias (None when absent)."""
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(weight, requires_grad=True)
    tb = None if bias is None else torch.tensor(bias, requires_grad=True)
    out = F.conv2d(tx, tw, tb, stride=stride, padding=padding)
    out.backward(torch.tensor(upstream))
    return out, tx.grad, tw.grad, None if tb is None else tb.grad


def check_conv_against_torch(x0, w0, b0, stride, padding, rng):
    """Run conv2d forward and backward and compare everything with torch."""
    call = f"conv2d(x {x0.shape}, weight {w0.shape}, {'bias' if b0 is not None else 'bias=None'}, stride={stride}, padding={padding})"
    x, w = Tensor(x0, requires_grad=True), Tensor(w0, requires_grad=True)
    b = None if b0 is None else Tensor(b0, requires_grad=True)
    out = conv2d(x, w, b, stride=stride, padding=padding)
    expected_shape = tuple(torch.nn.functional.conv2d(torch.tensor(x0), torch.tensor(w0), stride=stride, padding=padding).shape)
    expect_equal(tuple(out.shape), expected_shape, call=f"{call}.shape",
                 hint="H_out = (H + 2 * padding - kH) // stride + 1, and W_out likewise")
    upstream = rng.standard_normal(out.shape)
    expected, gx, gw, gb = torch_conv(x0, w0, b0, stride, padding, upstream)
    expect_close(out, expected, rtol=RTOL, atol=ATOL, call=call,
                 hint="out[n, o, i, j] = bias[o] + sum over c, p, q of padded_x[n, c, i*s + p, j*s + q] * weight[o, c, p, q]")
    out.backward(upstream)
    expect_close(w.grad, gw, rtol=RTOL, atol=ATOL, call=f"weight.grad after {call}.backward(g)",
                 hint="dL/dweight = (g2.T @ cols).reshape(weight.shape), with g2 rows in the same order as cols")
    expect_close(x.grad, gx, rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
                 hint="scatter dL/dcols back with scatter_windows into the padded shape, then cut the padding off")
    if b0 is not None:
        expect_close(b.grad, gb, rtol=RTOL, atol=ATOL, call=f"bias.grad after {call}.backward(g)",
                     hint="the bias is added at every position of every image: g.sum(axis=(0, 2, 3))")


# -- the windows --------------------------------------------------------------------------


def test_sliding_windows_is_a_view_of_every_window():
    """sliding_windows gives (N, C, H_out, W_out, kH, kW) windows at the stride, without copying"""
    x = np.arange(2 * 3 * 7 * 6, dtype=np.float64).reshape(2, 3, 7, 6)
    windows = sliding_windows(x, (3, 2), (2, 1))
    expect_equal(windows.shape, (2, 3, 3, 5, 3, 2), call="sliding_windows(x of shape (2, 3, 7, 6), (3, 2), (2, 1)).shape",
                 hint="(H - kH) // sH + 1 = 3 window rows and (W - kW) // sW + 1 = 5 window columns")
    expect_equal(windows[1, 2, 2, 4], x[1, 2, 4:7, 4:6], call="sliding_windows(x, (3, 2), (2, 1))[1, 2, 2, 4]",
                 hint="window (i, j) is x[n, c, i*sH : i*sH + kH, j*sW : j*sW + kW]")
    expect_true(np.shares_memory(windows, x), call="np.shares_memory(sliding_windows(x, ...), x)",
                expected="True (a view of x)", got="False (a copy)",
                hint="sliding_window_view reads the same memory with new strides; slicing with ::stride keeps it a view")


@settings(max_examples=15)
@given(kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       extra=st.tuples(st.integers(0, 4), st.integers(0, 4)), seed=st.integers(0, 1000))
def test_scatter_windows_is_the_adjoint_of_sliding_windows(kernel, stride, extra, seed):
    """sum(sliding_windows(x) * g) == sum(x * scatter_windows(g)): overlapping windows add up"""
    rng = np.random.default_rng(seed)
    shape = (2, 2, kernel[0] + extra[0], kernel[1] + extra[1])
    x = rng.standard_normal(shape)
    windows = sliding_windows(x, kernel, stride)
    g = rng.standard_normal(windows.shape)
    scattered = scatter_windows(g, shape, kernel, stride)
    expect_equal(scattered.shape, shape, call=f"scatter_windows(g, {shape}, {kernel}, {stride}).shape",
                 hint="the result has the shape of the x the windows came from")
    left, right = float(np.sum(windows * g)), float(np.sum(x * scattered))
    expect_close(right, left, rtol=1e-10, call=f"sum(x * scatter_windows(g, {shape}, kernel={kernel}, stride={stride}))",
                 hint="loop over the kH * kW offsets (p, q) and ADD g[..., p, q] into x[:, :, p::sH, q::sW] "
                      "(limited to H_out and W_out positions): a pixel in several windows gets the sum")


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


def test_conv2d_central_differences():
    """conv2d's gradients agree with central differences (eps 1e-6) for x, weight and bias"""
    rng = np.random.default_rng(4)
    x0, w0, b0 = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((2, 2, 3, 2)), rng.standard_normal(2)
    stride, padding = (2, 1), 1
    probe = rng.standard_normal(conv2d_naive(x0, w0, b0, stride, padding).shape)

    def loss(x, w, b):
        with no_grad():
            return float(np.sum(conv2d(Tensor(x), Tensor(w), Tensor(b), stride, padding).data * probe))

    x, w, b = Tensor(x0, requires_grad=True), Tensor(w0, requires_grad=True), Tensor(b0, requires_grad=True)
    conv2d(x, w, b, stride, padding).backward(probe)
    arrays = [x0, w0, b0]
    for index, (name, tensor) in enumerate((("x", x), ("weight", w), ("bias", b))):
        numeric = np.zeros_like(arrays[index])
        for position in np.ndindex(*arrays[index].shape):
            shifted = [a.copy() for a in arrays]
            shifted[index][position] += 1e-6
            up = loss(*shifted)
            shifted[index][position] -= 2e-6
            numeric[position] = (up - loss(*shifted)) / 2e-6
        expect_close(tensor.grad, numeric, rtol=1e-5, atol=1e-7,
                     call=f"{name}.grad of sum(conv2d(x, weight, bias, stride=(2, 1), padding=1) * probe)",
                     hint="the gradient is the slope (L(v + eps) - L(v - eps)) / (2 eps) for every number v")


def test_conv2d_input_without_grad():
    """Images that do not require grad get no .grad, while the weight's gradient is still right"""
    rng = np.random.default_rng(5)
    x0, w0 = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((3, 1, 3, 3))
    x, w = Tensor(x0), Tensor(w0, requires_grad=True)
    out = conv2d(x, w, padding=1)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    _, _, gw, _ = torch_conv(x0, w0, None, 1, 1, upstream)
    expect_true(x.grad is None, call="x.grad after conv2d(x, weight).backward(g), x without requires_grad",
                expected="None", got=repr(x.grad), hint="only tensors with requires_grad=True receive a .grad")
    expect_close(w.grad, gw, rtol=RTOL, atol=ATOL, call="weight.grad after conv2d(x, weight, padding=1).backward(g)",
                 hint="return None for dL/dx when x does not require grad, but still compute dL/dweight")


def test_conv2d_shape_errors():
    """conv2d says what is wrong when channels do not match or the kernel is larger than the input"""
    x = Tensor(np.zeros((1, 3, 5, 5)))
    expect_raises(ValueError, lambda: conv2d(x, Tensor(np.zeros((4, 2, 3, 3)))),
                  call="conv2d(x of shape (1, 3, 5, 5), weight of shape (4, 2, 3, 3))", message_contains="channel",
                  hint="x.shape[1] (input channels) must equal weight.shape[1]: raise a ValueError that says so")
    expect_raises(ValueError, lambda: conv2d(x, Tensor(np.zeros((4, 3, 7, 7)))),
                  call="conv2d(x of shape (1, 3, 5, 5), weight of shape (4, 3, 7, 7))",
                  hint="a 7x7 kernel does not fit in a 5x5 input without padding: the output would be empty")


# -- pooling ------------------------------------------------------------------------------

POOL_CASES = [
    # (x shape, kernel, stride)
    ((2, 3, 6, 8), 2, None),
    ((1, 2, 6, 5), 3, 1),
    ((2, 2, 7, 9), 3, 2),
]


@pytest.mark.parametrize("x_shape, kernel, stride", POOL_CASES)
def test_max_pool2d_matches_torch(x_shape, kernel, stride):
    """max_pool2d's values and gradient equal torch's"""
    rng = np.random.default_rng(sum(x_shape) + kernel)
    x0 = rng.standard_normal(x_shape)
    x = Tensor(x0, requires_grad=True)
    out = max_pool2d(x, kernel, stride)
    tx = torch.tensor(x0, requires_grad=True)
    expected = F.max_pool2d(tx, kernel, stride)
    call = f"max_pool2d(x of shape {x_shape}, {kernel}, stride={stride})"
    expect_close(out, expected, rtol=RTOL, atol=ATOL, call=call,
                 hint="the largest value of each window, per channel; stride defaults to kernel_size")
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    expect_close(x.grad, tx.grad, rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
                 hint="each window's gradient goes to its argmax pixel; where windows overlap, the pixel gets the sum")


@pytest.mark.parametrize("x_shape, kernel, stride", POOL_CASES)
def test_avg_pool2d_matches_torch(x_shape, kernel, stride):
    """avg_pool2d's values and gradient equal torch's"""
    rng = np.random.default_rng(sum(x_shape) + kernel + 1)
    x0 = rng.standard_normal(x_shape)
    x = Tensor(x0, requires_grad=True)
    out = avg_pool2d(x, kernel, stride)
    tx = torch.tensor(x0, requires_grad=True)
    expected = F.avg_pool2d(tx, kernel, stride)
    call = f"avg_pool2d(x of shape {x_shape}, {kernel}, stride={stride})"
    expect_close(out, expected, rtol=RTOL, atol=ATOL, call=call,
                 hint="the mean of each window, per channel; stride defaults to kernel_size")
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    expect_close(x.grad, tx.grad, rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
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
    """MaxPool2d and AvgPool2d default the stride to the kernel size and drop incomplete windows"""
    rng = np.random.default_rng(8)
    x0 = rng.standard_normal((2, 3, 7, 5))
    for layer, function in ((MaxPool2d(2), F.max_pool2d), (AvgPool2d(2), F.avg_pool2d)):
        out = layer(Tensor(x0))
        expect_close(out, function(torch.tensor(x0), 2), rtol=RTOL, atol=ATOL,
                     call=f"{type(layer).__name__}(2)(x of shape (2, 3, 7, 5))",
                     hint="stride=None means stride = kernel_size: output (2, 3, 3, 2)")
    out = AvgPool2d((3, 2), stride=(2, 1))(Tensor(x0))
    expect_close(out, F.avg_pool2d(torch.tensor(x0), (3, 2), (2, 1)), rtol=RTOL, atol=ATOL,
                 call="AvgPool2d((3, 2), stride=(2, 1))(x of shape (2, 3, 7, 5))",
                 hint="kernel_size and stride may be (h, w) pairs")


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
    expect_equal(Flatten(start_axis=2)(Tensor(x0)).shape, (2, 3, 20), call="Flatten(start_axis=2)(x of shape (2, 3, 4, 5)).shape",
                 hint="merge the axes from start_axis to the end")


# -- Conv2d -------------------------------------------------------------------------------


def test_conv2d_layer_parameters():
    """Conv2d has float32 parameters weight (C_out, C_in, kH, kW) and bias (C_out,), named like torch"""
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
    no_bias = Conv2d(2, 4, 3, bias=False)
    expect_equal([name for name, _ in no_bias.named_parameters()], ["weight"],
                 call="named_parameters() of Conv2d(2, 4, 3, bias=False)", hint="bias=False: self.bias = None")


def test_conv2d_layer_initialisation():
    """Conv2d's weights are Kaiming uniform in +-sqrt(6 / fan_in), the bias zero, reproducible with manual_seed"""
    manual_seed(0)
    layer = Conv2d(16, 64, 3)
    weight = layer.weight.data.astype(np.float64)
    fan_in = 16 * 3 * 3
    bound = np.sqrt(6 / fan_in)
    expect_true(np.abs(weight).max() <= bound + 1e-6 and np.abs(weight).max() > 0.95 * bound,
                call="abs(Conv2d(16, 64, 3).weight).max()", expected=f"just below sqrt(6 / fan_in) = {bound:.4f}",
                got=f"{np.abs(weight).max():.4f}", hint="fan_in = in_channels * kH * kW = 144; uniform in [-bound, bound]")
    expected_std = bound / np.sqrt(3)
    expect_true(abs(weight.std() / expected_std - 1) < 0.03, call="Conv2d(16, 64, 3).weight.std()",
                expected=f"{expected_std:.4f} (bound / sqrt(3)) within 3%", got=f"{weight.std():.4f}",
                hint="a uniform distribution on [-b, b] has standard deviation b / sqrt(3)")
    expect_equal(layer.bias.data, np.zeros(64, dtype=np.float32), call="Conv2d(16, 64, 3).bias",
                 hint="start the bias at zero, like Linear")
    manual_seed(0)
    expect_equal(Conv2d(16, 64, 3).weight.data, layer.weight.data, call="Conv2d(16, 64, 3).weight after manual_seed(0), twice",
                 hint="draw from tinytorch.tensor.generator(), so manual_seed makes models reproducible")


@pytest.mark.parametrize("size, kernel, stride, padding", [((28, 28), 5, 1, 2), ((13, 9), 3, 2, 0), ((10, 7), (3, 1), (2, 3), (1, 0))])
def test_conv2d_layer_matches_torch(size, kernel, stride, padding):
    """Conv2d with its weights copied into torch.nn.Conv2d gives the same output, of shape (H + 2p - k)//s + 1"""
    layer = Conv2d(2, 3, kernel, stride=stride, padding=padding)
    reference = torch.nn.Conv2d(2, 3, kernel, stride=stride, padding=padding).double()
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.weight.data))
        reference.bias.copy_(torch.randn(3, dtype=torch.float64))
    layer.weight.data = layer.weight.data.astype(np.float64)  # float64 for an exact comparison
    layer.bias.data = reference.bias.detach().numpy().copy()
    x0 = np.random.default_rng(10).standard_normal((2, 2, *size))
    call = f"Conv2d(2, 3, {kernel}, stride={stride}, padding={padding})(x of shape {x0.shape})"
    out = layer(Tensor(x0))
    expected = reference(torch.tensor(x0))
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    shape = (2, 3, (size[0] + 2 * ph - kh) // sh + 1, (size[1] + 2 * pw - kw) // sw + 1)
    expect_equal(tuple(out.shape), shape, call=f"{call}.shape", hint="H_out = (H + 2 * padding - kH) // stride + 1")
    expect_close(out, expected.detach(), rtol=RTOL, atol=ATOL, call=call,
                 hint="forward is conv2d(x, self.weight, self.bias, self.stride, self.padding)")


def test_tiny_conv_net_trains():
    """A tiny conv net learns horizontal versus vertical bars: the loss falls over 15 Adam steps"""
    manual_seed(0)
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
    optimizer = Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(15):
        loss = CrossEntropyLoss()(model(Tensor(images)), Tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    conv = model[0]
    expect_true(conv.weight.grad is not None and np.abs(conv.weight.grad.data).sum() > 0,
                call="model[0].weight.grad after loss.backward(), model = Conv2d -> ReLU -> MaxPool2d -> Flatten -> Linear",
                expected="a nonzero gradient", got=repr(conv.weight.grad),
                hint="conv2d must record a Conv2dFn on its output when weight requires grad")
    expect_true(losses[-1] < 0.5 * losses[0], call="training loss over 15 Adam steps (lr 0.02)",
                expected=f"below half the first loss ({losses[0]:.3f})", got=f"{[round(v, 3) for v in losses]}",
                hint="if the loss barely moves, a gradient is probably wrong or not recorded")


def test_conv_pool_chain_matches_torch():
    """Gradients flow through conv -> max pool -> conv -> avg pool exactly as in torch"""
    rng = np.random.default_rng(12)
    x0, w1, b1 = rng.standard_normal((2, 2, 10, 9)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    w2 = rng.standard_normal((2, 3, 2, 2))
    leaves = [Tensor(a, requires_grad=True) for a in (x0, w1, b1, w2)]
    x, tw1, tb1, tw2 = leaves
    out = avg_pool2d(conv2d(max_pool2d(conv2d(x, tw1, tb1, padding=1), 2), tw2, stride=1), 2, 1)
    torch_leaves = [torch.tensor(a, requires_grad=True) for a in (x0, w1, b1, w2)]
    tx, ttw1, ttb1, ttw2 = torch_leaves
    expected = F.avg_pool2d(F.conv2d(F.max_pool2d(F.conv2d(tx, ttw1, ttb1, padding=1), 2), ttw2), 2, 1)
    expect_close(out, expected.detach(), rtol=RTOL, atol=ATOL, call="avg_pool2d(conv2d(max_pool2d(conv2d(x, w1, b1, padding=1), 2), w2), 2, 1)",
                 hint="each primitive must equal torch's on its own first")
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for name, ours, theirs in zip(("x", "w1", "b1", "w2"), leaves, torch_leaves):
        expect_close(ours.grad, theirs.grad, rtol=RTOL, atol=ATOL, call=f"{name}.grad after the chain's backward(g)",
                     hint="every Function returns gradients shaped like its inputs; module 05 chains them")


def test_no_grad_records_nothing():
    """Under no_grad(), conv2d and the poolings return tensors without a graph"""
    rng = np.random.default_rng(13)
    x = Tensor(rng.standard_normal((1, 2, 6, 6)), requires_grad=True)
    layer = Conv2d(2, 3, 3)
    with no_grad():
        outputs = {"Conv2d(2, 3, 3)(x)": layer(x), "max_pool2d(x, 2)": max_pool2d(x, 2), "avg_pool2d(x, 2)": avg_pool2d(x, 2)}
    for call, out in outputs.items():
        expect_true(not out.requires_grad and getattr(out, "_grad_fn", None) is None, call=f"{call} under no_grad()",
                    expected="requires_grad=False and no _grad_fn",
                    got=f"requires_grad={out.requires_grad}, _grad_fn={getattr(out, '_grad_fn', None)}",
                    hint="record a Function only when is_grad_enabled() and an input requires grad")
    recorded = layer(x)
    expect_true(recorded.requires_grad and recorded._grad_fn is not None, call="Conv2d(2, 3, 3)(x) with recording on",
                expected="requires_grad=True and a _grad_fn", got=f"requires_grad={recorded.requires_grad}",
                hint="outside no_grad(), mark the output: out.requires_grad = True; out._grad_fn = function")


def test_float32_stays_float32():
    """float32 images through Conv2d and the poolings stay float32"""
    x = Tensor(np.random.default_rng(14).standard_normal((2, 1, 8, 8)).astype(np.float32))
    for call, out in (("Conv2d(1, 2, 3)(x)", Conv2d(1, 2, 3)(x)), ("max_pool2d(x, 2)", max_pool2d(x, 2)),
                      ("avg_pool2d(x, 2)", avg_pool2d(x, 2))):
        expect_equal(str(out.dtype), "float32", call=f"{call}.dtype, x float32",
                     hint="keep the input's dtype: float64 doubles the memory and halves the speed")
