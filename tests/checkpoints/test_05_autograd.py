"""Checkpoint 05: Autograd.

The scalar `Value` engine is compared with PyTorch on scalar expressions (every operation,
numbers on either side, reuse, a diamond), with checks of its topological order and DOT
output. The Tensor engine is compared with `torch.autograd` in float64 for every
differentiable operation of modules 01-04 (shapes, broadcasting and non-contiguous inputs
drawn by Hypothesis), against central differences for a composite function, and on the
behaviour of `backward` and `no_grad`. Every gradient is pushed back with the same random
upstream gradient `g` through both frameworks: `y.backward(g)` computes the gradients of
`sum(g * y)`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_raises, expect_true
from tinytorch.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.autograd import (
    Value,
    describe_graph,
    enable_autograd,
    is_grad_enabled,
    no_grad,
    unbroadcast,
)
from tinytorch.layers import Dropout, Linear, Sequential
from tinytorch.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, entropy
from tinytorch.tensor import Tensor

# float64 in both frameworks: only rounding differences, though gradients may be summed in
# another order than PyTorch sums them
RTOL, ATOL = 1e-9, 1e-10

# The oracle works on tiny tensors, where torch's thread pool costs far more than it saves.
torch.set_num_threads(1)


def torch64(array) -> torch.Tensor:
    """A float64 torch leaf with the same numbers (a copy, so any strides are fine)."""
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def show(array) -> str:
    return " ".join(np.array2string(np.asarray(array), precision=4, separator=", ", threshold=12).split())


def describe(names: str, arrays) -> str:
    """'a: shape (2, 3), b: shape (3,)' for the call lines of failures."""
    return ", ".join(f"{name}: shape {np.shape(a)}" for name, a in zip(names.split(), arrays))


def upstream_for(shape) -> np.ndarray:
    """The gradient arriving at the output: fixed random numbers (ones would hide transposes)."""
    return np.random.default_rng(1234).standard_normal(tuple(shape))


def run_backward(output, upstream, *, call: str, hint: str) -> None:
    """output.backward(upstream); an error inside a backward rule is reported with the call and hint."""
    try:
        output.backward(upstream)
    except (NotImplementedError, RecursionError):
        raise  # "not written yet", or a recursion the deep-chain tests explain
    except Exception as error:  # noqa: BLE001 - reported as a failure that names the rule and the shapes
        place, tb = "", error.__traceback__
        while tb is not None:  # the innermost frame in a module file: the rule that broke
            if "tinytorch" in tb.tb_frame.f_globals.get("__name__", ""):
                place = f" in {tb.tb_frame.f_code.co_qualname} (line {tb.tb_lineno})"
            tb = tb.tb_next
        expect_true(False, call=call, expected="backward() to run and fill in the gradients",
                    got=f"{type(error).__name__}{place}: {error}", hint=hint)


def check_gradients(ours, theirs, arrays, *, names: str, call: str, hint: str,
                    rtol: float = RTOL, atol: float = ATOL) -> None:
    """Run ours(*Tensors) and theirs(*torch tensors), backward the same g, compare input grads."""
    ours_inputs = [Tensor(a, requires_grad=True) for a in arrays]
    torch_inputs = [torch64(a) for a in arrays]
    expected = theirs(*torch_inputs)
    upstream = upstream_for(expected.shape)
    expected.backward(torch.tensor(upstream))
    got = ours(*ours_inputs)
    where = f"{call}.backward(g) with {describe(names, arrays)}"
    expect_true(isinstance(got, Tensor) and got.requires_grad, call=where,
                expected="a result with requires_grad=True",
                got=f"requires_grad={getattr(got, 'requires_grad', None)}",
                hint="an operation on a tensor that requires grad must record itself in the graph")
    run_backward(got, upstream, call=where, hint=hint)
    for name, tensor, reference in zip(names.split(), ours_inputs, torch_inputs):
        wanted = reference.grad if reference.grad is not None else torch.zeros_like(reference)
        expect_true(tensor.grad is not None, call=f"{name}.grad after {where}",
                    expected=f"a gradient of shape {tensor.shape}", got="None: no gradient reached it",
                    hint=hint)
        expect_close(tensor.grad, wanted, rtol=rtol, atol=atol, call=f"{name}.grad after {where}", hint=hint)


def values(low: float = -3.0, high: float = 3.0):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def strided(array: np.ndarray) -> np.ndarray:
    """The same numbers as a non-contiguous view (every other element of a bigger array)."""
    if array.ndim == 0:
        return array
    big = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype=array.dtype)
    big[..., ::2] = array
    return big[..., ::2]


@st.composite
def arrays_of(draw, shape, elements=None):
    """A float64 array of `shape`, sometimes as a non-contiguous view."""
    array = draw(hnp.arrays(np.float64, shape, elements=values() if elements is None else elements))
    return strided(array) if draw(st.booleans()) else array


# -- part 1: the Value engine ----------------------------------------------------------------

VALUE_EXPRESSIONS = {
    "a * b + c": lambda a, b, c: a * b + c,
    "a - b * c": lambda a, b, c: a - b * c,
    "(a + c) / b": lambda a, b, c: (a + c) / b,
    "a ** 3 + b ** 2": lambda a, b, c: a ** 3 + b ** 2,
    "a ** -0.5 * c": lambda a, b, c: a ** -0.5 * c,
    "(a * c).exp()": lambda a, b, c: (a * c).exp(),
    "(a + 1).log() * b": lambda a, b, c: (a + 1).log() * b,
    "(a * b + c).tanh()": lambda a, b, c: (a * b + c).tanh(),
    "(b * c).relu() + b.relu()": lambda a, b, c: (b * c).relu() + b.relu(),
    "2 - a + 3 * b - 1 / c + 4 / b - 0.5": lambda a, b, c: 2 - a + 3 * b - 1 / c + 4 / b - 0.5,
    "-(a * b) + 1 + c": lambda a, b, c: -(a * b) + 1 + c,
}
positive = values(0.5, 2.0)
away_from_zero = st.one_of(values(-2.0, -0.5), values(0.5, 2.0))


@pytest.mark.parametrize("expression", list(VALUE_EXPRESSIONS))
@settings(max_examples=12)
@given(positive, away_from_zero, away_from_zero)
def test_value_operations_match_torch(expression, a, b, c):
    """Value gives the value and the gradients torch gives on scalar expressions"""
    f = VALUE_EXPRESSIONS[expression]
    ours = [Value(a), Value(b), Value(c)]
    theirs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b, c)]
    out, expected = f(*ours), f(*theirs)
    expected.backward()
    call = f"{expression} with a, b, c = {a!r}, {b!r}, {c!r}"
    expect_close(out.data, expected.item(), rtol=1e-12, atol=1e-12, call=f"({call}).data",
                 hint="each operation computes its result from the inputs' .data; a Python number on "
                      "the left goes through the reflected operator (__rsub__, __rtruediv__, ...)")
    out.backward()
    for name, value, reference in zip("abc", ours, theirs):
        wanted = 0.0 if reference.grad is None else reference.grad.item()
        expect_close(value.grad, wanted, rtol=1e-10, atol=1e-12, call=f"{name}.grad after ({call}).backward()",
                     hint="each _backward adds out.grad * (local derivative) to each child's grad: "
                          "d(a*b)/da = b, d(a/b)/db = -a/b**2, d(a**n)/da = n a**(n-1), d(tanh)/da = 1 - t**2")


def test_value_reuse_accumulates():
    """A Value used twice (a * a, a + a, a * a * a) gets the sum of both contributions"""
    cases = [("a * a", lambda a: a * a, 6.0), ("a + a", lambda a: a + a, 2.0),
             ("a * a * a", lambda a: a * a * a, 27.0), ("a * a + a", lambda a: a * a + a, 7.0)]
    for text, f, expected in cases:
        a = Value(3.0)
        f(a).backward()
        expect_close(a.grad, expected, rtol=1e-12, call=f"a.grad after ({text}).backward(), a = Value(3.0)",
                     hint="accumulate with += in every _backward: with = the second use overwrites the "
                          "first (the classic bug), and a + a gives 1 instead of 2")


def test_value_diamond_graph_matches_torch():
    """A diamond (one value feeding two paths that meet again) gets the gradient of both paths"""
    def f(x, y):
        d = x * y          # d feeds both e and f: two paths back to x and y
        e = d + x
        return (d * e).tanh() + e / d
    ours, theirs = (Value(1.3), Value(-0.7)), tuple(torch.tensor(v, dtype=torch.float64, requires_grad=True)
                                                      for v in (1.3, -0.7))
    out, expected = f(*ours), f(*theirs)
    out.backward()
    expected.backward()
    for name, value, reference in zip("xy", ours, theirs):
        expect_close(value.grad, reference.grad.item(), rtol=1e-10,
                     call=f"{name}.grad after backward() of (d*e).tanh() + e/d, d = x*y, e = d + x, x = 1.3, y = -0.7",
                     hint="a node may call _backward only after every node computed from it has added to its "
                          "grad: walk the topological order from the end")


def _value_graph():
    a, b, c = Value(2.0), Value(-3.0), Value(10.0)
    d = a * b
    e = d + c
    f = d * e
    return f, [a, b, c, d, e, f]


def test_value_topological_order():
    """topological_order lists every node once, each after the nodes it was computed from"""
    out, nodes = _value_graph()
    order = out.topological_order()
    call = "f.topological_order() for d = a*b, e = d + c, f = d*e"
    found = {id(n) for n in order}
    expect_true(len(order) == len(nodes) and all(id(n) in found for n in nodes), call=call,
                expected=f"the {len(nodes)} nodes a, b, c, d, e, f, each once", got=f"{len(order)} entries: {order}",
                hint="visit every child once (a set of visited ids), leaves included")
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        for child in node._children:
            expect_true(position[id(child)] < position[id(node)], call=call,
                        expected=f"the child {child} before the node {node} made from it",
                        got=f"positions {position[id(child)]} and {position[id(node)]}",
                        hint="depth-first post-order: append a node after all its children are appended")
    expect_true(order[-1] is out, call=call, expected="f itself last", got=repr(order[-1]),
                hint="the output is appended when everything it depends on is done")


def test_value_deep_chain_has_no_recursion_error():
    """backward works through a chain of 5,000 operations (no recursion limit)"""
    x = Value(0.5)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.backward()
    expect_close(x.grad, 1.0, rtol=1e-12, call="x.grad after 5,000 times y = y * 1.0 + 0.0, then y.backward()",
                 hint="Python allows ~1000 nested calls: write the depth-first search with an explicit stack")


def test_value_to_dot_shows_every_node_and_edge():
    """to_dot names every node (op, data, grad) and draws an edge from each child to its parent"""
    out, nodes = _value_graph()
    out.backward()
    order = out.topological_order()
    text = out.to_dot()
    lines = [line.strip() for line in text.splitlines()]
    call = "f.to_dot() for d = a*b, e = d + c, f = d*e, after f.backward()"
    expect_true(text.lstrip().startswith("digraph") and text.rstrip().endswith("}"), call=call,
                expected="text starting with 'digraph {' and ending with '}'", got=text[:80], hint="DOT syntax")
    for k, node in enumerate(order):
        line = next((x for x in lines if x.startswith(f"v{k} [")), None)
        expect_true(line is not None, call=call, expected=f"a node line starting 'v{k} ['", got=text,
                    hint="name the nodes v0, v1, ... by their position in topological_order()")
        for part in (node._op or "input", f"data {node.data:.4g}", f"grad {node.grad:.4g}"):
            expect_true(part in line, call=call, expected=f"node v{k}'s line to contain {part!r}", got=line,
                        hint="label each node with its op ('input' for a leaf), 'data {:.4g}' and 'grad {:.4g}'")
    position = {id(n): k for k, n in enumerate(order)}
    expected_edges = sorted(f"v{position[id(child)]} -> v{k};" for k, n in enumerate(order) for child in n._children)
    got_edges = sorted(line for line in lines if "->" in line)
    expect_equal(got_edges, expected_edges, call=call,
                 hint="one line 'vI -> vK;' from each child vI to the node vK made from it")


# -- part 2: unbroadcast ---------------------------------------------------------------------

@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3))
def test_unbroadcast_matches_torch(shapes):
    """unbroadcast sums a gradient back to the shape before broadcasting, as torch does"""
    shape = shapes.input_shapes[0]
    grad = upstream_for(shapes.result_shape)
    source = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    source.broadcast_to(shapes.result_shape).backward(torch.tensor(grad))
    expect_close(unbroadcast(grad, shape), source.grad, rtol=RTOL, atol=ATOL,
                 call=f"unbroadcast(grad of shape {shapes.result_shape}, {shape})",
                 hint="sum away the axes broadcasting added on the left, then sum (keepdims=True) the "
                      "axes where the shape has size 1 but the gradient does not")


# -- part 2: Tensor operations -------------------------------------------------------------

@st.composite
def broadcast_pair(draw, a_elements, b_elements):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
    a_shape, b_shape = shapes.input_shapes
    return draw(arrays_of(a_shape, a_elements)), draw(arrays_of(b_shape, b_elements))


integers_as_floats = st.integers(-4, 4).map(float)
BINARY = {
    "a + b": (lambda a, b: a + b, values(), values()),
    "a - b": (lambda a, b: a - b, values(), values()),
    "a * b": (lambda a, b: a * b, values(), values()),
    "a / b": (lambda a, b: a / b, values(), away_from_zero),
    # whole numbers against halves: never an exact tie
    "a.maximum(b)": (None, integers_as_floats, integers_as_floats.map(lambda v: v + 0.5)),
}
BINARY_HINTS = {
    "a + b": "d(a+b)/da = 1, d(a+b)/db = 1, then unbroadcast each to its input's shape",
    "a - b": "d(a-b)/db = -1; unbroadcast each gradient to its input's shape",
    "a * b": "d(a*b)/da = b, d(a*b)/db = a; unbroadcast each to its input's shape",
    "a / b": "d(a/b)/da = 1/b, d(a/b)/db = -a/b**2; unbroadcast each to its input's shape",
    "a.maximum(b)": "the gradient goes to a where a >= b and to b elsewhere; unbroadcast both",
}


@pytest.mark.parametrize("expression", list(BINARY))
@settings(max_examples=25)
@given(data=st.data())
def test_binary_operations_match_torch(expression, data):
    """+ - * / and maximum send torch's gradients to both inputs, with broadcasting"""
    ours, a_elements, b_elements = BINARY[expression]
    a, b = data.draw(broadcast_pair(a_elements, b_elements))
    theirs = torch.maximum if expression == "a.maximum(b)" else ours
    if expression == "a.maximum(b)":
        ours = lambda x, y: x.maximum(y)  # noqa: E731
    check_gradients(ours, theirs, [a, b], names="a b", call=f"({expression})", hint=BINARY_HINTS[expression])


