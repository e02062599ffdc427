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
# # Module 03: Layers
#
# A neural network is a stack of *layers*. A layer is two things:
#
# - **parameters**: the numbers it learns (a weight matrix, a bias vector), and
# - **forward**: the function that turns an input into an output using those numbers.
#
# In this module you build the machinery every later model stands on, with PyTorch's names so
# that what you learn transfers:
#
# - `Module`, the base class: it finds a model's parameters wherever they are nested, switches
#   the whole model between training and evaluation, and saves and loads its numbers
#   (`state_dict()` / `load_state_dict()`),
# - `Linear`, the fully connected layer `y = x @ W.T + b`, with the two standard ways to
#   choose the starting values of `W` (Kaiming and Xavier initialisation),
# - `Sequential`, which chains layers, and
# - `Dropout`, a layer that behaves differently in training and in evaluation.
#
# Gradients do not exist yet: module 05 (autograd) teaches tensors to compute them. Everything
# you write here uses `Tensor` operations (`@`, `.T`, `+`, `*`), so that once autograd
# exists, your layers are differentiable without changing a line.

# %%
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from tinytorch.tensor import Tensor, generator

# %% [markdown]
# ## 1. Module: a registry of parameters
#
# Why does a layer need a base class at all? Because of the code that *uses* a model:
#
# - an **optimizer** (module 06) updates every learnable number: `for p in model.parameters():
#   p.data -= lr * p.grad.data`. It must be able to ask the model for all of them, however
#   deeply nested (a GPT is blocks of attention and MLP layers of Linear layers);
# - a **checkpoint** (module 07) saves every number under a stable name, `"0.weight"`,
#   `"blocks.3.attn.bias"`, and later loads them back into a freshly built model;
# - **train/eval**: some layers (Dropout here, normalisation layers elsewhere) must behave
#   differently while learning and while being evaluated; one call on the outer model must
#   reach every layer inside it.
#
# All three are the same idea: a *registry* of what a model contains. PyTorch builds its
# registry as you assign attributes (`nn.Module.__setattr__` notices an `nn.Parameter` or a
# sub-module and files it away). We do something simpler to read: we look at the object's
# attributes when asked. `vars(self)` is the dictionary of an object's attributes, in the
# order they were assigned, so:
#
# - every attribute that is a `Tensor` with `requires_grad=True` is a **parameter**;
# - every attribute that is a `Module` is a **child**, whose parameters are ours too, named
#   with the attribute as a prefix (`self.head = Linear(...)` gives `"head.weight"`);
# - a list or tuple attribute is opened up and its items named by position
#   (`self.layers = [Linear(...), Linear(...)]` gives `"layers.1.bias"`).
#
# Names and order follow PyTorch: a module's own parameters first, then each child's in
# attribute order, and a tensor reachable twice (the same layer used twice, or a weight shared
# by two layers) is listed once, under the first name found. An optimizer must not update the
# same number twice.
#
# The price of our simplicity: *any* tensor attribute with `requires_grad=True` counts. Keep
# only parameters in such attributes; do not store intermediate results on `self`.
#
# What the methods do:
#
# - `model(x)` calls `model.forward(x)`: `__call__` passes on all arguments.
# - `named_children()` / `children()`: the sub-modules directly inside this one.
# - `modules()`: this module and every module nested inside it, each once.
# - `named_parameters()` / `parameters()`: every parameter, recursively, each once.
# - `train(mode=True)` / `eval()`: set `training` on this module and all inside it; return
#   `self` so that `model = Model().eval()` reads naturally.
# - `zero_grad()`: forget the gradients of every parameter (`grad = None`), before the next
#   backward pass adds new ones.
# - `state_dict()`: `{name: numpy copy}`. A *copy*: a saved checkpoint must not change when
#   training continues and updates the parameters in place.
# - `load_state_dict(state)`: copy numbers back *into* the existing parameter arrays (an
#   optimizer holds references to those tensors; replacing them would silently detach it).
#   A missing or unexpected name is a `KeyError` and a wrong shape a `ValueError`, both
#   naming the culprit, and nothing is changed unless everything fits.
# - `num_parameters()`: how many numbers the model learns.

