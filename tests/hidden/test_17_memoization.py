"""Hidden checks for module 17 (memoization): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
# the checkpoint's oracles and helpers: both files test against one reference
from tests.checkpoints.test_17_memoization import (
    ATOL,
    DEEP_ATOL,
    DEEP_RTOL,
    RTOL,
    cached_model,
    forward_macs,
    gqa_blocks,
    set_weights,
    t64,
    torch_gqa_run,
)
from tinytorch.autograd import no_grad
from tinytorch.memoization import (
    GroupedQueryAttention,
    KVCache,
    cached_attention,
    forward_cached,
    generate_cached,
    repeat_kv,
)
from tinytorch.profiling import FlopCounter
from tinytorch.tensor import Tensor, generator, manual_seed
from tinytorch.transformers import GPT, CausalSelfAttention, GPTConfig

torch.set_num_threads(1)


def test_grouped_query_cache_with_groups_of_three_and_multi_token_chunks():
    """6 query heads in 2 groups, RoPE, no bias, batch 3, chunks of 2, 2, 1, 3 positions: equal to torch"""
    rng = np.random.default_rng(21)
    attn = GroupedQueryAttention(24, 6, 2, bias=False, rope=True)
    set_weights(attn, 21)
    x0 = rng.standard_normal((3, 8, 24))
    cache = KVCache(n_layers=1, batch=3, n_kv_heads=2, head_dim=4, max_len=8, dtype=np.float64)
    reference = torch_gqa_run(attn, x0, np.zeros((3, 8, 24)), 6, 2, True)["out"]
    start = 0
    for steps in (2, 2, 1, 3):
        out = attn(Tensor(x0[:, start:start + steps]), cache=cache)
        expect_close(out, reference[:, start:start + steps], rtol=RTOL, atol=ATOL,
                     call=f"GroupedQueryAttention(24, 6, 2, rope=True)(x[:, {start}:{start + steps}], cache) after {start}",
                     hint="several new positions after cached ones: RoPE offset = past, mask = offset_causal_mask(t, past)")
        start += steps


def test_cached_attention_reads_a_module_13_attention():
    """cached_attention on a module-13 CausalSelfAttention (no n_kv_heads) equals that attention, also in chunks"""
    rng = np.random.default_rng(22)
    attn = CausalSelfAttention(12, 3, rope=True)
    set_weights(attn, 22)
    attn.eval()
    x0 = rng.standard_normal((2, 5, 12))
    with no_grad():
        whole = attn(Tensor(x0)).data
    expect_close(cached_attention(attn, Tensor(x0)), whole, rtol=RTOL, atol=ATOL,
                 call="cached_attention(CausalSelfAttention(12, 3, rope=True), x) without a cache",
                 hint="without a cache past = 0: the ordinary causal attention; n_kv_heads defaults to n_heads")
    cache = KVCache(n_layers=1, batch=2, n_kv_heads=3, head_dim=4, max_len=5, dtype=np.float64)
    first = cached_attention(attn, Tensor(x0[:, :3]), cache, 0)
    second = cached_attention(attn, Tensor(x0[:, 3:]), cache, 0)
    expect_close(np.concatenate([first.data, second.data], axis=1), whole, rtol=RTOL, atol=ATOL,
                 call="cached_attention(module-13 attention, x[:, :3], cache), then x[:, 3:]",
                 hint="rotate the new positions at offset = cache.lengths[layer]")


def test_generate_cached_with_the_global_generator():
    """With rng=None, generate_cached draws from module 01's generator exactly as generate does"""
    config = GPTConfig(vocab_size=11, block_size=10, n_layer=1, n_head=2, n_embd=8, position="rope")
    model = cached_model(config, 1, 23)
    manual_seed(5)
    got = generate_cached(model, [[1, 2, 3]], 6, top_k=5)
    expect_equal(np.asarray(got), generate_with_seed(model, [[1, 2, 3]], 6, 5),
                 call="manual_seed(5); generate_cached(model, [[1, 2, 3]], 6, top_k=5)",
                 hint="rng=None means module 01's generator(): pass rng on to sample_next_token unchanged")


def generate_with_seed(model, prompt, steps, seed) -> np.ndarray:
    """model.generate after manual_seed(seed); the global generator's state is put back afterwards."""
    state = generator().bit_generator.state
    manual_seed(seed)
    try:
        return model.generate(prompt, steps, top_k=5)
    finally:
        generator().bit_generator.state = state


