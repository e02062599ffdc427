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
# # Module 17: Memoization, the KV-cache
#
# Module 13's `GPT.generate` writes one token per step, and every step runs the model on the
# *whole* context again. To write token 200 it recomputes the queries, keys, values and MLP
# outputs of the 199 tokens before it, exactly as it did one step earlier, to use the last
# row of the result and throw the rest away. Writing `N` tokens this way costs about
# `N^2 / 2` token-passes through the network: the work per token grows with the length of
# the text.
#
# **Memoization** is the oldest trick against recomputation: remember a result the first
# time you compute it, look it up afterwards. Here the result worth remembering is the
# **keys and values** of every layer for every position so far. With them stored, a step
# runs the network on the *one new token*: its query reads the stored keys, its key and value
# are appended to the store. This store is the **KV-cache**, and every serving system for
# language models is built around it.
#
# In this module you build
#
# | name | what it does |
# | --- | --- |
# | `KVCache(n_layers, batch, n_kv_heads, head_dim, max_len, dtype)` | preallocated keys and values of every layer; `append`, `length`, `nbytes`, `reset` |
# | `KVCache.for_model(model, batch, max_len)` | the cache that fits a module-13 `GPT` |
# | `offset_causal_mask(steps, past)` | which stored and new keys the new queries may read |
# | `repeat_kv(x, n_rep)` | shares each key/value head among `n_rep` query heads |
# | `cached_attention(attn, x, cache, layer)` | the attention step, with or without a cache |
# | `GroupedQueryAttention(dim, n_heads, n_kv_heads)` | attention with fewer key/value heads than query heads |
# | `kv_cache_bytes(config, seq_len, batch, n_kv_heads, dtype_bytes)` | the cache's size, in closed form |
# | `forward_cached(model, idx_new, cache)` | a GPT forward pass over new tokens only |
# | `generate_cached(model, idx, max_new_tokens, ...)` | `GPT.generate`, one token of work per step |
#
# The checkpoint holds you to one standard: the cached model is the *same* model. Its logits
# equal the uncached forward's at every step, `generate_cached` returns the same tokens as
# `GPT.generate` with the same random generator, grouped-query attention equals PyTorch's
# `scaled_dot_product_attention` with repeated key/value heads, and module 14's `FlopCounter`
# shows that the work of a generated token no longer grows like the context.

# %%
from __future__ import annotations

import time
from typing import Any

import numpy as np

from tinytorch.attention import scaled_dot_product_attention
from tinytorch.autograd import no_grad
from tinytorch.layers import Linear, Module
from tinytorch.tensor import Tensor
# Module 13's own checks, so a cached generation refuses exactly what GPT.generate refuses.
from tinytorch.transformers import (GPT, GPTConfig, _require_positive_temperature, _token_array, apply_rope,
                                    sample_next_token)


