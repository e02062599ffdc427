"""Checkpoint 01: Tensor.

Your Tensor is compared with numpy and with PyTorch in float64: creation and dtypes,
broadcasting arithmetic (random shapes drawn by Hypothesis), matmul, views, indexing,
reductions, factories, and the messages of shape errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import torch64, values
from tinytorch.tensor import (
    Tensor,
    arange,
    broadcast_shape,
    full,
    manual_seed,
    ones,
    rand,
    randn,
    zeros,
)

RTOL, ATOL = 1e-10, 1e-12  # float64 in, float64 out: only rounding differences are allowed

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
I64 = np.dtype(np.int64)


def expect_float64(got, call: str) -> None:
    """float64 in must give float64 out, also when numpy hands back a numpy scalar."""
    expect_equal(got.dtype, F64, call=call + " .dtype",
                 hint="float64 in, float64 out; a 0-d result comes from numpy as a numpy scalar "
                      "(np.float64), which must keep its dtype too")


def float64_array(shape: tuple[int, ...], low: float = -5.0, high: float = 5.0):
    return hnp.arrays(np.float64, shape, elements=values(low, high))


# Divisors stay away from zero so that a / b is well conditioned.
nonzero = st.one_of(values(-5.0, -0.5), values(0.5, 5.0))


# -- predicates: judged on the trusted side over the values your code produced ---------------

def mentions_all(text: str, *needles: str) -> bool:
    """Does an error message name every one of `needles`?"""
    return isinstance(text, str) and all(needle in text for needle in needles)


def same_arrays(pair) -> bool:
    """Two draws with the same shape and the same numbers."""
    first, second = (np.asarray(a) for a in pair)
    return first.shape == second.shape and bool(np.array_equal(first, second))


def different_arrays(pair) -> bool:
    """Two draws of the same shape whose numbers differ."""
    first, second = (np.asarray(a) for a in pair)
    return first.shape == second.shape and not np.array_equal(first, second)


def in_unit_interval(sample) -> bool:
    sample = np.asarray(sample)
    return sample.dtype.kind == "f" and bool(np.all((sample >= 0) & (sample < 1)))


def has_integer_dtype(array) -> bool:
    return np.asarray(array).dtype.kind == "i"


# The standard error of the mean of 200,000 draws is 1/sqrt(200000) = 0.0022 for a standard
# normal (0.29 times that for a uniform): these bounds are about 9 standard errors wide, so a
# correct generator passes whatever its seed.
SAMPLES = 200_000


def standard_normal_sample(sample) -> bool:
    sample = np.asarray(sample, dtype=np.float64)
    return sample.shape == (SAMPLES,) and abs(sample.mean()) < 0.02 and abs(sample.std() - 1) < 0.02


def uniform_sample(sample) -> bool:
    sample = np.asarray(sample, dtype=np.float64)
    return (sample.shape == (SAMPLES,) and in_unit_interval(sample) and abs(sample.mean() - 0.5) < 0.01
            and abs(sample.std() - 12 ** -0.5) < 0.01)


# -- broadcasting --------------------------------------------------------------------------

@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, min_side=0, max_side=4))
def test_broadcast_shape_matches_numpy(shapes):
    """broadcast_shape gives the shape numpy broadcasting gives (size-0 axes included)"""
    a, b = shapes.input_shapes
    expect_equal(tuple(broadcast_shape(a, b)), np.broadcast_shapes(a, b),
                 call=f"broadcast_shape({a}, {b})",
                 hint="compare shapes from the right; sizes fit when equal or one is 1; a missing axis counts as 1; "
                      "the size that is not 1 wins, even when it is 0")


def test_broadcast_shape_error_names_both_shapes():
    """broadcast_shape raises a ValueError naming both shapes when they do not fit"""
    call = "broadcast_shape((2, 3), (4,))"
    error = expect_raises(ValueError, lambda: broadcast_shape((2, 3), (4,)), call=call,
                          hint="raise ValueError when two sizes differ and neither is 1")
    expect_that(str(error), mentions_all, "(2, 3)", "(4,)", call=call + ", its message",
                expected="a message naming both shapes, (2, 3) and (4,)",
                hint="name both shapes, e.g. f'{tuple(a)} and {tuple(b)}', so the reader sees which operand is off")
    expect_equal(tuple(broadcast_shape((2, 3), (4, 1, 3))), (4, 2, 3), call="broadcast_shape((2, 3), (4, 1, 3))",
                 hint="shapes that fit give the broadcast shape, no error")


# -- creating tensors: dtype rules and shape facts -----------------------------------------

def test_python_floats_become_float32():
    """A nested list of Python floats becomes a float32 tensor with the same numbers"""
    t = Tensor([[1.5, 2.0], [3.0, -4.25]])
    expect_equal(t.dtype, F32, call="Tensor([[1.5, 2.0], [3.0, -4.25]]).dtype",
                 hint="np.array makes float64 from Python floats; convert it to float32")
    expect_close(t.data, np.array([[1.5, 2.0], [3.0, -4.25]]), call="Tensor([[1.5, 2.0], [3.0, -4.25]]).data",
                 hint="self.data holds the numbers as a numpy array")
    scalar = Tensor(2.5)
    expect_equal((scalar.shape, scalar.dtype), ((), F32), call="(Tensor(2.5).shape, Tensor(2.5).dtype)",
                 hint="a single Python float is a 0-d float32 tensor")


def test_python_ints_become_int64():
    """Python ints become int64, as in PyTorch"""
    expect_equal(Tensor([1, 2, 3]).dtype, I64, call="Tensor([1, 2, 3]).dtype",
                 hint="leave integer data as int64; only float64 from Python floats becomes float32")
    expect_equal(Tensor(7).dtype, I64, call="Tensor(7).dtype", hint="a single Python int is int64")


def test_numpy_arrays_keep_their_dtype():
    """A numpy array keeps its dtype: float64 stays float64, int32 stays int32"""
    for dtype in (np.float64, np.float16, np.int32, np.bool_):
        t = Tensor(np.array([[1, 0], [0, 1]], dtype=dtype))
        name = np.dtype(dtype).name
        expect_equal(t.dtype, np.dtype(dtype), call=f"Tensor(np.array([[1, 0], [0, 1]], dtype=np.{name})).dtype",
                     hint="convert only Python floats to float32; a numpy array's dtype is the caller's choice")
        expect_equal(t.data, np.array([[1, 0], [0, 1]], dtype=dtype), call=f"Tensor(<{name} array>).data",
                     hint="same numbers")


def test_tensor_of_a_tensor_and_numpy_share_the_numbers():
    """Tensor(t) and t.numpy() share t's numbers instead of copying them"""
    x = np.array([[1.5, -2.0], [3.0, 4.25]])
    t = Tensor(x)
    again = Tensor(t)
    call = "Tensor(t) with t = Tensor(np.array([[1.5, -2.0], [3.0, 4.25]]))"
    expect_equal((again.shape, again.dtype), ((2, 2), F64), call=call + " (.shape, .dtype)",
                 hint="a Tensor argument is unwrapped to its numpy array, which keeps its dtype")
    expect_equal(again.data, np.array([[1.5, -2.0], [3.0, 4.25]]), call=call, hint="the same numbers")
    expect_equal(np.shares_memory(again.data, x), True, call=call + " shares memory with t",
                 hint="take data.data when data is a Tensor; np.array(tensor) would copy")
    expect_equal(np.shares_memory(t.numpy(), x), True, call="t.numpy() shares memory with t",
                 hint="numpy() returns the array behind the tensor, not a copy")


