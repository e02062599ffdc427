"""Checkpoint 18: acceleration (batch-last im2col, fused conv + ReLU, pooling by slabs, fused
cross-entropy, fused LayerNorm, fused attention over all heads, accelerate(model)).

Oracles: torch.nn.functional in float64, values and gradients: unfold / fold for im2col and
col2im, conv2d (+ relu), max_pool2d, cross_entropy, layer_norm, scaled_dot_product_attention,
and whole float64 torch models (a small LeNet trained by SGD, a pre-norm transformer block
written with torch's functional operations). The slow versions the fast ones replace: module
09's six-loop conv2d_naive, the per-head attention loop, module 04's CrossEntropyLoss and
module 13's LayerNorm, computed on the trusted side. Float32 inputs must give float32 results
and gradients (checked against torch in float32).

Every weight and input comes from this file's own seeded generators: models are built, then
every parameter is replaced by the test's numbers. No test measures time: speed-ups are
measured by bench/lenet_step.py, never asserted.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import show, torch64
from tinytorch.acceleration import (
    FusedCrossEntropyLoss,
    accelerate,
    attention_per_head,
    col2im,
    conv2d_fast,
    cross_entropy_fast,
    fused_attention,
    im2col,
    layer_norm_fast,
    max_pool2d_fast,
)
from tinytorch.activations import ReLU
from tinytorch.layers import Linear, Module, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD
from tinytorch.spatial import Conv2d, Flatten, MaxPool2d, conv2d_naive
from tinytorch.tensor import Tensor, generator
from tinytorch.transformers import Block, LayerNorm

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12          # one operation in float64
DEEP_RTOL, DEEP_ATOL = 1e-8, 1e-10  # a whole model in float64
F32_RTOL, F32_ATOL = 1e-4, 1e-5

LAYOUT_HINT = ("cols has one row per (c, p, q) in that order and one column per (i, j, n), the image index n "
               "varying fastest: fill a (C, kH, kW, H_out, W_out, N) array slab by slab from the padded "
               "batch-last input (C, H_pad, W_pad, N), then reshape")
CONV_HINT = ("out = weight.reshape(C_out, -1) @ cols (+ bias per row), reshaped (C_out, H_out, W_out, N) and "
             "transposed to (N, C_out, H_out, W_out); backward: gt = grad as (C_out, H_out*W_out*N), "
             "dweight = gt @ cols.T, dbias = gt.sum(1), dx = col2im(W2.T @ gt, ...)")


# -- the test's own inputs and models --------------------------------------------------------------


def conv_inputs(seed, n, c, h, w, c_out, kernel):
    rng = np.random.default_rng(seed)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return rng.standard_normal((n, c, h, w)), rng.standard_normal((c_out, c, kh, kw)), rng.standard_normal(c_out)


def out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def set_params(model, seed, dtype=np.float64):
    """Every parameter of `model` replaced by the test's numbers (drawn per parameter name, in `dtype`)."""
    for name, p in model.named_parameters():
        draw = np.random.default_rng([seed, sum(map(ord, name)), len(name)])
        if name.endswith("bias"):
            p.data = (0.1 * draw.standard_normal(p.shape)).astype(dtype)
        elif p.ndim == 1:  # a norm's gain
            p.data = (1.0 + 0.1 * draw.standard_normal(p.shape)).astype(dtype)
        else:
            p.data = (draw.standard_normal(p.shape) / np.sqrt(np.prod(p.shape[1:]))).astype(dtype)


def param_arrays(model) -> dict:
    return {name: np.array(p.data, dtype=np.float64) for name, p in model.named_parameters()}


