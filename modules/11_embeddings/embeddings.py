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
# # Module 11: Embeddings
#
# Module 10 turned text into token ids: `"the cat"` became something like `[1169, 3797]`.
# A network cannot do much with such numbers as *numbers*. Id 3797 is not "more" than id
# 1169, and id 1170 need not mean anything close to id 1169: the ids are names, not
# quantities. What a network needs is a **vector per token**, numbers it can learn so that
# tokens used alike end up with vectors alike.
#
# An **embedding** is exactly that: a table with one learned row per token of the
# vocabulary. To embed a sequence, look up the row of each id. This module builds it and then
# answers the question every transformer must answer next: *where* is each token?
#
# - `one_hot` and the observation that makes embeddings cheap: a one-hot vector times a
#   matrix is a row lookup;
# - `as_indices`, the gatekeeper that checks token ids before they index anything;
# - `embedding(indices, weight)`, a new differentiable primitive with its own `Function`,
#   `EmbeddingFn`, whose backward is a **scatter-add**, and the layer `Embedding`;
# - positions: why attention cannot see word order, the **sinusoidal** encoding of
#   "Attention Is All You Need" (2017) and the **learned** position table of GPT-2 (2019).
#
# Names follow PyTorch (`torch.nn.Embedding`, `torch.nn.functional.embedding`), and the
# checkpoint compares values and gradients with PyTorch in float64.

# %%
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinytorch.autograd import Function, needs_grad, no_grad, record
from tinytorch.layers import Module
from tinytorch.tensor import Tensor, generator

# %% [markdown]
# ## 1. A one-hot vector times a matrix is a row lookup
#
# The textbook way to feed a categorical input to a `Linear` layer is the **one-hot**
# encoding: token `v` out of a vocabulary of `V` becomes a vector of `V` zeros with a single
# 1 at position `v`. A batch of `N` token ids becomes an `(N, V)` matrix, and a `Linear`
# layer without bias multiplies it by a weight `W` of shape `(V, D)`:
#
# ```
# one_hot(ids) @ W        (N, V) @ (V, D) -> (N, D)
# ```
#
# Look at one row of the product: `sum over u of one_hot[n, u] * W[u, :]`. Every term is
# zero except `u = ids[n]`, so the row *is* `W[ids[n], :]`. The whole product is
# `W[ids]`: pick rows. An embedding layer is a linear layer on one-hot inputs, computed the
# sensible way.
#
# The sensible way matters enormously. For GPT-2 (`V = 50,257`, `D = 768`) and one batch of
# 8 sequences of 1,024 tokens (`N = 8,192`):
#
# | | one-hot @ W | W[ids] |
# | --- | --- | --- |
# | input | an (8192, 50257) float32 matrix: **1.65 GB** | 8,192 int64 ids: 64 KB |
# | work | `2 * N * V * D` = **632 GFLOP**, almost all of it `0 * w` | copy `N * D` = 6.3 M numbers |
#
# The result is identical; one costs a second of a big GPU and the other a memory copy.
#
# `one_hot(indices, num_classes)` builds the one-hot array so that we can check this claim.
# The result has shape `indices.shape + (num_classes,)`, like `torch.nn.functional.one_hot`
# (which returns int64; ours takes a `dtype`, float32 by default, because we multiply it).
# Do not build it from `np.eye(num_classes)`: for GPT-2 that identity matrix alone would be
# 10 GB even in float32. Make zeros of the final shape and put a 1 along the last axis
# (`np.put_along_axis`, or fancy indexing). Accept a Tensor, a numpy array or a list.

