"""Checkpoint 11: embeddings (lookup forward, scatter-add backward) and positional encodings.

Oracles: torch.nn.functional.embedding and torch.nn.functional.one_hot in float64 (values
and the weight's gradient) on id arrays drawn by Hypothesis with many repeated ids, torch
autograd for the learned position table and a tied table, central differences on a small
table, the sinusoidal formula evaluated here in float64, and known values (PE[0], a
scatter-add by hand). Random initialisations are judged by their statistics and by
reproducibility under manual_seed, never against the reference's draws.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tinytorch.autograd import no_grad
from tinytorch.embeddings import (
    Embedding,
    EmbeddingFn,
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    embedding,
    one_hot,
    sinusoidal_positional_encoding,
)
from tinytorch.tensor import Tensor, manual_seed

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12


def float64_embedding(num_embeddings: int, embedding_dim: int, seed: int) -> Embedding:
    """An Embedding whose weight is a float64 copy of random numbers (for exact comparisons)."""
    layer = Embedding(num_embeddings, embedding_dim)
    layer.weight.data = np.random.default_rng(seed).standard_normal((num_embeddings, embedding_dim))
    return layer


def torch_embedding(ids: np.ndarray, weight: np.ndarray, upstream: np.ndarray):
    """torch's embedding output and the weight's gradient for dL/d(out) = upstream."""
    tw = torch.tensor(weight, requires_grad=True)
    out = F.embedding(torch.tensor(ids, dtype=torch.int64), tw)
    out.backward(torch.tensor(upstream))
    return out.detach(), tw.grad


def pe_formula(max_len: int, dim: int) -> np.ndarray:
    """The sinusoidal table, one column at a time, in float64."""
    table = np.zeros((max_len, dim))
    positions = np.arange(max_len, dtype=np.float64)
    for column in range(dim):
        pair = column // 2
        angle = positions / 10000.0 ** (2 * pair / dim)
        table[:, column] = np.sin(angle) if column % 2 == 0 else np.cos(angle)
    return table


# -- predicates: judged on the trusted side over the values your code produced ---------------

def mentions_all(text: str, *needles: str) -> bool:
    """Does an error message name every one of `needles`?"""
    return isinstance(text, str) and all(needle in text for needle in needles)


def same_arrays(pair) -> bool:
    """Two draws with the same shape and the same numbers."""
    first, second = (np.asarray(a) for a in pair)
    return first.shape == second.shape and bool(np.array_equal(first, second))


def normal_sample(sample, std: float, shape: tuple[int, ...]) -> bool:
    """A float32 table of `shape` whose numbers look like draws from N(0, std^2).

    With n >= 32,768 draws the standard error of the mean is std / sqrt(n) <= 0.0055 std and that
    of the standard deviation about 0.004 std: bounds of 5% of std are over 9 standard errors
    wide, so any correct draw passes whatever its seed, and N(0, 1) vs N(0, 0.02) or a uniform
    draw (std 0.29, mean 0.5) fail by far.
    """
    sample = np.asarray(sample)
    values = sample.astype(np.float64)
    return (sample.shape == tuple(shape) and sample.dtype == np.float32
            and abs(values.mean()) < 0.05 * std and abs(values.std() / std - 1) < 0.05)


@st.composite
def tables_and_ids(draw):
    """(num_embeddings, dim, ids): a small vocabulary, so that ids repeat a lot, and 1-3-D ids."""
    vocab = draw(st.integers(1, 6))
    dim = draw(st.integers(1, 4))
    ids = draw(hnp.arrays(np.int64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                          elements=st.integers(0, vocab - 1)))
    return vocab, dim, ids


# -- one-hot and the lookup -----------------------------------------------------------------


def test_one_hot_matches_torch():
    """one_hot(ids, V) puts a single 1 at each id along a new last axis, like torch's one_hot"""
    ids = np.array([[0, 3, 3], [1, 4, 0]])
    got = one_hot(ids, 5)
    expect_equal(got.shape, (2, 3, 5), call="one_hot(ids of shape (2, 3), 5).shape",
                 hint="the result has shape ids.shape + (num_classes,)")
    expect_equal(str(got.dtype), "float32", call="one_hot(ids, 5).dtype", hint="the default dtype is float32")
    expect_equal(got, F.one_hot(torch.tensor(ids), 5).numpy().astype(np.float32),
                 call="one_hot(np.array([[0, 3, 3], [1, 4, 0]]), 5)",
                 hint="zeros of the final shape, then a 1 at [..., id] (np.put_along_axis or fancy indexing)")


