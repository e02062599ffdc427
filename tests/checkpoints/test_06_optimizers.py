"""Checkpoint 06: SGD (momentum, dampening, Nesterov, weight decay), RMSprop, Adam, AdamW.

Oracle: torch.optim in float64. Gradients come from a fixed differentiable function computed
here with numpy, f(p) = 0.5 * ||A p - b||^2 + sum(p**4) / 4 over all parameters flattened into
one vector p, whose gradient is A.T (A p - b) + p**3. Each side (tinytorch and torch) computes
its gradient from its *own* current parameters, so a trajectory that drifts apart is caught at
the step where it starts. No autograd is needed: the optimizer only reads `p.grad`.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from grader.expect import expect_close, expect_equal, expect_raises, expect_true
from tinytorch.layers import Linear, Sequential
from tinytorch.optimizers import SGD, Adam, AdamW, RMSprop
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12
STEPS = 20
SHAPES = [(3, 4), (4,), (2, 3, 2)]  # a weight, a bias and a 3-D parameter: 28 numbers
CLASSES = {"SGD": (SGD, torch.optim.SGD), "RMSprop": (RMSprop, torch.optim.RMSprop),
           "Adam": (Adam, torch.optim.Adam), "AdamW": (AdamW, torch.optim.AdamW)}


# -- the problem: a fixed function and its gradient, in numpy ---------------------------------


def problem(seed: int = 0):
    """(A, b, starting arrays) of the test function, from a fixed seed."""
    rng = np.random.default_rng(seed)
    n = sum(int(np.prod(shape)) for shape in SHAPES)
    a = rng.standard_normal((n + 3, n)) / np.sqrt(n + 3)
    b = rng.standard_normal(n + 3)
    starts = [0.7 * rng.standard_normal(shape) for shape in SHAPES]
    return a, b, starts


def gradients(arrays, a, b):
    """The gradient of 0.5 * ||A p - b||^2 + sum(p**4) / 4, split back into the parameters' shapes."""
    theta = np.concatenate([x.ravel() for x in arrays])
    g = a.T @ (a @ theta - b) + theta ** 3
    pieces = np.split(g, np.cumsum([x.size for x in arrays])[:-1])
    return [np.ascontiguousarray(piece.reshape(x.shape)) for piece, x in zip(pieces, arrays)]


def describe(name: str, kwargs: dict) -> str:
    return f"{name}(params, {', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def tinytorch_run(name, kwargs, steps=STEPS, lrs=None, seed=0):
    """The parameters (numpy copies) after each of `steps` steps of tinytorch's optimizer."""
    a, b, starts = problem(seed)
    params = [Tensor(x.copy()) for x in starts]
    optimizer = CLASSES[name][0](params, **kwargs)
    trajectory = []
    for step in range(steps):
        if lrs is not None:
            optimizer.lr = lrs[step]
        for p, g in zip(params, gradients([p.data for p in params], a, b)):
            p.grad = Tensor(g)
        optimizer.step()
        trajectory.append([p.data.copy() for p in params])
    return trajectory


def torch_run(name, kwargs, steps=STEPS, lrs=None, seed=0):
    """The same run with torch.optim (single-tensor implementation), float64."""
    a, b, starts = problem(seed)
    params = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in starts]
    optimizer = CLASSES[name][1](params, foreach=False, **kwargs)
    trajectory = []
    for step in range(steps):
        if lrs is not None:
            optimizer.param_groups[0]["lr"] = lrs[step]
        for p, g in zip(params, gradients([p.detach().numpy() for p in params], a, b)):
            p.grad = torch.from_numpy(g)
        optimizer.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


def expect_same_trajectory(got, expected, call, hint, rtol=RTOL, atol=ATOL):
    """Compare step by step, so that a failure names the first step where the runs part."""
    for step, (got_params, expected_params) in enumerate(zip(got, expected), start=1):
        for index, (g, e) in enumerate(zip(got_params, expected_params)):
            expect_close(g, e, rtol=rtol, atol=atol, hint=hint,
                         call=f"{call}: parameter {index} (shape {e.shape}) after step {step}")