def _array(x: Any) -> np.ndarray:
    """The numbers of a Tensor (or of anything numpy can read)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# %% [markdown]
# ## 1. What a generation step recomputes
#
# Take one attention layer and the context `x_0 ... x_t`. Position `i` produces a query
# `q_i`, a key `k_i` and a value `v_i`, each a projection of what the layer receives at
# position `i`. The causal mask (module 12) lets position `i` read positions `0..i` only, so
# **nothing at position `i` depends on a later token**: not its output of this layer, so not
# the input of the next layer, so not its keys and values anywhere in the network. When token
# `t + 1` arrives, every number computed for positions `0..t` comes out exactly as before.
#
# What the new position needs from the old ones is only their **keys and values**, in every
# layer (its query is compared with their keys, its output is a mix of their values). Their
# queries, attention outputs and MLP outputs were needed once, to produce the logits of
# earlier steps, and never again. So the cache holds, per layer, `K` and `V` of every
# position so far, and one decoding step is:
#
# ```
# x = embedding of the new token (at position p = number of cached positions)
# for every layer:
#     q, k, v = projections of the new position only            (B, heads, 1, head_dim)
#     K, V   = cache.append(layer, k, v)                          (B, heads, p + 1, head_dim)
#     x      = x + attention(q, K, V) -> out_proj;   x = x + MLP(x)
# logits of the new position
# ```
#
# Generation then has two phases with very different shapes. **Prefill**: the prompt goes
# through the network in one forward pass, all its positions at once, filling the cache (as
# much work as the uncached forward, done once). **Decode**: one token per step, one row
# through every matrix. The uncached step costs about `T` times the cached one.
#
# Two consequences of "nothing depends on later tokens", used below:
#
# - **Positions are absolute.** The new token sits at position `p`, the number of positions
#   already cached: the learned embedding is `wpe(p)`, and RoPE rotates the new query and key
#   by `p` (module 13's `apply_rope(x, offset=p)`). Rotating at position 0 would be a silent
#   bug: the logits come out plausible, and wrong.
# - **The cache is exact only while the context is not cropped.** `GPT.generate` keeps the
#   last `block_size` tokens. Once it drops the oldest one, *every* position moves, and in
#   every layer above the first every key changed too (it had read the dropped token). Section
#   6 says what we do then.

# %% [markdown]
# ## 2. The cache: preallocated, written in place
#
# A first version keeps a Python list of arrays per layer and concatenates: `K = concat(K,
# k)`. Each concatenation copies everything stored so far, so writing `N` tokens copies
# `N^2 / 2` key vectors per layer, the quadratic cost we set out to remove, now in memory
# traffic. The fix is to know the maximum length in advance (a GPT's `block_size`),
# **allocate once**, and write each new position into its slot:
#
# ```
# keys, values: zeros (n_layers, batch, n_kv_heads, max_len, head_dim)
# lengths:      [0] * n_layers               positions stored, per layer
# ```
#
# (`n_kv_heads` is the number of key/value heads: the model's number of heads for now,
# fewer in section 4.) Then
#
# - `append(layer, k, v)` takes `k` and `v` of shape `(B, n_kv_heads, t, head_dim)` (`t` new
#   positions: the whole prompt at prefill, 1 in decoding), writes them at positions
#   `lengths[layer] .. lengths[layer] + t - 1` of that layer, moves `lengths[layer]` on by `t`,
#   and returns that layer's keys and values so far, `(B, n_kv_heads, lengths[layer],
#   head_dim)` each, as Tensors. Return **views** of the buffer (a slice, not a copy): no
#   copying at all. More than `max_len` positions is a ValueError saying the cache is full,
#   and so is a `k` or `v` whose batch, heads or head size do not fit the buffer.
# - `length` is the number of positions the cache holds. A forward pass fills the layers one
#   after the other, so count those of the **last** layer: before a forward pass and after it,
#   every layer holds as many; in the middle of one, `length` still says how many positions
#   were there when it began (the position of the first new token).
# - `nbytes` is the memory the buffers take (both of them, all of `max_len`: allocated is
#   allocated).
# - `reset()` empties the cache for a new sequence by setting every length to 0. No need to
#   zero the buffers: a position is always written before it is read, because `append` only
#   returns positions below the length.
#
# Store `k` and `v` in the cache's `dtype` (the model's: float32 normally, float64 in the
# checkpoint, whose exactness tests would notice a float64 model squeezed through a float32
# cache). The cache is for inference: it stores numbers, not graphs, so no gradient flows into
# earlier positions through it.
#
# `KVCache.for_model(model, batch=1, max_len=None)` builds the cache that fits a module-13
# `GPT`: one layer per block, the head size and the number of key/value heads of the blocks'
# attention (`attn.n_kv_heads` if it has one, otherwise `attn.n_heads`), the dtype of the
# model's token embedding, and `max_len` defaulting to `block_size`.

# %% nbgrader={"grade": false, "grade_id": "kv-cache", "locked": false, "schema_version": 3, "solution": true, "task": false}
class KVCache:
    """Keys and values of every layer for the positions generated so far, in preallocated buffers."""

    def __init__(self, n_layers: int, batch: int, n_kv_heads: int, head_dim: int, max_len: int,
                 dtype: Any = np.float32) -> None:
        """keys, values: zeros (n_layers, batch, n_kv_heads, max_len, head_dim) of dtype; lengths: [0] * n_layers."""
        self.n_layers, self.batch, self.n_kv_heads = n_layers, batch, n_kv_heads
        self.head_dim, self.max_len, self.dtype = head_dim, max_len, np.dtype(dtype)
        # YOUR CODE HERE
        raise NotImplementedError()

    @classmethod
    def for_model(cls, model: GPT, batch: int = 1, max_len: int | None = None) -> KVCache:
        """The cache of a module-13 GPT: one layer per block, its attention's heads, its dtype."""
        # YOUR CODE HERE
        raise NotImplementedError()

    @property
    def length(self) -> int:
        """The number of positions held (those of the last layer, which a forward pass fills last)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    @property
    def nbytes(self) -> int:
        """Bytes of the two preallocated buffers."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def reset(self) -> None:
        """Forget every position (a new sequence), keeping the buffers."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def append(self, layer: int, k: Any, v: Any) -> tuple[Tensor, Tensor]:
        """Store k, v (B, n_kv_heads, t, head_dim) after the positions `layer` holds; return that
        layer's keys and values so far, (B, n_kv_heads, length + t, head_dim) each (views)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __repr__(self) -> str:
        return (f"KVCache(n_layers={self.n_layers}, batch={self.batch}, n_kv_heads={self.n_kv_heads}, "
                f"head_dim={self.head_dim}, length={self.length}/{self.max_len}, dtype={self.dtype})")


