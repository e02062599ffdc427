"""Checkpoint 17: the KV-cache, grouped-query attention, cached generation.

Oracles, strongest first:

- PyTorch in float64: `torch.repeat_interleave` for repeat_kv (values and gradients), and
  `F.scaled_dot_product_attention(q, repeat_interleave(k), repeat_interleave(v), is_causal=True)`
  after `F.linear` projections (and a RoPE written below with torch) for GroupedQueryAttention:
  values and the gradients of the input and of every weight; the same oracle checks the cached
  attention fed in chunks.
- The uncached model: module 13's `GPT.forward` on the whole sequence (the reference's, in the
  trusted run) for the logits of `forward_cached` at every step, and `GPT.generate` with the same
  seeded generator for `generate_cached`.
- Closed forms: the cache's bytes, and the multiply-adds module 14's `FlopCounter` counts for a
  prefill (as many as the uncached forward) and a decoding step (a + b T).

Tolerances. In float64 the cached and uncached computations differ only in the order in which
numpy adds (a product of one row and of T rows), a few units in the last place of numbers of size
~1: 1e-9 is far above that and far below any real error (a position off by one changes logits by
~0.1). In float32 the same reordering is worth float32 rounding, so the tolerance is measured, not
guessed: eps32 = the largest difference between the float32 model's uncached logits and the exact
(float64) ones. The cached logits are another float32 rounding of the same numbers, so they lie
within |cached - exact| + |exact - uncached|, about 2 eps32; we allow 4 eps32.

Every weight comes from this file's seeded generators (`set_weights` replaces each parameter by
numbers drawn from its name), so nothing depends on how a model draws its initial numbers.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tinytorch.autograd import no_grad
from tinytorch.memoization import (
    GroupedQueryAttention,
    KVCache,
    forward_cached,
    generate_cached,
    kv_cache_bytes,
    offset_causal_mask,
    repeat_kv,
)
from tinytorch.profiling import FlopCounter
from tinytorch.tensor import Tensor
from tinytorch.transformers import GPT, GPTConfig

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12        # one attention layer in float64
DEEP_RTOL, DEEP_ATOL = 1e-9, 1e-11  # a whole GPT in float64

CACHE_HINT = ("write k, v at positions lengths[layer] .. lengths[layer] + t - 1 of that layer's buffers, "
              "move lengths[layer] on by t, return keys[layer, :, :, :new length] and the same of values")
STEP_HINT = ("the new tokens sit at positions cache.length ..: wpe(np.arange(start, start + t)) and "
             "apply_rope(q and k, offset=past); each block: x + cached_attention(block.attn, block.ln_1(x), "
             "cache, layer), then x + block.mlp(block.ln_2(x)); ln_f; lm_head")


def set_weights(module, seed: int, dtype=np.float64, spread: float = 0.1) -> None:
    """Every parameter replaced by this file's numbers: matrices N(0, 1 / fan_in), biases N(0, spread^2),
    norm gains 1 + N(0, spread^2), each drawn from a generator seeded by `seed` and the parameter's name."""
    for name, param in module.named_parameters():
        draw = np.random.default_rng([seed, zlib.crc32(name.encode())])
        if param.ndim >= 2:
            numbers = draw.standard_normal(param.shape) / math.sqrt(param.shape[-1])
        elif name.endswith("bias"):
            numbers = spread * draw.standard_normal(param.shape)
        else:
            numbers = 1.0 + spread * draw.standard_normal(param.shape)
        param.data = numbers.astype(dtype)


def gqa_blocks(model, n_kv_heads: int) -> None:
    """Give every block of a GPT a GroupedQueryAttention with n_kv_heads key/value heads."""
    c = model.config
    for block in model.blocks:
        block.attn = GroupedQueryAttention(c.n_embd, c.n_head, n_kv_heads, bias=c.bias, rope=c.position == "rope")


def describe(c: GPTConfig, n_kv_heads=None) -> str:
    kv = "" if n_kv_heads is None else f" with GroupedQueryAttention(n_kv_heads={n_kv_heads}) blocks"
    return (f"GPT(vocab={c.vocab_size}, block_size={c.block_size}, n_layer={c.n_layer}, n_head={c.n_head}, "
            f"n_embd={c.n_embd}, {c.position} positions, {c.norm}, {c.mlp}){kv}")


# -- the torch oracle ---------------------------------------------------------------------------


def t64(array, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=grad)