def test_one_hot_times_table_is_the_lookup():
    """one_hot(ids) @ weight equals the Embedding's lookup of ids"""
    layer = float64_embedding(7, 3, seed=0)
    ids = np.array([[6, 0, 2, 2], [1, 6, 6, 5]])
    expect_close(layer(ids), one_hot(ids, 7, dtype=np.float64) @ layer.weight.data, rtol=RTOL, atol=ATOL,
                 call="Embedding(7, 3)(ids) vs one_hot(ids, 7) @ weight",
                 hint="row n of one_hot @ W is W[ids[n]]: the embedding is a row lookup")


# -- forward --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6,), (2, 5), (2, 3, 4)], ids=["1-D", "2-D", "3-D"])
def test_forward_matches_torch(shape):
    """Embedding's output equals torch.nn.functional.embedding, of shape ids.shape + (dim,)"""
    layer = float64_embedding(9, 4, seed=sum(shape))
    ids = np.random.default_rng(len(shape)).integers(0, 9, shape)
    out = layer(ids)
    call = f"Embedding(9, 4)(ids of shape {shape})"
    expect_equal(tuple(out.shape), shape + (4,), call=f"{call}.shape",
                 hint="every id becomes its row: the output shape is ids.shape + (embedding_dim,)")
    expect_close(out, F.embedding(torch.tensor(ids), torch.tensor(layer.weight.data)), rtol=RTOL, atol=ATOL,
                 call=call, hint="np.take(weight, ids, axis=0) (or weight[ids]) picks the rows")


def test_ids_as_tensor_numpy_array_or_list():
    """Ids may be a Tensor of ints, a numpy integer array (int64 or int32) or a nested list"""
    layer = float64_embedding(6, 3, seed=1)
    ids = [[5, 0, 1], [1, 1, 4]]
    expected = layer.weight.data[np.array(ids)]
    for name, given_ids in (("a nested list", ids), ("a numpy int64 array", np.array(ids)),
                            ("a numpy int32 array", np.array(ids, dtype=np.int32)), ("a Tensor", Tensor(ids))):
        expect_close(layer(given_ids), expected, rtol=RTOL, atol=ATOL, call=f"Embedding(6, 3)(ids as {name})",
                     hint="as_indices turns a Tensor (use .data), an array or a list (np.asarray) into an int array")


def test_functional_embedding_records_embeddingfn():
    """embedding(ids, weight) looks up rows and records an EmbeddingFn whose input is the weight"""
    weight = Tensor(np.random.default_rng(2).standard_normal((5, 2)), requires_grad=True)
    ids = np.array([4, 0, 4])
    out = embedding(ids, weight)
    expect_close(out, weight.data[ids], rtol=RTOL, atol=ATOL, call="embedding([4, 0, 4], weight (5, 2))",
                 hint="the rows of weight picked by ids")
    function = getattr(out, "_grad_fn", None)
    expect_equal((type(function).__name__, out.requires_grad), ("EmbeddingFn", True),
                 call="(type(embedding(ids, weight)._grad_fn).__name__, .requires_grad)",
                 hint="when is_grad_enabled() and weight.requires_grad, record(out, EmbeddingFn(weight, ids))")
    inputs = tuple(getattr(function, "inputs", ()))
    expect_equal((len(inputs), bool(inputs) and inputs[0] is weight), (1, True),
                 call="(len(embedding(ids, weight)._grad_fn.inputs), inputs[0] is weight)",
                 hint="the weight is the one input: the ids have no gradient, EmbeddingFn keeps them as self.indices")
    expect_equal(np.asarray(getattr(function, "indices", None)), ids, call="embedding([4, 0, 4], weight)._grad_fn.indices",
                 hint="EmbeddingFn(weight, ids) with the checked integer ids")


def test_weight_must_be_a_table():
    """embedding refuses a weight that is not a 2-D (num_embeddings, embedding_dim) table"""
    expect_close(embedding([1, 1], Tensor(np.eye(3))), np.eye(3)[[1, 1]], rtol=0, atol=0,
                 call="embedding([1, 1], Tensor(np.eye(3)))", hint="rows 1 and 1 of the table")
    expect_raises(ValueError, lambda: embedding([1, 2], Tensor(np.arange(5.0))), message_contains="(5,)",
                  call="embedding([1, 2], Tensor(np.arange(5.0)))",
                  hint="check weight.ndim == 2 and name the shape you got: a 1-D table would give one number per id")


