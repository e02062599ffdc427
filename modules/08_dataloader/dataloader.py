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
# # Module 08: Data: Dataset, DataLoader, splits
#
# Module 07's `Trainer.train_epoch(batches)` takes "any re-iterable of (inputs, targets)
# pairs", and so far we handed it a list of slices built by hand. Real training needs more
# from that iterable: a fresh random order every epoch, batches of a fixed size, an order
# that repeats when you ask it to, a validation set carved off the training data, and all of
# it fast enough to push 50,000 MNIST images through every epoch without the data being the
# slow part. This module builds the four pieces PyTorch uses for that job
# (`torch.utils.data`), with the same names:
#
# - `Dataset`: anything with a length that returns one sample by index,
# - `TensorDataset`: a dataset made of arrays that share their first axis,
# - `DataLoader`: cuts a dataset into shuffled mini-batches of Tensors, epoch after epoch,
# - `Subset`, `random_split`, `train_val_split`: disjoint parts of a dataset.
#
# One idea runs through the module: **ask the data for a whole batch at once**. A Python loop
# over 50,000 samples costs more than the matrix multiplications of a small network; one
# numpy fancy-index per batch costs almost nothing. The systems insight at the end measures
# the difference.

# %%
from __future__ import annotations

import math
import numbers
from typing import Any, Iterator, Sequence

import numpy as np

from tinytorch.tensor import Tensor, generator

# %% [markdown]
# ## 1. Why mini-batches?
#
# Training minimises the *average* loss over the training set. Its gradient is the average of
# one gradient per example, so there are two extremes:
#
# - **full batch**: average over all 50,000 examples before every step. The direction is
#   exact, but one step costs a pass over the whole data set, and you get one step per epoch.
# - **one example per step** (batch size 1): 50,000 steps per epoch, but each step follows
#   the gradient of a single example, a very noisy estimate of the true direction.
#
# A **mini-batch** of `B` examples sits in between. Its gradient is an average of `B`
# independent estimates, so its noise (standard deviation) shrinks like `1 / sqrt(B)`: 64
# examples give a direction 8 times less noisy than one example, at 64 times the arithmetic.
# And that arithmetic is nearly free on the hardware: a batch is stacked into one matrix of
# shape `(B, features)`, so the forward pass of a `Linear` layer is *one* matrix
# multiplication `(B, in) @ (in, out)` instead of `B` vector products, and a matrix product
# uses the CPU's vector units and caches far better than many small ones. A little noise is
# even welcome: it helps to escape flat regions and sharp minima that generalise badly.
# Typical batch sizes are 32 to 512.
#
# ## 2. Why shuffle every epoch?
#
# Data sets are often stored in order: all the 0s, then all the 1s, ... A network trained on
# batches in that order spends a thousand steps learning "everything is a 0", then a thousand
# forgetting it. Gradient descent on mini-batches assumes each batch is a fair random sample of
# the data; shuffling makes that true. And the order must change **every epoch**: with one
# fixed permutation, the same examples would meet in the same batches and the same order each
# time, and the noise of the steps would repeat instead of averaging out.
#
# Validation and test data are *not* shuffled: evaluation gives the same answer in any order,
# and a fixed order is easier to debug.
#
# ## 3. Why `drop_last`?
#
# 50,000 images in batches of 64 make 781 full batches and one of 16. The short batch is
# legal, but its gradient is 2 times noisier than the rest (`sqrt(64 / 16)`), and some layers
# behave badly with tiny batches (batch normalisation estimates a mean and variance from the
# batch itself). `drop_last=True` skips it. Because the order is reshuffled every epoch, the
# dropped examples are different ones each time, so nothing is lost for good. Evaluation
# keeps the last batch: every example must be counted.
#
# ## 4. Reproducibility: seeds
#
# A shuffled run is random, and a random run that cannot be repeated cannot be debugged. Two
# ways to control the order:
#
# - `DataLoader(..., shuffle=True, seed=7)`: the loader owns a generator
#   `np.random.default_rng(7)`, made once, and draws one permutation from it per epoch. Two
#   loaders with the same seed give the same sequence of epochs; successive epochs differ,
#   because the generator moves on. Nothing else in the program can disturb it.
# - no seed: the permutation is drawn from tinytorch's generator, `generator()` of module 01,
#   *at the moment the epoch starts*. `manual_seed(0)` then fixes the order, together with the
#   initial weights and the dropout masks, and module 07's checkpoints, which save the state of
#   that generator, resume with the very same next epoch. Note that `manual_seed` *replaces*
#   the generator object, so the loader must call `generator()` each epoch and never keep the
#   object it got the first time.