def test_a_full_prompt_restarts_the_window_at_every_step():
    """A prompt of exactly block_size tokens: same tokens as generate, each step a full forward of the window"""
    config = GPTConfig(vocab_size=9, block_size=5, n_layer=2, n_head=2, n_embd=8)
    model = cached_model(config, None, 24)
    prompt = np.array([[1, 2, 3, 4, 5]])
    with FlopCounter() as counter:
        got = generate_cached(model, prompt, 4, rng=np.random.default_rng(8))
    expect_equal(np.asarray(got), model.generate(prompt, 4, rng=np.random.default_rng(8)),
                 call="generate_cached(model with block_size=5, prompt of 5 tokens, 4 new tokens)",
                 hint="the cache is full after the prefill: every further step resets it and prefills the last block_size tokens")
    expect_equal(int(counter.macs), 4 * forward_macs(config, 2, 5),
                 call="FlopCounter().macs of that generate_cached", hint="one prefill plus 3 re-prefills of the 5-token window")


def test_a_shorter_cache_is_full_before_block_size():
    """KVCache.for_model(max_len=4): forward_cached past 4 positions is a ValueError, and a float32 cache stores float32"""
    config = GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=2, n_embd=8)
    model = cached_model(config, None, 25, np.float32)
    cache = KVCache.for_model(model, max_len=4)
    logits = forward_cached(model, [[1, 2, 3]], cache)
    expect_equal(logits.data.dtype, np.dtype(np.float32), call="forward_cached(float32 model, ...).data.dtype",
                 hint="a float32 model, a float32 cache")
    expect_raises(ValueError, lambda: forward_cached(model, [[4, 5]], cache),
                  call="forward_cached(model, 2 tokens) with 3 of max_len=4 held", hint="the cache's append refuses to overflow")
    keys, _ = KVCache(1, 1, 1, 2, 3).append(0, np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))
    expect_equal(keys.data.dtype, np.dtype(np.float32), call="KVCache(1, 1, 1, 2, 3).append(0, float64 k, v): keys dtype",
                 hint="the buffers have the cache's dtype (float32 by default)")


def test_multi_query_gpt_prefilled_with_one_token():
    """A learned-position GPT with multi-query blocks, batch 3, prefilled with one token: every step exact"""
    config = GPTConfig(vocab_size=10, block_size=6, n_layer=3, n_head=4, n_embd=16, mlp="swiglu")
    model = GPT(config)
    gqa_blocks(model, 1)
    set_weights(model, 26)
    model.eval()
    tokens = np.random.default_rng(26).integers(0, 10, (3, 6))
    cache = KVCache.for_model(model, batch=3)
    for t in range(6):
        logits = forward_cached(model, tokens[:, t:t + 1], cache)
        with no_grad():
            expect_close(logits, model(tokens[:, :t + 1]).data[:, t:], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                         call=f"forward_cached(MQA GPT, tokens[:, {t}:{t + 1}], cache holding {t})",
                         hint="position embedding wpe(start + i) with start = cache.length before the first layer")
    expect_equal(int(cache.nbytes), 2 * 3 * 3 * 1 * 6 * 4 * 8, call="nbytes of the MQA GPT's cache (float64, batch 3)",
                 hint="one key/value head per layer")


def test_repeat_kv_of_a_transposed_input_and_four_copies():
    """repeat_kv(x.transpose(1, 2), 4): values and the gradient summed over each group of four"""
    rng = np.random.default_rng(27)
    x0 = rng.standard_normal((2, 5, 3, 2))
    up = rng.standard_normal((2, 12, 5, 2))
    x = Tensor(x0, requires_grad=True)
    out = repeat_kv(x.transpose(1, 2), 4)
    oracle = t64(x0, grad=True)
    rep = torch.repeat_interleave(oracle.transpose(1, 2), 4, dim=1)
    (rep * t64(up)).sum().backward()
    expect_close(out, rep.detach().numpy(), rtol=0, atol=0, call="repeat_kv(x.transpose(1, 2), 4)",
                 hint="repeat along axis 1, each head 4 times in a row")
    out.backward(Tensor(up))
    expect_close(x.grad, oracle.grad.numpy(), rtol=RTOL, atol=ATOL, call="x.grad after repeat_kv(x.transpose(1, 2), 4).backward(g)",
                 hint="the gradient of a repeated head is the sum over its copies")
    expect_that(np.asarray(repeat_kv(Tensor(x0), 1).data), equal_to, x0, call="repeat_kv(x, 1)",
                expected="x unchanged", hint="n_rep = 1: nothing to repeat")


def equal_to(value, other) -> bool:
    return np.shape(value) == np.shape(other) and bool(np.array_equal(value, other))
