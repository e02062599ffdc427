"""Hidden checks for module 07 (training): edge cases beyond the visible checkpoint.

The models, data and oracles come from the visible checkpoint: hand_written (the five lines
written out) and numpy_metrics run only inside the expected argument of expect_* calls, and
same_pair judges relations between two of the student's own values on the trusted side.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import blobs, same_pair
from tests.checkpoints.test_07_training import (
    MASKS,
    Batches,
    batches_of,
    hand_written,
    initial_weights,
    make_model,
    numpy_metrics,
    parameters_of,
)
from tinytorch.training import CosineWarmupSchedule, Trainer, accuracy, clip_grad_norm, load_state, save_state
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD, Adam
from tinytorch.tensor import Tensor, generator, manual_seed


def test_schedule_without_warmup_and_bad_arguments():
    """warmup_steps=0 starts at base_lr and decays at once; impossible settings are ValueErrors"""
    optimizer = SimpleNamespace(lr=None)
    schedule = CosineWarmupSchedule(optimizer, base_lr=1.0, warmup_steps=0, total_steps=10, min_lr=0.2)
    expect_close(optimizer.lr, 1.0, rtol=1e-12, call="CosineWarmupSchedule(opt, 1.0, warmup_steps=0, total_steps=10, "
                 "min_lr=0.2); opt.lr", hint="without warm-up, step 0 is the top of the cosine: base_lr")
    for step in (1, 5, 9, 10, 11):
        expect_close(schedule.lr_at(step), 0.2 + 0.8 * (1 + math.cos(math.pi * min(1.0, step / 10))) / 2, rtol=1e-12,
                     call=f"same schedule .lr_at({step})",
                     hint="progress = (step - warmup_steps) / (total_steps - warmup_steps), at most 1")
    for kwargs in ({"warmup_steps": 10, "total_steps": 10}, {"warmup_steps": -1, "total_steps": 10},
                   {"warmup_steps": 2, "total_steps": 10, "min_lr": 2.0}):
        shown = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        expect_raises(ValueError, lambda kwargs=kwargs: CosineWarmupSchedule(SimpleNamespace(lr=None), base_lr=1.0, **kwargs),
                      call=f"CosineWarmupSchedule(opt, base_lr=1.0, {shown})",
                      hint="check the arguments: 0 <= warmup_steps < total_steps, 0 <= min_lr <= base_lr")
    expect_raises(ValueError, lambda: schedule.lr_at(-1), call="schedule.lr_at(-1)", hint="a negative step is an error")


def test_clip_takes_any_iterable_and_keeps_float32():
    """clip_grad_norm accepts a generator of parameters, skips missing grads and keeps float32 gradients"""
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 2)).astype(np.float32), None, rng.normal(size=(4,)).astype(np.float32)]
    params = []
    for grad in grads:
        param = Tensor(np.zeros((1,) if grad is None else grad.shape, dtype=np.float32), requires_grad=True)
        param.grad = None if grad is None else Tensor(grad.copy())
        params.append(param)
    norm = clip_grad_norm((p for p in params), 0.1)
    expected_norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads if g is not None))
    expect_close(norm, expected_norm, rtol=1e-6, call="clip_grad_norm((p for p in params), 0.1)",
                 hint="go through the iterable once: a generator cannot be read twice")
    for index, (param, grad) in enumerate(zip(params, grads)):
        if grad is None:
            expect_equal(param.grad, None, call=f"params[{index}].grad", hint="skip parameters without a gradient")
            continue
        expect_equal(str(param.grad.dtype), "float32", call=f"params[{index}].grad.dtype after clipping",
                     hint="keep each gradient's dtype")
        expect_close(param.grad, grad * (0.1 / (expected_norm + 1e-6)), rtol=1e-5,
                     call=f"params[{index}].grad after clipping (generator input)",
                     hint="every gradient is scaled, even when the parameters come from a generator")
    expect_close(clip_grad_norm([Tensor(np.zeros(2), requires_grad=True)], 1.0), 0.0, atol=0,
                 call="clip_grad_norm([a parameter with grad None], 1.0)", hint="no gradients: the norm is 0.0")


def test_accuracy_more_target_forms():
    """accuracy reads 1-D logits, one-hot targets, and refuses targets that do not fit"""
    expect_close(accuracy(np.array([0.3, -0.2, 2.0]), np.array([1, 1, 1])), 2 / 3, rtol=1e-12,
                 call="accuracy(logits [0.3, -0.2, 2.0], targets [1, 1, 1])", hint="1-D logits: one binary score per example")
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.4]])
    one_hot = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    expect_close(accuracy(logits, one_hot), 2 / 3, rtol=1e-12, call="accuracy(logits (3, 2), one-hot targets (3, 2))",
                 hint="targets of the logits' shape are one-hot or probabilities: compare argmax with argmax")
    expect_raises(ValueError, lambda: accuracy(np.zeros((4, 3)), np.zeros(5, dtype=np.int64)),
                  call="accuracy(logits (4, 3), targets (5,))", hint="one target per example: name both shapes")


def test_evaluate_weights_examples_and_keeps_eval_mode():
    """evaluate weights batches by size (a short last batch counts less) and leaves an eval-mode model in eval mode"""
    points, labels = blobs(11, seed=21)
    model = make_model(6, dropout=0.5)
    trainer = Trainer(model, Adam(model.parameters()), CrossEntropyLoss())
    model.eval()
    split = trainer.evaluate([(points[:8], labels[:8]), (points[8:], labels[8:])])
    expect_close(split["loss"], numpy_metrics(initial_weights(6), points, labels)[0], rtol=1e-5,
                 call="evaluate(batches of 8 and 3)['loss']",
                 hint="weight each batch's mean loss by its number of examples")
    expect_close(split["accuracy"], numpy_metrics(initial_weights(6), points, labels)[1], rtol=1e-12,
                 call="evaluate(batches of 8 and 3)['accuracy']",
                 hint="count correct examples over all batches, then divide by the number of examples")
    modes = [m.training for m in model.modules()]
    expect_equal(modes, [False] * len(modes), call="[m.training for m in model.modules()] after evaluate of a model "
                 "in eval mode", hint="restore the mode the model was in, not always train()")
    expect_raises(ValueError, lambda: trainer.evaluate([]), call="trainer.evaluate([])",
                  hint="no examples to evaluate is an error, not a division by zero")


SNAPSHOT_RUN = dict(dropout=0.4, adam=True, lr=0.01, clip=0.5, schedule=(0.01, 2, 16, 0.0), masks=MASKS)


def build(seed):
    model = make_model(seed, dropout=0.4)
    optimizer = Adam(model.parameters(), lr=0.01)
    schedule = CosineWarmupSchedule(optimizer, base_lr=0.01, warmup_steps=2, total_steps=16)
    return Trainer(model, optimizer, CrossEntropyLoss(), schedule=schedule, clip_norm=0.5)


def test_in_memory_state_dict_is_a_snapshot():
    """Trainer.state_dict is a snapshot: after more training, loading it resumes exactly, history and generator included"""
    data = batches_of(*blobs(32, seed=13), size=8)
    trainer = build(7)
    manual_seed(MASKS)
    trainer.fit(data, epochs=2)
    snapshot = trainer.state_dict()
    next_random = generator().random()
    generator().bit_generator.state = snapshot["rng"]
    records = trainer.fit(data, epochs=2)
    final = parameters_of(trainer.model)

    other = build(8)
    other.fit(data[:1], epochs=1)
    other.load_state_dict(snapshot)
    expect_that((generator().random(), next_random), same_pair,
                call="(generator().random() right after load_state_dict(snapshot), the draw right after the snapshot)",
                expected="the same number", hint="restore generator().bit_generator.state from state['rng']")
    generator().bit_generator.state = snapshot["rng"]
    expect_equal((other.epoch, other.step, len(other.history)), (2, 8, 2),
                 call="(epoch, step, len(history)) after load_state_dict of a snapshot taken after 2 epochs",
                 hint="restore the counters and the history saved in the snapshot, not the live ones")
    other_records = other.fit(data, epochs=2)
    expect_that(([r["train_loss"] for r in other_records], [r["train_loss"] for r in records]), same_pair,
                call="(train losses of 2 epochs after load_state_dict(snapshot), those of the run that went on)",
                expected="identical, bit for bit",
                hint="state_dict must copy what it returns: training on must not change a saved snapshot")
    expect_that((parameters_of(other.model), final), same_pair,
                call="(parameters after resuming from the in-memory snapshot, those of the run that went on)",
                expected="identical, bit for bit",
                hint="model, optimizer moments, schedule and counters must all come from the snapshot")
    expect_close([r["train_loss"] for r in records],
                 [np.mean([loss for loss, _ in hand_written(7, (32, 13, 8), epochs=4, **SNAPSHOT_RUN)[0][4 * e:4 * e + 4]])
                  for e in (2, 3)], rtol=1e-5, call="train losses of epochs 3 and 4",
                 hint="the five lines with clipping, the schedule and dropout masks from the generator")


def test_fit_twice_and_load_state_dict_errors():
    """A second fit continues the counters and history; load_state_dict refuses a state that does not fit"""
    data = Batches(batches_of(*blobs(16, seed=14), size=8))
    model = make_model(9)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
    trainer.fit(data, epochs=1)
    second = trainer.fit(data, epochs=2)
    expect_equal([(r["epoch"], r["step"]) for r in second], [(2, 4), (3, 6)],
                 call="[(epoch, step) of each record] of the second fit(epochs=2)",
                 hint="fit continues the counters and returns only this call's records")
    expect_equal(len(trainer.history), 3, call="len(trainer.history) after fit(1 epoch) and fit(2 epochs)",
                 hint="history keeps every record of every fit")
    expect_close(second[-1]["train_loss"],
                 np.mean([loss for loss, _ in hand_written(9, (16, 14, 8), epochs=3)[0][4:]]), rtol=1e-6,
                 call="the last record's train_loss", hint="the mean step loss of the third epoch")
    expect_raises(KeyError, lambda: trainer.load_state_dict({"model": model.state_dict()}),
                  call="trainer.load_state_dict({'model': ...}) (no optimizer, counters or rng)",
                  hint="say which keys are missing before changing anything")
    scheduled = build(10)
    plain = scheduled.state_dict()
    plain["schedule"] = None
    expect_raises(ValueError, lambda: scheduled.load_state_dict(plain),
                  call="trainer with a schedule .load_state_dict(state saved without one)",
                  hint="a trainer with a schedule cannot resume from a state that has none")


def test_state_paths_that_collide(tmp_path):
    """Arrays whose paths collide, or are named like np.savez's own arguments, still round-trip"""
    state = {"a/b": np.arange(3), "a": {"b": np.ones(2)}, "file": np.zeros(4), "allow_pickle": np.full(1, 7.0),
             "__structure__": np.eye(2)}
    path = tmp_path / "collide.npz"
    save_state(path, state)
    got = load_state(path)
    expect_equal(list(got), list(state), call="keys of load_state(save_state(path, state))",
                 hint="keys starting with '__' need the __dict__ tag; every key comes back")
    for key, value in (("a/b", np.arange(3)), ("file", np.zeros(4)), ("allow_pickle", np.full(1, 7.0)),
                       ("__structure__", np.eye(2))):
        expect_equal(got[key], value, call=f"load_state(...)[{key!r}]",
                     hint="_array_key gives every array a key not taken yet, never np.savez's own argument names "
                          "nor '__structure__'")
    expect_equal(got["a"]["b"], np.ones(2), call="load_state(...)['a']['b']",
                 hint="the path 'a/b' is taken twice: the second array needs another key")
