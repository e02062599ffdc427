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
# # Module 06: Optimizers
#
# Autograd (module 05) answers one question: *if I nudge this weight, how does the loss
# change?* That answer is the gradient, stored in `p.grad` for every parameter `p`. An
# **optimizer** answers the next one: *so how far, and in which direction, do I move each
# weight?* It is the part of training that actually changes the model.
#
# In this module you build the optimizers that train nearly every network in use today, with
# PyTorch's names and PyTorch's exact arithmetic, so that the same hyper-parameters give the
# same training run:
#
# | class | the idea in one line | state kept per parameter |
# | --- | --- | --- |
# | `SGD(params, lr)` | step against the gradient | none |
# | `SGD(..., momentum=0.9)` | keep rolling in the direction you were going | a velocity |
# | `RMSprop(params, lr)` | divide each gradient by its own typical size | a mean square |
# | `Adam(params, lr)` | momentum and RMSprop together, with bias correction | two averages |
# | `AdamW(params, lr)` | Adam with weight decay done right | two averages |
#
# **The contract.** An optimizer is given the list of parameters once,
# `optimizer = SGD(model.parameters(), lr=0.1)`, and then, every training step,
#
# ```python
# optimizer.zero_grad()      # forget the previous step's gradients
# loss = loss_fn(model(x), y)
# loss.backward()            # module 05 fills p.grad for every parameter
# optimizer.step()           # move every p.data against its p.grad
# ```
#
# An optimizer only ever *reads* `p.grad` (a `Tensor` of `p`'s shape, or `None` when the
# parameter took no part in the loss) and *writes* `p.data`, in place. That is all it needs to
# know about the model, so this module does not depend on autograd at all: the examples and
# the checkpoint set `p.grad` by hand, from gradients computed with numpy.

# %%
from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np

from tinytorch.tensor import Tensor

# %% [markdown]
# ## 1. Gradient descent: walking downhill in the fog
#
# Picture the loss as a landscape over the space of all weights, and yourself standing on it
# in thick fog. You cannot see the valley; you can only feel the slope under your feet. The
# gradient is that slope: it points *uphill*, and its length says how steep it is. So take a
# step the other way:
#
# $$p \leftarrow p - \text{lr} \cdot \nabla_p L$$
#
# The **learning rate** `lr` is the length of your stride per unit of slope. Too small and you
# need forever; too large and you overshoot the valley floor, land higher on the other side,
# and the next (steeper) slope throws you further still: training diverges. On a quadratic
# bowl with curvature $\lambda$, one step multiplies the distance to the bottom by
# $1 - \text{lr}\,\lambda$, so anything above $\text{lr} = 2/\lambda$ explodes.
#
# ### The base class, `Optimizer`
#
# Every optimizer shares the same bookkeeping, so it lives in one base class:
#
# - `Optimizer(params, lr)` keeps the parameters as a **list** (`model.parameters()` may be a
#   generator, which could be walked only once, and the optimizer walks it every step) and the
#   learning rate as a plain attribute `self.lr`. Read `self.lr` *inside* `step()`, every
#   time: a learning-rate schedule (module 07) changes it between steps with
#   `optimizer.lr = new_value`. An empty parameter list, a non-Tensor, or a negative `lr` is
#   almost certainly a bug in the caller: raise an error that names the value.
# - `zero_grad()` sets every `p.grad` to `None`. (Why not zeros? `None` costs no memory and
#   tells `step()` "this parameter got no gradient", which is different from "its gradient
#   was exactly zero": Adam still moves a parameter whose gradient is zero, see section 4.)
# - `_gradients()` yields `(index, parameter, gradient array)` for every parameter that has a
#   gradient, skipping the `None`s; each `step()` loops over it. The index (the position in
#   the list) is how the optimizer's memory is filed.
# - `state` is the optimizer's memory: a dict from parameter index to a dict of numpy arrays
#   (velocities, averages) and step counts, e.g. `{0: {"step": 3, "exp_avg": array(...)}}`.
#   An entry appears the first time that parameter has a gradient, as in PyTorch.
# - `state_dict()` / `load_state_dict(d)` save and restore everything the next `step()`
#   depends on: the hyper-parameters (the names in the class attribute `hyperparameters`,
#   `lr` first) and the state. Module 07 saves a checkpoint mid-training, builds a fresh model
#   and optimizer, loads both, and expects training to continue *bit for bit* as if never
#   interrupted. Two rules make that true: `state_dict()` returns **copies** (the optimizer
#   keeps updating its arrays in place; a saved checkpoint must not change with them), and
#   `load_state_dict` copies too (loading the same checkpoint twice must work). Keep the
#   values plain (Python numbers, tuples, numpy arrays) so any file format can store them.
#
# A note on `p.data -= ...`: the update must change the parameter's numbers *in place*. The
# model holds these very `Tensor` objects (`layer.weight`), and anything else may hold their
# arrays; replacing `p.data` by a new array would leave the optimizer updating numbers nobody
# uses. And an optimizer step is not part of the model's computation, so it works on the raw
# numpy arrays, never recording anything for autograd.