REFLECTED = {
    "2 + t": (lambda t: 2 + t, lambda t: 2 + t),
    "2 - t": (lambda t: 2 - t, lambda t: 2 - t),
    "2.5 * t": (lambda t: 2.5 * t, lambda t: 2.5 * t),
    "3 / t": (lambda t: 3 / t, lambda t: 3 / t),
    "np.float64(1.5) - t": (lambda t: np.float64(1.5) - t, lambda t: 1.5 - t),
    "M @ t (M a numpy array)": (lambda t: np.arange(6.0).reshape(2, 3) @ t,
                                lambda t: torch.arange(6.0, dtype=torch.float64).reshape(2, 3) @ t),
}


@pytest.mark.parametrize("expression", list(REFLECTED))
def test_reflected_operators_match_torch(expression):
    """A number or array on the left (2 - t, 3 / t, M @ t) gives torch's gradient"""
    ours, theirs = REFLECTED[expression]
    t = np.array([[0.5, -1.5, 2.0, 1.0], [1.25, -0.75, 3.0, -2.0], [0.8, 1.6, -0.4, 2.5]])
    check_gradients(ours, theirs, [t], names="t", call=f"({expression})",
                    hint="2 - t calls t.__rsub__(2), which must record Sub(2, t): d(2 - t)/dt = -1, "
                         "d(3 / t)/dt = -3 / t**2, d(M @ t)/dt = M^T @ g")


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1, -1.5, 0])
@given(arrays_of(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), values(0.2, 3.0)))
def test_pow_and_neg_match_torch(exponent, x):
    """x ** n for several n, and -x, give torch's gradients"""
    check_gradients(lambda t: -(t ** exponent), lambda t: -(t ** exponent), [x], names="x",
                    call=f"(-(x ** {exponent}))",
                    hint="d(x**n)/dx = n x**(n-1) (0 for n = 0) and d(-x)/dx = -1")


