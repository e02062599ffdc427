"""Checkpoint 01: Tensor.

Your Tensor is compared with numpy and with PyTorch in float64: creation and dtypes,
broadcasting arithmetic (random shapes drawn by Hypothesis), matmul, views, indexing,
reductions, factories, and the messages of shape errors.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_raises, expect_true
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


def torch64(array: np.ndarray) -> torch.Tensor:
    """The same numbers as a float64 torch tensor (a copy, so any strides are fine)."""
    return torch.tensor(np.asarray(array, dtype=np.float64))


def expect_float64(got, call: str) -> None:
    """float64 in must give float64 out, also when numpy hands back a numpy scalar."""
    expect_equal(got.dtype, F64, call=call + " .dtype",
                 hint="float64 in, float64 out; a 0-d result comes from numpy as a numpy scalar "
                      "(np.float64), which must keep its dtype too")


def values(low: float = -5.0, high: float = 5.0):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def float64_array(shape: tuple[int, ...], low: float = -5.0, high: float = 5.0):
    return hnp.arrays(np.float64, shape, elements=values(low, high))


# Divisors stay away from zero so that a / b is well conditioned.
nonzero = st.one_of(values(-5.0, -0.5), values(0.5, 5.0))


# -- broadcasting --------------------------------------------------------------------------

@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4))
def test_broadcast_shape_matches_numpy(shapes):
    """broadcast_shape gives the shape numpy broadcasting gives"""
    a, b = shapes.input_shapes
    expect_equal(tuple(broadcast_shape(a, b)), shapes.result_shape,
                 call=f"broadcast_shape({a}, {b})",
                 hint="compare shapes from the right; sizes fit when equal or one is 1; a missing axis counts as 1")


def test_broadcast_shape_error_names_both_shapes():
    """broadcast_shape raises a ValueError naming both shapes when they do not fit"""
    call = "broadcast_shape((2, 3), (4,))"
    error = expect_raises(ValueError, lambda: broadcast_shape((2, 3), (4,)), call=call,
                          message_contains="(2, 3)",
                          hint="raise ValueError with both shapes in the message, e.g. f'{tuple(a)} and {tuple(b)}'")
    expect_true("(4,)" in str(error), call=call, expected="a message that also names (4,)",
                got=str(error), hint="name both shapes so the reader sees which operand is off")


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
        array = np.array([[1, 0], [0, 1]], dtype=dtype)
        t = Tensor(array)
        name = np.dtype(dtype).name
        expect_equal(t.dtype, np.dtype(dtype), call=f"Tensor(np.array([[1, 0], [0, 1]], dtype=np.{name})).dtype",
                     hint="convert only Python floats to float32; a numpy array's dtype is the caller's choice")
        expect_equal(t.data, array, call=f"Tensor(<{name} array>).data", hint="same numbers")


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
    expect_true(type(value) is float and value == 7.5, call="Tensor([[7.5]]).item()",
                expected="7.5 (a Python float)", got=f"{value!r} ({type(value).__name__})",
                hint="numpy's .item() turns a one-element array into a Python number")
    value = Tensor(3).item()
    expect_true(type(value) is int and value == 3, call="Tensor(3).item()",
                expected="3 (a Python int)", got=f"{value!r} ({type(value).__name__})")
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
    cases = {
        "t + 1": (lambda: t + 1, x + 1),
        "2 - t": (lambda: 2 - t, 2 - x),
        "3 * t": (lambda: 3 * t, 3 * x),
        "1 / t": (lambda: 1 / t, 1 / x),
        "t / 4": (lambda: t / 4, x / 4),
        "0.5 + t": (lambda: 0.5 + t, 0.5 + x),
        "t - 0.25": (lambda: t - 0.25, x - 0.25),
    }
    for text, (compute, expected) in cases.items():
        got = compute()
        call = f"{text} with t = Tensor([1.0, 2.0, 4.0])"
        expect_true(isinstance(got, Tensor), call=call, expected="a Tensor", got=type(got).__name__,
                    hint="define the reflected operators (__radd__, __rsub__, __rmul__, __rtruediv__)")
        expect_close(got, expected, call=call, hint="2 - t is not t - 2: mind the order in __rsub__ and __rtruediv__")
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
        "t < u": (t < u, x < y), "t > u": (t > u, x > y),
        "t <= u": (t <= u, x <= y), "t >= u": (t >= u, x >= y),
        "t > 1.5": (t > 1.5, x > 1.5), "t <= 2": (t <= 2, x <= 2),
    }
    for text, (got, expected) in cases.items():
        call = f"{text} with t = Tensor({x.tolist()}), u = Tensor({y.tolist()})"
        expect_equal(got.dtype, np.dtype(bool), call=f"({text}).dtype", hint="a comparison gives True/False per element")
        expect_equal(got.data, expected, call=call, hint="compare elementwise after broadcasting")


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
    error = expect_raises(ValueError, lambda: a + b, call=call, message_contains="(2, 3)", hint=hint)
    expect_true("(4,)" in str(error), call=call, expected="a message that also names (4,)", got=str(error), hint=hint)
    expect_raises(ValueError, lambda: a * b, call="Tensor(np.ones((2, 3))) * Tensor(np.ones(4))",
                  message_contains="(4,)", hint="every elementwise operator checks shapes the same way")


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
    """matrix @ vector, vector @ matrix and vector @ vector follow numpy's rules"""
    rng = np.random.default_rng(1)
    matrix, left, right = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=4)
    cases = {
        "matrix @ vector, (3, 4) @ (4,)": (Tensor(matrix) @ Tensor(right), torch64(matrix) @ torch64(right)),
        "vector @ matrix, (3,) @ (3, 4)": (Tensor(left) @ Tensor(matrix), torch64(left) @ torch64(matrix)),
        "vector @ vector, (4,) @ (4,)": (Tensor(right) @ Tensor(right), torch64(right) @ torch64(right)),
    }
    for call, (got, expected) in cases.items():
        expect_float64(got, call)
        expect_close(got, expected, call=call, rtol=RTOL, atol=ATOL,
                     hint="a 1-D operand is a vector: its axis takes part in the product and disappears")