def test_dtype_argument_converts():
    """The dtype= argument converts the numbers to that dtype"""
    t = Tensor([1, 2, 3], dtype=np.float32)
    expect_equal(t.dtype, F32, call="Tensor([1, 2, 3], dtype=np.float32).dtype", hint="apply dtype= last")
    expect_close(t.data, np.array([1.0, 2.0, 3.0]), call="Tensor([1, 2, 3], dtype=np.float32).data")
    t = Tensor(np.array([0.5, 1.5]), dtype=np.float64)
    expect_equal(t.dtype, F64, call="Tensor(np.array([0.5, 1.5]), dtype=np.float64).dtype",
                 hint="dtype= wins over the float32 default")
    expect_equal(Tensor([1.0, 2.0]).to(np.float64).dtype, F64, call="Tensor([1.0, 2.0]).to(np.float64).dtype",
                 hint="to(dtype) returns a new tensor in that dtype")


def test_shape_ndim_numel_len():
    """shape, ndim, numel() and len() describe a (2, 3, 4) tensor"""
    t = Tensor(np.zeros((2, 3, 4)))
    expect_equal(t.shape, (2, 3, 4), call="Tensor(np.zeros((2, 3, 4))).shape", hint="a tuple of axis sizes")
    expect_equal(t.ndim, 3, call="Tensor(np.zeros((2, 3, 4))).ndim", hint="the number of axes")
    expect_equal(t.numel(), 24, call="Tensor(np.zeros((2, 3, 4))).numel()", hint="the product of the shape")
    expect_equal(len(t), 2, call="len(Tensor(np.zeros((2, 3, 4))))", hint="len is the size of the first axis")


def test_item_and_tolist_give_python_values():
    """item() returns a plain Python number and tolist() nested Python lists"""
    value = Tensor([[7.5]]).item()
    expect_equal((value, type(value).__name__), (7.5, "float"), call="(Tensor([[7.5]]).item(), its type)",
                 hint="numpy's .item() turns a one-element array into a Python number (a float, not np.float32)")
    value = Tensor(3).item()
    expect_equal((value, type(value).__name__), (3, "int"), call="(Tensor(3).item(), its type)",
                 hint="an int64 element comes back as a Python int")
    expect_equal(Tensor([[1, 2], [3, 4]]).tolist(), [[1, 2], [3, 4]], call="Tensor([[1, 2], [3, 4]]).tolist()",
                 hint="numpy's .tolist()")


