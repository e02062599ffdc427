"""Checkpoint 07: training loop, learning-rate schedule, gradient clipping, checkpoints.

Oracles: the closed form of warm-up + cosine and PyTorch's LinearLR -> CosineAnnealingLR;
torch.nn.utils.clip_grad_norm_ in float64; known logits for accuracy; exact round trips of
states through .npz files read with allow_pickle=False; the five lines of a training loop written
out here (`hand_written`), with clipping in numpy and the closed-form schedule, which
Trainer.train_step must match; and a run resumed from a checkpoint, with dropout, Adam, a
schedule and clipping, continuing bit for bit like the uninterrupted run.

Every model starts from weights drawn from the test's own generator, and dropout masks from a
`manual_seed` set right before training. The oracles (torch, `hand_written`, the numpy forward
pass) run only inside the expected side of expect_* calls; facts that relate two of the
student's own values (a resumed run against the uninterrupted one) are judged by the
predicates below, on the trusted side.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from types import SimpleNamespace

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import blobs, same_pair
from tinytorch.training import (
    CosineWarmupSchedule,
    Trainer,
    accuracy,
    clip_grad_norm,
    load_state,
    save_state,
)
from tinytorch.activations import ReLU
from tinytorch.layers import Dropout, Linear, Module, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD, Adam
from tinytorch.tensor import Tensor, generator, manual_seed

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

MASKS = 2024  # manual_seed before training: the dropout masks every run draws


# -- models and data from the test's own generators ---------------------------------------------


def closed_form_lr(step, base, warmup, total, minimum):
    """The schedule of the lesson, written out independently."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / (total - warmup))
    return minimum + (base - minimum) * (1 + math.cos(math.pi * progress)) / 2


def initial_weights(seed):
    """The starting weights of make_model(seed): (16, 4), (16,), (3, 16), (3,), float32."""
    rng = np.random.default_rng(100 + seed)
    return [(rng.uniform(-1, 1, shape) / np.sqrt(fan_in)).astype(np.float32)
            for shape, fan_in in (((16, 4), 4), ((16,), 4), ((3, 16), 16), ((3,), 16))]


def make_model(seed, dropout=0.0):
    """A small classifier 4 -> 16 -> 3, with optional dropout, its weights from initial_weights(seed)."""
    layers = [Linear(4, 16), ReLU()]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Linear(16, 3))
    model = Sequential(*layers)
    for param, weight in zip(model.parameters(), initial_weights(seed)):
        param.data[...] = weight  # known values, not the random initialisation
    return model


def batches_of(points, labels, size):
    return [(points[i:i + size], labels[i:i + size]) for i in range(0, len(labels), size)]


class Batches:
    """A re-iterable collection of (inputs, targets) pairs, like module 08's DataLoader."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __iter__(self):
        yield from self.pairs


def parameters_of(model):
    return [p.data.copy() for p in model.parameters()]


# -- oracles: called only inside the expected argument of expect_* calls --------------------------


def numpy_clip(parameters, max_norm):
    """Clipping by the global norm, as the lesson states it (float64 norm, max_norm / (norm + 1e-6))."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float(np.sum(g.data.astype(np.float64) ** 2)) for g in grads))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g.data = (g.data * scale).astype(g.data.dtype)


@functools.lru_cache(maxsize=None)
def hand_written(model_seed, data, epochs=1, dropout=0.0, adam=False, lr=0.1, momentum=0.0, clip=None,
                 schedule=None, masks=None):
    """The five lines, written out: [(loss, parameters) after each step], and the generator's state at the end.

    `data` is (n, seed, size) of batches_of(*blobs(n, seed), size); `schedule` is (base, warmup, total,
    minimum) of the closed form; `masks` the manual_seed set before the first step. The generator's
    state is put back afterwards: the oracle must not change what the student's code draws next."""
    saved = generator().bit_generator.state
    try:
        model = make_model(model_seed, dropout)
        optimizer = Adam(model.parameters(), lr=lr) if adam else SGD(model.parameters(), lr=lr, momentum=momentum)
        loss_fn = CrossEntropyLoss()
        if masks is not None:
            manual_seed(masks)
        steps = []
        for inputs, targets in batches_of(*blobs(data[0], data[1]), data[2]) * epochs:
            if schedule is not None:
                optimizer.lr = closed_form_lr(len(steps), *schedule)
            loss = loss_fn(model(Tensor(inputs)), Tensor(targets))
            optimizer.zero_grad()
            loss.backward()
            if clip is not None:
                numpy_clip(model.parameters(), clip)
            optimizer.step()
            steps.append((float(loss.item()), parameters_of(model)))
        return steps, generator().bit_generator.state
    finally:
        generator().bit_generator.state = saved


def numpy_metrics(weights, points, labels):
    """(mean cross-entropy, accuracy) of the 4 -> 16 -> 3 classifier with these weights, in float64, eval mode."""
    w1, b1, w2, b2 = (np.asarray(w, dtype=np.float64) for w in weights)
    logits = np.maximum(points @ w1.T + b1, 0.0) @ w2.T + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean()), float(np.mean(logits.argmax(axis=1) == labels))