def small_lenet():
    """(N, 1, 12, 12) -> conv 3x3 pad 1 -> pool -> conv 3x3 -> pool -> 16 -> Linear 3."""
    return Sequential(Conv2d(1, 3, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(3, 4, 3), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(16, 3))


def named_grads(model) -> list:
    """(name, gradient) of every parameter."""
    return [(name, None if p.grad is None else p.grad.data) for name, p in model.named_parameters()]


# -- the oracles -----------------------------------------------------------------------------------


def torch_unfold_cols(x0, kernel, stride, padding):
    """torch's unfold (N, C*kH*kW, L) laid out batch last: (C*kH*kW, L*N)."""
    cols = F.unfold(torch64(x0), kernel, padding=padding, stride=stride)
    return cols.permute(1, 2, 0).reshape(cols.shape[1], -1).numpy()


def torch_fold(d0, x_shape, kernel, stride, padding):
    """The adjoint of unfold, fed the batch-last (C*kH*kW, L*N) matrix."""
    n = x_shape[0]
    d = torch64(d0).reshape(d0.shape[0], -1, n).permute(2, 0, 1)
    return F.fold(d, x_shape[2:], kernel, padding=padding, stride=stride).numpy()


def torch_conv(x0, w0, b0, g0, stride, padding, relu=False):
    x, w = torch64(x0, True), torch64(w0, True)
    b = None if b0 is None else torch64(b0, True)
    out = F.conv2d(x, w, b, stride=stride, padding=padding)
    if relu:
        out = F.relu(out)
    out.backward(torch64(g0))
    return out.detach().numpy(), x.grad.numpy(), w.grad.numpy(), None if b is None else b.grad.numpy()


def torch_pool(x0, g0, kernel):
    x = torch64(x0, True)
    out = F.max_pool2d(x, kernel)
    out.backward(torch64(g0))
    return out.detach().numpy(), x.grad.numpy()


def torch_cross_entropy(z0, y0, g0, reduction):
    z = torch64(z0, True)
    loss = F.cross_entropy(z, torch.tensor(y0), reduction=reduction)
    loss.backward(torch64(g0))
    return loss.detach().numpy(), z.grad.numpy()


def torch_layer_norm(x0, w0, b0, g0, eps=1e-5):
    x, w = torch64(x0, True), torch64(w0, True)
    b = None if b0 is None else torch64(b0, True)
    out = F.layer_norm(x, (x0.shape[-1],), w, b, eps=eps)
    out.backward(torch64(g0))
    return out.detach().numpy(), x.grad.numpy(), w.grad.numpy(), None if b is None else b.grad.numpy()


def torch_attention(q0, k0, v0, g0, mask=None, is_causal=False):
    """SDPA in float64; rows that may read no key give 0 (torch gives NaN there), and no gradient."""
    q, k, v = torch64(q0, True), torch64(k0, True), torch64(v0, True)
    m = None if mask is None else torch.tensor(np.asarray(mask))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=is_causal)
    out = torch.where(torch.isnan(out), torch.zeros_like(out), out)
    out.backward(torch64(g0))
    return [t.numpy() for t in (out.detach(), q.grad, k.grad, v.grad)]


def torch_small_lenet(params, x0):
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(16, 3)).double()
    net.load_state_dict({name: torch64(value) for name, value in params.items()})
    return net, torch64(x0)


def torch_lenet_run(params, x0, y0):
    """Loss, logits and every parameter's gradient of the small LeNet in float64 torch."""
    net, x = torch_small_lenet(params, x0)
    logits = net(x)
    loss = F.cross_entropy(logits, torch.tensor(y0))
    loss.backward()
    return loss.item(), logits.detach().numpy(), {n: p.grad.numpy() for n, p in net.named_parameters()}


def torch_lenet_sgd(params, x0, y0, steps, lr):
    """The small LeNet's parameters after `steps` plain SGD steps on the cross-entropy."""
    net, x = torch_small_lenet(params, x0)
    for _ in range(steps):
        net.zero_grad()
        F.cross_entropy(net(x), torch.tensor(y0)).backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= lr * p.grad
    return {name: p.detach().numpy() for name, p in net.named_parameters()}


def torch_block(params, x0, g0, n_heads):
    """A pre-norm block x + attn(ln_1(x)), then + mlp(ln_2(x)), from torch's functional operations."""
    p = {name: torch64(value, True) for name, value in params.items()}
    x = torch64(x0, True)
    b, t, d = x0.shape

    def dense(z, name):
        return F.linear(z, p[f"{name}.weight"], p.get(f"{name}.bias"))

    def split(z):
        return z.reshape(b, t, n_heads, d // n_heads).transpose(1, 2)

    h = F.layer_norm(x, (d,), p["ln_1.weight"], p["ln_1.bias"])
    heads = F.scaled_dot_product_attention(split(dense(h, "attn.q_proj")), split(dense(h, "attn.k_proj")),
                                           split(dense(h, "attn.v_proj")), is_causal=True)
    mid = x + dense(heads.transpose(1, 2).reshape(b, t, d), "attn.out_proj")
    h2 = F.layer_norm(mid, (d,), p["ln_2.weight"], p["ln_2.bias"])
    out = mid + dense(F.gelu(dense(h2, "mlp.fc"), approximate="tanh"), "mlp.proj")
    out.backward(torch64(g0))
    return out.detach().numpy(), x.grad.numpy(), {name: t.grad.numpy() for name, t in p.items()}


def module_04_loss(z0, y0):
    """Module 04's CrossEntropyLoss (the slow version) on the same logits: loss and gradient."""
    z = Tensor(z0.copy(), requires_grad=True)
    loss = CrossEntropyLoss()(z, Tensor(y0))
    loss.backward()
    return loss.item(), z.grad.data


def module_13_layer_norm(x0, w0, b0, g0):
    """Module 13's LayerNorm (eight recorded nodes) on the same numbers: output and the three gradients."""
    state = generator().bit_generator.state
    norm = LayerNorm(x0.shape[-1])
    generator().bit_generator.state = state
    norm.weight.data, norm.bias.data = w0.copy(), b0.copy()
    x = Tensor(x0.copy(), requires_grad=True)
    out = norm(x)
    out.backward(g0)
    return out.data, x.grad.data, norm.weight.grad.data, norm.bias.grad.data


def dtype_names(values) -> list:
    return [None if v is None else str(np.asarray(v).dtype) for v in values]


# -- predicates, judged on the trusted side over the values your code produced ----------------------


def float32_close(recorded, expected, rtol, atol) -> bool:
    """Every recorded array is float32 and close to its float64 oracle."""
    return len(recorded) == len(expected) and all(
        got is not None and np.asarray(got).dtype == np.float32 and np.shape(got) == np.shape(want)
        and bool(np.allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol, atol=atol))
        for got, want in zip(recorded, expected))