# -- elementwise arithmetic -------------------------------------------------------------------

OPS = {
    "+": (lambda x, y: x + y, torch.add),
    "-": (lambda x, y: x - y, torch.sub),
    "*": (lambda x, y: x * y, torch.mul),
    "/": (lambda x, y: x / y, torch.div),
}


@given(st.data(), hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4),
       st.sampled_from(sorted(OPS)))
def test_elementwise_broadcasting_matches_torch(data, shapes, op):
    """a + b, a - b, a * b and a / b broadcast like PyTorch (random shapes)"""
    shape_a, shape_b = shapes.input_shapes
    a = data.draw(float64_array(shape_a), label="a")
    b = data.draw(hnp.arrays(np.float64, shape_b, elements=nonzero), label="b")
    ours, theirs = OPS[op]
    got = ours(Tensor(a), Tensor(b))
    call = f"Tensor(a) {op} Tensor(b) with a.shape={shape_a}, b.shape={shape_b}"
    expect_float64(got, call)
    expect_close(got, theirs(torch64(a), torch64(b)), call=call, rtol=RTOL, atol=ATOL,
                 hint="check shapes with broadcast_shape, then let numpy compute on self.data and other.data")


@given(st.data(), st.integers(1, 4), st.integers(1, 4))
def test_elementwise_on_non_contiguous_inputs(data, rows, cols):
    """Arithmetic is right on transposed and strided (non-contiguous) inputs"""
    base = data.draw(float64_array((cols, rows)), label="base")
    other = data.draw(float64_array((rows, 2 * cols)), label="other")
    a, b = base.T, other[:, ::2]  # views with unusual strides
    got = Tensor(a) * Tensor(b) + Tensor(a)
    call = f"Tensor(base.T) * Tensor(other[:, ::2]) + Tensor(base.T) with base.shape={base.shape}"
    expect_close(got, torch64(a) * torch64(b) + torch64(a), call=call, rtol=RTOL, atol=ATOL,
                 hint="numpy handles strides for you: compute on the arrays as they are")


def test_python_numbers_on_either_side_keep_float32():
    """t + 1, 2 - t, 3 * t, 1 / t and t / 4 work and stay float32"""
    t = Tensor([1.0, 2.0, 4.0])
    x = np.array([1.0, 2.0, 4.0])
    # each expression is applied to the Tensor (yours) and to the numpy array (the expected value)
    cases = {
        "t + 1": lambda v: v + 1, "2 - t": lambda v: 2 - v, "3 * t": lambda v: 3 * v,
        "1 / t": lambda v: 1 / v, "t / 4": lambda v: v / 4, "0.5 + t": lambda v: 0.5 + v,
        "t - 0.25": lambda v: v - 0.25,
    }
    for text, compute in cases.items():
        got = compute(t)
        call = f"{text} with t = Tensor([1.0, 2.0, 4.0])"
        expect_equal(isinstance(got, Tensor), True, call=f"isinstance({text}, Tensor)",
                     hint="define the reflected operators (__radd__, __rsub__, __rmul__, __rtruediv__)")
        expect_close(got, compute(x), call=call, hint="2 - t is not t - 2: mind the order in __rsub__ and __rtruediv__")
        expect_equal(got.dtype, F32, call=f"({text}).dtype",
                     hint="turn a Python number into a tensor of the tensor's own float dtype, or numpy may promote")


@given(st.data(), st.sampled_from([2, 3, 0.5, -1, 1.5]))
def test_negation_and_power_match_torch(data, exponent):
    """-t and t ** p match PyTorch"""
    x = data.draw(float64_array((3, 4), 0.1, 4.0), label="x")
    expect_close(-Tensor(x), -torch64(x), call="-Tensor(x)", rtol=RTOL, atol=ATOL, hint="__neg__")
    expect_close(Tensor(x) ** exponent, torch64(x) ** exponent, call=f"Tensor(x) ** {exponent}",
                 rtol=RTOL, atol=ATOL, hint="__pow__ raises every element to the same Python-number power")


def test_comparisons_give_boolean_tensors():
    """<, >, <=, >= compare elementwise (with broadcasting) and give boolean tensors"""
    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    y = np.array([2.0, 2.0, 2.0])
    t, u = Tensor(x), Tensor(y)
    cases = {
        "t < u": lambda a, b: a < b, "t > u": lambda a, b: a > b,
        "t <= u": lambda a, b: a <= b, "t >= u": lambda a, b: a >= b,
        "t > 1.5": lambda a, b: a > 1.5, "t <= 2": lambda a, b: a <= 2,
    }
    for text, compare in cases.items():
        got = compare(t, u)
        call = f"{text} with t = Tensor({x.tolist()}), u = Tensor({y.tolist()})"
        expect_equal(got.dtype, np.dtype(bool), call=f"({text}).dtype", hint="a comparison gives True/False per element")
        expect_equal(got.data, compare(x, y), call=call,
                     hint="compare elementwise after broadcasting; <= and >= are True where the numbers are equal")


