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
# # Module 12: Attention
#
# A convolution (module 09) mixes each pixel with a *fixed* neighbourhood. Text does not work
# like that: in "the animal did not cross the street because **it** was too tired", the word
# that tells you what "it" means is six words back, and in another sentence it would be
# somewhere else. **Attention** lets every position decide, from the data, which other
# positions to read from and how much. It is the one idea of the 2017 transformer ("Attention
# is all you need"), and every GPT is a stack of it.
#
# In this module you build
#
# | name | what it does |
# | --- | --- |
# | `scaled_dot_product_attention(q, k, v, attn_mask, is_causal)` | the attention operation itself |
# | `causal_mask(T)`, `padding_mask(lengths, T)` | "no peeking at the future", "ignore padding" |
# | `mask_to_bias(attn_mask, is_causal, Tq, Tk, dtype)` | any mask as the numbers added to the scores |
# | `split_heads(x, H)`, `merge_heads(x)` | the reshapes that make attention *multi-head* |
# | `MultiheadAttention(embed_dim, num_heads)` | projections + heads + attention: the layer of module 13's GPT |
#
# Everything is written with Tensor operations (`@`, `transpose`, `reshape`, module 02's
# `Softmax`), so module 05 differentiates it for you: no new backward to write. The
# checkpoint compares values *and gradients* with PyTorch's
# `torch.nn.functional.scaled_dot_product_attention` and `torch.nn.MultiheadAttention` in
# float64.

# %%
from __future__ import annotations

import math
from typing import Any

import numpy as np

import tinytorch.autograd  # noqa: F401  (Tensor operations and Softmax record gradients from here on)
from tinytorch.activations import Softmax
from tinytorch.layers import Dropout, Linear, Module
from tinytorch.tensor import Tensor

# %% [markdown]
# ## 1. Attention is a soft dictionary lookup
#
# A Python dictionary maps **keys** to **values**; a lookup with a **query** returns the
# value whose key *equals* the query. Attention is the differentiable version:
#
# 1. compare the query with every key, giving one **score** per key (a dot product: large
#    when the two vectors point the same way);
# 2. turn the scores into **weights** with softmax: positive, summing to 1;
# 3. return the **weighted average of the values**.
#
# A worked example, with three entries whose keys are 2-vectors and whose values are single
# numbers:
#
# | entry | key | value | score `q . k` for `q = [3, 1]` |
# | --- | --- | --- | --- |
# | 0 | `[1, 0]` | 10 | 3 |
# | 1 | `[0, 1]` | 20 | 1 |
# | 2 | `[1, 1]` | 30 | 4 |
#
# A hard lookup (argmax) returns 30, the value of the best key. Softmax of `[3, 1, 4]` is
# `[0.259, 0.035, 0.705]`, so attention returns `0.259 * 10 + 0.035 * 20 + 0.705 * 30 =
# 24.46`: mostly entry 2, some of entry 0, almost nothing of entry 1. Two things make this
# better than a dictionary for learning: the answer changes *smoothly* with the query and the
# keys, so gradients flow into all three (and into whatever produced them), and a query can
# blend several entries.
#
# **In a sequence model** every position plays all three roles. Position `t` has a vector
# `x_t`; three learned matrices turn it into a query ("what am I looking for?"), a key ("what
# do I contain?") and a value ("what do I hand over if chosen?"). Stack the queries of all
# positions as the rows of `Q` (shape `(Tq, d)`), the keys as `K` (`(Tk, d)`), the values as
# `V` (`(Tk, dv)`), and all lookups happen at once, as matrix products:
#
# `scores = Q @ K^T` `(Tq, Tk)`, `weights = softmax(scores)` along the keys, `out = weights @ V` `(Tq, dv)`.
#
# Row `i` of `weights` says how much query `i` reads from each key. When `Q`, `K`, `V` all
# come from the same sequence this is **self-attention**; when the queries come from one
# sequence and the keys and values from another (a translation reading its source sentence)
# it is **cross-attention**, and `Tq != Tk` is perfectly fine.

# %%
if __name__ == "__main__":
    keys = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    values = np.array([10.0, 20.0, 30.0])
    query = np.array([3.0, 1.0])
    scores = keys @ query
    weights = np.exp(scores) / np.exp(scores).sum()
    print("scores:", scores, "| hard lookup:", values[scores.argmax()])
    print("weights:", weights.round(3), "| soft lookup:", round(float(weights @ values), 2))