def test_dtype_is_kept():
    """A float32 table gives float32 rows and a float32 gradient (from EmbeddingFn.backward too); a float64 table gives float64"""
    for dtype in (np.float32, np.float64):
        weight = Tensor(np.ones((4, 3), dtype=dtype), requires_grad=True)
        out = embedding([0, 3, 3], weight)
        expect_equal(str(out.dtype), np.dtype(dtype).name, call=f"embedding([0, 3, 3], {np.dtype(dtype).name} weight).dtype",
                     hint="the rows are copies of the table's numbers: keep its dtype")
        out.sum().backward()
        expect_equal(str(weight.grad.dtype), np.dtype(dtype).name, call=f"weight.grad.dtype, {np.dtype(dtype).name} weight",
                     hint="start dW from zeros in np.result_type(grad, weight.dtype)")
        # the Function itself, as the lesson's example calls it: a float64 dW for a float32 table would
        # double the memory of the largest gradient of the model (autograd casts it back afterwards)
        name = np.dtype(dtype).name
        grads = EmbeddingFn(weight, np.array([0, 3, 3])).backward(np.ones((3, 3), dtype=dtype))
        expect_equal((len(grads), str(grads[0].dtype)), (1, name),
                     call=f"(len(g), g[0].dtype) for g = EmbeddingFn({name} weight (4, 3), [0, 3, 3]).backward(ones {name})",
                     hint="return a 1-tuple, one gradient for the one input, in np.result_type(grad, weight.dtype)")
        expect_close(grads[0], [[1.0] * 3, [0.0] * 3, [0.0] * 3, [2.0] * 3], rtol=0, atol=0,
                     call=f"EmbeddingFn({name} weight (4, 3), [0, 3, 3]).backward(ones)[0]",
                     hint="row 3 was used twice: two contributions; rows 1 and 2 none")


# -- backward -------------------------------------------------------------------------------


@settings(max_examples=20)
@given(case=tables_and_ids(), seed=st.integers(0, 1000))
def test_gradient_matches_torch_with_repeated_ids(case, seed):
    """The weight's gradient equals torch's for 1-D, 2-D and 3-D ids with many repeats"""
    vocab, dim, ids = case
    rng = np.random.default_rng(seed)
    weight0 = rng.standard_normal((vocab, dim))
    weight = Tensor(weight0, requires_grad=True)
    call = f"embedding(ids of shape {ids.shape} in 0..{vocab - 1}, weight ({vocab}, {dim}))"
    out = embedding(ids, weight)
    upstream = rng.standard_normal(ids.shape + (dim,))
    expected, expected_grad = torch_embedding(ids, weight0, upstream)
    expect_close(out, expected, rtol=RTOL, atol=ATOL, call=call, hint="np.take(weight, ids, axis=0)")
    out.backward(upstream)
    expect_close(weight.grad, expected_grad, rtol=RTOL, atol=ATOL, call=f"weight.grad after {call}.backward(g)",
                 hint="np.add.at(dW, ids.reshape(N), g.reshape(N, D)): an id used k times gets k contributions")


def test_repeated_ids_add_up():
    """Row v of the gradient is the sum of the upstream rows at every position where id v was used"""
    weight = Tensor(np.zeros((4, 2)), requires_grad=True)
    ids = np.array([[2, 2], [2, 0]])
    upstream = np.array([[[1.0, 10.0], [2.0, 20.0]], [[4.0, 40.0], [8.0, 80.0]]])
    embedding(ids, weight).backward(upstream)
    expected = np.array([[8.0, 80.0], [0.0, 0.0], [7.0, 70.0], [0.0, 0.0]])
    expect_equal(weight.grad.data, expected, call="weight.grad after embedding([[2, 2], [2, 0]], weight (4, 2)).backward(g)",
                 hint="dW[ids] += g keeps only ONE of the three contributions to row 2 (numpy buffers the write); "
                      "np.add.at adds every one: 1 + 2 + 4 = 7")