# %%
def _plain(value: Any) -> Any:
    """A hyper-parameter as plain Python: numpy scalars become numbers, tuples stay tuples."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return tuple(_plain(item) for item in value)
    return value


# %% nbgrader={"grade": false, "grade_id": "optimizer-base", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Optimizer:
    """Base class of every optimizer: the parameter list, lr, zero_grad, state and its saving."""

    # the constructor arguments that state_dict() saves; every subclass lists its own
    hyperparameters: tuple[str, ...] = ("lr",)

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        """Keep `params` as a list of Tensors and `lr` as an attribute; start with empty state."""
        ### BEGIN SOLUTION
        self.params: list[Tensor] = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list: pass model.parameters() of a model "
                             "that has parameters (a generator can be used only once)")
        for index, param in enumerate(self.params):
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizer parameter {index} is a {type(param).__name__}, not a Tensor")
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr} (it must be >= 0)")
        self.lr = lr
        self.state: dict[int, dict[str, Any]] = {}
        ### END SOLUTION

    def zero_grad(self) -> None:
        """Set the `.grad` of every parameter to None."""
        ### BEGIN SOLUTION
        for param in self.params:
            param.grad = None
        ### END SOLUTION

    def _gradients(self) -> Iterator[tuple[int, Tensor, np.ndarray]]:
        """Yield (index, parameter, gradient as a numpy array) for each parameter whose grad is not None."""
        ### BEGIN SOLUTION
        for index, param in enumerate(self.params):
            if param.grad is None:
                continue
            grad = param.grad.data if isinstance(param.grad, Tensor) else np.asarray(param.grad)
            if grad.shape != param.shape:
                raise ValueError(f"parameter {index} has shape {param.shape} but its grad has shape {grad.shape}")
            yield index, param, grad
        ### END SOLUTION

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def state_dict(self) -> dict[str, Any]:
        """{hyper-parameter: plain value, ..., "state": {index: {name: number or numpy copy}}}."""
        ### BEGIN SOLUTION
        saved: dict[str, Any] = {name: _plain(getattr(self, name)) for name in self.hyperparameters}
        saved["state"] = {
            index: {key: value.copy() if isinstance(value, np.ndarray) else _plain(value)
                    for key, value in entry.items()}
            for index, entry in self.state.items()
        }
        return saved
        ### END SOLUTION

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and state from `state_dict` (copies); check it fits first."""
        ### BEGIN SOLUTION
        expected = set(self.hyperparameters) | {"state"}
        missing = sorted(expected - set(state_dict))
        unexpected = sorted(set(state_dict) - expected)
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}; "
                           f"{type(self).__name__} saves {sorted(expected)}")
        restored: dict[int, dict[str, Any]] = {}
        for index, entry in state_dict["state"].items():
            index = int(index)
            if not 0 <= index < len(self.params):
                raise ValueError(f"load_state_dict: state for parameter {index}, but this optimizer has "
                                 f"{len(self.params)} parameters")
            param = self.params[index]
            restored[index] = {}
            for key, value in entry.items():
                if isinstance(value, np.ndarray):
                    if value.shape != param.shape:
                        raise ValueError(f"load_state_dict: state[{index}][{key!r}] has shape {value.shape} "
                                         f"but parameter {index} has shape {param.shape}")
                    value = np.array(value, dtype=param.data.dtype)  # a copy, in the parameter's dtype
                restored[index][key] = value
        # everything fits: only now change the optimizer
        for name in self.hyperparameters:
            setattr(self, name, state_dict[name])
        self.state = restored
        ### END SOLUTION


