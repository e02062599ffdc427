"""Checkpoint 13: transformers.

Oracles: PyTorch in float64 (layer_norm, rms_norm, gelu(approximate="tanh"), silu, a complex-
number RoPE, scaled_dot_product_attention, and a small GPT written below that holds the same
weights: logits and the gradients of a cross-entropy loss), the closed form of the parameter
count, RoPE's relative-position property, the statistics of GPT-2's initialisation, inverted
dropout, a step-by-step argmax for greedy generation, exact kept sets for top-k / top-p, and a
chi-square test on 20,000 draws with a fixed generator (deterministic).

Every weight a value is computed with comes from this file's own seeded generators
(`to_float64` replaces every parameter by the test's numbers), so a correct model that draws
its initial numbers differently is never rejected: initialisation is judged by its statistics.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tinytorch.autograd import is_grad_enabled, no_grad
from tinytorch.losses import CrossEntropyLoss
from tinytorch.tensor import Tensor, manual_seed
from tinytorch.transformers import (
    GPT,
    MLP,
    Block,
    CausalSelfAttention,
    GPTConfig,
    LayerNorm,
    RMSNorm,
    apply_rope,
    next_token_probs,
    rope_angles,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12       # one operation in float64
DEEP_RTOL, DEEP_ATOL = 1e-8, 1e-10  # a whole network in float64: rounding adds up a little


def t64(array, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=grad)


def to_float64(module, rng: np.random.Generator, scale: float = 0.1) -> None:
    """Replace every parameter by the test's own float64 numbers (the model's random init is never used).

    Matrices get N(0, 1 / fan_in), norm gains 1 + N(0, scale^2), biases N(0, scale^2). Each
    parameter draws from a generator seeded by `rng` and its registry name, so the numbers do
    not depend on the order in which a model lists its parameters."""
    seed = int(rng.integers(2**31))
    for name, p in module.named_parameters():
        draw = np.random.default_rng([seed, zlib.crc32(name.encode())])
        if p.ndim >= 2:
            p.data = draw.standard_normal(p.shape) / math.sqrt(p.shape[-1])
        elif name.endswith("bias"):
            p.data = scale * draw.standard_normal(p.shape)
        else:
            p.data = 1.0 + scale * draw.standard_normal(p.shape)


def numpy_params(module) -> dict[str, np.ndarray]:
    """The module's parameters as float64 numpy copies, by their registry names."""
    return {name: np.array(p.data, dtype=np.float64) for name, p in module.named_parameters()}


def torch_params(module) -> dict[str, torch.Tensor]:
    """The module's parameters as float64 torch leaves, by their registry names."""
    return {name: t64(p.data, grad=True) for name, p in module.named_parameters()}


def need(params: dict, name: str) -> torch.Tensor:
    if name not in params:
        raise AssertionError(f"the model has no parameter named {name!r}; it has {sorted(params)}.\n"
                             f"  hint: use the attribute names of the lesson (wte, wpe, blocks, ln_1, attn, "
                             f"q_proj, k_proj, v_proj, out_proj, ln_2, mlp, fc, gate, up, proj, ln_f, lm_head)")
    return params[name]


# -- the torch reference model, written out ---------------------------------------------------


