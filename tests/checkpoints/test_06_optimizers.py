"""Checkpoint 06: SGD (momentum, dampening, Nesterov, weight decay), RMSprop, Adam, AdamW.

Oracle: torch.optim in float64. Gradients come from a fixed differentiable function computed
here with numpy, f(p) = 0.5 * ||A p - b||^2 + sum(p**4) / 4 over all parameters flattened into
one vector p, whose gradient is A.T (A p - b) + p**3. Each side (tinytorch and torch) computes
its gradient from its *own* current parameters, so a trajectory that drifts apart is caught at
the step where it starts. No autograd is needed: the optimizer only reads `p.grad`.

How much "the same trajectory" means: every parameter after every step within rtol 1e-10 (atol
1e-12) of torch's. Correct float64 formulas that differ only in the order of operations (the
textbook lr * m_hat / (sqrt(v_hat) + eps) against torch's arrangement, say) stay within about
1e-14 of each other over 20 steps; a misplaced eps, a missing correction or a wrong order of
weight decay and momentum moves a parameter by 1e-8 or (much) more.

The torch runs happen only inside the expected side of expect_* calls (torch_run is called
from nowhere else), so that in `tito grade` the oracle never runs next to the student's code;
facts that relate two of the student's own values (a resumed run against the uninterrupted
one, a saved dict before and after more training) are judged by the predicates below.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import identical, same_pair
from tinytorch.layers import Linear, Sequential
from tinytorch.optimizers import SGD, Adam, AdamW, RMSprop
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12
STEPS = 20
SHAPES = ((3, 4), (4,), (2, 3, 2))  # a weight, a bias and a 3-D parameter: 28 numbers
CLASSES = {"SGD": SGD, "RMSprop": RMSprop, "Adam": Adam, "AdamW": AdamW}
# the state entries of each optimizer, with torch's names (and ours)
STATE_KEYS = {"SGD": ("momentum_buffer",), "RMSprop": ("step", "square_avg", "momentum_buffer", "grad_avg"),
              "Adam": ("step", "exp_avg", "exp_avg_sq"), "AdamW": ("step", "exp_avg", "exp_avg_sq")}


# -- the problem: a fixed function and its gradient, in numpy ---------------------------------


def problem(seed: int = 0, shapes=SHAPES):
    """(A, b, starting arrays) of the test function, from a fixed seed."""
    rng = np.random.default_rng(seed)
    n = sum(int(np.prod(shape)) for shape in shapes)
    a = rng.standard_normal((n + 3, n)) / np.sqrt(n + 3)
    b = rng.standard_normal(n + 3)
    starts = [0.7 * rng.standard_normal(shape) for shape in shapes]
    return a, b, starts


def gradients(arrays, a, b):
    """The gradient of 0.5 * ||A p - b||^2 + sum(p**4) / 4 (in float64), split into the parameters' shapes."""
    theta = np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in arrays])
    g = a.T @ (a @ theta - b) + theta ** 3
    pieces = np.split(g, np.cumsum([np.size(x) for x in arrays])[:-1])
    return [np.ascontiguousarray(piece.reshape(np.shape(x))) for piece, x in zip(pieces, arrays)]


def has_grad(step: int, index: int, late) -> bool:
    """Whether parameter `index` gets a gradient at `step` (0-based); late = (index, first step) or None."""
    return late is None or index != late[0] or step >= late[1]


def describe(name: str, kwargs: dict) -> str:
    return f"{name}(params, {', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def tinytorch_run(name, kwargs, steps=STEPS, lrs=None, seed=0, shapes=SHAPES, late=None):
    """The parameters (numpy copies) after each of `steps` steps of tinytorch's optimizer."""
    a, b, starts = problem(seed, shapes)
    params = [Tensor(x.copy()) for x in starts]
    optimizer = CLASSES[name](params, **kwargs)
    trajectory = []
    for step in range(steps):
        if lrs is not None:
            optimizer.lr = lrs[step]
        for index, (p, g) in enumerate(zip(params, gradients([p.data for p in params], a, b))):
            p.grad = Tensor(g) if has_grad(step, index, late) else None
        optimizer.step()
        trajectory.append([p.data.copy() for p in params])
    return trajectory