# %% [markdown]
# ## 2. Why divide by sqrt(d)
#
# Suppose the entries of a query `q` and a key `k` are independent with mean 0 and variance
# 1 (roughly what a well-initialised network produces). Their dot product `q . k = sum_i q_i
# k_i` is a sum of `d` independent terms, each of mean 0 and variance `E[q_i^2] E[k_i^2] =
# 1`, so
#
# `Var(q . k) = d`, a standard deviation of `sqrt(d)`.
#
# With `d = 64` (GPT-2's head size) typical scores are around +-8, and with `d = 1024` around
# +-32. Softmax of numbers that far apart is practically one-hot: `exp(32)` is `8e13` times
# `exp(0)`. A one-hot softmax is **saturated**, and its gradient vanishes: the derivative of
# softmax is `dy_i/dz_j = y_i (delta_ij - y_j)` (module 05), and when one `y` is 1 and the
# rest are 0 every entry of that matrix is 0. The network cannot learn which keys to attend
# to, because nudging the scores changes nothing.
#
# The fix is one number: divide the scores by `sqrt(d)`. Then `Var(q . k / sqrt(d)) = 1`
# whatever the head size, softmax starts in its useful, non-saturated range, and gradients
# flow. That is the "scaled" in **scaled dot-product attention**:
#
# `attention(Q, K, V) = softmax(Q @ K^T / sqrt(d)) @ V`, with `d` the size of a query/key vector.
#
# The cell below measures both facts: the spread of `q . k` grows like `sqrt(d)`, and
# without the scaling the largest weight approaches 1 and the size of softmax's Jacobian
# (its Frobenius norm, the median over 2,000 queries of 32 keys) collapses towards 0, while
# with it both stay put whatever `d` is.

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)
    print("    d | std(q.k) | std(q.k/sqrt d) | max weight: unscaled, scaled | |Jacobian|: unscaled, scaled")
    for d in (4, 16, 64, 256, 1024):
        q_draws = rng.standard_normal((2000, d))
        k_draws = rng.standard_normal((2000, 32, d))
        raw = np.einsum("nd,nkd->nk", q_draws, k_draws)  # 2000 queries, 32 keys each
        row = {}
        for label, s in (("unscaled", raw), ("scaled", raw / np.sqrt(d))):
            y = np.exp(s - s.max(axis=1, keepdims=True))
            y /= y.sum(axis=1, keepdims=True)
            jacobian = np.einsum("ni,ij->nij", y, np.eye(32)) - y[:, :, None] * y[:, None, :]
            row[label] = (y.max(axis=1).mean(), np.median(np.linalg.norm(jacobian, axis=(1, 2))))
        print(f"{d:5d} | {raw.std():8.2f} | {(raw / np.sqrt(d)).std():15.2f} | "
              f"{row['unscaled'][0]:10.3f}, {row['scaled'][0]:6.3f}   | "
              f"{row['unscaled'][1]:13.4f}, {row['scaled'][1]:6.4f}")

