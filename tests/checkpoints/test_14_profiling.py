"""Checkpoint 14: profiling (parameters, FLOPs on paper and counted, timing, per-layer profiles).

Oracles: PyTorch's own parameter counts (`parameters()`, which counts a shared tensor once) of
models built from `torch.nn`; `torch.utils.flop_counter.FlopCounterMode` running the same
architectures for every matmul and convolution FLOP (attention written with explicit matmuls,
since FlopCounterMode counts nothing for a fused CPU attention kernel); the closed forms of the
lesson where torch has no count (bias adds, LayerNorm, the 1-D products torch does not count);
numpy's median and percentiles for the timer; and a fake clock that only moves when the timed
function moves it, so that every time the timer must report is known.

FLOPs and counts depend on shapes only, never on the values of the weights, so a student's
random initialisation cannot change an answer.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import same_pair
from tinytorch.activations import ReLU
from tinytorch.layers import Dropout, Linear, Module, Sequential
from tinytorch.profiling import (
    FlopCounter,
    Timer,
    Timing,
    activation_memory,
    attention_flops,
    conv2d_flops,
    conv2d_output_size,
    count_parameters,
    gpt_forward_flops,
    layernorm_flops,
    linear_flops,
    profile,
    profile_table,
)
from tinytorch.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.tensor import Tensor
from tinytorch.transformers import GPT, GPTConfig

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

COUNT_HINT = "count every distinct Tensor the modules hold once (by id), whatever number of layers use it"
MATMUL_HINT = "a product with result `out` and inner size K (the left operand's last axis) is 2 * out.size * K FLOPs"
COUNTER_HINT = ("wrap Tensor.__matmul__, Tensor.__rmatmul__ and tinytorch.spatial.conv2d in __enter__, "
                "add FLOPs only at depth 0, restore the originals in __exit__")
TIMER_HINT = "warm-up calls untimed, then one clock() before and one after each timed call"
PROFILE_HINT = ("one row per leaf module in model.modules() order (+ a row for a module's own work), "
                "parameters not counted by an earlier row, exclusive FLOPs, output bytes")


# -- the oracles (PyTorch) -------------------------------------------------------------------------


def torch_flops(run) -> int:
    """What FlopCounterMode counts while run() executes."""
    with FlopCounterMode(display=False) as mode:
        run()
    return int(mode.get_total_flops())


def torch_count(model: nn.Module, trainable_only: bool = False) -> int:
    """PyTorch's parameter count (parameters() yields a shared tensor once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def random64(*shape) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