# %% [markdown]
# ## Try it: append, length, reset
#
# One layer, two heads of size 4. A prompt of three positions, then one decoding step: the
# returned keys grow, and they are the buffer itself (a view), not a copy.

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)
    cache = KVCache(n_layers=1, batch=1, n_kv_heads=2, head_dim=4, max_len=8)
    keys, values = cache.append(0, rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((1, 2, 3, 4)))
    print(cache, "| keys so far:", keys.shape)
    keys, values = cache.append(0, rng.standard_normal((1, 2, 1, 4)), rng.standard_normal((1, 2, 1, 4)))
    print(cache, "| keys so far:", keys.shape, "| a view of the buffer:", np.shares_memory(keys.data, cache.keys))
    print("bytes:", cache.nbytes, "= 2 buffers x", cache.keys.size, "numbers x 4 bytes")
    cache.reset()
    print("after reset:", cache)

# %% [markdown]
# ## 3. Attention over the cache
#
# With `t` new positions and `past` positions already cached, the new queries `(B, H, t, hd)`
# meet `past + t` keys. Which may each read? New query `i` sits at position `past + i`, so it
# may read key `j` when `j <= past + i`: every cached key, and the new ones up to itself.
#
# ```
# past = 3, t = 2        keys:  0 1 2 3 4
#   query at position 3:        1 1 1 1 0
#   query at position 4:        1 1 1 1 1
# ```
#
# That is the causal triangle moved to the **bottom right** of the `(t, past + t)` block.
# Careful: module 12's `is_causal=True` (like PyTorch's) aligns it at the *top left* when
# there are fewer queries than keys, which would let the query at position 3 read key 0
# only. So pass the mask yourself: `offset_causal_mask(steps, past)`, a boolean `(steps,
# past + steps)` array, True where reading is allowed (`np.tril` with a diagonal offset, or a
# comparison of two `arange`s). In decoding (`t = 1`) it is a row of ones: the newest token
# reads everything.
#
# `cached_attention(attn, x, cache=None, layer=0)` is then the attention of module 13's
# `CausalSelfAttention`, rewritten to use a cache. It reads the attention module's own
# weights and settings: `attn.q_proj`, `k_proj`, `v_proj`, `out_proj`, `attn.n_heads`,
# `attn.head_dim`, `attn.rope`, and `attn.n_kv_heads` (section 4; a module-13 attention has
# none, and then it equals `n_heads`). For `x (B, t, dim)`:
#
# 1. `past` is the number of positions `layer` already holds (`cache.lengths[layer]`), 0
#    without a cache;
# 2. project and split the heads: `q (B, n_heads, t, hd)`, `k` and `v` `(B, n_kv_heads, t,
#    hd)`;
# 3. with `attn.rope`, rotate `q` and `k` with `apply_rope(..., offset=past)`;
# 4. with a cache, `k, v = cache.append(layer, k, v)`: from here on they hold all `past + t`
#    positions;
# 5. section 4's `repeat_kv` brings `k` and `v` to `n_heads` heads (nothing to do when
#    `n_kv_heads == n_heads`);
# 6. module 12's `scaled_dot_product_attention(q, k, v, attn_mask=offset_causal_mask(t,
#    past))`, merge the heads back to `(B, t, dim)`, `out_proj`.
#
# Without a cache this is exactly module 13's attention (`past = 0` makes the mask the usual
# triangle). It is the eval-mode computation: no dropout, which is what generation uses.