def test_matmul_inner_size_mismatch_names_both_shapes():
    """(2, 3) @ (4, 5) raises a ValueError naming both shapes"""
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5)))
    call = "Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))"
    hint = "the last axis of the left (3) must equal the second-to-last of the right (4); say so with both shapes"
    error = expect_raises(ValueError, lambda: a @ b, call=call, message_contains="(2, 3)", hint=hint)
    expect_true("(4, 5)" in str(error), call=call, expected="a message that also names (4, 5)", got=str(error), hint=hint)


# -- shapes without copies --------------------------------------------------------------------

def test_reshape_with_minus_one():
    """reshape accepts sizes or a tuple, and one -1 that is inferred"""
    x = np.arange(12.0)
    t = Tensor(x)
    for args, shape in (((3, -1), (3, 4)), (((2, 6),), (2, 6)), ((-1, 2, 3), (2, 2, 3)), ((-1,), (12,))):
        text = ", ".join(map(str, args))
        got = t.reshape(*args)
        expect_equal(got.shape, shape, call=f"Tensor(np.arange(12.0)).reshape({text}).shape",
                     hint="-1 stands for the size that makes the element count fit")
        expect_equal(got.data, x.reshape(shape), call=f"Tensor(np.arange(12.0)).reshape({text})",
                     hint="reshape keeps the numbers in row-major order")
    expect_true(np.shares_memory(t.reshape(3, 4).data, x), call="Tensor(np.arange(12.0)).reshape(3, 4)",
                expected="a view sharing memory with the original", got="a copy",
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
    cases = {
        "transpose()": (t.transpose(), np.swapaxes(x, -2, -1)),
        "transpose(0, 2)": (t.transpose(0, 2), np.swapaxes(x, 0, 2)),
        "permute(2, 0, 1)": (t.permute(2, 0, 1), np.transpose(x, (2, 0, 1))),
        "T": (t.T, x.T),
    }
    for text, (got, expected) in cases.items():
        call = f"Tensor(np.arange(24.0).reshape(2, 3, 4)).{text}"
        expect_equal(got.shape, expected.shape, call=call + ".shape", hint="transpose swaps two axes, permute reorders all")
        expect_equal(got.data, expected, call=call, hint="compare with np.swapaxes / np.transpose")
        expect_true(np.shares_memory(got.data, x), call=call, expected="a view sharing memory with the original",
                    got="a copy", hint="a transpose changes only shape and strides; do not copy the numbers")


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
    expect_true(not np.shares_memory(compact.data, x), call="Tensor(...).T.contiguous()",
                expected="a new block of memory", got="a view of the original", hint="contiguous() must copy here")


def test_flatten_unsqueeze_squeeze():
    """flatten, unsqueeze and squeeze give the shapes PyTorch gives"""
    x = np.arange(24.0).reshape(2, 3, 4)
    t = Tensor(x)
    ref = torch64(x)
    one = Tensor(np.arange(6.0).reshape(1, 2, 1, 3))
    one_ref = torch64(np.arange(6.0).reshape(1, 2, 1, 3))
    cases = {
        "t.flatten()": (t.flatten(), torch.flatten(ref)),
        "t.flatten(1)": (t.flatten(1), torch.flatten(ref, 1)),
        "t.unsqueeze(0)": (t.unsqueeze(0), ref.unsqueeze(0)),
        "t.unsqueeze(-1)": (t.unsqueeze(-1), ref.unsqueeze(-1)),
        "t.unsqueeze(1)": (t.unsqueeze(1), ref.unsqueeze(1)),
        "u.squeeze()": (one.squeeze(), one_ref.squeeze()),
        "u.squeeze(2)": (one.squeeze(2), one_ref.squeeze(2)),
        "u.squeeze(1)": (one.squeeze(1), one_ref.squeeze(1)),
    }
    for text, (got, expected) in cases.items():
        call = f"{text} with t of shape (2, 3, 4), u of shape (1, 2, 1, 3)"
        expect_equal(got.shape, tuple(expected.shape), call=call + " .shape",
                     hint="squeeze(axis) on an axis whose size is not 1 leaves the tensor unchanged, as in PyTorch")
        expect_close(got, expected, call=call, hint="the numbers stay in the same row-major order")


# -- indexing ---------------------------------------------------------------------------------

def test_basic_indexing_matches_numpy():
    """Integers, slices, negative steps and ... index like numpy; slices are views"""
    x = np.arange(60.0).reshape(3, 4, 5)
    t = Tensor(x)
    cases = {
        "t[1]": (t[1], x[1]), "t[1, 2]": (t[1, 2], x[1, 2]), "t[1, 2, 3]": (t[1, 2, 3], x[1, 2, 3]),
        "t[:, 1:3]": (t[:, 1:3], x[:, 1:3]), "t[..., -1]": (t[..., -1], x[..., -1]),
        "t[::2, ::-1]": (t[::2, ::-1], x[::2, ::-1]), "t[-1, ..., 1:]": (t[-1, ..., 1:], x[-1, ..., 1:]),
    }
    for text, (got, expected) in cases.items():
        call = f"{text} with t = Tensor(np.arange(60.0).reshape(3, 4, 5))"
        expect_true(isinstance(got, Tensor), call=call, expected="a Tensor", got=type(got).__name__,
                    hint="wrap what numpy's indexing returns in a Tensor")
        expect_equal(got.shape, np.shape(expected), call=call + " .shape", hint="index self.data the same way")
        expect_equal(got.data, np.asarray(expected), call=call)
    expect_true(np.shares_memory(t[:, 1:3].data, x), call="t[:, 1:3]", expected="a view sharing memory",
                got="a copy", hint="a slice is a view; pass the index straight to numpy")


def test_fancy_and_boolean_indexing_matches_numpy():
    """Integer lists and boolean masks (numpy or Tensor) index like numpy and copy"""
    x = np.arange(12.0).reshape(3, 4) - 5
    t = Tensor(x)
    cases = {
        "t[[0, 2]]": (t[[0, 2]], x[[0, 2]]),
        "t[[0, 1], [1, 3]]": (t[[0, 1], [1, 3]], x[[0, 1], [1, 3]]),
        "t[:, [3, 0]]": (t[:, [3, 0]], x[:, [3, 0]]),
        "t[x > 0] (numpy mask)": (t[x > 0], x[x > 0]),
        "t[t > 0] (Tensor mask)": (t[t > 0], x[x > 0]),
    }
    for text, (got, expected) in cases.items():
        call = f"{text} with t = Tensor(np.arange(12.0).reshape(3, 4) - 5)"
        expect_equal(got.shape, expected.shape, call=call + " .shape",
                     hint="numpy understands arrays, not Tensors, inside an index: use the Tensor's .data")
        expect_equal(got.data, expected, call=call)
    expect_true(not np.shares_memory(t[[0, 2]].data, x), call="t[[0, 2]]", expected="a copy",
                got="a view", hint="fancy indexing gathers rows into new memory")


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


@given(array_and_axis(), st.booleans(), st.sampled_from(sorted(REDUCTIONS)))
def test_reductions_match_torch(x_axis, keepdims, name):
    """sum, mean, var, max and min with axis None, int, negative or tuple, and keepdims"""
    x, axis = x_axis
    dim = tuple(range(x.ndim)) if axis is None else axis  # axis=None reduces every axis
    expected = REDUCTIONS[name](torch64(x), dim, keepdims)
    got = getattr(Tensor(x), name)(axis=axis, keepdims=keepdims)
    call = f"Tensor(x).{name}(axis={axis}, keepdims={keepdims}) with x.shape={x.shape}"
    expect_float64(got, call)
    expect_close(got, expected, call=call, rtol=RTOL, atol=ATOL,
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
        expect_true(got.dtype.kind == "i", call=call + " .dtype", expected="an integer dtype", got=str(got.dtype),
                    hint="indices are integers")


# -- making tensors: factories and randomness ------------------------------------------

def test_zeros_ones_full():
    """zeros, ones and full make float32 tensors of the asked shape and value"""
    cases = {
        "zeros(2, 3)": (zeros(2, 3), np.zeros((2, 3))),
        "zeros((2, 3))": (zeros((2, 3)), np.zeros((2, 3))),
        "ones(4)": (ones(4), np.ones(4)),
        "ones((1, 2, 3))": (ones((1, 2, 3)), np.ones((1, 2, 3))),
        "full((2, 2), 7.0)": (full((2, 2), 7.0), np.full((2, 2), 7.0)),
    }
    for call, (got, expected) in cases.items():
        expect_equal(got.shape, expected.shape, call=call + ".shape", hint="accept both zeros(2, 3) and zeros((2, 3))")
        expect_equal(got.dtype, F32, call=call + ".dtype", hint="factories default to float32")
        expect_close(got, expected, call=call)
    expect_equal(zeros(3, dtype=np.int64).dtype, I64, call="zeros(3, dtype=np.int64).dtype", hint="honour dtype=")


def test_arange():
    """arange counts like Python's range: integers stay int64, a float step gives float32"""
    cases = {
        "arange(5)": (arange(5), np.arange(5), I64),
        "arange(2, 10, 3)": (arange(2, 10, 3), np.arange(2, 10, 3), I64),
        "arange(0, 1, 0.25)": (arange(0, 1, 0.25), np.arange(0, 1, 0.25), F32),
    }
    for call, (got, expected, dtype) in cases.items():
        expect_equal(got.data.tolist(), expected.tolist(), call=call, hint="arange(stop) starts at 0; stop is excluded")
        expect_equal(got.dtype, dtype, call=call + ".dtype", hint="as with Python numbers: ints stay int64, floats are float32")


def test_random_tensors_repeat_after_manual_seed():
    """randn and rand have the asked shape, are float32, and repeat after manual_seed"""
    manual_seed(123)
    first_n, first_u = randn(3, 4), rand(2, 5)
    manual_seed(123)
    again_n, again_u = randn(3, 4), rand(2, 5)
    for call, got, shape in (("randn(3, 4)", first_n, (3, 4)), ("rand(2, 5)", first_u, (2, 5))):
        expect_equal(got.shape, shape, call=call + ".shape", hint="accept the shape as separate sizes")
        expect_equal(got.dtype, F32, call=call + ".dtype", hint="random tensors are float32 by default")
    expect_equal(again_n.data, first_n.data, call="manual_seed(123); randn(3, 4) twice",
                 hint="draw from generator(), the generator manual_seed resets")
    expect_equal(again_u.data, first_u.data, call="manual_seed(123); rand(2, 5) twice",
                 hint="draw from generator(), the generator manual_seed resets")
    expect_true(not np.array_equal(randn(3, 4).data, first_n.data), call="randn(3, 4) without reseeding",
                expected="new numbers", got="the same numbers again", hint="do not reseed inside randn")
    expect_true(bool(np.all((first_u.data >= 0) & (first_u.data < 1))), call="rand(2, 5)",
                expected="every value in [0, 1)", got=str(first_u.data), hint="rand is uniform on [0, 1)")


def test_random_tensor_statistics():
    """randn has mean 0 and std 1, rand has mean 1/2, on 200,000 samples"""
    manual_seed(0)
    normal = randn(200_000).data.astype(np.float64)
    uniform = rand(200_000).data.astype(np.float64)
    # The standard error of the mean is 1/sqrt(200000) = 0.0022; these bounds are ~9 of them.
    expect_true(abs(normal.mean()) < 0.02 and abs(normal.std() - 1) < 0.02, call="randn(200000)",
                expected="mean within 0.02 of 0 and std within 0.02 of 1",
                got=f"mean {normal.mean():.4f}, std {normal.std():.4f}", hint="use the generator's standard_normal")
    expect_true(abs(uniform.mean() - 0.5) < 0.01 and abs(uniform.std() - 12 ** -0.5) < 0.01, call="rand(200000)",
                expected="mean within 0.01 of 0.5 and std within 0.01 of 0.2887",
                got=f"mean {uniform.mean():.4f}, std {uniform.std():.4f}", hint="use the generator's random()")
