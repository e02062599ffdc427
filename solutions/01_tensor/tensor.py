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
# # Module 01: Tensor
#
# Every number a neural network touches lives in a *tensor*: an n-dimensional array with a
# shape and a data type. In this module you build `Tensor`, the class the rest of the course
# stands on. By the end, `Tensor` can
#
# - be created from Python lists, numpy arrays and factory functions (`zeros`, `randn`, ...),
# - do elementwise arithmetic with **broadcasting** (`matrix + row`),
# - multiply matrices (`a @ b`), including batches of them,
# - change shape without copying (`reshape`, `transpose` are *views*),
# - be indexed and sliced,
# - reduce along an axis (`sum`, `mean`, `max`) with or without `keepdims`,
# - and explain itself when shapes do not fit.
#
# We store the numbers in a numpy array (`self.data`) and let numpy do the arithmetic. Your
# job is the *interface*: the rules a framework promises its users. PyTorch's `torch.Tensor`
# is the model; names and behaviour follow it where it has the concept, with numpy's
# `axis=`/`keepdims=` spelling for reductions.
#
# Two attributes, `requires_grad` and `grad`, are stored but unused until module 05
# (autograd), when tensors learn to compute their own gradients.

# %%
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# %% [markdown]
# ## 1. Broadcasting, and errors that explain it
#
# `matrix + row` works because of *broadcasting*: shapes are compared from the right; two
# sizes fit when they are equal or one of them is 1, and a missing axis counts as 1. A
# `(4, 3)` matrix plus a `(3,)` row gives `(4, 3)`: the row is reused for every row of the
# matrix without being copied.
#
# When shapes do not fit, numpy says `operands could not be broadcast together`. We can do
# better: name both shapes and the axis where they clash. `broadcast_shape` is the rule in
# one function; every elementwise operator of `Tensor` checks it first.

# %% nbgrader={"grade": false, "grade_id": "broadcast-shape", "locked": false, "schema_version": 3, "solution": true, "task": false}
def broadcast_shape(a: Sequence[int], b: Sequence[int], op: str = "+") -> tuple[int, ...]:
    """The shape of `a (op) b` under broadcasting, or a ValueError naming both shapes."""
    ### BEGIN SOLUTION
    ndim = max(len(a), len(b))
    # Pad the shorter shape with 1s on the left: a missing axis behaves like size 1.
    padded_a = (1,) * (ndim - len(a)) + tuple(a)
    padded_b = (1,) * (ndim - len(b)) + tuple(b)
    result = []
    for axis, (size_a, size_b) in enumerate(zip(padded_a, padded_b)):
        if size_a != size_b and 1 not in (size_a, size_b):
            raise ValueError(
                f"cannot broadcast shapes {tuple(a)} {op} {tuple(b)}: axis {axis - ndim} has "
                f"sizes {size_a} and {size_b}, which must be equal or one of them 1"
            )
        # the size that is not 1 wins (also when it is 0: (0,) with (1,) gives (0,), as in numpy)
        result.append(size_a if size_b == 1 else size_b)
    return tuple(result)
    ### END SOLUTION


# %% [markdown]
# ## 2. The Tensor class
#
# Everything a tensor can do is one class, below, in six groups. Read the notes for each
# group, then fill in the methods.
#
# **Creating.** A tensor wraps a numpy array, `self.data`. Neural networks compute in 32-bit
# floats (half the memory of 64-bit, plenty of precision for learning), so, like PyTorch,
# Python floats become `float32` and Python ints `int64`. A numpy array keeps its own dtype,
# so a test can ask for `float64` when it wants exact comparisons. `__array_ufunc__ = None`
# tells numpy not to handle Tensors itself, so `np.float32(2) * t` calls our `__rmul__`.
#
# **Elementwise arithmetic.** Every operator follows three steps: turn the other operand into
# a Tensor (`t + 1` must work, and a Python number takes the tensor's dtype), check the
# shapes with `broadcast_shape`, and let numpy compute. The reflected versions (`__radd__`,
# ...) handle `2 + t`, where Python asks the *right* operand.
#
# **Matrix multiplication.** `(m, k) @ (k, n) -> (m, n)`. Leading axes are a *batch*,
# broadcast like elementwise shapes: `(B, m, k) @ (k, n) -> (B, m, n)`; a 1-D operand is a
# vector, as in numpy. The *inner* sizes must agree. It is the most common shape bug in deep
# learning, so the error must say which sizes disagree.
#
# **Shapes without copies.** A numpy array is a block of memory plus a shape and *strides*
# (how many bytes to step along each axis). `reshape` of a contiguous array and `transpose`
# change only shape and strides: the result is a **view** sharing the same memory, free
# whatever the size. A transposed matrix is not contiguous (its rows are not next to each
# other in memory); `contiguous()` makes a compact copy when an algorithm needs one.
# `transpose()` swaps the last two axes; a tensor with fewer than 2 axes (a vector, a
# scalar) has nothing to swap and comes back unchanged, which is what `.T` of a vector does
# in numpy too. `reshape` accepts one `-1`: "whatever size makes the element count fit".
#
# **Indexing.** `t[0]`, `t[:, 1:3]`, `t[..., -1]`, `t[[0, 2]]` and boolean masks mean what
# they mean in numpy, including the rule that slices are views and integer-array ("fancy")
# indexing copies. An index may itself be a Tensor (of class labels, say).
#
# **Reductions.** `sum(axis=0)` of a `(4, 3)` matrix adds the four rows into one row of
# shape `(3,)`. With `keepdims=True` the collapsed axis stays as size 1, `(1, 3)`, which is
# what you need to broadcast the result back, as in `x - x.mean(axis=0, keepdims=True)`.
# `axis=None` reduces everything; `axis` may also be negative or a tuple.