def torch_attention_flops(batch, queries, keys, width, heads, projections) -> int:
    """FlopCounterMode over multi-head attention written with explicit matmuls, as in a KV-cached
    step: the `queries` new positions are projected to q, k, v (if `projections`) and attend over
    `keys` positions, the earlier ones' k and v taken from a cache; then the output projection."""
    fresh = random64(batch, queries, width)
    cached_k, cached_v = random64(batch, keys - queries, width), random64(batch, keys - queries, width)

    def split(t):
        return t.unflatten(-1, (heads, width // heads)).transpose(1, 2)

    def run():
        if projections:
            q, k_new, v_new = (F.linear(fresh, random64(width, width)) for _ in range(3))
        else:
            q, k_new, v_new = fresh, fresh, fresh
        q, k, v = split(q), split(torch.cat([cached_k, k_new], 1)), split(torch.cat([cached_v, v_new], 1))
        weights = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(width // heads), dim=-1)
        merged = torch.matmul(weights, v).transpose(1, 2).flatten(2)
        if projections:
            F.linear(merged, random64(width, width))

    return torch_flops(run)


def torch_gpt_flops(cfg, batch: int, steps: int) -> int:
    """FlopCounterMode over a functional GPT of the same configuration: one fused (d -> 3d)
    projection per block, explicit attention matmuls, a GELU or SwiGLU feed-forward of width 4d,
    the head on every position. Weights are random: FLOPs depend on shapes only."""
    d, width = cfg.n_embd, 4 * cfg.n_embd
    size = d // cfg.n_head
    table = random64(cfg.vocab_size, d)
    ids = torch.randint(cfg.vocab_size, (batch, steps))
    hide = torch.ones(steps, steps, dtype=torch.bool).triu(1)

    def run():
        h = table[ids]
        for _ in range(cfg.n_layer):
            z = F.layer_norm(h, (d,))
            q, k, v = F.linear(z, random64(3 * d, d)).unflatten(-1, (3, cfg.n_head, size)).permute(2, 0, 3, 1, 4)
            att = (torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(size)).masked_fill(hide, -math.inf)
            h = h + F.linear(torch.matmul(att.softmax(-1), v).transpose(1, 2).flatten(2), random64(d, d))
            z = F.layer_norm(h, (d,))
            if cfg.mlp == "swiglu":
                inner = F.silu(F.linear(z, random64(width, d))) * F.linear(z, random64(width, d))
            else:
                inner = F.gelu(F.linear(z, random64(width, d)))
            h = h + F.linear(inner, random64(d, width))
        F.linear(F.layer_norm(h, (d,)), table)

    return torch_flops(run)


def torch_gpt_count(cfg) -> int:
    """The parameters of the same architecture built from torch.nn (MultiheadAttention keeps q, k, v
    in one (3d, d) matrix: the same number of values), head tied to the token table if asked."""
    d = cfg.n_embd
    norm = (lambda: nn.RMSNorm(d)) if cfg.norm == "rmsnorm" else (lambda: nn.LayerNorm(d, bias=cfg.bias))
    stages = []
    for _ in range(cfg.n_layer):
        if cfg.mlp == "swiglu":
            feed = [nn.Linear(d, 4 * d, bias=cfg.bias), nn.Linear(d, 4 * d, bias=cfg.bias)]
        else:
            feed = [nn.Linear(d, 4 * d, bias=cfg.bias)]
        stages.append(nn.ModuleList([norm(), nn.MultiheadAttention(d, cfg.n_head, bias=cfg.bias), norm(),
                                     *feed, nn.Linear(4 * d, d, bias=cfg.bias)]))
    tokens, head = nn.Embedding(cfg.vocab_size, d), nn.Linear(d, cfg.vocab_size, bias=False)
    if cfg.tie_weights:
        head.weight = tokens.weight
    extra = [nn.Embedding(cfg.block_size, d)] if cfg.position == "learned" else []
    return torch_count(nn.ModuleList([tokens, *extra, *stages, norm(), head]))


def torch_cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=2, bias=False),
                         nn.Flatten(), nn.Linear(6 * 2 * 2, 5))


def tiny_cnn() -> Sequential:
    """The same network as torch_cnn, for (N, 3, 10, 10) images."""
    return Sequential(Conv2d(3, 4, 3, padding=1), MaxPool2d(2), Conv2d(4, 6, 3, stride=2, bias=False),
                      Flatten(), Linear(6 * 2 * 2, 5))


def torch_cnn_layer_outputs(x) -> list[tuple[tuple[int, ...], int]]:
    """(shape, float64 bytes) of every layer's output of torch_cnn on x."""
    h, found = torch.tensor(x), []
    for layer in torch_cnn().double():
        h = layer(h)
        found.append((tuple(h.shape), h.numel() * 8))
    return found


def torch_cnn_layer_flops(x) -> list[int]:
    h, found = torch.tensor(x), []
    for layer in torch_cnn().double():
        found.append(torch_flops(lambda: layer(h)))
        h = layer(h)
    return found


SMALL_GPT = dict(vocab_size=23, block_size=12, n_layer=2, n_head=2, n_embd=8)


def token_ids(batch: int, steps: int, vocab: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, (batch, steps))


# -- predicates --------------------------------------------------------------------------------------


def at_least_all(times, low: float) -> bool:
    """Every measured time is a number >= low."""
    return len(times) > 0 and all(isinstance(t, float) and t >= low for t in times)


def lines_with(text, name: str, numbers: list[str]) -> bool:
    """Some line of the table starts with `name` and shows every one of `numbers`."""
    return isinstance(text, str) and any(
        line.strip().startswith(name) and all(n in line for n in numbers) for line in text.splitlines())


# -- 1. parameters -----------------------------------------------------------------------------------


def test_count_parameters_of_an_mlp():
    """count_parameters of a small MLP equals PyTorch's count"""
    model = Sequential(Linear(7, 5), ReLU(), Linear(5, 3))
    expect_equal(count_parameters(model), torch_count(nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))),
                 call="count_parameters(Sequential(Linear(7, 5), ReLU(), Linear(5, 3)))", hint=COUNT_HINT)
    expect_equal(count_parameters(Linear(6, 4, bias=False)), torch_count(nn.Linear(6, 4, bias=False)),
                 call="count_parameters(Linear(6, 4, bias=False))", hint=COUNT_HINT)


def test_tied_gpt_counts_the_shared_weight_once():
    """a GPT's parameter count equals PyTorch's for the same architecture, the tied head counted once"""
    for options in (dict(), dict(tie_weights=False), dict(bias=False, mlp="swiglu"),
                    dict(norm="rmsnorm", position="rope")):
        config = GPTConfig(**SMALL_GPT, **options)
        expect_equal(count_parameters(GPT(config)), torch_gpt_count(config),
                     call=f"count_parameters(GPT({config}))",
                     hint="lm_head.weight is wte.weight when tied: one Tensor, counted once")


def test_conv_net_parameters():
    """count_parameters of a CNN (Conv2d, MaxPool2d, Flatten, Linear) equals PyTorch's"""
    expect_equal(count_parameters(tiny_cnn()), torch_count(torch_cnn()),
                 call="count_parameters(Sequential(Conv2d(3, 4, 3, padding=1), MaxPool2d(2), "
                      "Conv2d(4, 6, 3, stride=2, bias=False), Flatten(), Linear(24, 5)))", hint=COUNT_HINT)


