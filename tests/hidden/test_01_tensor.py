"""Hidden checks for module 01 (Tensor): edge cases a solution could special-case if it saw them.

Used by `tito grade` only; never part of the student release.
"""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tinytorch.tensor import Tensor, broadcast_shape

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
I64 = np.dtype(np.int64)


def has_integer_dtype(array) -> bool:
    """Judged on the grader's side over the array your code produced."""
    return np.asarray(array).dtype.kind == "i"


def test_zero_dimensional_tensors():
    """0-d tensors (scalars) compute, reduce and keep their dtype like any other tensor"""
    a, b = Tensor(np.float64(2.5)), Tensor(np.array(4.0))
    # (text, yours, numpy's on the same scalars): numpy's gives the expected value
    for text, yours, numpys in (
        ("a + b", lambda: a + b, lambda: np.float64(2.5) + np.array(4.0)),
        ("a * b", lambda: a * b, lambda: np.float64(2.5) * np.array(4.0)),
        ("b / a", lambda: b / a, lambda: np.array(4.0) / np.float64(2.5)),
        ("a.sum()", lambda: a.sum(), lambda: np.float64(2.5).sum()),
        ("(a - b).maximum(0)", lambda: (a - b).maximum(0), lambda: np.maximum(np.float64(2.5) - np.array(4.0), 0)),
    ):
        got = yours()
        call = f"{text} with a = Tensor(np.float64(2.5)), b = Tensor(np.array(4.0))"
        expect_equal(got.shape, (), call=call + " .shape", hint="two scalars give a scalar, shape ()")
        expect_equal(got.dtype, F64, call=call + " .dtype",
                     hint="numpy returns 0-d results as numpy scalars; those keep their dtype")
        expect_close(got, numpys(), call=call, rtol=1e-12)
    expect_equal((Tensor(3.0) * Tensor([1.0, 2.0])).shape, (2,), call="(Tensor(3.0) * Tensor([1.0, 2.0])).shape",
                 hint="a scalar broadcasts against any shape")
    expect_raises(TypeError, lambda: len(Tensor(1.0)), call="len(Tensor(1.0))",
                  hint="a 0-d tensor has no first axis, so len() is a TypeError, as in numpy and PyTorch")


def test_empty_tensors():
    """Tensors with a size-0 axis have the right shape, count, sums and broadcasting"""
    empty = Tensor(np.zeros((0, 3)))
    expect_equal((empty.shape, empty.numel(), len(empty)), ((0, 3), 0, 0),
                 call="(t.shape, t.numel(), len(t)) with t = Tensor(np.zeros((0, 3)))")
    expect_equal(Tensor([]).shape, (0,), call="Tensor([]).shape", hint="an empty list is a 1-D tensor of size 0")
    expect_equal(Tensor([]).dtype, F32, call="Tensor([]).dtype", hint="an empty list becomes float32, as in PyTorch")
    expect_close(empty.sum(axis=0), np.zeros(3), call="Tensor(np.zeros((0, 3))).sum(axis=0)",
                 hint="the sum of no numbers is 0")
    expect_close(empty.sum(), np.float64(0.0), call="Tensor(np.zeros((0, 3))).sum()")
    expect_equal((empty + Tensor(np.ones(3))).shape, (0, 3), call="(Tensor(np.zeros((0, 3))) + Tensor(np.ones(3))).shape",
                 hint="a size-0 axis broadcasts like any other size")
    expect_equal(empty.reshape(-1, 3).shape, (0, 3), call="Tensor(np.zeros((0, 3))).reshape(-1, 3).shape",
                 hint="-1 can stand for 0 when there are no elements")
    expect_equal(tuple(broadcast_shape((0, 3), (1, 3))), (0, 3), call="broadcast_shape((0, 3), (1, 3))",
                 hint="the size that is not 1 wins, also when it is 0: numpy broadcasts (0, 3) with (1, 3) to (0, 3)")
    expect_equal((empty * Tensor(np.ones((1, 3)))).shape, (0, 3),
                 call="(Tensor(np.zeros((0, 3))) * Tensor(np.ones((1, 3)))).shape",
                 hint="a size-1 axis stretches to size 0")


def test_reshape_of_non_contiguous_tensor():
    """Reshaping and flattening a transposed tensor keep the transposed (row-major) order"""
    x = np.arange(12.0).reshape(3, 4)
    t = Tensor(x).T
    expect_equal(t.reshape(2, 6).data, x.T.reshape(2, 6), call="Tensor(np.arange(12.0).reshape(3, 4)).T.reshape(2, 6)",
                 hint="a reshape reads the tensor in its own row-major order, not in the order of memory")
    expect_equal(t.flatten().data, torch.tensor(x).T.flatten().numpy(), call="Tensor(x).T.flatten()",
                 hint="flatten of a transposed matrix reads it column by column of the original")
    expect_equal(t.reshape(-1).shape, (12,), call="Tensor(x).T.reshape(-1).shape")
    expect_equal(x, np.arange(12.0).reshape(3, 4), call="x after Tensor(x).T.reshape(-1)",
                 hint="reshape must never change the original numbers")