UNARY = {
    "x.exp()": (lambda t: t.exp(), "d(e**x)/dx = e**x: multiply g by the output"),
    "x.log()": (lambda t: t.log(), "d(ln x)/dx = 1/x"),
    "x.sqrt()": (lambda t: t.sqrt(), "d(sqrt x)/dx = 1 / (2 sqrt x) = 1 / (2 * output)"),
}


@pytest.mark.parametrize("expression", list(UNARY))
@given(arrays_of(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), values(0.1, 4.0)))
def test_exp_log_sqrt_match_torch(expression, x):
    """exp, log and sqrt give torch's gradients"""
    f, hint = UNARY[expression]
    check_gradients(f, f, [x], names="x", call=f"({expression})", hint=hint)


@settings(max_examples=20)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.data())
def test_matmul_matches_torch(m, k, n, data):
    """a @ b of (m, k) and (k, n) matrices gives torch's gradients to both"""
    a = data.draw(arrays_of((m, k)))
    b = data.draw(arrays_of((k, n)))
    check_gradients(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], names="a b", call="(a @ b)",
                    hint="dL/da = g @ b^T and dL/db = a^T @ g: each gradient has its input's shape, "
                         "which tells you where the transpose goes")


MATMUL_SHAPES = [((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                 ((4,), (4, 3)), ((2, 3), (3,)), ((4,), (4,)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))]


@pytest.mark.parametrize("a_shape, b_shape", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES])
def test_matmul_batched_and_vectors_match_torch(a_shape, b_shape):
    """Batched matmul (broadcast batch axes) and 1-D operands give torch's gradients"""
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    check_gradients(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], names="a b", call="(a @ b)",
                    hint="swap the last two axes for the transposes; sum broadcast batch axes back "
                         "(unbroadcast); treat a 1-D a as (1, k) and a 1-D b as (k, 1), and put the "
                         "same axis into g before using the matrix formulas")