@functools.lru_cache(maxsize=None)
def _torch_run(name, items, steps, lrs, seed, shapes, late, dtype):
    torch_class = {"SGD": torch.optim.SGD, "RMSprop": torch.optim.RMSprop, "Adam": torch.optim.Adam,
                   "AdamW": torch.optim.AdamW}[name]
    a, b, starts = problem(seed, shapes)
    params = [torch.tensor(x.astype(dtype), requires_grad=True) for x in starts]
    optimizer = torch_class(params, foreach=False, **dict(items))
    trajectory = []
    for step in range(steps):
        if lrs is not None:
            optimizer.param_groups[0]["lr"] = lrs[step]
        for index, (p, g) in enumerate(zip(params, gradients([p.detach().numpy() for p in params], a, b))):
            p.grad = torch.from_numpy(g.astype(dtype)) if has_grad(step, index, late) else None
        optimizer.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    states = {index: {key: value.numpy().copy() if key != "step" else int(value)
                      for key, value in optimizer.state[p].items()}
              for index, p in enumerate(params) if p in optimizer.state}
    return trajectory, states


def torch_run(name, kwargs, steps=STEPS, lrs=None, seed=0, shapes=SHAPES, late=None, dtype=np.float64):
    """(trajectory, {index: state}) of the same run with torch.optim (single-tensor implementation).

    Call it only inside the expected argument of an expect_* call: it is the oracle."""
    return _torch_run(name, tuple(sorted(kwargs.items())), steps, None if lrs is None else tuple(lrs), seed,
                      tuple(shapes), late, dtype)


def expect_near_torch(got, name, kwargs, call, hint, **run):
    """Compare step by step, so that a failure names the first step where the runs part."""
    shapes = run.get("shapes", SHAPES)
    for step, got_params in enumerate(got, start=1):
        for index, g in enumerate(got_params):
            expect_close(g, torch_run(name, kwargs, **run)[0][step - 1][index], rtol=RTOL, atol=ATOL, hint=hint,
                         call=f"{call}: parameter {index} (shape {shapes[index]}) after step {step}")


# -- predicates, judged on the trusted side over the student's recorded values ------------------


# -- trajectories stay within 1e-10 of torch.optim ---------------------------------------------