def test_numpy_scalars_and_arrays_on_the_left():
    """np.float32(2) * t and np.ones(3) + t go to the Tensor's reflected operators"""
    t = Tensor([1.0, 2.0, 3.0])
    got = np.float32(2) * t
    expect_equal(isinstance(got, Tensor), True, call="isinstance(np.float32(2) * Tensor([1.0, 2.0, 3.0]), Tensor)",
                 hint="numpy must defer to Tensor's __rmul__ (see __array_ufunc__ = None)")
    expect_equal((got.dtype, got.data.tolist()), (F32, [2.0, 4.0, 6.0]), call="np.float32(2) * Tensor([1.0, 2.0, 3.0])",
                 hint="a float32 scalar times a float32 tensor is float32")
    got = np.ones(3) - t
    expect_equal(isinstance(got, Tensor), True, call="isinstance(np.ones(3) - Tensor([1.0, 2.0, 3.0]), Tensor)",
                 hint="an array on the left is lifted to a Tensor by __rsub__")
    expect_close(got, np.array([0.0, -1.0, -2.0]), call="np.ones(3) - Tensor([1.0, 2.0, 3.0])",
                 hint="reflected subtraction is other - self")
    matrix = np.arange(6.0).reshape(2, 3)
    got = matrix @ Tensor(np.arange(12.0).reshape(3, 4))
    expect_equal(isinstance(got, Tensor), True, call="isinstance(np.arange(6.0).reshape(2, 3) @ Tensor(<shape (3, 4)>), Tensor)",
                 hint="an array on the left of @ is lifted to a Tensor by __rmatmul__")
    expect_close(got, matrix @ np.arange(12.0).reshape(3, 4), call="np.arange(6.0).reshape(2, 3) @ Tensor(<shape (3, 4)>)",
                 hint="reflected matmul is other @ self: the order matters")


def test_integer_tensors_stay_integer():
    """Integer arithmetic with integers stays int64 and exact"""
    # each expression is applied with `wrap` = Tensor (yours) and with `wrap` = np.array (the expected value)
    for text, values, compute in (
        ("t + 1", [3, -7, 2**40], lambda wrap, v: wrap(v) + 1),
        ("2 - t", [3, -7, 2**40], lambda wrap, v: 2 - wrap(v)),
        ("t * 3", [3, -7, 2**40], lambda wrap, v: wrap(v) * 3),
        ("-t", [3, -7, 2**40], lambda wrap, v: -wrap(v)),
        ("t ** 2", [3, -7, 5], lambda wrap, v: wrap(v) ** 2),
        ("t - Tensor([1, 1, 1])", [3, -7, 2**40], lambda wrap, v: wrap(v) - wrap([1, 1, 1])),
        ("t[[2, 0]]", [3, -7, 2**40], lambda wrap, v: wrap(v)[[2, 0]]),
        ("t.reshape(3, 1)", [3, -7, 2**40], lambda wrap, v: wrap(v).reshape(3, 1)),
    ):
        got = compute(Tensor, values)
        call = f"{text} with t = Tensor({values})"
        expect_equal(got.dtype, I64, call=call + " .dtype",
                     hint="only float64 from Python floats becomes float32; integers stay int64")
        expect_equal(got.data, compute(np.array, values), call=call, hint="integer results must be exact")


def test_reductions_on_integer_tensors():
    """sum, max, min and argmax of int64 tensors are exact integers; mean is the exact average"""
    x = np.array([[2**40, 1, -5], [3, 2**40, 7]])
    t = Tensor(x)
    # each reduction is spelled the same for your Tensor and for numpy (the expected value)
    for text, reduce in (
        ("t.sum()", lambda v: v.sum()), ("t.sum(axis=0)", lambda v: v.sum(axis=0)),
        ("t.max(axis=1)", lambda v: v.max(axis=1)), ("t.min()", lambda v: v.min()),
        ("t.argmax(axis=1)", lambda v: v.argmax(axis=1)),
    ):
        got = reduce(t)
        call = f"{text} with t = Tensor([[2**40, 1, -5], [3, 2**40, 7]])"
        expect_that(got, has_integer_dtype, call=call + " .dtype", expected="an integer dtype",
                    hint="integer reductions stay integer; converting to float32 loses the last digits of 2**40")
        expect_equal(got.data, np.asarray(reduce(x)), call=call, hint="integer sums must be exact")
    mean = t.mean(axis=1)
    expect_close(mean, x.mean(axis=1), call="Tensor([[2**40, 1, -5], [3, 2**40, 7]]).mean(axis=1)",
                 rtol=1e-12, hint="the mean of integers is a float; compute it in float64 as numpy does")
