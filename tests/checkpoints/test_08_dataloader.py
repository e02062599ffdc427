"""Checkpoint 08: Dataset, TensorDataset, DataLoader, Subset, random_split, train_val_split.

Oracles: numpy fancy indexing for batches; exact bookkeeping of which samples each epoch
yields (every dataset here carries each sample's own index as a field, so the order is
visible); Hypothesis over dataset sizes, batch sizes, shuffle, drop_last and seeds; PyTorch's
torch.utils.data.random_split for the sizes of fractional splits; and module 07's Trainer,
which must train over a DataLoader and restore its shuffle order from a checkpoint.

Orders are never compared with the reference's: a correct loader may draw its permutation in
another way. What is checked is how the orders relate to each other (the same seed gives the
same epochs, each epoch is new, manual_seed repeats them), by the predicates below.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.expect import expect_equal, expect_raises, expect_that
from tests.checkpoints.common import blobs
from tinytorch.dataloader import DataLoader, Dataset, Subset, TensorDataset, random_split, train_val_split
from tinytorch.layers import Linear
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD
from tinytorch.tensor import Tensor, manual_seed
from tinytorch.training import Trainer

# -- helpers ----------------------------------------------------------------------------------


def id_dataset(n):
    """Sample i is (i, features of i): the first field tells which sample a batch row is."""
    ids = np.arange(n, dtype=np.int64)
    features = (np.arange(n, dtype=np.float32)[:, None] * np.array([1.0, -1.0, 0.5], dtype=np.float32))
    return TensorDataset(ids, features)


def epoch_ids(loader):
    """The sample ids of one epoch, one int array per batch."""
    return [batch[0].data.copy() for batch in loader]


def flat(batches):
    return np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)


class CountingTensorDataset(TensorDataset):
    """A TensorDataset that counts how often it is asked for one sample and for one batch."""

    def __init__(self, *arrays):
        super().__init__(*arrays)
        self.getitem_calls = 0
        self.batch_calls = 0

    def __getitem__(self, index):
        self.getitem_calls += 1
        return super().__getitem__(index)

    def get_batch(self, indices):
        self.batch_calls += 1
        return super().get_batch(indices)


class Squares(Dataset):
    """A custom dataset with only __len__ and __getitem__: sample i is ([i, i*i] float32, i % 3, i / 4)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return np.array([index, index * index], dtype=np.float32), index % 3, index / 4


class Rows(Dataset):
    """A custom dataset whose sample i is one array (not a tuple): [i, i, i] as int32."""

    def __len__(self):
        return 5

    def __getitem__(self, index):
        return np.full(3, index, dtype=np.int32)


def subset_ids(subset):
    return subset.get_batch(np.arange(len(subset)))[0] if len(subset) else np.zeros(0, dtype=np.int64)


# -- predicates, judged on the trusted side over the values your code produced -----------------


def _same(first, second):
    if isinstance(first, (list, tuple)) or isinstance(second, (list, tuple)):
        return (isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)) and len(first) == len(second)
                and all(_same(a, b) for a, b in zip(first, second)))
    first, second = np.asarray(first), np.asarray(second)
    return first.shape == second.shape and bool(np.array_equal(first, second))


def same_arrays(pair):
    """The two halves of `pair` (arrays, or lists of arrays) are equal."""
    first, second = pair
    return _same(first, second)


def different_arrays(pair):
    """The two arrays of `pair` differ."""
    first, second = pair
    return not _same(first, second)


def _permutation(ids, n):
    ids = np.asarray(ids)
    return ids.shape == (n,) and bool(np.array_equal(np.sort(ids), np.arange(n)))


def shuffled(ids, n):
    """`ids` is a permutation of 0..n-1 other than 0, 1, 2, ..."""
    return _permutation(ids, n) and not np.array_equal(np.asarray(ids), np.arange(n))


def new_order_every_epoch(epochs, n):
    """Each epoch is a shuffled permutation of 0..n-1, and no epoch repeats the one before."""
    return (all(shuffled(ids, n) for ids in epochs)
            and all(not np.array_equal(a, b) for a, b in zip(epochs, epochs[1:])))