def test_frozen_tensors_count_unless_trainable_only():
    """frozen tensors (requires_grad=False) count, except with trainable_only=True"""
    model = Sequential(Linear(6, 5), ReLU(), Linear(5, 4))
    model[0].weight.requires_grad = False
    model[2].bias.requires_grad = False
    reference = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))
    reference[0].weight.requires_grad_(False)
    reference[2].bias.requires_grad_(False)
    expect_equal(count_parameters(model), torch_count(reference),
                 call="count_parameters(model) with model[0].weight and model[2].bias frozen",
                 hint="a frozen tensor still takes memory and computes: it counts (walk the modules, "
                      "module 03's parameters() lists trainable tensors only)")
    expect_equal(count_parameters(model, trainable_only=True), torch_count(reference, trainable_only=True),
                 call="count_parameters(model, trainable_only=True) with two tensors frozen",
                 hint="trainable_only counts the tensors with requires_grad only")


def test_a_layer_used_twice_counts_once():
    """a layer used twice in a model counts once"""
    shared = Linear(4, 4)
    reference = nn.Linear(4, 4)
    expect_equal(count_parameters(Sequential(shared, ReLU(), shared)),
                 torch_count(nn.Sequential(reference, nn.ReLU(), reference)),
                 call="count_parameters(Sequential(shared, ReLU(), shared)) with shared = Linear(4, 4)",
                 hint=COUNT_HINT)


# -- 2. closed forms ---------------------------------------------------------------------------------


@settings(max_examples=20)
@given(sizes=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 5)),
       bias=st.booleans())
def test_linear_flops(sizes, bias):
    """linear_flops equals FlopCounterMode on F.linear, plus one add per output with a bias"""
    fan_in, fan_out, batch, steps = sizes
    expect_equal(linear_flops(fan_in, fan_out, tokens=batch * steps, bias=bias),
                 torch_flops(lambda: F.linear(random64(batch, steps, fan_in), random64(fan_out, fan_in)))
                 + (batch * steps * fan_out if bias else 0),
                 call=f"linear_flops({fan_in}, {fan_out}, tokens={batch * steps}, bias={bias})",
                 hint="2 * tokens * in * out for x @ W.T, + tokens * out for the bias adds")


@settings(max_examples=20)
@given(channels=st.tuples(st.integers(1, 4), st.integers(1, 4)), kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 2)), padding=st.tuples(st.integers(0, 2), st.integers(0, 1)),
       extra=st.tuples(st.integers(0, 5), st.integers(0, 5)), batch=st.integers(1, 3), bias=st.booleans())
def test_conv2d_flops(channels, kernel, stride, padding, extra, batch, bias):
    """conv2d_flops equals FlopCounterMode on F.conv2d (stride, padding), plus one add per output with a bias"""
    c_in, c_out = channels
    height, width = kernel[0] + extra[0], kernel[1] + extra[1]
    expect_equal(conv2d_flops(c_in, c_out, kernel, height, width, stride=stride, padding=padding, batch=batch, bias=bias),
                 torch_flops(lambda: F.conv2d(random64(batch, c_in, height, width), random64(c_out, c_in, *kernel),
                                              stride=stride, padding=padding))
                 + (F.conv2d(random64(batch, c_in, height, width), random64(c_out, c_in, *kernel),
                             stride=stride, padding=padding).numel() if bias else 0),
                 call=f"conv2d_flops({c_in}, {c_out}, {kernel}, {height}, {width}, stride={stride}, "
                      f"padding={padding}, batch={batch}, bias={bias})",
                 hint="2 * C_in * kH * kW per output value, output size (H + 2p - kH) // s + 1; "
                      "+ 1 per output value with a bias")


def test_conv2d_output_size():
    """conv2d_output_size equals PyTorch's output shape, and rejects impossible sizes"""
    expect_equal(conv2d_output_size(11, 8, (3, 2), stride=(2, 3), padding=(1, 0)),
                 tuple(F.conv2d(random64(1, 1, 11, 8), random64(1, 1, 3, 2), stride=(2, 3), padding=(1, 0)).shape[2:]),
                 call="conv2d_output_size(11, 8, (3, 2), stride=(2, 3), padding=(1, 0))",
                 hint="H_out = (H + 2 * padding - kH) // stride + 1, the same for the width")
    expect_equal(conv2d_output_size(5, 5, 5), (1, 1), call="conv2d_output_size(5, 5, 5)",
                 hint="a kernel as large as the input fits once")
    expect_raises(ValueError, lambda: conv2d_output_size(4, 4, 6, padding=0), call="conv2d_output_size(4, 4, 6)",
                  hint="a kernel larger than the padded input is a ValueError")
    expect_raises(ValueError, lambda: conv2d_output_size(4, 4, 3, stride=0), call="conv2d_output_size(4, 4, 3, stride=0)",
                  hint="stride < 1 is a ValueError")