# -- 1. batch-last im2col and col2im ----------------------------------------------------------------

IM2COL_CASES = [
    # (n, c, h, w, kernel, stride, padding)
    (2, 3, 5, 6, 3, 1, 1),
    (3, 2, 7, 6, (2, 3), (2, 1), (1, 0)),
    (1, 1, 6, 6, 5, 1, 2),
    (2, 2, 9, 8, 3, 2, 0),
]


@pytest.mark.parametrize("case", IM2COL_CASES, ids=lambda c: f"{c[:4]}-k{c[4]}-s{c[5]}-p{c[6]}")
def test_im2col_columns_are_the_windows(case):
    """im2col(x) is one column per output position (images fastest) holding that position's window"""
    n, c, h, w, kernel, stride, padding = case
    x0 = np.random.default_rng(1).standard_normal((n, c, h, w))
    expect_close(im2col(x0, kernel, stride, padding), torch_unfold_cols(x0, kernel, stride, padding),
                 rtol=0, atol=0, call=f"im2col(x of shape {x0.shape}, kernel_size={kernel}, stride={stride}, "
                                      f"padding={padding})", hint=LAYOUT_HINT)


@pytest.mark.parametrize("case", IM2COL_CASES, ids=lambda c: f"{c[:4]}-k{c[4]}-s{c[5]}-p{c[6]}")
def test_col2im_adds_every_entry_back_to_its_pixel(case):
    """col2im(dcols) adds each entry back where im2col copied it from (torch's fold), padding cut off"""
    n, c, h, w, kernel, stride, padding = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    rows, columns = c * kh * kw, out_size(h, kh, sh, ph) * out_size(w, kw, sw, pw) * n
    d0 = np.random.default_rng(2).standard_normal((rows, columns))
    expect_close(col2im(d0, (n, c, h, w), kernel, stride, padding), torch_fold(d0, (n, c, h, w), kernel, stride, padding),
                 rtol=RTOL, atol=ATOL, call=f"col2im(dcols {d0.shape}, x_shape={(n, c, h, w)}, kernel_size={kernel}, "
                                            f"stride={stride}, padding={padding})",
                 hint="the same slabs as im2col, with += into a zero (C, H_pad, W_pad, N) array (windows overlap, "
                      "so a pixel collects from several entries), then cut off the padding and transpose back")


def test_im2col_and_col2im_keep_float32():
    """im2col and col2im keep float32 (no silent float64)"""
    x0 = np.random.default_rng(3).standard_normal((2, 3, 6, 5)).astype(np.float32)
    cols = im2col(x0, 3, 1, 1)
    back = col2im(cols, x0.shape, 3, 1, 1)
    expect_equal(dtype_names([cols, back]), ["float32", "float32"], call="im2col / col2im of a float32 batch: dtypes",
                 hint="allocate with dtype=x.dtype (np.zeros(shape) alone is float64)")
    expect_close(back, torch_fold(torch_unfold_cols(x0, 3, 1, 1), x0.shape, 3, 1, 1), rtol=1e-6, atol=1e-5,
                 call="col2im(im2col(x)) for a 3x3 kernel, padding 1",
                 hint="each pixel comes back once per window that contains it")


# -- 2. the fused convolution -------------------------------------------------------------------------

CONV_CASES = [
    # (n, c, h, w, c_out, kernel, stride, padding)
    (2, 3, 6, 5, 4, 3, 1, 1),
    (2, 2, 9, 8, 3, (3, 2), 2, (2, 1)),
    (3, 1, 8, 8, 2, 5, 1, 2),
    (1, 4, 5, 7, 2, 1, 1, 0),
]


@pytest.mark.parametrize("relu", [False, True], ids=["conv", "conv+relu"])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[:5]}-k{c[5]}-s{c[6]}-p{c[7]}")
def test_conv2d_fast_matches_torch(case, relu):
    """conv2d_fast (and its fused ReLU) equals torch's conv2d: values and the gradients of x, weight and bias"""
    n, c, h, w, c_out, kernel, stride, padding = case
    x0, w0, b0 = conv_inputs(10, n, c, h, w, c_out, kernel)
    kh, kw = w0.shape[2:]
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    g0 = np.random.default_rng(11).standard_normal((n, c_out, out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)))
    x, weight, bias = Tensor(x0.copy(), requires_grad=True), Tensor(w0.copy(), requires_grad=True), \
        Tensor(b0.copy(), requires_grad=True)
    out = conv2d_fast(x, weight, bias, stride, padding, relu=relu)
    out.backward(g0)
    call = f"conv2d_fast(x {x0.shape}, weight {w0.shape}, bias, stride={stride}, padding={padding}, relu={relu})"
    expect_close(out.data, torch_conv(x0, w0, b0, g0, stride, padding, relu)[0], rtol=RTOL, atol=ATOL, call=call,
                 hint=CONV_HINT)
    names = ("x.grad", "weight.grad", "bias.grad")
    for name, got, want in zip(names, (x.grad, weight.grad, bias.grad), torch_conv(x0, w0, b0, g0, stride, padding, relu)[1:]):
        expect_close(None if got is None else got.data, want, rtol=RTOL, atol=ATOL, call=f"{call}; {name}",
                     hint=CONV_HINT + ("; with relu, first multiply grad by (output > 0)" if relu else ""))