# %% [markdown]
# ## 2. SGD, and momentum for ravines
#
# Plain stochastic gradient descent is the formula above, one line per parameter. Its
# weakness shows in a **ravine**: a valley much steeper across than along. Take
#
# $$f(x, y) = \tfrac12 (x^2 + 100\, y^2)$$
#
# The curvature across (`y`, 100) caps the learning rate at $2/100$; along the valley floor
# (`x`, curvature 1) that learning rate crawls, shrinking `x` by only 2% per step. Steps bounce
# from wall to wall across the ravine while barely moving along it. Real losses are full of
# such directions: their curvatures differ by factors of thousands.
#
# **Momentum** treats the parameters as a heavy ball. It keeps a velocity, a running sum of
# past gradients, and steps along it:
#
# $$b \leftarrow \mu\, b + (1 - \text{dampening})\, g, \qquad p \leftarrow p - \text{lr}\, b$$
#
# Across the ravine the gradient flips sign every step, so those contributions cancel in `b`;
# along the ravine it points the same way every step, so they add up, and with $\mu = 0.9$ the
# ball moves up to $1/(1-\mu) = 10$ times faster there. The example below counts the steps.
#
# PyTorch's details, which we match exactly:
#
# - **The first step** sets the buffer to the gradient itself, `b = g` (a copy), with no
#   dampening: there is no past to average with yet.
# - **Weight decay** (L2 regularisation) adds `weight_decay * p` to the gradient first:
#   the gradient of $\tfrac{\text{wd}}{2}\lVert p\rVert^2$, a pull towards zero.
# - **Nesterov** momentum steps along `g + mu * b` instead of `b`: it looks ahead to where
#   the velocity is taking it. It needs `momentum > 0` and `dampening == 0`, else ValueError.
# - Never change `p.grad`'s own array (`g = g + wd * p`, not `g += ...`): the gradient
#   belongs to the caller, who may still read it, e.g. to log its norm.