CASES = {
    "SGD-plain": ("SGD", dict(lr=0.1),
                  "p -= lr * g"),
    "SGD-momentum": ("SGD", dict(lr=0.05, momentum=0.9),
                     "first step b = g (a copy); then b = momentum * b + g; p -= lr * b"),
    "SGD-dampening": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3),
                      "b = momentum * b + (1 - dampening) * g, but the first step is b = g with no dampening"),
    "SGD-nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True),
                     "Nesterov steps along g + momentum * b, after updating b"),
    "SGD-weight_decay": ("SGD", dict(lr=0.1, weight_decay=0.1),
                         "weight decay adds weight_decay * p to the gradient before anything else"),
    "SGD-momentum_weight_decay": ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1),
                                  "weight decay goes into the gradient that enters the momentum buffer: "
                                  "g = g + weight_decay * p first, then b = momentum * b + g"),
    "RMSprop-plain": ("RMSprop", dict(lr=0.01),
                      "v = alpha * v + (1 - alpha) * g**2 (v starts at 0); p -= lr * g / (sqrt(v) + eps)"),
    "RMSprop-momentum": ("RMSprop", dict(lr=0.01, momentum=0.9),
                         "b = momentum * b + g / (sqrt(v) + eps), b starting at zeros; p -= lr * b"),
    "RMSprop-centered": ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True),
                         "centered: also average g itself (gbar) and divide by sqrt(v - gbar**2) + eps"),
    "RMSprop-weight_decay": ("RMSprop", dict(lr=0.01, weight_decay=0.1, eps=1e-3),
                             "weight decay adds weight_decay * p to the gradient before the averages; eps is "
                             "added after the square root"),
    "Adam-plain": ("Adam", dict(lr=0.05),
                   "m and v are running means of g and g**2; divide m by 1 - beta1**t and sqrt(v) by "
                   "sqrt(1 - beta2**t), add eps after that; t counts from 1"),
    "Adam-weight_decay": ("Adam", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1, eps=1e-4),
                          "Adam's weight_decay is L2: add weight_decay * p to the gradient before the averages; "
                          "eps is added after the bias correction of sqrt(v)"),
    "AdamW-default_decay": ("AdamW", dict(lr=0.05),
                            "AdamW's default weight_decay is 0.01, applied as p *= 1 - lr * weight_decay"),
    "AdamW-weight_decay": ("AdamW", dict(lr=0.05, betas=(0.85, 0.995), weight_decay=0.1),
                           "decoupled decay: p *= 1 - lr * weight_decay first, then Adam on the plain gradient"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_within_1e10_of_torch(case):
    """Twenty steps on three parameters stay within 1e-10 (relative) of torch.optim's float64 trajectory"""
    name, kwargs, hint = CASES[case]
    expect_near_torch(tinytorch_run(name, kwargs), name, kwargs, call=describe(name, kwargs), hint=hint)


# -- known values ---------------------------------------------------------------------------


def test_first_momentum_step_is_the_gradient():
    """With momentum, the first step sets the velocity to the gradient itself, without dampening"""
    p = Tensor(np.array([1.0, -2.0, 3.0]))
    g1, g2 = np.array([0.5, 1.0, -4.0]), np.array([1.0, 1.0, 1.0])
    optimizer = SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    p.grad = Tensor(g1)
    optimizer.step()
    expect_close(p, np.array([1.0, -2.0, 3.0]) - 0.1 * g1, rtol=1e-12, atol=1e-15,
                 call="SGD([p], lr=0.1, momentum=0.9, dampening=0.5), first step: p",
                 hint="on the first step the buffer is the gradient (b = g), not (1 - dampening) * g")
    expect_close(optimizer.state[0]["momentum_buffer"], g1, rtol=1e-12, atol=1e-15,
                 call="optimizer.state[0]['momentum_buffer'] after the first step",
                 hint="store the velocity of parameter 0 in state[0]['momentum_buffer']")
    p.grad = Tensor(g2)
    optimizer.step()
    expect_close(optimizer.state[0]["momentum_buffer"], 0.9 * g1 + 0.5 * g2, rtol=1e-12, atol=1e-15,
                 call="optimizer.state[0]['momentum_buffer'] after the second step",
                 hint="from the second step on: b = momentum * b + (1 - dampening) * g")


def test_first_adam_step_has_size_lr():
    """Thanks to bias correction, Adam's first step moves every element by about lr, whatever its gradient"""
    start = np.array([0.5, 0.5, 0.5, 0.5, 0.5])
    g = np.array([1000.0, -1.0, 1e-3, -1e-5, 0.0])
    p = Tensor(start.copy())
    optimizer = Adam([p], lr=0.01)
    p.grad = Tensor(g)
    optimizer.step()
    expect_close(p, start - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12, atol=1e-15,
                 call=f"Adam([p], lr=0.01), one step with grad {g.tolist()}",
                 hint="after one step m = (1 - beta1) g and v = (1 - beta2) g**2; the corrections "
                      "1 - beta1**1 and 1 - beta2**1 undo exactly that, so the step is lr * g / (|g| + eps)")
    expect_equal(optimizer.state[0]["step"], 1, call="optimizer.state[0]['step'] after one step",
                 hint="count each parameter's steps in state[i]['step'], starting from 1 on its first step")


# -- the contract: zero_grad, skipping, in place, gradients left alone ---------------------------


def test_zero_grad_clears_every_gradient():
    """zero_grad() sets every grad to None, so the next step skips the parameters that get no new gradient"""
    starts = problem()[2]
    params = [Tensor(x.copy()) for x in starts]
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = Tensor(np.ones(p.shape))
    optimizer.step()
    optimizer.zero_grad()
    expect_equal([p.grad for p in params], [None, None, None], call="[p.grad for p in params] after zero_grad()",
                 hint="set p.grad = None for every parameter the optimizer was given")
    params[0].grad = Tensor(np.ones(params[0].shape))
    optimizer.step()
    for index, p in enumerate(params):
        expect_close(p, starts[index] - (0.1 + 0.1 * 1.9 if index == 0 else 0.1), rtol=1e-12, atol=1e-15,
                     call=f"SGD(params, lr=0.1, momentum=0.9): step, zero_grad(), grad for parameter 0 only, step: "
                          f"parameter {index}",
                     hint="after zero_grad a parameter without a new gradient has grad None and is skipped; "
                          "zeros instead of None would let its momentum carry it on")


def test_parameter_without_grad_is_untouched():
    """A parameter whose grad is None is neither moved nor decayed and gets no state until its first gradient"""
    a, b, starts = problem()
    params = [Tensor(x.copy()) for x in starts]
    optimizer = AdamW(params, lr=0.1, weight_decay=0.5)
    kwargs = dict(lr=0.1, weight_decay=0.5)
    for step in range(6):
        grads = gradients([p.data for p in params], a, b)
        for index, (p, g) in enumerate(zip(params, grads)):
            p.grad = Tensor(g) if has_grad(step, index, (1, 3)) else None
        optimizer.step()
        if step == 2:
            expect_equal(params[1].data, starts[1],
                         call="AdamW(params, lr=0.1, weight_decay=0.5): params[1] after 3 steps with grad None",
                         hint="skip parameters whose grad is None entirely, weight decay included")
            expect_equal(sorted(optimizer.state), [0, 2], call="sorted(optimizer.state) after 3 steps, params[1] "
                         "without a gradient", hint="a parameter's state is created the first time it has a gradient")
    for index, p in enumerate(params):
        expect_close(p, torch_run("AdamW", kwargs, steps=6, late=(1, 3))[0][-1][index], rtol=RTOL, atol=ATOL,
                     call=f"AdamW(params, lr=0.1, weight_decay=0.5), params[1] without a gradient for steps 1-3: "
                          f"parameter {index} after step 6",
                     hint="each parameter counts its own steps (state[i]['step']): params[1]'s bias correction "
                          "starts at t = 1 on its first gradient, at step 4")


def test_update_is_in_place():
    """step() changes the numbers inside the model's own float32 Tensors and arrays, for every optimizer"""
    rng = np.random.default_rng(6)
    cases = [(SGD, dict(lr=0.1)), (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
             (RMSprop, dict(lr=0.1, momentum=0.5)), (Adam, dict(lr=0.1)), (AdamW, dict(lr=0.1))]
    for cls, kwargs in cases:
        model = Sequential(Linear(3, 4), Linear(4, 2))
        params = model.parameters()
        starts = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
        for p, start in zip(params, starts):
            p.data[...] = start  # known values, not the random initialisation
        arrays = [p.data for p in params]
        optimizer = cls(model.parameters(), **kwargs)
        for p in params:
            p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
        optimizer.step()
        label = describe(cls.__name__, kwargs)
        for index, (p, array) in enumerate(zip(model.parameters(), arrays)):
            expect_equal((p is params[index], p.data is array, str(p.dtype)), (True, True, "float32"),
                         call=f"{label}: (same Tensor, same array, dtype) of model.parameters()[{index}] after step()",
                         hint="update with p.data -= ... (in place), never p.data = p.data - ...; "
                              "an in-place update keeps the parameter's dtype")
            expect_close(p.data, starts[index] - 0.1 * first_step_size(cls.__name__, kwargs, starts[index]),
                         rtol=1e-5, atol=1e-6, call=f"{label}: parameter {index} after one step with grad 1",
                         hint="the first step of each optimizer with a gradient of ones")


def first_step_size(name, kwargs, start):
    """The first update, divided by lr, of `name` with gradient 1 everywhere (the expected side only)."""
    if name == "SGD":
        return 1.0 + kwargs.get("weight_decay", 0.0) * start
    if name == "RMSprop":
        return 1.0 / (np.sqrt(1 - 0.99) + 1e-8)  # v = (1 - alpha) * 1
    return 1.0 / (1.0 + 1e-8) + (kwargs.get("weight_decay", 0.01) * start if name == "AdamW" else 0.0)


def test_step_leaves_every_gradient_as_it_was():
    """step() leaves every p.grad array as it was, with or without weight decay and momentum"""
    expect_steps_leave_gradients([("SGD", dict(lr=0.1, momentum=0.9)),
                                  ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
                                  ("RMSprop", dict(lr=0.01, weight_decay=0.1, momentum=0.5)),
                                  ("Adam", dict(lr=0.01, weight_decay=0.1))])


def expect_steps_leave_gradients(configs, seed: int = 0, shapes=SHAPES) -> None:
    """Three steps of each optimizer: the gradient arrays it was given are unchanged afterwards,
    and the parameters are torch's after the same three steps."""
    a, b, starts = problem(seed, shapes)
    for name, kwargs in configs:
        params = [Tensor(x.copy()) for x in starts]
        optimizer = CLASSES[name](params, **kwargs)
        given = []
        for _ in range(3):
            for p, g in zip(params, gradients([p.data for p in params], a, b)):
                p.grad = Tensor(g)
                given.append((g, g.copy()))
            optimizer.step()
        expect_that(given, all_pairs_identical, call=f"{describe(name, kwargs)}: the 9 gradient arrays given "
                    "to 3 steps, afterwards vs as given", expected="every gradient array unchanged",
                    hint="write g = g + weight_decay * p, not g += ...; and store a copy of g as the first "
                         "momentum buffer (np.array(g)), since the buffer is later updated in place")
        for index, p in enumerate(params):
            expect_close(p, torch_run(name, kwargs, steps=3, seed=seed, shapes=shapes)[0][-1][index],
                         rtol=RTOL, atol=ATOL, call=f"{describe(name, kwargs)}: parameter {index} after 3 steps",
                         hint="the same three steps as torch.optim")


def all_pairs_identical(pairs) -> bool:
    """Every (array after, copy taken before) pair is identical."""
    return all(identical(after, before) for after, before in pairs)


def test_parameters_from_a_generator_are_kept():
    """Parameters passed as a generator are kept as a list, so every step updates them all"""
    params = [Tensor(np.zeros(shape)) for shape in SHAPES]
    optimizer = SGD((p for p in params), lr=0.5)
    for _ in range(2):
        for p in params:
            p.grad = Tensor(np.ones(p.shape))
        optimizer.step()
    for index, p in enumerate(params):
        expect_close(p, np.full(p.shape, -1.0), rtol=1e-12, call=f"SGD(generator, lr=0.5): parameter {index} after 2 steps",
                     hint="a generator can be walked only once: keep list(params) in __init__")


def test_state_memory_is_0x_1x_2x_the_parameters():
    """After one step the state holds 0x (SGD), 1x (momentum, RMSprop) or 2x (Adam, AdamW) the parameters' bytes"""
    cases = [(SGD, dict(lr=0.1), 0), (SGD, dict(lr=0.1, momentum=0.9), 1), (RMSprop, dict(), 1),
             (RMSprop, dict(momentum=0.9, centered=True), 3), (Adam, dict(), 2), (AdamW, dict(), 2)]
    for cls, kwargs, factor in cases:
        params = [Tensor(np.ones(shape, dtype=np.float32)) for shape in SHAPES]
        optimizer = cls(params, **kwargs)
        for p in params:
            p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
        optimizer.step()
        numbers = sum(value.nbytes for entry in optimizer.state.values()
                      for value in entry.values() if isinstance(value, np.ndarray))
        expect_equal(numbers, factor * 28 * 4,
                     call=f"bytes of the arrays in {describe(cls.__name__, kwargs)}.state (28 float32 parameters, "
                          f"{28 * 4} bytes)",
                     hint="one array of the parameter's shape and dtype (np.zeros_like(p.data)) per buffer: "
                          "momentum_buffer, square_avg, grad_avg, exp_avg, exp_avg_sq; plain SGD keeps none")


# -- saving and resuming ----------------------------------------------------------------------

RESUME = {
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01),
    "Adam": dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1),
    "AdamW": dict(lr=0.05, weight_decay=0.1),
}


