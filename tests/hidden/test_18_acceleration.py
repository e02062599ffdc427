"""Hidden checks for module 18 (acceleration): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal
# the checkpoint's builders and oracles: both files test against one reference
from tests.checkpoints.test_18_acceleration import (
    ATTENTION_HINT,
    CONV_HINT,
    RTOL,
    ATOL,
    DEEP_ATOL,
    DEEP_RTOL,
    conv_inputs,
    out_size,
    run_attention,
    set_params,
    torch_attention,
    torch_conv,
    torch_cross_entropy,
    torch_layer_norm,
    torch_pool,
)
from tests.checkpoints.common import torch64
from tinytorch.acceleration import (
    accelerate,
    conv2d_fast,
    cross_entropy_fast,
    layer_norm_fast,
    max_pool2d_fast,
)
from tinytorch.activations import ReLU, Tanh
from tinytorch.autograd import no_grad
from tinytorch.layers import Sequential
from tinytorch.spatial import Conv2d, MaxPool2d
from tinytorch.tensor import Tensor, generator
from tinytorch.transformers import GPT, GPTConfig

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time


def test_conv2d_fast_one_by_one_strided_and_rectangular():
    """a 1x1 kernel at stride 2, and a (2, 3) kernel at stride (1, 2) with padding (0, 1) and ReLU, equal torch"""
    for kernel, stride, padding, relu in ((1, 2, 0, False), ((2, 3), (1, 2), (0, 1), True)):
        x0, w0, b0 = conv_inputs(70, 2, 3, 7, 8, 4, kernel)
        kh, kw = w0.shape[2:]
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        g0 = np.random.default_rng(71).standard_normal((2, 4, out_size(7, kh, sh, ph), out_size(8, kw, sw, pw)))
        x, weight, bias = (Tensor(a.copy(), requires_grad=True) for a in (x0, w0, b0))
        out = conv2d_fast(x, weight, bias, stride, padding, relu=relu)
        out.backward(g0)
        call = f"conv2d_fast(x (2, 3, 7, 8), kernel {kernel}, stride={stride}, padding={padding}, relu={relu})"
        got = [out.data] + [None if t.grad is None else t.grad.data for t in (x, weight, bias)]
        for name, value, want in zip(("output", "x.grad", "weight.grad", "bias.grad"), got,
                                     torch_conv(x0, w0, b0, g0, stride, padding, relu)):
            expect_close(value, want, rtol=RTOL, atol=ATOL, call=f"{call}; {name}", hint=CONV_HINT)


def test_max_pool2d_fast_kernel_three_rectangular_and_constant():
    """kernel 3 on 8x7 (cropped), kernel (1, 2), and a constant image (every window a tie) equal torch"""
    rng = np.random.default_rng(72)
    for x0, kernel in ((rng.standard_normal((2, 2, 8, 7)), 3), (rng.standard_normal((1, 2, 5, 6)), (1, 2)),
                       (np.full((1, 1, 4, 4), 0.5), 2)):
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        g0 = rng.standard_normal((x0.shape[0], x0.shape[1], x0.shape[2] // kh, x0.shape[3] // kw))
        x = Tensor(x0.copy(), requires_grad=True)
        out = max_pool2d_fast(x, kernel)
        out.backward(g0)
        call = f"max_pool2d_fast(x of shape {x0.shape}, {kernel})"
        expect_close(out.data, torch_pool(x0, g0, kernel)[0], rtol=0, atol=0, call=call, hint="maximum of the slabs")
        expect_close(None if x.grad is None else x.grad.data, torch_pool(x0, g0, kernel)[1], rtol=0, atol=0,
                     call=f"{call}; x.grad", hint="one pixel per window, the first maximum in row-major order")


def test_cross_entropy_fast_one_example_and_tensor_labels():
    """one example of one class, and Tensor labels with reduction='none' and an upstream gradient with zeros"""
    z0, y0 = np.array([[2.5]]), np.array([0])
    z = Tensor(z0.copy(), requires_grad=True)
    loss = cross_entropy_fast(z, y0)
    loss.backward()
    expect_close([loss.item(), None if z.grad is None else z.grad.data[0, 0]], [0.0, 0.0], rtol=0, atol=1e-15,
                 call="cross_entropy_fast([[2.5]], [0]) and its gradient", hint="one class: probability 1, loss 0")
    rng = np.random.default_rng(73)
    z0, y0, g0 = rng.standard_normal((4, 3)), rng.integers(0, 3, 4), np.array([1.0, 0.0, -2.0, 0.5])
    z = Tensor(z0.copy(), requires_grad=True)
    loss = cross_entropy_fast(z, Tensor(y0), reduction="none")
    loss.backward(g0)
    expect_close(loss.data, torch_cross_entropy(z0, y0, g0, "none")[0], rtol=RTOL, atol=ATOL,
                 call="cross_entropy_fast(z, Tensor(labels), 'none')", hint="one loss per row")
    expect_close(None if z.grad is None else z.grad.data, torch_cross_entropy(z0, y0, g0, "none")[1], rtol=RTOL,
                 atol=ATOL, call="...backward(g with a zero); z.grad", hint="row n scaled by g[n]")


def test_layer_norm_fast_constant_rows_and_large_eps():
    """constant rows (variance 0) and eps=0.1: output and gradients equal torch, all finite"""
    rng = np.random.default_rng(74)
    x0 = rng.standard_normal((4, 5))
    x0[1] = 3.0
    w0, b0, g0 = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal((4, 5))
    x, weight, bias = (Tensor(a.copy(), requires_grad=True) for a in (x0, w0, b0))
    out = layer_norm_fast(x, weight, bias, eps=0.1)
    out.backward(g0)
    got = [out.data] + [None if t.grad is None else t.grad.data for t in (x, weight, bias)]
    for name, value, want in zip(("output", "x.grad", "weight.grad", "bias.grad"), got,
                                 torch_layer_norm(x0, w0, b0, g0, eps=0.1)):
        expect_close(value, want, rtol=RTOL, atol=ATOL, call=f"layer_norm_fast(x with a constant row, eps=0.1); {name}",
                     hint="use the eps you are given, inside the square root")


def test_fused_attention_more_keys_than_queries_and_no_head_axis():
    """causal with 3 queries and 5 keys (top-left triangle), on (B, T, d) inputs without a head axis"""
    rng = np.random.default_rng(75)
    q0, k0, v0, g0 = (rng.standard_normal(s) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 6), (2, 3, 6)))
    want = torch_attention(q0, k0, v0, g0, is_causal=True)
    for name, value, target in zip(("output", "q.grad", "k.grad", "v.grad"),
                                   run_attention(q0, k0, v0, g0, is_causal=True), want):
        expect_close(value, target, rtol=RTOL, atol=ATOL, call=f"fused_attention(q (2, 3, 4), k (2, 5, 4), v, "
                                                               f"is_causal=True); {name}", hint=ATTENTION_HINT)


def test_accelerate_leaves_what_it_cannot_fuse():
    """Conv2d + Tanh is not fused, an overlapping MaxPool2d stays; the model still computes the same"""
    model = Sequential(Conv2d(2, 3, 3, padding=1), Tanh(), MaxPool2d(3, stride=1), Conv2d(3, 2, 3), ReLU())
    set_params(model, 76)
    accelerate(model)
    expect_equal([type(layer).__name__ for layer in model] + [getattr(model[0], "relu", None),
                                                              getattr(model[3], "relu", None)],
                 ["FastConv2d", "Tanh", "MaxPool2d", "FastConv2d", "Identity", False, True],
                 call="accelerate(Sequential(Conv2d, Tanh, MaxPool2d(3, stride=1), Conv2d, ReLU)): types, relu flags",
                 hint="only a ReLU right after a convolution is fused; overlapping pools are left alone")
    x0 = np.random.default_rng(77).standard_normal((2, 2, 7, 7))
    params = {name: p.data.copy() for name, p in model.named_parameters()}

    def oracle():
        h = F.max_pool2d(torch.tanh(F.conv2d(torch64(x0), torch64(params["0.weight"]), torch64(params["0.bias"]),
                                             padding=1)), 3, stride=1)
        return F.relu(F.conv2d(h, torch64(params["3.weight"]), torch64(params["3.bias"]))).numpy()

    expect_close(model(Tensor(x0)).data, oracle(), rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call="the accelerated model on x (2, 2, 7, 7)", hint="the same function as before")


def gpt_reference(config, seed, idx, targets):
    """Logits and loss of the unaccelerated GPT (module 13) with the test's parameters; generator restored."""
    state = generator().bit_generator.state
    model = GPT(config)
    generator().bit_generator.state = state
    set_params(model, seed)
    logits = model(idx)
    loss = F.cross_entropy(torch64(logits.data.reshape(-1, config.vocab_size)), torch.tensor(targets.reshape(-1)))
    return logits.data, loss.item()