# %% nbgrader={"grade": false, "grade_id": "cached-attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def offset_causal_mask(steps: int, past: int) -> np.ndarray:
    """Boolean (steps, past + steps): new query i (at position past + i) may read key j iff j <= past + i."""
    # YOUR CODE HERE
    raise NotImplementedError()


def cached_attention(attn: Module, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
    """Causal self-attention of `attn`'s weights on x (B, t, dim) -> (B, t, dim); with a cache the
    new positions come after the `cache.lengths[layer]` stored ones and are appended to them."""
    batch, steps, _ = x.shape
    n_heads, head_dim = attn.n_heads, attn.head_dim
    n_kv_heads = getattr(attn, "n_kv_heads", n_heads)
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 4. Grouped-query and multi-query attention
#
# The cache of a GPT-2-sized model (12 layers, 12 heads of 64, float32) holds `2 * 12 * 12 *
# 64 * 4 = 73,728` bytes per token: 75 MB for a context of 1024 tokens, per sequence. A server
# answering 64 requests at once keeps 64 such caches, and every decoding step reads all of
# them from memory to compute very little with each number. Decoding is limited by memory
# traffic, and the cache is most of that traffic.
#
# Shazeer (2019) asked whether every query head needs its own keys and values. **Multi-query
# attention** (MQA) keeps `n_heads` query heads but only **one** key/value head, shared by
# all: the cache shrinks `n_heads`-fold. Quality drops a little. **Grouped-query attention**
# (GQA, Ainslie et al. 2023) is the middle ground used by LLaMA 2 70B, Mistral and most
# models since: `n_kv_heads` key/value heads, each shared by a group of `n_heads /
# n_kv_heads` query heads. `n_kv_heads = n_heads` is ordinary multi-head attention,
# `n_kv_heads = 1` is MQA.
#
# ```
# n_heads = 4, n_kv_heads = 2:   query heads  0 1 | 2 3
#                                 kv head       0   |  1
# ```
#
# Query head `h` reads key/value head `h // (n_heads / n_kv_heads)`. The simplest way to
# compute it is to **repeat** every key/value head `n_rep = n_heads / n_kv_heads` times in a
# row, `(B, n_kv_heads, T, hd) -> (B, n_kv_heads * n_rep, T, hd)`, and run ordinary attention.
# That is `repeat_kv(x, n_rep)`, PyTorch's `repeat_interleave(n_rep, dim=1)`: heads `0, 0, 1,
# 1`, not `0, 1, 0, 1` (that would give query heads 0 and 2 the same keys, a different model).
# Index the head axis with `np.repeat(np.arange(n_kv_heads), n_rep)`: module 05 differentiates
# indexing, so the gradients of the shared heads add up over their group. `n_rep = 1` returns
# `x` itself; `n_rep < 1` is a ValueError. (Fast kernels never materialise the repeated
# copy: they fold the group into the query axis. The cache, which is what we save, holds
# `n_kv_heads` heads either way.)
#
# `GroupedQueryAttention(dim, n_heads, n_kv_heads, bias=True, rope=False)` holds `q_proj` and
# `out_proj` as `Linear(dim, dim)`, and `k_proj`, `v_proj` as `Linear(dim, n_kv_heads *
# head_dim)`: the key/value projections shrink with the cache. Its `forward(x, cache=None,
# layer=0)` is `cached_attention(self, x, cache, layer)`. It has the attribute names of
# module 13's `CausalSelfAttention`, so it can replace `block.attn` in a GPT: `model(idx)`,
# `forward_cached` and `KVCache.for_model` all work with it. The checks are given: `dim`
# must divide into `n_heads` heads and `n_heads` into `n_kv_heads` groups, and with
# `rope=True` the head size must be even.
#
# `kv_cache_bytes(config, seq_len, batch=1, n_kv_heads=None, dtype_bytes=4)` is the size in
# closed form: two tensors (K and V) per layer of `batch * n_kv_heads * seq_len * head_dim`
# numbers, `head_dim = n_embd / n_head`, `n_kv_heads` defaulting to `config.n_head`.

# %% nbgrader={"grade": false, "grade_id": "grouped-query", "locked": false, "schema_version": 3, "solution": true, "task": false}
def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, H_kv, T, D) -> (B, H_kv * n_rep, T, D): each key/value head repeated n_rep times in a row."""
    # YOUR CODE HERE
    raise NotImplementedError()


class GroupedQueryAttention(Module):
    """Causal self-attention with n_heads query heads sharing n_kv_heads key/value heads."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, bias: bool = True, rope: bool = False) -> None:
        """Linear q_proj, out_proj (dim -> dim) and k_proj, v_proj (dim -> n_kv_heads * head_dim)."""
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"GroupedQueryAttention: dim={dim} does not split into n_heads={n_heads} equal heads")
        if n_kv_heads < 1 or n_heads % n_kv_heads:
            raise ValueError(f"GroupedQueryAttention: n_heads={n_heads} query heads do not split into "
                             f"n_kv_heads={n_kv_heads} equal groups")
        head_dim = dim // n_heads
        if rope and head_dim % 2:
            raise ValueError(f"GroupedQueryAttention: RoPE rotates pairs, so the head size {head_dim} must be even")
        self.dim, self.n_heads, self.n_kv_heads, self.head_dim, self.rope = dim, n_heads, n_kv_heads, head_dim, rope
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        """x (B, t, dim) -> (B, t, dim), causal; with a cache, after the positions it holds."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}, rope={self.rope}"


def kv_cache_bytes(config: GPTConfig, seq_len: int, batch: int = 1, n_kv_heads: int | None = None,
                   dtype_bytes: int = 4) -> int:
    """Bytes of the keys and values of every layer for seq_len positions: 2 * n_layer * batch *
    n_kv_heads * seq_len * head_dim * dtype_bytes."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: the cache of real models