def non_plain(value, path="state_dict()") -> list[str]:
    """Where `value` holds something other than dicts, lists, tuples, plain numbers, strings and numpy arrays."""
    if isinstance(value, dict):
        return [found for key, item in value.items()
                for found in ([f"{path}: key {key!r}"] if not isinstance(key, (int, str)) else [])
                + non_plain(item, f"{path}[{key!r}]")]
    if isinstance(value, (tuple, list)):
        return [found for index, item in enumerate(value) for found in non_plain(item, f"{path}[{index}]")]
    if value is None or isinstance(value, (bool, int, float, str, np.ndarray, np.generic)):
        return []
    return [f"{path}: {type(value).__name__}"]


def test_state_dict_holds_hyperparameters_state_and_plain_values():
    """state_dict() holds every hyper-parameter under its name and torch's state values, as plain numbers and arrays"""
    for name, kwargs in RESUME.items():
        a, b, starts = problem()
        params = [Tensor(x.copy()) for x in starts]
        optimizer = CLASSES[name](params, **kwargs)
        for _ in range(3):
            for p, g in zip(params, gradients([p.data for p in params], a, b)):
                p.grad = Tensor(g)
            optimizer.step()
        saved = optimizer.state_dict()
        label = f"{describe(name, kwargs)}.state_dict() after 3 steps"
        for key, value in kwargs.items():
            expect_equal(saved.get(key), value, call=f"{label}[{key!r}]",
                         hint="save each hyper-parameter under its constructor name, lr included")
        expect_equal(non_plain(saved), [], call=f"{label}: values that are not plain data",
                     hint="only dicts, lists, tuples, numbers, strings and numpy arrays: no Tensors, no "
                          "references to the parameters")
        for index in range(len(SHAPES)):
            for key in STATE_KEYS[name]:
                if key == "momentum_buffer" and not kwargs.get("momentum"):
                    continue
                if key == "grad_avg" and not kwargs.get("centered"):
                    continue
                got = saved.get("state", {}).get(index, {}).get(key)
                hint = ("the state of parameter i under state[i], with torch's names: step, momentum_buffer, "
                        "square_avg, grad_avg, exp_avg, exp_avg_sq")
                if key == "step":
                    expect_equal(got, torch_run(name, kwargs, steps=3)[1][index][key],
                                 call=f"{label}['state'][{index}]['step']", hint=hint)
                else:
                    expect_close(got, torch_run(name, kwargs, steps=3)[1][index][key], rtol=RTOL, atol=ATOL,
                                 call=f"{label}['state'][{index}][{key!r}]", hint=hint)