def test_accelerate_gpt_and_no_grad():
    """an accelerated GPT (blocks in a list, tied head) gives module 13's logits; under no_grad nothing is recorded"""
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
    model = GPT(config)
    set_params(model, 78)
    accelerate(model)
    rng = np.random.default_rng(79)
    idx, targets = rng.integers(0, 11, (2, 6)), rng.integers(0, 11, (2, 6))
    logits = model(idx)
    expect_equal([type(model.blocks[0].attn).__name__, type(model.ln_f).__name__, len(model.parameters())],
                 ["FastCausalSelfAttention", "FastLayerNorm", 36],
                 call="accelerate(GPT): blocks[0].attn, ln_f, and the number of parameters",
                 hint="replace the items of a list attribute in place; share every parameter (the tie too)")
    expect_close(logits.data, gpt_reference(config, 78, idx, targets)[0], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call="accelerate(GPT)(idx)", hint="the same logits as module 13's GPT")
    loss = cross_entropy_fast(logits.reshape(-1, 11), targets.reshape(-1))
    expect_close(loss.item(), gpt_reference(config, 78, idx, targets)[1], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call="cross_entropy_fast(accelerate(GPT)(idx) as (12, 11), targets)", hint="fused loss on logits")
    with no_grad():
        quiet = model(idx)
        quiet_loss = cross_entropy_fast(quiet.reshape(-1, 11), targets.reshape(-1))
    expect_equal([quiet.requires_grad, quiet_loss.requires_grad], [False, False],
                 call="accelerate(GPT)(idx) and its loss under no_grad(): requires_grad",
                 hint="ask needs_grad(...) before recording, like every primitive")
    expect_close(quiet_loss.item(), gpt_reference(config, 78, idx, targets)[1], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call="the loss under no_grad()", hint="no_grad changes what is recorded, not the numbers")
