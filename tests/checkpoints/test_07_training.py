"""Checkpoint 07: training loop, learning-rate schedule, gradient clipping, checkpoints.

Oracles: the closed form of warm-up + cosine and PyTorch's LinearLR -> CosineAnnealingLR;
torch.nn.utils.clip_grad_norm_ in float64; known logits for accuracy; exact round trips of
states through .npz files read with allow_pickle=False; the five hand-written lines of a
training loop (bit-for-bit equal to Trainer.train_step); and a run resumed from a checkpoint,
with dropout, Adam, a schedule and clipping, continuing bit for bit like the uninterrupted run.
"""

from __future__ import annotations

import json
import math
import warnings
from types import SimpleNamespace

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.expect import expect_close, expect_equal, expect_raises, expect_true
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


# -- helpers ----------------------------------------------------------------------------------


def closed_form_lr(step, base, warmup, total, minimum):
    """The schedule of the lesson, written out independently."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / (total - warmup))
    return minimum + (base - minimum) * (1 + math.cos(math.pi * progress)) / 2


def make_model(seed, dropout=0.0):
    """A small classifier 4 -> 16 -> 3, with optional dropout, initialised from `seed`."""
    manual_seed(seed)
    layers = [Linear(4, 16), ReLU()]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Linear(16, 3))
    return Sequential(*layers)


def blobs(n, seed):
    """n points in 4-D, three classes whose means differ; float32 inputs, int64 labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    centers = np.array([[2.0, 0.0, 0.0, 1.0], [-1.0, 2.0, 0.0, -1.0], [-1.0, -2.0, 1.0, 0.0]])
    points = centers[labels] + rng.normal(0.0, 0.7, size=(n, 4))
    return points.astype(np.float32), labels.astype(np.int64)


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


def expect_same_parameters(got_model, expected, call, hint):
    got = parameters_of(got_model)
    expect_equal(len(got), len(expected), call=call + " (number of parameters)", hint=hint)
    for index, (g, e) in enumerate(zip(got, expected)):
        expect_equal(g, e, call=f"{call}: parameter {index}", hint=hint)


# -- the learning-rate schedule ---------------------------------------------------------------


def test_warmup_is_linear_from_base_over_warmup():
    """Warm-up: step s < W has lr base_lr * (s + 1) / W, from base_lr / W up to base_lr"""
    schedule = CosineWarmupSchedule(SimpleNamespace(lr=None), base_lr=0.2, warmup_steps=5, total_steps=50)
    for step, expected in enumerate([0.04, 0.08, 0.12, 0.16, 0.2]):
        expect_close(schedule.lr_at(step), expected, rtol=1e-12,
                     call=f"CosineWarmupSchedule(base_lr=0.2, warmup_steps=5, total_steps=50).lr_at({step})",
                     hint="during warm-up lr = base_lr * (step + 1) / warmup_steps: the first step already learns")


def test_cosine_decay_closed_form():
    """After warm-up the lr follows a half cosine from base_lr to min_lr at total_steps, then stays"""
    base, warmup, total, minimum = 0.5, 3, 43, 0.02
    schedule = CosineWarmupSchedule(SimpleNamespace(lr=None), base_lr=base, warmup_steps=warmup,
                                    total_steps=total, min_lr=minimum)
    call = "CosineWarmupSchedule(base_lr=0.5, warmup_steps=3, total_steps=43, min_lr=0.02).lr_at"
    known = {3: base, 23: (base + minimum) / 2, 43: minimum, 44: minimum, 1000: minimum}
    for step, expected in known.items():
        expect_close(schedule.lr_at(step), expected, rtol=1e-12, call=f"{call}({step})",
                     hint="progress = (step - W) / (T - W); lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * "
                          "progress)) / 2: base_lr at W, the midpoint halfway, min_lr from T on")
    for step in (4, 13, 30, 42):
        expect_close(schedule.lr_at(step), closed_form_lr(step, base, warmup, total, minimum), rtol=1e-12,
                     call=f"{call}({step})", hint="the cosine part: min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2")
    got = schedule.lr_at(13)
    expect_true(isinstance(got, float), call=f"type({call}(13))", expected="float", got=type(got).__name__,
                hint="return a plain Python float")