def test_state_dict_is_a_copy():
    """state_dict() and load_state_dict() copy: a saved or loaded dict never changes as training goes on"""
    kwargs = RESUME["Adam"]
    a, b, starts = problem()
    params = [Tensor(x.copy()) for x in starts]
    optimizer = Adam(params, **kwargs)

    def steps(n):
        for _ in range(n):
            for p, g in zip(params, gradients([p.data for p in params], a, b)):
                p.grad = Tensor(g)
            optimizer.step()

    steps(3)
    saved = optimizer.state_dict()
    snapshot = copy.deepcopy(saved)
    expect_close(saved["state"][0]["exp_avg"], torch_run("Adam", kwargs, steps=3)[1][0]["exp_avg"],
                 rtol=RTOL, atol=ATOL, call=f"{describe('Adam', kwargs)}.state_dict()['state'][0]['exp_avg'] "
                 "after 3 steps", hint="m, the running mean of the gradient, after 3 steps")
    steps(3)
    expect_that((saved["state"], snapshot["state"]), same_pair,
                call="(saved['state'] 3 steps later, a deep copy of it taken when it was saved)",
                expected="the same: the saved dict did not change",
                hint="state_dict() must return copies of the arrays (array.copy()), not the live buffers")
    live = optimizer.state[0]["exp_avg"].copy()
    saved["state"][0]["exp_avg"][...] = 7.0
    expect_that((optimizer.state[0]["exp_avg"], live), same_pair,
                call="(optimizer.state[0]['exp_avg'] after writing 7.0 into a state_dict's copy of it, before)",
                expected="the same: the optimizer's state did not change",
                hint="the arrays in a state_dict are copies, owned by whoever saved them")
    # loading copies too: training after a load must not write into the loaded dict
    optimizer.load_state_dict(snapshot)
    kept = copy.deepcopy(snapshot)
    steps(2)
    expect_that((snapshot["state"], kept["state"]), same_pair,
                call="(loaded_dict['state'] after load_state_dict(loaded_dict) and 2 steps, a copy taken before)",
                expected="the same: the loaded dict did not change",
                hint="load_state_dict must copy the arrays (np.array(value)); otherwise the next steps "
                     "update the checkpoint itself and it cannot be loaded again")