def torch_rope(x: torch.Tensor, base: float = 10000.0, offset: int = 0) -> torch.Tensor:
    """RoPE with complex numbers: pair (x[2i], x[2i+1]) is x[2i] + i x[2i+1], times e^(i p theta_i)."""
    *lead, steps, dim = x.shape
    theta = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = torch.outer(torch.arange(offset, offset + steps, dtype=torch.float64), theta)
    rotation = torch.polar(torch.ones_like(angles), angles)
    pairs = torch.view_as_complex(x.reshape(*lead, steps, dim // 2, 2).contiguous())
    return torch.view_as_real(pairs * rotation).reshape(x.shape)


def torch_norm(x, p, prefix, kind):
    if kind == "layernorm":
        return F.layer_norm(x, (x.shape[-1],), need(p, f"{prefix}.weight"), p.get(f"{prefix}.bias"), eps=1e-5)
    return F.rms_norm(x, (x.shape[-1],), need(p, f"{prefix}.weight"), eps=1e-6)


def torch_linear(x, p, prefix):
    return F.linear(x, need(p, f"{prefix}.weight"), p.get(f"{prefix}.bias"))


def torch_attention(x, p, prefix, n_heads, rope):
    batch, steps, dim = x.shape

    def heads(t):
        return t.reshape(batch, steps, n_heads, dim // n_heads).transpose(1, 2)

    q = heads(torch_linear(x, p, f"{prefix}.q_proj"))
    k = heads(torch_linear(x, p, f"{prefix}.k_proj"))
    v = heads(torch_linear(x, p, f"{prefix}.v_proj"))
    if rope:
        q, k = torch_rope(q), torch_rope(k)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return torch_linear(y.transpose(1, 2).reshape(batch, steps, dim), p, f"{prefix}.out_proj")


def torch_mlp(x, p, prefix, kind):
    if kind == "gelu":
        return torch_linear(F.gelu(torch_linear(x, p, f"{prefix}.fc"), approximate="tanh"), p, f"{prefix}.proj")
    gated = F.silu(torch_linear(x, p, f"{prefix}.gate")) * torch_linear(x, p, f"{prefix}.up")
    return torch_linear(gated, p, f"{prefix}.proj")


def torch_block(x, p, prefix, n_heads, mlp="gelu", norm="layernorm", rope=False):
    x = x + torch_attention(torch_norm(x, p, f"{prefix}ln_1", norm), p, f"{prefix}attn", n_heads, rope)
    return x + torch_mlp(torch_norm(x, p, f"{prefix}ln_2", norm), p, f"{prefix}mlp", mlp)


def torch_gpt(idx: np.ndarray, p: dict, c: GPTConfig) -> torch.Tensor:
    idx_t = torch.tensor(idx)
    x = need(p, "wte.weight")[idx_t]
    if c.position == "learned":
        x = x + need(p, "wpe.weight")[: idx.shape[1]]
    for i in range(c.n_layer):
        x = torch_block(x, p, f"blocks.{i}.", c.n_head, c.mlp, c.norm, c.position == "rope")
    x = torch_norm(x, p, "ln_f", c.norm)
    head = need(p, "wte.weight") if c.tie_weights else need(p, "lm_head.weight")
    return x @ head.T


def torch_run(function, params: dict, inputs=(), upstream=None, targets=None) -> dict:
    """function(*input leaves, param leaves) in float64 torch, then backward: from `upstream` (dL/d out)
    or from the cross-entropy against `targets`. The output, the loss, and the gradients of the
    inputs and of every parameter, as numpy arrays."""
    p = {name: t64(value, grad=True) for name, value in params.items()}
    leaves = [t64(a, grad=True) for a in inputs]
    out = function(*leaves, p)
    if targets is not None:
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), torch.tensor(np.asarray(targets).reshape(-1)))
    else:
        loss = (out * t64(upstream)).sum()
    loss.backward()

    def grad(t):
        return np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy()

    return {"out": out.detach().numpy(), "loss": loss.item(), "inputs": [grad(t) for t in leaves],
            "params": {name: grad(t) for name, t in p.items()}}


def greedy_reference(model, prompt, steps: int, c: GPTConfig) -> np.ndarray:
    """Greedy generation as the lesson defines it, with torch logits from the model's (the test's) weights:
    crop the context to the last block_size tokens, argmax of the last position, append."""
    p = torch_params(model)
    tokens = np.array(prompt)
    for _ in range(steps):
        logits = torch_gpt(tokens[:, -c.block_size:], p, c).detach().numpy()[:, -1]
        tokens = np.concatenate([tokens, logits.argmax(axis=-1)[:, None]], axis=1)
    return tokens


def describe(c: GPTConfig) -> str:
    return (f"GPT(GPTConfig(vocab_size={c.vocab_size}, block_size={c.block_size}, n_layer={c.n_layer}, "
            f"n_head={c.n_head}, n_embd={c.n_embd}, norm={c.norm!r}, mlp={c.mlp!r}, position={c.position!r}"
            + (f", dropout={c.dropout}" if c.dropout else "") + "))")


# -- predicates, judged on the trusted side over the values your code produced ----------------


def close_pair(pair, rtol, atol) -> bool:
    """Two arrays of the same shape, equal within rtol / atol."""
    first, second = (np.asarray(a, dtype=np.float64) for a in pair)
    return first.shape == second.shape and first.size > 0 and bool(np.allclose(first, second, rtol=rtol, atol=atol))


def identical(pair) -> bool:
    first, second = (np.asarray(a) for a in pair)
    return first.shape == second.shape and bool(np.array_equal(first, second))


def different(pair, at_least) -> bool:
    """Two arrays of the same shape that differ somewhere by more than `at_least`."""
    first, second = (np.asarray(a, dtype=np.float64) for a in pair)
    return first.shape == second.shape and bool(np.max(np.abs(first - second)) > at_least)


def all_true(flags) -> bool:
    return len(flags) > 0 and all(flag is True for flag in flags)


def all_false(flags) -> bool:
    return len(flags) > 0 and all(flag is False for flag in flags)


def near(value, target, tolerance) -> bool:
    return abs(float(value) - target) < tolerance


def spread_at_least(values, at_least) -> bool:
    return float(np.ptp(np.asarray(values, dtype=np.float64))) > at_least


def constant_diagonals(scores, rtol, atol) -> bool:
    """Every diagonal of a square matrix holds one value: it depends on n - m only."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        return False
    return all(np.allclose(np.diagonal(scores, k), np.diagonal(scores, k)[0], rtol=rtol, atol=atol)
               for k in range(-scores.shape[0] + 1, scores.shape[0]))


def normal_with_std(weight, std) -> bool:
    """Drawn from N(0, std^2): the spread within 10%, the mean near 0, and (for large tensors)
    about 68.3% of the values within one std, as for a normal and not a uniform distribution."""
    w = np.asarray(weight, dtype=np.float64)
    if w.size < 500 or abs(float(w.std()) / std - 1) > 0.1 or abs(float(w.mean())) > 4 * std / math.sqrt(w.size):
        return False
    return w.size < 4000 or abs(float(np.mean(np.abs(w) < std)) - 0.6827) < 0.03


def inverted_dropout_of(pair, p) -> bool:
    """(dropped, clean): every entry either exactly 0 or clean / (1 - p), about a fraction p of them 0."""
    dropped, clean = (np.asarray(a, dtype=np.float64) for a in pair)
    if dropped.shape != clean.shape or dropped.size < 100:
        return False
    zero = dropped == 0.0
    return (bool(np.allclose(dropped[~zero], clean[~zero] / (1 - p), rtol=1e-9, atol=1e-12))
            and abs(float(zero.mean()) - p) < 0.15)


def zero_fraction_near(values, p) -> bool:
    """About a fraction p of the entries exactly 0 (dropout acted on these numbers themselves)."""
    values = np.asarray(values, dtype=np.float64)
    return values.size >= 100 and abs(float(np.mean(values == 0.0)) - p) < 0.15


def kept_not_just_rescaled(pair, p) -> bool:
    """(trained, evaluated): the entries that survived output dropout are NOT simply evaluated / (1 - p),
    because the attention weights inside were dropped too."""
    trained, evaluated = (np.asarray(a, dtype=np.float64) for a in pair)
    kept = trained != 0.0
    return (trained.shape == evaluated.shape and bool(kept.any())
            and not np.allclose(trained[kept], evaluated[kept] / (1 - p), rtol=1e-6, atol=1e-9))


def token_ids(tokens, shape, vocab) -> bool:
    """Integer token ids of the given shape, each in [0, vocab)."""
    tokens = np.asarray(tokens)
    return (tokens.shape == tuple(shape) and tokens.dtype.kind in "iu" and tokens.size > 0
            and int(tokens.min()) >= 0 and int(tokens.max()) < vocab)


def only_tokens(tokens, allowed) -> bool:
    tokens = np.asarray(tokens)
    return tokens.size > 0 and set(np.unique(tokens).tolist()) <= set(allowed)


def chi_square_below(tokens, expected, keep, limit) -> bool:
    """The counts of the kept tokens against n * expected: chi-square below `limit`; no other token drawn."""
    tokens, expected, keep = np.asarray(tokens), np.asarray(expected), np.asarray(keep)
    if tokens.dtype.kind not in "iu" or tokens.size == 0 or tokens.min() < 0 or tokens.max() >= len(expected):
        return False
    counts = np.bincount(tokens.reshape(-1), minlength=len(expected))
    n = tokens.size
    if counts[~keep].any():
        return False
    return float(np.sum((counts[keep] - n * expected[keep]) ** 2 / (n * expected[keep]))) < limit


def minimal_nucleus(filtered, logits, p) -> bool:
    """The kept tokens (finite entries) are the most probable ones, their mass reaches p, and without
    the least probable kept token(s) it would not."""
    kept = np.isfinite(np.asarray(filtered, dtype=np.float64))
    logits = np.asarray(logits, dtype=np.float64)
    if kept.shape != logits.shape or not kept.any():
        return False
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if probs[kept].min() < probs[~kept].max(initial=-1.0):
        return False
    if probs[kept].sum() < p - 1e-9:
        return False
    least = probs[kept].min()
    return bool(probs[kept & (probs > least)].sum() < p + 1e-9)


# -- LayerNorm and RMSNorm ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 8), (2, 3, 6), (4, 1)])
def test_layer_norm_matches_torch(shape):
    """LayerNorm's output and the gradients of input, weight and bias equal torch's (float64)"""
    rng = np.random.default_rng(sum(shape))
    dim = shape[-1]
    x0, w0, b0, up = rng.normal(2.0, 3.0, shape), rng.standard_normal(dim), rng.standard_normal(dim), rng.standard_normal(shape)
    layer = LayerNorm(dim)
    layer.weight.data, layer.bias.data = w0.copy(), b0.copy()
    x = Tensor(x0, requires_grad=True)
    out = layer(x)
    reference = torch_run(lambda tx, p: F.layer_norm(tx, (dim,), p["weight"], p["bias"], eps=1e-5),
                          {"weight": w0, "bias": b0}, [x0], up)
    call = f"LayerNorm({dim})(x of shape {shape}) with random weight and bias"
    expect_close(out, reference["out"], rtol=RTOL, atol=ATOL, call=call,
                 hint="(x - mean) / sqrt(var + eps) * weight + bias over the last axis; var is biased (divide by d)")
    out.backward(up)
    for name, ours in (("x", x), ("weight", layer.weight), ("bias", layer.bias)):
        expect_close(ours.grad, reference["inputs"][0] if name == "x" else reference["params"][name], rtol=RTOL,
                     atol=ATOL, call=f"{name}.grad after {call}.backward(g)",
                     hint="write forward with Tensor operations (mean, var, -, sqrt, /, *, +) so autograd differentiates it")


def test_layer_norm_parameters_and_a_constant_vector():
    """LayerNorm starts as weight = ones, bias = zeros (float32); a constant vector gives zeros, not nan"""
    layer = LayerNorm(6)
    expect_equal((layer.weight.data.dtype, layer.bias.data.dtype), (np.dtype(np.float32), np.dtype(np.float32)),
                 call="LayerNorm(6).weight.dtype, .bias.dtype", hint="parameters are float32, like every layer's")
    expect_close(layer.weight, np.ones(6), rtol=0, atol=0, call="LayerNorm(6).weight", hint="ones: a fresh LayerNorm only normalises")
    expect_close(layer.bias, np.zeros(6), rtol=0, atol=0, call="LayerNorm(6).bias", hint="zeros")
    expect_equal((layer.weight.requires_grad, layer.bias.requires_grad), (True, True),
                 call="LayerNorm(6).weight.requires_grad, .bias.requires_grad",
                 hint="they are parameters: Tensor(..., requires_grad=True)")
    expect_equal(len(LayerNorm(6, bias=False).parameters()), 1, call="len(LayerNorm(6, bias=False).parameters())",
                 hint="bias=False: no bias tensor (self.bias = None)")
    out = layer(Tensor(np.full((2, 6), 3.5)))
    expect_close(out, np.zeros((2, 6)), rtol=0, atol=1e-12, call="LayerNorm(6)(a row of 3.5s)",
                 hint="var = 0 here: eps inside the square root keeps the division finite")
    x = np.random.default_rng(1).normal(5.0, 4.0, (3, 6))
    y = layer(Tensor(x)).data
    expect_close(np.stack([y.mean(axis=-1), y.var(axis=-1)]), np.stack([np.zeros(3), x.var(axis=-1) / (x.var(axis=-1) + 1e-5)]),
                 rtol=1e-9, atol=1e-12, call="mean and variance of each row of LayerNorm(6)(x)",
                 hint="each row (token) is normalised on its own: mean 0 and variance var / (var + eps)")
    small = np.random.default_rng(2).normal(0.0, 0.01, (2, 6))
    expect_close(layer(Tensor(small)), (small - small.mean(-1, keepdims=True)) / np.sqrt(small.var(-1, keepdims=True) + 1e-5),
                 rtol=1e-9, atol=1e-12, call="LayerNorm(6)(x with std 0.01)",
                 hint="eps goes inside the square root, sqrt(var + eps), where it matters for small variances")


@pytest.mark.parametrize("shape", [(5, 8), (2, 3, 6)])
def test_rms_norm_matches_torch(shape):
    """RMSNorm's output and the gradients of input and weight equal torch's rms_norm (float64)"""
    rng = np.random.default_rng(10 + sum(shape))
    dim = shape[-1]
    x0, w0, up = rng.normal(1.0, 2.0, shape), rng.standard_normal(dim), rng.standard_normal(shape)
    layer = RMSNorm(dim)
    expect_close(layer.weight, np.ones(dim, dtype=np.float32), rtol=0, atol=0, call=f"RMSNorm({dim}).weight",
                 hint="ones, float32")
    layer.weight.data = w0.copy()
    x = Tensor(x0, requires_grad=True)
    out = layer(x)
    reference = torch_run(lambda tx, p: F.rms_norm(tx, (dim,), p["weight"], eps=1e-6), {"weight": w0}, [x0], up)
    call = f"RMSNorm({dim})(x of shape {shape}) with a random weight"
    expect_close(out, reference["out"], rtol=RTOL, atol=ATOL, call=call,
                 hint="x / sqrt(mean(x^2) + eps) * weight over the last axis, no mean subtracted, no bias")
    out.backward(up)
    expect_close(x.grad, reference["inputs"][0], rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
                 hint="Tensor operations only, so that autograd differentiates it")
    expect_close(layer.weight.grad, reference["params"]["weight"], rtol=RTOL, atol=ATOL,
                 call=f"weight.grad after {call}.backward(g)", hint="Tensor operations only, so that autograd differentiates it")
    small = np.random.default_rng(3).normal(0.0, 1e-3, (2, dim))
    expect_close(RMSNorm(dim)(Tensor(small)), small / np.sqrt((small ** 2).mean(-1, keepdims=True) + 1e-6),
                 rtol=1e-9, atol=1e-12, call=f"RMSNorm({dim})(x with entries around 1e-3)",
                 hint="eps goes inside the square root: sqrt(mean(x^2) + eps)")


# -- the MLP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
def test_mlp_matches_torch(activation):
    """MLP (GELU, tanh approximation / SwiGLU) equals torch with the same weights, values and gradients"""
    rng = np.random.default_rng(3)
    mlp = MLP(6, hidden=10, activation=activation)
    to_float64(mlp, rng)
    x0, up = rng.standard_normal((2, 4, 6)), rng.standard_normal((2, 4, 6))
    x = Tensor(x0, requires_grad=True)
    out = mlp(x)
    reference = torch_run(lambda tx, p: torch_mlp(tx, {f"m.{k}": v for k, v in p.items()}, "m", activation),
                          numpy_params(mlp), [x0], up)
    call = f"MLP(6, hidden=10, activation={activation!r})(x of shape (2, 4, 6))"
    hint = ("proj(gelu(fc(x))) with module 02's GELU (tanh approximation)" if activation == "gelu"
            else "proj(silu(gate(x)) * up(x)) with silu(z) = z * sigmoid(z)")
    expect_close(out, reference["out"], rtol=RTOL, atol=ATOL, call=call, hint=hint)
    out.backward(up)
    expect_close(x.grad, reference["inputs"][0], rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)", hint=hint)
    for name, tensor in mlp.named_parameters():
        expect_close(tensor.grad, reference["params"][name], rtol=RTOL, atol=ATOL,
                     call=f"{name}.grad after {call}.backward(g)", hint=hint)


def test_mlp_shapes_and_choices():
    """MLP: hidden defaults to 4 * dim, SwiGLU has three matrices, an unknown activation is a ValueError"""
    gelu = MLP(8)
    expect_equal((gelu.fc.weight.shape, gelu.proj.weight.shape), ((32, 8), (8, 32)), call="MLP(8): fc.weight.shape, proj.weight.shape",
                 hint="fc: Linear(dim, 4 * dim), proj: Linear(4 * dim, dim), torch's (out, in) layout")
    swiglu = MLP(8, hidden=12, activation="swiglu", bias=False)
    expect_equal([(name, tuple(t.shape)) for name, t in swiglu.named_parameters()],
                 [("gate.weight", (12, 8)), ("up.weight", (12, 8)), ("proj.weight", (8, 12))],
                 call="MLP(8, hidden=12, activation='swiglu', bias=False).named_parameters()",
                 hint="Linear gate and up (dim -> hidden), then proj (hidden -> dim), created in that order, no biases")
    expect_raises(ValueError, lambda: MLP(8, activation="relu"), call="MLP(8, activation='relu')",
                  hint="only 'gelu' and 'swiglu' exist; say so", message_contains="relu")
    rng = np.random.default_rng(11)
    to_float64(gelu, rng)
    x0 = rng.standard_normal((3, 8))
    expect_close(gelu(Tensor(x0)), torch_run(lambda tx, p: torch_mlp(tx, p, "", "gelu"),
                                             {f".{k}": v for k, v in numpy_params(gelu).items()}, [x0],
                                             np.zeros((3, 8)))["out"],
                 rtol=RTOL, atol=ATOL, call="MLP(8)(x of shape (3, 8)) with the test's weights",
                 hint="proj(gelu(fc(x))): 8 -> 32 -> 8")


def test_mlp_dropout_acts_on_the_output():
    """MLP(dropout=0.5): nothing dropped in eval mode; in training, inverted dropout on proj's output"""
    rng = np.random.default_rng(12)
    mlp = MLP(6, hidden=10, dropout=0.5)
    to_float64(mlp, rng)
    x0 = rng.standard_normal((6, 8, 6))
    mlp.eval()
    clean = mlp(Tensor(x0))
    expect_close(clean, torch_run(lambda tx, p: torch_mlp(tx, {f"m.{k}": v for k, v in p.items()}, "m", "gelu"),
                                  numpy_params(mlp), [x0], np.zeros((6, 8, 6)))["out"],
                 rtol=RTOL, atol=ATOL, call="MLP(6, hidden=10, dropout=0.5).eval()(x)",
                 hint="in eval mode Dropout is the identity")
    mlp.train()
    manual_seed(0)
    dropped = mlp(Tensor(x0))
    expect_that((dropped, clean), inverted_dropout_of, 0.5, call="MLP(6, hidden=10, dropout=0.5).train()(x) against eval()(x)",
                expected="every output either 0 or the eval output / (1 - 0.5), about half of them 0",
                hint="as in GPT-2, dropout acts on the MLP's output: dropout(proj(hidden)), not on the hidden layer")


# -- RoPE ---------------------------------------------------------------------------------------


def test_rope_angles_are_position_times_frequency():
    """rope_angles(3, 4) gives cos and sin of p * 10000^(-2i/4): frequencies 1 and 0.01"""
    cos, sin = rope_angles(3, 4)
    angles = np.array([[0.0, 0.0], [1.0, 0.01], [2.0, 0.02]])
    expect_close(np.stack([cos, sin]), np.stack([np.cos(angles), np.sin(angles)]), rtol=1e-12, atol=1e-15,
                 call="rope_angles(3, 4)", hint="angle[p, i] = p * base^(-2i/d): 10000^0 = 1 and 10000^(-2/4) = 0.01")
    cos, sin = rope_angles(2, 2, base=100.0, offset=5)
    expect_close(np.stack([cos, sin]), np.stack([np.cos([[5.0], [6.0]]), np.sin([[5.0], [6.0]])]), rtol=1e-12, atol=1e-15,
                 call="rope_angles(2, 2, base=100.0, offset=5)", hint="positions start at offset")


@pytest.mark.parametrize("shape, base, offset", [((2, 3, 5, 8), 10000.0, 0), ((7, 4), 100.0, 0), ((1, 2, 4, 6), 10000.0, 9)])
def test_rope_matches_torch(shape, base, offset):
    """apply_rope equals a complex-number RoPE in torch, and its gradient equals torch autograd's"""
    rng = np.random.default_rng(len(shape) + offset)
    x0, up = rng.standard_normal(shape), rng.standard_normal(shape)
    x = Tensor(x0, requires_grad=True)
    out = apply_rope(x, base=base, offset=offset) if offset else apply_rope(x, base=base)
    reference = torch_run(lambda tx, p: torch_rope(tx, base, offset), {}, [x0], up)
    call = f"apply_rope(x of shape {shape}, base={base}" + (f", offset={offset})" if offset else ")")
    expect_close(out, reference["out"], rtol=RTOL, atol=ATOL, call=call,
                 hint="out[2i] = x[2i] cos - x[2i+1] sin, out[2i+1] = x[2i] sin + x[2i+1] cos, angle = p * base^(-2i/d), "
                      "p the index along axis -2")
    out.backward(up)
    expect_close(x.grad, reference["inputs"][0], rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
                 hint="RopeFn.backward rotates the gradient by the opposite angle: the same formula with sin negated; "
                      "record it with module 05's record() when x requires grad")


def test_rope_scores_depend_only_on_relative_position():
    """With RoPE, the score of query position m and key position n depends only on n - m"""
    rng = np.random.default_rng(4)
    q, k = rng.standard_normal(16), rng.standard_normal(16)
    steps = 9
    rotated_q = apply_rope(Tensor(np.tile(q, (steps, 1)))).data   # the same q at positions 0..8
    rotated_k = apply_rope(Tensor(np.tile(k, (steps, 1)))).data
    scores = rotated_q @ rotated_k.T
    expect_that(scores, constant_diagonals, 1e-10, 1e-12, call="(R(m) q) . (R(n) k) for m, n in 0..8",
                expected="a matrix constant along every diagonal: the score depends on n - m only",
                hint="rotations preserve dot products: (R(m) q) . (R(n) k) = q . R(n - m) k")
    expect_close(scores[0, 0], q @ k, rtol=1e-12, atol=1e-12, call="(R(0) q) . (R(0) k)", hint="position 0 is not rotated")
    expect_that(scores[0], spread_at_least, 1e-3, call="scores[0, :] over key positions 0..8",
                expected="scores that change with the distance", hint="the pairs must actually rotate, by p * base^(-2i/d)")


def pair_lengths(a: np.ndarray) -> np.ndarray:
    return np.hypot(a[..., 0::2], a[..., 1::2])


def test_rope_keeps_lengths_and_rejects_odd_dims():
    """apply_rope keeps the length of every pair and float32; an odd feature size is a ValueError"""
    x0 = np.random.default_rng(5).standard_normal((3, 5, 6)).astype(np.float32)
    out = apply_rope(Tensor(x0))
    expect_equal(out.dtype, np.dtype(np.float32), call="apply_rope(float32 x).dtype", hint="cast cos and sin to x's dtype")
    expect_close(pair_lengths(out.data), pair_lengths(x0), rtol=1e-5, atol=1e-6, call="length of each pair after apply_rope",
                 hint="a rotation moves a point around a circle; it never changes its distance from 0")
    expect_raises(ValueError, lambda: apply_rope(Tensor(np.ones((4, 5)))), call="apply_rope(x of shape (4, 5))",
                  hint="d = 5 features do not form pairs")


# -- attention and the block ----------------------------------------------------------------------


@pytest.mark.parametrize("rope", [False, True])
def test_causal_self_attention_matches_torch(rope):
    """CausalSelfAttention equals torch's projections + scaled_dot_product_attention(is_causal=True)"""
    rng = np.random.default_rng(6)
    attn = CausalSelfAttention(12, 3, rope=rope)
    to_float64(attn, rng)
    x0, up = rng.standard_normal((2, 5, 12)), rng.standard_normal((2, 5, 12))
    x = Tensor(x0, requires_grad=True)
    out, weights = attn(x, need_weights=True)
    reference = torch_run(lambda tx, p: torch_attention(tx, {f"a.{k}": v for k, v in p.items()}, "a", 3, rope),
                          numpy_params(attn), [x0], up)
    call = f"CausalSelfAttention(12, n_heads=3, rope={rope})(x of shape (2, 5, 12))"
    expect_close(out, reference["out"], rtol=RTOL, atol=ATOL, call=call,
                 hint="q, k, v (B, T, dim) -> reshape (B, T, H, hd) -> transpose(1, 2); "
                      + ("apply_rope to q and k (not v); " if rope else "")
                      + "attention with is_causal=True; back to (B, T, dim); out_proj")
    expect_equal(tuple(weights.shape), (2, 3, 5, 5), call=f"{call} with need_weights=True: weights.shape",
                 hint="one (T, T) matrix per sequence and head")
    expect_close(np.triu(weights.data, 1), np.zeros((2, 3, 5, 5)), rtol=0, atol=0,
                 call="attention weights above the diagonal", hint="causal: position t attends to 0..t only")
    out.backward(up)
    expect_close(x.grad, reference["inputs"][0], rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
                 hint="Tensor operations (and apply_rope's Function) carry the gradient")
    expect_close(attn.q_proj.weight.grad, reference["params"]["q_proj.weight"], rtol=RTOL, atol=ATOL,
                 call=f"q_proj.weight.grad after {call}.backward(g)", hint="the queries reach the loss through the scores")


def test_causal_self_attention_dropout():
    """CausalSelfAttention(dropout=0.5): exact in eval mode; in training it drops attention weights and outputs"""
    rng = np.random.default_rng(13)
    attn = CausalSelfAttention(8, 2, dropout=0.5)
    to_float64(attn, rng)
    x0 = rng.standard_normal((4, 8, 8))
    attn.eval()
    evaluated = attn(Tensor(x0))
    expect_close(evaluated, torch_run(lambda tx, p: torch_attention(tx, {f"a.{k}": v for k, v in p.items()}, "a", 2, False),
                                      numpy_params(attn), [x0], np.zeros((4, 8, 8)))["out"],
                 rtol=RTOL, atol=ATOL, call="CausalSelfAttention(8, 2, dropout=0.5).eval()(x)",
                 hint="in eval mode nothing is dropped: pass dropout_p to the attention only when self.training")
    attn.train()
    manual_seed(0)
    trained = attn(Tensor(x0))
    call = "CausalSelfAttention(8, 2, dropout=0.5).train()(x)"
    expect_that(trained, zero_fraction_near, 0.5, call=call, expected="about half of the outputs exactly 0",
                hint="Dropout on the output, after out_proj, as in GPT-2 (resid_dropout)")
    expect_that((trained, evaluated), kept_not_just_rescaled, 0.5, call=f"{call}, the outputs that were kept",
                expected="different from eval()(x) / (1 - p): the attention weights were dropped too",
                hint="in training mode also pass dropout_p=the dropout to scaled_dot_product_attention (attn_dropout)")


@pytest.mark.parametrize("mlp, norm, rope", [("gelu", "layernorm", False), ("swiglu", "rmsnorm", True)])
def test_block_matches_a_torch_pre_norm_block(mlp, norm, rope):
    """Block is x + attn(ln_1(x)), then + mlp(ln_2(x)): equal to torch, values and gradients"""
    rng = np.random.default_rng(7)
    block = Block(8, 2, mlp=mlp, norm=norm, rope=rope)
    expect_equal([name for name, _ in block.named_children()], ["ln_1", "attn", "ln_2", "mlp"],
                 call="[name for name, _ in Block(8, 2).named_children()]", hint="create ln_1, attn, ln_2, mlp in this order")
    to_float64(block, rng, 0.3)
    x0, up = rng.standard_normal((2, 6, 8)), rng.standard_normal((2, 6, 8))
    x = Tensor(x0, requires_grad=True)
    out = block(x)
    reference = torch_run(lambda tx, p: torch_block(tx, p, "", 2, mlp, norm, rope), numpy_params(block), [x0], up)
    call = f"Block(8, 2, mlp={mlp!r}, norm={norm!r}, rope={rope})(x of shape (2, 6, 8))"
    expect_close(out, reference["out"], rtol=RTOL, atol=ATOL, call=call,
                 hint="pre-norm: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)); the norms sit inside the branches")
    out.backward(up)
    expect_close(x.grad, reference["inputs"][0], rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
                 hint="the residual path adds g itself to the gradient of x")
    for name, tensor in block.named_parameters():
        expect_close(tensor.grad, reference["params"][name], rtol=RTOL, atol=ATOL,
                     call=f"{name}.grad after {call}.backward(g)", hint="every parameter takes part through Tensor operations")


# -- the GPT ------------------------------------------------------------------------------------


GPT_CONFIGS = [
    GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16),
    GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16, norm="rmsnorm", mlp="swiglu", position="rope"),
]