def full_batches_only(ids, n, batch_size):
    """n // batch_size * batch_size ids, all distinct, all in 0..n-1."""
    ids = np.asarray(ids)
    count = n // batch_size * batch_size
    return (ids.shape == (count,) and len(np.unique(ids)) == count
            and bool(np.all((ids >= 0) & (ids < n))))


def rows_of(batch, *arrays):
    """batch = (field 0, field 1, ..., ids): every field is its array's rows at the batch's ids."""
    *fields, ids = batch
    ids = np.asarray(ids)
    return len(fields) == len(arrays) and all(_same(field, np.asarray(array)[ids]) for field, array in zip(fields, arrays))


def mentions(text, *words):
    """`text` contains every word."""
    return isinstance(text, str) and all(word in text for word in words)


def falls_below(losses, fraction):
    """The last loss is below `fraction` times the first, and every loss is a finite number."""
    losses = np.asarray(losses, dtype=np.float64)
    return losses.ndim == 1 and len(losses) >= 2 and bool(np.all(np.isfinite(losses))) and losses[-1] < fraction * losses[0]


def at_least(value, bound):
    return float(value) >= bound


# -- TensorDataset ----------------------------------------------------------------------------


def test_tensor_dataset_length_and_samples():
    """TensorDataset has one sample per row, and sample i is the tuple of row i of every array"""
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = np.array([3, 1, 4, 1, 5, 9])
    dataset = TensorDataset(x, Tensor(y))
    expect_equal(len(dataset), 6, call="len(TensorDataset(x of shape (6, 4), Tensor(y of shape (6,))))",
                 hint="the number of samples is the first dimension of the arrays, len(self.arrays[0])")
    sample = dataset[4]
    expect_equal((type(sample).__name__, len(sample)), ("tuple", 2), call="type and length of TensorDataset(x, y)[4]",
                 hint="a sample is a tuple with row i of every array, in the order they were given")
    expect_equal(np.asarray(sample[0]), x[4], call="TensorDataset(x, y)[4][0]", hint="row 4 of the first array")
    expect_equal(np.asarray(sample[1]), y[4], call="TensorDataset(x, y)[4][1]",
                 hint="row 4 of the second array; a Tensor argument is stored as its numpy array")


def test_tensor_dataset_get_batch_is_fancy_indexing():
    """TensorDataset.get_batch(indices) gives rows `indices` of every array, repeats and order included"""
    x = np.random.default_rng(0).normal(size=(7, 2, 3))
    y = np.arange(7, dtype=np.int64) * 10
    dataset = TensorDataset(x, y)
    indices = np.array([4, 0, 4, 6, 2])
    batch = dataset.get_batch(indices)
    expect_equal((type(batch).__name__, len(batch)), ("tuple", 2),
                 call="type and length of TensorDataset(x, y).get_batch([4, 0, 4, 6, 2])",
                 hint="a tuple with one array per field of the dataset")
    expect_equal(batch[0], x[indices], call="TensorDataset(x, y).get_batch([4, 0, 4, 6, 2])[0]",
                 hint="x[indices]: numpy's fancy indexing gathers the rows in the given order")
    expect_equal(batch[1], y[indices], call="TensorDataset(x, y).get_batch([4, 0, 4, 6, 2])[1]",
                 hint="y[indices]")
    expect_equal((batch[0].dtype, batch[1].dtype), (x.dtype, y.dtype),
                 call="dtypes of TensorDataset(float64 x, int64 y).get_batch(...)",
                 hint="numpy arrays keep their dtype")
    lists = TensorDataset([0.5, 1.5, 2.5], [7, 8, 9]).get_batch(np.array([2, 0]))
    expect_equal(lists[0], np.array([2.5, 0.5], dtype=np.float32), call="TensorDataset([0.5, 1.5, 2.5], [7, 8, 9]).get_batch([2, 0])[0]",
                 hint="each array goes through Tensor() first, so Python lists follow module 01's dtype rule")
    expect_equal((lists[0].dtype, lists[1].dtype), (np.dtype(np.float32), np.dtype(np.int64)),
                 call="dtypes of TensorDataset(list of floats, list of ints).get_batch(...)",
                 hint="Tensor(value).data: Python floats become float32 and Python ints int64, as everywhere in tinytorch")