@pytest.mark.parametrize("name", list(RESUME))
def test_resume_from_state_dict_continues_bit_for_bit(name):
    """10 steps, save, load into a fresh optimizer, 10 more steps: bit for bit the 20 uninterrupted steps"""
    kwargs = RESUME[name]
    uninterrupted = tinytorch_run(name, kwargs)
    a, b, starts = problem()
    params = [Tensor(x.copy()) for x in starts]
    optimizer = CLASSES[name](params, **kwargs)
    for _ in range(10):
        for p, g in zip(params, gradients([p.data for p in params], a, b)):
            p.grad = Tensor(g)
        optimizer.step()
    saved = optimizer.state_dict()
    # a fresh model and a fresh optimizer built with other settings: everything must come from the dict
    fresh = [Tensor(p.data.copy()) for p in params]
    resumed = CLASSES[name](fresh, lr=0.5)
    resumed.load_state_dict(saved)
    call = f"{name}(fresh, lr=0.5).load_state_dict(state after 10 steps of {describe(name, kwargs)})"
    for step in range(10, STEPS):
        for p, g in zip(fresh, gradients([p.data for p in fresh], a, b)):
            p.grad = Tensor(g)
        resumed.step()
        expect_that(([p.data for p in fresh], uninterrupted[step]), same_pair,
                    call=f"{call}: (parameters after step {step + 1}, those of the uninterrupted run)",
                    expected="identical, bit for bit",
                    hint="restore every hyper-parameter (lr too) and every state entry, step counts included")
    for index, p in enumerate(fresh):
        expect_close(p, torch_run(name, kwargs)[0][-1][index], rtol=RTOL, atol=ATOL,
                     call=f"{call}: parameter {index} after step 20", hint="the resumed run ends where torch.optim's does")