def test_gradient_accumulates_over_two_backward_calls():
    """Two backward passes through the same Embedding add their gradients into weight.grad"""
    layer = float64_embedding(5, 3, seed=3)
    rng = np.random.default_rng(3)
    ids_a, ids_b = np.array([1, 1, 4]), np.array([[4, 0], [1, 4]])
    g_a, g_b = rng.standard_normal((3, 3)), rng.standard_normal((2, 2, 3))
    layer(ids_a).backward(g_a)
    layer(ids_b).backward(g_b)
    _, grad_a = torch_embedding(ids_a, layer.weight.data, g_a)
    _, grad_b = torch_embedding(ids_b, layer.weight.data, g_b)
    expect_close(layer.weight.grad, grad_a + grad_b, rtol=RTOL, atol=ATOL,
                 call="weight.grad after layer(ids_a).backward(g_a); layer(ids_b).backward(g_b)",
                 hint="return dL/dW from EmbeddingFn.backward; module 05 adds it to the existing .grad")


def test_tied_table_gets_both_gradients():
    """A table used twice, to look up ids and as the output layer (h @ W.T), gets both gradients, like torch"""
    rng = np.random.default_rng(4)
    weight0, ids = rng.standard_normal((6, 3)), np.array([[0, 5, 5], [2, 0, 1]])
    weight = Tensor(weight0, requires_grad=True)
    logits = embedding(ids, weight) @ weight.T  # (2, 3, 6), the weight tying of GPT-2
    tw = torch.tensor(weight0, requires_grad=True)
    expected = F.embedding(torch.tensor(ids), tw) @ tw.T
    expect_close(logits, expected.detach(), rtol=RTOL, atol=ATOL, call="embedding(ids, W) @ W.T",
                 hint="the lookup must give the rows of W")
    upstream = rng.standard_normal((2, 3, 6))  # the shape of logits, written out: inputs never depend on your output
    logits.backward(upstream)
    expected.backward(torch.tensor(upstream))
    expect_close(weight.grad, tw.grad, rtol=RTOL, atol=ATOL, call="W.grad after (embedding(ids, W) @ W.T).backward(g)",
                 hint="the scatter-add gradient and the matmul gradient both flow into W and add up")


def test_central_differences():
    """The table's gradient agrees with central differences (eps 1e-6) on a small table"""
    rng = np.random.default_rng(5)
    weight0 = rng.standard_normal((4, 3))
    ids = np.array([[3, 1, 3], [0, 3, 1]])
    probe = rng.standard_normal((2, 3, 3))

    def loss(w: np.ndarray) -> float:
        with no_grad():
            return float(np.sum(embedding(ids, Tensor(w)).data * probe))

    weight = Tensor(weight0, requires_grad=True)
    embedding(ids, weight).backward(probe)
    numeric = np.zeros_like(weight0)
    h = 1e-6
    for position in np.ndindex(*weight0.shape):
        up, down = weight0.copy(), weight0.copy()
        up[position] += h
        down[position] -= h
        numeric[position] = (loss(up) - loss(down)) / (2 * h)
    expect_close(weight.grad, numeric, rtol=1e-6, atol=1e-7, call="weight.grad vs (L(W + h) - L(W - h)) / 2h, ids [[3, 1, 3], [0, 3, 1]]",
                 hint="row 2 was never used: its gradient is zero; row 3 was used three times: three contributions")


def test_no_graph_without_need():
    """Nothing is recorded under no_grad(), nor when the weight does not require grad"""
    layer = float64_embedding(5, 2, seed=9)
    with no_grad():
        out = layer([1, 2])
    expect_close(out, layer.weight.data[[1, 2]], rtol=RTOL, atol=ATOL, call="Embedding(5, 2)([1, 2]) under no_grad()",
                 hint="no_grad() changes nothing about the value")
    expect_equal((out.requires_grad, getattr(out, "_grad_fn", None) is None), (False, True),
                 call="(out.requires_grad, out._grad_fn is None) for Embedding(5, 2)([1, 2]) under no_grad()",
                 hint="record an EmbeddingFn only when is_grad_enabled()")
    frozen = embedding([1, 2], Tensor(np.ones((5, 2))))
    expect_equal((frozen.requires_grad, getattr(frozen, "_grad_fn", None) is None), (False, True),
                 call="(out.requires_grad, out._grad_fn is None) for embedding([1, 2], Tensor(np.ones((5, 2))))",
                 hint="a table that does not require grad needs no graph")
    recorded = layer([1, 2])
    expect_equal((recorded.requires_grad, type(getattr(recorded, "_grad_fn", None)).__name__), (True, "EmbeddingFn"),
                 call="(out.requires_grad, type(out._grad_fn).__name__) for Embedding(5, 2)([1, 2])",
                 hint="outside no_grad(), a weight with requires_grad=True is recorded")