@functools.lru_cache(maxsize=None)
def torch_schedule(base, warmup, total, minimum, steps):
    """The learning rates torch's LinearLR followed by CosineAnnealingLR writes, before each of `steps` steps."""
    parameter = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    torch_optimizer = torch.optim.SGD([parameter], lr=base)
    warm = torch.optim.lr_scheduler.LinearLR(torch_optimizer, start_factor=1 / warmup, end_factor=1.0,
                                             total_iters=warmup - 1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(torch_optimizer, T_max=total - warmup, eta_min=minimum)
    scheduler = torch.optim.lr_scheduler.SequentialLR(torch_optimizer, [warm, cosine], milestones=[warmup])
    lrs = []
    for _ in range(steps):
        lrs.append(torch_optimizer.param_groups[0]["lr"])
        torch_optimizer.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scheduler.step()
    return lrs


def torch_clip(grads, max_norm):
    """(norm, [clipped gradient or None]) from torch.nn.utils.clip_grad_norm_ in float64."""
    return _torch_clip(tuple(None if g is None else (g.shape, g.tobytes()) for g in grads), max_norm)


@functools.lru_cache(maxsize=64)
def _torch_clip(key, max_norm):
    grads = [None if item is None else np.frombuffer(item[1]).reshape(item[0]) for item in key]
    params = []
    for grad in grads:
        param = torch.zeros(1 if grad is None else grad.shape, dtype=torch.float64, requires_grad=True)
        param.grad = None if grad is None else torch.tensor(grad.copy())
        params.append(param)
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return float(norm), [None if p.grad is None else p.grad.numpy() for p in params]


# -- predicates, judged on the trusted side over the student's recorded values ------------------


def at_least(value, bound) -> bool:
    return float(value) >= bound


def below(value, bound) -> bool:
    return float(value) < bound


def falls_by_half(losses) -> bool:
    """The last epoch's training loss is less than half the first's."""
    return len(losses) >= 2 and float(losses[-1]) < 0.5 * float(losses[0])


# -- the learning-rate schedule ---------------------------------------------------------------


def test_warmup_is_linear_from_base_over_warmup():
    """Warm-up: step s < W has lr base_lr * (s + 1) / W, from base_lr / W up to base_lr"""
    schedule = CosineWarmupSchedule(SimpleNamespace(lr=None), base_lr=0.2, warmup_steps=5, total_steps=50)
    for step in range(5):
        expect_close(schedule.lr_at(step), [0.04, 0.08, 0.12, 0.16, 0.2][step], rtol=1e-12,
                     call=f"CosineWarmupSchedule(base_lr=0.2, warmup_steps=5, total_steps=50).lr_at({step})",
                     hint="during warm-up lr = base_lr * (step + 1) / warmup_steps: the first step already learns")


def test_cosine_decay_closed_form():
    """After warm-up the lr follows a half cosine from base_lr to min_lr at total_steps, then stays"""
    base, warmup, total, minimum = 0.5, 3, 43, 0.02
    schedule = CosineWarmupSchedule(SimpleNamespace(lr=None), base_lr=base, warmup_steps=warmup,
                                    total_steps=total, min_lr=minimum)
    call = "CosineWarmupSchedule(base_lr=0.5, warmup_steps=3, total_steps=43, min_lr=0.02).lr_at"
    for step in (3, 23, 43, 44, 1000):
        expect_close(schedule.lr_at(step), {3: base, 23: (base + minimum) / 2, 43: minimum, 44: minimum,
                                            1000: minimum}[step], rtol=1e-12, call=f"{call}({step})",
                     hint="progress = (step - W) / (T - W); lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * "
                          "progress)) / 2: base_lr at W, the midpoint halfway, min_lr from T on")
    for step in (4, 13, 30, 42):
        expect_close(schedule.lr_at(step), closed_form_lr(step, base, warmup, total, minimum), rtol=1e-12,
                     call=f"{call}({step})", hint="the cosine part: min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2")
    expect_equal(type(schedule.lr_at(13)).__name__, "float", call=f"type({call}(13))",
                 hint="return a plain Python float (math.cos, not np.cos)")


def test_schedule_writes_lr_like_torch():
    """Constructing and stepping the schedule writes into optimizer.lr what torch's LinearLR + CosineAnnealingLR give"""
    base, warmup, total, minimum = 3e-3, 5, 37, 1e-4
    optimizer = SimpleNamespace(lr=123.0)
    schedule = CosineWarmupSchedule(optimizer, base_lr=base, warmup_steps=warmup, total_steps=total, min_lr=minimum)
    for step in range(total + 1):
        action = "CosineWarmupSchedule(optimizer, 3e-3, 5, 37, 1e-4)" + ("" if step == 0 else f", then step() x{step}")
        expect_close(optimizer.lr, torch_schedule(base, warmup, total, minimum, total + 1)[step], rtol=1e-10,
                     call=f"optimizer.lr after {action}",
                     hint="the constructor writes lr_at(0) into optimizer.lr; each step() advances one step "
                          "and writes lr_at(new step)")
        schedule.step()


def test_schedule_state_dict_resumes():
    """A schedule's state_dict is plain numbers; loading it into a fresh schedule continues the same curve"""
    first_optimizer = SimpleNamespace(lr=None)
    first = CosineWarmupSchedule(first_optimizer, base_lr=0.1, warmup_steps=4, total_steps=30, min_lr=0.001)
    for _ in range(9):
        first.step()
    state = first.state_dict()
    expect_equal(state, {"base_lr": 0.1, "warmup_steps": 4, "total_steps": 30, "min_lr": 0.001, "current_step": 9},
                 call="CosineWarmupSchedule(opt, 0.1, 4, 30, 0.001) after 9 step() calls: .state_dict()",
                 hint="base_lr, warmup_steps, total_steps, min_lr and current_step, as plain numbers")
    second_optimizer = SimpleNamespace(lr=None)
    second = CosineWarmupSchedule(second_optimizer, base_lr=1.0, warmup_steps=1, total_steps=2)
    second.load_state_dict(json.loads(json.dumps(state)))  # plain numbers: any file format can store them
    expect_close(second_optimizer.lr, closed_form_lr(9, 0.1, 4, 30, 0.001), rtol=1e-12,
                 call="fresh schedule .load_state_dict(state of a schedule after 9 steps); optimizer.lr",
                 hint="load_state_dict restores settings and position and writes lr_at(current step) into the optimizer")
    for extra in range(1, 6):
        second.step()
        expect_close(second_optimizer.lr, closed_form_lr(9 + extra, 0.1, 4, 30, 0.001), rtol=1e-12,
                     call=f"optimizer.lr, {extra} step() calls after loading",
                     hint="the loaded schedule must continue from the saved position with the saved settings")


# -- gradient clipping ----------------------------------------------------------------------


def with_grads(grads):
    """tinytorch parameters whose .grad are the given arrays (None for no gradient)."""
    params = []
    for grad in grads:
        shape = (1,) if grad is None else grad.shape
        param = Tensor(np.zeros(shape), requires_grad=True)
        param.grad = None if grad is None else Tensor(grad.copy())
        params.append(param)
    return params


gradient_lists = st.lists(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
               elements=st.floats(-10, 10, allow_nan=False, allow_subnormal=False)),
    min_size=1, max_size=4)