def test_attention_flops():
    """attention_flops equals FlopCounterMode on attention written with explicit matmuls"""
    for batch, steps, keys, width, heads in ((1, 5, None, 8, 2), (2, 3, 7, 12, 3), (3, 1, 9, 8, 4)):
        for projections in (True, False):
            expect_equal(attention_flops(steps, width, batch=batch, kv_len=keys, projections=projections),
                         torch_attention_flops(batch, steps, steps if keys is None else keys, width, heads, projections),
                         call=f"attention_flops({steps}, {width}, batch={batch}, kv_len={keys}, projections={projections})",
                         hint="2 * T * S * d for q @ k^T and again for weights @ v (whatever the heads), "
                              "+ 4 * 2 * T * d * d for the projections of the T new tokens")


def test_layernorm_flops():
    """layernorm_flops follows the lesson's convention: 5 per value, + 1 for the weight, + 1 for the bias"""
    expect_equal(layernorm_flops(768, tokens=1024), 1024 * 768 * 7, call="layernorm_flops(768, tokens=1024)",
                 hint="5 FLOPs per value to normalise, 1 for the weight, 1 for the bias")
    expect_equal(layernorm_flops(10, tokens=3, bias=False), 3 * 10 * 6, call="layernorm_flops(10, tokens=3, bias=False)",
                 hint="without a bias: 6 per value")
    expect_equal(layernorm_flops(5), 35, call="layernorm_flops(5)", hint="tokens defaults to 1")


def test_gpt_forward_flops():
    """gpt_forward_flops equals FlopCounterMode on a PyTorch GPT of the same configuration"""
    for options, batch, steps in ((dict(), 1, 12), (dict(mlp="swiglu"), 2, 7), (dict(n_head=4, n_layer=3), 3, 5)):
        config = GPTConfig(**{**SMALL_GPT, **options})
        expect_equal(gpt_forward_flops(config, steps, batch=batch), torch_gpt_flops(config, batch, steps),
                     call=f"gpt_forward_flops({config}, {steps}, batch={batch})",
                     hint="per block: attention_flops (with projections) + the MLP's 2 (GELU) or 3 (SwiGLU) "
                          "d x 4d matrices; then the d x vocab head on every position")


def test_gpt2_small_follows_the_textbook_rule():
    """GPT-2 small's forward: 2 FLOPs per matrix parameter per token, plus 4 * n_layer * T * d per token"""
    gpt2 = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    expect_equal(gpt_forward_flops(gpt2, 1024), 1024 * (2 * (12 * 12 * 768**2 + 50257 * 768) + 4 * 12 * 1024 * 768),
                 call="gpt_forward_flops(GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, "
                      "n_embd=768), 1024)",
                 hint="12 d^2 matrix values per block, V * d for the head; attention's 4 * T * d per token and layer")
    expect_raises(ValueError, lambda: gpt_forward_flops(GPTConfig(**SMALL_GPT), 13),
                  call="gpt_forward_flops(GPTConfig(block_size=12, ...), 13)",
                  hint="a sequence longer than block_size cannot run: ValueError")


# -- 3. the FlopCounter ----------------------------------------------------------------------------


@settings(max_examples=25)
@given(m=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 5),
       batch=st.sampled_from([((), ()), ((3,), ()), ((2,), (2,)), ((2, 1), (3,)), ((), (4,)), ((2, 3), (1, 3))]))
def test_flop_counter_counts_matmuls(m, k, n, batch):
    """FlopCounter counts a @ b (batch axes, broadcasting) as FlopCounterMode counts torch.matmul"""
    left_batch, right_batch = batch
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, b = rng.standard_normal((*left_batch, m, k)), rng.standard_normal((*right_batch, k, n))
    with FlopCounter() as counter:
        Tensor(a) @ Tensor(b)
    expect_equal(counter.flops, torch_flops(lambda: torch.matmul(torch.tensor(a), torch.tensor(b))),
                 call=f"with FlopCounter() as counter: Tensor of shape {a.shape} @ Tensor of shape {b.shape}",
                 hint=MATMUL_HINT)
    expect_equal(counter.macs, torch_flops(lambda: torch.matmul(torch.tensor(a), torch.tensor(b))) // 2,
                 call=f"counter.macs after {a.shape} @ {b.shape}", hint="one MAC is two FLOPs")


def test_flop_counter_counts_vector_products():
    """1-D operands: (K,) @ (K, N), (M, K) @ (K,) and (K,) @ (K,) are 2 * out.size * K FLOPs"""
    rng = np.random.default_rng(4)
    with FlopCounter() as counter:
        Tensor(rng.standard_normal(5)) @ Tensor(rng.standard_normal((5, 7)))
    expect_equal(counter.flops, 2 * 5 * 7, call="(5,) @ (5, 7)", hint=MATMUL_HINT)
    with FlopCounter() as counter:
        Tensor(rng.standard_normal((3, 6))) @ Tensor(rng.standard_normal(6))
    expect_equal(counter.flops, 2 * 3 * 6, call="(3, 6) @ (6,)", hint=MATMUL_HINT)
    with FlopCounter() as counter:
        Tensor(rng.standard_normal(9)) @ Tensor(rng.standard_normal(9))
    expect_equal(counter.flops, 2 * 9, call="(9,) @ (9,)", hint="a dot product of length K is K multiply-adds")


