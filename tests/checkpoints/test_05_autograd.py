"""Checkpoint 05: Autograd.

The scalar `Value` engine is compared with PyTorch on scalar expressions (every operation,
numbers on either side, reuse, a diamond), with checks of its topological order and DOT
output. The Tensor engine is compared with `torch.autograd` in float64 for every
differentiable operation of modules 01-04 (shapes, broadcasting and non-contiguous inputs
drawn by Hypothesis), against central differences for a composite function, and on the
behaviour of `backward` and `no_grad`. Every gradient is pushed back with the same random
upstream gradient `g` through both frameworks: `y.backward(g)` computes the gradients of
`sum(g * y)`.

In `tito grade` this file also runs in a sandbox without torch, where each expect_* call only
records the value under test (see grader/sandbox_view.py). So inputs never come from torch or
from the code under test, expected values are computed only inside the expected argument of an
expect_* call, and properties without one expected value are judged by the module-level
predicates below, on the trusted side.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import show, torch64, values
from tinytorch.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.autograd import (
    Function,
    Value,
    describe_graph,
    enable_autograd,
    is_grad_enabled,
    no_grad,
    record,
    unbroadcast,
)
from tinytorch.layers import Dropout, Linear, Sequential
from tinytorch.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, entropy
from tinytorch.tensor import Tensor, manual_seed

# float64 in both frameworks: only rounding differences, though gradients may be summed in
# another order than PyTorch sums them
RTOL, ATOL = 1e-9, 1e-10

# The oracle works on tiny tensors, where torch's thread pool costs far more than it saves.
torch.set_num_threads(1)


def describe(names: str, arrays) -> str:
    """'a: shape (2, 3), b: shape (3,)' for the call lines of failures."""
    return ", ".join(f"{name}: shape {np.shape(a)}" for name, a in zip(names.split(), arrays))


def upstream_for(shape) -> np.ndarray:
    """The gradient arriving at the output: fixed random numbers (ones would hide transposes)."""
    return np.random.default_rng(1234).standard_normal(tuple(shape))


def run_backward(output, upstream, *, call: str, hint: str) -> None:
    """output.backward(upstream); an error inside a backward rule fails the test naming the call and hint."""
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
        # a failure, never a pass: raising is safe on either side of the trust boundary
        raise AssertionError(f"{call}\n  expected: backward() to run and fill in the gradients\n"
                             f"  got:      {type(error).__name__}{place}: {error}\n  hint: {hint}") from None


def torch_grad(leaf: torch.Tensor) -> torch.Tensor:
    """A torch leaf's gradient, zeros where none arrived (as a tinytorch leaf gets zeros then too)."""
    return leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)


def check_gradients(ours, theirs, arrays, *, names: str, call: str, hint: str,
                    rtol: float = RTOL, atol: float = ATOL) -> None:
    """Run ours(*Tensors) and theirs(*torch tensors), backward the same g, compare input grads."""
    ours_inputs = [Tensor(a, requires_grad=True) for a in arrays]
    torch_inputs = [torch64(a, requires_grad=True) for a in arrays]
    got = ours(*ours_inputs)
    expected = theirs(*torch_inputs)
    where = f"{call}.backward(g) with {describe(names, arrays)}"
    expect_equal(getattr(got, "requires_grad", None), True, call=f"{call}.requires_grad with {describe(names, arrays)}",
                 hint="an operation on a tensor that requires grad must record itself in the graph")
    expect_equal(tuple(got.shape), tuple(expected.shape), call=f"{call}.shape with {describe(names, arrays)}",
                 hint="the forward pass of modules 01-04 gives torch's shape; the gradient g has this shape")
    # g is drawn for the shape of our output: torch is absent where the student's code runs in `tito grade`
    upstream = upstream_for(got.shape)
    expected.backward(torch.tensor(upstream))
    run_backward(got, upstream, call=where, hint=hint)
    for name, tensor, reference in zip(names.split(), ours_inputs, torch_inputs):
        expect_close(tensor.grad, torch_grad(reference), rtol=rtol, atol=atol, call=f"{name}.grad after {where}",
                     hint=hint)


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
    array = draw(hnp.arrays(np.float64, shape, elements=values(-3.0, 3.0) if elements is None else elements))
    return strided(array) if draw(st.booleans()) else array