# %% nbgrader={"grade": false, "grade_id": "one-hot", "locked": false, "schema_version": 3, "solution": true, "task": false}
def one_hot(indices: Any, num_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """An array of shape indices.shape + (num_classes,): 1 at each index, 0 elsewhere."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %%
if __name__ == "__main__":
    import time

    rng = np.random.default_rng(0)
    vocab, dim, n_tokens = 10_000, 128, 512
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    ids = rng.integers(0, vocab, n_tokens)

    start = time.perf_counter()
    by_matmul = one_hot(ids, vocab) @ table
    matmul_seconds = time.perf_counter() - start
    start = time.perf_counter()
    by_lookup = table[ids]
    lookup_seconds = time.perf_counter() - start
    print("one_hot(ids) @ W == W[ids]:", np.array_equal(by_matmul, by_lookup))
    print(f"V={vocab}, D={dim}, N={n_tokens}: one-hot matmul {matmul_seconds * 1e3:.1f} ms "
          f"(one-hot matrix {one_hot(ids, vocab).nbytes / 2**20:.0f} MiB), "
          f"lookup {lookup_seconds * 1e3:.3f} ms")

# %% [markdown]
# ## 2. Token ids in, checked: `as_indices`
#
# Every function of this module takes token ids in whatever form the caller has them: a
# Tensor of ints (what module 10's ids become), a numpy integer array, or a (nested) Python
# list. `as_indices(indices, num_embeddings)` turns any of them into a numpy integer array
# and refuses anything that is not a valid row number:
#
# - **not integers** (floats, booleans) -> `TypeError` naming the dtype. A float id such as
#   `2.0` usually means the ids went through float arithmetic somewhere (or `Tensor([2.0])`
#   made them float32); truncating silently would hide that bug. Booleans would index as a
#   *mask* in numpy, a different operation altogether. One exception: an empty input (`[]`,
#   which numpy reads as float64) is simply no ids at all; return an empty int64 array.
# - **out of range** -> `IndexError` that names the offending id and `num_embeddings`.
#   Valid ids are `0 <= id < num_embeddings`.
# - **negative ids are out of range too.** numpy happily reads `W[-1]` as the *last* row,
#   so a stray `-1` (a padding marker, or the `-100` "ignore" label of a loss) would quietly
#   fetch some real token's vector and train it. PyTorch raises for negative ids, and so do
#   we.
#
# Any integer dtype is fine (int64, int32, uint8...): numpy indexes with all of them. Check
# the range with one `min()` and one `max()` over the array, not with a Python loop, and
# report the first id that is out of range (`np.flatnonzero` finds it).

# %% nbgrader={"grade": false, "grade_id": "as-indices", "locked": false, "schema_version": 3, "solution": true, "task": false}
def as_indices(indices: Any, num_embeddings: int) -> np.ndarray:
    """indices as an integer numpy array with 0 <= id < num_embeddings (TypeError / IndexError otherwise)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 3. Forward: indexing, as a new primitive
#
# `embedding(indices, weight)` is the lookup of section 1 with shapes in general:
#
# | tensor | shape | meaning |
# | --- | --- | --- |
# | `indices` | any shape `S`, e.g. `(B, T)` | token ids, a batch of B sequences of T tokens |
# | `weight` | `(V, D)` | one row of D numbers per token of the vocabulary |
# | output | `S + (D,)`, e.g. `(B, T, D)` | the row of each id |
#
# numpy does exactly this with `np.take(weight, ids, axis=0)` (or `weight[ids]`): every id
# is replaced by its row, whatever the shape of `ids`. `np.take` always returns a new array,
# even for a single id; indexing copies too as long as the ids are an array (`as_indices`
# makes one), but a plain integer, `weight[3]`, gives a *view* of row 3, which would change
# under the optimizer's in-place updates.
#
# ### Why a new `Function`?
#
# Module 05 can already differentiate `weight[ids]`: its `GetItem` scatters the gradient
# back, repeated indices included (its lesson pointed ahead to this module). So why a
# primitive of our own, like module 09's `Conv2dFn`?
#
# - **The checks.** `as_indices` runs first: a bad id becomes a clear error instead of
#   numpy's wrap-around.
# - **A home for a fast backward.** Embedding tables are the largest matrices of a language
#   model, and their gradient is special (section 4). PyTorch has a dedicated embedding
#   backward kernel, and an option (`sparse=True`) to return only the touched rows. A
#   Function of our own is where such a backward lives; the generic `GetItem` knows nothing
#   about rows.
#
# Recording follows module 09 exactly: compute the value with numpy; then, *only if*
# `needs_grad(weight)` (recording is on *and* the weight requires grad), build an
# `EmbeddingFn(weight, ids)` and `record` it on the output. The ids are not an input of
# the Function (they are integers: there is no gradient with respect to an id), so its only
# input is the weight and it keeps the checked id array as `self.indices`.
#
# Check that `weight` is 2-D (`(V, D)`) and raise a ValueError naming its shape otherwise.
# Wrap a numpy `weight` in a Tensor (it will not require grad).

# %%
class EmbeddingFn(Function):
    """embedding(indices, weight): the one input is the weight; the checked ids are kept as `indices`."""

    def __init__(self, weight: Tensor, indices: np.ndarray) -> None:
        super().__init__(weight)
        self.indices = indices


# %% nbgrader={"grade": false, "grade_id": "embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
def embedding(indices: Any, weight: Tensor) -> Tensor:
    """The rows of weight (V, D) picked by indices of shape S: a Tensor of shape S + (D,)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 4. Backward: a scatter-add
#
# Call the output `E` (shape `S + (D,)`) and the gradient arriving at it `G = dL/dE`, same
# shape. Flatten the ids to `N` positions: `E[n] = W[ids[n]]`. Row `v` of the table was
# copied to *every* position where `ids[n] == v`, so (one value used in many places,
# module 05's accumulation again) its gradient is the sum of what those positions send back:
#
# ```
# dL/dW[v] = sum over n with ids[n] == v of G[n]          (zero for ids not in the batch)
# ```
#
# Section 1 gives the same answer another way: `E = one_hot @ W`, and module 05's matmul
# rule says `dL/dW = one_hot.T @ G`, a `(V, N) @ (N, D)` product whose row `v` adds up the
# `G[n]` with `ids[n] == v`. Correct, and as wasteful as the forward was: an `(N, V)` matrix
# of zeros and `2 * N * V * D` flops to add up `N` rows. We want the sum without the matrix.
#
# ### The trap: `dW[ids] += G`
#
# The natural numpy line is *wrong* whenever an id repeats, and in text ids always repeat
# ("the" appears in every sentence). `dW[ids] += G` is shorthand for
# `dW[ids] = dW[ids] + G`: numpy first reads the rows (`dW[ids]`, a copy, one row per
# position), adds `G`, then writes the rows back one after another. If id 7 appears three
# times, row 7 is written three times, each time with *one* contribution added to the old
# value, and the last write wins: two of the three gradients are lost. No error, no warning,
# just a model that trains worse. (The example below shows it.)
#
# `np.add.at(dW, ids, G)` is the *unbuffered* version: it performs `dW[ids[n]] += G[n]`
# for every `n` in turn, so repeated ids accumulate. This is a **scatter-add**, the adjoint of
# the gather the forward did (as `scatter_windows` was the adjoint of `sliding_windows` in
# module 09). Flatten first: `np.add.at(dW, ids.reshape(-1), G.reshape(N, D))`, so one call
# handles any shape of ids. Start from zeros of the weight's shape, in `np.result_type(grad, weight.dtype)`,
# and return a 1-tuple: one gradient for the one input.

# %% nbgrader={"grade": false, "grade_id": "embedding-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _embedding_backward(self: EmbeddingFn, grad: np.ndarray) -> tuple[np.ndarray]:
    """dL/dweight: zeros of weight's shape with every G[n] added to row ids[n] (repeats accumulate)."""
    (weight,) = self.inputs
    # YOUR CODE HERE
    raise NotImplementedError()


EmbeddingFn.backward = _embedding_backward  # a method of EmbeddingFn, written in its own cell

# %% [markdown]
# The example shows the trap, then measures the two correct ways to compute the same
# gradient: the dense `one_hot.T @ G` and the scatter-add. `tracemalloc` sees numpy's
# allocations, so it can report the peak memory of each.

# %%
if __name__ == "__main__":
    import time
    import tracemalloc

    ids = np.array([2, 2, 2, 0])
    g = np.ones((4, 3))
    wrong = np.zeros((4, 3))
    wrong[ids] += g
    right = np.zeros((4, 3))
    np.add.at(right, ids, g)
    print("ids [2, 2, 2, 0], G all ones.  dW[ids] += G gives row 2 =", wrong[2],
          "  np.add.at gives row 2 =", right[2])

    def measure(function) -> tuple[np.ndarray, float, float]:
        """(result, seconds, peak MiB allocated while it ran)."""
        tracemalloc.start()
        start = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result, seconds, peak / 2**20

    rng = np.random.default_rng(1)
    vocab, dim, n_tokens = 5_000, 64, 4_096
    ids = rng.integers(0, vocab, n_tokens)
    upstream = rng.standard_normal((n_tokens, dim)).astype(np.float32)
    weight = Tensor(np.zeros((vocab, dim), dtype=np.float32), requires_grad=True)

    dense, dense_s, dense_mib = measure(lambda: one_hot(ids, vocab).T @ upstream)
    sparse, sparse_s, sparse_mib = measure(lambda: EmbeddingFn(weight, ids).backward(upstream)[0])
    print(f"dL/dW for V={vocab}, D={dim}, N={n_tokens}: equal = {np.allclose(dense, sparse, atol=1e-5)}")
    print(f"  one_hot.T @ G : {dense_s * 1e3:7.1f} ms, peak {dense_mib:6.1f} MiB (the one-hot matrix)")
    print(f"  np.add.at     : {sparse_s * 1e3:7.1f} ms, peak {sparse_mib:6.1f} MiB (just dW)")
    touched = len(np.unique(ids))
    print(f"  rows with a nonzero gradient: {touched} of {vocab}; the changed numbers alone would be "
          f"{touched * dim * 4 / 2**20:.1f} MiB")

# %% [markdown]
# ## 5. The layer: `Embedding`
#
# **`Embedding(num_embeddings, embedding_dim)`** owns `weight`, a float32 Tensor of shape
# `(num_embeddings, embedding_dim)` with `requires_grad=True`, and its forward is
# `embedding(indices, self.weight)`. Keep the two sizes as attributes named like PyTorch's.
#
# *Initialisation.* PyTorch draws an embedding table from the standard normal `N(0, 1)`,
# and so do we (from `tinytorch.tensor.generator()`, so that `manual_seed` makes it
# repeatable). Unlike `Linear`, there is no fan-in to scale by: each output is one row, not
# a sum of `fan_in` products, so unit variance in means unit variance out. Language models
# often choose smaller rows: GPT-2 starts its tables at `N(0, 0.02)`, and module 13's GPT
# re-initialises its embeddings that way.

# %% nbgrader={"grade": false, "grade_id": "embedding-layer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Embedding(Module):
    """A learned table of num_embeddings rows of embedding_dim numbers, looked up by token id."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        """weight: float32 (num_embeddings, embedding_dim) drawn from N(0, 1), requires_grad."""
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, indices: Any) -> Tensor:
        """The rows of self.weight for indices of shape S: a Tensor of shape S + (embedding_dim,)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


# %% [markdown]
# ### Try it
#
# A batch of 2 sequences of 5 tokens becomes a `(2, 5, 4)` tensor. The gradient of one table
# entry agrees with central differences, and the row of a token used three times gets three
# contributions.

# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    emb = Embedding(10, 4)
    print(emb, "weight", emb.weight.shape, emb.weight.dtype)
    ids = Tensor([[1, 7, 7, 3, 7], [0, 1, 2, 3, 4]])
    out = emb(ids)
    print("embedding of ids of shape", ids.shape, "->", out.shape)

    emb.weight.data = emb.weight.data.astype(np.float64)  # float64 for an exact comparison
    probe = np.random.default_rng(2).standard_normal((2, 5, 4))
    emb(ids).backward(probe)
    h = 1e-6
    with no_grad():
        emb.weight.data[7, 2] += h
        up = float(np.sum(emb(ids).data * probe))
        emb.weight.data[7, 2] -= 2 * h
        down = float(np.sum(emb(ids).data * probe))
        emb.weight.data[7, 2] += h
    print(f"dL/dW[7, 2]: autograd {emb.weight.grad.data[7, 2]:.8f}, central differences {(up - down) / (2 * h):.8f}, "
          f"sum of the three probes {probe[0, [1, 2, 4], 2].sum():.8f}")

# %% [markdown]
# ## 6. Why attention needs positions
#
# Module 12's self-attention mixes the vectors of a sequence: each output is a weighted
# average of all the inputs, with weights from dot products between them. Nothing in that
# recipe knows *where* a vector sits. Shuffle the input rows and the outputs are the same
# rows, shuffled the same way (*permutation equivariance*). So "the dog bit the man" and
# "the man bit the dog" give the same set of output vectors; after averaging them (or to any
# layer that treats positions alike) the two sentences are identical. A recurrent network
# reads tokens in order and knows positions for free; attention reads them all at once and
# must be told.
#
# The cure is as simple as it sounds: **add a vector that depends on the position** to each
# token's embedding, `x[b, t] = token_embedding(ids[b, t]) + position_vector(t)`. "dog" at
# position 1 and "dog" at position 4 now differ, and attention can tell them apart. The next
# two sections give two ways to choose the position vectors.
#
# The example below uses a bare-bones attention in numpy (module 12 builds the real one) and
# shows both facts: the shuffled sentence gives the shuffled outputs, and adding positions
# breaks the tie.

# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    def bare_attention(x: np.ndarray) -> np.ndarray:
        """softmax(x x^T / sqrt(d)) x for one sequence x (T, d): no projections, no mask."""
        scores = x @ x.T / math.sqrt(x.shape[-1])
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return (weights / weights.sum(axis=-1, keepdims=True)) @ x

    words = {"the": 0, "dog": 1, "bit": 2, "man": 3}
    sentence = [words[w] for w in "the dog bit the man".split()]
    shuffled = [words[w] for w in "the man bit the dog".split()]
    permutation = [0, 4, 2, 3, 1]  # shuffled[t] == sentence[permutation[t]]
    manual_seed(0)
    emb = Embedding(len(words), 8)
    out = bare_attention(emb(sentence).data)
    out_shuffled = bare_attention(emb(shuffled).data)
    print("without positions: outputs of the shuffled sentence are the shuffled outputs:",
          np.allclose(out_shuffled, out[permutation]),
          "| mean-pooled sentences equal:", np.allclose(out.mean(axis=0), out_shuffled.mean(axis=0)))

# %% [markdown]
# ## 7. Sinusoidal positions ("Attention Is All You Need", 2017)
#
# Vaswani et al. chose fixed vectors, nothing to learn. For position `p` and dimension
# `D`, pair up the coordinates and give pair `i` (coordinates `2i` and `2i + 1`) a sine and
# a cosine of the same angle:
#
# ```
# PE[p, 2i]     = sin(p * w_i)
# PE[p, 2i + 1] = cos(p * w_i)          with  w_i = 1 / 10000^(2i / D)
# ```
#
# **Wavelengths in a geometric series.** Pair `i` repeats every `2 pi / w_i` positions: from
# `2 pi` (about 6 positions, pair 0) up to almost `10000 * 2 pi` (the last pair), each pair
# slower than the one before by the same factor `10000^(2 / D)`. Read it like a clock with
# `D / 2` hands turning at geometrically spaced speeds, or like the bits of a binary
# counter, where bit `k` flips every `2^k` steps: the fast pairs tell neighbours apart, the
# slow pairs tell the beginning of a long text from its end, and no two positions (within
# tens of thousands) share all their hands. The values stay in `[-1, 1]` however long the
# text, so they add to embeddings without swamping them.
#
# **Relative offsets are rotations.** Write pair `i` at position `p` as the point
# `(sin a, cos a)` with `a = p * w_i`. Moving `k` positions adds `b = k * w_i` to the angle,
# and the addition formulas give
#
# ```
# [sin(a + b)]   [ cos b   sin b] [sin a]
# [cos(a + b)] = [-sin b   cos b] [cos a]
# ```
#
# a rotation by `b` that depends on the offset `k` and *not* on `p`. So "`k` tokens back"
# is the same linear map at every position, something a layer can learn once, and the dot
# product `PE[p] . PE[p + k] = sum over i of cos(k * w_i)` depends on the offset only. (Module
# 13's RoPE takes this idea further: it rotates the queries and keys themselves.)
#
# **When `D` is odd** the last coordinate has no partner: it is a sine, `PE[p, D - 1] =
# sin(p * w_i)` with `2i = D - 1`. So there are `ceil(D / 2)` sines and `floor(D / 2)`
# cosines.
#
# **Compute in float64, store in float32.** The angle `p * w_i` can reach the thousands; in
# float32 (7 significant digits) its rounding error grows with `p`: by position 2,000 the
# sines are off by about 1e-4, over a thousand times float32's own rounding of numbers near 1
# (the checkpoint notices). Work out the angles in float64, take sines and cosines, and
# convert the finished `(max_len, D)` table to float32 at the end. All of it vectorised:
# an `(max_len, 1)` column of positions times a `(1, ceil(D / 2))` row of frequencies is
# every angle at once.
#
# **`SinusoidalPositionalEncoding(max_len, dim)`** computes the table once, in `__init__`,
# as `self.pe` (a numpy array: a fixed *buffer*, not a parameter, so the module has no
# parameters), and its forward adds the first `T` rows to `x` of shape `(B, T, dim)` (or any
# `(..., T, dim)`). Convert the rows to `x`'s dtype first, so float64 stays float64 and
# float32 stays float32. The addition is a Tensor operation, so the gradient flows to `x`
# (and to the embedding before it) with nothing new to write.
#
# `_sequence_length(x, max_len, dim, owner)` is the check both position modules share: `x`
# needs at least 2 axes, its last axis must be `dim`, and `T = x.shape[-2]` must not exceed
# `max_len` (the table has no row for position `max_len`). Raise a ValueError naming the
# shapes, and return `T`.

# %% nbgrader={"grade": false, "grade_id": "sinusoidal", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sinusoidal_positional_encoding(max_len: int, dim: int) -> np.ndarray:
    """The float32 (max_len, dim) table PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(same)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def _sequence_length(x: Tensor, max_len: int, dim: int, owner: str) -> int:
    """T = x.shape[-2] for x (..., T, dim), or a ValueError when x does not fit a (max_len, dim) table."""
    # YOUR CODE HERE
    raise NotImplementedError()


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed sinusoidal table to x (..., T, dim); no parameters."""

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.dim = dim
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """x + PE[:T], the table rows in x's dtype; ValueError if T > max_len."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.dim}"


# %%
if __name__ == "__main__":
    pe = sinusoidal_positional_encoding(50, 16)
    print("PE[0] =", pe[0])
    wavelengths = 2 * np.pi * 10000.0 ** (np.arange(0, 16, 2) / 16)
    print("wavelengths of the 8 pairs (positions):", ", ".join(f"{w:.1f}" for w in wavelengths))
    p, k, w = 9, 5, 10000.0 ** (-2 / 16)  # pair i = 1
    rotation = np.array([[np.cos(k * w), np.sin(k * w)], [-np.sin(k * w), np.cos(k * w)]])
    print(f"pair 1 at position {p + k} == rotation(k={k}) @ pair 1 at position {p}:",
          np.allclose(pe[p + k, 2:4], rotation @ pe[p, 2:4], atol=1e-6))
    print("PE[p] . PE[p + 3] for p = 0, 10, 40:", [round(float(pe[q] @ pe[q + 3]), 4) for q in (0, 10, 40)])

    positions = SinusoidalPositionalEncoding(max_len=16, dim=8)
    with_positions = bare_attention(emb(sentence).data + positions.pe[:5])
    shuffled_with_positions = bare_attention(emb(shuffled).data + positions.pe[:5])
    print("with positions, mean-pooled sentences equal:",
          np.allclose(with_positions.mean(axis=0), shuffled_with_positions.mean(axis=0)))

# %% [markdown]
# ## 8. Learned positions (GPT-2)
#
# GPT-2 simply *learns* its position vectors: a second embedding table `wpe` with one row per
# position, `(1024, 768)` for the smallest model, looked up with the ids `0, 1, ..., T - 1`
# and added to the token embeddings. It costs parameters (786,432 for GPT-2 small, 0.6% of
# the model) and it cannot go past its last row: a model trained with 1,024 positions has no
# vector for position 1,024, hence the ValueError for `T > max_len`. The sinusoids can at
# least be computed for any position (whether a model trained on short texts *uses* them
# well on long ones is another matter). In exchange the table can learn whatever the data
# needs. Both work about equally well in practice, and GPT-2 chose learning.
#
# **`LearnedPositionalEmbedding(max_len, dim)`** owns `weight` `(max_len, dim)`, float32,
# `requires_grad=True`, drawn from `N(0, 0.02)` as GPT-2 does (its positions start as small
# nudges to the token embeddings). Its forward is `x + embedding(arange(T), weight)`: the
# embedding primitive of section 3 with the ids `0 .. T-1`. Everything is differentiable
# already: `+` broadcasts the `(T, dim)` rows over the batch, so module 05's `unbroadcast`
# sums the gradient over the batch, and `EmbeddingFn` puts it in rows `0 .. T-1` of
# `weight.grad` (the rows past `T` get zero: those positions were not used).

# %% nbgrader={"grade": false, "grade_id": "learned-positions", "locked": false, "schema_version": 3, "solution": true, "task": false}
class LearnedPositionalEmbedding(Module):
    """Adds a learned (max_len, dim) table's first T rows to x (..., T, dim)."""

    def __init__(self, max_len: int, dim: int) -> None:
        """weight: float32 (max_len, dim) drawn from N(0, 0.02), requires_grad."""
        super().__init__()
        self.max_len = max_len
        self.dim = dim
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """x + weight[:T], differentiable with respect to both; ValueError if T > max_len."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.dim}"


# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    tokens, positions = Embedding(50, 8), LearnedPositionalEmbedding(16, 8)
    batch = Tensor(np.random.default_rng(3).integers(0, 50, (4, 6)))
    x = positions(tokens(batch))  # GPT-2's input: token rows + position rows, (4, 6, 8)
    x.sum().backward()
    print("input to the first block:", x.shape)
    print("positions.weight.grad rows 0-5 (each used once per sequence):", positions.weight.grad.data[:6, 0],
          " rows 6-15:", np.abs(positions.weight.grad.data[6:]).max())

# %% [markdown]
# ## Systems insight: the biggest matrices, and their sparse gradients
#
# **Parameters and memory.** The token table has `V * D` numbers, the position table
# `max_len * D`. For the GPT-2 family (`V = 50,257`, `max_len = 1,024`), the cell computes
# the tables' size and their share of the whole model (a GPT-2 layer has `12 D^2 + 13 D`
# parameters: attention `4 D^2 + 4 D`, MLP `8 D^2 + 5 D`, two LayerNorms `4 D`). In GPT-2
# small the token table alone is 38.6 M of 124 M parameters, 31%, 154 MB in float32; as
# models grow, `D^2` layers outgrow it and its share falls. That is one reason GPT-2 *ties*
# the token table to the output layer (module 13): the same `(V, D)` matrix turns ids into
# vectors and vectors back into scores over the vocabulary, saving another 38.6 M numbers.
#
# **Gradient density.** One batch of `B * T` tokens touches at most `B * T` distinct rows,
# and in real text far fewer: a few words ("the", ",", ".") make up a large share of all
# tokens (Zipf's law). The cell draws 8 x 1,024 token ids from a Zipf-like distribution over
# GPT-2's vocabulary and counts the rows with a nonzero gradient: under 10% of the table
# (even uniformly random ids touch only about 15%). The other 90% of `weight.grad` are exact
# zeros, yet our dense gradient stores and adds all 50,257 rows every step (154 MB), and
# Adam's moment estimates (module 06) are dense too: each step updates every row, because
# Adam keeps moving a row on its momentum even when its gradient is zero. PyTorch's `nn.Embedding(sparse=True)` returns only the touched rows
# (with `SparseAdam` to use them); frameworks that train huge recommendation tables depend
# on it.

# %%
if __name__ == "__main__":
    vocab, max_len = 50_257, 1_024
    print(f"{'model':>12} {'D':>5} {'token table':>12} {'positions':>10} {'whole model':>12} "
          f"{'tables share':>12} {'token table MB (fp32)':>22}")
    for name, dim, layers in (("GPT-2 small", 768, 12), ("medium", 1024, 24), ("large", 1280, 36), ("XL", 1600, 48)):
        token_params, position_params = vocab * dim, max_len * dim
        total = token_params + position_params + layers * (12 * dim * dim + 13 * dim) + 2 * dim
        print(f"{name:>12} {dim:>5} {token_params / 1e6:>10.1f} M {position_params / 1e6:>8.2f} M "
              f"{total / 1e6:>10.0f} M {(token_params + position_params) / total:>12.1%} "
              f"{token_params * 4 / 1e6:>22.0f}")

    rng = np.random.default_rng(4)
    n_tokens = 8 * 1024
    zipf = 1.0 / np.arange(1, vocab + 1)
    for label, ids in (("Zipf-like text", rng.choice(vocab, n_tokens, p=zipf / zipf.sum())),
                       ("uniform ids", rng.integers(0, vocab, n_tokens))):
        touched = len(np.unique(ids))
        print(f"{label:>15}: a batch of {n_tokens} tokens touches {touched} rows = "
              f"{touched / vocab:.1%} of the table; the dense gradient is {vocab * 768 * 4 / 1e6:.0f} MB, "
              f"the touched rows {touched * 768 * 4 / 1e6:.1f} MB")

# %% [markdown]
# ## Checkpoint
#
# `tito check 11` runs `tests/checkpoints/test_11_embeddings.py`. It checks `one_hot` and
# that `one_hot(ids) @ W` equals the embedding; compares `Embedding` and `embedding` with
# `torch.nn.functional.embedding` in float64, values and the weight's gradient, for 1-D,
# 2-D and 3-D id arrays drawn by Hypothesis with many repeated ids; checks the scatter-add
# with a known answer, accumulation over two backward calls, a tied use of the same table
# (lookup and output layer), and central differences on a small table; checks the weight's
# shape, dtype, `N(0, 1)` statistics and reproducibility; ids given as a Tensor, a numpy
# array or a list; `IndexError` for an out-of-range id, negative ones included, `TypeError`
# for float and boolean ids, and `ValueError` for a weight that is not 2-D; that nothing is
# recorded under `no_grad()` or for a weight that does not require grad; the sinusoidal
# table against the formula (odd `dim` too), its known first row `[0, 1, 0, 1, ...]` and the
# rotation property; `SinusoidalPositionalEncoding` (adds the table, keeps the dtype, has no
# parameters); and `LearnedPositionalEmbedding` (`N(0, 0.02)` statistics and
# reproducibility, gradients of `x` and `weight` equal torch's). Both position modules take
# `x` of shape `(B, T, dim)` or a single sequence `(T, dim)`, accept `T == max_len` and raise
# a `ValueError` for `T > max_len` or a last axis other than `dim`.
