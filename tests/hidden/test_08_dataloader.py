"""Hidden checks for module 08 (dataloader): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.expect import expect_equal, expect_that
from tests.checkpoints.test_08_dataloader import same_arrays
from tinytorch.dataloader import DataLoader, Dataset, TensorDataset, random_split, train_val_split
from tinytorch.tensor import Tensor, generator, manual_seed


def id_dataset(n):
    return TensorDataset(np.arange(n, dtype=np.int64), np.arange(n, dtype=np.float32) * 2)


def same_values(pair):
    """The two halves of `pair` are equal plain values (dicts, numbers, strings)."""
    first, second = pair
    return first == second


def split_of(pieces, whole):
    """The pieces' ids, together, are exactly the ids of `whole`, each once."""
    joined = np.concatenate([np.asarray(p) for p in pieces]) if pieces else np.zeros(0, dtype=np.int64)
    return joined.shape == np.asarray(whole).shape and bool(np.array_equal(np.sort(joined), np.sort(whole)))


def test_empty_and_tiny_datasets():
    """An empty dataset gives no batches; fewer samples than batch_size give one short batch, or none with drop_last"""
    for shuffle in (False, True):
        loader = DataLoader(TensorDataset(np.zeros((0, 3)), np.zeros(0)), batch_size=4, shuffle=shuffle, seed=0)
        expect_equal((len(loader), len(list(loader))), (0, 0),
                     call=f"len and batches of DataLoader(empty TensorDataset, batch_size=4, shuffle={shuffle})",
                     hint="no samples, no batches: never yield an empty batch")
    batches = list(DataLoader(id_dataset(3), batch_size=5))
    expect_equal([b[0].data.tolist() for b in batches], [[0, 1, 2]], call="DataLoader(3 samples, batch_size=5)",
                 hint="fewer samples than batch_size: one short batch")
    loader = DataLoader(id_dataset(3), batch_size=5, drop_last=True, shuffle=True)
    expect_equal((len(loader), len(list(loader))), (0, 0),
                 call="len and batches of DataLoader(3 samples, batch_size=5, drop_last=True, shuffle=True)",
                 hint="with drop_last a batch shorter than batch_size is dropped, even the only one")


def test_seeded_and_unshuffled_loaders_leave_the_global_generator_alone():
    """A seeded loader and an unshuffled one never draw from tinytorch's generator"""
    manual_seed(12)
    before = generator().bit_generator.state
    epochs = []
    for loader in (DataLoader(id_dataset(20), batch_size=3, shuffle=True, seed=5),
                   DataLoader(id_dataset(20), batch_size=3)):
        for _ in range(2):
            epochs.append(np.sort(np.concatenate([b[0].data for b in loader])))
    expect_equal(np.array(epochs), np.tile(np.arange(20), (4, 1)), call="sorted ids of two epochs of DataLoader(shuffle=True, seed=5) "
                 "and of DataLoader(shuffle=False)", hint="every sample once per epoch")
    after = generator().bit_generator.state
    expect_that((after, before), same_values,
                call="generator().bit_generator.state after epochs of DataLoader(shuffle=True, seed=5) and DataLoader(shuffle=False)",
                expected="the state it had before: nothing drawn from tinytorch's generator",
                hint="with a seed, draw only from the loader's own np.random.default_rng(seed); without shuffle, draw nothing "
                     "(otherwise initial weights and dropout masks would depend on how the data was loaded)")


class Readings(Dataset):
    """Sample i is a Python float reading, a Tensor of 2 numbers, and a numpy float64 scalar."""

    def __len__(self):
        return 5

    def __getitem__(self, index):
        return index * 0.5, Tensor(np.array([index, -index], dtype=np.float64)), np.float64(index) / 4