# %% nbgrader={"grade": false, "grade_id": "module-base", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Module:
    """Base class of every layer and model: parameters, children, train/eval, state_dict."""

    def __init__(self) -> None:
        self.training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """What the layer computes; every subclass defines its own."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """`layer(x)` is `layer.forward(x)`, with every argument passed on."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def _entries(self) -> Iterator[tuple[str, Any]]:
        """(name, value) for every attribute, with lists and tuples opened: ("layers.0", ...)."""
        for name, value in vars(self).items():
            if isinstance(value, (list, tuple)):
                for index, item in enumerate(value):
                    yield f"{name}.{index}", item
            else:
                yield name, value

    def named_children(self) -> list[tuple[str, Module]]:
        """(name, module) for each Module among the attributes (and inside lists), each once."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def children(self) -> list[Module]:
        """The sub-modules directly inside this one, in attribute order."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def modules(self) -> list[Module]:
        """This module, then every module nested inside it (depth first), each once."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        """(dotted name, tensor) for every parameter: own ones first, then each child's; each once."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def parameters(self) -> list[Tensor]:
        """Every parameter tensor (the objects themselves, not copies), in named_parameters order."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def train(self, mode: bool = True) -> Module:
        """Set `training = mode` here and in every module inside; return self."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def eval(self) -> Module:
        """Evaluation mode (`training = False`) everywhere inside; return self."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def zero_grad(self) -> None:
        """Set the `.grad` of every parameter to None."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: numpy copy of the parameter}, in named_parameters order."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy `state`'s values into the parameters of the same names (same shapes, all names)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def num_parameters(self) -> int:
        """How many numbers the model learns (the sum of every parameter's numel)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        """The settings shown inside `Linear(...)` when a model is printed."""
        return ""

    def __repr__(self) -> str:
        children = self.named_children()
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


# %% [markdown]
# ## 2. Linear, and why the starting values matter
#
# `Linear(in_features, out_features)` computes `y = x @ W.T + b`. We store the weight the way
# PyTorch does, with shape `(out_features, in_features)`: row `j` holds the weights of output
# `j`. That is why the forward pass uses `W.T`, and why weights copied from a PyTorch model
# fit without reshuffling. The input may have any leading axes, `(..., in_features)`: a batch
# `(N, in)` gives `(N, out)`, a batch of sequences `(N, T, in)` gives `(N, T, out)`, because
# `@` treats leading axes as a batch and the bias `(out,)` broadcasts over them.
#
# **Initialisation.** Before training, `W` is random, and the *scale* of that randomness
# decides whether a deep network can learn at all. Each output sums `in_features` products
# `w * x`. If the weights are independent with mean 0 and variance `s^2`, and the inputs have
# mean square `E[x^2]`, then
#
# `Var(y) = in_features * s^2 * E[x^2]`.
#
# Through ten layers this factor is applied ten times. Slightly below 1 and the signal fades
# to nothing (*vanishing* activations, and gradients with them); slightly above and it blows
# up (*exploding*). The cure is to choose `s` so that the factor is 1:
#
# - **Kaiming (He) normal**, for ReLU networks: ReLU zeroes half of its inputs, which halves
#   the mean square, so we need `in_features * s^2 / 2 = 1`: draw `W` from a normal
#   distribution with `std = sqrt(2 / in_features)`. This is our default, as most of this
#   course's networks use ReLU-like activations.
# - **Xavier (Glorot) uniform**, for tanh or sigmoid: keep the variance steady both forwards
#   (which wants `s^2 = 1 / in`) and backwards (which wants `s^2 = 1 / out`) by compromising at
#   `s^2 = 2 / (in + out)`. A uniform distribution on `[-a, a]` has variance `a^2 / 3`, so draw
#   from `[-a, a]` with `a = sqrt(6 / (in + out))`.
#
# Biases start at zero. Draw every random number from `generator()`, tinytorch's one random
# generator, so that `manual_seed(0)` makes a model repeat exactly. Parameters are float32
# tensors with `requires_grad=True`: that flag is what makes them parameters.
#
# An unknown `init` name is a `ValueError` that lists the choices.

# %% nbgrader={"grade": false, "grade_id": "linear", "locked": false, "schema_version": 3, "solution": true, "task": false}
INITS = ("kaiming", "xavier")


class Linear(Module):
    """A fully connected layer: `y = x @ weight.T + bias` for x of shape (..., in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str = "kaiming") -> None:
        """weight (out_features, in_features) from `init`, bias (out_features,) of zeros."""
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in_features) -> (..., out_features), with Tensor operations only."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# %% [markdown]
# ## 3. Sequential: layers in a row
#
# `Sequential(Linear(784, 256), relu, Linear(256, 10))` applies its layers one after another.
# A layer can be any callable: a `Module`, or a plain function or object such as the
# activations of module 02. Only the `Module` layers have parameters.
#
# To get PyTorch's names (`"0.weight"`, `"2.bias"`) from our attribute-based registry,
# each layer is stored as an attribute named by its position: `setattr(self, "0", layer)`.
# `getattr(self, "0")` reads it back. `len(seq)`, `seq[i]` (negative `i` too) and
# `for layer in seq` work as for a list; a slice `seq[1:]` is a new `Sequential` of the same
# layer objects.