def test_schedule_writes_lr_like_torch():
    """Constructing and stepping the schedule writes into optimizer.lr what torch's LinearLR + CosineAnnealingLR give"""
    base, warmup, total, minimum = 3e-3, 5, 37, 1e-4
    optimizer = SimpleNamespace(lr=123.0)
    schedule = CosineWarmupSchedule(optimizer, base_lr=base, warmup_steps=warmup, total_steps=total, min_lr=minimum)

    parameter = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    torch_optimizer = torch.optim.SGD([parameter], lr=base)
    warm = torch.optim.lr_scheduler.LinearLR(torch_optimizer, start_factor=1 / warmup, end_factor=1.0,
                                             total_iters=warmup - 1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(torch_optimizer, T_max=total - warmup, eta_min=minimum)
    torch_schedule = torch.optim.lr_scheduler.SequentialLR(torch_optimizer, [warm, cosine], milestones=[warmup])
    for step in range(total + 1):
        expected = torch_optimizer.param_groups[0]["lr"]
        action = "CosineWarmupSchedule(optimizer, 3e-3, 5, 37, 1e-4)" + ("" if step == 0 else f", then step() x{step}")
        expect_close(optimizer.lr, expected, rtol=1e-10, call=f"optimizer.lr after {action}",
                     hint="the constructor writes lr_at(0) into optimizer.lr; each step() advances one step "
                          "and writes lr_at(new step)")
        torch_optimizer.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch_schedule.step()
        schedule.step()


def test_schedule_state_dict_resumes():
    """A schedule's state_dict is plain numbers; loading it into a fresh schedule continues the same curve"""
    first_optimizer = SimpleNamespace(lr=None)
    first = CosineWarmupSchedule(first_optimizer, base_lr=0.1, warmup_steps=4, total_steps=30, min_lr=0.001)
    for _ in range(9):
        first.step()
    state = first.state_dict()
    text = json.dumps(state)  # plain numbers: any file format can store them
    second_optimizer = SimpleNamespace(lr=None)
    second = CosineWarmupSchedule(second_optimizer, base_lr=1.0, warmup_steps=1, total_steps=2)
    second.load_state_dict(json.loads(text))
    expect_close(second_optimizer.lr, first_optimizer.lr, rtol=1e-15,
                 call="fresh schedule .load_state_dict(state of a schedule after 9 steps); optimizer.lr",
                 hint="load_state_dict restores settings and position and writes lr_at(current step) into the optimizer")
    for extra in range(1, 6):
        first.step()
        second.step()
        expect_close(second_optimizer.lr, first_optimizer.lr, rtol=1e-15,
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
    """clip_grad_norm returns the same norm and leaves the same gradients as torch's clip_grad_norm_"""
    grads = list(grads)
    grads.insert(min(none_at, len(grads)), None)  # a parameter without a gradient is skipped
    params = with_grads(grads)
    torch_params = []
    for grad in grads:
        torch_param = torch.zeros(1 if grad is None else grad.shape, dtype=torch.float64, requires_grad=True)
        torch_param.grad = None if grad is None else torch.tensor(grad.copy())
        torch_params.append(torch_param)
    expected_norm = torch.nn.utils.clip_grad_norm_(torch_params, max_norm)
    shapes = [None if g is None else g.shape for g in grads]
    call = f"clip_grad_norm(parameters with grads of shapes {shapes}, max_norm={max_norm})"
    norm = clip_grad_norm(params, max_norm)
    expect_close(norm, float(expected_norm), rtol=1e-10, call=call + " (the returned norm)",
                 hint="the global L2 norm: sqrt of the sum of squares of every gradient, measured before clipping")
    for index, (param, torch_param) in enumerate(zip(params, torch_params)):
        if torch_param.grad is None:
            expect_true(param.grad is None, call=call + f": parameter {index}.grad", expected="None",
                        got=repr(param.grad), hint="parameters without a gradient are skipped")
        else:
            expect_close(param.grad, torch_param.grad, rtol=1e-10, atol=1e-12,
                         call=call + f": parameter {index}.grad after clipping",
                         hint="scale every gradient by the same factor max_norm / (norm + 1e-6), only when it is below 1")


def test_clip_known_values_in_place():
    """Gradients (3, 4) and (12,) have norm 13: clipping to 6.5 halves both in place; below the threshold nothing changes"""
    first, second = with_grads([np.array([3.0, 4.0], dtype=np.float32), np.array([12.0], dtype=np.float32)])
    grad_objects = (first.grad, second.grad)
    norm = clip_grad_norm([first, second], 6.5)
    expect_close(norm, 13.0, rtol=1e-7, call="clip_grad_norm(grads [3, 4] and [12], max_norm=6.5)",
                 hint="sqrt(3^2 + 4^2 + 12^2) = 13, over all gradients together")
    scale = 6.5 / (13.0 + 1e-6)
    expect_close(first.grad, np.array([3.0, 4.0]) * scale, rtol=1e-6, call="first .grad after clipping to 6.5",
                 hint="every gradient is multiplied by max_norm / (norm + 1e-6)")
    expect_close(second.grad, np.array([12.0]) * scale, rtol=1e-6, call="second .grad after clipping to 6.5",
                 hint="the same factor for every gradient: global clipping keeps the direction")
    expect_true(first.grad is grad_objects[0] and second.grad is grad_objects[1],
                call="p.grad after clip_grad_norm", expected="the same Tensor objects, holding scaled numbers",
                got="new Tensor objects", hint="change the numbers inside each p.grad in place")
    expect_equal(str(first.grad.dtype), "float32", call="first .grad dtype after clipping",
                 hint="keep each gradient's dtype")

    small = with_grads([np.array([0.3, -0.4]), np.array([[1.2]])])
    before = [p.grad.data.copy() for p in small]
    norm = clip_grad_norm(small, 1.5)
    expect_close(norm, 1.3, rtol=1e-12, call="clip_grad_norm(grads [0.3, -0.4] and [[1.2]], max_norm=1.5)",
                 hint="return the norm even when no clipping is needed")
    for index, (param, original) in enumerate(zip(small, before)):
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
    expect_true(isinstance(got, float), call="type(accuracy(...))", expected="float", got=type(got).__name__,
                hint="return a plain Python float")
    expect_close(accuracy(logits, targets), 0.6, rtol=1e-12, call="accuracy(numpy logits, numpy targets)",
                 hint="accept numpy arrays as well as Tensors")


def test_accuracy_one_column_thresholds_at_zero():
    """With one output column a logit above 0 predicts class 1"""
    logits = Tensor(np.array([[-1.0], [2.0], [0.5], [-3.0]]))
    got = accuracy(logits, np.array([0, 1, 0, 0]))
    expect_close(got, 0.75, rtol=1e-12, call="accuracy(logits [[-1], [2], [0.5], [-3]], targets [0, 1, 0, 0])",
                 hint="one column: predict 1 where the logit is > 0 (probability above 0.5), else 0")
    got = accuracy(logits, np.array([[0.0], [1.0], [1.0], [0.0]]))
    expect_close(got, 1.0, rtol=1e-12, call="accuracy(same logits, targets [[0], [1], [1], [0]] as floats)",
                 hint="0/1 targets may come as floats and in shape (N, 1)")


# -- checkpoint files -------------------------------------------------------------------------


def expect_same_state(got, expected, path="state"):
    """Equal values of equal types, recursively."""
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
        expect_equal(str(got.dtype), str(expected.dtype), call=f"{path}.dtype after save_state/load_state",
                     hint="arrays keep their dtype")
        expect_equal(np.asarray(got), np.asarray(expected), call=f"{path} after save_state/load_state", hint="")
        expect_equal(np.shape(got), np.shape(expected), call=f"{path}.shape after save_state/load_state", hint="")
    else:
        expect_equal(got, expected, call=f"{path} after save_state/load_state",
                     hint="plain numbers and strings go into the JSON structure and come back exactly")


def test_state_round_trip(tmp_path):
    """save_state then load_state returns the same nested state: arrays, numpy numbers, tuples, integer keys"""
    state = {
        "model": {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3) / 7, "0.bias": np.zeros(2, np.float32)},
        "optimizer": {"lr": 0.1 + 0.2, "eps": np.float64(1e-8), "betas": (0.9, 0.999), "state": {0: {"step": np.int64(3),
                      "exp_avg": np.linspace(-1, 1, 4)}, 1: {"flags": np.array([True, False])}}},
        "schedule": None,
        "epoch": 2, "big": 2 ** 90, "name": "run ✓", "done": False,
        "history": [{"epoch": 1, "train_loss": 1.25}, {"epoch": 2, "train_loss": np.float32(0.75)}],
        "empty": np.zeros((0, 3)), "scalar_array": np.array(4.5),
    }
    path = tmp_path / "state.npz"
    save_state(path, state)
    expect_same_state(load_state(path), state)


def test_state_file_layout(tmp_path):
    """A checkpoint is one .npz readable with allow_pickle=False: arrays under path keys, the rest as JSON"""
    weight = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "layout.npz"
    save_state(path, {"model": {"0.weight": weight}, "step": 3})
    files = sorted(p.name for p in tmp_path.iterdir())
    expect_equal(files, ["layout.npz"], call="files in the folder after save_state(folder / 'layout.npz', ...)",
                 hint="write one file at exactly the given path and leave no temporary file behind")
    with np.load(path, allow_pickle=False) as npz:
        keys = list(npz.files)
        expect_true("__structure__" in keys and "model/0.weight" in keys, call="np.load(checkpoint).files",
                    expected="'__structure__' and 'model/0.weight'", got=repr(keys),
                    hint="each array under the path to it, joined by '/'; the JSON text under '__structure__'")
        expect_equal(npz["model/0.weight"], weight, call="np.load(checkpoint)['model/0.weight']",
                     hint="store the array itself")
        document = json.loads(str(npz["__structure__"]))
    expect_equal(document.get("state", {}).get("step"), 3, call="json.loads(checkpoint['__structure__'])['state']['step']",
                 hint="plain numbers live in the JSON structure: {'format': ..., 'version': ..., 'state': ...}")

    expect_raises(TypeError, lambda: save_state(tmp_path / "bad.npz", {"callback": print}),
                  call="save_state(path, {'callback': print})", message_contains="callback",
                  hint="only pickle could store a function: refuse it with a TypeError naming where it was found")
    expect_raises(TypeError, lambda: save_state(tmp_path / "bad.npz", {"mixed": np.array([1, "a", None], dtype=object)}),
                  call="save_state(path, {'mixed': array of Python objects})",
                  hint="an object array can only be stored with pickle: refuse it")


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
    expect_true(path.read_bytes() == original, call="the checkpoint file after a failed save",
                expected="the previous checkpoint, byte for byte", got="a changed file",
                hint="write to a temporary file in the same folder, then os.replace it onto the real name")
    files = sorted(p.name for p in tmp_path.iterdir())
    expect_equal(files, ["run.npz"], call="files in the folder after a failed save",
                 hint="delete the temporary file when saving fails")
    expect_equal(load_state(path)["step"], 1, call="load_state(path)['step'] after a failed save",
                 hint="the old checkpoint must still load")


def test_corrupt_checkpoint_names_the_file(tmp_path):
    """A truncated, corrupt or foreign file raises a ValueError naming the file"""
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
    for bad, what in ((truncated, "the first half of a checkpoint"), (garbage, "text bytes"),
                      (foreign, "a plain np.savez file")):
        expect_raises(ValueError, lambda bad=bad: load_state(bad), call=f"load_state({bad.name!r}) ({what})",
                      message_contains=bad.name,
                      hint="catch whatever reading the file raises and raise a ValueError that names the file")


# -- the Trainer ------------------------------------------------------------------------------


def test_train_step_is_the_five_lines():
    """Trainer.train_step equals forward, loss, zero_grad, backward, step written by hand, bit for bit"""
    data = batches_of(*blobs(24, seed=3), size=8)
    model, twin = make_model(0), make_model(0)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss())
    optimizer, loss_fn = SGD(twin.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss()
    for index, (inputs, targets) in enumerate(data):
        got = trainer.train_step(inputs, targets)
        loss = loss_fn(twin(Tensor(inputs)), Tensor(targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        expect_equal(got, float(loss.item()), call=f"trainer.train_step(batch {index}) (numpy inputs and labels)",
                     hint="return the loss of the forward pass as a Python float")
        expect_same_parameters(model, parameters_of(twin), call=f"parameters after train_step on batch {index}",
                               hint="forward, loss, optimizer.zero_grad(), loss.backward(), optimizer.step(): "
                                    "without zero_grad the gradients of earlier batches pile up")
    expect_equal(trainer.step, 3, call="trainer.step after 3 train_step calls", hint="count every optimizer step")


def test_train_step_clips_then_steps_then_schedules():
    """With clip_norm and a schedule, train_step clips between backward and step and advances the schedule after"""
    data = batches_of(*blobs(40, seed=4), size=8)
    model, twin = make_model(1), make_model(1)
    optimizer = Adam(model.parameters(), lr=0.05)
    schedule = CosineWarmupSchedule(optimizer, base_lr=0.05, warmup_steps=2, total_steps=6)
    trainer = Trainer(model, optimizer, CrossEntropyLoss(), schedule=schedule, clip_norm=0.05)
    twin_optimizer = Adam(twin.parameters(), lr=0.05)
    twin_schedule = CosineWarmupSchedule(twin_optimizer, base_lr=0.05, warmup_steps=2, total_steps=6)
    loss_fn = CrossEntropyLoss()
    for index, (inputs, targets) in enumerate(data):
        trainer.train_step(Tensor(inputs), Tensor(targets))
        loss = loss_fn(twin(Tensor(inputs)), Tensor(targets))
        twin_optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(twin.parameters(), 0.05)
        twin_optimizer.step()
        twin_schedule.step()
        expect_same_parameters(model, parameters_of(twin), call=f"parameters after train_step on batch {index}",
                               hint="order: forward, loss, zero_grad, backward, clip_grad_norm(model.parameters(), "
                                    "clip_norm), optimizer.step(), schedule.step()")
        expect_close(optimizer.lr, twin_optimizer.lr, rtol=1e-15, call=f"optimizer.lr after train_step {index}",
                     hint="call schedule.step() once after every optimizer.step()")


def test_fit_learns_and_keeps_records():
    """fit lowers the loss of a small classifier, counts epochs and steps, and reports each epoch"""
    train = Batches(batches_of(*blobs(120, seed=5), size=30))
    val = Batches(batches_of(*blobs(60, seed=6), size=30))
    model = make_model(2, dropout=0.1)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.02), CrossEntropyLoss())
    before = trainer.evaluate(val)
    seen = []
    records = trainer.fit(train, epochs=12, val_batches=val, on_epoch=lambda epoch, record: seen.append((epoch, record)))
    expect_equal(len(records), 12, call="len(trainer.fit(train, epochs=12, ...))", hint="one record per epoch")
    expect_equal([epoch for epoch, _ in seen], list(range(1, 13)), call="epochs passed to on_epoch(epoch, record)",
                 hint="call on_epoch after every epoch with the number of epochs finished")
    expect_true(all(record is seen_record for record, (_, seen_record) in zip(records, seen)),
                call="records passed to on_epoch", expected="the records fit returns", got="other objects",
                hint="pass each epoch's record to on_epoch")
    expect_equal((trainer.epoch, trainer.step), (12, 48), call="(trainer.epoch, trainer.step) after fit(4 batches, 12 epochs)",
                 hint="epoch counts finished epochs, step counts optimizer steps")
    expect_true(trainer.history == records, call="trainer.history after one fit", expected="the records fit returned",
                got=repr(trainer.history)[:200], hint="append every record to trainer.history")
    last = records[-1]
    for key in ("epoch", "step", "train_loss", "lr", "val_loss", "val_accuracy"):
        expect_true(key in last, call="trainer.fit(...)[-1]", expected=f"a record with key {key!r}",
                    got=repr(sorted(last)), hint="record epoch, step, train_loss, lr, and val_loss/val_accuracy with validation batches")
    expect_true(last["train_loss"] < 0.5 * records[0]["train_loss"], call="train_loss of the last vs the first epoch",
                expected="less than half", got=f"{records[0]['train_loss']:.4f} -> {last['train_loss']:.4f}",
                hint="each train_step must update the parameters (zero_grad, backward, step)")
    expect_true(last["val_loss"] < before["loss"] and last["val_accuracy"] >= 0.9,
                call="validation loss and accuracy after 12 epochs",
                expected=f"loss below the initial {before['loss']:.4f}, accuracy >= 0.9",
                got=f"loss {last['val_loss']:.4f}, accuracy {last['val_accuracy']:.3f}",
                hint="the three classes are easy to separate; check evaluate and the training loop")


def test_train_epoch_mean_loss_in_training_mode():
    """train_epoch switches to training mode, steps on every batch and returns the mean of the step losses"""
    data = batches_of(*blobs(30, seed=7), size=8)  # batches of 8, 8, 8 and 6
    model, twin = make_model(3), make_model(3)
    model.eval()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.05), CrossEntropyLoss())
    twin_trainer = Trainer(twin, SGD(twin.parameters(), lr=0.05), CrossEntropyLoss())
    losses = [twin_trainer.train_step(inputs, targets) for inputs, targets in data]
    got = trainer.train_epoch(Batches(data))
    expect_close(got, float(np.mean(losses)), rtol=1e-12, call="trainer.train_epoch(4 batches)",
                 hint="return the mean of the losses that train_step returned")
    expect_true(model.training and all(m.training for m in model.modules()),
                call="model.training after train_epoch (the model was in eval mode before)",
                expected="True everywhere", got=str([m.training for m in model.modules()]),
                hint="call model.train() at the start of every epoch")
    expect_equal((trainer.epoch, trainer.step), (1, 4), call="(trainer.epoch, trainer.step) after one train_epoch",
                 hint="one epoch, one step per batch")
    expect_same_parameters(model, parameters_of(twin), call="parameters after train_epoch",
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
    """evaluate runs in eval mode under no_grad, changes no parameter, and restores training mode"""
    model = Probe(make_model(4, dropout=0.5))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.5), CrossEntropyLoss())
    model.train()
    before = parameters_of(model)
    data = batches_of(*blobs(16, seed=8), size=8)
    metrics = trainer.evaluate(Batches(data))
    expect_true(isinstance(metrics, dict) and {"loss", "accuracy"} <= set(metrics), call="trainer.evaluate(batches)",
                expected="a dict with 'loss' and 'accuracy'", got=repr(metrics), hint="return both numbers in a dict")
    expect_equal(len(model.log), 2, call="forward passes during evaluate(2 batches)", hint="one forward per batch")
    for modes, recorded in model.log:
        expect_true(not any(modes), call="model modes seen inside evaluate", expected="training=False everywhere",
                    got=str(modes), hint="call model.eval() before evaluating: dropout must be off")
        expect_true(not recorded, call="output.requires_grad inside evaluate", expected="False (no graph)",
                    got="True", hint="evaluate under `with no_grad():` so that no graph is recorded")
    expect_same_parameters(model, before, call="parameters after evaluate", hint="evaluate never steps the optimizer")
    expect_true(all(p.grad is None for p in model.parameters()), call="p.grad after evaluate",
                expected="None (no backward happened)", got="gradients", hint="evaluate never calls backward")
    expect_true(all(m.training for m in model.modules()), call="model.training after evaluate",
                expected="True everywhere (training mode restored)", got=str([m.training for m in model.modules()]),
                hint="put the model back in the mode it was in (model.train(was_training)), in a finally block")
    expect_equal((trainer.epoch, trainer.step), (0, 0), call="(trainer.epoch, trainer.step) after evaluate",
                 hint="evaluation is not training: the counters do not move")