@pytest.mark.parametrize("config", GPT_CONFIGS, ids=["learned-layernorm-gelu", "rope-rmsnorm-swiglu"])
def test_gpt_logits_and_gradients_match_torch(config):
    """GPT's logits and the gradients of a cross-entropy loss equal a torch GPT holding the same weights"""
    manual_seed(0)
    model = GPT(config)
    rng = np.random.default_rng(8)
    to_float64(model, rng)
    idx = rng.integers(0, config.vocab_size, (3, config.block_size))
    targets = rng.integers(0, config.vocab_size, (3, config.block_size))
    short = idx[:, :5]
    reference = torch_run(lambda p: torch_gpt(idx, p, config), numpy_params(model), targets=targets)
    call = f"{describe(config)}(idx of shape (3, {config.block_size}))"
    logits = model(idx)
    expect_close(logits, reference["out"], rtol=DEEP_RTOL, atol=DEEP_ATOL, call=call,
                 hint="wte(idx) (+ wpe(arange(T)) for learned positions) -> blocks -> ln_f -> lm_head, "
                      "whose weight is wte.weight")
    expect_close(model(short), torch_run(lambda p: torch_gpt(short, p, config), numpy_params(model), targets=short)["out"],
                 rtol=DEEP_RTOL, atol=DEEP_ATOL, call=f"{describe(config)}(idx of shape (3, 5)), shorter than block_size",
                 hint="positions 0..T-1 of the sequence: wpe(np.arange(T)) with T = idx.shape[1], not block_size")
    loss = CrossEntropyLoss()(logits.reshape(-1, config.vocab_size), Tensor(targets.reshape(-1)))
    loss.backward()
    for name, tensor in model.named_parameters():
        expect_close(tensor.grad, reference["params"][name], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                     call=f"{name}.grad after the loss of {call}",
                     hint="every step is a Tensor operation or a recorded Function; wte.weight gets the gradient "
                          "of both its uses (lookup and head), which autograd adds up")