@given(grads=gradient_lists, max_norm=st.sampled_from([0.01, 0.5, 1.0, 3.0, 10.0, 100.0]),
       none_at=st.integers(0, 4))
def test_clip_grad_norm_matches_torch(grads, max_norm, none_at):
    """clip_grad_norm returns the norm and leaves the gradients of torch's clip_grad_norm_ (within 1e-10)"""
    grads = list(grads)
    grads.insert(min(none_at, len(grads)), None)  # a parameter without a gradient is skipped
    params = with_grads(grads)
    call = f"clip_grad_norm(parameters with grads of shapes {[None if g is None else g.shape for g in grads]}, " \
           f"max_norm={max_norm})"
    norm = clip_grad_norm(params, max_norm)
    expect_close(norm, torch_clip(grads, max_norm)[0], rtol=1e-10, call=call + " (the returned norm)",
                 hint="the global L2 norm: sqrt of the sum of squares of every gradient, measured before clipping")
    for index, (param, grad) in enumerate(zip(params, grads)):
        if grad is None:
            expect_equal(param.grad, None, call=call + f": parameter {index}.grad",
                         hint="parameters without a gradient are skipped")
        else:
            expect_close(param.grad, torch_clip(grads, max_norm)[1][index], rtol=1e-10, atol=1e-12,
                         call=call + f": parameter {index}.grad after clipping",
                         hint="scale every gradient by the same factor max_norm / (norm + 1e-6), only when it is below 1")


def test_clip_known_values_in_place():
    """Gradients (3, 4) and (12,) have norm 13: clipping to 6.5 halves both in place; below the threshold nothing changes"""
    first, second = with_grads([np.array([3.0, 4.0], dtype=np.float32), np.array([12.0], dtype=np.float32)])
    grad_objects = (first.grad, second.grad)
    norm = clip_grad_norm([first, second], 6.5)
    expect_close(norm, 13.0, rtol=1e-7, call="clip_grad_norm(grads [3, 4] and [12], max_norm=6.5)",
                 hint="sqrt(3^2 + 4^2 + 12^2) = 13, over all gradients together")
    expect_close(first.grad, np.array([3.0, 4.0]) * 6.5 / (13.0 + 1e-6), rtol=1e-6, call="first .grad after clipping to 6.5",
                 hint="every gradient is multiplied by max_norm / (norm + 1e-6)")
    expect_close(second.grad, np.array([12.0]) * 6.5 / (13.0 + 1e-6), rtol=1e-6, call="second .grad after clipping to 6.5",
                 hint="the same factor for every gradient: global clipping keeps the direction")
    expect_equal((first.grad is grad_objects[0], second.grad is grad_objects[1], str(first.grad.dtype)),
                 (True, True, "float32"), call="(first.grad is the old Tensor, second.grad is too, first.grad.dtype) "
                 "after clip_grad_norm", hint="change the numbers inside each p.grad in place and keep its dtype")

    from_generator = with_grads([np.array([6.0, 8.0]), None, np.array([0.0])])
    norm = clip_grad_norm((p for p in from_generator), 5.0)
    expect_close(from_generator[0].grad, np.array([6.0, 8.0]) * 5.0 / (10.0 + 1e-6), rtol=1e-12,
                 call="clip_grad_norm((p for p in params), 5.0) with grads [6, 8], None, [0]: params[0].grad",
                 hint="parameters may come as a generator, which can be read only once: collect the gradients "
                      "in a list first, then measure and scale them")

    small = with_grads([np.array([0.3, -0.4]), np.array([[1.2]])])
    norm = clip_grad_norm(small, 1.5)
    expect_close(norm, 1.3, rtol=1e-12, call="clip_grad_norm(grads [0.3, -0.4] and [[1.2]], max_norm=1.5)",
                 hint="return the norm even when no clipping is needed")
    for index, (param, original) in enumerate(zip(small, [np.array([0.3, -0.4]), np.array([[1.2]])])):
        expect_equal(param.grad.data, original, call=f"parameter {index}.grad, norm 1.3 below max_norm 1.5",
                     hint="gradients below the threshold are left exactly as they were")


# -- accuracy ---------------------------------------------------------------------------------


def test_accuracy_several_classes():
    """accuracy takes the argmax over the last axis and counts matches with the class indices"""
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0], [0.1, 0.2, 0.0]])
    targets = np.array([0, 1, 1, 2, 1])
    got = accuracy(Tensor(logits), Tensor(targets))
    expect_close(got, 0.6, rtol=1e-12, call="accuracy(logits (5, 3), targets [0, 1, 1, 2, 1])",
                 hint="predicted classes are argmax(axis=-1) = [0, 1, 2, 0, 1]: 3 of 5 right")
    expect_equal(type(got).__name__, "float", call="type(accuracy(...))", hint="return a plain Python float")
    expect_close(accuracy(logits, targets), 0.6, rtol=1e-12, call="accuracy(numpy logits, numpy targets)",
                 hint="accept numpy arrays as well as Tensors")