SHAPE_OPS = {
    "x.reshape(3, -1)": (lambda t: t.reshape(3, -1), lambda t: t.reshape(3, -1)),
    "x.flatten(1)": (lambda t: t.flatten(1), lambda t: t.flatten(1)),
    "x.unsqueeze(1)": (lambda t: t.unsqueeze(1), lambda t: t.unsqueeze(1)),
    "x.unsqueeze(1).squeeze()": (lambda t: t.unsqueeze(1).squeeze(), lambda t: t.unsqueeze(1).squeeze()),
    "x.unsqueeze(0).squeeze(0)": (lambda t: t.unsqueeze(0).squeeze(0), lambda t: t.unsqueeze(0).squeeze(0)),
    "x.transpose()": (lambda t: t.transpose(), lambda t: t.transpose(-2, -1)),
    "x.transpose(0, 2)": (lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2)),
    "x.permute(2, 0, 1)": (lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    "x.permute(-1, 0, -2)": (lambda t: t.permute(-1, 0, -2), lambda t: t.permute(-1, 0, -2)),
    "x.T": (lambda t: t.T, lambda t: t.permute(2, 1, 0)),
    "x.T.contiguous()": (lambda t: t.T.contiguous(), lambda t: t.permute(2, 1, 0).contiguous()),
}


@pytest.mark.parametrize("expression", list(SHAPE_OPS))
@settings(max_examples=10)
@given(arrays_of((2, 3, 4)))
def test_shape_operations_match_torch(expression, x):
    """reshape, flatten, (un)squeeze, transpose, permute, T and contiguous give torch's gradients"""
    ours, theirs = SHAPE_OPS[expression]
    check_gradients(ours, theirs, [x], names="x", call=f"({expression})",
                    hint="these only move numbers: reshape the gradient back to x's shape, swap the same "
                         "axes back, or apply the inverse permutation np.argsort(axes)")


def test_matrix_transpose_property_matches_torch():
    """w.T of a matrix (as Linear uses it) gives torch's gradient"""
    w = strided(np.random.default_rng(2).standard_normal((3, 4)))
    check_gradients(lambda t: t.T * 2.0, lambda t: t.T * 2.0, [w], names="w", call="(w.T * 2.0)",
                    hint="T reverses all axes; reversing the gradient's axes puts it back")


INDEXES = {
    "x[1]": (lambda t: t[1], lambda t: t[1]),
    "x[:, 1:3]": (lambda t: t[:, 1:3], lambda t: t[:, 1:3]),
    "x[..., -1]": (lambda t: t[..., -1], lambda t: t[..., -1]),
    "x[None, 0, ::2]": (lambda t: t[None, 0, ::2], lambda t: t[None, 0, ::2]),
    "x[1:, [0, 3]]": (lambda t: t[1:, [0, 3]], lambda t: t[1:, [0, 3]]),
    "x[x > 0] (a boolean mask)": (lambda t: t[Tensor(t.data > 0)], lambda t: t[t > 0]),
    "x[Tensor([2, 0]), Tensor([1, 3])]": (lambda t: t[Tensor(np.array([2, 0])), Tensor(np.array([1, 3]))],
                                          lambda t: t[torch.tensor([2, 0]), torch.tensor([1, 3])]),
}


@pytest.mark.parametrize("expression", list(INDEXES))
def test_indexing_matches_torch(expression):
    """Indexing (ints, slices, ellipsis, None, masks, index tensors) scatters torch's gradient back"""
    ours, theirs = INDEXES[expression]
    x = np.random.default_rng(3).standard_normal((3, 4))
    check_gradients(ours, theirs, [x], names="x", call=f"({expression})",
                    hint="the gradient of x is zero except at the picked positions, which receive the "
                         "gradient of the element they became: np.add.at(zeros, index, g)")


def test_indexing_with_repeated_indices_accumulates():
    """x[[0, 0, 2, 0]] sends three gradients to row 0, added up"""
    x = np.random.default_rng(4).standard_normal((3, 2))
    check_gradients(lambda t: t[[0, 0, 2, 0]], lambda t: t[[0, 0, 2, 0]], [x], names="x",
                    call="(x[[0, 0, 2, 0]])",
                    hint="grad_x[index] += g keeps only the last of repeated indices: use "
                         "np.add.at(grad_x, index, g), which adds every one")


REDUCTIONS = {
    "sum": (lambda t, axis, keep: t.sum(axis=axis, keepdims=keep),
            lambda t, axis, keep: torch.sum(t, dim=axis, keepdim=keep),
            "copy the gradient back to every summed element: put the reduced axes back, then broadcast"),
    "mean": (lambda t, axis, keep: t.mean(axis=axis, keepdims=keep),
             lambda t, axis, keep: torch.mean(t, dim=axis, keepdim=keep),
             "like sum, divided by the number of elements averaged"),
    "var": (lambda t, axis, keep: t.var(axis=axis, keepdims=keep),
            lambda t, axis, keep: torch.var(t, dim=axis, keepdim=keep, correction=0),
            "dvar/dx = 2 (x - mean) / n, with the gradient's reduced axes put back"),
}


@st.composite
def array_and_axis(draw, elements=None):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = draw(arrays_of(shape, elements))
    ndim = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
            lambda axes: tuple(a - ndim if i % 2 else a for i, a in enumerate(axes)))))
    return x, axis, draw(st.booleans())