#
# GPT-2 small at its full context, and LLaMA 2 70B (80 layers, 64 query heads of 128, 8
# key/value heads, float16) at 4096 tokens with and without its grouped-query attention.

# %%
if __name__ == "__main__":
    gpt2 = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    print(f"GPT-2 small, 1024 tokens, float32: {kv_cache_bytes(gpt2, 1024) / 1e6:.1f} MB per sequence")
    llama = GPTConfig(vocab_size=32000, block_size=4096, n_layer=80, n_head=64, n_embd=8192)
    mha = kv_cache_bytes(llama, 4096, dtype_bytes=2)
    gqa = kv_cache_bytes(llama, 4096, n_kv_heads=8, dtype_bytes=2)
    print(f"LLaMA 2 70B, 4096 tokens, float16: {mha / 1e9:.2f} GB with 64 kv heads, "
          f"{gqa / 1e9:.2f} GB with 8 ({mha // gqa}x smaller)")

# %% [markdown]
# ## 5. The cached forward pass of a GPT
#
# `forward_cached(model, idx_new, cache)` runs a module-13 `GPT` on new tokens `idx_new (B,
# t)` that come after the `cache.length` positions the cache holds, and returns their logits
# `(B, t, vocab)`: at prefill (an empty cache) the logits of the whole prompt, in decoding
# those of the one new token. It uses the model's own layers, one by one, as `GPT.forward`
# does, with two changes:
#
# - the position embedding (`model.wpe`, if the model has one) is taken at positions `start
#   .. start + t - 1`, `start = cache.length` read *before* the first layer appends;
# - each block computes `x = x + cached_attention(block.attn, block.ln_1(x), cache, layer)`
#   with `layer` its index in `model.blocks`, then `x = x + block.mlp(block.ln_2(x))`.
#
# Then `model.lm_head(model.ln_f(x))`. Run it under `no_grad()` (the cache holds numbers, not
# a graph). More positions than `block_size` is a ValueError: the model has no position
# beyond it. Dropout is not applied: this is the eval-mode forward of generation (put the
# model in eval mode, as `generate` does, when you compare it with `model(idx)`).
#
# The guarantee the checkpoint tests: for any split of a sequence into a prompt and new
# tokens, the logits of `forward_cached` equal those of `model(whole sequence)` at the same
# positions, up to floating-point rounding (a matrix product of one row and of `T` rows may
# add in different orders).