# %% nbgrader={"grade": false, "grade_id": "sgd", "locked": false, "schema_version": 3, "solution": true, "task": false}
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, weight decay and Nesterov."""

    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        """Check the hyper-parameters (ValueError naming a bad one) and keep them as attributes."""
        ### BEGIN SOLUTION
        super().__init__(params, lr)
        if not momentum >= 0.0:
            raise ValueError(f"Invalid momentum value: {momentum} (it must be >= 0)")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} (it must be >= 0)")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"Nesterov momentum requires a momentum > 0 and zero dampening, "
                             f"got momentum={momentum}, dampening={dampening}")
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        ### END SOLUTION

    def step(self) -> None:
        """One SGD step for every parameter with a gradient; momentum in state[i]["momentum_buffer"]."""
        ### BEGIN SOLUTION
        for index, param, grad in self._gradients():
            if self.weight_decay != 0:
                grad = grad + self.weight_decay * param.data
            if self.momentum != 0:
                state = self.state.setdefault(index, {})
                buffer = state.get("momentum_buffer")
                if buffer is None:
                    buffer = np.array(grad, dtype=param.data.dtype)  # a copy: the first velocity is g
                    state["momentum_buffer"] = buffer
                else:
                    buffer *= self.momentum
                    buffer += (1 - self.dampening) * grad
                grad = grad + self.momentum * buffer if self.nesterov else buffer
            param.data -= self.lr * grad
        ### END SOLUTION


# %% [markdown]
# **Try it: the ravine.** We minimise $f(x, y) = \tfrac12(x^2 + 100 y^2)$ from $(1, 1)$, setting
# the gradient $(x, 100 y)$ by hand, and count the steps until $f < 10^{-6}$. Same learning
# rate for all three; only momentum differs. (Try lr = 0.019: plain SGD and momentum still
# converge, Nesterov's look-ahead overshoots the steep walls and diverges. Momentum changes
# which learning rates are stable.)

# %%
def ravine_steps(make_optimizer, curvature=(1.0, 100.0), start=(1.0, 1.0), tol=1e-6, limit=10_000):
    """Steps an optimizer needs to bring f(p) = 0.5 * sum(curvature * p**2) below `tol`."""
    point = Tensor(np.array(start, dtype=np.float64))
    scale = np.array(curvature)
    optimizer = make_optimizer([point])
    for step in range(1, limit + 1):
        point.grad = Tensor(scale * point.data)  # the gradient of f, by hand
        optimizer.step()
        if 0.5 * np.sum(scale * point.data ** 2) < tol:
            return step
    return limit


if __name__ == "__main__":
    print("steps to the bottom of the ravine, lr = 0.012:")
    print("  plain SGD         ", ravine_steps(lambda ps: SGD(ps, lr=0.012)))
    print("  momentum 0.9      ", ravine_steps(lambda ps: SGD(ps, lr=0.012, momentum=0.9)))
    print("  Nesterov 0.9      ", ravine_steps(lambda ps: SGD(ps, lr=0.012, momentum=0.9, nesterov=True)))

# %% [markdown]
# ## 3. RMSprop: a step size per parameter
#
# Momentum still uses one learning rate for every parameter. But gradients of different
# parameters can differ in scale by orders of magnitude (the weights of a rarely active
# input, an embedding of a rare word, the first layer versus the last). One `lr` is then too
# big for some and too small for others.
#
# **RMSprop** (Hinton, 2012) keeps, per parameter element, a running mean of the *squared*
# gradient and divides each step by its square root, the gradient's typical size (root mean
# square):
#
# $$v \leftarrow \alpha\, v + (1-\alpha)\, g^2, \qquad p \leftarrow p - \text{lr}\,\frac{g}{\sqrt{v} + \epsilon}$$
#
# The ratio $g/\sqrt v$ has no units: a parameter whose gradients are around 1000 and one
# whose gradients are around 0.001 both move by about `lr` per step. `eps` only guards the
# division when `v` is (nearly) zero. PyTorch's options, which we match:
#
# - `weight_decay` adds `weight_decay * p` to the gradient first, as in SGD.
# - `centered=True` also averages the gradient itself, $\bar g \leftarrow \alpha\bar g +
#   (1-\alpha) g$, and divides by $\sqrt{v - \bar g^2} + \epsilon$, an estimate of the
#   gradient's *standard deviation* rather than its root mean square.
# - `momentum > 0` keeps a velocity of the scaled steps, $b \leftarrow \mu b + g/(\sqrt v +
#   \epsilon)$, and steps $p \leftarrow p - \text{lr}\, b$. Here the buffer starts at zero.
#
# The state of parameter `i`: `"step"` (how many updates it has had), `"square_avg"`, and
# `"momentum_buffer"` / `"grad_avg"` when momentum / centered are on; all arrays start at
# zeros of the parameter's shape when the parameter first has a gradient.

# %% nbgrader={"grade": false, "grade_id": "rmsprop", "locked": false, "schema_version": 3, "solution": true, "task": false}
class RMSprop(Optimizer):
    """Divide each gradient by the root of a running mean of its squares (optionally centered)."""

    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        """Check the hyper-parameters (ValueError naming a bad one) and keep them as attributes."""
        ### BEGIN SOLUTION
        super().__init__(params, lr)
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"Invalid alpha value: {alpha} (it must be in [0, 1))")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps} (it must be >= 0)")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} (it must be >= 0)")
        if not momentum >= 0.0:
            raise ValueError(f"Invalid momentum value: {momentum} (it must be >= 0)")
        self.alpha = alpha
        self.eps = eps
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.centered = centered
        ### END SOLUTION

    def step(self) -> None:
        """One RMSprop step for every parameter with a gradient."""
        ### BEGIN SOLUTION
        for index, param, grad in self._gradients():
            state = self.state.get(index)
            if state is None:
                state = {"step": 0, "square_avg": np.zeros_like(param.data)}
                if self.momentum > 0:
                    state["momentum_buffer"] = np.zeros_like(param.data)
                if self.centered:
                    state["grad_avg"] = np.zeros_like(param.data)
                self.state[index] = state
            state["step"] += 1
            if self.weight_decay != 0:
                grad = grad + self.weight_decay * param.data
            square_avg = state["square_avg"]
            square_avg *= self.alpha
            square_avg += (1 - self.alpha) * grad * grad
            if self.centered:
                grad_avg = state["grad_avg"]
                grad_avg *= self.alpha
                grad_avg += (1 - self.alpha) * grad
                scale = np.sqrt(square_avg - grad_avg * grad_avg) + self.eps
            else:
                scale = np.sqrt(square_avg) + self.eps
            if self.momentum > 0:
                buffer = state["momentum_buffer"]
                buffer *= self.momentum
                buffer += grad / scale
                param.data -= self.lr * buffer
            else:
                param.data -= self.lr * (grad / scale)
        ### END SOLUTION


# %% [markdown]
# **Try it: gradients a million times apart.** Two parameters, one with gradient 1000 and one
# with gradient 0.001, constant. SGD moves them a million times apart; RMSprop moves both by
# about the same amount (at first by more than `lr`: the running mean `v` starts at zero, a
# bias that section 4 corrects).

# %%
if __name__ == "__main__":
    for name, make in [("SGD    ", lambda ps: SGD(ps, lr=0.01)), ("RMSprop", lambda ps: RMSprop(ps, lr=0.01))]:
        weights = Tensor(np.zeros(2))
        optimizer = make([weights])
        for _ in range(10):
            weights.grad = Tensor(np.array([1000.0, 0.001]))
            optimizer.step()
        print(f"{name} after 10 steps with gradients (1000, 0.001): weights = {weights.data}")

# %% [markdown]
# ## 4. Adam: momentum and RMSprop, with bias correction
#
# **Adam** (Kingma and Ba, 2014) keeps both averages: a momentum-like mean of the gradient
# $m$ (the "first moment") and an RMSprop-like mean of its square $v$ (the "second
# moment"), and steps along their ratio:
#
# $$m \leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad v \leftarrow \beta_2 v + (1-\beta_2)\, g^2$$
# $$\hat m = \frac{m}{1-\beta_1^t}, \qquad \hat v = \frac{v}{1-\beta_2^t}, \qquad
#   p \leftarrow p - \text{lr}\,\frac{\hat m}{\sqrt{\hat v} + \epsilon}$$
#
# where $t$ counts this parameter's steps (1 on its first step).
#
# **Why the bias correction.** Both averages start at zero, so early on they are dragged
# towards zero. After the first step $m = 0.1\,g$ and $v = 0.001\,g^2$ (defaults $\beta_1 =
# 0.9$, $\beta_2 = 0.999$): momentum alone would make the first steps ten times too small,
# and $v$ alone is a thousand times too small. The two biases do not cancel (one fades over
# ~10 steps, the other over ~1000), so without correction the step size would depend on the
# step *number* rather than on the gradient. After $t$ steps of a constant gradient,
# $m = (1-\beta_1^t)\, g$ and $v = (1-\beta_2^t)\, g^2$ exactly; dividing by those factors
# gives $\hat m = g$ and $\hat v = g^2$ from the very first step. So Adam's first step moves
# every element by almost exactly `lr`, whatever the size of its gradient. The example
# below prints the size of the update for a constant gradient, with and without correction.
#
# PyTorch's arrangement of the arithmetic, which we follow:
# `step_size = lr / (1 - beta1**t)`, `denom = sqrt(v) / sqrt(1 - beta2**t) + eps`,
# `p -= step_size * m / denom`. Note where `eps` goes: added *after* the correction of `v`.
# `weight_decay` (L2) adds `weight_decay * p` to the gradient before anything else, as in
# SGD; section 5 says why that is a poor idea for Adam and what AdamW does instead. Adam
# follows the class attribute `decoupled_weight_decay` (False here, True in AdamW) to choose.
#
# The state of parameter `i`: `"step"`, `"exp_avg"` ($m$) and `"exp_avg_sq"` ($v$), the
# arrays starting at zeros of the parameter's shape.

# %% nbgrader={"grade": false, "grade_id": "adam", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Adam(Optimizer):
    """Adaptive moment estimation: bias-corrected running means of g and g**2."""

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    decoupled_weight_decay = False  # AdamW sets this to True

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        """Check the hyper-parameters (ValueError naming a bad one) and keep them as attributes."""
        ### BEGIN SOLUTION
        super().__init__(params, lr)
        beta1, beta2 = betas
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {beta1} (it must be in [0, 1))")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {beta2} (it must be in [0, 1))")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps} (it must be >= 0)")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} (it must be >= 0)")
        self.betas = (beta1, beta2)
        self.eps = eps
        self.weight_decay = weight_decay
        ### END SOLUTION

    def step(self) -> None:
        """One Adam step for every parameter with a gradient (decoupled decay if the class says so)."""
        ### BEGIN SOLUTION
        beta1, beta2 = self.betas
        for index, param, grad in self._gradients():
            state = self.state.get(index)
            if state is None:
                state = {"step": 0, "exp_avg": np.zeros_like(param.data), "exp_avg_sq": np.zeros_like(param.data)}
                self.state[index] = state
            state["step"] += 1
            if self.weight_decay != 0:
                if self.decoupled_weight_decay:
                    param.data *= 1 - self.lr * self.weight_decay
                else:
                    grad = grad + self.weight_decay * param.data
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg *= beta1
            exp_avg += (1 - beta1) * grad
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            step = state["step"]
            step_size = self.lr / (1 - beta1 ** step)
            denom = np.sqrt(exp_avg_sq) / (1 - beta2 ** step) ** 0.5 + self.eps
            param.data -= step_size * (exp_avg / denom)
        ### END SOLUTION


# %% [markdown]
# **Try it: the first steps, with and without the correction.** A constant gradient of 1;
# the size of the update divided by `lr`. With the correction it is 1 from the first step;
# without it, it wanders with the step number.

# %%
if __name__ == "__main__":
    beta1, beta2 = 0.9, 0.999
    print(" step   corrected   uncorrected m/sqrt(v)")
    for t in (1, 2, 5, 10, 100, 1000, 10000):
        m, v = 1 - beta1 ** t, 1 - beta2 ** t   # the running means after t steps of g = 1
        print(f"{t:5d}   {(m / (1 - beta1 ** t)) / np.sqrt(v / (1 - beta2 ** t)):9.3f}   {m / np.sqrt(v):9.3f}")
    weights = Tensor(np.array([0.0, 0.0]))
    adam = Adam([weights], lr=0.01)
    weights.grad = Tensor(np.array([1000.0, 0.001]))
    adam.step()
    print("Adam's first step with gradients (1000, 0.001):", weights.data, "(about -lr each)")
    print("steps to the bottom of the ravine, Adam lr = 0.1:", ravine_steps(lambda ps: Adam(ps, lr=0.1)))

# %% [markdown]
# ## 5. Weight decay: L2 or decoupled? (why AdamW exists)
#
# *Weight decay* shrinks every weight a little each step, $p \leftarrow (1 - \text{lr}\cdot
# \text{wd})\, p$, so that weights the loss does not need fade away; it is one of the most
# reliable regularisers. For plain SGD, adding $\text{wd}\cdot p$ to the gradient (the
# gradient of the L2 penalty $\tfrac{\text{wd}}2\lVert p\rVert^2$) gives exactly that shrink:
# the two are the same thing.
#
# For Adam they are not. The L2 term added to the gradient goes through Adam's division by
# $\sqrt{\hat v}$ like everything else. A weight whose gradients are large has a large
# $\sqrt{\hat v}$, so its decay is divided away and it is barely regularised; a weight with
# tiny gradients is decayed hard. The strength of the regulariser ends up depending on
# gradient scale, which is nobody's intention (Loshchilov and Hutter, "Decoupled Weight Decay
# Regularization", 2017).
#
# **AdamW** *decouples* the decay from the gradient: before the Adam update, shrink the
# parameter directly, `p *= 1 - lr * weight_decay`, and run Adam on the loss gradient alone.
# Every weight then decays at the same rate. AdamW is the default for training transformers,
# with `weight_decay` around 0.01 to 0.1 (PyTorch's default is 0.01). In code, AdamW is Adam
# with the class attribute `decoupled_weight_decay = True` and a different default for
# `weight_decay`: your `Adam.step` already does the work.

# %% nbgrader={"grade": false, "grade_id": "adamw", "locked": false, "schema_version": 3, "solution": true, "task": false}
class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay, then the Adam update."""

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        """Adam's checks and attributes, with weight_decay 0.01 by default."""
        ### BEGIN SOLUTION
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        ### END SOLUTION