def test_accuracy_one_column_thresholds_at_zero():
    """With one output column a logit above 0 predicts class 1, and exactly 0 predicts class 0"""
    logits = Tensor(np.array([[-1.0], [2.0], [0.5], [-3.0], [0.0]]))
    got = accuracy(logits, np.array([0, 1, 0, 0, 0]))
    expect_close(got, 0.8, rtol=1e-12, call="accuracy(logits [[-1], [2], [0.5], [-3], [0]], targets [0, 1, 0, 0, 0])",
                 hint="one column: predict 1 where the logit is > 0 (probability above 0.5), else 0")
    got = accuracy(logits, np.array([[0.0], [1.0], [1.0], [0.0], [1.0]]))
    expect_close(got, 0.8, rtol=1e-12, call="accuracy(same logits, targets [[0], [1], [1], [0], [1]] as floats)",
                 hint="0/1 targets may come as floats and in shape (N, 1)")


# -- checkpoint files -------------------------------------------------------------------------


def expect_same_state(got, expected, path="state"):
    """Equal values of equal types, recursively (`expected` is the state the test saved: an input)."""
    expect_equal(type(got).__name__, type(expected).__name__, call=f"type of {path} after save_state/load_state",
                 hint="every value must come back as the same type: tuples as tuples, numpy numbers as numpy numbers")
    if isinstance(expected, dict):
        expect_equal(list(got.keys()), list(expected.keys()), call=f"keys of {path} after save_state/load_state",
                     hint="dict keys (integer keys too) and their order must survive")
        for key in expected:
            expect_same_state(got[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        expect_equal(len(got), len(expected), call=f"len({path}) after save_state/load_state", hint="")
        for index, (g, e) in enumerate(zip(got, expected)):
            expect_same_state(g, e, f"{path}[{index}]")
    elif isinstance(expected, (np.ndarray, np.generic)):
        expect_equal((str(got.dtype), np.shape(got)), (str(expected.dtype), np.shape(expected)),
                     call=f"({path}.dtype, {path}.shape) after save_state/load_state", hint="arrays keep dtype and shape")
        expect_equal(np.asarray(got), np.asarray(expected), call=f"{path} after save_state/load_state", hint="")
    else:
        expect_equal(got, expected, call=f"{path} after save_state/load_state",
                     hint="plain numbers and strings go into the JSON structure and come back exactly")


def round_trip_state():
    return {
        "model": {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3) / 7, "0.bias": np.zeros(2, np.float32)},
        "optimizer": {"lr": 0.1 + 0.2, "eps": np.float64(1e-8), "betas": (0.9, 0.999), "state": {0: {"step": np.int64(3),
                      "exp_avg": np.linspace(-1, 1, 4)}, 1: {"flags": np.array([True, False])}}},
        "schedule": None,
        "epoch": 2, "big": 2 ** 90, "name": "run ✓", "done": False,
        "history": [{"epoch": 1, "train_loss": 1.25}, {"epoch": 2, "train_loss": np.float32(0.75)}],
        "empty": np.zeros((0, 3)), "scalar_array": np.array(4.5),
    }


def test_state_round_trip(tmp_path):
    """save_state then load_state returns the same nested state: arrays, numpy numbers, tuples, integer keys"""
    path = tmp_path / "state.npz"
    save_state(path, round_trip_state())
    expect_same_state(load_state(path), round_trip_state())


def test_state_file_layout(tmp_path):
    """A checkpoint is one .npz readable with allow_pickle=False: arrays under path keys, the rest as JSON"""
    weight = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "layout.npz"
    save_state(path, {"model": {"0.weight": weight}, "step": 3})
    expect_equal(sorted(p.name for p in tmp_path.iterdir()), ["layout.npz"],
                 call="files in the folder after save_state(folder / 'layout.npz', ...)",
                 hint="write one file at exactly the given path and leave no temporary file behind")
    with np.load(path, allow_pickle=False) as npz:
        expect_equal(sorted(npz.files), ["__structure__", "model/0.weight"], call="sorted(np.load(checkpoint).files)",
                     hint="each array under the path to it, joined by '/'; the JSON text under '__structure__'")
        expect_equal(npz["model/0.weight"], weight, call="np.load(checkpoint)['model/0.weight']",
                     hint="store the array itself")
        document = json.loads(str(npz["__structure__"]))
    expect_equal(document, {"format": "tinytorch-checkpoint", "version": 1,
                            "state": {"model": {"0.weight": {"__array__": "model/0.weight"}}, "step": 3}},
                 call="json.loads(np.load(checkpoint)['__structure__'])",
                 hint="the JSON document is {'format': 'tinytorch-checkpoint', 'version': 1, 'state': ...}, each "
                      "array replaced by {'__array__': its key}, plain numbers kept as they are")

    expect_raises(TypeError, lambda: save_state(tmp_path / "bad.npz", {"callback": print}),
                  call="save_state(path, {'callback': print})", message_contains="callback",
                  hint="only pickle could store a function: refuse it with a TypeError naming where it was found")
    expect_raises(TypeError, lambda: save_state(tmp_path / "bad.npz", {"mixed": np.array([1, "a", None], dtype=object)}),
                  call="save_state(path, {'mixed': array of Python objects})",
                  hint="an object array can only be stored with pickle: refuse it")


def test_load_state_reads_the_documented_format(tmp_path):
    """load_state reads a file written by hand in the documented format: tags for arrays, numbers, Tensors, tuples, dicts"""
    structure = {"format": "tinytorch-checkpoint", "version": 1, "state": {
        "w": {"__tensor__": "w"}, "moments": {"__dict__": [[0, {"__array__": "m/0"}], [2, {"__array__": "m/2"}]]},
        "betas": {"__tuple__": [0.9, 0.999]}, "t": {"__scalar__": "t"}, "log": [1, "two", None, True]}}
    path = tmp_path / "by_hand.npz"
    with open(path, "wb") as file:
        np.savez(file, allow_pickle=False, __structure__=np.array(json.dumps(structure)),
                 w=np.eye(2, dtype=np.float32), **{"m/0": np.arange(3.0), "m/2": np.ones((2, 2)), "t": np.array(7)})
    state = load_state(path)
    expect_equal(sorted(state), ["betas", "log", "moments", "t", "w"], call="sorted(load_state(file written by hand))",
                 hint="decode the JSON structure under 'state'")
    expect_equal(type(state["w"]).__name__, "Tensor", call="type(load_state(...)['w']) from {'__tensor__': 'w'}",
                 hint="a __tensor__ tag becomes Tensor(array)")
    expect_equal(state["w"], np.eye(2, dtype=np.float32), call="load_state(...)['w'] from {'__tensor__': 'w'}",
                 hint="a __tensor__ tag becomes Tensor(array): the array stored under its key")
    expect_equal(sorted(state["moments"]), [0, 2], call="sorted(load_state(...)['moments']) from "
                 "{'__dict__': [[0, ...], [2, ...]]}",
                 hint="a __dict__ tag holds [key, value] pairs: integer keys come back as integers")
    for key, value in ((0, np.arange(3.0)), (2, np.ones((2, 2)))):
        expect_equal(state["moments"][key], value, call=f"load_state(...)['moments'][{key}]",
                     hint="each value of a __dict__ pair is decoded too: here an array tag")
    expect_equal((state["betas"], type(state["t"]).__name__, state["t"], state["log"]),
                 ((0.9, 0.999), "int64", 7, [1, "two", None, True]),
                 call="load_state(...): (betas, type of t, t, log)",
                 hint="__tuple__ becomes a tuple, __scalar__ the 0-d array's number (array[()]), lists stay lists")


def test_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    """A save that fails halfway leaves the previous checkpoint intact and no temporary file behind"""
    path = tmp_path / "run.npz"
    save_state(path, {"a": np.ones(3), "b": np.zeros(4), "step": 1})
    original = path.read_bytes()

    real_write_array = np.lib.format.write_array
    calls = []

    def failing_write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) >= 2:
            raise OSError("No space left on device (simulated)")
        return real_write_array(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    expect_raises(OSError, lambda: save_state(path, {"a": np.full(3, 7.0), "b": np.full(4, 7.0), "step": 2}),
                  call="save_state(path, new state) while the disk fills up halfway",
                  hint="let the error propagate")
    monkeypatch.undo()
    expect_that((path.read_bytes(), original), same_pair,
                call="(the checkpoint file's bytes after a failed save, its bytes before)",
                expected="the same: the previous checkpoint, byte for byte",
                hint="write to a temporary file in the same folder, then os.replace it onto the real name")
    expect_equal(sorted(p.name for p in tmp_path.iterdir()), ["run.npz"], call="files in the folder after a failed save",
                 hint="delete the temporary file when saving fails")
    old = load_state(path)
    expect_equal(old["step"], 1, call="load_state(path)['step'] after a failed save", hint="the old checkpoint must still load")
    expect_equal(old["a"], np.ones(3), call="load_state(path)['a'] after a failed save",
                 hint="the old checkpoint must still load")


def test_corrupt_checkpoint_names_the_file(tmp_path):
    """A truncated, corrupt or foreign file raises a ValueError naming the file; a good one still loads"""
    good = tmp_path / "good.npz"
    save_state(good, {"weights": np.arange(1000, dtype=np.float64), "step": 5})
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    foreign = tmp_path / "foreign.npz"
    with open(foreign, "wb") as f:
        np.savez(f, weights=np.ones(3))  # a valid npz, but not written by save_state
    pickled = tmp_path / "pickled.npz"
    structure = {"format": "tinytorch-checkpoint", "version": 1, "state": {"x": {"__array__": "x"}}}
    with open(pickled, "wb") as f:  # an array of Python objects: reading it would unpickle
        np.savez(f, allow_pickle=True, __structure__=np.array(json.dumps(structure)),
                 x=np.array([{"a": 1}, None], dtype=object))
    for bad, what in ((truncated, "the first half of a checkpoint"), (garbage, "text bytes"),
                      (foreign, "a plain np.savez file"), (pickled, "an array that only pickle can read")):
        expect_raises(ValueError, lambda bad=bad: load_state(bad), call=f"load_state({bad.name!r}) ({what})",
                      message_contains=bad.name,
                      hint="catch whatever reading the file raises and raise a ValueError that names the file; "
                           "open it with np.load(path, allow_pickle=False), so a pickled array is refused, never run")
    expect_raises(FileNotFoundError, lambda: load_state(tmp_path / "missing.npz"), call="load_state('missing.npz')",
                  hint="a missing file stays a FileNotFoundError")
    state = load_state(good)
    expect_equal(state["step"], 5, call="load_state('good.npz')['step']", hint="a good checkpoint still loads")
    expect_equal(state["weights"], np.arange(1000, dtype=np.float64), call="load_state('good.npz')['weights']",
                 hint="a good checkpoint still loads")


# -- the Trainer ------------------------------------------------------------------------------


def test_train_step_is_the_five_lines():
    """Trainer.train_step equals forward, loss, zero_grad, backward, step written by hand, bit for bit"""
    data = batches_of(*blobs(24, seed=3), size=8)
    model = make_model(0)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss())
    for index, (inputs, targets) in enumerate(data):
        got = trainer.train_step(inputs, targets)
        expected = functools.partial(hand_written, 0, (24, 3, 8), momentum=0.9)
        expect_equal(got, expected()[0][index][0], call=f"trainer.train_step(batch {index}) (numpy inputs and labels)",
                     hint="return the loss of the forward pass as a Python float")
        for number, param in enumerate(model.parameters()):
            expect_equal(param.data, expected()[0][index][1][number],
                         call=f"parameter {number} after train_step on batch {index}",
                         hint="forward, loss, optimizer.zero_grad(), loss.backward(), optimizer.step(): "
                              "without zero_grad the gradients of earlier batches pile up")
    expect_equal(trainer.step, 3, call="trainer.step after 3 train_step calls", hint="count every optimizer step")