def test_flop_counter_counts_an_array_times_a_tensor_once():
    """array @ Tensor (Tensor.__rmatmul__) is counted, once"""
    rng = np.random.default_rng(5)
    left, right = rng.standard_normal((2, 4, 3)), Tensor(rng.standard_normal((3, 6)))
    with FlopCounter() as counter:
        left @ right
    expect_equal(counter.flops, torch_flops(lambda: torch.matmul(torch.tensor(left), torch.tensor(right.data))),
                 call="with FlopCounter() as counter: numpy array (2, 4, 3) @ Tensor (3, 6)",
                 hint="__rmatmul__ calls __matmul__: count only the outermost call (a depth counter)")


def test_flop_counter_counts_layers():
    """FlopCounter counts a Linear and a Conv2d forward as FlopCounterMode counts F.linear and F.conv2d"""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 7))
    with FlopCounter() as counter:
        Linear(7, 3)(Tensor(x))
    expect_equal(counter.flops, torch_flops(lambda: F.linear(torch.tensor(x), random64(3, 7), random64(3))),
                 call="Linear(7, 3) on x of shape (2, 5, 7)", hint="the bias adds are not counted, as in PyTorch")
    images = rng.standard_normal((2, 3, 9, 8))
    with FlopCounter() as counter:
        Conv2d(3, 4, (3, 2), stride=2, padding=1)(Tensor(images))
    expect_equal(counter.flops,
                 torch_flops(lambda: F.conv2d(torch.tensor(images), random64(4, 3, 3, 2), random64(4), stride=2,
                                              padding=1)),
                 call="Conv2d(3, 4, (3, 2), stride=2, padding=1) on images (2, 3, 9, 8)",
                 hint="wrap tinytorch.spatial.conv2d: 2 * out.size * C_in * kH * kW")
    expect_equal(counter.macs, torch_flops(lambda: F.conv2d(torch.tensor(images), random64(4, 3, 3, 2), stride=2,
                                                            padding=1)) // 2,
                 call="counter.macs of that Conv2d", hint="one MAC is two FLOPs")


def test_flop_counter_on_a_cnn():
    """FlopCounter on a whole CNN forward equals FlopCounterMode on the same network in PyTorch"""
    images = np.random.default_rng(7).standard_normal((2, 3, 10, 10))
    model = tiny_cnn()
    with FlopCounter() as counter:
        model(Tensor(images))
    expect_equal(counter.flops, torch_flops(lambda: torch_cnn().double()(torch.tensor(images))),
                 call="FlopCounter around tiny_cnn()(images of shape (2, 3, 10, 10))", hint=COUNTER_HINT)


def test_flop_counter_on_a_gpt():
    """FlopCounter on a GPT forward equals FlopCounterMode on the same architecture in PyTorch"""
    for options, batch, steps in ((dict(), 2, 9), (dict(mlp="swiglu", position="rope", n_head=4), 1, 12)):
        config = GPTConfig(**{**SMALL_GPT, **options})
        model = GPT(config).eval()
        idx = token_ids(batch, steps, config.vocab_size, seed=batch)
        with FlopCounter() as counter:
            model(idx)
        expect_equal(counter.flops, torch_gpt_flops(config, batch, steps),
                     call=f"FlopCounter around GPT({config}) on ids of shape ({batch}, {steps})", hint=COUNTER_HINT)


def run_after_exit(raise_inside: bool) -> tuple[int, int, int]:
    """(flops of the first counter, the same after more products outside it, a second counter's flops):
    shows whether the first counter's wrappers were taken away on exit."""
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((3, 4)))
    first = FlopCounter()
    try:
        with first:
            a @ b
            if raise_inside:
                raise KeyError("the model failed")
    except KeyError:
        pass
    inside = first.flops
    a @ b
    Tensor(np.ones((5, 6))) @ Tensor(np.ones((6, 7)))
    with FlopCounter() as second:
        a @ b
    return inside, first.flops, second.flops


def test_flop_counter_restores_the_originals():
    """after the with block (also after an exception) products are no longer counted"""
    expect_equal(run_after_exit(raise_inside=False), (48, 48, 48),
                 call="counter.flops after (2, 3) @ (3, 4) inside, then more products outside; then a new counter",
                 hint="__exit__ puts back the original Tensor.__matmul__ (and __rmatmul__, conv2d)")
    expect_equal(run_after_exit(raise_inside=True), (48, 48, 48),
                 call="the same when the with block raised an exception",
                 hint="__exit__ runs when the block raises too: restore there, and return False")