def test_weight_tying_shares_one_tensor():
    """lm_head.weight IS wte.weight, counted once by parameters(); tie_weights=False gives a second matrix"""
    config = GPTConfig(vocab_size=20, block_size=4, n_layer=1, n_head=2, n_embd=8)
    model = GPT(config)
    expect_equal(model.lm_head.weight is model.wte.weight, True, call="GPT(config).lm_head.weight is GPT(config).wte.weight",
                 hint="the same Tensor object: after creating lm_head, assign self.lm_head.weight = self.wte.weight")
    expect_equal(sum(1 for t in model.parameters() if t is model.wte.weight), 1, call="how often parameters() lists wte.weight",
                 hint="module 03's registry lists a shared tensor once")
    names = [name for name, _ in model.named_parameters()]
    expect_equal((names[0], "lm_head.weight" in names), ("wte.weight", False),
                 call="GPT(config).named_parameters(): the first name, and whether 'lm_head.weight' is listed",
                 hint="create wte first; the tied head is the same tensor, listed once under its first name")
    table = np.random.default_rng(14).standard_normal((20, 8)).astype(np.float32)
    model.wte.weight.data[...] = table
    h = np.random.default_rng(15).standard_normal((2, 8))
    expect_close(model.lm_head(Tensor(h)), h @ table.T.astype(np.float64), rtol=1e-5, atol=1e-6,
                 call="lm_head(h) after writing new numbers into wte.weight.data",
                 hint="the head scores each token with the token's own embedding row: logits = h @ wte.weight.T")
    untied = GPT(GPTConfig(vocab_size=20, block_size=4, n_layer=1, n_head=2, n_embd=8, tie_weights=False))
    expect_equal(untied.lm_head.weight is not untied.wte.weight, True,
                 call="GPT(tie_weights=False): lm_head.weight is not wte.weight", hint="only tie when config.tie_weights")
    expect_equal(untied.num_parameters() - model.num_parameters(), 20 * 8,
                 call="num_parameters(untied) - num_parameters(tied)", hint="tying saves exactly vocab_size * n_embd numbers")