# %% [markdown]
# ## 5. Dataset: samples by index, and batches by indices
#
# A `Dataset` is the smallest contract that describes data: `len(dataset)` samples, and
# `dataset[i]`, the `i`-th sample, a tuple of fields such as `(image, label)`. A data set of
# files on disk, of generated examples or of rows of an array all fit it.
#
# To build a batch from such a dataset, the loader needs `get_batch(indices)`: for an array
# of `B` indices, a tuple with one array per field, each with the batch as its first axis.
# The base class can always do it the slow way: ask for each sample, then stack field by
# field (`np.stack` of `B` arrays of shape `(28, 28)` is one array of shape `(B, 28, 28)`).
# Each field goes through `Tensor(value).data` first, so a batch follows module 01's dtype
# rule: Python floats become float32, Python ints int64, numpy arrays and numbers keep their
# dtype, and a Tensor field gives its numbers. A sample that is a single value rather than a
# tuple counts as a tuple of one field.
#
# A dataset that can do better **overrides** `get_batch`. That is the fast path of the next
# section.

# %% nbgrader={"grade": false, "grade_id": "dataset", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Dataset:
    """Samples by index. Subclasses define __len__ and __getitem__, and may override get_batch."""

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__, the number of samples")

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__, one sample by index")

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """The samples at `indices`, stacked: one array per field, first axis len(indices)."""
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 6. TensorDataset: the fast path
#
# When the whole data set fits in memory as arrays, `inputs` of shape `(N, 784)` and
# `labels` of shape `(N,)`, sample `i` is row `i` of every array. `TensorDataset(*arrays)`
# stores them (a Tensor is stored as its numpy array; anything else goes through `Tensor` so
# that the dtype rule is the same everywhere) and checks that every array has the same first
# dimension, the number of samples. If not, the error must say which lengths disagree: a
# mismatch between 50,000 images and 10,000 labels is a bug worth a clear message.
#
# Then `get_batch(indices)` needs no loop at all. numpy's *fancy indexing*, `array[indices]`
# with an integer array, gathers the rows at those indices into a new array in one call,
# written in C:
#
# ```python
# images[np.array([7, 2, 7])]   # shape (3, 784): rows 7, 2 and 7 again
# ```
#
# That is one call per field per batch, instead of one `__getitem__` per sample plus a stack.