def test_tensor_dataset_length_mismatch_names_lengths():
    """TensorDataset with arrays of different lengths is a ValueError that names both lengths"""
    expect_equal(len(TensorDataset(np.zeros((13, 2)), np.zeros(13))), 13,
                 call="len(TensorDataset(np.zeros((13, 2)), np.zeros(13)))", hint="arrays of equal length are fine")
    error = expect_raises(ValueError, lambda: TensorDataset(np.zeros((13, 2)), np.zeros(11)),
                          call="TensorDataset(np.zeros((13, 2)), np.zeros(11))",
                          hint="every array must have the same first dimension, the number of samples")
    expect_that(str(error), mentions, "13", "11", call="the message of TensorDataset(13 rows, 11 rows)",
                expected="a message that names the lengths 13 and 11",
                hint="say which lengths disagree: it is the first thing the user needs to fix the bug")
    expect_raises(ValueError, lambda: TensorDataset(np.zeros(4), np.zeros(4), np.zeros(3)),
                  call="TensorDataset(np.zeros(4), np.zeros(4), np.zeros(3))",
                  hint="compare the lengths of ALL the arrays, not only the first two")


# -- DataLoader: batches ----------------------------------------------------------------------


def test_batches_are_tuples_of_tensors_with_shapes_and_dtypes():
    """Batches are tuples of Tensors with the batch on the first axis; dtypes are kept; the last batch is short"""
    images = np.random.default_rng(1).random((10, 1, 4, 4), dtype=np.float32)
    labels = np.arange(10, dtype=np.int64) % 3
    batches = list(DataLoader(TensorDataset(images, labels), batch_size=4))
    expect_equal(len(batches), 3, call="list(DataLoader(10 samples, batch_size=4))",
                 hint="batches of 4, 4 and 2: the last short batch is kept unless drop_last")
    for number, (batch, size) in enumerate(zip(batches, (4, 4, 2))):
        call = f"batch {number} of DataLoader(TensorDataset(images (10, 1, 4, 4), labels (10,)), batch_size=4)"
        expect_equal((type(batch).__name__, [type(t).__name__ for t in batch]), ("tuple", ["Tensor", "Tensor"]),
                     call=call + ": its type and the types of its fields",
                     hint="yield tuple(Tensor(array) for array in dataset.get_batch(indices))")
        expect_equal(batch[0].shape, (size, 1, 4, 4), call=call + ": images.shape",
                     hint="the first axis is the batch, the rest is one sample's shape")
        expect_equal(batch[1].shape, (size,), call=call + ": labels.shape", hint="one label per sample")
        expect_equal((batch[0].dtype, batch[1].dtype), (np.dtype(np.float32), np.dtype(np.int64)),
                     call=call + ": dtypes", hint="float32 images stay float32, int64 labels stay int64")
        expect_equal(batch[0].data, images[4 * number:4 * number + size], call=call + ": images",
                     hint="without shuffle the batches are consecutive slices of the data")
        expect_equal(batch[1].data, labels[4 * number:4 * number + size], call=call + ": labels",
                     hint="without shuffle the batches are consecutive slices of the data")


