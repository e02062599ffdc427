"""Hidden checks for module 06 (optimizers): edge cases beyond the visible checkpoint.

The helpers come from the visible checkpoint: torch_run (the oracle) is called only inside the
expected argument of expect_* calls, and same_pair judges relations between two of the student's
own values on the trusted side.
"""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import same_pair
from tests.checkpoints.test_06_optimizers import (
    CLASSES,
    describe,
    expect_near_torch,
    expect_steps_leave_gradients,
    gradients,
    problem,
    tinytorch_run,
    torch_run,
)
from tinytorch.optimizers import SGD, Adam
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

SHAPES = ((2, 3), (3,), (4, 1))
SEED = 1


def test_a_parameter_first_used_later_starts_its_own_step_count():
    """A parameter that gets its first gradient at step 6 starts Adam's bias correction at t = 1, as torch does"""
    kwargs = dict(lr=0.05, weight_decay=0.05)
    run = dict(steps=15, seed=SEED, shapes=SHAPES, late=(1, 5))
    expect_near_torch(tinytorch_run("Adam", kwargs, **run), "Adam", kwargs, **run,
                      call="Adam(params, lr=0.05, weight_decay=0.05), parameter 1 without a gradient before step 6",
                      hint="keep a step count per parameter (state[i]['step']), not one for the optimizer")


def test_step_never_changes_the_gradients():
    """step() leaves every p.grad array as it was, whatever the options"""
    expect_steps_leave_gradients([("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                  ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.1)),
                                  ("RMSprop", dict(lr=0.01, weight_decay=0.1, centered=True, momentum=0.5)),
                                  ("AdamW", dict(lr=0.01, weight_decay=0.1))], SEED, SHAPES)


def test_float32_parameters_stay_float32_and_match_torch():
    """float32 parameters are updated in place in float32 and follow torch's float32 AdamW within 1e-5"""
    kwargs = dict(lr=0.01, weight_decay=0.1)
    a, b, starts = problem(SEED, SHAPES)
    params = [Tensor(x.astype(np.float32)) for x in starts]
    arrays = [p.data for p in params]
    optimizer = CLASSES["AdamW"](params, **kwargs)
    for step in range(10):
        for p, g in zip(params, gradients([p.data for p in params], a, b)):
            p.grad = Tensor(g.astype(np.float32))
        optimizer.step()
        for index, p in enumerate(params):
            expect_equal((str(p.dtype), p.data is arrays[index]), ("float32", True),
                         call=f"AdamW on float32 parameter {index} after step {step + 1}: (dtype, same array)",
                         hint="state arrays in the parameter's dtype (np.zeros_like) and p.data -= ... in place")
            expect_close(p, torch_run("AdamW", kwargs, steps=10, seed=SEED, shapes=SHAPES, dtype=np.float32)[0][step][index],
                         rtol=1e-5, atol=1e-6,
                         call=f"AdamW(float32 params, lr=0.01, weight_decay=0.1), parameter {index} after step {step + 1}",
                         hint="the same formulas as in float64; only the precision differs")


def test_load_state_dict_refuses_wrong_shapes_and_changes_nothing():
    """load_state_dict refuses a state array of the wrong shape and leaves the optimizer as it was"""
    a, b, starts = problem(SEED, SHAPES)
    params = [Tensor(x.copy()) for x in starts]
    adam = Adam(params, lr=0.05)
    for p, g in zip(params, gradients([p.data for p in params], a, b)):
        p.grad = Tensor(g)
    adam.step()
    before = adam.state_dict()
    wrong = adam.state_dict()
    wrong["lr"] = 0.5
    wrong["state"][2]["exp_avg"] = np.zeros((3, 3))
    expect_raises(ValueError, lambda: adam.load_state_dict(wrong),
                  call="adam.load_state_dict(d) with d['state'][2]['exp_avg'] of shape (3, 3)",
                  message_contains="(3, 3)", hint="check each array's shape against its parameter's, and say which")
    expect_that((adam.state_dict(), before), same_pair,
                call="(adam.state_dict() after the refused load, adam.state_dict() before it)",
                expected="the same: lr and state unchanged",
                hint="check everything first, change the optimizer only when all of it fits")
    expect_close(adam.state[2]["exp_avg_sq"], torch_run("Adam", dict(lr=0.05), steps=1, seed=SEED, shapes=SHAPES)[1][2]["exp_avg_sq"],
                 rtol=1e-10, atol=1e-12, call="adam.state[2]['exp_avg_sq'] after the refused load",
                 hint="v after one step: (1 - beta2) * g**2")
    expect_raises(ValueError, lambda: adam.load_state_dict({**before, "state": {7: {}}}),
                  call="adam.load_state_dict(d) with state for parameter 7 of 3",
                  hint="refuse state for a parameter the optimizer does not have")


def test_all_options_together_match_torch():
    """SGD with Nesterov and weight decay, and RMSprop with every option at once, stay within 1e-10 of torch for 20 steps"""
    cases = [("SGD", dict(lr=0.03, momentum=0.8, weight_decay=0.05, nesterov=True)),
             ("RMSprop", dict(lr=0.01, alpha=0.95, eps=1e-6, weight_decay=0.05, momentum=0.7, centered=True))]
    for name, kwargs in cases:
        run = dict(seed=SEED, shapes=SHAPES)
        expect_near_torch(tinytorch_run(name, kwargs, **run), name, kwargs, **run, call=describe(name, kwargs),
                          hint="weight decay first, then the averages, then momentum; each option as torch orders it")


def test_non_tensor_parameter_and_zero_lr():
    """A parameter that is not a Tensor is a TypeError naming it; lr = 0 is valid and moves nothing"""
    expect_raises(TypeError, lambda: SGD([Tensor(np.zeros(2)), np.zeros(2)], lr=0.1),
                  call="SGD([Tensor, numpy array], lr=0.1)", message_contains="1",
                  hint="check that every parameter is a Tensor and name the position of the one that is not")
    p = Tensor(np.array([1.0, -1.0]))
    optimizer = SGD([p], lr=0.0, momentum=0.9)
    p.grad = Tensor(np.array([3.0, 4.0]))
    optimizer.step()
    expect_close(optimizer.state[0]["momentum_buffer"], np.array([3.0, 4.0]), rtol=1e-12,
                 call="SGD([p], lr=0.0, momentum=0.9), one step: state[0]['momentum_buffer']",
                 hint="lr = 0 is allowed (>= 0): the velocity is still kept")
    expect_close(p, np.array([1.0, -1.0]), rtol=0, atol=0, call="SGD([p], lr=0.0, momentum=0.9), one step: p",
                 hint="with lr = 0 nothing moves")