def test_train_step_clips_then_steps_then_schedules():
    """With clip_norm and a schedule, train_step clips between backward and step and advances the schedule after"""
    data = batches_of(*blobs(40, seed=4), size=8)
    model = make_model(1)
    optimizer = Adam(model.parameters(), lr=0.05)
    schedule = CosineWarmupSchedule(optimizer, base_lr=0.05, warmup_steps=2, total_steps=6)
    trainer = Trainer(model, optimizer, CrossEntropyLoss(), schedule=schedule, clip_norm=0.05)
    for index, (inputs, targets) in enumerate(data):
        trainer.train_step(Tensor(inputs), Tensor(targets))
        expected = functools.partial(hand_written, 1, (40, 4, 8), adam=True, lr=0.05, clip=0.05,
                                     schedule=(0.05, 2, 6, 0.0))
        for number, param in enumerate(model.parameters()):
            expect_close(param.data, expected()[0][index][1][number], rtol=1e-5, atol=1e-7,
                         call=f"parameter {number} after train_step on batch {index}",
                         hint="order: forward, loss, zero_grad, backward, clip_grad_norm(model.parameters(), "
                              "clip_norm), optimizer.step(), schedule.step()")
        expect_close(optimizer.lr, closed_form_lr(index + 1, 0.05, 2, 6, 0.0), rtol=1e-12,
                     call=f"optimizer.lr after train_step {index}",
                     hint="call schedule.step() once after every optimizer.step()")