@given(n=st.integers(0, 30), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_len_is_the_number_of_batches(n, batch_size, drop_last):
    """len(loader) is ceil(N / batch_size), or N // batch_size with drop_last, and an epoch yields that many batches"""
    loader = DataLoader(id_dataset(n), batch_size=batch_size, drop_last=drop_last)
    expected = n // batch_size if drop_last else math.ceil(n / batch_size)
    call = f"DataLoader({n} samples, batch_size={batch_size}, drop_last={drop_last})"
    expect_equal(len(loader), expected, call=f"len({call})",
                 hint="drop_last counts only full batches; otherwise the short last batch counts too")
    expect_equal(len(list(loader)), expected, call=f"len(list({call}))",
                 hint="an epoch yields exactly len(loader) batches")


def test_drop_last_drops_only_the_short_batch():
    """With drop_last the short last batch is skipped and every batch has batch_size samples"""
    sizes = [len(ids) for ids in epoch_ids(DataLoader(id_dataset(10), batch_size=4, drop_last=True))]
    expect_equal(sizes, [4, 4], call="batch sizes of DataLoader(10 samples, batch_size=4, drop_last=True)",
                 hint="10 = 4 + 4 + 2: drop_last skips the batch of 2")
    sizes = [len(ids) for ids in epoch_ids(DataLoader(id_dataset(12), batch_size=4, drop_last=True))]
    expect_equal(sizes, [4, 4, 4], call="batch sizes of DataLoader(12 samples, batch_size=4, drop_last=True)",
                 hint="when batch_size divides N there is no short batch, and nothing is dropped")


def test_loader_asks_tensor_dataset_for_whole_batches():
    """Over a TensorDataset the loader calls get_batch once per batch and never asks for single samples"""
    dataset = CountingTensorDataset(np.arange(10), np.zeros((10, 3), dtype=np.float32))
    loader = DataLoader(dataset, batch_size=4, shuffle=True, seed=0)
    seen = flat([batch[0].data for batch in loader])
    expect_equal(np.sort(seen), np.arange(10), call="sorted ids of one epoch of DataLoader(10 samples, batch_size=4, shuffle=True)",
                 hint="every sample once per epoch")
    expect_equal(dataset.batch_calls, 3, call="get_batch calls in one epoch of DataLoader(10 samples, batch_size=4)",
                 hint="ask the dataset for each batch with dataset.get_batch(indices), one call per batch")
    expect_equal(dataset.getitem_calls, 0, call="dataset[i] calls in the same epoch",
                 hint="TensorDataset.get_batch uses fancy indexing (array[indices]), not a Python loop over self[i]")


# -- DataLoader: which samples, in which order ---------------------------------------------------


@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), shuffle=st.booleans(), drop_last=st.booleans(),
       seed=st.one_of(st.none(), st.integers(0, 1000)))