def test_conv2d_fast_without_bias_and_with_frozen_images():
    """no bias: two gradients; images that need no grad get none, and the weight's is still right"""
    x0, w0, _ = conv_inputs(12, 2, 3, 6, 6, 4, 3)
    g0 = np.random.default_rng(13).standard_normal((2, 4, 6, 6))
    images, weight = Tensor(x0.copy()), Tensor(w0.copy(), requires_grad=True)
    out = conv2d_fast(images, weight, None, 1, 1)
    out.backward(g0)
    expected = torch_conv(x0, w0, None, g0, 1, 1)
    expect_close(out.data, expected[0], rtol=RTOL, atol=ATOL, call="conv2d_fast(images, weight, None, 1, 1)",
                 hint="no bias: nothing to add")
    expect_close(None if weight.grad is None else weight.grad.data, expected[2], rtol=RTOL, atol=ATOL,
                 call="conv2d_fast(images, weight, None, 1, 1); weight.grad",
                 hint="without a bias the Function has two inputs: return (dx, dweight)")
    expect_equal(images.grad, None, call="images.grad (images created without requires_grad)",
                 hint="an input that needs no gradient gets None (skip its col2im)")


def test_conv2d_fast_equals_the_six_loops():
    """conv2d_fast gives the numbers of module 09's six nested loops (conv2d_naive)"""
    x0, w0, b0 = conv_inputs(14, 2, 3, 7, 6, 4, 3)
    expect_close(conv2d_fast(x0, w0, b0, 2, 1).data, conv2d_naive(x0, w0, b0, 2, 1).data, rtol=RTOL, atol=ATOL,
                 call="conv2d_fast(x (2, 3, 7, 6), weight (4, 3, 3, 3), bias, stride=2, padding=1)",
                 hint="the same convolution, only faster: same windows, same sums")


def test_conv2d_fast_keeps_float32_end_to_end():
    """float32 in: float32 output and gradients, equal to torch within float32 rounding"""
    x0, w0, b0 = (a.astype(np.float32) for a in conv_inputs(15, 4, 3, 8, 8, 5, 3))
    g0 = np.random.default_rng(16).standard_normal((4, 5, 8, 8)).astype(np.float32)
    x, weight, bias = (Tensor(a.copy(), requires_grad=True) for a in (x0, w0, b0))
    out = conv2d_fast(x, weight, bias, 1, 1, relu=True)
    out.backward(g0)
    got = [out.data] + [None if t.grad is None else t.grad.data for t in (x, weight, bias)]
    expect_that(got, float32_close, list(torch_conv(x0, w0, b0, g0, 1, 1, relu=True)), F32_RTOL, F32_ATOL,
                call="conv2d_fast(float32 x, weight, bias, relu=True): output, x.grad, weight.grad, bias.grad",
                expected="four float32 arrays equal to torch's within 1e-4",
                hint="allocate in the input's dtype; Python floats keep float32, float64 arrays promote it")


# -- 3. pooling by slabs ---------------------------------------------------------------------------