def torch_rotary(x: torch.Tensor, offset: int) -> torch.Tensor:
    """RoPE on (..., T, d): pair (x[2i], x[2i+1]) at position offset + t turned by (offset + t) * 10000^(-2i/d)."""
    steps, dim = x.shape[-2], x.shape[-1]
    inv = torch.pow(torch.tensor(10000.0, dtype=torch.float64), -torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    turn = torch.arange(offset, offset + steps, dtype=torch.float64)[:, None] * inv[None, :]
    first, second = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((first * turn.cos() - second * turn.sin(), first * turn.sin() + second * turn.cos()), dim=-1)
    return rotated.flatten(-2)


def torch_gqa(x: torch.Tensor, p: dict, n_heads: int, n_kv_heads: int, rope: bool) -> torch.Tensor:
    """Causal GQA: F.linear projections, query heads and key/value heads, K/V repeated with
    repeat_interleave, then F.scaled_dot_product_attention(is_causal=True) and the output projection."""
    batch, steps, dim = x.shape
    hd = dim // n_heads

    def project(name, heads):
        y = F.linear(x, p[f"{name}.weight"], p.get(f"{name}.bias"))
        return y.view(batch, steps, heads, hd).permute(0, 2, 1, 3)

    q, k, v = project("q_proj", n_heads), project("k_proj", n_kv_heads), project("v_proj", n_kv_heads)
    if rope:
        q, k = torch_rotary(q, 0), torch_rotary(k, 0)
    group = n_heads // n_kv_heads
    k, v = torch.repeat_interleave(k, group, dim=1), torch.repeat_interleave(v, group, dim=1)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(out.permute(0, 2, 1, 3).reshape(batch, steps, dim), p["out_proj.weight"], p.get("out_proj.bias"))


def torch_gqa_run(module, x0, upstream, n_heads, n_kv_heads, rope) -> dict:
    """The oracle's output and the gradients of sum(out * upstream) for x and every weight of `module`."""
    p = {name: t64(param.data, grad=True) for name, param in module.named_parameters()}
    x = t64(x0, grad=True)
    out = torch_gqa(x, p, n_heads, n_kv_heads, rope)
    (out * t64(upstream)).sum().backward()
    return {"out": out.detach().numpy(), "x": x.grad.numpy(), "params": {n: t.grad.numpy() for n, t in p.items()}}


# -- closed forms ---------------------------------------------------------------------------------


def layer_macs_per_token(c: GPTConfig, n_kv_heads: int) -> int:
    """Multiply-adds of one token through one block's matrices (attention scores excluded)."""
    d, kv_dim = c.n_embd, n_kv_heads * (c.n_embd // c.n_head)
    mlp = (3 if c.mlp == "swiglu" else 2) * d * 4 * d
    return 2 * d * d + 2 * d * kv_dim + mlp


def step_macs(c: GPTConfig, n_kv_heads: int, keys: int) -> int:
    """One cached decoding step whose query reads `keys` positions: a + b * keys."""
    a = c.n_layer * layer_macs_per_token(c, n_kv_heads) + c.n_embd * c.vocab_size
    return a + 2 * c.n_layer * c.n_embd * keys


def forward_macs(c: GPTConfig, n_kv_heads: int, steps: int) -> int:
    """The uncached forward (or a prefill) of `steps` tokens: every token through every matrix, and
    the full (steps x steps) scores and weighted sums in every layer."""
    a = c.n_layer * layer_macs_per_token(c, n_kv_heads) + c.n_embd * c.vocab_size
    return steps * a + 2 * c.n_layer * c.n_embd * steps * steps


# -- predicates -------------------------------------------------------------------------------------


def within(value, reference_and_tolerance) -> bool:
    """An array of the reference's shape, every entry within `tolerance` of it."""
    reference, tolerance = reference_and_tolerance
    value, reference = np.asarray(value, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return value.shape == reference.shape and bool(np.all(np.abs(value - reference) <= tolerance))


def float32_array(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == np.float32


# -- the cache ----------------------------------------------------------------------------------------


def test_append_returns_every_position_so_far():
    """KVCache.append stores the new keys and values after the old ones and returns all of them, in order"""
    rng = np.random.default_rng(1)
    cache = KVCache(n_layers=1, batch=2, n_kv_heads=3, head_dim=4, max_len=10, dtype=np.float64)
    chunks = [(rng.standard_normal((2, 3, t, 4)), rng.standard_normal((2, 3, t, 4))) for t in (4, 1, 2)]
    seen = 0
    for number, (k, v) in enumerate(chunks):
        keys, values = cache.append(0, Tensor(k), Tensor(v))
        seen += k.shape[2]
        call = f"cache.append(0, k, v) with t = {k.shape[2]} new positions after {seen - k.shape[2]}"
        expect_close(keys, np.concatenate([c[0] for c in chunks[:number + 1]], axis=2), rtol=0, atol=0,
                     call=f"keys returned by {call}", hint=CACHE_HINT)
        expect_close(values, np.concatenate([c[1] for c in chunks[:number + 1]], axis=2), rtol=0, atol=0,
                     call=f"values returned by {call}", hint=CACHE_HINT)
        expect_equal(cache.length, seen, call=f"cache.length after {call}",
                     hint="length counts the positions stored: it grows by t with every append")


def test_each_layer_keeps_its_own_positions():
    """Layers fill one after the other: each has its own keys and length; cache.length follows the last layer"""
    rng = np.random.default_rng(2)
    cache = KVCache(n_layers=2, batch=1, n_kv_heads=2, head_dim=3, max_len=6, dtype=np.float64)
    k0, v0, k1, v1 = (rng.standard_normal((1, 2, 3, 3)) for _ in range(4))
    k_new, v_new = rng.standard_normal((1, 2, 1, 3)), rng.standard_normal((1, 2, 1, 3))
    cache.append(0, k0, v0)
    expect_equal(cache.length, 0, call="cache.length after appending 3 positions to layer 0 of 2",
                 hint="length is the count of the LAST layer: a forward pass is over when the last layer has appended")
    keys0, values0 = cache.append(0, k_new, v_new)
    expect_close(keys0, np.concatenate([k0, k_new], axis=2), rtol=0, atol=0,
                 call="layer 0's keys after a second append to layer 0 (layer 1 still empty)",
                 hint="each layer counts its own positions: start = lengths[layer]")
    expect_close(values0, np.concatenate([v0, v_new], axis=2), rtol=0, atol=0,
                 call="layer 0's values after a second append to layer 0", hint="keys and values are kept apart")
    keys1, values1 = cache.append(1, k1, v1)
    expect_equal(cache.length, 3, call="cache.length after appending 4 positions to layer 0 and 3 to layer 1",
                 hint="length = lengths[-1]")
    expect_close(keys1, k1, rtol=0, atol=0, call="layer 1's keys after its first append",
                 hint="each layer has its own slice of the buffers: keys[layer]")
    expect_close(values1, v1, rtol=0, atol=0, call="layer 1's values after its first append",
                 hint="each layer has its own slice of the buffers: values[layer]")


def test_a_full_or_mismatched_append_is_rejected():
    """More positions than max_len, or keys of the wrong shape, are a ValueError and change nothing"""
    rng = np.random.default_rng(3)
    cache = KVCache(n_layers=1, batch=1, n_kv_heads=2, head_dim=4, max_len=5, dtype=np.float64)
    k, v = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((1, 2, 4, 4))
    cache.append(0, k, v)
    expect_raises(ValueError, lambda: cache.append(0, np.ones((1, 2, 2, 4)), np.ones((1, 2, 2, 4))),
                  call="cache.append(0, 2 positions) with 4 of max_len=5 held",
                  hint="stop = start + t must not pass max_len: the cache is full")
    expect_raises(ValueError, lambda: cache.append(0, np.ones((1, 1, 1, 4)), np.ones((1, 1, 1, 4))),
                  call="cache.append(0, k and v with 1 head) into a cache of n_kv_heads=2",
                  hint="check that k and v are (batch, n_kv_heads, t, head_dim) before writing: numpy would "
                       "silently copy one head into both")
    expect_raises(ValueError, lambda: cache.append(0, np.ones((1, 2, 1, 4)), np.ones((1, 2, 2, 4))),
                  call="cache.append(0, k with 1 position, v with 2)", hint="k and v must have the same shape")
    expect_equal(cache.length, 4, call="cache.length after the rejected appends", hint="check before writing anything")
    last_k, last_v = rng.standard_normal((1, 2, 1, 4)), rng.standard_normal((1, 2, 1, 4))
    keys, _ = cache.append(0, last_k, last_v)
    expect_close(keys, np.concatenate([k, last_k], axis=2), rtol=0, atol=0,
                 call="cache.append(0, 1 position) after the rejected ones: keys", hint=CACHE_HINT)


def test_reset_starts_a_new_sequence():
    """reset() forgets every position of every layer; the next append starts again at position 0"""
    rng = np.random.default_rng(4)
    cache = KVCache(n_layers=2, batch=1, n_kv_heads=1, head_dim=2, max_len=4, dtype=np.float64)
    for layer in range(2):
        cache.append(layer, rng.standard_normal((1, 1, 4, 2)), rng.standard_normal((1, 1, 4, 2)))
    cache.reset()
    expect_equal(cache.length, 0, call="cache.length after reset()", hint="set every layer's length to 0")
    k, v = rng.standard_normal((1, 1, 3, 2)), rng.standard_normal((1, 1, 3, 2))
    keys, values = cache.append(0, k, v)
    expect_close(keys, k, rtol=0, atol=0, call="keys returned by the first append after reset()",
                 hint="after reset the old positions are gone: only the new ones come back")
    expect_close(values, v, rtol=0, atol=0, call="values returned by the first append after reset()",
                 hint="reset layer 0's length too, not only the last layer's")
    keys, _ = cache.append(1, k, v)
    expect_close(keys, k, rtol=0, atol=0, call="layer 1's keys after reset() and a first append", hint="reset every layer")


def test_cache_bytes_closed_form():
    """nbytes and kv_cache_bytes equal 2 * n_layer * batch * n_kv_heads * seq_len * head_dim * bytes"""
    for dtype in (np.float32, np.float64):
        cache = KVCache(n_layers=3, batch=2, n_kv_heads=4, head_dim=5, max_len=7, dtype=dtype)
        size = np.dtype(dtype).itemsize
        expect_equal(int(cache.nbytes), 2 * 3 * 2 * 4 * 7 * 5 * size,
                     call=f"KVCache(n_layers=3, batch=2, n_kv_heads=4, head_dim=5, max_len=7, dtype={np.dtype(dtype)}).nbytes",
                     hint="two preallocated buffers of (n_layers, batch, n_kv_heads, max_len, head_dim) numbers")
        cache.append(0, np.ones((2, 4, 3, 5)), np.ones((2, 4, 3, 5)))
        expect_equal(int(cache.nbytes), 2 * 3 * 2 * 4 * 7 * 5 * size, call="KVCache.nbytes after an append",
                     hint="the buffers are allocated once, to max_len: appending never grows them")
    gpt2 = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    expect_equal(int(kv_cache_bytes(gpt2, 1024)), 75_497_472, call="kv_cache_bytes(GPT-2 small config, 1024)",
                 hint="2 (K and V) * 12 layers * 12 heads * 1024 positions * 64 head size * 4 bytes")
    big = GPTConfig(vocab_size=32000, block_size=4096, n_layer=80, n_head=64, n_embd=8192)
    expect_equal(int(kv_cache_bytes(big, 4096, batch=3, n_kv_heads=8, dtype_bytes=2)), 2 * 80 * 3 * 8 * 4096 * 128 * 2,
                 call="kv_cache_bytes(80 layers, 64 heads of 128, 4096, batch=3, n_kv_heads=8, dtype_bytes=2)",
                 hint="GQA: only n_kv_heads heads are cached; head_dim = n_embd // n_head is still the query heads' size")
    expect_equal(int(kv_cache_bytes(big, 4096, n_kv_heads=64)) // int(kv_cache_bytes(big, 4096, n_kv_heads=8)), 8,
                 call="kv_cache_bytes(n_kv_heads=64) // kv_cache_bytes(n_kv_heads=8)", hint="the cache shrinks by n_heads / n_kv_heads")
    expect_raises(ValueError, lambda: kv_cache_bytes(big, 16, n_kv_heads=5), call="kv_cache_bytes(n_head=64, n_kv_heads=5)",
                  hint="64 query heads do not split into 5 equal groups")


def test_for_model_fits_the_gpt():
    """KVCache.for_model: one layer per block, the attention's key/value heads and head size, the model's dtype"""
    config = GPTConfig(vocab_size=11, block_size=9, n_layer=3, n_head=4, n_embd=16, position="rope")
    model = GPT(config)
    set_weights(model, 5)
    cache = KVCache.for_model(model, batch=2)
    expect_equal((cache.n_layers, cache.batch, cache.n_kv_heads, cache.head_dim, cache.max_len, np.dtype(cache.dtype)),
                 (3, 2, 4, 4, 9, np.dtype(np.float64)),
                 call=f"KVCache.for_model({describe(config)} in float64, batch=2): n_layers, batch, n_kv_heads, head_dim, max_len, dtype",
                 hint="len(model.blocks), attn.n_heads (no n_kv_heads in a module-13 attention), attn.head_dim, "
                      "block_size, model.wte.weight.dtype")
    expect_equal(int(cache.nbytes), kv_cache_bytes(config, 9, batch=2, dtype_bytes=8),
                 call="KVCache.for_model(model, batch=2).nbytes", hint="the same numbers as kv_cache_bytes(config, block_size)")
    grouped = GPT(config)
    gqa_blocks(grouped, 2)
    small = KVCache.for_model(grouped, max_len=5)
    expect_equal((small.n_kv_heads, small.max_len, np.dtype(small.dtype), small.length), (2, 5, np.dtype(np.float32), 0),
                 call="KVCache.for_model(GPT with GroupedQueryAttention(n_kv_heads=2) blocks, float32, max_len=5)",
                 hint="n_kv_heads from block.attn.n_kv_heads when it has one; max_len when given")


# -- the mask and repeat_kv -----------------------------------------------------------------------------


def test_offset_causal_mask_puts_the_triangle_bottom_right():
    """offset_causal_mask(steps, past): new query i may read key j exactly when j <= past + i"""
    for steps, past in ((1, 0), (1, 5), (3, 0), (3, 2), (4, 6)):
        expect_equal(np.asarray(offset_causal_mask(steps, past)),
                     np.arange(past + steps)[None, :] <= past + np.arange(steps)[:, None],
                     call=f"offset_causal_mask(steps={steps}, past={past})",
                     hint="a (steps, past + steps) boolean array: every cached key, and the new keys up to itself "
                          "(np.tril(ones, k=past))")


@pytest.mark.parametrize("n_rep", [1, 2, 3])
def test_repeat_kv_matches_repeat_interleave(n_rep):
    """repeat_kv(x, n_rep) equals torch.repeat_interleave(x, n_rep, dim=1), values and gradients"""
    rng = np.random.default_rng(6)
    x0 = rng.standard_normal((2, 2, 3, 4))
    upstream = rng.standard_normal((2, 2 * n_rep, 3, 4))
    x = Tensor(x0, requires_grad=True)
    out = repeat_kv(x, n_rep)
    oracle = t64(x0, grad=True)
    repeated = torch.repeat_interleave(oracle, n_rep, dim=1)
    (repeated * t64(upstream)).sum().backward()
    call = f"repeat_kv(x of shape (2, 2, 3, 4), n_rep={n_rep})"
    expect_close(out, repeated.detach().numpy(), rtol=0, atol=0, call=call,
                 hint="each head n_rep times in a row: heads 0, 0, 1, 1 (not 0, 1, 0, 1); index axis 1 with "
                      "np.repeat(np.arange(H_kv), n_rep)")
    out.backward(Tensor(upstream))
    expect_close(x.grad, oracle.grad.numpy(), rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
                 hint="use a Tensor operation (indexing) so that the copies' gradients add up in the shared head")
    expect_raises(ValueError, lambda: repeat_kv(Tensor(x0), 0), call="repeat_kv(x, 0)", hint="n_rep must be at least 1")


# -- grouped-query attention -------------------------------------------------------------------------


@pytest.mark.parametrize("n_kv_heads, rope", [(1, False), (2, True), (4, False)], ids=["mqa", "gqa-rope", "mha"])
def test_grouped_query_attention_matches_torch(n_kv_heads, rope):
    """GroupedQueryAttention equals torch SDPA with repeated K/V heads: values and gradients (MQA, GQA, MHA)"""
    rng = np.random.default_rng(7)
    attn = GroupedQueryAttention(16, 4, n_kv_heads, rope=rope)
    set_weights(attn, 7)
    x0, upstream = rng.standard_normal((2, 6, 16)), rng.standard_normal((2, 6, 16))
    x = Tensor(x0, requires_grad=True)
    out = attn(x)
    reference = torch_gqa_run(attn, x0, upstream, 4, n_kv_heads, rope)
    call = f"GroupedQueryAttention(16, n_heads=4, n_kv_heads={n_kv_heads}, rope={rope})(x of shape (2, 6, 16))"
    expect_close(out, reference["out"], rtol=RTOL, atol=ATOL, call=call,
                 hint="q with n_heads heads, k and v with n_kv_heads; " + ("RoPE on q and k; " if rope else "")
                      + "repeat_kv(k and v, n_heads // n_kv_heads); causal attention; merge heads; out_proj")
    out.backward(Tensor(upstream))
    expect_close(x.grad, reference["x"], rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
                 hint="everything without a cache is Tensor operations: autograd does the rest")
    for name in ("k_proj.weight", "v_proj.weight", "q_proj.weight"):
        expect_close(getattr(attn, name.split(".")[0]).weight.grad, reference["params"][name], rtol=RTOL, atol=ATOL,
                     call=f"{name}.grad after {call}.backward(g)",
                     hint="a shared key/value head gets the gradients of every query head of its group")


def test_grouped_query_attention_shapes_and_checks():
    """GroupedQueryAttention's key/value projections shrink to n_kv_heads heads; impossible groupings are rejected"""
    attn = GroupedQueryAttention(24, 6, 2)
    expect_equal([(name, tuple(p.shape)) for name, p in attn.named_parameters()],
                 [("q_proj.weight", (24, 24)), ("q_proj.bias", (24,)), ("k_proj.weight", (8, 24)), ("k_proj.bias", (8,)),
                  ("v_proj.weight", (8, 24)), ("v_proj.bias", (8,)), ("out_proj.weight", (24, 24)), ("out_proj.bias", (24,))],
                 call="[(name, shape) of GroupedQueryAttention(24, n_heads=6, n_kv_heads=2).named_parameters()]",
                 hint="q_proj, k_proj, v_proj, out_proj in this order; k and v project to n_kv_heads * head_dim = 2 * 4")
    expect_equal([name for name, _ in GroupedQueryAttention(8, 2, 1, bias=False).named_parameters()],
                 ["q_proj.weight", "k_proj.weight", "v_proj.weight", "out_proj.weight"],
                 call="GroupedQueryAttention(8, 2, 1, bias=False) parameter names", hint="pass bias to every Linear")
    expect_raises(ValueError, lambda: GroupedQueryAttention(24, 6, 4), call="GroupedQueryAttention(24, n_heads=6, n_kv_heads=4)",
                  hint="6 query heads do not split into 4 equal groups")


@pytest.mark.parametrize("n_kv_heads, rope, layer", [(2, True, 0), (1, False, 1)], ids=["gqa-rope", "mqa"])
def test_cached_attention_in_chunks_equals_the_whole(n_kv_heads, rope, layer):
    """GroupedQueryAttention with a cache, fed 3 + 1 + 2 + 1 positions, equals torch on all 7 at once"""
    rng = np.random.default_rng(8)
    attn = GroupedQueryAttention(16, 4, n_kv_heads, rope=rope)
    set_weights(attn, 8)
    x0 = rng.standard_normal((2, 7, 16))
    cache = KVCache(n_layers=2, batch=2, n_kv_heads=n_kv_heads, head_dim=4, max_len=8, dtype=np.float64)
    reference = torch_gqa_run(attn, x0, np.zeros((2, 7, 16)), 4, n_kv_heads, rope)["out"]
    start = 0
    for steps in (3, 1, 2, 1):
        out = attn(Tensor(x0[:, start:start + steps]), cache=cache, layer=layer)
        expect_close(out, reference[:, start:start + steps], rtol=RTOL, atol=ATOL,
                     call=f"attn(x[:, {start}:{start + steps}], cache=cache, layer={layer}) after {start} cached positions",
                     hint=("the new positions come after cache.lengths[layer]: RoPE with offset=past, "
                           if rope else "")
                          + "append k and v to the cache, then attend with offset_causal_mask(t, past)")
        start += steps
    expect_equal(list(cache.lengths), [7, 0] if layer == 0 else [0, 7],
                 call=f"cache.lengths of a 2-layer cache after feeding 7 positions to layer {layer}",
                 hint="the attention appends to its own layer only, and reads its past from cache.lengths[layer]")


# -- the cached GPT ------------------------------------------------------------------------------


GPT_CASES = [
    (GPTConfig(vocab_size=13, block_size=12, n_layer=2, n_head=2, n_embd=16), None),
    (GPTConfig(vocab_size=13, block_size=12, n_layer=2, n_head=4, n_embd=16, norm="rmsnorm", mlp="swiglu",
               position="rope"), 2),
]
CASE_IDS = ["learned-mha", "rope-gqa"]


def cached_model(config, n_kv_heads, seed, dtype=np.float64):
    """A GPT (with GQA blocks when n_kv_heads is given) holding this file's weights, in eval mode."""
    model = GPT(config)
    if n_kv_heads is not None:
        gqa_blocks(model, n_kv_heads)
    set_weights(model, seed, dtype)
    model.eval()
    return model


@pytest.mark.parametrize("config, n_kv_heads", GPT_CASES, ids=CASE_IDS)
def test_cached_logits_equal_the_uncached_forward_at_every_step(config, n_kv_heads):
    """forward_cached: prefill, then new tokens one or two at a time, gives model(whole sequence)'s logits"""
    model = cached_model(config, n_kv_heads, 9)
    tokens = np.random.default_rng(9).integers(0, config.vocab_size, (2, 12))
    cache = KVCache.for_model(model, batch=2)
    prefill = forward_cached(model, tokens[:, :5], cache)
    name = describe(config, n_kv_heads)
    with no_grad():
        expect_close(prefill, model(tokens[:, :5]).data, rtol=DEEP_RTOL, atol=DEEP_ATOL,
                     call=f"forward_cached({name}, tokens[:, :5], empty cache)", hint=STEP_HINT)
    expect_equal(cache.length, 5, call="cache.length after the prefill of 5 tokens", hint="every layer appended 5 positions")
    start = 5
    for steps in (1, 1, 2, 1, 1, 1):
        logits = forward_cached(model, tokens[:, start:start + steps], cache)
        with no_grad():
            expect_close(logits, model(tokens[:, :start + steps]).data[:, start:], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                         call=f"forward_cached(model, tokens[:, {start}:{start + steps}], cache holding {start})",
                         hint=STEP_HINT)
        start += steps
    expect_raises(ValueError, lambda: forward_cached(model, tokens[:, :1], cache),
                  call=f"forward_cached(model, 1 more token, cache holding block_size={config.block_size})",
                  hint="the model has no position beyond block_size")


@pytest.mark.parametrize("config, n_kv_heads", GPT_CASES, ids=CASE_IDS)
def test_cached_logits_in_float32_are_within_rounding(config, n_kv_heads):
    """In float32, cached logits differ from the uncached ones by float32 rounding only (4x the model's own)"""
    model = cached_model(config, n_kv_heads, 10, np.float32)
    tokens = np.random.default_rng(10).integers(0, config.vocab_size, (1, 12))
    cache = KVCache.for_model(model)
    steps = [forward_cached(model, tokens[:, :4], cache).data]
    for t in range(4, 12):
        steps.append(forward_cached(model, tokens[:, t:t + 1], cache).data)
    logits = np.concatenate(steps, axis=1)
    expect_that(logits, float32_array, call=f"forward_cached({describe(config, n_kv_heads)} in float32, ...).data",
                expected="float32 logits", hint="a float32 model and a float32 cache (KVCache.for_model takes wte's dtype)")
    expect_that(logits, within, float32_reference(config, n_kv_heads, tokens),
                call=f"forward_cached logits at every step of {describe(config, n_kv_heads)} in float32",
                expected="within 4 * eps32 of model(tokens) in float32 (eps32 = its distance from the float64 result)",
                hint=STEP_HINT)


def float32_reference(config, n_kv_heads, tokens) -> tuple[np.ndarray, float]:
    """The float32 uncached logits, and the tolerance 4 * eps32 (the float32 model's own rounding error)."""
    with no_grad():
        uncached = cached_model(config, n_kv_heads, 10, np.float32)(tokens).data
        exact = cached_model(config, n_kv_heads, 10, np.float64)(tokens).data
    return uncached, 4.0 * float(np.max(np.abs(uncached - exact)))


# -- generation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("config, n_kv_heads", GPT_CASES, ids=CASE_IDS)
def test_generate_cached_writes_what_generate_writes(config, n_kv_heads):
    """generate_cached returns model.generate's tokens with the same rng: greedy, top-k, top-p and temperature"""
    model = cached_model(config, n_kv_heads, 11)
    prompt = np.random.default_rng(11).integers(0, config.vocab_size, (2, 3))
    name = describe(config, n_kv_heads)
    expect_equal(np.asarray(generate_cached(model, prompt, 8, greedy=True)), model.generate(prompt, 8, greedy=True),
                 call=f"generate_cached({name}, prompt (2, 3), 8, greedy=True)",
                 hint="prefill the prompt, then per token: sample from the last logits, append, decode the new token alone")
    for options in ({"top_k": 4}, {"top_p": 0.8, "temperature": 1.5}):
        expect_equal(np.asarray(generate_cached(model, prompt, 9, rng=np.random.default_rng(12), **options)),
                     model.generate(prompt, 9, rng=np.random.default_rng(12), **options),
                     call=f"generate_cached(model, prompt, 9, rng=np.random.default_rng(12), {options})",
                     hint="pass temperature, top_k, top_p, greedy and rng to sample_next_token, one call per new token")


def test_generate_cached_beyond_block_size():
    """Past block_size, generate_cached still returns generate's tokens (the window slides, the cache restarts)"""
    config = GPTConfig(vocab_size=9, block_size=6, n_layer=2, n_head=2, n_embd=8)
    model = cached_model(config, None, 13)
    prompt = np.array([[1, 2, 3, 4], [8, 7, 6, 5]])
    expect_equal(np.asarray(generate_cached(model, prompt, 7, rng=np.random.default_rng(3))),
                 model.generate(prompt, 7, rng=np.random.default_rng(3)),
                 call="generate_cached(model with block_size=6, prompt of 4 tokens, 7 new tokens)",
                 hint="when cache.length == block_size and another token is needed: cache.reset(), then "
                      "forward_cached on the last block_size tokens")
    long = np.arange(8)[None, :] % 9
    expect_equal(np.asarray(generate_cached(model, long, 3, greedy=True)), model.generate(long, 3, greedy=True),
                 call="generate_cached(model with block_size=6, prompt of 8 tokens, 3, greedy=True)",
                 hint="a prompt longer than block_size: prefill its last block_size tokens")


def test_generate_cached_restores_the_mode_and_checks_temperature():
    """generate_cached runs in eval mode and restores the previous mode; temperature <= 0 is a ValueError"""
    config = GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.5)
    model = cached_model(config, None, 14)
    model.train()
    tokens = generate_cached(model, [[1, 2]], 5, greedy=True)
    expect_equal([m.training for m in model.modules()], [True] * len(model.modules()),
                 call="model.training after model.train(); generate_cached(...)",
                 hint="remember model.training, call model.eval(), and model.train(previous) afterwards (try/finally)")
    model.eval()
    expect_equal(np.asarray(tokens), model.generate([[1, 2]], 5, greedy=True),
                 call="generate_cached(model with dropout=0.5 in training mode, [[1, 2]], 5, greedy=True)",
                 hint="generation runs in eval mode: no dropout")
    expect_equal(np.asarray(generate_cached(model, [[3, 4, 5]], 0)), np.array([[3, 4, 5]]),
                 call="generate_cached(model, [[3, 4, 5]], 0)", hint="no new token: the prompt itself")
    expect_raises(ValueError, lambda: generate_cached(model, [[1]], 3, temperature=0.0),
                  call="generate_cached(model, [[1]], 3, temperature=0.0)", hint="as generate: use greedy=True for argmax")


# -- the work per token -------------------------------------------------------------------------------


@pytest.mark.parametrize("config, n_kv_heads", GPT_CASES, ids=CASE_IDS)
def test_a_cached_step_costs_a_plus_b_T_multiply_adds(config, n_kv_heads):
    """FlopCounter: a prefill costs as much as the uncached forward, a decoding step a + b*T multiply-adds"""
    model = cached_model(config, n_kv_heads, 15)
    kv = config.n_head if n_kv_heads is None else n_kv_heads
    tokens = np.random.default_rng(15).integers(0, config.vocab_size, (1, 12))
    cache = KVCache.for_model(model)
    with FlopCounter() as counter:
        forward_cached(model, tokens[:, :5], cache)
    expect_equal(int(counter.macs), forward_macs(config, kv, 5), call=f"FlopCounter().macs of the prefill of 5 tokens, {describe(config, n_kv_heads)}",
                 hint="the prefill is one forward pass over the prompt: exactly the uncached forward's matrix products")
    steps = []
    for t in range(5, 12):
        with FlopCounter() as counter:
            forward_cached(model, tokens[:, t:t + 1], cache)
        steps.append(int(counter.macs))
    expect_equal(steps, [step_macs(config, kv, keys) for keys in range(6, 13)],
                 call="FlopCounter().macs of each decoding step, the new token reading T = 6..12 positions",
                 hint="one row through every matrix (a), plus 2 * n_layer * n_embd per position read (b T): run "
                      "the network on the new token only, and project k, v to n_kv_heads heads")


def test_generate_cached_does_one_prefill_and_one_token_per_step():
    """FlopCounter over generate_cached: one prefill, then one decoding step per new token but the last"""
    config = GPTConfig(vocab_size=17, block_size=16, n_layer=2, n_head=2, n_embd=16)
    model = cached_model(config, None, 16)
    prompt = np.random.default_rng(16).integers(0, config.vocab_size, (1, 5))
    with FlopCounter() as counter:
        generate_cached(model, prompt, 6, greedy=True)
    expect_equal(int(counter.macs), forward_macs(config, 2, 5) + sum(step_macs(config, 2, keys) for keys in range(6, 11)),
                 call="FlopCounter().macs of generate_cached(model, prompt of 5 tokens, 6, greedy=True)",
                 hint="prefill the 5 prompt tokens once, then decode each new token alone (5 steps: the 6th "
                      "token needs no logits after it); never run the whole context again")