# %% nbgrader={"grade": false, "grade_id": "forward-cached", "locked": false, "schema_version": 3, "solution": true, "task": false}
def forward_cached(model: GPT, idx_new: Any, cache: KVCache) -> Tensor:
    """Logits (B, t, vocab) of the new tokens idx_new (B, t), which follow the cache's positions."""
    idx = _token_array(idx_new)
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 6. Generation with the cache, and the edge of the context
#
# `generate_cached(model, idx, max_new_tokens, temperature, top_k, top_p, greedy, rng)` takes
# the arguments of `GPT.generate` and returns the same array `(B, T + max_new_tokens)`. With
# the same `rng` (or the same state of module 01's generator) it returns the **same tokens**:
# the logits agree, and `sample_next_token` draws the same random numbers in the same order.
# Like `generate`: a temperature of 0 or less is a ValueError before anything runs, the model
# runs in eval mode under `no_grad`, and its previous mode is put back afterwards, even after
# an error.
#
# 1. a fresh `KVCache.for_model(model, batch)`; **prefill**: `forward_cached` on the prompt
#    (its last `block_size` tokens, as `generate` crops), keep the last position's logits;
# 2. for each new token: sample it from the logits, append it to the tokens; then, unless it
#    was the last one, compute the next logits by **decoding** the new token alone.
#
# **Beyond `block_size`.** When the cache is full (`cache.length == block_size`) and another
# token is needed, `generate` crops the context to the last `block_size` tokens: the oldest
# token drops out and every position shifts by one. The cache cannot follow: with learned
# positions every cached key was computed at a position that has changed, and above the first
# layer every key also read the token that just left. Nothing cached is valid. We keep the
# promise "same tokens as `generate`": `reset()` the cache and prefill the cropped window
# again. From then on each step costs a full forward over `block_size` tokens, exactly what
# `generate` pays, and no more: the cache is exact, and fast only within the context window.
# Production systems choose differently: re-prefill only half a window, so that the next
# `block_size / 2` steps are cheap again (different text, from a shorter context), or train
# models whose attention only ever looks back a fixed window (sliding-window attention),
# so that the oldest cached keys can be dropped without changing the others.