POOL_CASES = [((2, 3, 8, 8), 2), ((2, 2, 7, 9), 2), ((1, 3, 6, 8), (2, 4)), ((2, 1, 9, 9), 3)]


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0]}-k{c[1]}")
def test_max_pool2d_fast_matches_torch(case):
    """max_pool2d_fast equals torch's max_pool2d (stride = kernel): values and gradient, odd sizes cropped"""
    shape, kernel = case
    rng = np.random.default_rng(20)
    x0 = rng.standard_normal(shape)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    g0 = rng.standard_normal((shape[0], shape[1], shape[2] // kh, shape[3] // kw))
    x = Tensor(x0.copy(), requires_grad=True)
    out = max_pool2d_fast(x, kernel)
    out.backward(g0)
    call = f"max_pool2d_fast(x of shape {shape}, {kernel})"
    expect_close(out.data, torch_pool(x0, g0, kernel)[0], rtol=0, atol=0, call=call,
                 hint="the elementwise maximum of the kH*kW slabs x[:, :, p::kH, q::kW] (cropped to H//kH, W//kW)")
    expect_close(None if x.grad is None else x.grad.data, torch_pool(x0, g0, kernel)[1], rtol=0, atol=0,
                 call=f"{call}; x.grad", hint="each window's gradient goes to its maximum; the cropped edge gets 0")


def test_max_pool2d_fast_ties_go_to_the_first_maximum():
    """ties (zeros after a ReLU, equal values) send the gradient to the first maximum in row-major order"""
    rng = np.random.default_rng(21)
    x0 = np.maximum(rng.standard_normal((2, 3, 6, 6)), 0.0)
    x0[0, 0] = 1.5                        # a whole map of ties
    g0 = rng.standard_normal((2, 3, 3, 3))
    x = Tensor(x0.copy(), requires_grad=True)
    max_pool2d_fast(x, 2).backward(g0)
    expect_close(None if x.grad is None else x.grad.data, torch_pool(x0, g0, 2)[1], rtol=0, atol=0,
                 call="max_pool2d_fast(relu'd x with many tied windows, 2); x.grad",
                 hint="walk the offsets p then q; a window's gradient goes to the first hit and is then used up "
                      "(remaining *= ~hit): exactly one pixel per window gets it")


def test_max_pool2d_fast_float32_and_overlap_refused():
    """float32 stays float32; overlapping windows (stride < kernel) are refused with a ValueError"""
    rng = np.random.default_rng(22)
    x0 = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    g0 = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    x = Tensor(x0.copy(), requires_grad=True)
    out = max_pool2d_fast(x, 2)
    sent = out._grad_fn.backward(g0)[0]   # what the node passes on, before any leaf casts it
    out.backward(g0)
    expect_that([out.data, sent, None if x.grad is None else x.grad.data], float32_close,
                [torch_pool(x0, g0, 2)[0], torch_pool(x0, g0, 2)[1], torch_pool(x0, g0, 2)[1]],
                F32_RTOL, F32_ATOL, call="max_pool2d_fast(float32 x, 2): output, the gradient its node sends back, x.grad",
                expected="float32, equal to torch",
                hint="np.zeros(x.shape, dtype=grad.dtype): a float64 gradient would make every layer below float64")
    expect_raises(ValueError, lambda: max_pool2d_fast(Tensor(x0), 3, stride=1),
                  call="max_pool2d_fast(x, 3, stride=1)", hint="given: only stride == kernel_size is supported")


# -- 4. fused softmax-cross-entropy ------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_fast_matches_torch(reduction):
    """cross_entropy_fast equals torch's cross_entropy for each reduction: the loss and its gradient"""
    rng = np.random.default_rng(30)
    z0, y0 = 3.0 * rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    g0 = rng.standard_normal(6) if reduction == "none" else np.array(rng.uniform(0.5, 2.0))
    z = Tensor(z0.copy(), requires_grad=True)
    loss = cross_entropy_fast(z, y0, reduction)
    loss.backward(g0)
    call = f"cross_entropy_fast(logits (6, 5), labels {show(y0)}, reduction={reduction!r}), then backward(g)"
    expect_close(loss.data, torch_cross_entropy(z0, y0, g0, reduction)[0], rtol=RTOL, atol=ATOL, call=call,
                 hint="loss_n = log(sum(exp(shifted))) - shifted[n, y_n], with shifted = z - max(z); then reduce")
    expect_close(None if z.grad is None else z.grad.data, torch_cross_entropy(z0, y0, g0, reduction)[1],
                 rtol=RTOL, atol=ATOL, call=f"{call}; logits.grad",
                 hint="(probs - onehot) times g / N for 'mean', g for 'sum', g[n] per row for 'none'")


def test_cross_entropy_fast_extreme_logits_and_module_04():
    """logits of +-1000 stay finite, and the fused loss equals module 04's (the slow one), loss and gradient"""
    z0 = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 999.0, 1000.0], [0.5, 0.25, -0.5]])
    y0 = np.array([1, 2, 0])
    g0 = np.array(1.0)
    z = Tensor(z0.copy(), requires_grad=True)
    loss = cross_entropy_fast(z, y0)
    loss.backward()
    expect_close(loss.item(), torch_cross_entropy(z0, y0, g0, "mean")[0], rtol=RTOL, atol=ATOL,
                 call=f"cross_entropy_fast({show(z0)}, {show(y0)})",
                 hint="subtract each row's max before exp, or exp(1000) overflows")
    expect_close(None if z.grad is None else z.grad.data, module_04_loss(z0, y0)[1], rtol=RTOL, atol=ATOL,
                 call="cross_entropy_fast(...).backward(); logits.grad vs module 04's CrossEntropyLoss",
                 hint="the same gradient as module 05 gives module 04's loss: softmax - onehot, over N")


def test_fused_cross_entropy_loss_layer_keeps_float32():
    """FusedCrossEntropyLoss on float32 logits: a float32 loss and gradient equal to torch's"""
    rng = np.random.default_rng(31)
    z0, y0 = rng.standard_normal((8, 10)).astype(np.float32), rng.integers(0, 10, 8)
    z = Tensor(z0.copy(), requires_grad=True)
    loss = FusedCrossEntropyLoss()(z, Tensor(y0))
    loss.backward()
    expect_that([loss.data, None if z.grad is None else z.grad.data], float32_close,
                list(torch_cross_entropy(z0, y0, np.array(1.0), "mean")), F32_RTOL, F32_ATOL,
                call="FusedCrossEntropyLoss()(float32 logits (8, 10), labels): loss and logits.grad",
                expected="float32, equal to torch", hint="return the loss in the logits' dtype")