@given(st.data(), hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
def test_exp_log_sqrt_maximum_match_torch(data, shapes):
    """exp, log, sqrt and maximum (with broadcasting) match PyTorch"""
    shape_a, shape_b = shapes.input_shapes
    a = data.draw(float64_array(shape_a, 0.01, 5.0), label="a")
    b = data.draw(float64_array(shape_b, -1.0, 5.0), label="b")
    t = Tensor(a)
    expect_float64(t.exp(), f"Tensor(a).exp(), a.shape={shape_a}")
    expect_close(t.exp(), torch.exp(torch64(a)), call=f"Tensor(a).exp(), a.shape={shape_a}", rtol=RTOL, atol=ATOL)
    expect_close(t.log(), torch.log(torch64(a)), call=f"Tensor(a).log(), a.shape={shape_a}", rtol=RTOL, atol=ATOL)
    expect_close(t.sqrt(), torch.sqrt(torch64(a)), call=f"Tensor(a).sqrt(), a.shape={shape_a}", rtol=RTOL, atol=ATOL)
    expect_close(t.maximum(Tensor(b)), torch.maximum(torch64(a), torch64(b)),
                 call=f"Tensor(a).maximum(Tensor(b)), a.shape={shape_a}, b.shape={shape_b}", rtol=RTOL, atol=ATOL,
                 hint="maximum is elementwise and broadcasts like +")
    expect_close(Tensor(b).maximum(0), torch.clamp(torch64(b), min=0), call="Tensor(b).maximum(0)",
                 rtol=RTOL, atol=ATOL, hint="a Python number works as the other operand (this is ReLU)")


def test_broadcast_mismatch_raises_error_naming_both_shapes():
    """(2, 3) + (4,) raises a ValueError that names both shapes"""
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones(4))
    call = "Tensor(np.ones((2, 3))) + Tensor(np.ones(4))"
    hint = "check broadcast_shape(self.shape, other.shape) before computing, so the error names both shapes"
    error = expect_raises(ValueError, lambda: a + b, call=call, hint=hint)
    expect_that(str(error), mentions_all, "(2, 3)", "(4,)", call=call + ", its message",
                expected="a message naming both shapes, (2, 3) and (4,)", hint=hint)
    expect_raises(ValueError, lambda: a * b, call="Tensor(np.ones((2, 3))) * Tensor(np.ones(4))",
                  message_contains="(4,)", hint="every elementwise operator checks shapes the same way")
    expect_close(a * Tensor(np.arange(3.0)), np.ones((2, 3)) * np.arange(3.0),
                 call="Tensor(np.ones((2, 3))) * Tensor(np.arange(3.0))", hint="shapes that fit compute as usual")


# -- matrix multiplication --------------------------------------------------------------------

@given(st.data(), st.integers(1, 5), st.integers(1, 5), st.integers(1, 5))
def test_matmul_2d_matches_torch(data, m, k, n):
    """(m, k) @ (k, n) gives the (m, n) matrix product"""
    a = data.draw(float64_array((m, k)), label="a")
    b = data.draw(float64_array((k, n)), label="b")
    expect_close(Tensor(a) @ Tensor(b), torch64(a) @ torch64(b),
                 call=f"Tensor(a) @ Tensor(b), shapes {a.shape} @ {b.shape}", rtol=RTOL, atol=ATOL,
                 hint="row i of a times column j of b is entry (i, j); np.matmul does it for you")


@given(st.data(), hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=2, max_side=3),
       st.integers(1, 4), st.integers(1, 4), st.integers(1, 4))
def test_batched_matmul_broadcasts_batch_axes(data, batches, m, k, n):
    """Leading axes are batch axes and broadcast: (B, 1, m, k) @ (C, k, n) -> (B, C, m, n)"""
    batch_a, batch_b = batches.input_shapes
    a = data.draw(float64_array(batch_a + (m, k)), label="a")
    b = data.draw(float64_array(batch_b + (k, n)), label="b")
    expect_close(Tensor(a) @ Tensor(b), torch64(a) @ torch64(b),
                 call=f"Tensor(a) @ Tensor(b), shapes {a.shape} @ {b.shape}", rtol=RTOL, atol=ATOL,
                 hint="only the last two axes multiply; the axes before them broadcast like elementwise shapes")
    expect_close(Tensor(a) @ Tensor(b[(0,) * len(batch_b)]), torch64(a) @ torch64(b[(0,) * len(batch_b)]),
                 call=f"batched @ one matrix, shapes {a.shape} @ {(k, n)}", rtol=RTOL, atol=ATOL,
                 hint="a plain matrix on the right is shared by every batch entry")


