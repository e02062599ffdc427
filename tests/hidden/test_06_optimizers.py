"""Hidden checks for module 06 (optimizers): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises
from tinytorch.optimizers import SGD, Adam, AdamW, RMSprop
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

SHAPES = [(2, 3), (3,), (4, 1)]


def problem(seed: int = 1):
    rng = np.random.default_rng(seed)
    n = sum(int(np.prod(shape)) for shape in SHAPES)
    a = rng.standard_normal((n + 2, n)) / np.sqrt(n + 2)
    b = rng.standard_normal(n + 2)
    return a, b, [0.6 * rng.standard_normal(shape) for shape in SHAPES]


def gradients(arrays, a, b):
    """The gradient of 0.5 * ||A p - b||^2 + sum(p**4) / 4, in the parameters' shapes (float64)."""
    theta = np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in arrays])
    g = a.T @ (a @ theta - b) + theta ** 3
    pieces = np.split(g, np.cumsum([np.size(x) for x in arrays])[:-1])
    return [np.ascontiguousarray(piece.reshape(np.shape(x))) for piece, x in zip(pieces, arrays)]


def run_pair(ours, theirs, steps, has_grad=lambda step, index: True, dtype=np.float64):
    """Run tinytorch's and torch's optimizer side by side; yield (step, index, ours, theirs) after each step."""
    a, b, starts = problem()
    params = [Tensor(x.astype(dtype)) for x in starts]
    tparams = [torch.tensor(x.astype(dtype), requires_grad=True) for x in starts]
    optimizer, toptimizer = ours(params), theirs(tparams)
    for step in range(steps):
        for index, (p, g) in enumerate(zip(params, gradients([p.data for p in params], a, b))):
            p.grad = Tensor(g.astype(dtype)) if has_grad(step, index) else None
        for index, (p, g) in enumerate(zip(tparams, gradients([p.detach().numpy() for p in tparams], a, b))):
            p.grad = torch.from_numpy(g.astype(dtype)) if has_grad(step, index) else None
        optimizer.step()
        toptimizer.step()
        for index, (p, tp) in enumerate(zip(params, tparams)):
            yield step + 1, index, p, tp.detach().numpy()


def test_a_parameter_first_used_later_starts_its_own_step_count():
    """A parameter that gets its first gradient at step 6 starts Adam's bias correction at t = 1, as torch does"""
    late = lambda step, index: index != 1 or step >= 5  # noqa: E731
    for step, index, p, expected in run_pair(lambda ps: Adam(ps, lr=0.05, weight_decay=0.05),
                                             lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.05, foreach=False),
                                             steps=15, has_grad=late):
        expect_close(p, expected, rtol=1e-10, atol=1e-12,
                     call=f"Adam(params, lr=0.05, weight_decay=0.05), parameter {index} (no grad before step 6) "
                          f"after step {step}",
                     hint="keep a step count per parameter (state[i]['step']), not one for the optimizer")