@pytest.mark.parametrize("reduction", list(REDUCTIONS))
@settings(max_examples=25)
@given(array_and_axis())
def test_sum_mean_var_match_torch(reduction, drawn):
    """sum, mean and var over any axis (None, negative, tuple), with keepdims, give torch's gradients"""
    x, axis, keep = drawn
    ours, theirs, hint = REDUCTIONS[reduction]
    check_gradients(lambda t: ours(t, axis, keep), lambda t: theirs(t, axis, keep), [x], names="x",
                    call=f"(x.{reduction}(axis={axis}, keepdims={keep}))", hint=hint)


@st.composite
def distinct_array_and_axis(draw):
    """Like array_and_axis, with all values distinct: max and min have no ties."""
    x, axis, keep = draw(array_and_axis())
    order = draw(st.permutations(range(x.size)))
    distinct = (np.array(order, dtype=np.float64) * 0.37 - 1.0).reshape(x.shape)
    return distinct, axis, keep


@pytest.mark.parametrize("reduction", ["max", "min"])
@settings(max_examples=25)
@given(distinct_array_and_axis())
def test_max_min_match_torch(reduction, drawn):
    """max and min send the gradient to the largest (smallest) element, as torch.amax/amin do"""
    x, axis, keep = drawn
    torch_fn = torch.amax if reduction == "max" else torch.amin
    dims = tuple(range(x.ndim)) if axis is None else axis
    check_gradients(lambda t: getattr(t, reduction)(axis=axis, keepdims=keep),
                    lambda t: torch_fn(t, dim=dims, keepdim=keep), [x], names="x",
                    call=f"(x.{reduction}(axis={axis}, keepdims={keep}))",
                    hint="compare x with the output (reduced axes put back) to find the winning element; "
                         "it gets the gradient, every other element 0")


# -- part 2: the engine --------------------------------------------------------------------

def test_composite_matches_central_differences():
    """The gradient of a composite function agrees with central differences (eps 1e-6)"""
    rng = np.random.default_rng(7)
    x0, w0 = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))

    def f(x, w):
        h = ((x @ w) * 0.5).exp() + 1.0
        return (h.log().mean(axis=0) * w.sum(axis=0)).sum() + (x.maximum(0.3) ** 2).var() - (x / (w.T[0] ** 2 + 1)).sum()

    x, w = Tensor(x0.copy(), requires_grad=True), Tensor(w0.copy(), requires_grad=True)
    f(x, w).backward()
    eps = 1e-6
    for name, leaf, base in (("x", x, x0), ("w", w, w0)):
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            up, down = base.copy(), base.copy()
            up[index] += eps
            down[index] -= eps
            args_up = (Tensor(up), Tensor(w0)) if name == "x" else (Tensor(x0), Tensor(up))
            args_down = (Tensor(down), Tensor(w0)) if name == "x" else (Tensor(x0), Tensor(down))
            numeric[index] = (f(*args_up).item() - f(*args_down).item()) / (2 * eps)
        expect_true(leaf.grad is not None, call=f"{name}.grad after f(x, w).backward()",
                    expected="a gradient", got="None", hint="every leaf with requires_grad=True gets a .grad")
        expect_close(leaf.grad, numeric, rtol=1e-6, atol=1e-7,
                     call=f"{name}.grad of f(x, w) = sum(log(exp(x@w/2)+1).mean(0) * w.sum(0)) + "
                          f"var(max(x,0.3)**2) - sum(x / (w.T[0]**2 + 1)) vs (f(+eps) - f(-eps)) / 2eps",
                     hint="central differences are the definition of the derivative: if they disagree, "
                          "one of the operations' backward rules is off")


def test_reused_tensor_accumulates():
    """A tensor used several times (y = x * x + x) gets the sum of every contribution"""
    x0 = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
    x = Tensor(x0, requires_grad=True)
    (x * x + x).sum().backward()
    expect_close(x.grad, 2 * x0 + 1, call="x.grad after (x * x + x).sum().backward()",
                 hint="x is an input three times: add each contribution to the running gradient of x "
                      "instead of replacing it")
    check_gradients(lambda w: (w.T @ w + w[0]) * w.sum(axis=0, keepdims=True),
                    lambda w: (w.T @ w + w[0]) * w.sum(dim=0, keepdim=True), [x0], names="w",
                    call="((w.T @ w + w[0]) * w.sum(axis=0, keepdims=True))",
                    hint="w reaches the output along four paths; its gradient is the sum over all of them")


def test_backward_twice_accumulates_and_zero_grad_resets():
    """Two backward calls add up in .grad; zero_grad() sets it back to None"""
    x0 = np.array([1.0, 2.0, 3.0])
    x = Tensor(x0, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()
    expect_close(x.grad, 4 * x0, call="x.grad after y = (x * x).sum(); y.backward(); y.backward()",
                 hint="like PyTorch, backward adds into .grad (2x per call), so two calls give 4x")
    x.zero_grad()
    expect_true(x.grad is None, call="x.zero_grad(); x.grad", expected="None", got=repr(x.grad),
                hint="zero_grad forgets the gradient")
    (x * 3.0).sum().backward()
    expect_close(x.grad, np.full(3, 3.0), call="x.grad after zero_grad() then (x * 3).sum().backward()",
                 hint="after zero_grad, the next backward starts from nothing")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_grad_is_a_tensor_of_the_leaf_shape_and_dtype(dtype):
    """.grad is a Tensor with the leaf's shape and dtype, even when the leaf was broadcast"""
    bias = Tensor(np.array([0.5, -1.0, 2.0], dtype=dtype), requires_grad=True)
    x = Tensor(np.ones((4, 3), dtype=dtype))
    (x * bias).sum().backward()
    call = f"bias.grad after (x * bias).sum().backward(), x: (4, 3), bias: (3,) {np.dtype(dtype).name}"
    expect_true(isinstance(bias.grad, Tensor), call=call, expected="a Tensor", got=type(bias.grad).__name__,
                hint="store Tensor(gradient) in .grad, not the numpy array")
    expect_equal(bias.grad.shape, (3,), call=call + " .shape", hint="unbroadcast back to the leaf's shape")
    expect_equal(bias.grad.dtype, np.dtype(dtype), call=call + " .dtype",
                 hint="a leaf's gradient has the leaf's dtype: convert before storing")
    expect_close(bias.grad, np.full(3, 4.0), call=call, hint="each bias element was used by 4 rows")


def test_only_leaves_get_grad():
    """After backward, leaves with requires_grad have .grad; intermediates and constants do not"""
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    h = x * c
    (h * h).sum().backward()
    expect_close(x.grad, 2 * np.array([3.0, 8.0]) * np.array([3.0, 4.0]),
                 call="x.grad after h = x * c; (h * h).sum().backward()", hint="2 h c")
    expect_true(h.grad is None, call="h.grad (an intermediate result)", expected="None", got=repr(h.grad),
                hint="only leaves (no _grad_fn) accumulate .grad; intermediate gradients are dropped")
    expect_true(c.grad is None, call="c.grad (a constant, requires_grad=False)", expected="None", got=repr(c.grad),
                hint="skip inputs that do not require grad")


def test_non_scalar_backward_needs_grad():
    """backward() of a non-scalar raises RuntimeError; with grad= it works"""
    x = Tensor(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), requires_grad=True)
    y = x * 2.0
    expect_raises(RuntimeError, lambda: y.backward(), call="(x * 2).backward() for x of shape (2, 3)",
                  message_contains="scalar",
                  hint="like PyTorch: 'grad can be implicitly created only for scalar outputs'")
    g = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    y.backward(g)
    expect_close(x.grad, 2 * g, call="x.grad after (x * 2).backward(g)", hint="the seed is g instead of ones")