def test_matmul_with_vectors_matches_torch():
    """matrix @ vector, vector @ matrix, vector @ vector and numpy @ Tensor follow numpy's rules"""
    rng = np.random.default_rng(1)
    matrix, left, right = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=4)
    # each product is taken of your Tensors and of torch tensors (the expected value)
    cases = {
        "matrix @ vector, (3, 4) @ (4,)": lambda m, l, r: m @ r,
        "vector @ matrix, (3,) @ (3, 4)": lambda m, l, r: l @ m,
        "vector @ vector, (4,) @ (4,)": lambda m, l, r: r @ r,
    }
    for call, product in cases.items():
        got = product(Tensor(matrix), Tensor(left), Tensor(right))
        expect_float64(got, call)
        expect_close(got, product(torch64(matrix), torch64(left), torch64(right)), call=call, rtol=RTOL, atol=ATOL,
                     hint="a 1-D operand is a vector: its axis takes part in the product and disappears")
    # a numpy array on the left: Python asks the Tensor on the right, through __rmatmul__
    square = rng.normal(size=(4, 2))
    got = matrix @ Tensor(square)
    expect_equal(isinstance(got, Tensor), True, call="isinstance(<numpy (3, 4)> @ Tensor(<(4, 2)>), Tensor)",
                 hint="numpy defers to Tensor (__array_ufunc__ = None), so __rmatmul__ must lift the array")
    expect_close(got, torch64(matrix) @ torch64(square), call="<numpy (3, 4)> @ Tensor(<(4, 2)>)", rtol=RTOL, atol=ATOL,
                 hint="in __rmatmul__ the other operand is on the left: other @ self, not self @ other")


def test_matmul_inner_size_mismatch_names_both_shapes():
    """(2, 3) @ (4, 5) raises a ValueError naming both shapes"""
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5)))
    call = "Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))"
    hint = "the last axis of the left (3) must equal the second-to-last of the right (4); say so with both shapes"
    error = expect_raises(ValueError, lambda: a @ b, call=call, hint=hint)
    expect_that(str(error), mentions_all, "(2, 3)", "(4, 5)", call=call + ", its message",
                expected="a message naming both shapes, (2, 3) and (4, 5)", hint=hint)
    batch = Tensor(np.arange(24.0).reshape(4, 3, 2))
    expect_close(batch @ Tensor(np.ones((2, 5))), np.arange(24.0).reshape(4, 3, 2) @ np.ones((2, 5)),
                 call="Tensor(<shape (4, 3, 2)>) @ Tensor(np.ones((2, 5)))",
                 hint="the inner sizes are the left's last axis (2) and the right's second-to-last (2), "
                      "not the right's first axis")


# -- shapes without copies --------------------------------------------------------------------

def test_reshape_with_minus_one():
    """reshape accepts sizes or a tuple, and one -1 that is inferred"""
    x = np.arange(12.0)
    t = Tensor(x)
    for args in ((3, -1), ((2, 6),), (-1, 2, 3), (-1,)):
        text = ", ".join(map(str, args))
        got = t.reshape(*args)
        expect_equal(got.shape, x.reshape(*args).shape, call=f"Tensor(np.arange(12.0)).reshape({text}).shape",
                     hint="-1 stands for the size that makes the element count fit")
        expect_equal(got.data, x.reshape(*args), call=f"Tensor(np.arange(12.0)).reshape({text})",
                     hint="reshape keeps the numbers in row-major order")
    expect_equal(np.shares_memory(t.reshape(3, 4).data, x), True,
                 call="Tensor(np.arange(12.0)).reshape(3, 4) shares memory with the original",
                 hint="reshaping a contiguous array is free: wrap numpy's reshape result, do not copy it")


def test_reshape_wrong_element_count_raises():
    """Reshaping 12 numbers into (5, 2) or (5, -1) raises ValueError mentioning the 12 elements"""
    t = Tensor(np.arange(12.0).reshape(3, 4))
    for args in ((5, 2), (5, -1)):
        text = ", ".join(map(str, args))
        expect_raises(ValueError, lambda: t.reshape(*args), call=f"Tensor(<shape (3, 4)>).reshape({text})",
                      message_contains="12", hint="12 elements do not fit; say how many there are")


def test_transpose_permute_and_T_are_views():
    """transpose, permute and T match numpy and share memory with the original"""
    x = np.arange(24.0).reshape(2, 3, 4)
    t = Tensor(x)
    # (text, yours, numpy's): the numpy function is called only for the expected value
    cases = (
        ("transpose()", lambda: t.transpose(), lambda: np.swapaxes(x, -2, -1)),
        ("transpose(0, 2)", lambda: t.transpose(0, 2), lambda: np.swapaxes(x, 0, 2)),
        ("permute(2, 0, 1)", lambda: t.permute(2, 0, 1), lambda: np.transpose(x, (2, 0, 1))),
        ("T", lambda: t.T, lambda: x.T),
    )
    for text, yours, numpys in cases:
        got = yours()
        call = f"Tensor(np.arange(24.0).reshape(2, 3, 4)).{text}"
        expect_equal(got.shape, numpys().shape, call=call + ".shape",
                     hint="transpose swaps two axes (the last two by default), permute reorders all, T reverses all")
        expect_equal(got.data, numpys(), call=call, hint="compare with np.swapaxes / np.transpose")
        expect_equal(np.shares_memory(got.data, x), True, call=call + " shares memory with the original",
                     hint="a transpose changes only shape and strides; do not copy the numbers")


