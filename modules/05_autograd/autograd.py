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
# # Module 05: Autograd
#
# Training a network means asking, for every one of its numbers, "if I nudge you, how does the
# loss change?" That is the *gradient* of the loss, and this module computes it automatically
# for anything you can write with tensors. It is the heart of every deep-learning framework:
# PyTorch's `loss.backward()` is what you build here.
#
# The module has two parts.
#
# 1. **A scalar engine, `Value`.** One number per node, five lines per operation. Small enough
#    to see everything: the *graph* an expression builds, the *local derivative* of each
#    operation, the *topological order* in which gradients must flow, *reverse mode*
#    (backpropagation) and *accumulation* when a node is used twice. Every idea of autograd
#    is here, without a single array.
# 2. **Autograd for `Tensor`.** The same ideas with arrays: each operation of modules 01-04
#    gets a `Function` that knows how to send gradients back to its inputs, with the two
#    complications arrays bring: *broadcasting* (a gradient must be summed back to the shape
#    of its input) and *shapes* (matmul, reshape, transpose, indexing, reductions).
#
# When you are done, importing `tinytorch.autograd` is enough to make your `Linear`,
# `Sequential`, activations and losses from modules 02-04 trainable, without changing a line
# of them:
#
# ```python
# import tinytorch.autograd
# loss = CrossEntropyLoss()(model(images), labels)
# loss.backward()                  # every parameter now has a .grad
# ```
#
# The checkpoint compares every gradient with `torch.autograd` in float64.

# %%
from __future__ import annotations

import contextlib
import functools
import math
from typing import Any, Callable, Iterable

import numpy as np

from tinytorch.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinytorch.tensor import Tensor

# %% [markdown]
# # Part 1: a scalar autograd engine
#
# ## 1.1 An expression is a graph
#
# Take `L = (a * b + c) ** 2` with `a = 2, b = -3, c = 10`. Python evaluates it one operation
# at a time: `d = a * b = -6`, then `e = d + c = 4`, then `L = e ** 2 = 16`. Draw every
# intermediate result as a node and connect each one to the nodes it was computed from, and
# you get a **computation graph**:
#
# ```
#  a ──┐
#      (*)── d ──┐
#  b ──┘         (+)── e ──(**2)── L
#  c ────────────┘
# ```
#
# We want `dL/da`, `dL/db`, `dL/dc`. Each operation only knows its own, *local* derivative:
# `d(x * y)/dx = y`, `d(x + y)/dx = 1`, `d(x ** 2)/dx = 2x`. The **chain rule** glues local
# derivatives together: if `L` depends on `a` only through `d`, then
# `dL/da = dL/dd * dd/da`. So we start at the end, where `dL/dL = 1`, and walk the graph
# backwards, each node multiplying the gradient it receives by its local derivative and
# passing the result to its inputs:
#
# - `dL/dL = 1`
# - `dL/de = dL/dL * 2e = 8`
# - `dL/dd = dL/de * 1 = 8`, and `dL/dc = dL/de * 1 = 8`
# - `dL/da = dL/dd * b = -24`, and `dL/db = dL/dd * a = 16`
#
# This is **reverse-mode** differentiation, or *backpropagation*. Its great virtue: one
# backward walk gives the derivative of the one output with respect to *every* input at
# once, for a cost of the same order as the forward pass itself (typically two to three
# times it). A network has millions of inputs (its
# weights) and one output (the loss): exactly the case reverse mode is made for.
#
# ## 1.2 `Value`: a number that remembers where it came from
#
# A `Value` wraps one Python float, `data`, and remembers
#
# - `_children`: the Values it was computed from (its inputs in the graph),
# - `_op`: the name of the operation that made it (`"+"`, `"*"`, `"tanh"`, ...), for display,
# - `grad`: `dL/d(this value)`, filled in by `backward()`, 0.0 until then,
# - `_backward`: a small function, a *closure*, made by the operation that created the Value.
#   Called once `out.grad` is known, it adds `out.grad * local derivative` to the `grad` of
#   each child. A leaf (a Value you created yourself) has nothing to pass on: its
#   `_backward` does nothing.
#
# `__add__` below is worked out for you; it is the pattern for every other operation:
# compute the result, create the output Value with its children and op, and define its
# `_backward`. Note the `+=`: section 1.5 explains why it must never be `=`.
#
# Python numbers mix in: `a + 1`, `2 * a`, `1 - a`, `1 / a`. `_lift` turns the number into a
# Value (a leaf nobody asks about), and the *reflected* operators (`__radd__`, ...) handle a
# number on the left, where Python asks the right operand. The exponent of `**` is always a
# plain number, as in `a ** 2` or `a ** -0.5`: `d(x ** n)/dx = n x ** (n - 1)`.
#
# The local derivatives you need:
#
# | operation | result | derivative with respect to each input |
# | --- | --- | --- |
# | `a * b` | `ab` | `b` for `a`, `a` for `b` |
# | `a - b` | `a - b` | `1` for `a`, `-1` for `b` |
# | `a / b` | `a / b` | `1 / b` for `a`, `-a / b**2` for `b` |
# | `a ** n` | `a**n` | `n a**(n-1)` |
# | `a.exp()` | `e**a` | `e**a`, the result itself |
# | `a.log()` | `ln a` | `1 / a` |
# | `a.tanh()` | `t = tanh a` | `1 - t**2` |
# | `a.relu()` | `max(a, 0)` | `1` if `a > 0`, else `0` |