def test_flop_counter_lets_exceptions_through():
    """an exception inside the with block propagates, and the counter keeps counting after a failed product"""
    def failing_product():
        with FlopCounter():
            Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))

    expect_raises(ValueError, failing_product, call="(2, 3) @ (4, 5) inside a FlopCounter",
                  hint="__exit__ must return False (or None) so that the error reaches the caller")
    with FlopCounter() as counter:
        try:
            Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
        except ValueError:
            pass
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((3, 5)))
    expect_equal(counter.flops, 2 * 2 * 3 * 5, call="a failed (2, 3) @ (4, 5), then (2, 3) @ (3, 5), in one counter",
                 hint="lower the depth in a finally, or a failed call leaves the counter thinking it is still inside one")


def test_nested_flop_counters_both_count():
    """nested counters: the outer counts everything, the inner only what ran inside it"""
    a, b = Tensor(np.ones((4, 2))), Tensor(np.ones((2, 3)))
    with FlopCounter() as outer:
        a @ b
        with FlopCounter() as inner:
            a @ b
            np.ones((5, 4)) @ a
        a @ b
    expect_equal((outer.flops, inner.flops), (3 * 48 + 80, 48 + 80),
                 call="outer counter around 3 products, inner counter around 2 of them",
                 hint="the inner counter wraps the outer one's wrappers; each keeps its own depth")


# -- 4. timing ----------------------------------------------------------------------------------------


class FakeClock:
    """A clock that stands still until a timed function moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def scripted(clock: FakeClock, durations: list[float], calls: list):
    """A function that records its arguments and moves the clock by the next duration of the script."""
    def work(*args, **kwargs):
        calls.append((args, kwargs))
        clock.now += durations[len(calls) - 1]
    return work


def test_timer_with_a_fake_clock():
    """Timer.measure: warm-up untimed, one time per repeat, the median and the interquartile range"""
    clock, calls = FakeClock(), []
    warmup, timed = [50.0, 40.0], [0.25, 1.5, 0.125, 0.75, 0.5, 8.0, 0.375]
    timing = Timer(warmup=2, repeats=7, clock=clock).measure(scripted(clock, warmup + timed, calls))
    expect_close(timing.times, timed, call="Timer(warmup=2, repeats=7, clock=fake).measure(fn).times",
                 hint=TIMER_HINT + "; times in the order they ran, warm-up excluded")
    expect_close(timing.median, np.median(timed), call="timing.median", hint="np.median of the timed repeats")
    expect_close(timing.iqr, np.percentile(timed, 75) - np.percentile(timed, 25), call="timing.iqr",
                 hint="np.percentile(times, 75) - np.percentile(times, 25), numpy's default (linear) interpolation")


def test_timer_calls_the_function_warmup_plus_repeats_times():
    """measure(fn, *args, **kwargs) calls fn warmup + repeats times with the arguments"""
    clock, calls = FakeClock(), []
    Timer(warmup=3, repeats=4, clock=clock).measure(scripted(clock, [1.0] * 7, calls), 5, mode="fast")
    expect_equal(calls, [((5,), {"mode": "fast"})] * 7,
                 call="Timer(warmup=3, repeats=4).measure(fn, 5, mode='fast'): the calls of fn",
                 hint="fn(*args, **kwargs), warmup times untimed and then repeats times")
    clock, calls = FakeClock(), []
    timing = Timer(clock=clock).measure(scripted(clock, [2.0] * 3 + [1.0] * 10, calls))
    expect_equal((len(calls), len(timing.times)), (13, 10), call="Timer(clock=fake).measure(fn): calls and times",
                 hint="the defaults are warmup=3, repeats=10")


@settings(max_examples=25)
@given(times=st.lists(st.floats(1e-6, 10.0), min_size=1, max_size=12))
def test_timing_from_times(times):
    """Timing.from_times equals numpy's median and interquartile range"""
    timing = Timing.from_times(times)
    expect_close((timing.median, timing.iqr),
                 (np.median(times), np.percentile(times, 75) - np.percentile(times, 25)),
                 call=f"Timing.from_times({times})", rtol=1e-12, atol=1e-15,
                 hint="np.median and np.percentile with the default linear interpolation")
    expect_close(timing.times, times, call=f"Timing.from_times({times}).times", rtol=0, atol=0,
                 hint="keep the times, in order")


def test_timer_rejects_bad_settings():
    """Timer rejects a negative warm-up and fewer than one repeat"""
    expect_raises(ValueError, lambda: Timer(warmup=-1), call="Timer(warmup=-1)", hint="warmup >= 0")
    expect_raises(ValueError, lambda: Timer(repeats=0), call="Timer(repeats=0)", hint="repeats >= 1")
    clock, calls = FakeClock(), []
    timing = Timer(warmup=0, repeats=1, clock=clock).measure(scripted(clock, [3.0], calls))
    expect_close(timing.times, [3.0], call="Timer(warmup=0, repeats=1, clock=fake).measure(fn).times",
                 hint="no warm-up at all is allowed")