def test_evaluate_values():
    """evaluate returns the mean loss and the accuracy over all examples"""
    points, labels = blobs(16, seed=9)
    model = make_model(5)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
    metrics = trainer.evaluate(batches_of(points, labels, size=8))
    logits = model(Tensor(points)).data.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected_loss = -log_probs[np.arange(16), labels].mean()
    expected_accuracy = np.mean(logits.argmax(axis=1) == labels)
    expect_close(metrics["loss"], expected_loss, rtol=1e-5, call="trainer.evaluate(2 batches of 8)['loss']",
                 hint="the mean cross-entropy over all 16 examples")
    expect_close(metrics["accuracy"], expected_accuracy, rtol=1e-12, call="trainer.evaluate(2 batches of 8)['accuracy']",
                 hint="the fraction of all 16 examples whose argmax is the label")


# -- resuming ---------------------------------------------------------------------------------


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
    for inputs, targets in data[:5]:
        first.train_step(inputs, targets)
    first.save_checkpoint(path)
    losses_a = [first.train_step(inputs, targets) for inputs, targets in data[5:]]

    second = build_trainer(seed=99)  # other initial weights, and the generator elsewhere
    generator().random(17)
    second.load_checkpoint(path)
    expect_equal((second.epoch, second.step), (0, 5), call="(trainer.epoch, trainer.step) after load_checkpoint",
                 hint="restore the counters")
    losses_b = [second.train_step(inputs, targets) for inputs, targets in data[5:]]
    expect_equal(losses_b, losses_a, call="losses of the 5 steps after resuming vs the uninterrupted run",
                 hint="resuming exactly needs the model, the optimizer state, the schedule position, the counters "
                      "and the random generator's state (dropout masks)")
    expect_same_parameters(second.model, parameters_of(first.model), call="parameters after resuming and 5 more steps",
                           hint="resuming exactly needs model, optimizer moments, schedule position and RNG state")
    expect_close(second.optimizer.lr, first.optimizer.lr, rtol=0, atol=0, call="optimizer.lr after resuming and 5 more steps",
                 hint="save and load the schedule's state")


