"""Hidden checks for module 09 (spatial): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal
from tinytorch.spatial import Conv2d, avg_pool2d, conv2d, max_pool2d
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12


def torch_leaves_and_output(arrays, function, upstream):
    """torch's output of function(*leaves) and the gradient of every leaf for the upstream gradient."""
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = function(*leaves)
    out.backward(torch.tensor(upstream))
    return out.detach(), [leaf.grad for leaf in leaves]


def strided_conv(x, w, b):
    return F.conv2d(x, w, b, stride=3, padding=1)


def test_stride_larger_than_kernel_skips_pixels():
    """Stride 3 with a 2x2 kernel and padding: skipped pixels get zero gradient, like torch"""
    rng = np.random.default_rng(31)
    x0, w0, b0 = rng.standard_normal((2, 2, 8, 7)), rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(3)
    upstream = rng.standard_normal((2, 3, 3, 3))  # (8 + 2 - 2) // 3 + 1 = 3 and (7 + 2 - 2) // 3 + 1 = 3
    x, w, b = (Tensor(a, requires_grad=True) for a in (x0, w0, b0))
    out = conv2d(x, w, b, stride=3, padding=1)
    expect_close(out, torch_leaves_and_output((x0, w0, b0), strided_conv, upstream)[0], rtol=RTOL, atol=ATOL,
                 call="conv2d(x (2, 2, 8, 7), w (3, 2, 2, 2), b, stride=3, padding=1)",
                 hint="windows start every 3 pixels of the padded input")
    out.backward(upstream)
    for number, (name, ours) in enumerate((("x", x), ("weight", w), ("bias", b))):
        expect_close(ours.grad, torch_leaves_and_output((x0, w0, b0), strided_conv, upstream)[1][number], rtol=RTOL, atol=ATOL,
                     call=f"{name}.grad, stride 3 > kernel 2",
                     hint="slice dx[:, :, p : p + s*(H_out-1) + 1 : s, ...]: pixels no window covers stay zero")


def torch_reused(x0, w1, w2):
    """torch's value and x-gradient of sum(conv(x, w1) + 0.5 * sum(conv(x, w2, stride 2)))."""
    tx = torch.tensor(np.ascontiguousarray(x0), requires_grad=True)
    out = F.conv2d(tx, torch.tensor(w1), padding=1) + F.conv2d(tx, torch.tensor(w2), stride=2, padding=1).sum() * 0.5
    out.sum().backward()
    return out.detach(), tx.grad


def test_reused_and_non_contiguous_input():
    """A transposed (non-contiguous) input used by two convolutions gets the sum of both gradients"""
    rng = np.random.default_rng(32)
    base = rng.standard_normal((2, 3, 6, 7))
    x0 = base.transpose(0, 1, 3, 2)  # (2, 3, 7, 6), a view with unusual strides
    w1, w2 = rng.standard_normal((2, 3, 3, 3)), rng.standard_normal((2, 3, 3, 3))
    x = Tensor(x0, requires_grad=True)
    out = conv2d(x, Tensor(w1), padding=1) + conv2d(x, Tensor(w2), stride=2, padding=1).sum() * 0.5
    out.sum().backward()
    expect_close(out, torch_reused(x0, w1, w2)[0], rtol=RTOL, atol=ATOL, call="conv2d of a transposed view of x",
                 hint="sliding_window_view works on any strides; do not assume x is contiguous")
    expect_close(x.grad, torch_reused(x0, w1, w2)[1], rtol=RTOL, atol=ATOL, call="x.grad with x used by two convolutions",
                 hint="each Conv2dFn returns its own dL/dx; module 05 adds them")


def tied_pool(x):
    return F.max_pool2d(x, (2, 3), (1, 2))


def test_non_square_overlapping_max_pool_with_ties():
    """A (2, 3) max pool with stride (1, 2) on a tie-heavy integer input matches torch's gradient"""
    rng = np.random.default_rng(33)
    x0 = rng.integers(0, 3, (2, 2, 6, 9)).astype(np.float64)
    upstream = rng.standard_normal((2, 2, 5, 4))  # (6 - 2) // 1 + 1 = 5 and (9 - 3) // 2 + 1 = 4
    x = Tensor(x0, requires_grad=True)
    out = max_pool2d(x, (2, 3), (1, 2))
    expect_close(out, torch_leaves_and_output((x0,), tied_pool, upstream)[0], rtol=RTOL, atol=ATOL,
                 call="max_pool2d(x (2, 2, 6, 9), (2, 3), stride=(1, 2))",
                 hint="kernel and stride may differ between height and width")
    out.backward(upstream)
    expect_close(x.grad, torch_leaves_and_output((x0,), tied_pool, upstream)[1][0], rtol=RTOL, atol=ATOL,
                 call="x.grad after max_pool2d(x, (2, 3), (1, 2)).backward(g), ties",
                 hint="first maximum of each window in row-major order; overlapping windows add up")


def test_one_by_one_conv_is_a_linear_map_per_pixel():
    """A 1x1 Conv2d without bias equals a per-pixel matrix product, and its state_dict has torch's names"""
    rng = np.random.default_rng(34)
    w0 = rng.standard_normal((3, 4, 1, 1)).astype(np.float32)
    x0 = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    layer = Conv2d(4, 3, 1, bias=False)
    layer.weight.data[...] = w0
    expect_close(layer(Tensor(x0)), np.einsum("oc,nchw->nohw", w0[:, :, 0, 0].astype(np.float64), x0.astype(np.float64)),
                 rtol=1e-5, atol=1e-5, call="Conv2d(4, 3, 1, bias=False) with weight w, on x of shape (2, 4, 5, 3)",
                 hint="a 1x1 kernel mixes channels at each pixel and nothing else")
    expect_equal(list(layer.state_dict()), list(torch.nn.Conv2d(4, 3, 1, bias=False).state_dict()),
                 call="list(Conv2d(4, 3, 1, bias=False).state_dict())", hint="parameter names follow torch.nn.Conv2d")


def test_avg_pool_whole_image():
    """avg_pool2d with the kernel equal to the image size is global average pooling"""
    rng = np.random.default_rng(35)
    x0 = rng.standard_normal((3, 4, 5, 6))
    x = Tensor(x0, requires_grad=True)
    out = avg_pool2d(x, (5, 6))
    expect_close(out, x0.mean(axis=(2, 3), keepdims=True), rtol=RTOL, atol=ATOL, call="avg_pool2d(x (3, 4, 5, 6), (5, 6))",
                 hint="one window covering the whole image: its mean, shape (N, C, 1, 1)")
    out.sum().backward()
    expect_close(x.grad, np.full(x0.shape, 1 / 30), rtol=RTOL, atol=ATOL, call="x.grad after avg_pool2d(x, (5, 6)).sum().backward()",
                 hint="each pixel contributes 1/30 of the mean")