def test_load_state_dict_refuses_another_optimizers_dict():
    """load_state_dict refuses a dict saved by another kind of optimizer, and leaves the optimizer unchanged"""
    a, b, starts = problem()
    params = [Tensor(x.copy()) for x in starts]
    adam, sgd = Adam(params, lr=0.05), SGD(params, lr=0.1, momentum=0.9)
    for optimizer in (adam, sgd):
        for p, g in zip(params, gradients([p.data for p in params], a, b)):
            p.grad = Tensor(g)
        optimizer.step()
    expect_raises(KeyError, lambda: adam.load_state_dict(sgd.state_dict()), call="adam.load_state_dict(sgd.state_dict())",
                  message_contains="betas", hint="compare the saved names with the hyper-parameters; name what is missing")
    expect_equal(adam.lr, 0.05, call="adam.lr after the refused load_state_dict(sgd.state_dict())",
                 hint="check everything first, change the optimizer only when all of it fits")
    expect_close(adam.state[0]["exp_avg"], torch_run("Adam", dict(lr=0.05), steps=1)[1][0]["exp_avg"],
                 rtol=RTOL, atol=ATOL, call="adam.state[0]['exp_avg'] after the refused load_state_dict",
                 hint="a refused load leaves the state as it was: m after one step")


# -- the learning rate can change between steps -------------------------------------------------


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("RMSprop", dict(lr=0.1, momentum=0.5)),
                                          ("AdamW", dict(lr=0.1, weight_decay=0.1))])
def test_changing_lr_between_steps(name, kwargs):
    """Setting optimizer.lr between steps takes effect as param_groups[0]['lr'] does in torch (within 1e-10)"""
    lrs = [0.1 * 0.8 ** step for step in range(STEPS)]
    expect_near_torch(tinytorch_run(name, kwargs, lrs=lrs), name, kwargs, lrs=lrs,
                      call=f"{describe(name, kwargs)} with optimizer.lr = 0.1 * 0.8**t before step t",
                      hint="read self.lr inside step() every time, and multiply by it at the update "
                           "(p -= lr * b), not into the momentum buffer: a schedule (module 07) changes it")