def test_fit_learns_and_keeps_records():
    """fit lowers the loss of a small classifier, counts epochs and steps, and reports each epoch"""
    train = Batches(batches_of(*blobs(120, seed=5), size=30))
    val_points, val_labels = blobs(60, seed=6)
    val = Batches(batches_of(val_points, val_labels, size=30))
    model = make_model(2, dropout=0.1)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.02), CrossEntropyLoss())
    seen = []
    manual_seed(MASKS)
    records = trainer.fit(train, epochs=12, val_batches=val, on_epoch=lambda epoch, record: seen.append((epoch, record)))
    expect_equal(len(records), 12, call="len(trainer.fit(train, epochs=12, ...))", hint="one record per epoch")
    expect_equal([epoch for epoch, _ in seen], list(range(1, 13)), call="epochs passed to on_epoch(epoch, record)",
                 hint="call on_epoch after every epoch with the number of epochs finished")
    expect_equal([record is seen_record for record, (_, seen_record) in zip(records, seen)], [True] * 12,
                 call="[record is the one passed to on_epoch, for each epoch]",
                 hint="pass each epoch's record (the dict fit returns) to on_epoch")
    expect_equal((trainer.epoch, trainer.step), (12, 48), call="(trainer.epoch, trainer.step) after fit(4 batches, 12 epochs)",
                 hint="epoch counts finished epochs, step counts optimizer steps")
    expect_that((trainer.history, records), same_pair, call="(trainer.history, the records fit returned) after one fit",
                expected="the same records", hint="append every record to trainer.history")
    expect_equal(sorted(records[-1]), ["epoch", "lr", "step", "train_loss", "val_accuracy", "val_loss"],
                 call="sorted(trainer.fit(...)[-1])",
                 hint="record epoch, step, train_loss, lr, and val_loss/val_accuracy with validation batches")
    expect_equal([(r["epoch"], r["step"], r["lr"]) for r in records[:2]], [(1, 4, 0.02), (2, 8, 0.02)],
                 call="(epoch, step, lr) of the first two records", hint="the counters after the epoch, and optimizer.lr")
    expect_close(records[0]["train_loss"],
                 np.mean([loss for loss, _ in hand_written(2, (120, 5, 30), dropout=0.1, adam=True, lr=0.02,
                                                           masks=MASKS)[0][:4]]),
                 rtol=1e-6, call="fit(...)[0]['train_loss']",
                 hint="the mean of the 4 step losses of the first epoch, in training mode (dropout on)")
    expect_that([r["train_loss"] for r in records], falls_by_half, call="train_loss of the 12 epochs",
                expected="the last less than half the first",
                hint="each train_step must update the parameters (zero_grad, backward, step)")
    expect_that(records[-1]["val_loss"], below, numpy_metrics(initial_weights(2), val_points, val_labels)[0],
                call="fit(...)[-1]['val_loss']", expected="below the loss of the untrained model",
                hint="the three classes are easy to separate; check evaluate and the training loop")
    expect_that(records[-1]["val_accuracy"], at_least, 0.9, call="fit(...)[-1]['val_accuracy']",
                expected="at least 0.9", hint="the three classes are easy to separate")