def positions_in(order, nodes) -> list[int]:
    """Each entry of `order` as its index in `nodes` (by identity), -1 for a node not in the graph."""
    return [next((i for i, node in enumerate(nodes) if node is entry), -1) for entry in order]


# -- predicates: judged on the trusted side over recorded values (module-level and pure) ----------

def is_topological_order(positions, edges, count, last) -> bool:
    """`positions` lists each of the `count` nodes once, every child before its parent, `last` last."""
    positions = list(positions)
    if sorted(positions) != list(range(count)) or positions[-1] != last:
        return False
    place = {node: k for k, node in enumerate(positions)}
    return all(place[child] < place[parent] for child, parent in edges)


def starts_and_ends_like_dot(text) -> bool:
    return isinstance(text, str) and text.lstrip().startswith("digraph") and text.rstrip().endswith("}")


def dot_line_labels_node(line_and_node, labels) -> bool:
    """The line of node vK (K its place in the student's order) shows that node's op, data and grad."""
    line, node = line_and_node
    return isinstance(line, str) and 0 <= node < len(labels) and all(part in line for part in labels[node])


def dot_edges_match(edges_and_positions, edges) -> bool:
    """The edge lines are 'vI -> vK;' from each child to its parent, numbered by the student's order."""
    lines, positions = edges_and_positions
    place = {node: k for k, node in enumerate(positions)}
    if any(child not in place or parent not in place for child, parent in edges):
        return False
    return sorted(lines) == sorted(f"v{place[child]} -> v{place[parent]};" for child, parent in edges)


def lines_mention(lines, wanted) -> bool:
    """Line i contains every text of wanted[i] (and there are as many lines as wanted)."""
    return len(lines) == len(wanted) and all(all(part in line for part in parts) for line, parts in zip(lines, wanted))


def is_dropout_gradient(grad_and_output, x_value, p) -> bool:
    """x.grad of Dropout(p)(x).sum() for x all x_value: the mask, 0 or 1/(1-p), and output = mask * x_value.

    The mask itself is the layer's random draw (any correct draw will do); the gradient must be
    exactly that mask: dropped elements 0, kept elements 1/(1-p), and both kinds present."""
    grad, output = (np.asarray(a, dtype=np.float64) for a in grad_and_output)
    if grad.shape != output.shape:
        return False
    scale = 1.0 / (1.0 - p)
    kept = np.isclose(grad, scale, rtol=1e-6)
    dropped = grad == 0
    return bool(np.all(kept | dropped) and kept.any() and dropped.any()
                and np.allclose(output, grad * x_value, rtol=1e-6))


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
             ("a * a * a", lambda a: a * a * a, 27.0), ("a * a + a", lambda a: a * a + a, 7.0),
             ("s * s, s = a + 1", lambda a: (lambda s: s * s)(a + 1.0), 8.0)]
    for text, f, expected in cases:
        a = Value(3.0)
        f(a).backward()
        expect_close(a.grad, expected, rtol=1e-12, call=f"a.grad after ({text}).backward(), a = Value(3.0)",
                     hint="accumulate with += in every _backward: with = the second use overwrites the "
                          "first (the classic bug), and a + a gives 1 instead of 2; and list each node once "
                          "in the topological order, or s * s runs s's _backward twice")


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


def test_value_relu_derivative_at_zero_is_zero():
    """Value.relu() at exactly 0 has derivative 0, as torch gives (1 only where the input is > 0)"""
    for start in (0.0, 2.0, -2.0):
        a = Value(start)
        (a.relu() * 3.0).backward()
        expect_close(a.grad, 3.0 if start > 0 else 0.0, rtol=1e-12, atol=0,
                     call=f"a.grad after (a.relu() * 3).backward(), a = Value({start})",
                     hint="the lesson's table: the derivative is 1 if a > 0, else 0, so 0 at exactly 0")


def test_value_backward_starts_from_zero():
    """Value.backward() sets every grad of its graph to 0 first: calling it again gives the same numbers"""
    a, b = Value(1.5), Value(-0.8)
    out = a * b + (a / b).tanh()
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.5, -0.8))
    (ta * tb + (ta / tb).tanh()).backward()
    out.backward()
    out.backward()
    for name, value, reference in (("a", a, ta), ("b", b, tb)):
        expect_close(value.grad, reference.grad.item(), rtol=1e-10, atol=1e-12,
                     call=f"{name}.grad after out.backward() twice, out = a * b + (a / b).tanh(), a = 1.5, b = -0.8",
                     hint="step 1 of backward(): set every node's grad to 0, then seed the output with 1.0 "
                          "and walk; each _backward adds (+=) to what grad already holds")
    (a * 4.0).backward()
    expect_close(a.grad, 4.0, rtol=1e-12, atol=0, call="a.grad after (a * 4).backward(), right after the above",
                 hint="a new backward() computes the gradients of its own output only: start from 0")