# -- 5. fused LayerNorm ------------------------------------------------------------------------------


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_layer_norm_fast_matches_torch(with_bias):
    """layer_norm_fast equals torch's layer_norm: values and the gradients of x, weight (and bias)"""
    rng = np.random.default_rng(40)
    x0 = 2.0 * rng.standard_normal((3, 4, 6)) + 1.0
    w0, b0 = 1.0 + 0.3 * rng.standard_normal(6), (0.3 * rng.standard_normal(6) if with_bias else None)
    g0 = rng.standard_normal(x0.shape)
    x, weight = Tensor(x0.copy(), requires_grad=True), Tensor(w0.copy(), requires_grad=True)
    bias = None if b0 is None else Tensor(b0.copy(), requires_grad=True)
    out = layer_norm_fast(x, weight, bias)
    out.backward(g0)
    call = f"layer_norm_fast(x (3, 4, 6), weight, {'bias' if with_bias else 'None'})"
    expect_close(out.data, torch_layer_norm(x0, w0, b0, g0)[0], rtol=RTOL, atol=ATOL, call=call,
                 hint="xhat = (x - mean) / sqrt(var + eps) over the last axis, biased variance; then * weight + bias")
    hint = ("dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)) with gh = grad * weight; dweight = sum of "
            "grad * xhat, dbias = sum of grad, over every axis but the last")
    got = [None if t is None or t.grad is None else t.grad.data for t in (x, weight, bias)]
    for name, value, want in zip(("x.grad", "weight.grad", "bias.grad"), got, torch_layer_norm(x0, w0, b0, g0)[1:]):
        if name != "bias.grad" or with_bias:
            expect_close(value, want, rtol=RTOL, atol=ATOL, call=f"{call}; {name}", hint=hint)


def test_layer_norm_fast_equals_module_13_and_keeps_float32():
    """the fused LayerNorm equals module 13's eight-node one, and float32 stays float32"""
    rng = np.random.default_rng(41)
    x0, w0, b0 = rng.standard_normal((5, 8)), 1.0 + 0.2 * rng.standard_normal(8), 0.2 * rng.standard_normal(8)
    g0 = rng.standard_normal((5, 8))
    x, weight, bias = (Tensor(a.copy(), requires_grad=True) for a in (x0, w0, b0))
    out = layer_norm_fast(x, weight, bias)
    out.backward(g0)
    got = [out.data] + [None if t.grad is None else t.grad.data for t in (x, weight, bias)]
    for name, value, want in zip(("output", "x.grad", "weight.grad", "bias.grad"), got,
                                 module_13_layer_norm(x0, w0, b0, g0)):
        expect_close(value, want, rtol=1e-9, atol=1e-11, call=f"layer_norm_fast(x (5, 8), weight, bias); {name}",
                     hint="the same numbers as module 13's LayerNorm, from one node")
    x32, w32, b32 = (Tensor(a.astype(np.float32), requires_grad=True) for a in (x0, w0, b0))
    out32 = layer_norm_fast(x32, w32, b32)
    out32.backward(g0.astype(np.float32))
    got32 = [out32.data] + [None if t.grad is None else t.grad.data for t in (x32, w32, b32)]
    expect_that(got32, float32_close, list(torch_layer_norm(x0.astype(np.float32), w0.astype(np.float32),
                                                            b0.astype(np.float32), g0.astype(np.float32))),
                F32_RTOL, F32_ATOL, call="layer_norm_fast on float32: output and the three gradients",
                expected="float32, equal to torch", hint="1.0 / np.sqrt(var + eps) keeps float32")


# -- 6. fused attention --------------------------------------------------------------------------------


def attention_inputs(seed, q_shape, kv_shape):
    rng = np.random.default_rng(seed)
    dv = kv_shape[-1] + 1
    return (rng.standard_normal(q_shape), rng.standard_normal(kv_shape),
            rng.standard_normal(kv_shape[:-1] + (dv,)), rng.standard_normal(q_shape[:-1] + (dv,)))


def run_attention(q0, k0, v0, g0, **options):
    q, k, v = (Tensor(a.copy(), requires_grad=True) for a in (q0, k0, v0))
    out = fused_attention(q, k, v, **options)
    out.backward(g0)
    return [out.data] + [None if t.grad is None else t.grad.data for t in (q, k, v)]


ATTENTION_HINT = ("ds = w * (dw - sum(dw * w, -1)) with dw = g @ v^T; dq = ds @ k * scale, dk = ds^T @ q * scale, "
                  "dv = w^T @ g; each unbroadcast to its input's shape")


def check_attention(got, want, call):
    for name, value, target in zip(("output", "q.grad", "k.grad", "v.grad"), got, want):
        expect_close(value, target, rtol=RTOL, atol=ATOL, call=f"{call}; {name}",
                     hint="softmax(q @ k^T / sqrt(d) + mask) @ v over the last two axes, every head at once"
                     if name == "output" else ATTENTION_HINT)