# -- trajectories equal torch.optim ------------------------------------------------------------

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
    "RMSprop-plain": ("RMSprop", dict(lr=0.01),
                      "v = alpha * v + (1 - alpha) * g**2 (v starts at 0); p -= lr * g / (sqrt(v) + eps)"),
    "RMSprop-momentum": ("RMSprop", dict(lr=0.01, momentum=0.9),
                         "b = momentum * b + g / (sqrt(v) + eps), b starting at zeros; p -= lr * b"),
    "RMSprop-centered": ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True),
                         "centered: also average g itself (gbar) and divide by sqrt(v - gbar**2) + eps"),
    "RMSprop-weight_decay": ("RMSprop", dict(lr=0.01, weight_decay=0.1),
                             "weight decay adds weight_decay * p to the gradient before the averages"),
    "Adam-plain": ("Adam", dict(lr=0.05),
                   "m and v are running means of g and g**2; divide m by 1 - beta1**t and sqrt(v) by "
                   "sqrt(1 - beta2**t), add eps after that; t counts from 1"),
    "Adam-weight_decay": ("Adam", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1),
                          "Adam's weight_decay is L2: add weight_decay * p to the gradient before the averages"),
    "AdamW-default_decay": ("AdamW", dict(lr=0.05),
                            "AdamW's default weight_decay is 0.01, applied as p *= 1 - lr * weight_decay"),
    "AdamW-weight_decay": ("AdamW", dict(lr=0.05, betas=(0.85, 0.995), weight_decay=0.1),
                           "decoupled decay: p *= 1 - lr * weight_decay first, then Adam on the plain gradient"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_matches_torch(case):
    """Twenty steps on three parameters follow torch.optim's trajectory exactly (float64)"""
    name, kwargs, hint = CASES[case]
    expect_same_trajectory(tinytorch_run(name, kwargs), torch_run(name, kwargs),
                           call=describe(name, kwargs), hint=hint)


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


# -- the contract: zero_grad, skipping, in place ----------------------------------------------


def test_zero_grad_clears_every_gradient():
    """zero_grad() sets the grad of every parameter to None"""
    params = [Tensor(np.ones(shape)) for shape in SHAPES]
    for p in params:
        p.grad = Tensor(np.ones(p.shape))
    optimizer = SGD(params, lr=0.1)
    optimizer.zero_grad()
    expect_equal([p.grad for p in params], [None, None, None], call="[p.grad for p in params] after zero_grad()",
                 hint="set p.grad = None for every parameter the optimizer was given")


def test_parameter_without_grad_is_untouched():
    """A parameter whose grad is None is neither moved nor decayed, and gets no state"""
    a, b, starts = problem()
    params = [Tensor(x.copy()) for x in starts]
    optimizer = AdamW(params, lr=0.1, weight_decay=0.5)
    for _ in range(3):
        grads = gradients([p.data for p in params], a, b)
        params[0].grad, params[1].grad, params[2].grad = Tensor(grads[0]), None, Tensor(grads[2])
        optimizer.step()
    expect_equal(params[1].data, starts[1], call="AdamW(params, lr=0.1, weight_decay=0.5): params[1] with grad None",
                 hint="skip parameters whose grad is None entirely, weight decay included")
    expect_true(1 not in optimizer.state, call="1 in optimizer.state", expected="False",
                got=f"True: {optimizer.state.get(1)!r}",
                hint="a parameter's state is created the first time it has a gradient")
    expect_true(not np.array_equal(params[0].data, starts[0]), call="params[0] with a gradient",
                expected="moved", got="unchanged", hint="the parameters that have a gradient must still be updated")


def test_update_is_in_place():
    """step() changes the numbers inside the model's own Tensors and arrays, keeping float32"""
    model = Sequential(Linear(3, 4), Linear(4, 2))
    params = model.parameters()
    arrays = [p.data for p in params]
    before = [x.copy() for x in arrays]
    optimizer = Adam(model.parameters(), lr=0.1)
    for p in params:
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    optimizer.step()
    for index, (p, array, old) in enumerate(zip(model.parameters(), arrays, before)):
        expect_true(p is params[index] and p.data is array, call=f"model.parameters()[{index}].data after step()",
                    expected="the same Tensor holding the same numpy array",
                    got="a different object" if p is not params[index] else "a new array in p.data",
                    hint="update with p.data -= ... (in place), never p.data = p.data - ...")
        expect_close(p.data, old - 0.1, rtol=1e-5, atol=1e-6, call=f"parameter {index} after one Adam step, lr=0.1",
                     hint="Adam's first step moves each element by about lr against the sign of its gradient")
        expect_equal(str(p.dtype), "float32", call=f"parameter {index}.dtype after step()",
                     hint="an in-place update keeps the parameter's dtype")


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
    """After one step the state holds 0x (SGD), 1x (momentum, RMSprop) or 2x (Adam, AdamW) the parameters"""
    cases = [(SGD, dict(lr=0.1), 0), (SGD, dict(lr=0.1, momentum=0.9), 1), (RMSprop, dict(), 1),
             (RMSprop, dict(momentum=0.9, centered=True), 3), (Adam, dict(), 2), (AdamW, dict(), 2)]
    for cls, kwargs, factor in cases:
        params = [Tensor(np.ones(shape)) for shape in SHAPES]
        optimizer = cls(params, **kwargs)
        for p in params:
            p.grad = Tensor(np.ones(p.shape))
        optimizer.step()
        numbers = sum(value.size for entry in optimizer.state.values()
                      for value in entry.values() if isinstance(value, np.ndarray))
        expect_equal(numbers, factor * 28, call=f"numbers in {describe(cls.__name__, kwargs)}.state (28 parameters)",
                     hint="one array of the parameter's shape per buffer: momentum_buffer, square_avg, grad_avg, "
                          "exp_avg, exp_avg_sq; plain SGD keeps none")


# -- saving and resuming ----------------------------------------------------------------------

RESUME = {
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01),
    "Adam": dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1),
    "AdamW": dict(lr=0.05, weight_decay=0.1),
}


