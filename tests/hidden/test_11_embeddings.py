"""Hidden checks for module 11 (embeddings): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal, expect_raises
from tinytorch.embeddings import Embedding, LearnedPositionalEmbedding, embedding
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


def test_boolean_ids_are_a_type_error():
    """Boolean ids raise a TypeError: numpy would treat them as a mask"""
    expect_raises(TypeError, lambda: Embedding(3, 2)(np.array([True, False, True])),
                  call="Embedding(3, 2)(np.array([True, False, True]))",
                  hint="np.issubdtype(np.bool_, np.integer) is False: booleans are not token ids")


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


def test_learned_positions_at_exactly_max_len():
    """T == max_len uses every row, and a 2-D x (T, dim) works too"""
    rng = np.random.default_rng(43)
    module = LearnedPositionalEmbedding(4, 2)
    module.weight.data = rng.standard_normal((4, 2))
    x0 = rng.standard_normal((4, 2))
    x = Tensor(x0, requires_grad=True)
    out = module(x)
    expect_close(out, x0 + module.weight.data, rtol=RTOL, atol=ATOL, call="LearnedPositionalEmbedding(4, 2)(x of shape (4, 2))",
                 hint="T = x.shape[-2] = max_len is allowed: only T > max_len is an error")
    out.sum().backward()
    expect_close(module.weight.grad, np.ones((4, 2)), rtol=RTOL, atol=ATOL, call="weight.grad after out.sum().backward()",
                 hint="each row was used once")