# -- errors ---------------------------------------------------------------------------------


def test_out_of_range_id_is_an_index_error():
    """An id >= num_embeddings or < 0 raises an IndexError naming the id and num_embeddings"""
    layer = float64_embedding(8, 3, seed=10)
    expect_close(layer([[7, 0]]), layer.weight.data[[[7, 0]]], rtol=RTOL, atol=ATOL, call="Embedding(8, 3)([[7, 0]])",
                 hint="0 and num_embeddings - 1 are the first and last valid ids")
    call = "Embedding(8, 3)([[1, 2], [11, 0]])"
    error = expect_raises(IndexError, lambda: layer([[1, 2], [11, 0]]), call=call, message_contains="11",
                          hint="check ids.max() < num_embeddings and name the bad id in the message")
    expect_that(str(error), mentions_all, "8", call=call + ", its message", expected="a message that also names num_embeddings=8",
                hint="say how many rows the table has, so the reader sees the vocabulary is too small")
    expect_raises(IndexError, lambda: embedding(np.array([8]), Tensor(np.zeros((8, 2)))),
                  call="embedding([8], weight (8, 2))", hint="valid ids are 0 to num_embeddings - 1: 8 is one too many")
    expect_raises(IndexError, lambda: layer([3, -1]), call="Embedding(8, 3)([3, -1])", message_contains="-1",
                  hint="numpy would read W[-1] as the last row: a negative id (a padding marker, an 'ignore' label) is "
                       "a bug upstream, so check ids.min() >= 0 too")


def test_float_ids_are_a_type_error():
    """Float and boolean ids raise a TypeError instead of being truncated or used as a mask"""
    layer = float64_embedding(5, 2, seed=11)
    expect_close(layer(np.array([4, 0], dtype=np.uint8)), layer.weight.data[[4, 0]], rtol=RTOL, atol=ATOL,
                 call="Embedding(5, 2)(np.array([4, 0], dtype=np.uint8))", hint="any integer dtype is a valid id array")
    expect_raises(TypeError, lambda: layer(Tensor([1.0, 2.0])), call="Embedding(5, 2)(Tensor([1.0, 2.0]))",
                  message_contains="float32",
                  hint="np.issubdtype(ids.dtype, np.integer) must hold; name the dtype you got")
    expect_raises(TypeError, lambda: layer(np.array([[0.0, 1.5]])), call="Embedding(5, 2)(np.array([[0.0, 1.5]]))",
                  hint="token ids are integers")
    expect_raises(TypeError, lambda: layer(np.array([True, False, True, False, True])),
                  call="Embedding(5, 2)(np.array([True, False, True, False, True]))",
                  hint="booleans would index as a mask, a different operation: np.issubdtype(np.bool_, np.integer) is False")


# -- the layer ------------------------------------------------------------------------------


def test_embedding_layer_parameter():
    """Embedding has one float32 parameter, weight (num_embeddings, embedding_dim), named like torch"""
    layer = Embedding(11, 6)
    expect_equal([name for name, _ in layer.named_parameters()], ["weight"],
                 call="[name for name, _ in Embedding(11, 6).named_parameters()]",
                 hint="store the table as self.weight, a Tensor with requires_grad=True")
    expect_equal((layer.weight.shape, str(layer.weight.dtype)), ((11, 6), "float32"),
                 call="(Embedding(11, 6).weight.shape, .dtype)", hint="one row per token id, float32 like PyTorch")
    expect_equal((layer.num_embeddings, layer.embedding_dim), (11, 6),
                 call="(Embedding(11, 6).num_embeddings, .embedding_dim)", hint="keep both sizes as attributes")
    table = np.random.default_rng(12).standard_normal((11, 6)).astype(np.float32)
    layer.weight.data[...] = table
    expect_close(layer([[10, 3], [3, 0]]), table[[[10, 3], [3, 0]]], rtol=0, atol=0,
                 call="Embedding(11, 6)([[10, 3], [3, 0]]) with weight set to a known table",
                 hint="forward is embedding(indices, self.weight)")