# %% nbgrader={"grade": false, "grade_id": "generate-cached", "locked": false, "schema_version": 3, "solution": true, "task": false}
def generate_cached(model: GPT, idx: Any, max_new_tokens: int, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """idx (B, T) -> (B, T + max_new_tokens): what model.generate returns, with a KV-cache."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: the same text, faster
#
# A small random GPT writes 150 tokens twice, with and without the cache. The tokens are
# identical; the time is not.

# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    config = GPTConfig(vocab_size=64, block_size=200, n_layer=2, n_head=4, n_embd=64)
    model = GPT(config)
    prompt = np.random.default_rng(1).integers(0, config.vocab_size, (1, 10))
    start = time.perf_counter()
    slow = model.generate(prompt, 150, top_k=10, rng=np.random.default_rng(2))
    middle = time.perf_counter()
    fast = generate_cached(model, prompt, 150, top_k=10, rng=np.random.default_rng(2))
    end = time.perf_counter()
    print("same tokens:", np.array_equal(slow, fast))
    print(f"uncached {middle - start:.2f} s, cached {end - middle:.2f} s: {(middle - start) / (end - middle):.1f}x")

# %% [markdown]
# ## Systems insight: what is flat, and what is not
#
# Count the multiply-adds (MACs) of one generated token, with `d = n_embd`, `L = n_layer`,
# `V = vocab_size`, `d_kv = n_kv_heads * head_dim`, and `T` the number of positions the
# new token attends to. Per layer, the projections cost `2 d^2 + 2 d d_kv` (q and out, k and v),
# the MLP `8 d^2` (GELU, hidden `4d`; SwiGLU's three matrices `12 d^2`), and attention `2 d T`
# (the scores `q . k` over `T` keys and the weighted sum of `T` values, `d` per key over all
# heads). The head adds `d V`. So
#
# ```
# cached step:    a + b T        a = L (2 d^2 + 2 d d_kv + 8 d^2) + d V,   b = 2 L d
# uncached step:  T a + b T^2    (the whole context through the whole network, every step)
# ```
#
# The cached step is **not** exactly flat: the new query still reads all `T` cached keys. But
# `b = 2 L d` is tiny next to `a`, which is more than `10 L d^2`: the attention term
# overtakes the rest only when `T` passes `5 d` or so (3,840 tokens for GPT-2's `d = 768`).
# What is flat is `a`, all the work on weights. And since `T a + b T^2 = T (a + b T)`, the
# uncached step costs **exactly `T` times** the cached one: at `T = 256`, 256 times the
# multiply-adds for the same token. Over a whole generation of `N` tokens that is `N^2 / 2`
# token-passes against `N`. The next cell counts both with module 14's `FlopCounter`,
# against the closed forms.
#
# What the count does not show is the memory: each cached step **reads the whole cache**
# (`kv_cache_bytes(config, T)`) and every weight, to do two FLOPs per number read. Large
# models decode at the speed of their memory, not of their arithmetic, which is why GQA
# (fewer bytes to read), int8 caches (module 15's idea applied to K and V) and batching many
# sequences (the weights read once for all of them) are what serving systems are made of.

# %%
if __name__ == "__main__":
    from tinytorch.profiling import FlopCounter

    config = GPTConfig(vocab_size=64, block_size=512, n_layer=2, n_head=4, n_embd=64)
    model = GPT(config).eval()
    d, n_layer, vocab = config.n_embd, config.n_layer, config.vocab_size
    a = n_layer * 12 * d * d + d * vocab
    b = 2 * n_layer * d
    print(f"a = {a:,d} MACs, b = {b} MACs per cached position")
    print(f"{'T':>5} {'cached MACs':>12} {'a + bT':>12} {'uncached MACs':>14} {'Ta + bT^2':>12} {'ratio':>6}")
    tokens = np.random.default_rng(0).integers(0, vocab, (1, 512))
    for length in (16, 64, 256, 512):
        cache = KVCache.for_model(model)
        forward_cached(model, tokens[:, :length - 1], cache)
        with FlopCounter() as cached:
            forward_cached(model, tokens[:, length - 1:length], cache)
        with FlopCounter() as uncached, no_grad():
            model(tokens[:, :length])
        print(f"{length:5d} {cached.macs:12,d} {a + b * length:12,d} {uncached.macs:14,d} "
              f"{length * a + b * length ** 2:12,d} {uncached.macs / cached.macs:5.0f}x")

# %% [markdown]
# ## Checkpoint
#
# `tito check 17` runs `tests/checkpoints/test_17_memoization.py`. It checks `KVCache`
# (append returns every position so far, in order, as views of preallocated buffers; per-layer
# lengths; full and mismatched appends rejected; `reset`; `nbytes` against `kv_cache_bytes`
# and the closed form; `for_model`), `offset_causal_mask` against its definition,
# `repeat_kv` against `torch.repeat_interleave` (values and gradients), and
# `GroupedQueryAttention` (MQA, GQA and MHA, with and without RoPE) against PyTorch's
# `scaled_dot_product_attention` with repeated key/value heads in float64, values and
# gradients, with and without a cache fed in chunks. For GPTs with learned positions and
# with RoPE (and with GQA blocks) it compares the logits of `forward_cached` with the
# uncached forward at every step of a prompt-then-decode run, in float64 and in float32
# (tolerance: a few times the float32 model's own rounding error), checks that
# `generate_cached` returns the same tokens as `GPT.generate` (greedy and sampled, also beyond
# `block_size`), and counts with module 14's `FlopCounter` that a cached step costs `a + bT`
# multiply-adds and a prefill exactly as much as the uncached forward.