def test_fused_attention_matches_torch_causal():
    """fused_attention(is_causal=True) on (B, H, T, d) equals torch's SDPA: output and the three gradients"""
    q0, k0, v0, g0 = attention_inputs(50, (2, 3, 5, 4), (2, 3, 5, 4))
    check_attention(run_attention(q0, k0, v0, g0, is_causal=True), torch_attention(q0, k0, v0, g0, is_causal=True),
                    "fused_attention(q, k, v of (2, 3, 5, 4), is_causal=True)")


def test_fused_attention_masks_dead_rows_and_shared_heads():
    """boolean and float masks, a query that may read nothing (zeros, no gradient), keys shared by every head"""
    q0, k0, v0, g0 = attention_inputs(51, (2, 3, 4, 5), (2, 1, 6, 5))
    mask = np.random.default_rng(52).random((4, 6)) > 0.4
    mask[2] = False                                   # query 2 may read no key
    mask[0, 0] = True
    check_attention(run_attention(q0, k0, v0, g0, attn_mask=mask), torch_attention(q0, k0, v0, g0, mask=mask),
                    "fused_attention(q (2, 3, 4, 5), k and v (2, 1, 6, ...), boolean mask with an all-False row)")
    float_mask = np.random.default_rng(53).standard_normal((4, 6))
    check_attention(run_attention(q0, k0, v0, g0, attn_mask=float_mask),
                    torch_attention(q0, k0, v0, g0, mask=float_mask),
                    "fused_attention(q, k, v, float mask added to the scores)")


def test_fused_attention_equals_the_per_head_loop():
    """fused_attention gives the numbers of the loop over every sequence and head (causal, and with a padding mask)"""
    q0, k0, v0, _ = attention_inputs(54, (3, 2, 6, 4), (3, 2, 6, 4))
    expect_close(fused_attention(q0, k0, v0, is_causal=True).data, attention_per_head(q0, k0, v0, is_causal=True).data,
                 rtol=RTOL, atol=ATOL, call="fused_attention(q, k, v of (3, 2, 6, 4), is_causal=True)",
                 hint="one batched product over all (batch, head) pairs computes what the loop computes one by one")
    padding = np.arange(6)[None, None, None, :] < np.array([6, 3, 0])[:, None, None, None]
    expect_close(fused_attention(q0, k0, v0, attn_mask=padding).data,
                 attention_per_head(q0, k0, v0, attn_mask=padding).data, rtol=RTOL, atol=ATOL,
                 call="fused_attention(q, k, v, attn_mask=padding of lengths [6, 3, 0])",
                 hint="a sequence of length 0 may read nothing: its rows are zeros (bias 0 before softmax, weights 0 after)")


def test_fused_attention_keeps_float32():
    """float32 q, k, v: float32 output and gradients, equal to torch"""
    q0, k0, v0, g0 = (a.astype(np.float32) for a in attention_inputs(55, (2, 2, 6, 8), (2, 2, 6, 8)))
    expect_that(run_attention(q0, k0, v0, g0, is_causal=True), float32_close,
                torch_attention(q0, k0, v0, g0, is_causal=True), F32_RTOL, F32_ATOL,
                call="fused_attention(float32 q, k, v, is_causal=True): output and the three gradients",
                expected="float32, equal to torch", hint="mask_to_bias(..., scores.dtype); scale by a Python float")


# -- 7. accelerate(model) -----------------------------------------------------------------------------


def test_accelerate_lenet_fast_layers_same_numbers():
    """accelerate(LeNet): fast layers in place (conv+ReLU fused), and the same loss, logits and gradients as torch"""
    model = small_lenet()
    set_params(model, 60)
    returned = accelerate(model)
    expect_equal([type(layer).__name__ for layer in returned], ["FastConv2d", "Identity", "FastMaxPool2d", "FastConv2d",
                                                             "Identity", "FastMaxPool2d", "Flatten", "Linear"],
                 call="[type(layer).__name__ for layer in accelerate(small LeNet)]",
                 hint="in a Sequential, Conv2d followed by ReLU becomes FastConv2d(conv, relu=True) and Identity(); "
                      "a MaxPool2d with stride == kernel becomes FastMaxPool2d")
    rng = np.random.default_rng(61)
    x0, y0 = rng.standard_normal((5, 1, 12, 12)), rng.integers(0, 3, 5)
    logits = model(Tensor(x0))
    loss = cross_entropy_fast(logits, y0)
    loss.backward()
    oracle = torch_lenet_run(param_arrays(model), x0, y0)
    expect_close(loss.item(), oracle[0], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call="cross_entropy_fast(accelerate(LeNet)(x), y)", hint="the fast layers compute the same function")
    expect_close(logits.data, oracle[1], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call="accelerate(LeNet)(x)", hint="the fast layers compute the same function")
    for name, grad in named_grads(model):
        expect_close(grad, oracle[2][name], rtol=DEEP_RTOL, atol=DEEP_ATOL, call=f"{name}.grad after backward",
                     hint="gradients reach the shared parameter Tensors")