def test_embedding_initialisation():
    """Embedding's table is drawn from N(0, 1), reproducibly after manual_seed"""
    manual_seed(0)
    first = Embedding(2000, 128).weight.data
    manual_seed(0)
    again = Embedding(2000, 128).weight.data
    expect_that(first, normal_sample, 1.0, (2000, 128), call="Embedding(2000, 128).weight",
                expected="a float32 (2000, 128) table with mean 0 and standard deviation 1 (within 5% of 1)",
                hint="generator().standard_normal((num_embeddings, embedding_dim)), like torch.nn.Embedding: each "
                     "output is one row, not a sum over fan_in, so there is nothing to scale by")
    # the two draws are compared with each other (on the grader's side), never with the reference's draws
    expect_that((first, again), same_arrays, call="manual_seed(0); Embedding(2000, 128).weight, then the same again",
                expected="the same numbers both times",
                hint="draw from tinytorch.tensor.generator(), so manual_seed makes models reproducible")


# -- sinusoidal positions -------------------------------------------------------------------


@pytest.mark.parametrize("max_len, dim", [(2048, 32), (50, 7), (12, 1), (33, 64)])
def test_sinusoidal_table_matches_the_formula(max_len, dim):
    """sinusoidal_positional_encoding is the float32 (max_len, dim) table of sin and cos pairs"""
    table = sinusoidal_positional_encoding(max_len, dim)
    call = f"sinusoidal_positional_encoding({max_len}, {dim})"
    expect_equal((table.shape, str(table.dtype)), ((max_len, dim), "float32"), call=f"({call}.shape, .dtype)",
                 hint="a numpy array of max_len rows and dim columns, converted to float32 at the end")
    expect_close(table, pe_formula(max_len, dim), rtol=0, atol=1e-6, call=call,
                 hint="PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(same); compute the angles in float64 "
                      "and convert the finished table to float32 (float32 angles are off by about 1e-4 by position 2000)")


def test_sinusoidal_known_values():
    """PE[0] is [0, 1, 0, 1, ...], and the first pair is (sin p, cos p)"""
    table = sinusoidal_positional_encoding(20, 10)
    expect_close(table[0], np.tile([0.0, 1.0], 5), rtol=0, atol=1e-7, call="sinusoidal_positional_encoding(20, 10)[0]",
                 hint="at position 0 every angle is 0: sin 0 = 0, cos 0 = 1")
    positions = np.arange(20)
    expect_close(table[:, :2], np.stack([np.sin(positions), np.cos(positions)], axis=1), rtol=0, atol=2e-6,
                 call="sinusoidal_positional_encoding(20, 10)[:, :2]",
                 hint="pair 0 has frequency 1 / 10000^0 = 1: its angle is the position itself")


def test_sinusoidal_odd_dim_ends_with_a_sine():
    """With an odd dim the last column is a sine: dim 5 has three sines and two cosines"""
    table = sinusoidal_positional_encoding(30, 5)
    angle = np.arange(30) / 10000.0 ** (4 / 5)
    expect_close(table[:, 4], np.sin(angle), rtol=0, atol=2e-6, call="sinusoidal_positional_encoding(30, 5)[:, 4]",
                 hint="column 4 = 2i with i = 2: sin(p / 10000^(4/5)); it has no cosine partner")


@settings(max_examples=20)
@given(p=st.integers(0, 60), k=st.integers(1, 40), pair=st.integers(0, 7))
def test_sinusoidal_offsets_are_rotations(p, k, pair):
    """Moving k positions rotates each (sin, cos) pair by an angle that depends on k only"""
    dim = 16
    table = sinusoidal_positional_encoding(101, dim).astype(np.float64)
    b = k / 10000.0 ** (2 * pair / dim)
    rotation = np.array([[np.cos(b), np.sin(b)], [-np.sin(b), np.cos(b)]])
    expect_close(table[p + k, 2 * pair:2 * pair + 2], rotation @ table[p, 2 * pair:2 * pair + 2], rtol=0, atol=1e-5,
                 call=f"PE[{p + k}, pair {pair}] vs rotation(k={k}) @ PE[{p}, pair {pair}]",
                 hint="sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b - sin a sin b")