# %% nbgrader={"grade": false, "grade_id": "value-ops", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Value:
    """A scalar that records the operations that made it, so it can compute gradients."""

    def __init__(self, data: float, children: tuple[Value, ...] = (), op: str = "") -> None:
        self.data = float(data)
        self.grad = 0.0
        self._children = tuple(children)
        self._op = op
        self._backward: Callable[[], None] = lambda: None  # a leaf passes nothing on

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    @staticmethod
    def _lift(other: Value | float) -> Value:
        """`other` as a Value: a Python number becomes a leaf."""
        return other if isinstance(other, Value) else Value(other)

    # -- a worked example ------------------------------------------------------------------

    def __add__(self, other: Value | float) -> Value:
        """self + other; d(a + b)/da = 1 and d(a + b)/db = 1."""
        other = self._lift(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward() -> None:
            self.grad += out.grad * 1.0
            other.grad += out.grad * 1.0

        out._backward = _backward
        return out

    # -- your operations ---------------------------------------------------------------------

    def __mul__(self, other: Value | float) -> Value:
        """self * other; d(a * b)/da = b and d(a * b)/db = a."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __sub__(self, other: Value | float) -> Value:
        """self - other; d(a - b)/da = 1 and d(a - b)/db = -1."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __truediv__(self, other: Value | float) -> Value:
        """self / other; d(a / b)/da = 1 / b and d(a / b)/db = -a / b**2."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __pow__(self, exponent: float) -> Value:
        """self ** exponent for a Python-number exponent; d(a ** n)/da = n a ** (n - 1)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def exp(self) -> Value:
        """e ** self; its derivative is itself."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def log(self) -> Value:
        """The natural logarithm; d(ln a)/da = 1 / a."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def tanh(self) -> Value:
        """tanh(self); d(tanh a)/da = 1 - tanh(a) ** 2."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def relu(self) -> Value:
        """max(self, 0); the derivative is 1 where self > 0, else 0."""
        # YOUR CODE HERE
        raise NotImplementedError()

    # -- given: negation and a Python number on the left --------------------------------------

    def __neg__(self) -> Value:
        return self * -1.0

    def __radd__(self, other: float) -> Value:
        return self._lift(other) + self

    def __rsub__(self, other: float) -> Value:
        return self._lift(other) - self

    def __rmul__(self, other: float) -> Value:
        return self._lift(other) * self

    def __rtruediv__(self, other: float) -> Value:
        return self._lift(other) / self


# %% [markdown]
# ## 1.3 The order of the walk: topological order
#
# A node may pass its gradient on only once it has received *all* of it. In
# `e = d + c; L = e * d`, the node `d` feeds both `e` and `L`: `dL/dd` is the sum of what
# arrives along both paths, and it is complete only after both `e` and `L` have done their
# `_backward`. So we need an order of the nodes in which **every node comes after all the
# nodes it was computed from** (its children), a *topological order*; backward then walks it
# from the end to the start, so every node runs after everything computed from it.
#
# Depth-first search gives one: visit a node's children first, and append the node itself
# when they are all done (*post-order*); a node reachable along several paths is visited
# once. The recursive version is four lines, but Python allows only about 1000 nested
# calls, and a graph of an RNN or a long loop is much deeper. Write it with an explicit
# stack: push `(node, False)`; when popping `(node, False)` for a node not yet visited, mark
# it, push `(node, True)` and then its children; when popping `(node, True)`, all its
# children are done, so append it.
#
# The search does not care what a node is, only how to reach its children, so it takes that
# as a function: `depth_first_order(root, children)`. For a `Value` the children are
# `node._children`; in part 2 the same search orders a graph of tensors, whose children are
# the inputs of the operation that made them. Nodes are told apart by `id()`: two different
# nodes may hold equal numbers.

# %% nbgrader={"grade": false, "grade_id": "value-topological-order", "locked": false, "schema_version": 3, "solution": true, "task": false}
def depth_first_order(root: Any, children: Callable[[Any], Iterable[Any]]) -> list[Any]:
    """Every node reachable from root through `children` (and root, last), each once, children first."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %%
def _value_topological_order(self: Value) -> list[Value]:
    """Every Value this one depends on (and itself, last), each once, children before parents."""
    return depth_first_order(self, lambda node: node._children)


Value.topological_order = _value_topological_order  # a method of Value

# %% [markdown]
# ## 1.4 Reverse mode: `backward()`
#
# With the order in hand, backpropagation is three steps:
#
# 1. set every node's `grad` to 0 (a fresh start: `backward()` of `Value` computes the
#    gradients of this output only, so calling it twice gives the same numbers),
# 2. seed the output: `dL/dL = 1.0`,
# 3. walk the topological order **backwards** and call each node's `_backward()`.

# %% nbgrader={"grade": false, "grade_id": "value-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _value_backward(self: Value) -> None:
    """Fill in `grad` = d(self)/d(node) for every node self depends on (self.grad = 1)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %%
Value.backward = _value_backward

# %% [markdown]
# ## 1.5 Accumulation, and the classic bug
#
# Look at `b = a + a`. The graph has one edge from `a` to `b` *twice*: `b`'s children are
# `(a, a)`. Its `_backward` therefore updates `a.grad` two times, once as `self` and once as
# `other`, and the right answer, `db/da = 2`, needs both contributions **added**. The same
# happens whenever a value is used more than once: `a * a` (`d/da = 2a`), a weight shared by
# two layers, the input of a residual connection (`x + f(x)`).
#
# The classic bug is to write `self.grad = out.grad * ...` instead of `+=`. Every gradient is
# then right as long as each value is used once, which is what small tests often check, and
# silently wrong as soon as one is reused: `b = a + a` gives `a.grad = 1` instead of 2, and
# `a * a` gives `a` instead of `2a`. Nothing crashes; the model just learns worse. This is
# also why `backward()` must start from zero: it adds to whatever `grad` already holds.
#
# ## 1.6 Seeing the graph: `to_dot()`
#
# Graphviz draws graphs described in its DOT language, which is plain text:
#
# ```
# digraph {
#   v0 [label="input | data 2 | grad -24"];
#   v1 [label="input | data -3 | grad 16"];
#   v2 [label="* | data -6 | grad 8"];
#   v0 -> v2;
#   v1 -> v2;
# }
# ```
#
# `to_dot()` writes that text: one node line per Value, named `v{k}` where `k` is its position
# in `topological_order()`, labelled with its op (`input` for a leaf), its data and its grad,
# each number formatted with `:.4g`; then one edge line `v{i} -> v{k};` from each child `v{i}`
# to the node `v{k}` made from it (a child used twice, as in `a + a`, gives the edge twice).
# Graphviz is not needed to write it; to see a picture, paste the text into any online
# Graphviz viewer or run `dot -Tpng` where Graphviz is installed.

# %% nbgrader={"grade": false, "grade_id": "value-to-dot", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _value_to_dot(self: Value) -> str:
    """Graphviz DOT text of the graph: one node per Value (op, data, grad), one edge per input."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %%
Value.to_dot = _value_to_dot

# %% [markdown]
# ## Try it: the scalar engine
#
# The example of section 1.1, a neuron `tanh(w1 x1 + w2 x2 + b)`, and the reuse cases. Run
# this file (`python modules/05_autograd/autograd.py`) or this cell.

# %%
if __name__ == "__main__":
    a, b, c = Value(2.0), Value(-3.0), Value(10.0)
    L = (a * b + c) ** 2
    L.backward()
    print(f"L = {L.data}, dL/da = {a.grad}, dL/db = {b.grad}, dL/dc = {c.grad}")  # 16, -24, 16, 8

    x1, x2, w1, w2, bias = Value(2.0), Value(0.0), Value(-3.0), Value(1.0), Value(6.8813735870195432)
    neuron = (x1 * w1 + x2 * w2 + bias).tanh()
    neuron.backward()
    print(f"neuron = {neuron.data:.4f}, d/dw1 = {w1.grad:.4f}, d/dx1 = {x1.grad:.4f}")

    a = Value(3.0)
    (a + a).backward()
    print("d(a + a)/da =", a.grad, "  (2: both uses add up)")
    (a * a).backward()
    print("d(a * a)/da =", a.grad, "  (2a = 6)")
    print(L.to_dot())

# %% [markdown]
# # Part 2: autograd for tensors
#
# The engine of part 1 works, but one Python object per number is hopeless for a network
# with a million weights. Part 2 keeps every idea and changes the unit: a node of the graph
# is now a whole **Tensor**, and each operation's local rule is written with numpy on whole
# arrays. The vocabulary follows PyTorch:
#
# - a tensor with `requires_grad=True` that you created yourself (a weight, an input you ask
#   about) is a **leaf**; after `loss.backward()` its `.grad` holds `dloss/dtensor`, a Tensor
#   of its own shape and dtype;
# - every operation on a tensor that requires grad returns a tensor that requires grad too,
#   with a **`_grad_fn`**: the `Function` that made it, holding its inputs and what its
#   backward rule needs (the `_backward` closure of part 1, as an object);
# - `Tensor.backward()` walks the graph in reverse topological order, exactly like
#   `Value.backward`, and accumulates into the leaves.
#
# How do tensors of module 01 learn to record operations, when module 01 knows nothing of
# gradients? This module *wraps* their methods (section 2.11): `Tensor.__mul__` becomes "call
# the original `__mul__` for the value, then, if an input requires grad, attach a `Mul`
# Function to the result". Your modules 01-04 stay exactly as they are.
#
# ## 2.1 Recording on and off: `no_grad`
#
# Recording costs memory (section "Systems insight"), and often it is not wanted: evaluating a
# model, updating weights in an optimizer (the update itself must not become part of the
# graph). PyTorch's answer is a switch, `torch.no_grad()`:
#
# ```python
# with no_grad():
#     predictions = model(test_images)     # nothing is recorded
# ```
#
# The switch is one module-level flag, `_grad_enabled`, read by `is_grad_enabled()`. Write
# `no_grad` as a context manager: `__enter__` remembers the current state and turns
# recording off; `__exit__` restores the *remembered* state (not simply `True`: `no_grad`
# blocks can be nested, and the outer one must still be off after the inner one ends). It
# restores the state even when the block raises, because `__exit__` runs in any case. Since
# `no_grad` derives from `contextlib.ContextDecorator`, it also works as a decorator:
# `@no_grad()` above a function runs the whole function without recording.

# %%
_grad_enabled = True


def is_grad_enabled() -> bool:
    """True unless inside a `no_grad()` block: operations record their Functions."""
    return _grad_enabled


# %% nbgrader={"grade": false, "grade_id": "no-grad", "locked": false, "schema_version": 3, "solution": true, "task": false}
class no_grad(contextlib.ContextDecorator):
    """Turn gradient recording off inside a `with` block (or a decorated function)."""

    def __enter__(self) -> no_grad:
        """Remember whether recording was on, then turn it off."""
        global _grad_enabled
        # YOUR CODE HERE
        raise NotImplementedError()

    def __exit__(self, *exc_info: Any) -> None:
        """Put recording back the way it was before __enter__ (also after an error)."""
        global _grad_enabled
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 2.2 Functions, and gradients under broadcasting
#
# A `Function` is one recorded operation. It holds
#
# - `inputs`: the input tensors, in the order of the operation's arguments (a Python number
#   or numpy array among them is turned into a constant Tensor that does not require grad),
# - `output`: the numpy array of the result, set when the operation is recorded (some rules,
#   like `exp`'s, need the result; it is the array, not the Tensor, so that the Tensor and
#   its Function do not keep each other alive),
# - anything else its rule needs (an axis, an exponent), stored by its `__init__`,
#
# and one method, `backward(grad_output)`: given `dL/d(output)` as a numpy array of the
# output's shape, return `dL/d(input)` for **each input**, in order, as numpy arrays of the
# inputs' shapes (`None` for an input that can have no gradient, like integer labels).
#
# **Broadcasting makes one rule necessary everywhere.** In `y = x + b` with `x` of shape
# `(4, 3)` and `b` of shape `(3,)`, numpy silently reuses `b` for each of the 4 rows. Reuse
# means accumulation (section 1.5): each element of `b` influenced 4 outputs, so its gradient
# is the *sum* of the 4 gradients it received. The gradient arriving at `+` has the output's
# shape `(4, 3)`; `b` needs it summed back to `(3,)`. In general, `unbroadcast(grad, shape)`
# undoes both ways broadcasting stretches a shape:
#
# - axes **added on the left** (`(3,)` became `(4, 3)`): sum them away;
# - axes of **size 1 stretched** (`(4, 1)` became `(4, 3)`): sum along them, keeping the axis
#   (`keepdims=True`), so that the size-1 axis stays.
#
# Every binary elementwise Function ends its backward with `unbroadcast` on each input.

# %%
class Function:
    """One recorded operation: its input tensors, what its backward needs, and the rule itself."""

    def __init__(self, *inputs: Any) -> None:
        self.inputs: tuple[Tensor, ...] = tuple(
            x if isinstance(x, Tensor) else Tensor(np.asarray(x)) for x in inputs)
        self.output: np.ndarray | None = None  # set by the recorder (section 2.11)

    def backward(self, grad_output: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """dL/d(input) for each input, given dL/d(output) (all numpy arrays)."""
        raise NotImplementedError(f"{type(self).__name__} has no backward rule")

    def __repr__(self) -> str:
        shapes = ", ".join(str(x.shape) for x in self.inputs)
        return f"<{type(self).__name__} of {shapes}>"


# %% nbgrader={"grade": false, "grade_id": "function-unbroadcast", "locked": false, "schema_version": 3, "solution": true, "task": false}
def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` (the shape after broadcasting) back to `shape`, the shape before it."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 2.3 Elementwise operations
#
# One Function per operation of module 01. Each backward is the tensor version of a `Value`
# operation: the same local derivative, now elementwise on arrays, followed by `unbroadcast`
# wherever an input may have been broadcast. `a` and `b` are the input Tensors (use
# `a.data`, `b.data` for their numbers), `grad` is `dL/d(output)` and `self.output` the
# result of the forward pass.
#
# Two remarks.
#
# - **`maximum`** sends the gradient to whichever operand won: to `a` where `a >= b`, to `b`
#   elsewhere. At an exact tie the function has a corner and no derivative; any choice is a
#   convention. Ours gives the whole gradient to `a`; PyTorch splits it equally between the
#   two, so the checkpoint avoids exact ties.
# - **Reflected operators.** `2 - t` calls `t.__rsub__(2)`. Its Function is `Sub` with the
#   operands swapped back into the order of the mathematics, `Sub(2, t)`: `RSub`, `RDiv` and
#   `RMatMul` below are given and need no backward of their own. `+` and `*` do not care
#   about order, so `__radd__` and `__rmul__` use `Add` and `Mul` directly.

# %% nbgrader={"grade": false, "grade_id": "elementwise-functions", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Add(Function):
    """a + b (broadcasting)."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d(a + b)/da = 1, d(a + b)/db = 1; each summed back to its input's shape."""
        a, b = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Sub(Function):
    """a - b (broadcasting)."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d(a - b)/da = 1, d(a - b)/db = -1."""
        a, b = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Mul(Function):
    """a * b (broadcasting)."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d(a * b)/da = b, d(a * b)/db = a."""
        a, b = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Div(Function):
    """a / b (broadcasting)."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d(a / b)/da = 1 / b, d(a / b)/db = -a / b**2."""
        a, b = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Neg(Function):
    """-x."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """d(-x)/dx = -1."""
        # YOUR CODE HERE
        raise NotImplementedError()


class Pow(Function):
    """x ** n for a Python-number exponent n."""

    def __init__(self, x: Tensor, exponent: float) -> None:
        super().__init__(x)
        self.exponent = exponent

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """d(x ** n)/dx = n x ** (n - 1) (and 0 for n = 0, also at x = 0)."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Exp(Function):
    """e ** x."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """d(e ** x)/dx = e ** x, which is the output."""
        # YOUR CODE HERE
        raise NotImplementedError()


class Log(Function):
    """The natural logarithm."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """d(ln x)/dx = 1 / x."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Sqrt(Function):
    """The square root."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """d(sqrt x)/dx = 1 / (2 sqrt x) = 1 / (2 * output)."""
        # YOUR CODE HERE
        raise NotImplementedError()


class Maximum(Function):
    """The elementwise larger of a and b (broadcasting)."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The gradient goes to a where a >= b, to b elsewhere."""
        a, b = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


# %%
class RSub(Sub):
    """other - self, recorded from `self.__rsub__(other)`: Sub with the operands in math order."""

    def __init__(self, x: Tensor, other: Any) -> None:
        super().__init__(other, x)


class RDiv(Div):
    """other / self, recorded from `self.__rtruediv__(other)`."""

    def __init__(self, x: Tensor, other: Any) -> None:
        super().__init__(other, x)


# %% [markdown]
# ## 2.4 Matrix multiplication
#
# For `C = A @ B` with `A` of shape `(m, k)` and `B` of shape `(k, n)`, each
# `C[i, j] = sum_p A[i, p] B[p, j]`. The element `A[i, p]` meets `B[p, j]` in every column
# `j` of row `i`, so
#
# `dL/dA[i, p] = sum_j dL/dC[i, j] B[p, j]`, which is `dL/dA = dL/dC @ B.T`, shape `(m, k)`;
# `dL/dB[p, j] = sum_i A[i, p] dL/dC[i, j]`, which is `dL/dB = A.T @ dL/dC`, shape `(k, n)`.
#
# A useful check when you forget which side the transpose goes on: the gradient of an input
# has the input's shape, and there is only one way to make `(m, k)` from `(m, n)` and
# `(k, n)`.
#
# Two extensions, both from module 01's matmul:
#
# - **Batches.** With leading axes, `A` of shape `(B, m, k)` and `B` of `(k, n)`, the
#   formulas hold for each matrix of the batch, with `.T` meaning "swap the last two axes"
#   (`np.swapaxes(x, -1, -2)`). A batch axis that was *broadcast* (here `B` was reused for
#   every matrix of the batch) must be summed back, which `unbroadcast` already does.
# - **Vectors.** A 1-D operand is treated as a matrix and the extra axis removed from the
#   result: a left vector `(k,)` as a row `(1, k)`, a right vector `(k,)` as a column
#   `(k, 1)`. Do the same in backward: put the axis back into the operand and into `grad`,
#   apply the matrix formulas, and reshape each gradient to its operand's shape.

# %% nbgrader={"grade": false, "grade_id": "matmul-function", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MatMul(Function):
    """a @ b, with batch broadcasting and 1-D operands as in numpy."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dL/da = grad @ b^T, dL/db = a^T @ grad (last two axes), batch axes summed back."""
        a, b = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


# %%
class RMatMul(MatMul):
    """other @ self, recorded from `self.__rmatmul__(other)`."""

    def __init__(self, x: Tensor, other: Any) -> None:
        super().__init__(other, x)


# %% [markdown]
# ## 2.5 Operations that only move numbers
#
# `reshape`, `flatten`, `unsqueeze`, `squeeze`, `transpose`, `permute`, `.T`, `contiguous`
# and `to` change how the numbers are arranged (or stored), never their values. Each output
# element *is* one input element, so the gradient is the output's gradient put back where
# the element came from:
#
# - the reshapes: reshape `grad` back to the input's shape (they keep the order of the
#   elements, only the shape changes). `Flatten`, `Unsqueeze` and `Squeeze` are reshapes too,
#   so they inherit `Reshape`'s backward;
# - `transpose(axis0, axis1)` swaps two axes; swapping them again undoes it. (Module 01 leaves
#   a tensor with fewer than 2 axes unchanged.)
# - `permute(*axes)` moves axis `axes[i]` to position `i`; the *inverse permutation*
#   `np.argsort(axes)` moves them back. `.T` reverses all axes, and reversing again undoes
#   it;
# - `contiguous` and `to(dtype)` copy the numbers: identity, and for `to` the gradient goes
#   back in the input's dtype.

# %% nbgrader={"grade": false, "grade_id": "shape-functions", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Reshape(Function):
    """x.reshape(...) (and flatten, unsqueeze, squeeze below): the same elements, another shape."""

    def __init__(self, x: Tensor, *args: Any, **kwargs: Any) -> None:
        super().__init__(x)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """Each element keeps its place in row-major order: reshape the gradient back."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Transpose(Function):
    """x.transpose(axis0, axis1): two axes swapped."""

    def __init__(self, x: Tensor, axis0: int = -2, axis1: int = -1) -> None:
        super().__init__(x)
        self.axis0, self.axis1 = axis0, axis1

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """Swap the same two axes of the gradient back (nothing to do below 2 axes)."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Permute(Function):
    """x.permute(*axes): output axis i is input axis axes[i]."""

    def __init__(self, x: Tensor, *axes: int) -> None:
        super().__init__(x)
        self.axes = axes

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """Apply the inverse permutation, np.argsort(axes) (negative axes allowed)."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class TransposeAll(Function):
    """x.T: all axes reversed."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """Reversing the axes twice changes nothing."""
        # YOUR CODE HERE
        raise NotImplementedError()


class Contiguous(Function):
    """x.contiguous(): the same numbers, copied into compact memory."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """The identity."""
        # YOUR CODE HERE
        raise NotImplementedError()


class To(Function):
    """x.to(dtype): the same numbers in another dtype."""

    def __init__(self, x: Tensor, dtype: Any) -> None:
        super().__init__(x)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """The identity, in the input's dtype."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


# %%
class Flatten(Reshape):
    """x.flatten(start_axis): a reshape, so Reshape's backward."""


class Unsqueeze(Reshape):
    """x.unsqueeze(axis): a reshape, so Reshape's backward."""


class Squeeze(Reshape):
    """x.squeeze(axis): a reshape, so Reshape's backward."""


# %% [markdown]
# ## 2.6 Indexing: scatter the gradient back
#
# `y = x[index]` picks some elements of `x` (a slice, a row, a mask, a list of positions).
# Every element of `y` is one element of `x`, so the gradient of `x` is zero everywhere,
# except that each picked position receives the gradient of the element it became. It is a
# *scatter*: `grad_x[index] = grad`.
#
# With one catch: fancy indexing may pick the same position twice, `x[[0, 0, 2]]`. Then
# position 0 was used twice and must receive *both* gradients, accumulation once more. The
# assignment `grad_x[index] += grad` does *not* do that: numpy computes `grad_x[index] + grad`
# and writes the results back, so the second write to position 0 overwrites the first.
# `np.add.at(grad_x, index, grad)` is the unbuffered version that adds every contribution.
# (Module 11's embedding layer is exactly this: a lookup forward, a scatter-add backward.)
#
# `__init__` turns any Tensor inside the index (class labels, say) into its numpy array, and
# lists into arrays, so `self.index` is ready for numpy.

# %%
def _plain_index(index: Any) -> Any:
    """An index numpy understands: Tensors become arrays, lists become integer/bool arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    if isinstance(index, tuple):
        return tuple(_plain_index(part) for part in index)
    return index


# %% nbgrader={"grade": false, "grade_id": "getitem-function", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GetItem(Function):
    """x[index]."""

    def __init__(self, x: Tensor, index: Any) -> None:
        super().__init__(x)
        self.index = _plain_index(index)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """Zeros of x's shape, with grad added (np.add.at) at the indexed positions."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 2.7 Reductions
#
# `s = x.sum(axis)`: every element of `x` contributes once to one element of `s`, with
# derivative 1. So `dL/dx` is `dL/ds` *copied back* to every element that was summed: the
# reverse of a reduction is a broadcast. Two steps:
#
# 1. if the reduction dropped its axes (`keepdims=False`), put them back as size-1 axes, so
#    that the gradient lines up with `x` (`_with_kept_axes` below, given, does this; for
#    `axis=None` every axis was reduced);
# 2. broadcast to `x`'s shape (`np.broadcast_to`).
#
# From there:
#
# - **mean** divides by the number of elements averaged, `n`: each contributes `1/n`;
# - **var** (biased, divide by `n`): `var = mean((x - m)^2)` with `m` the mean, and
#   `dvar/dx_i = 2 (x_i - m) / n` (the terms through `m` add up to zero, since the
#   deviations from the mean sum to zero);
# - **max** and **min** pass the gradient to the element that was the maximum (minimum), and
#   zero to the others: compare `x` with the output (with the axes put back) to find it. At a
#   *tie* (two equal maxima) there is no derivative; we split the gradient equally among the
#   tied elements, as PyTorch's `amax` and full `max()` do (`torch.max(x, dim)` instead gives
#   it all to the one index it returns). The checkpoint checks ties too: with `k` tied
#   winners, each gets `1/k` of the gradient.

# %%
def _reduced_axes(ndim: int, axis: int | tuple[int, ...] | None) -> tuple[int, ...]:
    """The axes a reduction removed, as non-negative numbers: None means all of them."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(a % ndim for a in axes)) if ndim else ()


def _with_kept_axes(grad: np.ndarray, ndim: int, axis: int | tuple[int, ...] | None,
                    keepdims: bool) -> np.ndarray:
    """The gradient of a reduction with its reduced axes back in place as size 1."""
    grad = np.asarray(grad)
    if keepdims:
        return grad
    return np.expand_dims(grad, _reduced_axes(ndim, axis))


class Reduction(Function):
    """Base of sum/mean/var/max/min: stores axis and keepdims."""

    def __init__(self, x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> None:
        super().__init__(x)
        self.axis, self.keepdims = axis, keepdims

    def count(self) -> int:
        """How many elements of x went into each element of the output."""
        x = self.inputs[0]
        return int(np.prod([x.shape[a] for a in _reduced_axes(x.ndim, self.axis)]))


# %% nbgrader={"grade": false, "grade_id": "reduction-functions", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Sum(Reduction):
    """x.sum(axis, keepdims)."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """Every summed element gets the gradient of its sum: put the axes back, broadcast."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Mean(Reduction):
    """x.mean(axis, keepdims)."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """Like sum, divided by the number of elements averaged (self.count())."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Var(Reduction):
    """x.var(axis, keepdims), the biased variance (divide by n)."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """dvar/dx_i = 2 (x_i - mean) / n."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class Max(Reduction):
    """x.max(axis, keepdims)."""

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """The gradient goes to the maximal element(s), split equally among ties."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


# %%
class Min(Max):
    """x.min(axis, keepdims): the same rule as max (the winners are the minima)."""


# %% [markdown]
# ## 2.8 Activations: one fused backward each
#
# `ReLU()(x)` of module 02 computes with numpy on `x.data`, not with Tensor operations, so
# nothing inside it is recorded. Instead, the whole activation is recorded as one Function,
# with a hand-derived backward. This is *fusion*: one node instead of the five or six a
# formula written with Tensor operations would make, less memory, and a derivative that is
# often simpler than the function. The Function receives the layer object (`self.layer`,
# for `dim` and `temperature`), the input `x` and `self.output`, the activation's result.
#
# | activation | derivative |
# | --- | --- |
# | ReLU | `1` where `x > 0`, else `0` |
# | Sigmoid, `s = sigmoid(x)` | `s (1 - s)` |
# | Tanh, `t = tanh(x)` | `1 - t^2` |
# | GELU, `u = c (x + 0.044715 x^3)`, `c = sqrt(2/pi)`, `t = tanh(u)` | `0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2)` |
#
# **Softmax.** Each output `y_i = exp(z_i) / sum_j exp(z_j)` depends on *every* input of its
# row, `dy_i/dz_j = y_i (delta_ij - y_j)`. The full Jacobian is a `C x C` matrix per row,
# but we never need it, only its product with the incoming gradient `g`:
# `dL/dz_j = sum_i g_i y_i (delta_ij - y_j) = y_j (g_j - sum_i g_i y_i)`. With temperature,
# `z = x / T`, so multiply by `1/T` as well. The sum runs along `dim` (`keepdims=True`).
#
# **LogSoftmax.** `y_i = z_i - log sum_j exp(z_j)`, so `dy_i/dz_j = delta_ij - softmax_j`
# and `dL/dz_j = g_j - softmax_j * sum_i g_i`, where `softmax = exp(y)`; again times `1/T`.

# %%
class LayerFunction(Function):
    """A Function recorded from a layer's `forward`: keeps the layer (for dim, reduction, ...)."""

    def __init__(self, layer: Any, *inputs: Any) -> None:
        super().__init__(*inputs)
        self.layer = layer


# %% nbgrader={"grade": false, "grade_id": "activation-functions", "locked": false, "schema_version": 3, "solution": true, "task": false}
class ReLUFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """1 where x > 0, else 0."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class SigmoidFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """s (1 - s), with s the output."""
        # YOUR CODE HERE
        raise NotImplementedError()


class TanhFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """1 - t^2, with t the output."""
        # YOUR CODE HERE
        raise NotImplementedError()


class GELUFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2), t = tanh(c (x + 0.044715 x^3))."""
        (x,) = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class SoftmaxFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """y (g - sum(g y)) / T along dim, with y the output."""
        # YOUR CODE HERE
        raise NotImplementedError()


class LogSoftmaxFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """(g - exp(y) sum(g)) / T along dim, with y the output."""
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 2.9 Losses: fused too
#
# Each loss of module 04 is recorded as one Function with inputs `(prediction, target)`.
# Module 04 computed a loss per element (or per example) and then *reduced* it; the backward
# goes the other way. First `_per_example(grad, shape, reduction)` turns the incoming
# gradient into the gradient of each per-element loss:
#
# - `"mean"`: the output is the average of `n` losses, so each gets `grad / n`;
# - `"sum"`: each gets `grad`;
# - `"none"`: the gradient already has one entry per loss.
#
# Then the chain rule through each per-element loss `l`, with `g` its gradient:
#
# - **MSE**, `l = (p - y)^2`: `dl/dp = 2 (p - y)`, `dl/dy = -2 (p - y)`.
# - **Cross-entropy**, `l = -x_label + logsumexp(x)` per row: `dl/dx = softmax(x) - onehot(label)`.
#   The most famous gradient in deep learning: the predicted probabilities minus the truth.
#   Compute the softmax stably (subtract the row max), so that logits of 1e4 give a finite
#   gradient. The labels are integers: their gradient is `None`.
# - **BCE**, `l = -[y log p + (1 - y) log(1 - p)]`: `dl/dp = (p - y) / (p (1 - p))`. At `p = 0`
#   or `1` that divides by zero; like PyTorch, divide by `max(p (1 - p), 1e-12)` instead. (The
#   clamp of the logs at -100 in the forward pass is a different patch: where it is active the
#   true derivative of the clamped loss would be 0, but PyTorch, and we with it, use the
#   formula above, which still points the prediction the right way.) For the target,
#   `dl/dy = log(1 - p) - log p`, as PyTorch computes it (infinite at p = 0 or 1).
# - **BCE with logits**, `l = max(x, 0) - x y + log(1 + exp(-|x|))`: `dl/dx = sigmoid(x) - y`,
#   the same "prediction minus truth" as cross-entropy, and `dl/dy = -x`. Compute the sigmoid
#   stably, as in module 02.
#
# Gradients for targets (MSE, BCE) are rarely needed, but a target may require grad (a
# distillation target, module 16), and PyTorch provides them, so we do too. (A backward may
# return `None` for an input that does not require grad, to skip work it would throw away.)
#
# `entropy`, `kl_divergence` and `xlogy` of module 04 are plain functions written with Tensor
# operations (`*`, `log`, comparisons, `sum`), so they need nothing here: every operation
# they use records itself, and they are differentiable already. The trick that makes
# `0 log 0 = 0` (replace `y` by 1 where `x = 0`) also keeps the gradient finite there (0),
# where the naive formula gives `nan` (the true slope of `-p log p` is infinite at 0).

# %%
def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """The sigmoid of module 02, computed without overflow for logits of any size."""
    e = np.exp(-np.abs(x))  # in (0, 1]: cannot overflow
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# %% nbgrader={"grade": false, "grade_id": "loss-functions", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _per_example(grad: np.ndarray, shape: tuple[int, ...], reduction: str) -> np.ndarray:
    """dL/d(each per-element loss), of `shape`, from dL/d(reduced loss)."""
    # YOUR CODE HERE
    raise NotImplementedError()


class MSELossFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dl/dp = 2 (p - y), dl/dy = -2 (p - y), times the per-element gradient."""
        prediction, target = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class CrossEntropyLossFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, None]:
        """(softmax(x) - onehot(label)) times the per-example gradient; None for the labels."""
        logits, target = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class BCELossFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dl/dp = (p - y) / max(p (1 - p), 1e-12), dl/dy = log(1 - p) - log(p)."""
        prediction, target = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


class BCEWithLogitsLossFn(LayerFunction):
    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dl/dx = sigmoid(x) - y, dl/dy = -x."""
        logits, target = self.inputs
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 2.10 `Tensor.backward`
#
# Everything comes together here, and it is `Value.backward` again, with arrays:
#
# 1. **The seed.** `dL/dL = 1`: for a one-element output (a loss), a ones array of its shape.
#    A tensor with more elements has no single "derivative": `y.backward()` for `y` of shape
#    `(4, 3)` must say which combination of its elements you mean, by passing `grad`, an
#    array (or Tensor) of `y`'s shape, the gradient arriving at `y` (`y.backward(g)` computes
#    the gradients of `sum(g * y)`). Without `grad`, raise a RuntimeError, as PyTorch does
#    ("grad can be implicitly created only for scalar outputs"). A tensor that does not
#    require grad has no graph to walk: RuntimeError too.
# 2. **The order.** `_graph_order(output)` (given): every tensor the output was computed from
#    (and the output, last), children before parents: your `depth_first_order` of section
#    1.3, with a tensor's children being `tensor._grad_fn.inputs` (a leaf has no `_grad_fn`).
#    Iterative, so a chain of 10,000 operations works.
# 3. **The walk.** Keep a dictionary from `id(tensor)` to its gradient so far, holding the
#    seed at first. Go through the order backwards; for each tensor with a gradient:
#    - if it has a `_grad_fn`, call `_grad_fn.backward(gradient)` and **add** each result to
#      the entry of the matching input (skip `None` results and inputs that do not require
#      grad: constants need no gradient);
#    - if it is a leaf with `requires_grad=True`, **add** the gradient into its `.grad`: if
#      `.grad` is None, it becomes `Tensor(gradient)` in the leaf's dtype; otherwise the new
#      gradient is added to it. So calling `backward` twice accumulates twice, like PyTorch:
#      clear with `zero_grad()` (on a tensor, a Module, or an optimizer) between steps.
#
# Only leaves get a `.grad`. The gradients of intermediate tensors exist during the walk,
# then are dropped: a network's activations are many and their gradients are rarely wanted.

# %%
def _graph_order(output: Tensor) -> list[Tensor]:
    """Every tensor `output` was computed from (and output, last), each once, inputs first."""
    return depth_first_order(output, lambda tensor: tensor._grad_fn.inputs if tensor._grad_fn is not None else ())


# %% nbgrader={"grade": false, "grade_id": "tensor-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _tensor_backward(self: Tensor, grad: Any = None) -> None:
    """Accumulate d(self)/d(leaf) into `.grad` of every leaf with requires_grad (seed: `grad`)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %%
def _tensor_zero_grad(self: Tensor) -> None:
    """Forget this tensor's gradient: `.grad = None`."""
    self.grad = None


def describe_graph(output: Tensor) -> str:
    """The graph that made `output`, one line per operation in topological order:
    `Function: input shapes -> output shape` (a `*` marks a leaf that requires grad)."""
    lines = []
    for tensor in _graph_order(output):
        function = tensor._grad_fn
        if function is None:
            continue
        shapes = ", ".join(
            f"{x.shape}{'*' if x.requires_grad and x._grad_fn is None else ''}" for x in function.inputs)
        lines.append(f"{type(function).__name__}: {shapes} -> {tensor.shape}")
    return "\n".join(lines)


# %% [markdown]
# ## 2.11 Attaching autograd to the framework (given)
#
# The last piece is scaffolding: `enable_autograd()` replaces each differentiable method of
# `Tensor`, and the `forward` of each activation and loss class, by a *recorder*: a wrapper
# that
#
# 1. calls the original method for the value (under `no_grad()`, so that operations the
#    method uses internally, such as `flatten` calling `reshape`, are not recorded as well),
# 2. if recording is on and an input requires grad, builds the Function from the same
#    arguments (`Mul(a, b)`, `Sum(x, axis=1)`, `CrossEntropyLossFn(loss, logits, labels)`),
#    stores the result array in `function.output`, and marks the result:
#    `out.requires_grad = True`, `out._grad_fn = function`.
#
# Comparisons and `argmax` stay unwrapped: their results are not differentiable. `detach()`
# too: its whole point is a tensor without a graph. Each recorder remembers the method it
# wraps, so calling `enable_autograd()` again wraps the original methods afresh instead of
# wrapping the wrappers (in a notebook, re-run it after changing a Function). It runs when
# this module is imported, so `import tinytorch.autograd` is all a later module needs.
#
# Step 2's question is `needs_grad(*inputs)` and its marking is `record(out, function)`. Later
# modules that add a primitive of their own (convolution in 09, embedding lookup in 11, RoPE in
# 13) compute the value with numpy, then ask `needs_grad` and call `record` the same way.

# %%
TENSOR_FUNCTIONS: list[tuple[str, type[Function]]] = [
    ("__add__", Add), ("__radd__", Add), ("__sub__", Sub), ("__rsub__", RSub),
    ("__mul__", Mul), ("__rmul__", Mul), ("__truediv__", Div), ("__rtruediv__", RDiv),
    ("__neg__", Neg), ("__pow__", Pow), ("exp", Exp), ("log", Log), ("sqrt", Sqrt),
    ("maximum", Maximum), ("__matmul__", MatMul), ("__rmatmul__", RMatMul),
    ("reshape", Reshape), ("flatten", Flatten), ("unsqueeze", Unsqueeze), ("squeeze", Squeeze),
    ("transpose", Transpose), ("permute", Permute), ("T", TransposeAll),
    ("contiguous", Contiguous), ("to", To), ("__getitem__", GetItem),
    ("sum", Sum), ("mean", Mean), ("var", Var), ("max", Max), ("min", Min),
]
LAYER_FUNCTIONS: list[tuple[type, type[Function]]] = [
    (ReLU, ReLUFn), (Sigmoid, SigmoidFn), (Tanh, TanhFn), (GELU, GELUFn),
    (Softmax, SoftmaxFn), (LogSoftmax, LogSoftmaxFn),
    (MSELoss, MSELossFn), (CrossEntropyLoss, CrossEntropyLossFn),
    (BCELoss, BCELossFn), (BCEWithLogitsLoss, BCEWithLogitsLossFn),
]


def record(out: Tensor, function: Function) -> Tensor:
    """Mark `out` as the result of `function`: the node backward() will walk through."""
    function.output = out.data
    out.requires_grad = True
    out._grad_fn = function
    return out


def needs_grad(*inputs: Any) -> bool:
    """Should an operation on `inputs` record itself? Only when recording is on (not inside
    `no_grad`) and some input is a Tensor that requires grad. Every primitive asks this first."""
    return _grad_enabled and any(isinstance(a, Tensor) and a.requires_grad for a in inputs)


def _recorder(original: Callable, function_class: type[Function]) -> Callable:
    """`original`, wrapped to record `function_class` when an input requires grad."""

    @functools.wraps(original)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        if not needs_grad(*args, *kwargs.values()):
            return original(*args, **kwargs)
        with no_grad():
            out = original(*args, **kwargs)
        if not isinstance(out, Tensor) or any(out is a for a in args):
            return out  # e.g. contiguous() of a contiguous tensor is the tensor itself
        return record(out, function_class(*args, **kwargs))

    recorded._autograd_original = original
    return recorded


def _unwrapped(method: Callable) -> Callable:
    """The method as module 01-04 wrote it, whether or not it is wrapped already."""
    return getattr(method, "_autograd_original", method)


def enable_autograd() -> None:
    """Make Tensor operations, activations and losses record Functions (idempotent)."""
    Tensor._grad_fn = None  # a leaf (or any tensor made without recording) has no Function
    Tensor.backward = _tensor_backward
    Tensor.zero_grad = _tensor_zero_grad
    for name, function_class in TENSOR_FUNCTIONS:
        method = Tensor.__dict__[name]
        if isinstance(method, property):  # Tensor.T
            getter = _unwrapped(method.fget)
            setattr(Tensor, name, property(_recorder(getter, function_class), doc=getter.__doc__))
        else:
            setattr(Tensor, name, _recorder(_unwrapped(method), function_class))
    for layer_class, function_class in LAYER_FUNCTIONS:
        forward = layer_class.__dict__.get("forward") or layer_class.forward
        layer_class.forward = _recorder(_unwrapped(forward), function_class)


enable_autograd()

# %% [markdown]
# ## Try it: tensors
#
# A `Linear` layer of module 03 and a loss of module 04, trained by nothing but this module:
# the gradients agree with the definition of a derivative, `(f(w + h) - f(w - h)) / 2h`.

# %%
if __name__ == "__main__":
    from tinytorch.layers import Linear, Sequential
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    model = Sequential(Linear(3, 4), Tanh(), Linear(4, 2))
    inputs = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    labels = Tensor(np.array([0, 1, 1, 0, 1]))
    loss = CrossEntropyLoss()(model(inputs), labels)
    print(describe_graph(loss))
    loss.backward()
    weight = model[0].weight
    print("dloss/dweight[0, 0] by autograd:", weight.grad.data[0, 0])
    h = 1e-2
    with no_grad():
        weight.data[0, 0] += h
        up = CrossEntropyLoss()(model(inputs), labels).item()
        weight.data[0, 0] -= 2 * h
        down = CrossEntropyLoss()(model(inputs), labels).item()
        weight.data[0, 0] += h
    print("by central differences:          ", (up - down) / (2 * h))

    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = x * x + x          # x is used three times
    y.sum().backward()
    print("d(sum(x*x + x))/dx =", x.grad.data, "= 2x + 1")

# %% [markdown]
# ## Systems insight: the graph keeps every intermediate alive
#
# Reverse mode needs, during backward, values from the forward pass: `Mul` needs both inputs,
# `Exp` its output, `MatMul` both matrices. So every Function keeps references to its inputs
# (and output), and the whole graph, with *every intermediate activation of the forward
# pass*, stays in memory until backward is done and the loss is dropped. For a network, the
# memory of training is not just the weights: it is the weights plus all activations of the
# batch, and activations grow with the batch size (and with the sequence length, for a
# transformer). This is why a model that runs inference on a laptop may not train on it, and
# why techniques like *activation checkpointing* (recompute instead of store) exist.
#
# Under `no_grad()` nothing is recorded: each intermediate is freed as soon as the next layer
# has used it, and inference needs memory for a few activations at a time, whatever the
# depth. The cell measures both for an MLP: the bytes of the arrays the graph holds, and the
# peak memory that `tracemalloc` (which sees numpy's allocations) observes.

# %%
if __name__ == "__main__":
    import tracemalloc

    from tinytorch.layers import Linear, Sequential

    def graph_bytes(output: Tensor) -> int:
        """Bytes of the distinct arrays a graph holds (inputs and outputs of every Function)."""
        arrays = {}
        for tensor in _graph_order(output):
            if tensor._grad_fn is not None:
                for array in [x.data for x in tensor._grad_fn.inputs] + [tensor._grad_fn.output]:
                    arrays[id(array)] = array.nbytes
        return sum(arrays.values())

    layers = [Linear(784, 1024), ReLU()]
    for _ in range(5):
        layers += [Linear(1024, 1024), ReLU()]
    mlp = Sequential(*layers, Linear(1024, 10))
    batch = Tensor(np.random.default_rng(0).standard_normal((512, 784)).astype(np.float32))
    labels = Tensor(np.random.default_rng(1).integers(0, 10, 512))
    weights = sum(p.data.nbytes for p in mlp.parameters())

    tracemalloc.start()
    loss = CrossEntropyLoss()(mlp(batch), labels)
    _, peak_training = tracemalloc.get_traced_memory()
    held = graph_bytes(loss)
    del loss
    tracemalloc.reset_peak()
    with no_grad():
        CrossEntropyLoss()(mlp(batch), labels)
    _, peak_inference = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"weights: {weights / 2**20:.2f} MiB; the graph of one forward pass holds {held / 2**20:.2f} MiB "
          f"(weights, input and every activation)")
    print(f"peak memory during the forward pass: {peak_training / 2**20:.2f} MiB recording, "
          f"{peak_inference / 2**20:.2f} MiB under no_grad()")

# %% [markdown]
# ## Checkpoint
#
# `tito check 05` runs `tests/checkpoints/test_05_autograd.py`. It checks the `Value` engine
# against PyTorch on scalar expressions (each operation, numbers on either side, reuse as in
# `a * a` and `a + a`, a diamond-shaped graph, ReLU at exactly 0, a second `backward()` giving
# the same numbers, topological order, `to_dot`); `unbroadcast`
# against PyTorch's gradient of a broadcast; the gradient of every Tensor operation against
# `torch.autograd` in float64 on shapes drawn by Hypothesis (broadcasting, batched and 1-D
# matmul, non-contiguous inputs, indexing with repeated indices, reductions over every kind
# of axis, tied maxima, `x ** 0` at 0); a composite function against central differences; the
# behaviour of `backward` (accumulation over reused tensors and over two calls, each Function
# walked once even when two paths lead to it, leaves only, `.grad` shape and dtype, the error
# for a non-scalar output, a 10,000-operation chain); `no_grad` as context manager
# and decorator; `describe_graph`; and gradients through module 02's activations, module 03's
# `Linear` and `Sequential` and module 04's losses (each reduction, and extreme logits)
# against PyTorch.
