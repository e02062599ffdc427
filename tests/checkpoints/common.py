"""What several checkpoints (and the hidden checks) share: input strategies, the float64 torch
oracle, short pictures of arrays for failure messages, a small data set, tiktoken's table of ranks.

Like every test file, this one runs in two places in `tito grade`: with the oracle, against the
reference (the trusted run), and rewritten inside the sandbox, where `torch` is an inert
stand-in (grader/sandbox_view.py). So nothing here may compute an input from torch.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from hypothesis import strategies as st


def values(low: float, high: float) -> st.SearchStrategy[float]:
    """Finite floats in [low, high]: no NaN, no infinity, no subnormals (their float32 rounding is
    its own lesson, not this one's)."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def torch64(array, requires_grad: bool = False) -> torch.Tensor:
    """The same numbers as a float64 torch tensor (a copy, so any strides are fine)."""
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def show(array, threshold: int = 12) -> str:
    """A short one-line picture of an array for the `call` line of a failure."""
    return " ".join(np.array2string(np.asarray(array), precision=4, separator=", ", threshold=threshold).split())


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points in 4-D, three classes whose means differ; float32 inputs, int64 labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    centers = np.array([[2.0, 0.0, 0.0, 1.0], [-1.0, 2.0, 0.0, -1.0], [-1.0, -2.0, 1.0, 0.0]])
    points = centers[labels] + rng.normal(0.0, 0.7, size=(n, 4))
    return points.astype(np.float32), labels.astype(np.int64)


def ranks_of(merges: dict[tuple[int, int], int]) -> dict[bytes, int]:
    """{bytes: id} of the 256 bytes and every merge: the table tiktoken takes."""
    vocab = {i: bytes([i]) for i in range(256)}
    for (left, right), new_id in merges.items():
        vocab[new_id] = vocab[left] + vocab[right]
    return {token: i for i, token in vocab.items()}


# -- predicates (judged on the trusted side, over values the student's code produced) ------------

def identical(value, other) -> bool:
    """Equal values of equal types, recursively through dicts, lists and tuples; arrays elementwise."""
    if isinstance(value, dict) or isinstance(other, dict):
        return (isinstance(value, dict) and isinstance(other, dict) and list(value) == list(other)
                and all(identical(value[key], other[key]) for key in value))
    if isinstance(value, (list, tuple)) or isinstance(other, (list, tuple)):
        return (isinstance(value, (list, tuple)) and isinstance(other, (list, tuple)) and len(value) == len(other)
                and all(identical(v, o) for v, o in zip(value, other)))
    if isinstance(value, (np.ndarray, np.generic)) or isinstance(other, (np.ndarray, np.generic)):
        return np.shape(value) == np.shape(other) and bool(np.array_equal(value, other))
    return type(value) is type(other) and value == other


def same_pair(pair) -> bool:
    """The two recorded values are identical (a relation between two of the student's own values)."""
    first, second = pair
    return identical(first, second)


def valid_submission(document, schema) -> bool:
    """The document passes module 19's SUBMISSION_SCHEMA (jsonschema, draft 2020-12) and is strict JSON."""
    import jsonschema  # only the trusted side validates

    jsonschema.Draft202012Validator.check_schema(schema)
    json.dumps(document, allow_nan=False)  # raises for numpy values, NaN, infinity
    return jsonschema.Draft202012Validator(schema).is_valid(document)