def test_timer_with_the_real_clock():
    """with the default clock, a call that sleeps 2 ms measures at least 2 ms"""
    timing = Timer(warmup=1, repeats=3).measure(time.sleep, 0.002)
    expect_that(timing.times, at_least_all, 0.0019, call="Timer(warmup=1, repeats=3).measure(time.sleep, 0.002).times",
                expected="three floats, each at least 0.0019 seconds", hint="the default clock is time.perf_counter")


# -- 5. profiles --------------------------------------------------------------------------------------


def test_profile_of_an_mlp():
    """profile of an MLP: one row per Linear with its parameters, FLOPs, output shape and bytes"""
    x = np.random.default_rng(8).standard_normal((4, 6)).astype(np.float32)
    rows = profile(Sequential(Linear(6, 5), ReLU(), Linear(5, 3)), Tensor(x))
    expect_equal([(r.name, r.kind, r.parameters, r.output_shape, r.activation_bytes) for r in rows],
                 [("0", "Linear", 35, (4, 5), 4 * 5 * 4), ("2", "Linear", 18, (4, 3), 4 * 3 * 4)],
                 call="profile(Sequential(Linear(6, 5), ReLU(), Linear(5, 3)), x of shape (4, 6), float32): "
                      "(name, kind, parameters, output_shape, activation_bytes) per row",
                 hint="ReLU is not a Module: no row; a float32 output of n values takes 4n bytes")
    expect_equal([r.flops for r in rows],
                 [torch_flops(lambda: F.linear(random64(4, 6), random64(5, 6), random64(5))),
                  torch_flops(lambda: F.linear(random64(4, 5), random64(3, 5), random64(3)))],
                 call="[row.flops for row in profile(...)]", hint="the FLOPs FlopCounter counts inside each layer")


def test_profile_of_a_cnn():
    """profile of a CNN: FLOPs, output shapes and bytes of every layer equal PyTorch's"""
    images = np.random.default_rng(9).standard_normal((2, 3, 10, 10))
    rows = profile(tiny_cnn(), Tensor(images))
    expect_equal([r.kind for r in rows], ["Conv2d", "MaxPool2d", "Conv2d", "Flatten", "Linear"],
                 call="[row.kind for row in profile(tiny_cnn(), images)]", hint="one row per leaf, in modules() order")
    expect_equal([r.flops for r in rows], torch_cnn_layer_flops(images),
                 call="[row.flops for row in profile(tiny_cnn(), images of shape (2, 3, 10, 10))]", hint=PROFILE_HINT)
    expect_equal([(r.output_shape, r.activation_bytes) for r in rows], torch_cnn_layer_outputs(images),
                 call="[(row.output_shape, row.activation_bytes) for row in profile(tiny_cnn(), float64 images)]",
                 hint="float64 outputs take 8 bytes per value")
    expect_equal([r.parameters for r in rows], [4 * 27 + 4, 0, 6 * 36, 0, 24 * 5 + 5],
                 call="[row.parameters for row in profile(tiny_cnn(), images)]", hint="the values each layer holds")


def test_profile_of_a_gpt_partitions_the_model():
    """profile of a GPT: the rows add up to PyTorch's parameter count and FLOPs, attention's own work has a row"""
    config = GPTConfig(**SMALL_GPT)
    model = GPT(config).eval()
    rows = profile(model, token_ids(2, 10, config.vocab_size, seed=3))
    expect_equal(sum(r.parameters for r in rows), torch_gpt_count(config),
                 call=f"sum of row.parameters, profile(GPT({config}), ids (2, 10))",
                 hint="a tensor counts in the first row that holds it (the tied head shows 0)")
    expect_equal(sum(r.flops for r in rows), torch_gpt_flops(config, 2, 10),
                 call=f"sum of row.flops, profile(GPT({config}), ids (2, 10))",
                 hint="exclusive FLOPs per row: a module's forward minus its children's calls")
    by_name = {r.name: (r.kind, r.parameters, r.flops, r.output_shape) for r in rows}
    expect_equal(by_name.get("blocks.1.attn"),
                 ("CausalSelfAttention (own)", 0,
                  torch_attention_flops(2, 10, 10, config.n_embd, config.n_head, projections=False), (2, 10, 8)),
                 call="the row of blocks.1.attn: (kind, parameters, flops, output_shape)",
                 hint="the scores and the weighted sum run in the attention's own forward: its own row")
    expect_equal(by_name.get("lm_head"), ("Linear", 0, torch_flops(lambda: F.linear(random64(2, 10, 8), random64(23, 8))),
                                          (2, 10, 23)),
                 call="the row of lm_head: (kind, parameters, flops, output_shape)",
                 hint="its weight is wte's, counted in the wte row already")
    expect_equal(by_name.get("blocks.0.ln_2"), ("LayerNorm", 16, 0, (2, 10, 8)),
                 call="the row of blocks.0.ln_2", hint="no matmul in a LayerNorm: 0 counted FLOPs")