def _value_graph():
    """f = c*c + d*e, d = a*b, e = d + c: d feeds two nodes, and c feeds two nodes, twice c*c itself.

    c*c comes first, so its search meets c twice before c has been visited: a search that does
    not skip visited nodes lists c twice."""
    a, b, c = Value(2.0), Value(-3.0), Value(10.0)
    d = a * b
    e = d + c
    de = d * e
    cc = c * c
    f = cc + de
    return f, [a, b, c, d, e, de, cc, f]


VALUE_GRAPH = "f = c*c + d*e with d = a*b, e = d + c"
VALUE_NODES = "[a, b, c, d, e, d*e, c*c, f]"


def value_edges(nodes) -> list[tuple[int, int]]:
    """(child, parent) index pairs of the graph, once per use (c*c gives two)."""
    return [(positions_in([child], nodes)[0], k) for k, node in enumerate(nodes) for child in node._children]


def test_value_topological_order():
    """topological_order (your depth_first_order) lists every node once, each after the nodes it was computed from"""
    out, nodes = _value_graph()
    order = out.topological_order()
    expect_that(positions_in(order, nodes), is_topological_order, value_edges(nodes), len(nodes), len(nodes) - 1,
                call=f"f.topological_order() for {VALUE_GRAPH}, each node shown as its index in {VALUE_NODES}",
                expected=f"each of the {len(nodes)} indices once, every node after the nodes it was computed "
                         "from, f (7) last",
                hint="depth-first post-order with a set of visited ids: a node reachable along two paths "
                     "(d, c) is listed once, and appended only after all its children")


def test_value_deep_chain_has_no_recursion_error():
    """backward works through a chain of 5,000 operations (no recursion limit)"""
    x = Value(0.5)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.backward()
    expect_close(x.grad, 1.0, rtol=1e-12, call="x.grad after 5,000 times y = y * 1.0 + 0.0, then y.backward()",
                 hint="Python allows ~1000 nested calls: write the depth-first search with an explicit stack")


def value_labels(nodes) -> list[tuple[str, str, str]]:
    """What the DOT line of each node must show: its op ('input' for a leaf), data and grad."""
    return [(node._op or "input", f"data {node.data:.4g}", f"grad {node.grad:.4g}") for node in nodes]


def test_value_to_dot_shows_every_node_and_edge():
    """to_dot names every node (op, data, grad) and draws an edge from each child to its parent"""
    out, nodes = _value_graph()
    out.backward()
    positions = positions_in(out.topological_order(), nodes)
    text = out.to_dot()
    lines = [line.strip() for line in text.splitlines()] if isinstance(text, str) else []
    call = f"f.to_dot() for {VALUE_GRAPH}, after f.backward()"
    expect_that(text, starts_and_ends_like_dot, call=call, expected="text starting with 'digraph {' and ending with '}'",
                hint="DOT syntax: the lesson's example shows the whole frame")
    for k in range(len(nodes)):
        line = next((x for x in lines if x.startswith(f"v{k} [")), None)
        node = positions[k] if k < len(positions) else -1
        expect_that((line, node), dot_line_labels_node, value_labels(nodes),
                    call=f"the line of v{k} in {call} (v{k}: entry {k} of f.topological_order())",
                    expected=f"a line starting 'v{k} [' labelled with that node's op ('input' for a leaf), "
                             "'data {:.4g}' and 'grad {:.4g}'",
                    hint="name the nodes v0, v1, ... by their position in topological_order(), and label each "
                         "with its op, data and grad")
    expect_that((sorted(line for line in lines if "->" in line), positions), dot_edges_match, value_edges(nodes),
                call=f"the edge lines of {call}",
                expected="one line 'vI -> vK;' from each child vI to the node vK made from it, twice for c*c",
                hint="one edge per entry of node._children, so a child used twice (c * c) gives two edges")


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
    "a + b": (lambda a, b: a + b, values(-3.0, 3.0), values(-3.0, 3.0)),
    "a - b": (lambda a, b: a - b, values(-3.0, 3.0), values(-3.0, 3.0)),
    "a * b": (lambda a, b: a * b, values(-3.0, 3.0), values(-3.0, 3.0)),
    "a / b": (lambda a, b: a / b, values(-3.0, 3.0), away_from_zero),
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