def test_deep_chain_has_no_recursion_error():
    """backward works through a chain of 10,000 tensor operations"""
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    expect_close(x.grad, np.full(2, 1.0001 ** 10_000), rtol=1e-9,
                 call="x.grad after 10,000 times y = y * 1.0001, then y.sum().backward()",
                 hint="find the order with an explicit stack, not recursion (Python stops at ~1000 nested calls)")


def test_no_grad_records_nothing():
    """Inside no_grad() (block or decorator) nothing is recorded, and the switch is restored"""
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    with no_grad():
        inside = is_grad_enabled()
        y = (x * 2.0).exp().sum()
        with no_grad():
            pass
        still_off = is_grad_enabled()
    expect_true(not inside and still_off is False, call="is_grad_enabled() inside no_grad() (and after a nested one)",
                expected="False both times", got=f"{inside}, {still_off}",
                hint="__exit__ restores the state __enter__ remembered, not simply True")
    expect_true(y.requires_grad is False and y._grad_fn is None, call="(x * 2).exp().sum() inside no_grad()",
                expected="requires_grad False and _grad_fn None",
                got=f"requires_grad={y.requires_grad}, _grad_fn={y._grad_fn!r}",
                hint="recording is off inside the block")
    expect_true(is_grad_enabled(), call="is_grad_enabled() after the block", expected="True", got="False",
                hint="__exit__ turns recording back on")
    try:
        with no_grad():
            raise KeyError("boom")
    except KeyError:
        pass
    expect_true(is_grad_enabled(), call="is_grad_enabled() after a no_grad() block that raised",
                expected="True", got="False", hint="__exit__ runs even when the block raises")

    @no_grad()
    def predict(t):
        return t * 3.0

    z = predict(x)
    expect_true(z._grad_fn is None and not z.requires_grad, call="@no_grad() def predict(t): return t * 3",
                expected="nothing recorded", got=f"_grad_fn={z._grad_fn!r}", hint="no_grad is also a decorator")
    (x * 3.0).sum().backward()
    expect_close(x.grad, np.full(2, 3.0), call="x.grad after (x * 3).sum().backward() outside no_grad",
                 hint="outside the block recording works again")


def test_operations_without_requires_grad_build_no_graph():
    """Operations on tensors that do not require grad give plain tensors; gradients still flow past them"""
    a, b = Tensor(np.array([1.0, 2.0, 3.0])), Tensor(np.array([0.5, 0.5, 2.0]))
    c = (a * b + 1.0).exp().sum(axis=0, keepdims=True) @ Tensor(np.ones((1, 3)))
    expect_true(c.requires_grad is False and c._grad_fn is None, call="(a * b + 1).exp().sum(...) @ ones, no requires_grad",
                expected="requires_grad False and _grad_fn None (modules 01-04 behave as before)",
                got=f"requires_grad={c.requires_grad}, _grad_fn={c._grad_fn!r}",
                hint="record only when an input requires grad")
    x = Tensor(np.array([2.0, -1.0, 0.5]), requires_grad=True)
    (a * b * x).sum().backward()
    expect_close(x.grad, a.data * b.data, call="x.grad after (a * b * x).sum().backward()",
                 hint="a * b is a constant for x: its gradient is a * b")


def test_detach_cuts_the_graph():
    """x.detach() is a constant: (x.detach() * x).sum() has gradient x, not 2x"""
    x0 = np.array([1.5, -2.0])
    x = Tensor(x0, requires_grad=True)
    (x.detach() * x).sum().backward()
    expect_close(x.grad, x0, call="x.grad after (x.detach() * x).sum().backward()",
                 hint="only the second factor is in the graph")


def test_describe_graph_lists_operations_in_order():
    """describe_graph prints one line per operation, in topological order, with shapes"""
    x = Tensor(np.ones((4, 3)), requires_grad=True)
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    loss = ((x @ w) + b).sum()
    text = describe_graph(loss)
    lines = [line for line in text.splitlines() if line.strip()]
    call = "describe_graph(((x @ w) + b).sum()), x: (4, 3), w: (3, 2), b: (2,)"
    expect_equal([line.split(":")[0].strip() for line in lines], ["MatMul", "Add", "Sum"], call=call,
                 hint="one line per tensor with a _grad_fn, in the order _graph_order gives")
    for line, shapes in zip(lines, [("(4, 3)", "(3, 2)", "(4, 2)"), ("(4, 2)", "(2,)"), ("(4, 2)", "()")]):
        expect_true(all(s in line for s in shapes), call=call, expected=f"a line mentioning {shapes}", got=line,
                    hint="each line shows the input shapes and the output shape")
    loss.backward()
    expect_close(w.grad, np.full((3, 2), 4.0), call="w.grad after ((x @ w) + b).sum().backward()",
                 hint="x^T @ ones")