def test_sinusoidal_module_adds_the_table():
    """SinusoidalPositionalEncoding adds PE[:T] to x, keeps x's dtype, passes the gradient, has no parameters"""
    module = SinusoidalPositionalEncoding(max_len=12, dim=6)
    expect_equal(module.parameters(), [], call="SinusoidalPositionalEncoding(12, 6).parameters()",
                 hint="the table is fixed: keep it as a numpy array (self.pe), not a Tensor with requires_grad")
    rng = np.random.default_rng(6)
    x0 = rng.standard_normal((2, 5, 6))
    x = Tensor(x0, requires_grad=True)
    out = module(x)
    expect_equal(str(out.dtype), "float64", call="SinusoidalPositionalEncoding(12, 6)(float64 x).dtype",
                 hint="convert the table rows to x's dtype before adding")
    expect_close(out, x0 + pe_formula(12, 6)[:5], rtol=0, atol=2e-6, call="SinusoidalPositionalEncoding(12, 6)(x of shape (2, 5, 6))",
                 hint="x + PE[:T] with T = x.shape[-2] = 5, the same rows for every sequence of the batch")
    upstream = rng.standard_normal((2, 5, 6))
    out.backward(upstream)
    expect_close(x.grad, upstream, rtol=RTOL, atol=ATOL, call="x.grad after SinusoidalPositionalEncoding(12, 6)(x).backward(g)",
                 hint="a Tensor addition: the gradient passes to x unchanged")
    small = module(Tensor(x0[:, :3].astype(np.float32)))
    expect_equal(str(small.dtype), "float32", call="SinusoidalPositionalEncoding(12, 6)(float32 x of shape (2, 3, 6)).dtype",
                 hint="float32 stays float32")
    expect_close(module(Tensor(x0[0, :4])), x0[0, :4] + pe_formula(12, 6)[:4], rtol=0, atol=2e-6,
                 call="SinusoidalPositionalEncoding(12, 6)(x of shape (4, 6)), one sequence without a batch axis",
                 hint="T = x.shape[-2] (here 4), not x.shape[1] (here 6, the dim): x may be (T, dim) or (..., T, dim)")


def test_sinusoidal_too_long_raises():
    """A sequence longer than max_len, or a last axis other than dim, raises a ValueError; T == max_len is fine"""
    module = SinusoidalPositionalEncoding(max_len=4, dim=2)
    expect_close(module(Tensor(np.zeros((1, 4, 2)))), pe_formula(4, 2)[None], rtol=0, atol=2e-6,
                 call="SinusoidalPositionalEncoding(max_len=4, dim=2)(zeros of shape (1, 4, 2))",
                 hint="T == max_len uses every row of the table: only T > max_len is an error")
    expect_raises(ValueError, lambda: module(Tensor(np.zeros((1, 5, 2)))),
                  call="SinusoidalPositionalEncoding(max_len=4, dim=2)(x of shape (1, 5, 2))", message_contains="max_len",
                  hint="T = x.shape[-2] must be at most max_len; say so")
    expect_raises(ValueError, lambda: module(Tensor(np.zeros((1, 3, 1)))),
                  call="SinusoidalPositionalEncoding(max_len=4, dim=2)(x of shape (1, 3, 1))",
                  hint="the last axis of x must be dim: a (.., T, 1) x would broadcast against the (T, 2) rows without error")


# -- learned positions ----------------------------------------------------------------------


def test_learned_positions_parameter():
    """LearnedPositionalEmbedding has one float32 weight (max_len, dim) drawn from N(0, 0.02)"""
    manual_seed(1)
    module = LearnedPositionalEmbedding(512, 64)
    expect_equal([name for name, _ in module.named_parameters()], ["weight"],
                 call="[name for name, _ in LearnedPositionalEmbedding(512, 64).named_parameters()]",
                 hint="store the table as self.weight with requires_grad=True")
    expect_equal((module.weight.shape, str(module.weight.dtype)), ((512, 64), "float32"),
                 call="(LearnedPositionalEmbedding(512, 64).weight.shape, .dtype)", hint="one row per position, float32")
    expect_that(module.weight.data, normal_sample, 0.02, (512, 64), call="LearnedPositionalEmbedding(512, 64).weight",
                expected="a float32 (512, 64) table with mean 0 and standard deviation 0.02 (within 5%)",
                hint="generator().normal(0.0, 0.02, size=(max_len, dim)), as GPT-2 initialises wpe")
    manual_seed(1)
    expect_that((module.weight.data, LearnedPositionalEmbedding(512, 64).weight.data), same_arrays,
                call="manual_seed(1); LearnedPositionalEmbedding(512, 64).weight, then the same again",
                expected="the same numbers both times", hint="draw from tinytorch.tensor.generator()")