@pytest.mark.parametrize("n_layer, n_embd, vocab, block", [(2, 16, 11, 8), (3, 24, 50, 32)])
def test_parameter_count_equals_the_closed_form(n_layer, n_embd, vocab, block):
    """num_parameters() == 12 L d^2 + V d + block_size d + (13 L + 2) d for the GPT-2 layout"""
    config = GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=4, n_embd=n_embd)
    model = GPT(config)
    d = n_embd
    expect_equal(model.num_parameters(), 12 * n_layer * d * d + vocab * d + block * d + (13 * n_layer + 2) * d,
                 call=f"GPT(vocab_size={vocab}, block_size={block}, n_layer={n_layer}, n_embd={d}).num_parameters()",
                 hint="per block 4 d^2 + 4 d (attention) + 8 d^2 + 5 d (MLP, hidden 4d) + 4 d (two LayerNorms); "
                      "plus wte (tied to lm_head), wpe and ln_f; n_layer separate Block objects")
    rng = np.random.default_rng(n_layer)
    to_float64(model, rng)
    idx = rng.integers(0, vocab, (1, 6))
    expect_close(model(idx), torch_gpt(idx, torch_params(model), config).detach(), rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call=f"{describe(config)}(idx of shape (1, 6)) with the test's weights",
                 hint="every one of those parameters takes part: embeddings, n_layer blocks, ln_f, the tied head")