def test_enable_autograd_is_idempotent():
    """Calling enable_autograd() again does not wrap twice: one Function per operation"""
    enable_autograd()
    enable_autograd()
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    expect_equal(len(describe_graph(y).splitlines()), 2, call="describe_graph((x * x).sum()) after enable_autograd() x2",
                 hint="wrap the original methods, not the wrappers")
    y.backward()
    expect_close(x.grad, 2 * x.data, call="x.grad after (x * x).sum().backward()", hint="2x")


# -- modules 02-04 get gradients --------------------------------------------------------------

ACTIVATIONS = {
    "ReLU": (ReLU(), torch.relu, "1 where x > 0, else 0"),
    "Sigmoid": (Sigmoid(), torch.sigmoid, "s (1 - s) with s the output"),
    "Tanh": (Tanh(), torch.tanh, "1 - t**2 with t the output"),
    "GELU": (GELU(), lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
             "0.5 (1 + t) + 0.5 x (1 - t**2) c (1 + 3 * 0.044715 x**2)"),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@settings(max_examples=20)
@given(arrays_of(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                 st.one_of(values(-6.0, 6.0), st.sampled_from([-30.0, 30.0, 0.5, -0.5]))))
def test_activation_gradients_match_torch(name, x):
    """ReLU, Sigmoid, Tanh and GELU (tanh form) give torch's gradients"""
    layer, theirs, hint = ACTIVATIONS[name]
    check_gradients(layer, theirs, [x], names="x", call=f"{name}()(x)", hint=hint)


SOFTMAX_CASES = [(cls, dim, temperature) for cls in ("Softmax", "LogSoftmax")
                 for dim, temperature in ((-1, 1.0), (0, 0.5), (1, 3.0))]


@pytest.mark.parametrize("name, dim, temperature", SOFTMAX_CASES,
                         ids=[f"{c}-dim{d}-T{t}" for c, d, t in SOFTMAX_CASES])
@settings(max_examples=15)
@given(arrays_of((2, 3, 4), values(-10.0, 10.0)))
def test_softmax_gradients_match_torch(name, dim, temperature, x):
    """Softmax and LogSoftmax along dim, with temperature, give torch's gradients"""
    ours = (Softmax if name == "Softmax" else LogSoftmax)(dim=dim, temperature=temperature)
    theirs = torch.softmax if name == "Softmax" else torch.log_softmax
    check_gradients(ours, lambda t: theirs(t / temperature, dim=dim), [x], names="x",
                    call=f"{name}(dim={dim}, temperature={temperature})(x)",
                    hint="softmax: y (g - sum(g y)) / T; log-softmax: (g - exp(y) sum(g)) / T; "
                         "sums along dim with keepdims=True")


LOSS_REDUCTIONS = ("mean", "sum", "none")


@pytest.mark.parametrize("reduction", LOSS_REDUCTIONS)
@settings(max_examples=15)
@given(data=st.data())
def test_mse_loss_gradients_match_torch(reduction, data):
    """MSELoss gives torch's gradients to prediction and target, for each reduction"""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    p, y = data.draw(arrays_of(shape)), data.draw(arrays_of(shape))
    check_gradients(MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction), [p, y],
                    names="prediction target", call=f"MSELoss(reduction={reduction!r})(prediction, target)",
                    hint="2 (p - y) for the prediction, -2 (p - y) for the target; 'mean' divides by "
                         "the number of elements")


logit_values = st.one_of(values(-30.0, 30.0), st.sampled_from([1e4, -1e4, 1e3, -1e3, 0.0]))


@pytest.mark.parametrize("reduction", LOSS_REDUCTIONS)
@settings(max_examples=20)
@given(data=st.data())
def test_cross_entropy_gradients_match_torch(reduction, data):
    """CrossEntropyLoss gives torch's gradient (softmax - onehot), logits of 1e4 included"""
    n, classes = data.draw(st.integers(1, 5)), data.draw(st.integers(2, 6))
    logits = data.draw(arrays_of((n, classes), logit_values))
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1)))
    loss = CrossEntropyLoss(reduction=reduction)
    check_gradients(lambda t: loss(t, Tensor(labels)),
                    lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(labels), reduction=reduction),
                    [logits], names="logits", call=f"CrossEntropyLoss(reduction={reduction!r})(logits, {show(labels)})",
                    hint="softmax(logits) - onehot(labels), per row times its gradient; compute the softmax "
                         "with the row max subtracted so huge logits stay finite")


def test_cross_entropy_gradient_at_huge_float32_logits():
    """Cross-entropy's gradient stays finite for float32 logits of 1e4"""
    logits = Tensor(np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]], dtype=np.float32), requires_grad=True)
    CrossEntropyLoss()(logits, Tensor(np.array([2, 1]))).backward()
    expected = np.array([[1.0, 0.0, -1.0], [1 / 3, -2 / 3, 1 / 3]]) / 2
    expect_close(logits.grad, expected, rtol=1e-6, atol=1e-7,
                 call="logits.grad after CrossEntropyLoss()([[1e4, 0, -1e4], [0, 0, 0]] float32, [2, 1]).backward()",
                 hint="(softmax - onehot) / N: exp(x - max) never overflows")