# %% nbgrader={"grade": false, "grade_id": "sequential", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Sequential(Module):
    """Apply layers in order: `Sequential(a, b, c)(x)` is `c(b(a(x)))`."""

    def __init__(self, *layers: Callable) -> None:
        """Store each layer as the attribute "0", "1", ... so parameters get torch's names."""
        super().__init__()
        # YOUR CODE HERE
        raise NotImplementedError()

    def __len__(self) -> int:
        # YOUR CODE HERE
        raise NotImplementedError()

    def __getitem__(self, index: int | slice) -> Any:
        """The layer at `index` (negative counts from the end); a slice gives a Sequential."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __iter__(self) -> Iterator[Any]:
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Any) -> Any:
        """Each layer's output is the next layer's input."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __repr__(self) -> str:
        # a plain function shows its name rather than its address
        shown = [getattr(layer, "__name__", None) or repr(layer) for layer in self]
        lines = [f"  ({i}): " + text.replace("\n", "\n  ") for i, text in enumerate(shown)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


# %% [markdown]
# ## 4. Dropout: training is not evaluation
#
# Dropout fights overfitting by making the network unreliable *on purpose* while it learns:
# each element of the input is zeroed with probability `p`, a fresh random choice on every
# call, so no unit can count on any particular other unit being there.
#
# At evaluation time we want the whole network, deterministically: Dropout does nothing. But
# then every unit would see inputs about `1 / (1 - p)` times larger than during training,
# when only a fraction `1 - p` of them survived. **Inverted dropout** fixes this during
# training instead: survivors are multiplied by `1 / (1 - p)`, so the expected value of every
# element is the same in both modes and evaluation needs no correction.
#
# - training mode, `0 < p < 1`: mask of `0` (probability `p`) and `1 / (1 - p)` (otherwise),
#   drawn from `generator()`, in the input's dtype; return `x * Tensor(mask)`, a Tensor
#   operation, so that autograd can send gradients through the survivors in module 05;
# - evaluation mode, or `p == 0`: return the input unchanged;
# - `p` outside `[0, 1)` is a `ValueError` (`p = 1` would divide by zero).

# %% nbgrader={"grade": false, "grade_id": "dropout", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Dropout(Module):
    """Inverted dropout: zero elements with probability p and scale the rest by 1/(1-p), in training only."""

    def __init__(self, p: float = 0.5) -> None:
        """Check that 0 <= p < 1 (ValueError otherwise) and store it as `self.p`."""
        super().__init__()
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """In training: x * mask (0 with probability p, else 1/(1-p)); in eval (or p == 0): x."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"p={self.p}"


# %% [markdown]
# ## Try it
#
# Run this file (`python modules/03_layers/layers.py`) or these cells in the notebook. A ReLU
# here is a plain function, `t.maximum(0.0)`: `Sequential` accepts any callable.

# %%
if __name__ == "__main__":
    def relu(t: Tensor) -> Tensor:
        return t.maximum(0.0)

    model = Sequential(Linear(4, 8), relu, Dropout(0.25), Linear(8, 3))
    print(model)
    print("parameters:", [(name, tensor.shape) for name, tensor in model.named_parameters()])
    x = Tensor(generator().standard_normal((5, 4)).astype(np.float32))
    print("output shape:", model(x).shape)
    model.eval()
    print("eval mode twice gives the same output:", np.array_equal(model(x).data, model(x).data))

    saved = model.state_dict()
    fresh = Sequential(Linear(4, 8), relu, Dropout(0.25), Linear(8, 3)).eval()
    fresh.load_state_dict(saved)
    print("a fresh model with the loaded state agrees:", np.array_equal(fresh(x).data, model(x).data))

# %% [markdown]
# **Why initialisation scale matters, measured.** Push a batch through ten `Linear(256, 256)`
# + ReLU layers and print the standard deviation of the activations after each layer: with
# weights of std 0.01 ("small random numbers", a common guess) the signal shrinks by about
# 10x per layer; with std 1.0 it grows 10x per layer; Kaiming's `sqrt(2 / 256)` keeps it
# steady. Gradients flow back through the same matrices, so they vanish or explode the same
# way, and the network cannot learn.

# %%
if __name__ == "__main__":
    inputs = Tensor(generator().standard_normal((512, 256)).astype(np.float32))
    for label, std in [("std 0.01   ", 0.01), ("Kaiming    ", None), ("std 1.0    ", 1.0)]:
        h, stds = inputs, []
        for _ in range(10):
            layer = Linear(256, 256)
            if std is not None:
                layer.weight.data = generator().normal(0.0, std, layer.weight.shape).astype(np.float32)
            h = relu(layer(h))
            stds.append(float(h.data.std()))
        print(label, " ".join(f"{s:8.2g}" for s in stds))

# %% [markdown]
# ## Systems insight: parameters are memory
#
# A `Linear(in, out)` learns `in * out + out` numbers, and at 4 bytes per float32 that is its
# memory. The MNIST network of the 1986 milestone, 784 -> 256 -> 10, has
# `784*256 + 256 + 256*10 + 10 = 203,530` parameters: 814,120 bytes, under a megabyte.
# Almost all of it is the first weight matrix: wide inputs are expensive. Training costs more
# than the weights: a gradient per parameter doubles it, and Adam (module 06) keeps two more
# numbers per parameter, so training needs about 4x the parameter memory before counting a
# single activation. A 124-million-parameter GPT-2 is ~0.5 GB of float32 weights and ~2 GB to
# train with Adam; module 15 shrinks the weights 4x with int8.

# %%
if __name__ == "__main__":
    mlp = Sequential(Linear(784, 256), relu, Linear(256, 10))
    count = mlp.num_parameters()
    for name, tensor in mlp.named_parameters():
        print(f"{name:10s} {str(tensor.shape):12s} {tensor.numel():8,d} numbers {tensor.data.nbytes:9,d} bytes")
    print(f"total: {count:,d} parameters, {count * 4:,d} bytes as float32, "
          f"about {4 * count * 4 / 2**20:.1f} MiB to train with Adam")

# %% [markdown]
# ## Checkpoint
#
# `tito check 03` runs `tests/checkpoints/test_03_layers.py`. It checks the shapes of
# `Linear`'s parameters and outputs and compares its forward pass with PyTorch's
# `torch.nn.functional.linear` in float64; checks parameter names and order against an
# equivalent `torch.nn.Sequential` (a layer used twice counts once); saves a `state_dict`,
# loads it into a fresh model and expects identical outputs, and expects clear errors for a
# missing name or a wrong shape; measures the statistics of Kaiming and Xavier initialisation
# on large layers and their repeatability after `manual_seed`; and checks that `train()` and
# `eval()` reach every nested layer, that `zero_grad()` clears gradients, and that `Dropout`
# zeroes about a fraction `p` in training (scaling the survivors) and is the identity in
# evaluation.