def test_train_epoch_mean_loss_in_training_mode():
    """train_epoch switches to training mode, steps on every batch and returns the mean of the step losses"""
    data = batches_of(*blobs(30, seed=7), size=8)  # batches of 8, 8, 8 and 6
    model = make_model(3)
    model.eval()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.05), CrossEntropyLoss())
    got = trainer.train_epoch(Batches(data))
    expect_close(got, np.mean([loss for loss, _ in hand_written(3, (30, 7, 8), lr=0.05)[0]]), rtol=1e-12,
                 call="trainer.train_epoch(4 batches)", hint="return the mean of the losses that train_step returned")
    modes = [m.training for m in model.modules()]
    expect_equal(modes, [True] * len(modes), call="[m.training for m in model.modules()] after train_epoch (the "
                 "model was in eval mode before)", hint="call model.train() at the start of every epoch")
    expect_equal((trainer.epoch, trainer.step), (1, 4), call="(trainer.epoch, trainer.step) after one train_epoch",
                 hint="one epoch, one step per batch")
    for number, param in enumerate(model.parameters()):
        expect_equal(param.data, hand_written(3, (30, 7, 8), lr=0.05)[0][-1][1][number],
                     call=f"parameter {number} after train_epoch",
                     hint="train_epoch is train_step on every batch, in order")


class Probe(Module):
    """Wraps a model and records, at every forward, the modes inside and whether a graph was recorded."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.log = []

    def forward(self, x):
        out = self.inner(x)
        self.log.append(([m.training for m in self.inner.modules()], bool(out.requires_grad)))
        return out


def test_evaluate_changes_nothing():
    """evaluate runs in eval mode under no_grad, changes no parameter, and restores the mode the model was in"""
    model = Probe(make_model(4, dropout=0.5))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.5), CrossEntropyLoss())
    points, labels = blobs(16, seed=8)
    model.train()
    metrics = trainer.evaluate(Batches(batches_of(points, labels, size=8)))
    expect_equal(sorted(metrics), ["accuracy", "loss"], call="sorted(trainer.evaluate(batches))",
                 hint="return both numbers in a dict")
    expect_close(metrics["loss"], numpy_metrics(initial_weights(4), points, labels)[0], rtol=1e-5,
                 call="trainer.evaluate(2 batches of 8)['loss'] of a model with dropout 0.5",
                 hint="dropout is off in evaluation: the loss of the whole network, no element zeroed")
    expect_equal(model.log, [([False] * len(list(model.inner.modules())), False)] * 2,
                 call="[(modes inside the model, output.requires_grad) at each forward during evaluate(2 batches)]",
                 hint="one forward per batch, after model.eval() (dropout off) and under `with no_grad():` "
                      "(no graph recorded)")
    expect_equal([p.grad for p in model.parameters()], [None] * 4, call="[p.grad for p in model.parameters()] "
                 "after evaluate", hint="evaluate never calls backward")
    for number, param in enumerate(model.parameters()):
        expect_equal(param.data, initial_weights(4)[number], call=f"parameter {number} after evaluate",
                     hint="evaluate never steps the optimizer")
    modes = [m.training for m in model.modules()]
    expect_equal(modes, [True] * len(modes), call="[m.training for m in model.modules()] after evaluate of a model "
                 "in training mode", hint="put the model back in the mode it was in (model.train(was_training)), "
                 "in a finally block")
    model.eval()
    trainer.evaluate(Batches(batches_of(points, labels, size=8)))
    modes = [m.training for m in model.modules()]
    expect_equal(modes, [False] * len(modes), call="[m.training for m in model.modules()] after evaluate of a model "
                 "in eval mode", hint="restore the mode the model was in, not always train(): a model being "
                 "evaluated by the caller must stay in eval mode")
    expect_equal((trainer.epoch, trainer.step), (0, 0), call="(trainer.epoch, trainer.step) after evaluate",
                 hint="evaluation is not training: the counters do not move")


def test_evaluate_values():
    """evaluate returns the mean loss and the accuracy over all examples, a short last batch weighted by its size"""
    points, labels = blobs(19, seed=9)
    model = make_model(5)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
    metrics = trainer.evaluate(batches_of(points, labels, size=8))  # 8, 8 and 3 examples
    expect_close(metrics["loss"], numpy_metrics(initial_weights(5), points, labels)[0], rtol=1e-5,
                 call="trainer.evaluate(batches of 8, 8 and 3)['loss']",
                 hint="the mean cross-entropy over all 19 examples: weight each batch's mean by its size")
    expect_close(metrics["accuracy"], numpy_metrics(initial_weights(5), points, labels)[1], rtol=1e-12,
                 call="trainer.evaluate(batches of 8, 8 and 3)['accuracy']",
                 hint="the fraction of all 19 examples whose argmax is the label")


# -- resuming ---------------------------------------------------------------------------------

RESUME_RUN = dict(dropout=0.3, adam=True, lr=0.01, clip=0.3, schedule=(0.01, 3, 12, 0.001), masks=MASKS)


def build_trainer(seed):
    """Dropout, Adam, a schedule and clipping: every piece of state matters."""
    model = make_model(seed, dropout=0.3)
    optimizer = Adam(model.parameters(), lr=0.01)
    schedule = CosineWarmupSchedule(optimizer, base_lr=0.01, warmup_steps=3, total_steps=12, min_lr=0.001)
    return Trainer(model, optimizer, CrossEntropyLoss(), schedule=schedule, clip_norm=0.3)


def test_resume_from_checkpoint_is_exact(tmp_path):
    """Train, save_checkpoint, train on: a fresh trainer that loads the checkpoint continues bit for bit"""
    data = batches_of(*blobs(80, seed=10), size=8)
    path = tmp_path / "run.npz"
    first = build_trainer(seed=0)
    manual_seed(MASKS)
    losses_a = [first.train_step(inputs, targets) for inputs, targets in data[:5]]
    first.save_checkpoint(path)
    losses_a += [first.train_step(inputs, targets) for inputs, targets in data[5:]]

    second = build_trainer(seed=9)  # other initial weights, and the generator elsewhere
    generator().random(17)
    second.load_checkpoint(path)
    expect_equal((second.epoch, second.step), (0, 5), call="(trainer.epoch, trainer.step) after load_checkpoint",
                 hint="restore the counters")
    losses_b = [second.train_step(inputs, targets) for inputs, targets in data[5:]]
    expect_close(losses_a, [loss for loss, _ in hand_written(0, (80, 10, 8), **RESUME_RUN)[0]], rtol=1e-5,
                 call="the 10 losses of the uninterrupted run (dropout, Adam, schedule, clip_norm)",
                 hint="train_step: forward, loss, zero_grad, backward, clip, step, schedule step")
    expect_that((losses_b, losses_a[5:]), same_pair,
                call="(losses of the 5 steps after resuming, those of the uninterrupted run)",
                expected="identical, bit for bit",
                hint="resuming exactly needs the model, the optimizer state, the schedule position, the counters "
                     "and the random generator's state (dropout masks)")
    expect_that((parameters_of(second.model), parameters_of(first.model)), same_pair,
                call="(parameters after resuming and 5 more steps, those of the uninterrupted run)",
                expected="identical, bit for bit",
                hint="resuming exactly needs model, optimizer moments, schedule position and RNG state")
    expect_close(second.optimizer.lr, closed_form_lr(10, 0.01, 3, 12, 0.001), rtol=1e-12,
                 call="optimizer.lr after resuming at step 5 and 5 more steps", hint="save and load the schedule's state")


def test_checkpoint_holds_everything(tmp_path):
    """save_checkpoint writes model, optimizer moments, schedule, counters and the generator's state"""
    data = batches_of(*blobs(16, seed=11), size=8)
    trainer = build_trainer(seed=3)
    manual_seed(MASKS)
    for inputs, targets in data:
        trainer.train_step(inputs, targets)
    rng_state = generator().bit_generator.state
    path = tmp_path / "ckpt.npz"
    trainer.save_checkpoint(path)
    state = load_state(path)
    expect_equal(sorted(state), ["epoch", "history", "model", "optimizer", "rng", "schedule", "step"],
                 call="sorted(load_state(trainer.save_checkpoint(path)))",
                 hint="state_dict() gathers model, optimizer, schedule, epoch, step, history, rng")
    expect_that((state["rng"], rng_state), same_pair,
                call="(load_state(checkpoint)['rng'], generator().bit_generator.state when it was saved)",
                expected="the same", hint="save generator().bit_generator.state, the generator's complete state")
    expect_equal(state["rng"], hand_written(3, (16, 11, 8), **RESUME_RUN)[1], call="load_state(checkpoint)['rng']",
                 hint="the generator's state after the two steps' dropout masks")
    expect_equal((state["step"], state["epoch"], state["schedule"]["current_step"]), (2, 0, 2),
                 call="load_state(checkpoint): (step, epoch, schedule['current_step'])",
                 hint="the number of optimizer steps taken, and the schedule's position")
    with np.load(path, allow_pickle=False) as npz:
        stored = sum(npz[key].size for key in npz.files if key != "__structure__")
        weight = npz["model/0.weight"] if "model/0.weight" in npz.files else None
    expect_that(stored, at_least, 3 * 131, call="numbers stored in an Adam checkpoint (np.load(..., allow_pickle=False))",
                expected="at least 3 x 131 (the parameters and Adam's two moments)",
                hint="save the optimizer's state_dict, moments included, not just the model")
    expect_close(weight, hand_written(3, (16, 11, 8), **RESUME_RUN)[0][-1][1][0], rtol=1e-5, atol=1e-7,
                 call="np.load(checkpoint)['model/0.weight']",
                 hint="the model's state_dict goes under 'model', one array per parameter name")