# %% [markdown]
# **Try it: how much does the decay actually shrink each weight?** Two weights start at 1; the
# loss gradient is pure noise (it flips sign every step, so it has no trend), of size 100 for
# the first weight and 0.01 for the second. We run each optimizer
# twice, with and without `weight_decay=0.1`, and print how much further the decay moved each
# weight towards zero. With AdamW both shrink by the same amount, `lr * wd * p` per step; with
# Adam's L2 the weight with large gradients is hardly decayed at all, and the one with small
# gradients ten times more than AdamW decays it.

# %%
if __name__ == "__main__":
    def decay_effect(optimizer_class, weight_decay, steps=100):
        final = []
        for wd in (0.0, weight_decay):
            weights = Tensor(np.array([1.0, 1.0]))
            optimizer = optimizer_class([weights], lr=0.001, weight_decay=wd)
            for step in range(steps):
                weights.grad = Tensor(np.array([100.0, 0.01]) * (-1) ** step)
                optimizer.step()
            final.append(weights.data.copy())
        return final[0] - final[1]   # how much further towards zero the decay took each weight

    print("extra shrink from weight_decay=0.1 after 100 steps (gradients +-100 and +-0.01):")
    print("  Adam  (L2 in the gradient)", decay_effect(Adam, 0.1))
    print("  AdamW (decoupled)         ", decay_effect(AdamW, 0.1))