@pytest.mark.parametrize("exponent", [0, 1, 2, 3])
def test_pow_at_zero_matches_torch(exponent):
    """x ** n at x = 0 for whole n >= 0 gives torch's gradient (0 for n = 0, not nan)"""
    x = np.array([0.0, 0.5, -1.5, 2.0])
    check_gradients(lambda t: t ** exponent, lambda t: t ** exponent, [x], names="x", call=f"(x ** {exponent})",
                    hint="d(x**n)/dx = n x**(n-1); for n = 0 the derivative is 0 everywhere, also at x = 0, "
                         "where n x**(n-1) would be 0 * inf = nan")


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


@pytest.mark.parametrize("reduction", ["max", "min"])
def test_max_min_ties_split_the_gradient(reduction):
    """At tied maxima (minima) the gradient is split equally among them, as torch.amax/amin do"""
    x = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 0.5, -1.0, 0.5]])
    torch_fn = torch.amax if reduction == "max" else torch.amin
    for axis, keep, dims in ((1, False, 1), (0, True, 0), (None, False, (0, 1))):
        check_gradients(lambda t: getattr(t, reduction)(axis=axis, keepdims=keep),
                        lambda t: torch_fn(t, dim=dims, keepdim=keep), [x], names="x",
                        call=f"(x.{reduction}(axis={axis}, keepdims={keep})) with ties, x = {show(x)}",
                        hint="k elements tied for the maximum (minimum) each get 1/k of its gradient: divide "
                             "by the number of winners along the reduced axes (keepdims=True)")


# -- part 2: the engine --------------------------------------------------------------------

def _composite(x, w):
    h = ((x @ w) * 0.5).exp() + 1.0
    return (h.log().mean(axis=0) * w.sum(axis=0)).sum() + (x.maximum(0.3) ** 2).var() - (x / (w.T[0] ** 2 + 1)).sum()


def central_differences(x0: np.ndarray, w0: np.ndarray, name: str, eps: float = 1e-6) -> np.ndarray:
    """(f(+eps) - f(-eps)) / 2eps of _composite for each element of x0 (name "x") or w0 (name "w").

    Called only inside an expected argument: in `tito grade` it runs on the reference alone."""
    base = x0 if name == "x" else w0
    numeric = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        up, down = base.copy(), base.copy()
        up[index] += eps
        down[index] -= eps
        args_up = (Tensor(up), Tensor(w0)) if name == "x" else (Tensor(x0), Tensor(up))
        args_down = (Tensor(down), Tensor(w0)) if name == "x" else (Tensor(x0), Tensor(down))
        numeric[index] = (_composite(*args_up).item() - _composite(*args_down).item()) / (2 * eps)
    return numeric