def test_accelerate_shares_parameters_with_an_optimizer_built_before():
    """an optimizer built before accelerate keeps training the model: its steps equal torch's SGD"""
    model = small_lenet()
    set_params(model, 62)
    start = param_arrays(model)
    optimizer = SGD(model.parameters(), lr=0.1)
    accelerate(model)
    rng = np.random.default_rng(63)
    x0, y0 = rng.standard_normal((6, 1, 12, 12)), rng.integers(0, 3, 6)
    for _ in range(3):
        optimizer.zero_grad()
        cross_entropy_fast(model(Tensor(x0)), y0).backward()
        optimizer.step()
    trained = torch_lenet_sgd(start, x0, y0, 3, 0.1)
    for name, value in param_arrays(model).items():
        expect_close(value, trained[name], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                     call=f"SGD(model.parameters()) built, then accelerate(model), then 3 SGD steps; {name}",
                     hint="the fast layers must hold the very same Tensors (fast.weight = conv.weight), not copies: "
                          "the optimizer updates the Tensors it was given")
    expect_equal(list(model.state_dict()), list(start), call="list(accelerate(model).state_dict())",
                 hint="same parameters under the same names")


def test_accelerate_transformer_block_equals_torch_and_is_idempotent():
    """accelerate(Block): fused LayerNorms and attention, the same output and gradients as torch; a second call changes nothing"""
    block = Block(8, 2)
    set_params(block, 64)
    gain = block.ln_1.weight             # a handle taken before, as an optimizer takes it
    accelerate(block)
    accelerate(block)
    expect_equal([type(block.ln_1).__name__, type(block.attn).__name__, type(block.ln_2).__name__],
                 ["FastLayerNorm", "FastCausalSelfAttention", "FastLayerNorm"],
                 call="types of block.ln_1, block.attn, block.ln_2 after accelerate(block) twice",
                 hint="replace each attribute by fast_equivalent(value) with setattr; a fast layer is its own "
                      "fast equivalent")
    rng = np.random.default_rng(65)
    x0, g0 = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 5, 8))
    x = Tensor(x0.copy(), requires_grad=True)
    out = block(x)
    out.backward(g0)
    expected = torch_block(param_arrays(block), x0, g0, 2)
    expect_close(out.data, expected[0], rtol=DEEP_RTOL, atol=DEEP_ATOL, call="accelerate(Block(8, 2))(x)",
                 hint="FastLayerNorm and FastCausalSelfAttention compute what module 13's layers compute")
    expect_close(None if x.grad is None else x.grad.data, expected[1], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call="accelerate(Block(8, 2))(x).backward(g); x.grad", hint=ATTENTION_HINT)
    for name, grad in named_grads(block):
        expect_close(grad, expected[2][name], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                     call=f"{name}.grad of the accelerated block",
                     hint="the fast layers share the block's parameter Tensors and give them their gradients")
    expect_close(None if gain.grad is None else gain.grad.data, expected[2]["ln_1.weight"], rtol=DEEP_RTOL,
                 atol=DEEP_ATOL, call="gain = block.ln_1.weight taken before accelerate(block); gain.grad after backward",
                 hint="FastLayerNorm(norm) must hold norm.weight itself (no copy): optimizers hold that Tensor")


class ListOfLayers(Module):
    """Layers kept in a list attribute (as GPT keeps its blocks)."""

    def __init__(self):
        super().__init__()
        self.layers = [Conv2d(2, 3, 3, padding=1), MaxPool2d(2)]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def test_accelerate_a_single_layer_and_layers_in_a_list():
    """accelerate(Conv2d) returns a FastConv2d on the same weight Tensor; layers inside a list attribute are swapped too"""
    holder = ListOfLayers()
    set_params(holder, 67)
    accelerate(holder)
    expect_equal([type(layer).__name__ for layer in holder.layers], ["FastConv2d", "FastMaxPool2d"],
                 call="accelerate(a Module whose layers are in a list attribute).layers",
                 hint="a list attribute has its items replaced in place: value[:] = [...]")
    conv = Conv2d(2, 3, 3, padding=1)
    x0, w0, b0 = conv_inputs(66, 2, 2, 5, 5, 3, 3)
    conv.weight.data, conv.bias.data = w0.copy(), b0.copy()
    fast = accelerate(conv)
    expect_equal([cls.__name__ for cls in type(fast).__mro__[:2]], ["FastConv2d", "Conv2d"],
                 call="type(accelerate(Conv2d(2, 3, 3, padding=1))) and its base class",
                 hint="the model itself is a single layer: return fast_equivalent(model), a subclass of Conv2d")
    fast.weight.data[0] += 1.0
    expect_close(conv.weight.data, w0 + (np.arange(3) == 0)[:, None, None, None], rtol=RTOL, atol=ATOL,
                 call="fast.weight.data[0] += 1, then conv.weight.data",
                 hint="fast.weight is conv.weight: one Tensor, two names")
    expect_close(fast(Tensor(x0)).data,
                 torch_conv(x0, w0 + (np.arange(3) == 0)[:, None, None, None], b0, np.ones((2, 3, 5, 5)), 1, 1)[0],
                 rtol=RTOL, atol=ATOL, call="accelerate(conv)(x)",
                 hint="FastConv2d computes conv2d_fast with the layer's settings")