# %% [markdown]
# ## Systems insight: the optimizer's memory
#
# The optimizer's state is as big as the model, per buffer: SGD keeps nothing (0x the
# parameters), momentum one velocity (1x), RMSprop one mean square (1x, 2x with
# centered or momentum), Adam and AdamW two averages (2x). Add the gradients (1x) and the
# weights themselves (1x): training with Adam needs about **4x the memory of the weights**,
# before counting a single activation.
#
# A GPT-2 small has 124 million parameters. In float32 that is $124\text{M} \times 4 =$
# 0.5 GB of weights, 0.5 GB of gradients, and **1 GB of Adam state**. At 7 billion parameters
# Adam's state alone is 56 GB, more than most GPUs hold, which is why large models are
# trained with the optimizer state split across many GPUs (ZeRO), kept in lower precision
# (8-bit Adam), or replaced by lighter optimizers (Adafactor keeps only row and column
# averages of `v`). Measure it on a model of module 03:

# %%
if __name__ == "__main__":
    from tinytorch.layers import Linear, Sequential

    def state_bytes(optimizer):
        return sum(value.nbytes for entry in optimizer.state.values()
                   for value in entry.values() if isinstance(value, np.ndarray))

    model = Sequential(Linear(784, 256), Linear(256, 10))
    weight_bytes = sum(p.data.nbytes for p in model.parameters())
    for name, make in [("SGD          ", lambda ps: SGD(ps, lr=0.1)),
                       ("SGD momentum ", lambda ps: SGD(ps, lr=0.1, momentum=0.9)),
                       ("RMSprop      ", lambda ps: RMSprop(ps)),
                       ("Adam         ", lambda ps: Adam(ps))]:
        optimizer = make(model.parameters())
        for p in model.parameters():
            p.grad = Tensor(np.zeros_like(p.data))
        optimizer.step()  # state is created on the first step
        print(f"{name} state: {state_bytes(optimizer):>9,d} bytes = {state_bytes(optimizer) / weight_bytes:.0f}x "
              f"the {weight_bytes:,d} bytes of weights")
    gpt2 = 124e6
    print(f"GPT-2 small, float32: weights {gpt2 * 4 / 1e9:.2f} GB, Adam state {2 * gpt2 * 4 / 1e9:.2f} GB")