def test_state_dict_is_a_snapshot():
    """Trainer.state_dict() is a snapshot: training on changes neither its history nor its arrays"""
    data = Batches(batches_of(*blobs(16, seed=12), size=8))
    trainer = build_trainer(seed=4)
    manual_seed(MASKS)
    trainer.fit(data, epochs=1)
    snapshot = trainer.state_dict()
    history, weight = [dict(r) for r in snapshot["history"]], snapshot["model"]["0.weight"].copy()
    exp_avg = {index: {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in entry.items()}
               for index, entry in snapshot["optimizer"]["state"].items()}
    trainer.fit(data, epochs=1)
    expect_equal(len(snapshot["history"]), 1, call="len(state_dict()['history']) after one more epoch of training",
                 hint="state_dict() must copy the history (copy.deepcopy), not hand out the live list")
    expect_that((snapshot["history"], history), same_pair,
                call="(state_dict()['history'] after one more epoch, a copy taken when it was made)",
                expected="the same records", hint="copy the history: training on must not change a snapshot")
    expect_that((snapshot["model"]["0.weight"], weight), same_pair,
                call="(state_dict()['model']['0.weight'] after one more epoch, a copy taken when it was made)",
                expected="the same array", hint="a snapshot holds copies of the parameters")
    expect_that((snapshot["optimizer"]["state"], exp_avg), same_pair,
                call="(state_dict()['optimizer']['state'] after one more epoch, a copy taken when it was made)",
                expected="the same moments and step counts",
                hint="copy the optimizer's state_dict (copy.deepcopy), in case it hands out its live arrays")
    expect_close(weight, hand_written(4, (16, 12, 8), **RESUME_RUN)[0][1][1][0], rtol=1e-5, atol=1e-7,
                 call="state_dict()['model']['0.weight'] after one epoch of 2 steps",
                 hint="the model's weights after the first epoch")
    other = build_trainer(seed=5)
    other.load_state_dict(snapshot)
    other.fit(data, epochs=1)
    expect_equal((len(other.history), len(snapshot["history"])), (2, 1),
                 call="(len(trainer.history), len(snapshot['history'])) after load_state_dict(snapshot) and one epoch",
                 hint="load_state_dict copies the history too: the trainer appends to its own list, never to the "
                      "snapshot's")