@pytest.mark.parametrize("reduction", LOSS_REDUCTIONS)
@settings(max_examples=15)
@given(data=st.data())
def test_bce_loss_gradients_match_torch(reduction, data):
    """BCELoss gives torch's gradients, also at p = 0 and p = 1 where the log is clamped"""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4))
    p = data.draw(hnp.arrays(np.float64, shape, elements=st.one_of(values(0.01, 0.99), st.sampled_from([0.0, 1.0]))))
    y = data.draw(hnp.arrays(np.float64, shape, elements=st.one_of(values(0.0, 1.0), st.sampled_from([0.0, 1.0]))))
    ours = BCELoss(reduction=reduction)
    # torch's target gradient is infinite at p = 0 or 1; compare the prediction's gradient there
    check_gradients(lambda a: ours(a, Tensor(y)),
                    lambda a: torch.nn.functional.binary_cross_entropy(a, torch.tensor(y), reduction=reduction),
                    [p], names="prediction", call=f"BCELoss(reduction={reduction!r})(prediction, {show(y)})",
                    rtol=1e-8, atol=1e-6,  # torch's 1e-12 is a float32 constant: 4e-9 off at the clamp
                    hint="(p - y) / max(p (1 - p), 1e-12), as PyTorch computes it, times the per-element gradient")
    inside = np.clip(p, 0.05, 0.95)
    check_gradients(lambda t: ours(Tensor(inside), t),
                    lambda t: torch.nn.functional.binary_cross_entropy(torch.tensor(inside), t, reduction=reduction),
                    [y], names="target", call=f"BCELoss(reduction={reduction!r})({show(inside)}, target)",
                    hint="for the target: log(1 - p) - log(p), times the per-element gradient")


@pytest.mark.parametrize("reduction", LOSS_REDUCTIONS)
@settings(max_examples=15)
@given(data=st.data())
def test_bce_with_logits_gradients_match_torch(reduction, data):
    """BCEWithLogitsLoss gives torch's gradients (sigmoid(x) - y, and -x), logits of 1e4 included"""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4))
    x = data.draw(arrays_of(shape, logit_values))
    y = data.draw(arrays_of(shape, values(0.0, 1.0)))
    check_gradients(BCEWithLogitsLoss(reduction=reduction),
                    lambda a, b: torch.nn.functional.binary_cross_entropy_with_logits(a, b, reduction=reduction),
                    [x, y], names="logits target", call=f"BCEWithLogitsLoss(reduction={reduction!r})(logits, target)",
                    hint="sigmoid(x) - y for the logits (a stable sigmoid), -x for the target")


def _float64_linear(in_features: int, out_features: int, rng: np.random.Generator) -> Linear:
    layer = Linear(in_features, out_features)
    layer.weight = Tensor(rng.standard_normal((out_features, in_features)), requires_grad=True)
    layer.bias = Tensor(rng.standard_normal(out_features), requires_grad=True)
    return layer


def _torch_linear(layer: Linear) -> torch.nn.Linear:
    twin = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
    with torch.no_grad():
        twin.weight.copy_(torch.tensor(layer.weight.data))
        twin.bias.copy_(torch.tensor(layer.bias.data))
    return twin


def test_linear_gradients_match_torch():
    """Linear (x @ W.T + b) gives torch's gradients for W, b and x"""
    rng = np.random.default_rng(11)
    layer = _float64_linear(3, 4, rng)
    twin = _torch_linear(layer)
    x0 = rng.standard_normal((2, 5, 3))
    x = Tensor(x0, requires_grad=True)
    x_torch = torch64(x0)
    upstream = upstream_for((2, 5, 4))
    layer(x).backward(upstream)
    twin(x_torch).backward(torch.tensor(upstream))
    for name, got, expected in (("weight", layer.weight, twin.weight), ("bias", layer.bias, twin.bias),
                                ("x", x, x_torch)):
        expect_close(got.grad, expected.grad, rtol=RTOL, atol=ATOL,
                     call=f"{name}.grad after Linear(3, 4)(x).backward(g), x: (2, 5, 3)",
                     hint="Linear is built from .T, @ and +: their backward rules, with batch axes summed "
                          "back for the weight and broadcasting summed back for the bias")


def test_sequential_mlp_gradients_match_torch():
    """A Sequential MLP with ReLU, Tanh and cross-entropy gives torch's parameter gradients"""
    rng = np.random.default_rng(12)
    layers = [_float64_linear(4, 6, rng), _float64_linear(6, 5, rng), _float64_linear(5, 3, rng)]
    model = Sequential(layers[0], ReLU(), layers[1], Tanh(), layers[2])
    twin = torch.nn.Sequential(_torch_linear(layers[0]), torch.nn.ReLU(), _torch_linear(layers[1]),
                               torch.nn.Tanh(), _torch_linear(layers[2]))
    x, labels = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    CrossEntropyLoss()(model(Tensor(x)), Tensor(labels)).backward()
    torch.nn.functional.cross_entropy(twin(torch.tensor(x)), torch.tensor(labels)).backward()
    for (name, ours), theirs in zip(model.named_parameters(), twin.parameters()):
        expect_true(ours.grad is not None, call=f"model.{name}.grad after loss.backward()",
                    expected="a gradient", got="None", hint="every parameter is a leaf with requires_grad=True")
        expect_close(ours.grad, theirs.grad, rtol=RTOL, atol=ATOL,
                     call=f"model.{name}.grad after CrossEntropyLoss()(Sequential(Linear(4, 6), ReLU(), "
                          f"Linear(6, 5), Tanh(), Linear(5, 3))(x), labels).backward()",
                     hint="backpropagation through the whole model: if a single-op test fails, fix that first")


def test_dropout_gradient_is_its_mask():
    """Dropout in training passes the gradient through the kept elements only, scaled by 1/(1-p)"""
    dropout = Dropout(0.5)
    x = Tensor(np.full((4, 6), 2.0), requires_grad=True)
    y = dropout(x)
    y.sum().backward()
    expect_close(x.grad, y.data / 2.0, call="x.grad after Dropout(0.5)(x).sum().backward(), x all 2.0",
                 hint="Dropout multiplies by a constant mask: the gradient is the mask (0 or 1/(1-p))")


def test_entropy_is_differentiable_through_tensor_operations():
    """entropy (module 04, written with Tensor operations) gets torch's gradient for free"""
    p0 = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    check_gradients(lambda t: entropy(t), lambda t: -(t * t.log()).sum(dim=-1), [p0], names="p",
                    call="entropy(p)",
                    hint="entropy is built from *, log, comparisons and sum: nothing new, only their rules")