def test_every_sample_exactly_once_per_epoch(n, batch_size, shuffle, drop_last, seed):
    """Each epoch yields every sample once (with drop_last: N // batch_size * batch_size distinct samples)"""
    loader = DataLoader(id_dataset(n), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    call = f"DataLoader({n} samples, batch_size={batch_size}, shuffle={shuffle}, drop_last={drop_last}, seed={seed})"
    for epoch in range(2):
        ids = flat(epoch_ids(loader))
        if drop_last:
            expect_that(ids, full_batches_only, n, batch_size, call=f"sample ids of epoch {epoch} of {call}",
                        expected=f"{n // batch_size * batch_size} distinct ids in 0..{n - 1}",
                        hint="with drop_last an epoch has N // batch_size full batches, and no sample appears "
                             "twice: cut one permutation into slices")
        else:
            expect_equal(np.sort(ids), np.arange(n), call=f"sorted sample ids of epoch {epoch} of {call}",
                         hint="every sample exactly once per epoch: cut one permutation (or arange) into slices")
        if not shuffle:
            expect_equal(ids, np.arange(n // batch_size * batch_size if drop_last else n),
                         call=f"sample ids of epoch {epoch} of {call}",
                         hint="without shuffle the order is 0, 1, 2, ... every epoch")


def test_inputs_and_targets_stay_paired_after_shuffle():
    """Shuffling moves whole samples: each batch's inputs and targets are rows of the same samples"""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(37, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=37)
    ids = np.arange(37)
    loader = DataLoader(TensorDataset(Tensor(x), y, ids), batch_size=8, shuffle=True, seed=11)
    batches = list(loader)
    expect_equal(np.sort(flat([b[2].data for b in batches])), np.arange(37),
                 call="sorted ids of one epoch of DataLoader(TensorDataset(x, y, ids), batch_size=8, shuffle=True, seed=11)",
                 hint="every sample once per epoch")
    for number, batch in enumerate(batches):
        call = f"batch {number} of DataLoader(TensorDataset(x, y, ids), batch_size=8, shuffle=True, seed=11)"
        expect_that(batch, rows_of, x, y, call=call + ": (inputs, targets, ids)",
                    expected="inputs == x[ids] and targets == y[ids] for the batch's own ids",
                    hint="use the same indices for every array: shuffling must never separate an input from its label")


def test_no_shuffle_keeps_the_original_order():
    """Without shuffle every epoch is the original order 0, 1, 2, ..., even when a seed is given"""
    for seed in (None, 3):
        loader = DataLoader(id_dataset(11), batch_size=3, seed=seed)
        for epoch in range(2):
            expect_equal(flat(epoch_ids(loader)), np.arange(11),
                         call=f"ids of epoch {epoch} of DataLoader(11 samples, batch_size=3, shuffle=False, seed={seed})",
                         hint="shuffle=False means np.arange(N); a seed only matters when shuffling")


def test_same_seed_same_epochs_and_each_epoch_new():
    """Two loaders with one seed give the same epochs, each epoch a new order, whatever manual_seed says"""
    for seed in (7, 0):
        first = DataLoader(id_dataset(50), batch_size=8, shuffle=True, seed=seed)
        second = DataLoader(id_dataset(50), batch_size=8, shuffle=True, seed=seed)
        manual_seed(1)
        a = [flat(epoch_ids(first)) for _ in range(3)]
        manual_seed(99)  # must not matter: a seeded loader owns its generator
        b = [flat(epoch_ids(second)) for _ in range(3)]
        expect_that((a, b), same_arrays, call=f"epochs 0, 1, 2 of two DataLoader(..., shuffle=True, seed={seed})",
                    expected="the same three orders from both loaders",
                    hint="with a seed, make np.random.default_rng(seed) once in __init__ and draw every epoch's "
                         "permutation from it (not from tinytorch's generator); seed=0 is a seed too: "
                         "test `seed is not None`, not `if seed`")
        expect_that(a, new_order_every_epoch, 50, call=f"epochs 0, 1, 2 of DataLoader(50 samples, shuffle=True, seed={seed})",
                    expected="a shuffled order, a different one every epoch",
                    hint="make the generator once in __init__, not in every __iter__, so each epoch draws a new permutation")
        other = flat(epoch_ids(DataLoader(id_dataset(50), batch_size=8, shuffle=True, seed=seed + 1)))
        expect_that((other, a[0]), different_arrays, call=f"epoch 0 with seed={seed + 1} vs seed={seed}",
                    expected="different orders", hint="the seed must be passed to np.random.default_rng")


def test_manual_seed_controls_an_unseeded_loader():
    """Without a seed the order comes from tinytorch's generator: manual_seed repeats it"""
    loader = DataLoader(id_dataset(40), batch_size=6, shuffle=True)
    manual_seed(3)
    first = [flat(epoch_ids(loader)) for _ in range(2)]
    manual_seed(3)
    again = [flat(epoch_ids(loader)) for _ in range(2)]
    expect_that((again, first), same_arrays,
                call="epochs 0 and 1 after manual_seed(3) of DataLoader(40 samples, shuffle=True) (no seed), twice",
                expected="the same two orders after each manual_seed(3)",
                hint="draw the permutation from generator() when the epoch starts; manual_seed replaces the "
                     "generator, so do not keep the one you got in __init__ (and do not use np.random)")
    expect_that(first, new_order_every_epoch, 40, call="epochs 0 and 1 after manual_seed(3)",
                expected="a shuffled order, a different one every epoch", hint="each epoch draws a new permutation")


def test_trainer_checkpoint_restores_the_shuffle_order():
    """Module 07's Trainer state saves tinytorch's generator, so a resumed run sees the same next epoch"""
    manual_seed(0)
    model = Linear(3, 2)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
    loader = DataLoader(id_dataset(30), batch_size=4, shuffle=True)
    flat(epoch_ids(loader))  # an epoch before the checkpoint
    state = trainer.state_dict()
    next_epoch = flat(epoch_ids(loader))
    flat(epoch_ids(loader))  # training carries on ...
    trainer.load_state_dict(state)  # ... and is then resumed from the checkpoint
    resumed = flat(epoch_ids(loader))
    expect_that((resumed, next_epoch), same_arrays,
                call="the epoch after trainer.load_state_dict(state) vs the epoch after trainer.state_dict(), "
                     "DataLoader(30 samples, shuffle=True) (no seed)",
                expected="the same order",
                hint="an unseeded loader must draw from generator() at the start of each epoch: the checkpoint "
                     "restores that generator's state")
    expect_that(resumed, shuffled, 30, call="the epoch after trainer.load_state_dict(state)",
                expected="a shuffled order of the 30 samples", hint="shuffle=True draws a permutation")


# -- Subset, random_split, train_val_split ----------------------------------------------------------


def test_subset_maps_positions_to_dataset_indices():
    """Subset(dataset, [5, 2, 8]) has 3 samples, dataset[5], dataset[2], dataset[8], and batches keep the fast path"""
    dataset = CountingTensorDataset(np.arange(10) * 100, np.arange(10, dtype=np.float32))
    subset = Subset(dataset, [5, 2, 8])
    expect_equal(len(subset), 3, call="len(Subset(dataset, [5, 2, 8]))", hint="one sample per index")
    expect_equal(np.asarray(subset[1][0]), np.asarray(200), call="Subset(dataset, [5, 2, 8])[1][0]",
                 hint="sample i of the subset is dataset[indices[i]]")
    dataset.getitem_calls = 0
    batch = subset.get_batch(np.array([2, 0, 1]))
    expect_equal(batch[0], np.array([800, 500, 200]), call="Subset(dataset, [5, 2, 8]).get_batch([2, 0, 1])[0]",
                 hint="translate positions to dataset indices: self.indices[positions]")
    expect_equal(dataset.getitem_calls, 0, call="dataset[i] calls made by Subset.get_batch",
                 hint="ask the dataset for the whole batch, dataset.get_batch(self.indices[positions])")
    ids = flat([b[0].data for b in DataLoader(subset, batch_size=2)])
    expect_equal(ids, np.array([500, 200, 800]), call="DataLoader(Subset(dataset, [5, 2, 8]), batch_size=2)",
                 hint="a Subset is a Dataset: a loader batches it like any other")


def test_random_split_counts_are_disjoint_and_cover():
    """random_split(dataset, [18, 9, 3]) gives parts of those sizes, disjoint, together every sample once"""
    dataset = id_dataset(30)
    parts = random_split(dataset, [18, 9, 3], seed=4)
    expect_equal((type(parts).__name__, [type(p).__name__ for p in parts]), ("list", ["Subset"] * 3),
                 call="types of random_split(dataset, [18, 9, 3], seed=4) and of its parts",
                 hint="a list with one Subset per length")
    expect_equal([len(p) for p in parts], [18, 9, 3], call="sizes of random_split(30 samples, [18, 9, 3])",
                 hint="each part has the size asked for, in order")
    ids = [subset_ids(p) for p in parts]
    expect_equal(np.sort(np.concatenate(ids)), np.arange(30), call="all ids of random_split(30 samples, [18, 9, 3])",
                 hint="cut one permutation into consecutive pieces: disjoint parts that cover every sample once")
    expect_that((ids[0], np.arange(18)), different_arrays, call="ids of the first part of random_split(30 samples, [18, 9, 3])",
                expected="a random selection, not samples 0..17 in order", hint="shuffle the indices before cutting")
    again = [subset_ids(p) for p in random_split(id_dataset(30), [18, 9, 3], seed=4)]
    expect_that((again, ids), same_arrays, call="the parts of random_split(30 samples, [18, 9, 3], seed=4), twice",
                expected="the same parts", hint="with a seed, draw the permutation from np.random.default_rng(seed)")
    unseeded = []
    for _ in range(2):
        manual_seed(5)
        unseeded.append([subset_ids(p) for p in random_split(id_dataset(30), [18, 9, 3])])
    expect_that(tuple(unseeded), same_arrays, call="the parts of random_split(30 samples, [18, 9, 3]) after manual_seed(5), twice",
                expected="the same parts", hint="without a seed, draw the permutation from tinytorch's generator()")
    zero_seed = []
    for other in (1, 2):
        manual_seed(other)  # must not matter: seed=0 is a seed
        zero_seed.append([subset_ids(p) for p in random_split(id_dataset(30), [18, 9, 3], seed=0)])
    expect_that(tuple(zero_seed), same_arrays, call="the parts of random_split(30 samples, [18, 9, 3], seed=0), twice",
                expected="the same parts", hint="seed=0 is a seed: test `seed is not None`, not `if seed`")
    for lengths in ([18, 9], [20, 15, -5]):
        expect_raises(ValueError, lambda lengths=lengths: random_split(id_dataset(30), lengths),
                      call=f"random_split(30 samples, {lengths})",
                      hint="integer lengths must be non-negative and add up to len(dataset)")


def test_random_split_fractions_like_torch():
    """Fractions adding up to 1 split like PyTorch: floor(f * N) each, leftovers one each to the first parts"""
    for n, fractions in ((20, [0.5, 0.3, 0.2]), (10, [1 / 3, 1 / 3, 1 / 3]), (11, [0.7, 0.3]),
                         (7, [0.25, 0.25, 0.25, 0.25]), (9, [0.1, 0.1, 0.8]), (4, [0.6, 0.4])):
        parts = random_split(id_dataset(n), fractions, seed=0)
        shown = "[" + ", ".join(f"{f:.4g}" for f in fractions) + "]"
        expect_equal([len(p) for p in parts], torch_split_sizes(n, fractions), call=f"sizes of random_split({n} samples, {shown})",
                     hint="floor(fraction * N) for each part, then the leftover samples one each to the first parts")
        expect_equal(np.sort(np.concatenate([subset_ids(p) for p in parts])), np.arange(n),
                     call=f"all ids of random_split({n} samples, {shown})", hint="disjoint parts covering every sample")
    expect_raises(ValueError, lambda: random_split(id_dataset(10), [0.5, 0.4]), call="random_split(10 samples, [0.5, 0.4])",
                  hint="fractions must add up to 1")


def torch_split_sizes(n, fractions):
    """The part sizes PyTorch's random_split gives (the oracle; only called for expected values)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [len(p) for p in torch.utils.data.random_split(range(n), fractions)]


def test_train_val_split():
    """train_val_split(50 samples, 0.2) gives disjoint Subsets of 40 and 10 samples covering everything"""
    train, val = train_val_split(id_dataset(50), 0.2, seed=1)
    expect_equal((len(train), len(val)), (40, 10), call="lengths of train_val_split(50 samples, 0.2)",
                 hint="(train, val): the validation part has round(val_fraction * N) samples, training the rest")
    train_ids, val_ids = subset_ids(train), subset_ids(val)
    expect_equal(np.sort(np.concatenate([train_ids, val_ids])), np.arange(50),
                 call="ids of train and val of train_val_split(50 samples, 0.2)",
                 hint="no sample may be in both parts, and none may be lost")
    train2, val2 = train_val_split(id_dataset(50), 0.2, seed=1)
    expect_that((subset_ids(val2), val_ids), same_arrays, call="val ids of train_val_split(50 samples, 0.2, seed=1), twice",
                expected="the same validation samples", hint="the same seed gives the same split")
    for n, fraction in ((7, 0.4), (100, 0.29)):
        train, val = train_val_split(id_dataset(n), fraction, seed=0)
        expect_equal((len(train), len(val)), (n - round(fraction * n), round(fraction * n)),
                     call=f"lengths of train_val_split({n} samples, {fraction})",
                     hint=f"{fraction} * {n} = {fraction * n!r}: round it to the nearest whole number "
                          "(int() would cut it down, and floats are rarely exact)")
    for fraction in (0.0, 1.0, 1.5):
        expect_raises(ValueError, lambda fraction=fraction: train_val_split(id_dataset(50), fraction),
                      call=f"train_val_split(50 samples, {fraction})", hint="val_fraction must be strictly between 0 and 1")


# -- a custom Dataset, bad arguments, and the Trainer ----------------------------------------------


def test_custom_dataset_uses_the_default_get_batch():
    """A Dataset subclass with only __len__ and __getitem__ is batched by the base class's get_batch"""
    dataset = Squares(7)
    batch = dataset.get_batch(np.array([4, 1]))
    expect_equal(batch[0], np.array([[4.0, 16.0], [1.0, 1.0]], dtype=np.float32), call="Squares(7).get_batch([4, 1])[0]",
                 hint="ask self[i] for each index, then np.stack each field over the samples")
    expect_equal(batch[1], np.array([1, 1]), call="Squares(7).get_batch([4, 1])[1]", hint="the second field, stacked")
    expect_equal(batch[2], np.array([1.0, 0.25], dtype=np.float32), call="Squares(7).get_batch([4, 1])[2]",
                 hint="the third field (Python floats i / 4), stacked")
    batches = list(DataLoader(dataset, batch_size=3))
    expect_equal([b[0].shape for b in batches], [(3, 2), (3, 2), (1, 2)],
                 call="feature shapes of DataLoader(Squares(7), batch_size=3)",
                 hint="each field is stacked along a new first axis, the batch")
    expect_equal([b.dtype for b in batches[0]], [np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.float32)],
                 call="dtypes of a batch of Squares (float32 array, Python int, Python float)",
                 hint="pass each field through Tensor(value).data before stacking: numpy arrays keep their dtype, "
                      "Python ints become int64 and Python floats float32, as in Tensor()")
    expect_equal(flat([b[1].data for b in batches]), np.arange(7) % 3, call="labels of DataLoader(Squares(7), batch_size=3)",
                 hint="sample i's label is i % 3, in order when not shuffled")
    rows = Rows().get_batch(np.array([3, 1]))
    expect_equal((type(rows).__name__, len(rows)), ("tuple", 1), call="type and length of Rows().get_batch([3, 1]), samples np.full(3, i)",
                 hint="a sample that is not a tuple counts as a tuple of one field")
    expect_equal(rows[0], np.array([[3, 3, 3], [1, 1, 1]], dtype=np.int32), call="Rows().get_batch([3, 1])[0]",
                 hint="the one field, stacked along a new first axis")


def test_batch_size_below_one_is_an_error():
    """DataLoader with batch_size 0 or negative is a ValueError"""
    loader = DataLoader(id_dataset(5), batch_size=2)
    expect_equal((len(loader), [ids.tolist() for ids in epoch_ids(loader)]), (3, [[0, 1], [2, 3], [4]]),
                 call="len and batches of DataLoader(5 samples, batch_size=2)", hint="batch_size=2 is fine")
    for size in (0, -3):
        expect_raises(ValueError, lambda size=size: DataLoader(id_dataset(5), batch_size=size),
                      call=f"DataLoader(dataset, batch_size={size})", hint="a batch needs at least one sample")


def test_trainer_trains_over_a_dataloader():
    """Module 07's Trainer.fit runs over a DataLoader: one step per batch, and the loss falls"""
    points, labels = blobs(120, seed=0)
    loader = DataLoader(TensorDataset(points, labels), batch_size=16, shuffle=True, drop_last=True, seed=0)
    model = Linear(4, 3)
    model.weight.data[...] = 0.0  # a fixed start: the run depends on nothing random but the loader's order
    model.bias.data[...] = 0.0
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
    records = trainer.fit(loader, epochs=4)
    expect_equal(trainer.step, 4 * 7, call="trainer.step after fit(DataLoader(120 samples, batch_size=16, drop_last=True), epochs=4)",
                 hint="the loader yields len(loader) = 120 // 16 = 7 batches per epoch, each one train_step")
    expect_that([r["train_loss"] for r in records], falls_below, 0.7, call="train_loss per epoch of Trainer.fit over the loader",
                expected="the last epoch's loss below 0.7 times the first's",
                hint="each batch must pair inputs with their own labels, as (inputs, targets) Tensors")
    expect_that(trainer.evaluate(DataLoader(TensorDataset(points, labels), batch_size=50))["accuracy"], at_least, 0.9,
                call="trainer.evaluate(DataLoader(same data, batch_size=50))['accuracy']", expected="at least 0.9",
                hint="evaluation over a loader must see every sample, the short last batch included")