def is_plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, (int, str)) and is_plain(v) for k, v in value.items())
    if isinstance(value, (tuple, list)):
        return all(is_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, np.ndarray))


def test_state_dict_holds_hyperparameters_and_plain_values():
    """state_dict() holds every hyper-parameter under its name and only plain numbers and numpy arrays"""
    for name, kwargs in RESUME.items():
        trajectory_params = [Tensor(x.copy()) for x in problem()[2]]
        optimizer = CLASSES[name][0](trajectory_params, **kwargs)
        for p in trajectory_params:
            p.grad = Tensor(np.ones(p.shape))
        optimizer.step()
        saved = optimizer.state_dict()
        for key, value in kwargs.items():
            expect_equal(saved.get(key), value, call=f"{describe(name, kwargs)}.state_dict()[{key!r}]",
                         hint="save each hyper-parameter under its constructor name, lr included")
        expect_true("state" in saved and is_plain(saved), call=f"{describe(name, kwargs)}.state_dict()",
                    expected="a dict with a 'state' entry, of plain numbers, tuples and numpy arrays",
                    got=repr(saved)[:300], hint="no Tensors and no references to the parameters")


def test_state_dict_is_a_copy():
    """state_dict() and load_state_dict() copy: a saved or loaded dict never changes as training goes on"""
    name, kwargs = "Adam", RESUME["Adam"]
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
    steps(3)
    for index in snapshot["state"]:
        for key, value in snapshot["state"][index].items():
            expect_equal(saved["state"][index][key], value, call=f"state_dict()['state'][{index}][{key!r}] 3 steps later",
                         hint="state_dict() must return copies of the arrays (array.copy()), not the live buffers")
    live = optimizer.state[0]["exp_avg"].copy()
    saved["state"][0]["exp_avg"][...] = 7.0
    expect_equal(optimizer.state[0]["exp_avg"], live, call="optimizer.state[0]['exp_avg'] after editing a state_dict",
                 hint="the arrays in a state_dict are copies, owned by whoever saved them")
    # loading copies too: training after a load must not write into the loaded dict
    optimizer.load_state_dict(snapshot)
    kept = copy.deepcopy(snapshot)
    steps(2)
    for index in kept["state"]:
        for key, value in kept["state"][index].items():
            expect_equal(snapshot["state"][index][key], value,
                         call=f"loaded_dict['state'][{index}][{key!r}] after load_state_dict(loaded_dict) and 2 steps",
                         hint="load_state_dict must copy the arrays (np.array(value)); otherwise the next steps "
                              "update the checkpoint itself and it cannot be loaded again")


@pytest.mark.parametrize("name", list(RESUME))
def test_resume_from_state_dict_continues_bit_for_bit(name):
    """10 steps, save, load into a fresh optimizer, 10 more steps: identical to 20 uninterrupted steps"""
    kwargs = RESUME[name]
    uninterrupted = tinytorch_run(name, kwargs)
    a, b, starts = problem()
    params = [Tensor(x.copy()) for x in starts]
    optimizer = CLASSES[name][0](params, **kwargs)
    for _ in range(10):
        for p, g in zip(params, gradients([p.data for p in params], a, b)):
            p.grad = Tensor(g)
        optimizer.step()
    saved = optimizer.state_dict()
    # a fresh model and a fresh optimizer built with other settings: everything must come from the file
    fresh = [Tensor(p.data.copy()) for p in params]
    resumed = CLASSES[name][0](fresh, lr=0.5)
    resumed.load_state_dict(saved)
    for step in range(10, STEPS):
        for p, g in zip(fresh, gradients([p.data for p in fresh], a, b)):
            p.grad = Tensor(g)
        resumed.step()
        for index, p in enumerate(fresh):
            expect_equal(p.data, uninterrupted[step][index],
                         call=f"{name}(fresh, lr=0.5).load_state_dict(state after 10 steps of {describe(name, kwargs)}): "
                              f"parameter {index} after step {step + 1}",
                         hint="restore every hyper-parameter (lr too) and every state entry, step counts included")


# -- the learning rate can change between steps -------------------------------------------------


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("AdamW", dict(lr=0.1, weight_decay=0.1))])
def test_changing_lr_between_steps(name, kwargs):
    """Setting optimizer.lr between steps takes effect, as param_groups[0]['lr'] does in torch"""
    lrs = [0.1 * 0.8 ** step for step in range(STEPS)]
    expect_same_trajectory(tinytorch_run(name, kwargs, lrs=lrs), torch_run(name, kwargs, lrs=lrs),
                           call=f"{describe(name, kwargs)} with optimizer.lr = 0.1 * 0.8**t before step t",
                           hint="read self.lr inside step() every time; a schedule (module 07) changes it")


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