def test_step_never_changes_the_gradients():
    """step() leaves every p.grad array as it was, whatever the options"""
    configs = [(SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
               (SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
               (RMSprop, dict(lr=0.01, weight_decay=0.1, centered=True, momentum=0.5)),
               (Adam, dict(lr=0.01, weight_decay=0.1)), (AdamW, dict(lr=0.01, weight_decay=0.1))]
    a, b, starts = problem()
    for cls, kwargs in configs:
        params = [Tensor(x.copy()) for x in starts]
        optimizer = cls(params, **kwargs)
        given = []
        for _ in range(3):
            grads = gradients([p.data for p in params], a, b)
            for p, g in zip(params, grads):
                p.grad = Tensor(g)
                given.append((g, g.copy()))
            optimizer.step()
        for number, (array, original) in enumerate(given):
            expect_equal(array, original, call=f"{cls.__name__}(params, {kwargs}): gradient #{number} after 3 steps",
                         hint="write g = g + weight_decay * p, not g += ...; and store a copy of g as the first "
                              "momentum buffer, since the buffer is later updated in place")


def test_float32_parameters_stay_float32_and_match_torch():
    """float32 parameters are updated in place in float32 and follow torch's float32 Adam closely"""
    arrays = {}
    for step, index, p, expected in run_pair(lambda ps: AdamW(ps, lr=0.01, weight_decay=0.1),
                                             lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1, foreach=False),
                                             steps=10, dtype=np.float32):
        arrays.setdefault(index, p.data)
        expect_equal((str(p.dtype), p.data is arrays[index]), ("float32", True),
                     call=f"AdamW on float32 parameter {index} after step {step}: (dtype, same array)",
                     hint="state arrays in the parameter's dtype (np.zeros_like) and p.data -= ... in place")
        expect_close(p, expected, rtol=1e-5, atol=1e-6,
                     call=f"AdamW(float32 params, lr=0.01, weight_decay=0.1), parameter {index} after step {step}",
                     hint="the same formulas as in float64; only the precision differs")


def test_load_state_dict_refuses_a_mismatch_and_changes_nothing():
    """load_state_dict refuses another optimizer's dict or wrong shapes, and leaves the optimizer as it was"""
    a, b, starts = problem()
    params = [Tensor(x.copy()) for x in starts]
    adam = Adam(params, lr=0.05)
    sgd = SGD(params, lr=0.1, momentum=0.9)
    for optimizer in (adam, sgd):
        for p, g in zip(params, gradients([p.data for p in params], a, b)):
            p.grad = Tensor(g)
        optimizer.step()
    before = adam.state_dict()
    expect_raises(KeyError, lambda: adam.load_state_dict(sgd.state_dict()), call="adam.load_state_dict(sgd.state_dict())",
                  message_contains="betas", hint="compare the saved names with the hyper-parameters; name what is missing")
    wrong = adam.state_dict()
    wrong["lr"] = 0.5
    wrong["state"][2]["exp_avg"] = np.zeros((3, 3))
    expect_raises(ValueError, lambda: adam.load_state_dict(wrong),
                  call="adam.load_state_dict(d) with d['state'][2]['exp_avg'] of shape (3, 3)",
                  message_contains="(3, 3)", hint="check each array's shape against its parameter's, and say which")
    after = adam.state_dict()
    expect_equal(after["lr"], before["lr"], call="adam.lr after a refused load_state_dict",
                 hint="check everything first, change the optimizer only when all of it fits")
    for index in before["state"]:
        for key, value in before["state"][index].items():
            expect_equal(after["state"][index][key], value,
                         call=f"adam.state[{index}][{key!r}] after a refused load_state_dict",
                         hint="check everything first, change the optimizer only when all of it fits")


def test_all_options_together_match_torch():
    """SGD with Nesterov and weight decay, and RMSprop with every option at once, follow torch for 20 steps"""
    cases = [(lambda ps: SGD(ps, lr=0.03, momentum=0.8, weight_decay=0.05, nesterov=True),
              lambda ps: torch.optim.SGD(ps, lr=0.03, momentum=0.8, weight_decay=0.05, nesterov=True, foreach=False),
              "SGD(params, lr=0.03, momentum=0.8, weight_decay=0.05, nesterov=True)"),
             (lambda ps: RMSprop(ps, lr=0.01, alpha=0.95, eps=1e-6, weight_decay=0.05, momentum=0.7, centered=True),
              lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.95, eps=1e-6, weight_decay=0.05, momentum=0.7,
                                             centered=True, foreach=False),
              "RMSprop(params, lr=0.01, alpha=0.95, eps=1e-6, weight_decay=0.05, momentum=0.7, centered=True)")]
    for ours, theirs, call in cases:
        for step, index, p, expected in run_pair(ours, theirs, steps=20):
            expect_close(p, expected, rtol=1e-10, atol=1e-12, call=f"{call}: parameter {index} after step {step}",
                         hint="weight decay first, then the averages, then momentum; each option as torch orders it")