def test_transpose_of_a_vector_or_scalar_is_unchanged():
    """transpose() of a tensor with fewer than 2 axes returns the same numbers and shape"""
    for text, make in (("np.array([1.0, -2.0, 3.0])", lambda: np.array([1.0, -2.0, 3.0])),
                       ("np.float64(2.5)", lambda: np.float64(2.5))):
        got = Tensor(make()).transpose()
        call = f"Tensor({text}).transpose()"
        expect_equal((got.shape, got.dtype), (np.shape(make()), F64), call=call + " (.shape, .dtype)",
                     hint="with fewer than 2 axes there is nothing to swap: return the tensor's numbers unchanged "
                          "(np.swapaxes would raise for axis -2)")
        expect_equal(got.data, np.asarray(make()), call=call, hint="the same numbers")
    matrix = np.arange(6.0).reshape(2, 3)
    expect_equal(Tensor(matrix).transpose().data, matrix.T, call="Tensor(np.arange(6.0).reshape(2, 3)).transpose()",
                 hint="a matrix still swaps its two axes")


def test_contiguous_and_is_contiguous():
    """A transposed matrix is not contiguous; contiguous() makes a compact copy"""
    x = np.arange(6.0).reshape(2, 3)
    t = Tensor(x)
    expect_equal(t.is_contiguous(), True, call="Tensor(np.arange(6.0).reshape(2, 3)).is_contiguous()",
                 hint="look at the numpy array's flags['C_CONTIGUOUS']")
    expect_equal(t.T.is_contiguous(), False, call="Tensor(...).T.is_contiguous()",
                 hint="a transposed matrix's rows are not next to each other in memory")
    compact = t.T.contiguous()
    expect_equal(compact.is_contiguous(), True, call="Tensor(...).T.contiguous().is_contiguous()",
                 hint="np.ascontiguousarray makes a row-major copy")
    expect_equal(compact.data, x.T, call="Tensor(...).T.contiguous()", hint="the same numbers, laid out compactly")
    expect_equal(np.shares_memory(compact.data, x), False, call="Tensor(...).T.contiguous() shares memory with x",
                 hint="contiguous() must copy here: a view keeps the transposed strides")


def test_flatten_unsqueeze_squeeze():
    """flatten, unsqueeze and squeeze give the shapes PyTorch gives"""
    x = np.arange(24.0).reshape(2, 3, 4)
    u = np.arange(6.0).reshape(1, 2, 1, 3)
    # each method call is made on your Tensors and on torch tensors (the expected value)
    cases = {
        "t.flatten()": lambda t, u: t.flatten(),
        "t.flatten(1)": lambda t, u: t.flatten(1),
        "t.flatten(-2)": lambda t, u: t.flatten(-2),
        "t.unsqueeze(0)": lambda t, u: t.unsqueeze(0),
        "t.unsqueeze(-1)": lambda t, u: t.unsqueeze(-1),
        "t.unsqueeze(1)": lambda t, u: t.unsqueeze(1),
        "u.squeeze()": lambda t, u: u.squeeze(),
        "u.squeeze(2)": lambda t, u: u.squeeze(2),
        "u.squeeze(1)": lambda t, u: u.squeeze(1),
    }
    for text, method in cases.items():
        got = method(Tensor(x), Tensor(u))
        call = f"{text} with t of shape (2, 3, 4), u of shape (1, 2, 1, 3)"
        expect_equal(got.shape, tuple(method(torch64(x), torch64(u)).shape), call=call + " .shape",
                     hint="unsqueeze(-1) appends an axis at the end; squeeze(axis) on an axis whose size is not 1 "
                          "leaves the tensor unchanged, as in PyTorch")
        expect_close(got, method(torch64(x), torch64(u)), call=call, hint="the numbers stay in the same row-major order")


# -- indexing ---------------------------------------------------------------------------------

def test_basic_indexing_matches_numpy():
    """Integers, slices, negative steps and ... index like numpy; slices are views"""
    x = np.arange(60.0).reshape(3, 4, 5)
    t = Tensor(x)
    # the same index is given to your Tensor and to the numpy array (the expected value)
    cases = {
        "t[1]": 1, "t[1, 2]": (1, 2), "t[1, 2, 3]": (1, 2, 3), "t[:, 1:3]": (slice(None), slice(1, 3)),
        "t[..., -1]": (Ellipsis, -1), "t[::2, ::-1]": (slice(None, None, 2), slice(None, None, -1)),
        "t[-1, ..., 1:]": (-1, Ellipsis, slice(1, None)),
    }
    for text, index in cases.items():
        got = t[index]
        call = f"{text} with t = Tensor(np.arange(60.0).reshape(3, 4, 5))"
        expect_equal(isinstance(got, Tensor), True, call=f"isinstance({text}, Tensor)",
                     hint="wrap what numpy's indexing returns in a Tensor")
        expect_equal(got.shape, np.shape(x[index]), call=call + " .shape", hint="index self.data the same way")
        expect_equal(got.data, np.asarray(x[index]), call=call)
    expect_equal(np.shares_memory(t[:, 1:3].data, x), True, call="t[:, 1:3] shares memory with t",
                 hint="a slice is a view; pass the index straight to numpy")