# %% [markdown]
# ## Checkpoint
#
# `tito check 06` runs `tests/checkpoints/test_06_optimizers.py`. It sets gradients by hand
# (from a fixed function computed with numpy, so no autograd is needed) and compares the
# trajectory of several parameters of different shapes over 20 steps with `torch.optim`, in
# float64, for every optimizer and option: SGD plain, with momentum, dampening, Nesterov and
# weight decay (with and without momentum); RMSprop plain, with momentum, centered and weight
# decay; Adam with and without weight decay; AdamW. "The same trajectory" means every
# parameter after every step within a relative 1e-10 of torch's: any correct float64 formula
# stays far closer than that (the textbook `lr * m_hat / (sqrt(v_hat) + eps)` included), while
# a misplaced `eps` or a missing correction does not. It also checks that `zero_grad()` clears
# gradients, that a parameter without a gradient is left alone until its first one, that
# updates happen in place (the same Tensor and array, float32 kept), that `step()` never
# changes the `p.grad` arrays it is given, that the first momentum step and the first Adam step
# have their known sizes, that the state takes 0x, 1x or 2x the parameters' memory, that
# changing `optimizer.lr` between steps takes effect as it does in PyTorch, that `state_dict()`
# holds torch's state values as plain copies, that loading it into a fresh optimizer continues
# training bit for bit and that a dict that does not fit is refused without changing anything,
# and that bad hyper-parameters raise a `ValueError` naming the value (while the edges of the
# valid ranges, such as `betas=(0.0, 0.0)`, are accepted).
