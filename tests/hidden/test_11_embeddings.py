"""Hidden checks for module 11 (embeddings): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal, expect_raises
from tinytorch.embeddings import Embedding, LearnedPositionalEmbedding, SinusoidalPositionalEncoding, embedding
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12


def test_empty_ids():
    """No ids give an empty (0, dim) or (2, 0, dim) output and a zero gradient"""
    weight = Tensor(np.random.default_rng(40).standard_normal((5, 3)), requires_grad=True)
    for name, ids, shape in (("np.array([], dtype=np.int64)", np.array([], dtype=np.int64), (0, 3)),
                             ("[]", [], (0, 3)), ("np.zeros((2, 0), dtype=np.int64)", np.zeros((2, 0), dtype=np.int64), (2, 0, 3))):
        out = embedding(ids, weight)
        expect_equal(tuple(out.shape), shape, call=f"embedding({name}, weight (5, 3)).shape",
                     hint="no ids, no rows: the shape is still ids.shape + (dim,); an empty list is not a float error")
    weight.grad = None
    embedding(np.zeros((2, 0), dtype=np.int64), weight).backward(np.zeros((2, 0, 3)))
    expect_equal(weight.grad.data, np.zeros((5, 3)), call="weight.grad after embedding(empty ids, weight).backward(empty g)",
                 hint="np.add.at with no ids adds nothing: the gradient is all zeros, in the weight's shape")


def test_negative_id_is_an_index_error():
    """A negative id raises an IndexError (as in torch) instead of reading a row from the end"""
    layer = Embedding(6, 2)
    table = np.random.default_rng(44).standard_normal((6, 2)).astype(np.float32)
    layer.weight.data[...] = table
    expect_close(layer(np.array([[5], [0]], dtype=np.int32)), table[[[5], [0]]], rtol=0, atol=0,
                 call="Embedding(6, 2)(np.array([[5], [0]], dtype=np.int32))", hint="ids 0 .. 5 are all valid")
    expect_raises(IndexError, lambda: layer([0, -1, 2]), call="Embedding(6, 2)([0, -1, 2])", message_contains="-1",
                  hint="numpy reads W[-1] as the last row; a negative token id is a bug upstream, so refuse it")
    expect_raises(IndexError, lambda: layer(np.array([[3], [-6]], dtype=np.int32)),
                  call="Embedding(6, 2)(np.array([[3], [-6]], dtype=np.int32))",
                  hint="check ids.min() >= 0 as well as ids.max() < num_embeddings")


def test_other_integer_dtypes_and_a_single_id():
    """int32 and uint8 ids work like int64 ones, and a single id gives one row of shape (dim,)"""
    rng = np.random.default_rng(41)
    weight0 = rng.standard_normal((7, 3))
    ids = np.array([[6, 0, 6], [2, 6, 1]])
    upstream = rng.standard_normal((2, 3, 3))
    tw = torch.tensor(weight0, requires_grad=True)
    F.embedding(torch.tensor(ids), tw).backward(torch.tensor(upstream))
    for dtype in (np.int32, np.uint8):
        weight = Tensor(weight0, requires_grad=True)
        out = embedding(ids.astype(dtype), weight)
        out.backward(upstream)
        name = np.dtype(dtype).name
        expect_close(weight.grad, tw.grad, rtol=RTOL, atol=ATOL, call=f"weight.grad, ids as {name}",
                     hint="any integer dtype is a valid index array")
    single = embedding(np.int64(4), Tensor(weight0))
    expect_close(single, weight0[4], rtol=RTOL, atol=ATOL, call="embedding(4, weight (7, 3))",
                 hint="a 0-d id has shape (): the output has shape () + (dim,) = (dim,)")


def test_boolean_and_float_ids_in_lists():
    """Booleans and whole-number floats in a nested list are refused like arrays of them"""
    weight = Tensor(np.arange(6.0).reshape(3, 2))
    expect_close(embedding([[2], [1]], weight), np.arange(6.0).reshape(3, 2)[[[2], [1]]], rtol=0, atol=0,
                 call="embedding([[2], [1]], weight (3, 2))", hint="a nested list of ints is fine")
    expect_raises(TypeError, lambda: embedding([[True], [False]], weight), call="embedding([[True], [False]], weight (3, 2))",
                  hint="np.asarray makes a bool array: np.issubdtype(np.bool_, np.integer) is False")
    expect_raises(TypeError, lambda: embedding([2.0, 1.0], weight), call="embedding([2.0, 1.0], weight (3, 2))",
                  message_contains="float64", hint="2.0 is a float, whole or not: float ids usually mean a bug upstream")


def test_many_repeats_of_few_ids_non_contiguous():
    """3,000 non-contiguous ids over a 3-row float32 table give torch's gradient"""
    rng = np.random.default_rng(42)
    ids = rng.integers(0, 3, (60, 50)).T  # (50, 60), a transposed view
    weight0 = rng.standard_normal((3, 4)).astype(np.float32)
    weight = Tensor(weight0.copy(), requires_grad=True)
    out = embedding(ids, weight)
    upstream = rng.standard_normal((50, 60, 4)).astype(np.float32)
    out.backward(upstream)
    tw = torch.tensor(weight0.astype(np.float64), requires_grad=True)
    F.embedding(torch.tensor(np.ascontiguousarray(ids)), tw).backward(torch.tensor(upstream.astype(np.float64)))
    expect_close(weight.grad, tw.grad, rtol=1e-4, atol=1e-3, call="weight.grad for 3,000 transposed ids into 3 rows",
                 hint="np.add.at over the flattened ids; each row collects about 1,000 contributions")


def test_positions_with_two_leading_axes():
    """x of shape (2, 3, T, dim) gets the same T rows in every sequence, and the table's gradient sums over 6 sequences"""
    rng = np.random.default_rng(43)
    weight0 = rng.standard_normal((5, 2))
    x0 = rng.standard_normal((2, 3, 4, 2))
    module = LearnedPositionalEmbedding(5, 2)
    module.weight.data = weight0.copy()
    out = module(Tensor(x0))
    expect_close(out, x0 + weight0[:4], rtol=RTOL, atol=ATOL, call="LearnedPositionalEmbedding(5, 2)(x of shape (2, 3, 4, 2))",
                 hint="T = x.shape[-2] = 4, whatever the number of leading axes")
    out.sum().backward()
    expect_close(module.weight.grad, np.vstack([np.full((4, 2), 6.0), np.zeros((1, 2))]), rtol=RTOL, atol=ATOL,
                 call="weight.grad after out.sum().backward()", hint="rows 0-3 were used by 2 * 3 sequences, row 4 by none")
    expect_close(SinusoidalPositionalEncoding(5, 2)(Tensor(x0)), x0 + sinusoidal_rows(4, 2), rtol=0, atol=2e-6,
                 call="SinusoidalPositionalEncoding(5, 2)(x of shape (2, 3, 4, 2))", hint="x + PE[:T] with T = x.shape[-2]")


def sinusoidal_rows(length: int, dim: int) -> np.ndarray:
    """PE[:length] for an even dim, in float64."""
    angles = np.arange(length)[:, None] / 10000.0 ** (np.arange(0, dim, 2) / dim)
    return np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(length, dim)