def test_fancy_and_boolean_indexing_matches_numpy():
    """Integer lists and boolean masks (numpy or Tensor) index like numpy and copy"""
    x = np.arange(12.0).reshape(3, 4) - 5
    t = Tensor(x)
    # (text, your index, the same index for numpy): a Tensor mask is given to numpy as its array
    cases = (
        ("t[[0, 2]]", [0, 2], [0, 2]),
        ("t[[0, 1], [1, 3]]", ([0, 1], [1, 3]), ([0, 1], [1, 3])),
        ("t[:, [3, 0]]", (slice(None), [3, 0]), (slice(None), [3, 0])),
        ("t[x > 0] (numpy mask)", x > 0, x > 0),
        ("t[t > 0] (Tensor mask)", Tensor(x > 0), x > 0),
    )
    for text, index, numpy_index in cases:
        got = t[index]
        call = f"{text} with t = Tensor(np.arange(12.0).reshape(3, 4) - 5)"
        expect_equal(got.shape, x[numpy_index].shape, call=call + " .shape",
                     hint="numpy understands arrays, not Tensors, inside an index: use the Tensor's .data")
        expect_equal(got.data, x[numpy_index], call=call)
    expect_equal(np.shares_memory(t[[0, 2]].data, x), False, call="t[[0, 2]] shares memory with t",
                 hint="fancy indexing gathers rows into new memory")


def test_tensor_as_index_picks_class_scores():
    """A Tensor of labels indexes rows, and picks one score per row with arange"""
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]])
    labels = np.array([1, 0, 2, 0])
    t = Tensor(scores)
    got = t[arange(4), Tensor(labels)]
    expect_close(got, scores[np.arange(4), labels], call="Tensor(scores)[arange(4), Tensor([1, 0, 2, 0])]",
                 hint="replace every Tensor inside the index (also inside a tuple) with its numpy array")
    got = t[Tensor(np.array([3, 3, 0]))]
    expect_close(got, scores[[3, 3, 0]], call="Tensor(scores)[Tensor(np.array([3, 3, 0]))]",
                 hint="a Tensor of integers selects rows, repeats allowed")


# -- reductions -------------------------------------------------------------------------------

@st.composite
def array_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    x = draw(float64_array(shape))
    ndim = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
    ))
    return x, axis


REDUCTIONS = {
    "sum": lambda r, dim, keep: torch.sum(r, dim=dim, keepdim=keep),
    "mean": lambda r, dim, keep: torch.mean(r, dim=dim, keepdim=keep),
    "var": lambda r, dim, keep: torch.var(r, dim=dim, keepdim=keep, correction=0),
    "max": lambda r, dim, keep: torch.amax(r, dim=dim, keepdim=keep),
    "min": lambda r, dim, keep: torch.amin(r, dim=dim, keepdim=keep),
}


# Always tried, whatever Hypothesis draws: a tuple of two axes that are not neighbours.
TWO_AXES = (np.random.default_rng(5).standard_normal((2, 3, 4)), (0, 2))


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(x_axis=array_and_axis(), keepdims=st.booleans())
@example(x_axis=TWO_AXES, keepdims=False)
@example(x_axis=TWO_AXES, keepdims=True)
def test_reductions_match_torch(x_axis, keepdims, name):
    """sum, mean, var, max and min with axis None, int, negative or tuple, and keepdims"""
    x, axis = x_axis
    dim = tuple(range(x.ndim)) if axis is None else axis  # axis=None reduces every axis
    got = getattr(Tensor(x), name)(axis=axis, keepdims=keepdims)
    call = f"Tensor(x).{name}(axis={axis}, keepdims={keepdims}) with x.shape={x.shape}"
    expect_float64(got, call)
    expect_close(got, REDUCTIONS[name](torch64(x), dim, keepdims), call=call, rtol=RTOL, atol=ATOL,
                 hint="numpy's reductions take axis= and keepdims= directly; var divides by n, not n - 1")


def test_keepdims_result_broadcasts_back():
    """x - x.mean(axis=0, keepdims=True) centres every column"""
    x = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])
    t = Tensor(x)
    mean = t.mean(axis=0, keepdims=True)
    expect_equal(mean.shape, (1, 2), call="Tensor(x).mean(axis=0, keepdims=True).shape with x.shape=(3, 2)",
                 hint="keepdims keeps the reduced axis as size 1")
    expect_close(t - mean, x - x.mean(axis=0, keepdims=True), call="Tensor(x) - Tensor(x).mean(axis=0, keepdims=True)",
                 hint="a (1, 2) mean broadcasts against the (3, 2) matrix")
    expect_equal(t.sum(axis=1).shape, (3,), call="Tensor(x).sum(axis=1).shape", hint="without keepdims the axis goes away")