def test_learned_positions_match_torch():
    """x + weight[:T], and the gradients of x and weight (summed over the batch) equal torch's"""
    rng = np.random.default_rng(7)
    module = LearnedPositionalEmbedding(8, 4)
    weight0 = rng.standard_normal((8, 4))
    module.weight.data = weight0.copy()  # float64 for an exact comparison
    x0 = rng.standard_normal((3, 5, 4))
    x = Tensor(x0, requires_grad=True)
    out = module(x)
    tx, tw = torch.tensor(x0, requires_grad=True), torch.tensor(weight0, requires_grad=True)
    expected = tx + tw[:5]
    call = "LearnedPositionalEmbedding(8, 4)(x of shape (3, 5, 4))"
    expect_close(out, expected.detach(), rtol=RTOL, atol=ATOL, call=call,
                 hint="x + embedding(np.arange(T), self.weight): rows 0 .. T-1, the same for every sequence")
    upstream = rng.standard_normal((3, 5, 4))
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    expect_close(x.grad, tx.grad, rtol=RTOL, atol=ATOL, call=f"x.grad after {call}.backward(g)",
                 hint="an addition passes the gradient to x unchanged")
    expect_close(module.weight.grad, tw.grad, rtol=RTOL, atol=ATOL, call=f"weight.grad after {call}.backward(g)",
                 hint="rows 0-4 get the gradient summed over the batch; rows 5-7 were not used and get zero")
    expect_close(module(Tensor(x0[0, :3])), x0[0, :3] + weight0[:3], rtol=RTOL, atol=ATOL,
                 call="LearnedPositionalEmbedding(8, 4)(x of shape (3, 4)), one sequence without a batch axis",
                 hint="T = x.shape[-2] (here 3), not x.shape[1] (here 4, the dim): x may be (T, dim) or (..., T, dim)")


def test_learned_positions_too_long_raises():
    """A sequence longer than max_len raises a ValueError: the table has no row for it; T == max_len is fine"""
    module = LearnedPositionalEmbedding(6, 3)
    table = np.random.default_rng(13).standard_normal((6, 3)).astype(np.float32)
    module.weight.data[...] = table
    expect_close(module(Tensor(np.ones((2, 6, 3), dtype=np.float32))), 1 + np.stack([table, table]), rtol=1e-6, atol=1e-6,
                 call="LearnedPositionalEmbedding(max_len=6, dim=3)(ones of shape (2, 6, 3))",
                 hint="T == max_len uses every row of the table: only T > max_len is an error")
    expect_raises(ValueError, lambda: module(Tensor(np.zeros((2, 7, 3)))),
                  call="LearnedPositionalEmbedding(max_len=6, dim=3)(x of shape (2, 7, 3))", message_contains="max_len",
                  hint="positions 0 to max_len - 1 exist; T = 7 needs position 6")


def test_token_and_position_embeddings_match_torch():
    """GPT-2's input, tokens(ids) + positions, and both tables' gradients equal torch's"""
    rng = np.random.default_rng(8)
    tokens, positions = Embedding(10, 4), LearnedPositionalEmbedding(6, 4)
    tokens.weight.data, positions.weight.data = rng.standard_normal((10, 4)), rng.standard_normal((6, 4))
    ids = rng.integers(0, 10, (3, 6))
    out = positions(tokens(Tensor(ids)))
    twte = torch.tensor(tokens.weight.data, requires_grad=True)
    twpe = torch.tensor(positions.weight.data, requires_grad=True)
    expected = F.embedding(torch.tensor(ids), twte) + F.embedding(torch.arange(6), twpe)
    call = "LearnedPositionalEmbedding(6, 4)(Embedding(10, 4)(ids of shape (3, 6)))"
    expect_close(out, expected.detach(), rtol=RTOL, atol=ATOL, call=call, hint="token rows plus position rows")
    upstream = rng.standard_normal((3, 6, 4))
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    expect_close(tokens.weight.grad, twte.grad, rtol=RTOL, atol=ATOL, call=f"tokens.weight.grad after {call}.backward(g)",
                 hint="the token table's gradient is the scatter-add of g over the ids")
    expect_close(positions.weight.grad, twpe.grad, rtol=RTOL, atol=ATOL, call=f"positions.weight.grad after {call}.backward(g)",
                 hint="the position table's gradient is g summed over the batch")