@pytest.mark.parametrize("config", GPT_CONFIGS, ids=["learned", "rope"])
def test_logits_do_not_depend_on_future_tokens(config):
    """Changing the tokens after position t leaves the logits at positions 0..t unchanged"""
    model = GPT(config)
    rng = np.random.default_rng(9)
    to_float64(model, rng)
    idx = rng.integers(0, config.vocab_size, (2, 8))
    changed = idx.copy()
    changed[:, 5:] = (changed[:, 5:] + 1 + rng.integers(0, config.vocab_size - 1, (2, 3))) % config.vocab_size
    with no_grad():
        before, after = model(idx).data, model(changed).data
    expect_close(before, torch_gpt(idx, torch_params(model), config).detach(), rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call=f"{describe(config)}(idx)", hint="the GPT of the lesson, with the test's weights")
    expect_that((before[:, :5], after[:, :5]), close_pair, 1e-9, 1e-12,
                call=f"{describe(config)}: logits[:, :5] before and after changing tokens 5..7",
                expected="the same logits at positions 0..4",
                hint="attention must be causal (is_causal=True): position t may only read positions 0..t")
    expect_that((before[:, 5:], after[:, 5:]), different, 1e-6, call="logits[:, 5:] before and after changing tokens 5..7",
                expected="different logits", hint="the changed tokens themselves must matter")


def test_sequence_longer_than_block_size_is_rejected():
    """A sequence longer than block_size is a ValueError; exactly block_size works"""
    config = GPTConfig(vocab_size=7, block_size=5, n_layer=1, n_head=1, n_embd=4)
    model = GPT(config)
    rng = np.random.default_rng(16)
    to_float64(model, rng)
    idx = rng.integers(0, 7, (2, 5))
    expect_close(model(idx), torch_gpt(idx, torch_params(model), config).detach(), rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call="GPT(block_size=5)(idx (2, 5))", hint="exactly block_size tokens is allowed: logits (B, T, vocab_size)")
    for position in ("learned", "rope"):
        model = GPT(GPTConfig(vocab_size=7, block_size=5, n_layer=1, n_head=2, n_embd=4, position=position))
        expect_raises(ValueError, lambda: model(np.zeros((1, 6), dtype=np.int64)),
                      call=f"GPT(block_size=5, position={position!r})(idx of shape (1, 6))",
                      hint="check T against config.block_size before anything else", message_contains="block_size")


def test_initialisation_follows_gpt2():
    """Weights ~ N(0, 0.02), residual projections 0.02 / sqrt(2 n_layer), biases 0, initial loss ~ log(vocab)"""
    manual_seed(2)
    config = GPTConfig(vocab_size=256, block_size=16, n_layer=4, n_head=4, n_embd=64)
    model = GPT(config)
    residual = 0.02 / math.sqrt(2 * config.n_layer)
    checks = [("wte.weight", model.wte.weight, 0.02), ("wpe.weight", model.wpe.weight, 0.02),
              ("blocks.0.attn.q_proj.weight", model.blocks[0].attn.q_proj.weight, 0.02),
              ("blocks.1.mlp.fc.weight", model.blocks[1].mlp.fc.weight, 0.02),
              ("blocks.2.attn.out_proj.weight", model.blocks[2].attn.out_proj.weight, residual),
              ("blocks.3.mlp.proj.weight", model.blocks[3].mlp.proj.weight, residual)]
    for name, tensor, std in checks:
        expect_that(tensor, normal_with_std, std, call=f"{name} at init", expected=f"N(0, {std:.5f}^2) numbers",
                    hint="N(0, 0.02) from generator(); attn.out_proj and mlp.proj: 0.02 / sqrt(2 * n_layer)")
    expect_equal({name: str(t.dtype) for name, t in model.named_parameters()},
                 {name: "float32" for name, _ in model.named_parameters()},
                 call="dtypes of the GPT's parameters", hint="write into tensor.data[...]: parameters stay float32")
    for name, tensor in model.named_parameters():
        if name.endswith("bias"):
            expect_equal(float(np.abs(tensor.data).max()), 0.0, call=f"{name} at init", hint="biases start at 0")
    expect_close(model.ln_f.weight, np.ones(64), rtol=0, atol=0, call="ln_f.weight at init", hint="norms start at ones")
    idx, targets = np.random.default_rng(3).integers(0, 256, (2, 8, 16))
    with no_grad():
        loss = CrossEntropyLoss()(model(idx).reshape(-1, 256), Tensor(targets.reshape(-1))).item()
    expect_that(loss, near, math.log(256), 0.05, call="cross-entropy of a fresh GPT against random next tokens",
                expected=f"about log(256) = {math.log(256):.3f}",
                hint="small N(0, 0.02) weights make every token almost equally likely at the start")


def test_embedding_dropout():
    """GPT(dropout=0.5) drops the sum of the embeddings in training (blocks silenced), not in eval"""
    config = GPTConfig(vocab_size=9, block_size=6, n_layer=1, n_head=2, n_embd=8, dropout=0.5)
    model = GPT(config)
    rng = np.random.default_rng(17)
    to_float64(model, rng)
    # the block's two residual branches write zeros: only the embedding dropout can change the logits
    for layer in (model.blocks[0].attn.out_proj, model.blocks[0].mlp.proj):
        layer.weight.data[...] = 0.0
        layer.bias.data[...] = 0.0
    idx = rng.integers(0, 9, (2, 6))
    model.eval()
    with no_grad():
        evaluated = model(idx)
    expect_close(evaluated, torch_gpt(idx, torch_params(model), config).detach(), rtol=DEEP_RTOL, atol=DEEP_ATOL,
                 call=f"{describe(config)}.eval()(idx)", hint="in eval mode no dropout acts")
    model.train()
    manual_seed(0)
    with no_grad():
        trained = model(idx)
    expect_that((evaluated, trained), different, 1e-3, call=f"{describe(config)}: eval()(idx) and train()(idx)",
                expected="different logits: in training the embeddings are dropped",
                hint="self.drop = Dropout(config.dropout), applied to wte(idx) + wpe(arange(T)) in forward")