def test_argmax_matches_torch():
    """argmax finds the index of the largest element, overall or along an axis"""
    x = np.array([[0.1, 2.5, -1.0, 0.3], [4.0, 0.2, 3.9, -2.0], [0.0, 0.1, 0.2, 0.3]])
    t = Tensor(x)
    for axis in (None, 0, 1, -1):
        got = t.argmax(axis=axis) if axis is not None else t.argmax()
        expected = torch.argmax(torch64(x)) if axis is None else torch.argmax(torch64(x), dim=axis)
        call = f"Tensor(x).argmax({'' if axis is None else f'axis={axis}'}) with x.shape={x.shape}"
        expect_equal(got.shape, tuple(expected.shape), call=call + " .shape", hint="argmax removes the reduced axis")
        expect_equal(got.data, expected.numpy(), call=call,
                     hint="with no axis, the index is into the flattened tensor, as in numpy and PyTorch")
        expect_that(got, has_integer_dtype, call=call + " .dtype", expected="an integer dtype",
                    hint="indices are integers")


# -- making tensors: factories and randomness ------------------------------------------

def test_zeros_ones_full():
    """zeros, ones and full make float32 tensors of the asked shape and value"""
    # (call, yours, numpy's): numpy's is called only for the expected value
    cases = (
        ("zeros(2, 3)", lambda: zeros(2, 3), lambda: np.zeros((2, 3))),
        ("zeros((2, 3))", lambda: zeros((2, 3)), lambda: np.zeros((2, 3))),
        ("ones(4)", lambda: ones(4), lambda: np.ones(4)),
        ("ones((1, 2, 3))", lambda: ones((1, 2, 3)), lambda: np.ones((1, 2, 3))),
        ("full((2, 2), 7.0)", lambda: full((2, 2), 7.0), lambda: np.full((2, 2), 7.0)),
    )
    for call, yours, numpys in cases:
        got = yours()
        expect_equal(got.shape, numpys().shape, call=call + ".shape", hint="accept both zeros(2, 3) and zeros((2, 3))")
        expect_equal(got.dtype, F32, call=call + ".dtype", hint="factories default to float32")
        expect_close(got, numpys(), call=call)
    expect_equal(zeros(3, dtype=np.int64).dtype, I64, call="zeros(3, dtype=np.int64).dtype", hint="honour dtype=")


def test_arange():
    """arange counts like Python's range: integers stay int64, a float step gives float32"""
    # the same arguments go to your arange and to numpy's (the expected numbers)
    for args in ((5,), (2, 10, 3), (0, 1, 0.25)):
        call = f"arange{args}" if len(args) > 1 else f"arange({args[0]})"
        got = arange(*args)
        expect_equal(got.data.tolist(), np.arange(*args).tolist(), call=call,
                     hint="arange(stop) starts at 0; stop is excluded")
        expect_equal(got.dtype, F32 if any(isinstance(a, float) for a in args) else I64, call=call + ".dtype",
                     hint="as with Python numbers: ints stay int64, floats are float32")


def test_random_tensors_repeat_after_manual_seed():
    """randn and rand have the asked shape, are float32, and repeat after manual_seed"""
    manual_seed(123)
    first_n, first_u = randn(3, 4), rand(2, 5)
    manual_seed(123)
    again_n, again_u = randn(3, 4), rand(2, 5)
    later_n = randn(3, 4)
    expect_equal((first_n.shape, first_u.shape), ((3, 4), (2, 5)), call="(randn(3, 4).shape, rand(2, 5).shape)",
                 hint="accept the shape as separate sizes")
    expect_equal((first_n.dtype, first_u.dtype), (F32, F32), call="(randn(3, 4).dtype, rand(2, 5).dtype)",
                 hint="random tensors are float32 by default")
    # the two draws are compared with each other (on the grader's side), never with the reference's draws
    expect_that((first_n, again_n), same_arrays, call="manual_seed(123); randn(3, 4), then the same again",
                expected="the same numbers both times", hint="draw from generator(), the generator manual_seed resets")
    expect_that((first_u, again_u), same_arrays, call="manual_seed(123); rand(2, 5), then the same again",
                expected="the same numbers both times", hint="draw from generator(), the generator manual_seed resets")
    expect_that((first_n, later_n), different_arrays, call="randn(3, 4) drawn again without reseeding",
                expected="new numbers", hint="do not reseed inside randn: each draw moves the generator on")
    expect_that(first_u, in_unit_interval, call="rand(2, 5)", expected="every value in [0, 1)",
                hint="rand is uniform on [0, 1): the generator's random()")


def test_random_tensor_statistics():
    """randn has mean 0 and std 1, rand has mean 1/2, on 200,000 samples"""
    manual_seed(0)
    expect_that(randn(SAMPLES), standard_normal_sample, call=f"randn({SAMPLES})",
                expected="mean within 0.02 of 0 and std within 0.02 of 1",
                hint="use the generator's standard_normal")
    expect_that(rand(SAMPLES), uniform_sample, call=f"rand({SAMPLES})",
                expected="values in [0, 1) with mean within 0.01 of 0.5 and std within 0.01 of 0.2887",
                hint="use the generator's random()")