# %% [markdown]
# ## 3. Masks: which keys a query may read
#
# **Causal masks.** A language model is trained to predict token `t + 1` from tokens `0..t`.
# For speed we train every position of a sequence at once, in one forward pass. But then,
# without a rule, position `t` could simply *read* token `t + 1` (it is right there, one key
# further on) and copy it: the training loss would fall to almost zero and the model would
# be useless at generation time, when the future does not exist yet. The **causal mask**
# forbids it: query `i` may attend only to keys `j <= i`. As a `(T, T)` boolean matrix that
# is the lower triangle, diagonal included:
#
# ```
# causal_mask(4) =  [[ True, False, False, False],
#                    [ True,  True, False, False],
#                    [ True,  True,  True, False],
#                    [ True,  True,  True,  True]]
# ```
#
# **Padding masks.** Sequences in a batch have different lengths, but a tensor is
# rectangular, so short sequences are padded to the longest with filler tokens. The filler
# must be invisible: no real token may attend to it. `padding_mask(lengths=[3, 1], T=4)`
# marks the real tokens of each sequence, and has shape `(B, 1, 1, T)` so that it broadcasts
# against scores of shape `(B, H, Tq, Tk)`: the same key mask for every head and every query.
# Masks combine with `&`: `causal_mask(T) & padding_mask(lengths, T)`.
#
# **One convention.** In tinytorch a boolean mask is **True where attention is allowed**, the
# convention of `torch.nn.functional.scaled_dot_product_attention`. (Section 6 warns about a
# PyTorch class that uses the opposite one.) A *float* mask is also accepted: it is added to
# the scores as it is, so `0` means "allowed", `-inf` means "forbidden", and anything in
# between is a soft preference (relative-position biases such as ALiBi are float masks).
#
# **How masking works: -inf before softmax.** We do not delete forbidden keys (that would
# make ragged shapes); we set their scores to `-inf`. Softmax then gives them `exp(-inf) =
# 0` weight, *exactly* 0, and the other weights still sum to 1. Module 02's stable softmax
# subtracts the row maximum first; `-inf - max` is still `-inf` as long as the maximum is
# finite. So a mask becomes a **bias** added to the scores: 0 where allowed, `-inf` where
# not. Why not a large negative number such as `-1e4`? It works only while the real scores
# stay far above it (in float16, whose largest number is 65504, that is a real constraint),
# and it hides the trap below: a row with no allowed key would silently average over keys
# it must not read. With `-inf` the zero is exact whatever the scores are.
#
# **The fully-masked-row trap.** What if a query may read *no* key at all? It happens for
# real: with left padding (the pads at the *start* of a sequence, common when generating for
# a batch of prompts) and a causal mask, query 0 of a padded sequence may only see key 0,
# which is padding. Its whole score row is `-inf`, the row maximum is `-inf`, and the stable
# softmax computes `-inf - (-inf) = nan`. The `nan` flows into the output, through the next
# layer into every position, into the loss, and backward spreads it into every weight of the
# model. One padded sequence, and training is dead.
#
# Recent versions of PyTorch's `scaled_dot_product_attention` define the output of such a
# row to be **0**: a query that may read nothing gets nothing, and no gradient. We do the same, by finding those rows *before* the
# softmax: where a row of the bias is `-inf` everywhere, replace it by zeros (so that softmax
# computes something finite), then multiply those rows of the weights by 0 afterwards. The
# checkpoint feeds you such rows.
#
# `mask_to_bias` turns whatever the caller passed (a boolean mask, a float mask, `is_causal`,
# or both) into that one bias array, or `None` when nothing is masked. It is plain numpy: a
# mask is data, never a parameter, so it needs no gradient. Give the bias the scores' dtype,
# so that a float32 model stays float32 (a float64 `-inf` array would silently promote every
# score to float64). With `is_causal=True` and a different number of queries and keys, we
# follow PyTorch and align the triangle at the top left: query `i` sees keys `0..i`
# (`np.tril` of a `(Tq, Tk)` block of ones).