def test_composite_matches_central_differences():
    """The gradient of a composite function agrees with central differences (eps 1e-6)"""
    rng = np.random.default_rng(7)
    x0, w0 = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    x, w = Tensor(x0.copy(), requires_grad=True), Tensor(w0.copy(), requires_grad=True)
    _composite(x, w).backward()
    for name, leaf in (("x", x), ("w", w)):
        expect_close(leaf.grad, central_differences(x0, w0, name), rtol=1e-6, atol=1e-7,
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
    expect_equal(x.grad, None, call="x.zero_grad(); x.grad", hint="zero_grad forgets the gradient")
    (x * 3.0).sum().backward()
    expect_close(x.grad, np.full(3, 3.0), call="x.grad after zero_grad() then (x * 3).sum().backward()",
                 hint="after zero_grad, the next backward starts from nothing")


@pytest.mark.parametrize("dtype, x_dtype", [(np.float32, np.float32), (np.float64, np.float64),
                                            (np.float32, np.float64)],
                         ids=["float32", "float64", "float32-bias-float64-x"])
def test_grad_is_a_tensor_of_the_leaf_shape_and_dtype(dtype, x_dtype):
    """.grad is a Tensor with the leaf's shape and dtype, even when the leaf was broadcast or promoted"""
    bias = Tensor(np.array([0.5, -1.0, 2.0], dtype=dtype), requires_grad=True)
    x = Tensor(np.ones((4, 3), dtype=x_dtype))
    (x * bias).sum().backward()
    call = (f"bias.grad after (x * bias).sum().backward(), x: (4, 3) {np.dtype(x_dtype).name}, "
            f"bias: (3,) {np.dtype(dtype).name}")
    expect_equal(type(bias.grad).__name__, "Tensor", call=call + ": its type",
                 hint="store Tensor(gradient) in .grad, not the numpy array")
    expect_equal(bias.grad.shape, (3,), call=call + " .shape", hint="unbroadcast back to the leaf's shape")
    expect_equal(bias.grad.dtype, np.dtype(dtype), call=call + " .dtype",
                 hint="a leaf's gradient has the leaf's dtype: convert before storing (a float64 x promotes "
                      "x * bias to float64, and its gradient with it)")
    expect_close(bias.grad, np.full(3, 4.0), call=call, hint="each bias element was used by 4 rows")


def test_only_leaves_get_grad():
    """After backward, leaves with requires_grad have .grad; intermediates and constants do not"""
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    h = x * c
    (h * h).sum().backward()
    expect_close(x.grad, 2 * np.array([3.0, 8.0]) * np.array([3.0, 4.0]),
                 call="x.grad after h = x * c; (h * h).sum().backward()", hint="2 h c")
    expect_equal(h.grad, None, call="h.grad (an intermediate result)",
                 hint="only leaves (no _grad_fn) accumulate .grad; intermediate gradients are dropped")
    expect_equal(c.grad, None, call="c.grad (a constant, requires_grad=False)",
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
    expect_equal((inside, still_off), (False, False),
                 call="(is_grad_enabled() inside no_grad(), is_grad_enabled() after a nested no_grad() inside it)",
                 hint="__enter__ turns recording off; __exit__ restores the state __enter__ remembered, not simply True")
    expect_equal((y.requires_grad, y._grad_fn), (False, None),
                 call="(requires_grad, _grad_fn) of (x * 2).exp().sum() inside no_grad()",
                 hint="recording is off inside the block")
    expect_equal(is_grad_enabled(), True, call="is_grad_enabled() after the block",
                 hint="__exit__ turns recording back on")
    try:
        with no_grad():
            raise KeyError("boom")
    except KeyError:
        pass
    expect_equal(is_grad_enabled(), True, call="is_grad_enabled() after a no_grad() block that raised",
                 hint="__exit__ runs even when the block raises")

    @no_grad()
    def predict(t):
        return t * 3.0

    z = predict(x)
    expect_equal((z.requires_grad, z._grad_fn), (False, None),
                 call="(requires_grad, _grad_fn) of predict(x), @no_grad() def predict(t): return t * 3",
                 hint="no_grad is also a decorator")
    (x * 3.0).sum().backward()
    expect_close(x.grad, np.full(2, 3.0), call="x.grad after (x * 3).sum().backward() outside no_grad",
                 hint="outside the block recording works again")


def test_operations_without_requires_grad_build_no_graph():
    """Operations on tensors that do not require grad give plain tensors; gradients still flow past them"""
    a, b = Tensor(np.array([1.0, 2.0, 3.0])), Tensor(np.array([0.5, 0.5, 2.0]))
    c = (a * b + 1.0).exp().sum(axis=0, keepdims=True) @ Tensor(np.ones((1, 3)))
    expect_equal((c.requires_grad, c._grad_fn), (False, None),
                 call="(requires_grad, _grad_fn) of (a * b + 1).exp().sum(...) @ ones, no input requiring grad",
                 hint="record only when an input requires grad: modules 01-04 behave as before")
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
    expect_that(lines, lines_mention, [("(4, 3)", "(3, 2)", "(4, 2)"), ("(4, 2)", "(2,)"), ("(4, 2)", "()")],
                call=call, expected="3 lines mentioning (4, 3), (3, 2), (4, 2); then (4, 2), (2,); then (4, 2), ()",
                hint="each line shows the input shapes and the output shape")
    loss.backward()
    expect_close(w.grad, np.full((3, 2), 4.0), call="w.grad after ((x @ w) + b).sum().backward()",
                 hint="x^T @ ones")


class CountedIdentity(Function):
    """y = x, recorded with `record`: counts how often backward() calls its rule."""

    def __init__(self, x: Tensor) -> None:
        super().__init__(x)
        self.calls = 0

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        self.calls += 1
        return (grad,)


def test_backward_walks_each_function_once():
    """A tensor reached along two paths is walked once: one backward call per Function, one line each"""
    x0 = np.array([0.5, -1.0, 2.0])
    x = Tensor(x0, requires_grad=True)
    node = CountedIdentity(x)
    h = record(Tensor(x0.copy()), node)
    # h feeds exp() (the first input of *) and the product itself: two paths from y back to h
    y = (h.exp() * h).sum()
    expect_equal([line.split(":")[0].strip() for line in describe_graph(y).splitlines() if line.strip()],
                 ["CountedIdentity", "Exp", "Mul", "Sum"],
                 call="describe_graph(y) for h = CountedIdentity(x), y = (h.exp() * h).sum()",
                 hint="depth_first_order lists every node once: skip a node already visited, even when it was "
                      "pushed twice, so a shared sub-graph is not walked once per path")
    y.backward()
    expect_equal(node.calls, 1, call="how often CountedIdentity.backward ran during y.backward(), y = (h.exp() * h).sum()",
                 hint="a node's backward runs once, after every contribution to its gradient has been added up; "
                      "a node listed twice in the order runs twice, once with a partial gradient (and a deep "
                      "network with shared sub-graphs would take exponential time)")
    expect_close(x.grad, np.exp(x0) * (x0 + 1), call="x.grad after y.backward(), y = (h.exp() * h).sum(), h = x",
                 hint="d(x e**x)/dx = e**x (x + 1): both paths add up")


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


def test_relu_gradient_at_zero_is_zero():
    """ReLU's gradient is 0 at exactly 0, as torch gives (1 only where x > 0)"""
    x = np.array([[0.0, 1.5, -0.0, -2.0], [3.0, 0.0, -1e-300, 1e-300]])
    check_gradients(ReLU(), torch.relu, [x], names="x", call=f"ReLU()(x), x = {show(x)}",
                    hint="1 where x > 0, else 0: at exactly 0 the gradient is 0 (x > 0, not x >= 0)")


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
    x_torch = torch64(x0, requires_grad=True)
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
    twin_layers = [_torch_linear(layer) for layer in layers]
    twin = torch.nn.Sequential(twin_layers[0], torch.nn.ReLU(), twin_layers[1], torch.nn.Tanh(), twin_layers[2])
    x, labels = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    CrossEntropyLoss()(model(Tensor(x)), Tensor(labels)).backward()
    torch.nn.functional.cross_entropy(twin(torch.tensor(x)), torch.tensor(labels)).backward()
    for index, layer, twin_layer in zip((0, 2, 4), layers, twin_layers):
        for attribute in ("weight", "bias"):
            name, ours, theirs = f"{index}.{attribute}", getattr(layer, attribute), getattr(twin_layer, attribute)
            expect_close(ours.grad, theirs.grad, rtol=RTOL, atol=ATOL,
                         call=f"model.{name}.grad after CrossEntropyLoss()(Sequential(Linear(4, 6), ReLU(), "
                              f"Linear(6, 5), Tanh(), Linear(5, 3))(x), labels).backward()",
                         hint="backpropagation through the whole model: if a single-op test fails, fix that first")


def test_dropout_gradient_is_its_mask():
    """Dropout in training passes the gradient through the kept elements only, scaled by 1/(1-p)"""
    dropout = Dropout(0.5)
    x = Tensor(np.full((4, 6), 2.0), requires_grad=True)
    manual_seed(5)
    y = dropout(x)
    y.sum().backward()
    expect_that((x.grad, y), is_dropout_gradient, 2.0, 0.5,
                call="(x.grad, y) after y = Dropout(0.5)(x); y.sum().backward(), x all 2.0",
                expected="x.grad the mask (0 where y dropped an element, 1/(1-p) = 2 where it kept it), y = 2 * mask",
                hint="Dropout multiplies by a constant mask: the gradient is the mask (0 or 1/(1-p))")


def test_entropy_is_differentiable_through_tensor_operations():
    """entropy (module 04, written with Tensor operations) gets torch's gradient for free"""
    p0 = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    check_gradients(lambda t: entropy(t), lambda t: -(t * t.log()).sum(dim=-1), [p0], names="p",
                    call="entropy(p)",
                    hint="entropy is built from *, log, comparisons and sum: nothing new, only their rules")