def test_checkpoint_holds_everything(tmp_path):
    """save_checkpoint writes model, optimizer moments, schedule, counters and the generator's state"""
    data = batches_of(*blobs(16, seed=11), size=8)
    trainer = build_trainer(seed=3)
    for inputs, targets in data:
        trainer.train_step(inputs, targets)
    rng_state = generator().bit_generator.state
    path = tmp_path / "ckpt.npz"
    trainer.save_checkpoint(path)
    state = load_state(path)
    for key in ("model", "optimizer", "schedule", "epoch", "step", "rng"):
        expect_true(key in state, call="load_state(trainer.save_checkpoint(path))", expected=f"a key {key!r}",
                    got=repr(sorted(state)), hint="state_dict() gathers model, optimizer, schedule, epoch, step, history, rng")
    expect_equal(state["rng"], rng_state, call="load_state(checkpoint)['rng']",
                 hint="save generator().bit_generator.state, the generator's complete state")
    expect_equal(state["step"], 2, call="load_state(checkpoint)['step']", hint="the number of optimizer steps taken")
    with np.load(path, allow_pickle=False) as npz:
        stored = sum(npz[key].size for key in npz.files if key != "__structure__")
        weight = npz["model/0.weight"] if "model/0.weight" in npz.files else None
    count = trainer.model.num_parameters()
    expect_true(stored >= 3 * count, call="numbers stored in an Adam checkpoint (np.load(..., allow_pickle=False))",
                expected=f"at least 3 x {count} (parameters + Adam's two moments)", got=str(stored),
                hint="save the optimizer's state_dict, moments included, not just the model")
    expect_equal(weight, trainer.model.parameters()[0].data, call="np.load(checkpoint)['model/0.weight']",
                 hint="the model's state_dict goes under 'model', one array per parameter name")