# %% nbgrader={"grade": false, "grade_id": "masks", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_mask(seq_len: int, key_len: int | None = None) -> np.ndarray:
    """Boolean (seq_len, key_len or seq_len): True where key j <= query i (the lower triangle)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def padding_mask(lengths: Any, seq_len: int) -> np.ndarray:
    """Boolean (B, 1, 1, seq_len): True at the real tokens of each sequence (positions < length)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def mask_to_bias(attn_mask: Any, is_causal: bool, tq: int, tk: int, dtype: Any) -> np.ndarray | None:
    """The array added to the (..., tq, tk) scores: 0 where allowed, -inf where not (or the float
    mask itself), with the causal triangle added when is_causal; None when nothing is masked."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 4. Scaled dot-product attention, from Tensor operations
#
# Now the whole operation. The inputs may carry any leading axes, a *batch* of independent
# attention problems: `q (..., Tq, d)`, `k (..., Tk, d)`, `v (..., Tk, dv)`. Module 01's `@`
# already multiplies batches of matrices, so nothing changes:
#
# 1. `scores = (q @ k.transpose(-2, -1)) * (1 / sqrt(d))`: `(..., Tq, d) @ (..., d, Tk)`.
#    Scale with a Python float, which keeps the dtype;
# 2. the bias from `mask_to_bias`, if any: find the fully-masked rows (`np.all(bias == -inf,
#    axis=-1, keepdims=True)`), set them to 0 in the bias, and add the bias to the scores as a
#    constant `Tensor`;
# 3. `weights = Softmax(dim=-1)(scores)`: each query's weights over the keys sum to 1;
#    multiply the fully-masked rows by 0 (a constant 0/1 `Tensor`, only if there are any);
# 4. optional dropout on the weights (`dropout_p > 0`, module 03's `Dropout`): during
#    training, randomly forget some of what a query read; `weights` returned are the ones
#    before dropout;
# 5. `out = weights @ v`: `(..., Tq, Tk) @ (..., Tk, dv) -> (..., Tq, dv)`.
#
# Why no backward? Every step is a Tensor operation (`@`, `transpose`, `*`, `+`) or module
# 02's `Softmax`, and module 05 taught each of them its gradient: the chain rule through
# this graph *is* attention's backward. The masked positions get exactly zero gradient for
# free, because softmax's backward multiplies by the weights, which are 0 there.
#
# Check the shapes first and explain a mismatch in the lesson's terms: `q` and `k` must
# share their last axis `d` (a dot product needs equal lengths), and `k` and `v` their
# number of keys `Tk` (one value per key). A ValueError naming the shapes.

# %% nbgrader={"grade": false, "grade_id": "sdpa", "locked": false, "schema_version": 3, "solution": true, "task": false}
def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Any = None,
                                 is_causal: bool = False, return_weights: bool = False,
                                 dropout_p: float = 0.0) -> Tensor | tuple[Tensor, Tensor]:
    """softmax(q @ k^T / sqrt(d) + mask) @ v: q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv)
    -> (..., Tq, dv), and the weights (..., Tq, Tk) too when return_weights."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: masks and attention
#
# A causal self-attention over five positions: the weights are zero above the diagonal, so
# changing the last token's key and value leaves the first four outputs untouched.

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 5, 4))
    out, weights = scaled_dot_product_attention(Tensor(x), Tensor(x), Tensor(x), is_causal=True,
                                                return_weights=True)
    print("causal weights:\n", weights.data[0].round(2))
    changed = x.copy()
    changed[0, 4] += 100.0
    out2 = scaled_dot_product_attention(Tensor(x), Tensor(changed), Tensor(changed), is_causal=True)
    print("outputs 0-3 unchanged by a future token:", np.array_equal(out.data[0, :4], out2.data[0, :4]))

    mask = causal_mask(4) & padding_mask([4, 2], 4)          # (2, 1, 4, 4)
    print("causal & padding, sequence of length 2:\n", mask[1, 0].astype(int))
    left_padded = np.array([[False, False, True, True]])     # pads first: query 0 may read nothing
    _, w = scaled_dot_product_attention(Tensor(x[:, :4]), Tensor(x[:, :4]), Tensor(x[:, :4]),
                                        attn_mask=causal_mask(4) & left_padded, return_weights=True)
    print("left padding + causal, weights (row 0 is all zeros, not nan):\n", w.data[0].round(2))