# %% nbgrader={"grade": false, "grade_id": "tensor-dataset", "locked": false, "schema_version": 3, "solution": true, "task": false}
class TensorDataset(Dataset):
    """Arrays (or Tensors) that share their first axis; sample i is row i of each."""

    def __init__(self, *arrays: Any) -> None:
        """Store the arrays as numpy arrays; a ValueError naming the lengths if they differ."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __len__(self) -> int:
        # YOUR CODE HERE
        raise NotImplementedError()

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        """Row `index` of every array, as a tuple."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """Rows `indices` of every array, with one fancy index per array (no Python loop over samples)."""
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 7. Subset, random_split, train_val_split
#
# A `Subset(dataset, indices)` is a view of some samples of another dataset: its sample `i`
# is `dataset[indices[i]]`. Nothing is copied; it keeps `.dataset` and `.indices` (an int64
# numpy array). Its `get_batch` must keep the fast path of the dataset underneath: translate
# the batch's positions into the dataset's indices with *one* fancy index,
# `self.indices[positions]`, and ask the dataset for that batch.
#
# `random_split(dataset, lengths, seed=None)` shuffles all the indices once and cuts the
# permutation into consecutive pieces, one `Subset` per piece, so the parts are disjoint and
# together cover every sample exactly once. `lengths` is either
#
# - integer counts that add up to `len(dataset)`, such as `[40000, 10000]`, or
# - fractions that add up to 1, such as `[0.8, 0.2]`. Each part gets `floor(fraction * N)`
#   samples, and the few left over go one each to the first parts, as in PyTorch: `[1/3] * 3`
#   of 10 samples gives sizes 4, 3, 3.
#
# Anything else (negative lengths, counts with the wrong total, fractions that do not add up
# to 1) is a `ValueError` that names the lengths and `len(dataset)`. The permutation comes
# from `np.random.default_rng(seed)` when a seed is given, else from tinytorch's `generator()`.
#
# `train_val_split(dataset, val_fraction, seed=None)` is the common case: a validation part of
# `round(val_fraction * N)` samples (halves round up) and a training part of the rest,
# returned as `(train, val)`; `val_fraction` must be strictly between 0 and 1. Why hold out
# validation data at all? Training loss only tells you how well the model fits what it has
# seen; the validation set, never trained on, tells you whether it *generalises*, and is
# what you use to pick hyper-parameters and to notice overfitting. (The test set is touched
# once, at the very end.)

# %% nbgrader={"grade": false, "grade_id": "subset-split", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order, without copying the data."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray) -> None:
        # YOUR CODE HERE
        raise NotImplementedError()

    def __len__(self) -> int:
        # YOUR CODE HERE
        raise NotImplementedError()

    def __getitem__(self, index: int) -> Any:
        # YOUR CODE HERE
        raise NotImplementedError()

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """The dataset's batch at self.indices[indices]: one fancy index, then the dataset's own get_batch."""
        # YOUR CODE HERE
        raise NotImplementedError()


def _split_sizes(lengths: Sequence[float], total: int) -> list[int]:
    """The size of every part: integer counts as they are, fractions as floor plus the leftovers."""
    # YOUR CODE HERE
    raise NotImplementedError()


def random_split(dataset: Dataset, lengths: Sequence[float], seed: int | None = None) -> list[Subset]:
    """Disjoint random Subsets of the given sizes (counts adding up to len, or fractions adding up to 1)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def train_val_split(dataset: Dataset, val_fraction: float, seed: int | None = None) -> tuple[Subset, Subset]:
    """(train, val): a random validation part of round(val_fraction * len) samples, and the rest."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 8. DataLoader
#
# `DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None)` is the
# re-iterable that `Trainer.train_epoch` consumes. Every `for batch in loader:` is one epoch:
#
# 1. the order: `np.arange(N)`, or with `shuffle=True` a fresh permutation of `N` drawn from
#    the loader's own generator (made once in `__init__` from `seed`) or, without a seed, from
#    `generator()` called when the epoch starts (section 4);
# 2. cut the order into consecutive slices of `batch_size` indices; the last slice may be
#    shorter, and `drop_last=True` skips it;
# 3. for each slice, `dataset.get_batch(indices)`, and yield the fields as a **tuple of
#    Tensors** (numpy arrays keep their dtype: float32 images, int64 labels).
#
# `len(loader)` is the number of batches per epoch: `N // batch_size` with `drop_last`,
# `ceil(N / batch_size)` without. Schedules need it (`total_steps = epochs * len(loader)`).
# A `batch_size` below 1 is a `ValueError`.
#
# Writing `__iter__` as a generator function (with `yield`) is the easy way to get a fresh
# iterator for every epoch: each call of `iter(loader)` starts the body from the top, so a new
# order is drawn per epoch, when its first batch is asked for.

# %% nbgrader={"grade": false, "grade_id": "dataloader", "locked": false, "schema_version": 3, "solution": true, "task": false}
class DataLoader:
    """Mini-batches of a Dataset as tuples of Tensors, reshuffled every epoch when shuffle=True."""

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None) -> None:
        """Store the settings; a ValueError for batch_size < 1; with a seed, make the loader's own generator."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        """One epoch: the order (shuffled or not), cut into batches, each a tuple of Tensors."""
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## Try it
#
# A small dataset whose first field is the sample's own index, so you can see the order: with
# `shuffle=False` it is 0, 1, 2, ...; with a seed each epoch is a new permutation, the same
# for every loader built with that seed. Then a 80/20 split, and a `Trainer` of module 07
# learning three clusters from a shuffled loader.

# %%
if __name__ == "__main__":
    ids = np.arange(10)
    points = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    dataset = TensorDataset(ids, points)
    print("len:", len(dataset), "| sample 3:", dataset[3])

    plain = DataLoader(dataset, batch_size=4)
    print("no shuffle:       ", [batch_ids.tolist() for batch_ids, _ in plain], "batches:", len(plain))
    dropping = DataLoader(dataset, batch_size=4, drop_last=True)
    print("drop_last:        ", [batch_ids.tolist() for batch_ids, _ in dropping], "batches:", len(dropping))
    seeded = DataLoader(dataset, batch_size=4, shuffle=True, seed=7)
    for epoch in range(2):
        print(f"seed 7, epoch {epoch}:  ", [batch_ids.tolist() for batch_ids, _ in seeded])
    again = DataLoader(dataset, batch_size=4, shuffle=True, seed=7)
    print("a new loader, seed 7:", [batch_ids.tolist() for batch_ids, _ in again])

    train, val = train_val_split(dataset, 0.2, seed=0)
    print("train ids:", sorted(train.indices.tolist()), "| val ids:", sorted(val.indices.tolist()))
    try:
        TensorDataset(np.zeros((50000, 784)), np.zeros(10000))
    except ValueError as error:
        print("a mismatch that explains itself:", error)