# -- generation -----------------------------------------------------------------------------------


def test_greedy_generation_is_the_step_by_step_argmax():
    """generate(greedy=True) appends the argmax of the last position, cropping the context to block_size"""
    config = GPTConfig(vocab_size=9, block_size=6, n_layer=2, n_head=2, n_embd=16)
    model = GPT(config)
    to_float64(model, np.random.default_rng(25), 0.3)
    prompt = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    got = model.generate(prompt, 7, greedy=True)
    expect_equal(tuple(np.shape(got)), (2, 11), call="model.generate(prompt (2, 4), 7, greedy=True).shape",
                 hint="the prompt followed by max_new_tokens new tokens: (B, T + max_new_tokens)")
    expect_equal(np.asarray(got), greedy_reference(model, prompt, 7, config), call="model.generate(prompt, 7, greedy=True) with block_size=6",
                 hint="each step: context = tokens[:, -block_size:] (the LAST block_size tokens), logits of the "
                      "LAST position, argmax, append")
    long = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]])
    expect_equal(np.asarray(model.generate(long, 5, greedy=True)), greedy_reference(model, long, 5, config),
                 call="model.generate(prompt of 8 tokens, 5, greedy=True) with block_size=6",
                 hint="a prompt longer than block_size: the model reads its LAST block_size tokens, tokens[:, -6:]")


def test_generate_restores_the_mode_and_records_nothing():
    """generate runs in eval mode under no_grad, then restores the previous mode; same rng, same text"""
    config = GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.5)
    model = GPT(config)
    to_float64(model, np.random.default_rng(19), 0.3)
    model.train()
    seen = []
    original_forward = model.forward

    def spy(*args, **kwargs):
        seen.append((is_grad_enabled(), model.training))
        return original_forward(*args, **kwargs)

    model.forward = spy
    first = model.generate([[1, 2]], 6, rng=np.random.default_rng(7))
    del model.forward
    expect_equal(seen, [(False, False)] * 6, call="(is_grad_enabled(), model.training) while generate runs the model",
                 hint="call the model inside `with no_grad():` after self.eval(), once per new token")
    expect_that([m.training for m in model.modules()], all_true, call="model.training after model.train(); model.generate(...)",
                expected="True in every module", hint="remember self.training before, call self.train(previous) afterwards (try/finally)")
    second = model.generate([[1, 2]], 6, rng=np.random.default_rng(7))
    expect_that((first, second), identical, call="two generate calls with np.random.default_rng(7)",
                expected="the same tokens",
                hint="draw only from rng, and evaluate in eval mode (no dropout) so the same rng gives the same text")
    expect_that(first, token_ids, (1, 8), 9, call="model.generate([[1, 2]], 6, rng=...)",
                expected="integer ids in [0, 9), shape (1, 8)", hint="append integer token ids")
    greedy = model.generate([[3, 1, 4]], 5, greedy=True)
    expect_equal(np.asarray(greedy), greedy_reference(model, [[3, 1, 4]], 5, config),
                 call="model.generate([[3, 1, 4]], 5, greedy=True) called in training mode",
                 hint="generate switches to eval mode itself, so dropout never changes the text")
    model.eval()
    model.generate([[1]], 2, greedy=True)
    expect_that([m.training for m in model.modules()], all_false, call="model.training after model.eval(); model.generate(...)",
                expected="False in every module", hint="restore the PREVIOUS mode, which may be eval")


def test_temperature_must_be_positive():
    """temperature <= 0 is a ValueError in sample_next_token, next_token_probs and generate"""
    logits = np.array([[1.0, 2.0, 3.0]])
    for temperature in (0.0, -1.0):
        expect_raises(ValueError, lambda: sample_next_token(logits, temperature=temperature),
                      call=f"sample_next_token(logits, temperature={temperature})", hint="dividing by T <= 0 is meaningless")
        expect_raises(ValueError, lambda: next_token_probs(logits, temperature=temperature),
                      call=f"next_token_probs(logits, temperature={temperature})", hint="dividing by T <= 0 is meaningless")
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    expect_raises(ValueError, lambda: model.generate([[1]], 2, temperature=0.0), call="model.generate([[1]], 2, temperature=0.0)",
                  hint="check the temperature before generating")
    expect_close(next_token_probs(logits, temperature=2.0), torch.softmax(t64(logits) / 2.0, dim=-1), rtol=1e-12,
                 atol=1e-15, call="next_token_probs([[1.0, 2.0, 3.0]], temperature=2.0)", hint="a positive T is fine")


# -- sampling helpers -----------------------------------------------------------------------------


def test_top_k_filter_keeps_the_k_largest_and_their_ties():
    """top_k_filter keeps logits >= the k-th largest (ties at the boundary all stay), -inf elsewhere"""
    logits = np.array([1.0, 3.0, 2.0, 2.0, 0.0, -1.0])
    inf = -np.inf
    cases = [(1, [inf, 3.0, inf, inf, inf, inf]), (2, [inf, 3.0, 2.0, 2.0, inf, inf]),
             (3, [inf, 3.0, 2.0, 2.0, inf, inf]), (4, [1.0, 3.0, 2.0, 2.0, inf, inf]), (6, list(logits)), (10, list(logits))]
    for k, expected in cases:
        expect_equal(top_k_filter(logits, k), np.array(expected), call=f"top_k_filter({logits.tolist()}, k={k})",
                     hint="keep every logit >= the k-th largest value (both 2.0s are the 2nd/3rd largest), "
                          "-inf elsewhere; k >= vocab keeps everything")
    batch = np.array([[0.0, 5.0, 1.0], [4.0, 3.0, 9.0]])
    expect_equal(top_k_filter(batch, 1), np.array([[inf, 5.0, inf], [inf, inf, 9.0]]), call=f"top_k_filter({batch.tolist()}, k=1)",
                 hint="each row on its own: the k-th largest along the last axis (np.partition or np.sort with axis=-1)")
    expect_raises(ValueError, lambda: top_k_filter(logits, 0), call="top_k_filter(logits, 0)", hint="k must be at least 1")