# %% [markdown]
# ## 5. Multi-head attention
#
# One attention computes one set of weights per query: one notion of "relevant". A word may
# need several at once: the subject of its verb, the noun an adjective describes, the
# previous occurrence of itself. **Multi-head attention** runs `H` attentions side by side,
# each on its own lower-dimensional projection, and concatenates the results.
#
# Cleverly, this costs no more than one big attention. With model width `E` and `H` heads,
# each head has `D = E / H` dimensions (so `E % H` must be 0, else a ValueError):
#
# 1. project: `q = q_proj(query)`, `k = k_proj(key)`, `v = v_proj(value)`, each
#    `Linear(E, E)`, shapes `(B, T, E)`;
# 2. **split the heads** (`split_heads`): `(B, T, E) -> reshape (B, T, H, D) -> transpose(1,
#    2) -> (B, H, T, D)`. The reshape cuts each `E`-vector into `H` consecutive pieces of
#    `D`; the transpose moves the head axis next to the batch, so that `(B, H)` together are
#    the batch axes of attention;
# 3. attend: `scaled_dot_product_attention(q, k, v, ...)` on `(B, H, Tq, D)`, all heads in
#    parallel in one batched matmul. Each head scales by `1 / sqrt(D)`, its own size;
# 4. **merge the heads** (`merge_heads`): `(B, H, T, D) -> transpose(1, 2) -> (B, T, H, D) ->
#    reshape (B, T, E)`, the exact inverse of the split: head `h` fills columns `h*D` to
#    `(h+1)*D - 1`;
# 5. `out_proj`, one more `Linear(E, E)`, mixes what the heads found.
#
# A mask is passed through unchanged; it broadcasts against `(B, H, Tq, Tk)`: a `(Tq, Tk)`
# causal mask is the same for every sequence and head, a `(B, 1, 1, Tk)` padding mask the
# same for every head and query. `key` defaults to `query` and `value` to `key`
# (self-attention); pass a different `key`/`value` sequence for cross-attention. `dropout`
# applies to the attention weights in training mode only.
#
# Each projection is a `Linear(embed_dim, embed_dim, init="xavier")`: module 03's Xavier
# uniform, on `[-a, a]` with `a = sqrt(6 / (E + E))`, and zero biases. Module 03's default,
# Kaiming, is meant for ReLU layers; `torch.nn.MultiheadAttention` also uses Xavier uniform
# for its stacked q/k/v matrix (module 13's GPT re-initialises them its own way).

# %% nbgrader={"grade": false, "grade_id": "heads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, E) -> (B, num_heads, T, E // num_heads): head h holds columns h*D to (h+1)*D - 1."""
    # YOUR CODE HERE
    raise NotImplementedError()


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, D) -> (B, T, H * D), the inverse of split_heads."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": false, "grade_id": "multihead", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MultiheadAttention(Module):
    """Multi-head attention, batch first: (B, Tq, E) queries attend to (B, Tk, E) keys/values."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, dropout: float = 0.0) -> None:
        """Linear q_proj, k_proj, v_proj, out_proj (embed_dim -> embed_dim); ValueError unless
        num_heads divides embed_dim."""
        super().__init__()
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None,
                attn_mask: Any = None, is_causal: bool = False,
                need_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """(B, Tq, E) -> (B, Tq, E); with need_weights also the per-head weights (B, H, Tq, Tk)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"


# %% [markdown]
# ## 6. The PyTorch mask-convention trap
#
# You will copy weights between tinytorch and PyTorch (the checkpoint does), so know this:
# `torch.nn.MultiheadAttention` uses the **opposite** boolean convention from
# `torch.nn.functional.scaled_dot_product_attention` and from tinytorch:
#
# | | True means |
# | --- | --- |
# | tinytorch masks, `F.scaled_dot_product_attention(attn_mask=)` | attention **allowed** |
# | `nn.MultiheadAttention(attn_mask=)` (bool) | attention **forbidden** |
# | `nn.MultiheadAttention(key_padding_mask=)` | the key is **padding** (forbidden) |
#
# Pass a tinytorch mask to `nn.MultiheadAttention` unchanged and every query reads exactly
# the keys it should not, with no error: the output is just wrong (or `nan`, when a whole row
# ends up masked). Convert with `~mask`: a causal mask becomes `attn_mask=~causal_mask(T)`
# (the strict upper triangle), and a padding mask of shape `(B, 1, 1, T)` becomes
# `key_padding_mask=~mask[:, 0, 0, :]`, shape `(B, T)`. Float masks mean the same in both
# (added to the scores). And `nn.MultiheadAttention` keeps `q_proj`, `k_proj`, `v_proj` as
# one stacked `in_proj_weight` of shape `(3E, E)`: `concatenate([Wq, Wk, Wv])`.

# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    mha = MultiheadAttention(embed_dim=8, num_heads=2)
    print(mha, "parameters:", [name for name, _ in mha.named_parameters()])
    tokens = Tensor(np.random.default_rng(2).standard_normal((2, 5, 8)).astype(np.float32))
    out, per_head = mha(tokens, attn_mask=padding_mask([5, 3], 5), is_causal=True, need_weights=True)
    print("output", out.shape, out.dtype, "| weights", per_head.shape)
    print("head 0 of the short sequence:\n", per_head.data[1, 0].round(2))
    out.sum().backward()
    print("gradient reaches q_proj:", mha.q_proj.weight.grad.shape)