class Ticking(Module):
    """A layer that moves a fake clock by the next duration of its script when it runs."""

    def __init__(self, clock: FakeClock, durations: list[float]) -> None:
        super().__init__()
        self.clock, self.durations, self.calls = clock, durations, 0

    def forward(self, x):
        self.clock.now += self.durations[self.calls]
        self.calls += 1
        return x


class TwoTicking(Module):
    """Two Ticking layers, and work of its own (a matmul and more fake time) in between."""

    def __init__(self, clock: FakeClock, first: list[float], own: list[float], second: list[float]) -> None:
        super().__init__()
        self.clock, self.own, self.calls = clock, own, 0
        self.first, self.second = Ticking(clock, first), Ticking(clock, second)

    def forward(self, x):
        x = self.first(x)
        self.clock.now += self.own[self.calls]
        self.calls += 1
        return self.second(x @ Tensor(np.ones((3, 3))))


def test_profile_times_every_row():
    """profile with a Timer: each row's seconds are the median over the repeats (own work exclusive)"""
    clock = FakeClock()
    first = [9.0, 90.0, 1.0, 3.0, 2.0]    # the profiling pass, one warm-up, three repeats
    own = [9.0, 90.0, 0.5, 0.25, 4.0]
    second = [9.0, 90.0, 2.0, 2.0, 8.0]
    rows = profile(TwoTicking(clock, first, own, second), Tensor(np.ones((2, 3))),
                   timer=Timer(warmup=1, repeats=3, clock=clock))
    expect_equal([(r.name, r.kind, r.flops, r.activation_bytes) for r in rows],
                 [("(model)", "TwoTicking (own)", 36, 0), ("first", "Ticking", 0, 48), ("second", "Ticking", 0, 48)],
                 call="profile(TwoTicking(...), float64 x of shape (2, 3), timer=...): "
                      "(name, kind, flops, activation_bytes) per row",
                 hint="a module with children gets an own row only for FLOPs (or tensors) of its own; "
                      "its output is a child's output, counted in the child's row: 0 bytes")
    expect_close([r.seconds for r in rows], [np.median(own[2:]), np.median(first[2:]), np.median(second[2:])],
                 call="[row.seconds for row in profile(..., timer=Timer(warmup=1, repeats=3, clock=fake))]",
                 hint="clock() around each call; an own row's time excludes its children's; "
                      "median over the repeats, warm-up and the first pass excluded")


class Exploding(Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_profile_leaves_the_model_as_it_was():
    """after profile (also one that failed) the layers have no extra attributes and still run"""
    layer = Linear(3, 2)
    model = Sequential(layer, ReLU(), Linear(2, 2))
    before = sorted(vars(layer))
    profile(model, Tensor(np.ones((1, 3))))
    expect_that((before, sorted(vars(layer))), same_pair, call="sorted(vars(layer)) before and after profile(model, x)",
                expected="the same attribute names",
                hint="delete the instance forward you set on every module (in a finally)")
    broken = Sequential(layer, Exploding())
    expect_raises(RuntimeError, lambda: profile(broken, Tensor(np.ones((1, 3)))),
                  call="profile(Sequential(layer, Exploding()), x)", hint="the model's own error propagates")
    expect_that((before, sorted(vars(layer))), same_pair, call="sorted(vars(layer)) after a profile that raised",
                expected="the same attribute names", hint="restore in a finally: the model raised")


def test_activation_memory():
    """activation_memory gives the bytes of every layer's output"""
    x = np.random.default_rng(10).standard_normal((3, 10, 8))
    model = Sequential(Linear(8, 16), Dropout(0.0), Linear(16, 4))
    expect_equal(activation_memory(model, Tensor(x)),
                 {"0": F.linear(torch.tensor(x), random64(16, 8)).numel() * 8,
                  "1": F.linear(torch.tensor(x), random64(16, 8)).numel() * 8,
                  "2": F.linear(random64(3, 10, 16), random64(4, 16)).numel() * 8},
                 call="activation_memory(Sequential(Linear(8, 16), Dropout(0.0), Linear(16, 4)), float64 x (3, 10, 8))",
                 hint="output.data.nbytes of every layer, by its name")


def test_profile_table_has_a_total_row():
    """profile_table prints one line per row and a total row with the totals"""
    config = GPTConfig(**SMALL_GPT)
    table = profile_table(profile(GPT(config).eval(), token_ids(1, 6, config.vocab_size, seed=5)))
    expect_that(table, lines_with, "total", [f"{torch_gpt_count(config):,d}", f"{torch_gpt_flops(config, 1, 6):,d}"],
                call="profile_table(profile(GPT(small), ids (1, 6)))",
                expected="a line starting with 'total' that shows the parameter count and the FLOPs",
                hint="profile_table is given: the rows of your profile must add up")
    expect_that(table, lines_with, "blocks.0.attn.q_proj", [f"{8 * 8 + 8:,d}", f"{2 * 6 * 8 * 8:,d}"],
                call="profile_table(...): the line of blocks.0.attn.q_proj",
                expected="the row's parameters (72) and FLOPs (768)", hint=PROFILE_HINT)