# %%
if __name__ == "__main__":
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import manual_seed
    from tinytorch.training import Trainer

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=600)
    centers = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])
    inputs = (centers[labels] + rng.normal(0.0, 0.7, size=(600, 2))).astype(np.float32)
    train, val = train_val_split(TensorDataset(inputs, labels), 0.2, seed=0)

    manual_seed(0)
    model = Sequential(Linear(2, 32), ReLU(), Linear(32, 3))
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), CrossEntropyLoss())
    train_loader = DataLoader(train, batch_size=32, shuffle=True, seed=0)
    val_loader = DataLoader(val, batch_size=100)
    for record in trainer.fit(train_loader, epochs=5, val_batches=val_loader):
        print(f"epoch {record['epoch']}  steps {record['step']:3d}  train loss {record['train_loss']:.4f}  "
              f"val accuracy {record['val_accuracy']:.3f}")

# %% [markdown]
# ## Systems insight: one fancy index per batch, not one Python call per sample
#
# Feeding MNIST means moving 50,000 images of 28 x 28 float32 pixels (3.1 KB each, 157 MB in
# all) through the loader every epoch. The slow way asks for every sample: a Python method
# call, a tuple, a `Tensor` per field, and a `np.stack` of 64 small arrays per batch, all
# interpreted Python, about a microsecond or more per step, per sample. The fast way is one
# fancy index per field per batch: numpy copies 64 rows in a single call at memory speed.
#
# The cell below measures both on fake data, with the same `DataLoader`: once over a
# `TensorDataset` (fast path), once over a dataset that only has `__getitem__` (the default
# `get_batch`). On 50,000 fake MNIST images expect the fast path to be several times faster
# (both ways must copy 157 MB of pixels, which is the floor); on 50,000 small samples of 16
# numbers, where the copying is nothing and the Python overhead is everything, expect ten
# times or more. With the fast path the loader moves a full epoch of MNIST in a few hundredths
# of a second, far less than the network's own matrix multiplications. This is why
# `get_batch` exists: the interface lets the loader ask for a *batch*, so a dataset that can
# answer in one call is never forced through a loop.
#
# Shuffling is cheap too: a permutation of 50,000 integers takes well under a millisecond.
# The one thing fancy indexing does cost is a copy: a batch is new memory (64 x 3.1 KB), never
# a view, which is what you want, since the model must not write into the data set.

# %%
if __name__ == "__main__":
    import time

    class SampleBySample(Dataset):
        """The same data, but only __getitem__: the loader must go through the default get_batch."""

        def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
            self.images, self.labels = images, labels

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.int64]:
            return self.images[index], self.labels[index]

    fake_labels = np.random.default_rng(1).integers(0, 10, size=50_000)
    for shape in ((28, 28), (16,)):
        fake_inputs = np.random.default_rng(0).random((50_000, *shape), dtype=np.float32)
        for name, data in (("one fancy index per batch", TensorDataset(fake_inputs, fake_labels)),
                           ("a Python loop per sample ", SampleBySample(fake_inputs, fake_labels))):
            loader = DataLoader(data, batch_size=64, shuffle=True, seed=0)
            started = time.perf_counter()
            seen = sum(len(labels) for _, labels in loader)
            seconds = time.perf_counter() - started
            print(f"samples of shape {str(shape):8s} {name}: {seen} in {seconds:.3f} s, "
                  f"{seen / seconds:>11,.0f} samples/second")

# %% [markdown]
# ## Checkpoint
#
# `tito check 08` runs `tests/checkpoints/test_08_dataloader.py`. It checks `TensorDataset`
# (length, samples, fancy-indexed batches, Tensor inputs, and the error that names mismatched
# lengths); that a `DataLoader` over a `TensorDataset` builds each batch with one `get_batch`
# call and never asks for single samples; batch shapes and dtypes, the size of the last batch,
# and `len(loader)` with and without `drop_last`; that every sample appears exactly once per
# epoch (shuffled or not; with `drop_last`, exactly `N // batch_size * batch_size` distinct
# samples) for many sizes drawn by Hypothesis; that inputs and targets stay paired after
# shuffling; the order: unchanged without shuffle, the same for two loaders with one seed, a
# new one each epoch, controlled by `manual_seed` without a seed and restored by module 07's
# `Trainer` checkpoints; `random_split` (sizes compared with PyTorch's for fractions,
# disjoint parts covering everything, errors), `Subset` and `train_val_split`; a custom
# `Dataset` with only `__getitem__` through the default `get_batch`; a `batch_size` below 1;
# and that `Trainer.train_epoch` and `fit` of module 07 train over a `DataLoader`.