# %% [markdown]
# ## Systems insight: the T x T score matrix
#
# Everything in attention is linear in the sequence length `T` except one thing: the score
# matrix `q @ k^T` has one number for every (query, key) pair, `T x T` **per head**, per
# sequence, per layer, and training keeps it (and the softmax weights of the same size) for
# the backward pass. In float32 with `H = 12` heads (GPT-2 small), for one sequence and one
# layer:
#
# | T | scores `H * T^2 * 4` bytes |
# | --- | --- |
# | 1,024 | 48 MiB |
# | 8,192 | 3 GiB |
# | 32,768 | 48 GiB |
#
# Multiply by 12 layers and a batch, and long contexts do not fit: doubling `T` quadruples
# this memory. Compute grows the same way: `q @ k^T` is `2 T^2 d` floating-point operations
# per head (a multiply and an add for each of `T * T * d` terms) and `weights @ v` another
# `2 T^2 d`, so **`4 T^2 d` FLOPs per head**, `4 T^2 E` over all heads. The four projections
# cost `4 * 2 T E^2 = 8 T E^2`, linear in `T`; attention's quadratic part overtakes them when
# `4 T^2 E > 8 T E^2`, that is when `T > 2E` (1,536 tokens for GPT-2's `E = 768`).
#
# FlashAttention (2022) removes the memory wall without changing the mathematics: it computes
# softmax in tiles with a running maximum and sum (the stable softmax of module 02, done
# incrementally), so the `T x T` matrix is never stored as a whole. The FLOPs stay quadratic.
# Module 17's KV-cache attacks the other cost, generation, where each new token is one query
# against all the cached keys: `T` work per token instead of `T^2`.
#
# The cell computes the table and times our attention for doubling `T` at `d = 64`: the time
# should grow about 4x per doubling once `T` is large enough for the quadratic part to
# dominate.

# %%
if __name__ == "__main__":
    import time

    from tinytorch.autograd import no_grad

    heads = 12
    for t in (1024, 8192, 32768):
        score_bytes = heads * t * t * 4
        print(f"T = {t:6,d}: scores {score_bytes / 2**20:10,.0f} MiB per layer and sequence; "
              f"{4 * t * t * 64 * heads / 1e9:8,.1f} GFLOP of attention (12 heads of d = 64)")
    previous = None
    for t in (512, 1024, 2048, 4096):
        q = Tensor(np.random.default_rng(3).standard_normal((1, t, 64)).astype(np.float32))
        with no_grad():
            scaled_dot_product_attention(q, q, q, is_causal=True)   # warm-up
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                scaled_dot_product_attention(q, q, q, is_causal=True)
                runs.append(time.perf_counter() - start)
        seconds = min(runs)
        ratio = "" if previous is None else f"  ({seconds / previous:.1f}x the previous T)"
        print(f"T = {t:5d}: {seconds * 1e3:8.2f} ms{ratio}")
        previous = seconds

# %% [markdown]
# ## Checkpoint
#
# `tito check 12` runs `tests/checkpoints/test_12_attention.py`. It checks `causal_mask`,
# `padding_mask` and `mask_to_bias` values; compares `scaled_dot_product_attention`'s output
# and the gradients of `q`, `k` and `v` with PyTorch's in float64 on shapes drawn by
# Hypothesis (batch and head axes, `Tq != Tk`), with `is_causal`, boolean, float and padding
# masks, and on fully-masked rows (zeros, never `nan`); checks that the returned weights are
# `softmax(q k^T / sqrt(d))` with rows summing to 1; proves that no position sees the future
# (changing later tokens leaves earlier outputs *exactly* unchanged) and that padding is
# invisible; checks `split_heads`/`merge_heads`; compares `MultiheadAttention` (values,
# per-head weights, and the gradients of the inputs and of every projection's weight and
# bias) with `torch.nn.MultiheadAttention` holding copied weights, for self-attention,
# cross-attention and masks in PyTorch's opposite convention; checks that the projections
# start from Xavier uniform weights (by their statistics: your random numbers are never
# compared with anyone else's, and every other check first replaces them with the test's own
# weights) and that dropout drops attention *weights*, in training mode only; and checks the
# errors for mismatched shapes and for `embed_dim % num_heads != 0`, and gradients by central
# differences.