# %% nbgrader={"grade": false, "grade_id": "tensor-class", "locked": false, "schema_version": 3, "solution": true, "task": false}
DTypeLike = Any
Axis = int | tuple[int, ...] | None


class Tensor:
    """An n-dimensional array of numbers with the arithmetic a neural network needs."""

    __array_ufunc__ = None  # numpy defers to our operators instead of converting us

    # -- creating ---------------------------------------------------------------------------

    def __init__(self, data: Any, dtype: DTypeLike = None, requires_grad: bool = False) -> None:
        """Wrap `data` (a number, nested list, numpy array or Tensor) as a Tensor.

        Python floats become float32 and Python ints int64; numpy arrays and numpy scalars
        (such as the np.float64 that `array.sum()` returns) keep their dtype unless `dtype`
        says otherwise. A Tensor argument shares its numbers.
        """
        ### BEGIN SOLUTION
        if isinstance(data, Tensor):
            data = data.data
        if isinstance(data, np.ndarray):
            array = data
        elif isinstance(data, np.generic):
            # a numpy scalar (what numpy returns from a full reduction) keeps its dtype too
            array = np.asarray(data)
        else:
            array = np.array(data)
            # np.array makes float64 from Python floats; networks want float32.
            if array.dtype == np.float64:
                array = array.astype(np.float32)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        self.data: np.ndarray = array
        self.requires_grad: bool = requires_grad
        self.grad: Tensor | None = None
        ### END SOLUTION

    @property
    def shape(self) -> tuple[int, ...]:
        """The size of each axis, e.g. (2, 3) for two rows of three."""
        ### BEGIN SOLUTION
        return self.data.shape
        ### END SOLUTION

    @property
    def ndim(self) -> int:
        """The number of axes: 0 for a scalar, 1 for a vector, 2 for a matrix."""
        ### BEGIN SOLUTION
        return self.data.ndim
        ### END SOLUTION

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the numbers, e.g. float32."""
        ### BEGIN SOLUTION
        return self.data.dtype
        ### END SOLUTION

    def numel(self) -> int:
        """How many numbers the tensor holds (the product of its shape)."""
        ### BEGIN SOLUTION
        return int(self.data.size)
        ### END SOLUTION

    def __len__(self) -> int:
        """The size of the first axis; a 0-d tensor has no length (TypeError)."""
        ### BEGIN SOLUTION
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor: a scalar has no length")
        return self.shape[0]
        ### END SOLUTION

    def item(self) -> float | int | bool:
        """The single number inside a one-element tensor, as a Python number."""
        ### BEGIN SOLUTION
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()
        ### END SOLUTION

    def numpy(self) -> np.ndarray:
        """The numpy array behind the tensor (shared, not copied)."""
        ### BEGIN SOLUTION
        return self.data
        ### END SOLUTION

    def tolist(self) -> Any:
        ### BEGIN SOLUTION
        return self.data.tolist()
        ### END SOLUTION

    def to(self, dtype: DTypeLike) -> Tensor:
        """A tensor of the same numbers in another dtype."""
        ### BEGIN SOLUTION
        return Tensor(self.data.astype(dtype))
        ### END SOLUTION

    def detach(self) -> Tensor:
        """The same numbers, cut loose from any gradient bookkeeping (module 05)."""
        ### BEGIN SOLUTION
        return Tensor(self.data)
        ### END SOLUTION

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({body}, dtype={self.dtype}{grad})"

    # -- elementwise arithmetic with broadcasting ---------------------------------------------

    def _lift(self, other: Any) -> Tensor:
        """`other` as a Tensor; a Python number takes this tensor's floating dtype."""
        ### BEGIN SOLUTION
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float, bool)) and self.dtype.kind == "f":
            return Tensor(np.asarray(other, dtype=self.dtype))
        return Tensor(other)
        ### END SOLUTION

    def _elementwise(self, other: Any, op: str, compute) -> Tensor:
        """`compute(self.data, other.data)` after checking that the shapes broadcast."""
        ### BEGIN SOLUTION
        other = self._lift(other)
        broadcast_shape(self.shape, other.shape, op)
        return Tensor(compute(self.data, other.data))
        ### END SOLUTION

    def __add__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._elementwise(other, "+", np.add)
        ### END SOLUTION

    def __sub__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._elementwise(other, "-", np.subtract)
        ### END SOLUTION

    def __mul__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._elementwise(other, "*", np.multiply)
        ### END SOLUTION

    def __truediv__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._elementwise(other, "/", np.true_divide)
        ### END SOLUTION

    def __radd__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._lift(other) + self
        ### END SOLUTION

    def __rsub__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._lift(other) - self
        ### END SOLUTION

    def __rmul__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._lift(other) * self
        ### END SOLUTION

    def __rtruediv__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._lift(other) / self
        ### END SOLUTION

    def __neg__(self) -> Tensor:
        ### BEGIN SOLUTION
        return Tensor(-self.data)
        ### END SOLUTION

    def __pow__(self, exponent: float) -> Tensor:
        """Every element to a fixed Python-number power, e.g. `t ** 2`."""
        ### BEGIN SOLUTION
        if not isinstance(exponent, (int, float)):
            raise TypeError("Tensor ** exponent takes a Python number as the exponent")
        return Tensor(self.data ** exponent)
        ### END SOLUTION

    def __lt__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._elementwise(other, "<", np.less)
        ### END SOLUTION

    def __gt__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._elementwise(other, ">", np.greater)
        ### END SOLUTION

    def __le__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._elementwise(other, "<=", np.less_equal)
        ### END SOLUTION

    def __ge__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._elementwise(other, ">=", np.greater_equal)
        ### END SOLUTION

    def exp(self) -> Tensor:
        ### BEGIN SOLUTION
        return Tensor(np.exp(self.data))
        ### END SOLUTION

    def log(self) -> Tensor:
        ### BEGIN SOLUTION
        return Tensor(np.log(self.data))
        ### END SOLUTION

    def sqrt(self) -> Tensor:
        ### BEGIN SOLUTION
        return Tensor(np.sqrt(self.data))
        ### END SOLUTION

    def maximum(self, other: Any) -> Tensor:
        """The elementwise larger of two tensors (broadcasting), e.g. `t.maximum(0)`."""
        ### BEGIN SOLUTION
        return self._elementwise(other, "maximum", np.maximum)
        ### END SOLUTION

    # -- matrix multiplication ----------------------------------------------------------------

    def __matmul__(self, other: Any) -> Tensor:
        """Matrix product with batch broadcasting and a clear error for mismatched inner sizes."""
        ### BEGIN SOLUTION
        other = self._lift(other)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError("matmul needs tensors with at least one axis; use * to scale by a number")
        inner_left = self.shape[-1]
        inner_right = other.shape[-2] if other.ndim > 1 else other.shape[0]
        if inner_left != inner_right:
            raise ValueError(
                f"matmul shape mismatch: {self.shape} @ {other.shape}: the last axis of the left "
                f"({inner_left}) must equal the {'second-to-last' if other.ndim > 1 else 'only'} "
                f"axis of the right ({inner_right})"
            )
        if self.ndim > 2 and other.ndim > 2:
            broadcast_shape(self.shape[:-2], other.shape[:-2], "@ (batch axes)")
        return Tensor(np.matmul(self.data, other.data))
        ### END SOLUTION

    def __rmatmul__(self, other: Any) -> Tensor:
        ### BEGIN SOLUTION
        return self._lift(other) @ self
        ### END SOLUTION

    # -- shapes without copies ----------------------------------------------------------------

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """The same numbers in a new shape, e.g. `t.reshape(2, -1)`; a view when possible."""
        ### BEGIN SOLUTION
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if shape.count(-1) > 1:
            raise ValueError(f"reshape{tuple(shape)}: only one axis can be -1")
        known = int(np.prod([size for size in shape if size != -1]))
        if -1 in shape:
            fits = known != 0 and self.numel() % known == 0
        else:
            fits = known == self.numel()
        if not fits:
            raise ValueError(
                f"cannot reshape a tensor of shape {self.shape} ({self.numel()} elements) "
                f"into {tuple(shape)}"
            )
        return Tensor(self.data.reshape(shape))
        ### END SOLUTION

    def transpose(self, axis0: int = -2, axis1: int = -1) -> Tensor:
        """Swap two axes (the last two by default), as a view; fewer than 2 axes: unchanged."""
        ### BEGIN SOLUTION
        if self.ndim < 2:
            return Tensor(self.data)
        return Tensor(np.swapaxes(self.data, axis0, axis1))
        ### END SOLUTION

    def permute(self, *axes: int) -> Tensor:
        """Reorder all axes, e.g. (N, H, W, C) -> (N, C, H, W) is `permute(0, 3, 1, 2)`."""
        ### BEGIN SOLUTION
        if sorted(axis % self.ndim for axis in axes) != list(range(self.ndim)):
            raise ValueError(f"permute{axes}: need each of the {self.ndim} axes exactly once")
        return Tensor(np.transpose(self.data, axes))
        ### END SOLUTION

    @property
    def T(self) -> Tensor:
        """All axes reversed: the transpose of a matrix."""
        ### BEGIN SOLUTION
        return Tensor(self.data.T)
        ### END SOLUTION

    def is_contiguous(self) -> bool:
        ### BEGIN SOLUTION
        return bool(self.data.flags["C_CONTIGUOUS"])
        ### END SOLUTION

    def contiguous(self) -> Tensor:
        """A compact row-major copy (or the tensor itself if it already is one)."""
        ### BEGIN SOLUTION
        return self if self.is_contiguous() else Tensor(np.ascontiguousarray(self.data))
        ### END SOLUTION

    def flatten(self, start_axis: int = 0) -> Tensor:
        """Merge the axes from `start_axis` on: (N, C, H, W) -> (N, C*H*W) for start 1."""
        ### BEGIN SOLUTION
        start = start_axis % self.ndim if self.ndim else 0
        return self.reshape(*self.shape[:start], -1)
        ### END SOLUTION

    def unsqueeze(self, axis: int) -> Tensor:
        """Insert an axis of size 1 at `axis`."""
        ### BEGIN SOLUTION
        return Tensor(np.expand_dims(self.data, axis))
        ### END SOLUTION

    def squeeze(self, axis: int | None = None) -> Tensor:
        """Remove axes of size 1 (all of them, or only `axis` if it has size 1)."""
        ### BEGIN SOLUTION
        if axis is not None and self.shape[axis] != 1:
            return Tensor(self.data)
        return Tensor(np.squeeze(self.data, axis=axis))
        ### END SOLUTION

    # -- indexing -------------------------------------------------------------------------------

    def __getitem__(self, index: Any) -> Tensor:
        ### BEGIN SOLUTION
        def plain(part: Any) -> Any:
            # numpy understands arrays, not Tensors, inside an index
            if isinstance(part, Tensor):
                return part.data
            if isinstance(part, tuple):
                return tuple(plain(p) for p in part)
            return part

        return Tensor(self.data[plain(index)])
        ### END SOLUTION

    # -- reductions -----------------------------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        ### BEGIN SOLUTION
        return Tensor(self.data.sum(axis=axis, keepdims=keepdims))
        ### END SOLUTION

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        ### BEGIN SOLUTION
        return Tensor(self.data.mean(axis=axis, keepdims=keepdims))
        ### END SOLUTION

    def var(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The biased variance (divide by n), as normalisation layers use it."""
        ### BEGIN SOLUTION
        return Tensor(self.data.var(axis=axis, keepdims=keepdims))
        ### END SOLUTION

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        ### BEGIN SOLUTION
        return Tensor(self.data.max(axis=axis, keepdims=keepdims))
        ### END SOLUTION

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        ### BEGIN SOLUTION
        return Tensor(self.data.min(axis=axis, keepdims=keepdims))
        ### END SOLUTION

    def argmax(self, axis: int | None = None) -> Tensor:
        """The index of the largest element (along `axis`), e.g. the predicted class."""
        ### BEGIN SOLUTION
        return Tensor(self.data.argmax(axis=axis))
        ### END SOLUTION


# %% [markdown]
# ## 3. Making tensors
#
# Factory functions, as in PyTorch: `zeros(2, 3)`, `ones(4)`, `full((2, 2), 7.0)`,
# `arange(5)`, and random tensors drawn from one seeded generator so that experiments repeat
# exactly after `manual_seed(0)`. Floating results are float32 unless a dtype is given.

# %%
_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reset tinytorch's random generator so that random tensors repeat."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The random generator every tinytorch module draws from."""
    return _generator


# %% nbgrader={"grade": false, "grade_id": "factories", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _shape_of(shape: tuple) -> tuple[int, ...]:
    """Accept both `zeros(2, 3)` and `zeros((2, 3))`."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def zeros(*shape: int, dtype: DTypeLike = np.float32) -> Tensor:
    ### BEGIN SOLUTION
    return Tensor(np.zeros(_shape_of(shape), dtype=dtype))
    ### END SOLUTION


def ones(*shape: int, dtype: DTypeLike = np.float32) -> Tensor:
    ### BEGIN SOLUTION
    return Tensor(np.ones(_shape_of(shape), dtype=dtype))
    ### END SOLUTION


def full(shape: Sequence[int], value: float, dtype: DTypeLike = np.float32) -> Tensor:
    ### BEGIN SOLUTION
    return Tensor(np.full(tuple(shape), value, dtype=dtype))
    ### END SOLUTION


def arange(start: int, stop: int | None = None, step: int = 1, dtype: DTypeLike = None) -> Tensor:
    ### BEGIN SOLUTION
    if stop is None:
        start, stop = 0, start
    array = np.arange(start, stop, step, dtype=dtype)
    if dtype is None and array.dtype == np.float64:
        array = array.astype(np.float32)  # a float step gives float32, as Python floats do
    return Tensor(array)
    ### END SOLUTION


def randn(*shape: int, dtype: DTypeLike = np.float32) -> Tensor:
    """Standard normal samples (mean 0, variance 1) from tinytorch's generator."""
    ### BEGIN SOLUTION
    return Tensor(generator().standard_normal(_shape_of(shape)).astype(dtype))
    ### END SOLUTION


def rand(*shape: int, dtype: DTypeLike = np.float32) -> Tensor:
    """Uniform samples in [0, 1) from tinytorch's generator."""
    ### BEGIN SOLUTION
    return Tensor(generator().random(_shape_of(shape)).astype(dtype))
    ### END SOLUTION


# %% [markdown]
# ## Try it
#
# Run this file (`python modules/01_tensor/tensor.py`) or this cell in the notebook. The
# examples only run when the file is executed, not when other modules import it.

# %%
if __name__ == "__main__":
    matrix = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    row = Tensor([10.0, 20.0, 30.0])
    print("matrix + row =", matrix + row)              # the row is broadcast over both rows
    print("matrix @ matrix.T =", matrix @ matrix.T)    # (2, 3) @ (3, 2) -> (2, 2)
    print("column sums:", matrix.sum(axis=0), "row means:", matrix.mean(axis=1, keepdims=True))
    try:
        matrix @ matrix
    except ValueError as error:
        print("a shape error that explains itself:", error)

# %% [markdown]
# ## Systems insight: memory is shape times dtype, and views are free
#
# A tensor's memory is `numel() * itemsize`: a 4096 x 4096 float32 matrix is 64 MiB, the same
# in float64 is 128 MiB. Halving precision halves memory *and* the bytes each operation has
# to move, which is why training uses float32 (and module 15 goes down to int8).
#
# Views cost nothing: `big.transpose()` and `big.reshape(-1)` allocate no new numbers;
# `np.shares_memory(big.data, big.T.data)` is True. But a transposed matrix is strided, and
# some operations (and the CPU cache) prefer contiguous memory: `contiguous()` pays the copy
# once. Measure it yourself:

# %%
if __name__ == "__main__":
    big = zeros(4096, 4096)
    print(f"float32: {big.data.nbytes / 2**20:.0f} MiB, float64: {big.to(np.float64).data.nbytes / 2**20:.0f} MiB")
    print("transpose shares memory:", np.shares_memory(big.data, big.T.data),
          "| contiguous:", big.T.is_contiguous())

# %% [markdown]
# ## Checkpoint
#
# `tito check 01` runs `tests/checkpoints/test_01_tensor.py`. It compares your tensor with
# numpy and PyTorch on creation and dtypes, broadcasting arithmetic (including random shapes
# drawn by Hypothesis), matmul and batched matmul, reshape/transpose views (and `transpose()`
# of a vector or scalar leaving it unchanged), indexing, reductions with `axis`/`keepdims`,
# factories and seeded random tensors, and the messages of shape errors.