def test_top_p_filter_keeps_the_smallest_nucleus():
    """top_p_filter keeps the most probable tokens until their mass reaches p (exact boundary, ties)"""
    probs = np.array([0.15, 0.5, 0.05, 0.3])
    logits = np.log(probs)
    inf = -np.inf
    cases = [(0.8, [inf, logits[1], inf, logits[3]]),                 # 0.5 + 0.3 reaches 0.8 exactly: stop
             (0.81, [logits[0], logits[1], inf, logits[3]]),           # needs the 0.15 too
             (0.5, [inf, logits[1], inf, inf]),                        # 0.5 alone reaches 0.5
             (0.01, [inf, logits[1], inf, inf]),                       # the top token is always kept
             (0.96, list(logits)), (1.0, list(logits))]
    for p, expected in cases:
        expect_close(top_p_filter(logits, p), np.array(expected), rtol=0, atol=0,
                     call=f"top_p_filter(log({probs.tolist()}), p={p})",
                     hint="sort the probabilities in decreasing order; keep a token while the mass BEFORE it is < p "
                          "(up to 1e-9 of rounding): [0.5, 0.3] already reach 0.8")
    tied = np.log(np.array([0.3, 0.4, 0.3]))
    expect_close(top_p_filter(tied, 0.5), tied, rtol=0, atol=0, call="top_p_filter(log([0.3, 0.4, 0.3]), p=0.5)",
                 hint="0.4 + one 0.3 reaches 0.5, and the other 0.3 is tied with it: ties at the boundary all stay")
    batch = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]))
    expect_close(top_p_filter(batch, 0.6), np.array([[batch[0, 0], inf, inf], [inf, inf, batch[1, 2]]]), rtol=0, atol=0,
                 call="top_p_filter(two rows, p=0.6)", hint="each row is its own distribution")
    expect_raises(ValueError, lambda: top_p_filter(logits, 0.0), call="top_p_filter(logits, 0.0)", hint="p must be in (0, 1]")


@settings(max_examples=25)
@given(logits=hnp.arrays(np.float64, st.integers(2, 12), elements=st.floats(-5, 5, allow_nan=False)),
       p=st.floats(0.05, 0.99))
def test_top_p_nucleus_is_minimal(logits, p):
    """The kept tokens are the most probable, their mass reaches p, and without the least one it would not"""
    expect_that(top_p_filter(logits, p), minimal_nucleus, logits, p, call=f"top_p_filter({np.round(logits, 3).tolist()}, p={p:.4f})",
                expected=f"finite logits exactly at the smallest set of most probable tokens whose mass reaches {p:.4f}",
                hint="sort by probability, keep tokens while the mass before them is below p, -inf elsewhere")


def test_sampling_never_leaves_the_top_k_or_top_p_set():
    """20,000 draws with top_k or top_p never produce a token outside the kept set"""
    logits = np.array([0.3, 2.0, -1.0, 1.2, 1.9, 0.0, -0.5, 1.0])
    rows = np.tile(logits, (20000, 1))
    for options, allowed in (({"top_k": 3}, [1, 3, 4]), ({"top_p": 0.6}, [1, 3, 4]), ({"top_k": 5, "top_p": 0.5}, [1, 4])):
        tokens = sample_next_token(rows, rng=np.random.default_rng(11), **options)
        expect_equal(tuple(np.shape(tokens)), (20000,), call=f"sample_next_token(20000 rows, {options}).shape",
                     hint="one token per row")
        expect_that(tokens, only_tokens, allowed, call=f"sample_next_token(rows of {logits.tolist()}, **{options})",
                    expected=f"tokens only from {allowed}",
                    hint="filter the logits to -inf outside the set before the softmax; a probability-0 token can never be drawn")


@pytest.mark.parametrize("options", [{"temperature": 0.7, "top_k": 4}, {"temperature": 1.5, "top_p": 0.8}, {}])
def test_sampling_frequencies_follow_the_distribution(options):
    """The frequencies of 20,000 draws match softmax(logits / T) renormalised over the kept set (chi-square)"""
    logits = np.array([2.0, 1.5, 1.0, 0.5, 0.0, -1.0])
    z = logits / options.get("temperature", 1.0)
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    keep = np.ones(6, dtype=bool)
    if "top_k" in options:
        keep = np.arange(6) < options["top_k"]        # logits are sorted in decreasing order
    if "top_p" in options:
        keep = np.concatenate([[0.0], np.cumsum(probs)[:-1]]) < options["top_p"]
    expected = np.where(keep, probs, 0.0)
    expected /= expected.sum()
    limit = {3: 21.11, 4: 23.51, 5: 25.74}[int(keep.sum()) - 1]  # chi-square quantile 0.9999
    tokens = sample_next_token(np.tile(logits, (20000, 1)), rng=np.random.default_rng(2024), **options)
    expect_that(tokens, chi_square_below, expected, keep, limit,
                call=f"sample_next_token(20000 copies of {logits.tolist()}, **{options}, rng=default_rng(2024))",
                expected=f"frequencies {np.round(expected, 4).tolist()} (chi-square < {limit}), nothing outside the kept set",
                hint="divide by the temperature first, then filter, then softmax, then draw with rng, one uniform u "
                     "per row (first token whose cumulative probability exceeds u)")


def test_temperature_scales_the_logits():
    """next_token_probs is softmax(logits / T): sharper below 1, flatter above, filters applied after"""
    logits = np.array([[1.0, -0.5, 2.0, 0.3], [0.0, 0.1, -2.0, 3.0]])
    for temperature in (0.01, 0.25, 1.0, 3.0, 100.0):
        expect_close(next_token_probs(logits, temperature=temperature), torch.softmax(t64(logits) / temperature, dim=-1),
                     rtol=1e-12, atol=1e-15, call=f"next_token_probs(logits, temperature={temperature})",
                     hint="softmax(logits / T) along the last axis, in float64: T -> 0 approaches argmax, "
                          "T -> infinity approaches uniform")
    filtered = next_token_probs(logits[:1], temperature=0.5, top_k=2)
    z = logits[0, [2, 0]] / 0.5
    expect_close(filtered, np.array([[np.exp(z[1]), 0.0, np.exp(z[0]), 0.0]]) / np.exp(z).sum(), rtol=1e-12, atol=1e-15,
                 call="next_token_probs([[1.0, -0.5, 2.0, 0.3]], temperature=0.5, top_k=2)",
                 hint="the two largest logits, divided by T, renormalised; the others get exactly 0")
    nucleus = next_token_probs(np.log(np.array([[0.5, 0.3, 0.2]])), temperature=0.5, top_p=0.85)
    tempered = np.array([0.25, 0.09, 0.04]) / 0.38   # p^(1/T) renormalised: [0.658, 0.237, 0.105]
    expect_close(nucleus, np.array([[tempered[0], tempered[1], 0.0]]) / tempered[:2].sum(), rtol=1e-12, atol=1e-15,
                 call="next_token_probs(log([[0.5, 0.3, 0.2]]), temperature=0.5, top_p=0.85)",
                 hint="top-p acts on the TEMPERED distribution [0.658, 0.237, 0.105]: 0.658 + 0.237 = 0.895 reaches "
                      "0.85, so the third is dropped (the untempered [0.5, 0.3, 0.2] would need all three)")
    both = next_token_probs(np.log(np.array([[0.4, 0.35, 0.25]])), top_k=2, top_p=0.5)
    expect_close(both, np.array([[1.0, 0.0, 0.0]]), rtol=1e-12, atol=1e-15,
                 call="next_token_probs(log([[0.4, 0.35, 0.25]]), top_k=2, top_p=0.5)",
                 hint="top-k first: [0.4, 0.35] renormalised is [0.533, 0.467], whose first token alone reaches 0.5; "
                      "then top-p (on the full distribution 0.4 would not reach 0.5)")


def test_greedy_sampling_is_the_argmax():
    """sample_next_token(greedy=True) is the argmax of each row (the first one on a tie)"""
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 3.0, 1.0], [-5.0, -4.0, -4.5]])
    got = sample_next_token(logits, greedy=True)
    expect_equal(np.asarray(got).tolist(), [1, 0, 1], call=f"sample_next_token({logits.tolist()}, greedy=True)",
                 hint="np.argmax along the last axis; no randomness at all")