class Plain(Dataset):
    """Each sample is one numpy array, not a tuple."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return np.full(3, index, dtype=np.int32)


def test_default_get_batch_dtypes_and_single_field_samples():
    """The default get_batch follows Tensor's dtype rule and treats a non-tuple sample as one field"""
    batch = Readings().get_batch(np.array([3, 0, 4]))
    expect_equal(len(batch), 3, call="len(Readings().get_batch([3, 0, 4]))", hint="one array per field")
    expect_equal(batch[0], np.array([1.5, 0.0, 2.0], dtype=np.float32), call="Readings().get_batch([3, 0, 4])[0]",
                 hint="Python floats become float32, as Tensor(0.5) does")
    expect_equal(batch[0].dtype, np.dtype(np.float32), call="Readings().get_batch(...)[0].dtype",
                 hint="pass each field through Tensor(value).data before stacking")
    expect_equal(batch[1], np.array([[3.0, -3.0], [0.0, 0.0], [4.0, -4.0]]), call="Readings().get_batch([3, 0, 4])[1]",
                 hint="a Tensor field contributes its numpy array")
    expect_equal((batch[1].dtype, batch[2].dtype), (np.dtype(np.float64), np.dtype(np.float64)),
                 call="dtypes of the Tensor and numpy-float64 fields", hint="numpy arrays and numbers keep their dtype")
    batches = list(DataLoader(Plain(), batch_size=3))
    expect_equal([(type(b).__name__, len(b)) for b in batches], [("tuple", 1), ("tuple", 1)],
                 call="types and lengths of the batches of DataLoader(Plain(), batch_size=3)",
                 hint="a sample that is not a tuple counts as a tuple of one field")
    expect_equal(batches[0][0].data, np.array([[0] * 3, [1] * 3, [2] * 3], dtype=np.int32),
                 call="first batch of DataLoader(Plain(), batch_size=3)", hint="samples stacked along a new first axis")


@given(n=st.integers(0, 60), weights=st.lists(st.integers(1, 20), min_size=1, max_size=5))
def test_fraction_split_sizes_like_torch(n, weights):
    """Fractional random_split sizes equal PyTorch's for many fractions"""
    fractions = [w / sum(weights) for w in weights]
    parts = random_split(id_dataset(n), fractions, seed=0)
    shown = "[" + ", ".join(f"{f:.4g}" for f in fractions) + "]"
    expect_equal([len(p) for p in parts], torch_split_sizes(n, fractions), call=f"sizes of random_split({n} samples, {shown})",
                 hint="floor(fraction * N) each, then the leftovers one each to the first parts, in order")


def torch_split_sizes(n, fractions):
    """The part sizes PyTorch's random_split gives (the oracle; only called for expected values)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [len(p) for p in torch.utils.data.random_split(range(n), fractions)]


def test_nested_subsets_keep_the_original_ids():
    """Splitting a Subset again gives Subsets whose samples are the original dataset's, each once"""
    train, _ = train_val_split(id_dataset(40), 0.25, seed=2)
    train_ids = train.get_batch(np.arange(len(train)))[0]
    pieces = random_split(train, [20, 10], seed=3)
    expect_equal([(type(p).__name__, len(p)) for p in pieces], [("Subset", 20), ("Subset", 10)],
                 call="random_split(train part of train_val_split(40 samples, 0.25), [20, 10])",
                 hint="two Subsets of the sizes asked for")
    piece_ids = [p.get_batch(np.arange(len(p)))[0] for p in pieces]
    expect_that((piece_ids, train_ids), same_split, call="sample ids of the two pieces vs the ids of the train part",
                expected="the pieces together hold exactly the train part's samples, each once",
                hint="a Subset of a Subset maps positions through both index arrays: self.indices[positions], "
                     "then the inner Subset's own get_batch")
    by_item = [np.array([int(np.asarray(p[i][0])) for i in range(len(p))]) for p in pieces]
    expect_that((by_item, piece_ids), same_arrays, call="piece[i] vs piece.get_batch(...) for every i",
                expected="the same samples, in the same order",
                hint="__getitem__ and get_batch must agree: both go through self.indices")


def same_split(pair):
    pieces, whole = pair
    return split_of(pieces, whole)