# -- bad hyper-parameters -------------------------------------------------------------------


def test_sgd_rejects_bad_hyperparameters():
    """SGD refuses a negative lr, momentum or weight decay, Nesterov without momentum, and no parameters"""
    p = [Tensor(np.zeros(3))]
    for kwargs, shown in [(dict(lr=-0.1), "-0.1"), (dict(lr=0.1, momentum=-0.5), "-0.5"),
                          (dict(lr=0.1, weight_decay=-0.01), "-0.01")]:
        expect_raises(ValueError, lambda: SGD(p, **kwargs), call=describe("SGD", kwargs), message_contains=shown,
                      hint="check each hyper-parameter in __init__ and name the bad value in the message")
    for kwargs in [dict(lr=0.1, nesterov=True), dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)]:
        expect_raises(ValueError, lambda: SGD(p, **kwargs), call=describe("SGD", kwargs), message_contains="nesterov",
                      hint="Nesterov momentum needs momentum > 0 and dampening == 0")
    expect_raises(ValueError, lambda: SGD([], lr=0.1), call="SGD([], lr=0.1)",
                  hint="an empty parameter list is a bug in the caller (a generator used twice?)")
    q = Tensor(np.array([1.0, 2.0, 3.0]))
    g = np.array([1.0, -1.0, 0.5])
    optimizer = SGD([q], lr=0.1, momentum=0.9, nesterov=True)
    q.grad = Tensor(g)
    optimizer.step()
    expect_close(q, np.array([1.0, 2.0, 3.0]) - 0.1 * 1.9 * g, rtol=1e-12, atol=1e-15,
                 call=f"SGD([q], lr=0.1, momentum=0.9, nesterov=True), one step with grad {g.tolist()}",
                 hint="the valid settings still work: b = g on the first step, then Nesterov steps along "
                      "g + momentum * b = 1.9 g")


def test_adaptive_optimizers_reject_bad_hyperparameters():
    """Adam, AdamW and RMSprop refuse betas outside [0, 1) and negative lr, eps, alpha or weight decay"""
    p = [Tensor(np.zeros(3))]
    cases = [(Adam, dict(betas=(1.0, 0.999)), "1.0"), (Adam, dict(betas=(0.9, -0.1)), "-0.1"),
             (Adam, dict(lr=-0.001), "-0.001"), (AdamW, dict(betas=(0.9, 1.5)), "1.5"),
             (AdamW, dict(weight_decay=-0.1), "-0.1"), (Adam, dict(eps=-1e-08), "-1e-08"),
             (RMSprop, dict(alpha=-0.5), "-0.5"), (RMSprop, dict(lr=-0.01), "-0.01"),
             (RMSprop, dict(eps=-1e-08), "-1e-08")]
    for cls, kwargs, shown in cases:
        expect_raises(ValueError, lambda: cls(p, **kwargs), call=describe(cls.__name__, kwargs),
                      message_contains=shown,
                      hint="check each hyper-parameter in __init__ and name the bad value in the message")
    # the edges of the valid ranges are accepted: beta = 0 and alpha = 0 keep no memory of the past
    g = np.array([2.0, -0.5, 1e-3])
    for cls, kwargs in [(Adam, dict(lr=0.1, betas=(0.0, 0.0))), (RMSprop, dict(lr=0.1, alpha=0.0))]:
        q = Tensor(np.ones(3))
        optimizer = cls([q], **kwargs)
        for _ in range(2):
            q.grad = Tensor(g)
            optimizer.step()
        expect_close(q, 1.0 - 2 * 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12, atol=1e-15,
                     call=f"{describe(cls.__name__, kwargs)}, two steps with grad {g.tolist()}",
                     hint="0 is a valid beta and a valid alpha ([0, 1)): the averages are then just the current "
                          "g and g**2, and each step is lr * g / (|g| + eps)")
