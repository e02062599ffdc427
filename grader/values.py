"""Values that cross the trust boundary, as plain data.

The sandbox that runs a student's code returns only values: the arrays, numbers, shapes and
strings each `expect_*` call was given, or the exception an action raised. They travel as
JSON. `to_data` turns whatever the code under test returned into plain Python and numpy
values (a Tensor becomes its array); `encode` / `decode` move those through JSON.

`decode` runs in the trusted grader on bytes the student's process wrote, so it builds only
plain types (numbers, strings, tuples, lists, dicts, sets, numpy arrays of numeric, boolean or
string dtype), checks sizes, and never unpickles or imports anything. Anything else the
student's code returned arrives as an `Opaque` value, which equals only an identical `Opaque`.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_DEPTH = 12
MAX_ITEMS = 100_000            # elements of one container
MAX_ARRAY_BYTES = 64 * 2**20   # of one array
MAX_TEXT = 200_000             # characters of one string
ALLOWED_KINDS = set("biufcUS")  # numpy dtype kinds: bool, int, uint, float, complex, str, bytes


class ValueError_(ValueError):
    """A recorded value that cannot be decoded (forged, truncated or too large)."""


@dataclass(frozen=True)
class Opaque:
    """Something that is neither a number, a string, a container nor an array: shown, not compared."""

    kind: str
    text: str

    def __repr__(self) -> str:
        return f"<{self.kind} {self.text}>" if self.text else f"<{self.kind}>"


@dataclass(frozen=True)
class RaisedError:
    """What an action raised: the class names along its MRO (most derived first) and its message."""

    types: tuple[str, ...]
    message: str

    @property
    def name(self) -> str:
        return self.types[0] if self.types else "Exception"


# -- what the code under test returned, as plain data (runs next to the code under test) --------

def _array_of(value: Any) -> np.ndarray | None:
    """The numbers inside a Tensor or a torch tensor, else None."""
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
        return np.array(value.detach().cpu().numpy(), copy=True)
    data = getattr(value, "data", None) if not isinstance(value, (np.ndarray, np.generic)) else None
    if isinstance(data, np.ndarray):
        return np.array(data, copy=True)
    return None


def to_data(value: Any, depth: int = 0) -> Any:
    """`value` as numbers, strings, containers and numpy arrays only."""
    if depth > MAX_DEPTH:
        return Opaque("nesting", "too deep")
    if value is None:
        return None
    for plain in (bool, int, float, complex, str, bytes):  # a subclass (a float with its own __eq__) loses its class
        if isinstance(value, plain):
            return plain(value)
    if isinstance(value, np.ndarray):
        return np.array(value, copy=True) if value.dtype.kind in ALLOWED_KINDS else _object_array(value, depth)
    if isinstance(value, np.generic):
        return value if value.dtype.kind in ALLOWED_KINDS else Opaque(type(value).__name__, "")
    if isinstance(value, np.dtype):
        return value
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value)
    array = _array_of(value)
    if array is not None:
        return to_data(array, depth + 1)
    if isinstance(value, (tuple, list, set, frozenset)):
        items = [to_data(item, depth + 1) for item in list(value)[:MAX_ITEMS]]
        return type(value)(items) if not isinstance(value, (set, frozenset)) else frozenset(items) if isinstance(value, frozenset) else set(items)
    if isinstance(value, dict):
        return {to_data(k, depth + 1): to_data(v, depth + 1) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, type):
        return Opaque("class", value.__qualname__)
    return Opaque(type(value).__name__, "")


def _object_array(value: np.ndarray, depth: int) -> Any:
    return to_data(value.tolist(), depth + 1)


# -- JSON ------------------------------------------------------------------------------------------

def encode(value: Any, depth: int = 0) -> Any:
    """Plain data -> JSON-able structure (tagged where JSON has no such type)."""
    if depth > MAX_DEPTH:
        return {"opaque": ["nesting", "too deep"]}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, complex):
        return {"complex": [repr(value.real), repr(value.imag)]}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, np.ndarray):
        return {"array": _encode_array(value)}
    if isinstance(value, np.generic):
        return {"scalar": _encode_array(np.asarray(value))}
    if isinstance(value, np.dtype):
        return {"dtype": value.str if value.kind in ALLOWED_KINDS else "|O"}
    if isinstance(value, tuple):
        return {"tuple": [encode(v, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return {"set": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, RaisedError):
        return {"raised": {"types": list(value.types), "message": value.message}}
    if isinstance(value, Opaque):
        return {"opaque": [value.kind, value.text]}
    return {"opaque": [type(value).__name__, ""]}


def _encode_array(array: np.ndarray) -> dict:
    if array.dtype.kind not in ALLOWED_KINDS:
        array = np.array([repr(v) for v in array.ravel()]).reshape(array.shape)
    contiguous = np.array(array, order="C", copy=True)  # (ascontiguousarray would make a 0-d array 1-d)
    return {"dtype": contiguous.dtype.str, "shape": list(contiguous.shape),
            "bytes": base64.b64encode(contiguous.tobytes()).decode()}


def _check(condition: bool, why: str) -> None:
    if not condition:
        raise ValueError_(why)


def _decode_array(raw: Any) -> np.ndarray:
    _check(isinstance(raw, dict) and set(raw) == {"dtype", "shape", "bytes"}, "malformed array")
    dtype = np.dtype(str(raw["dtype"]))
    _check(dtype.kind in ALLOWED_KINDS, f"array of dtype {dtype} is not allowed")
    shape = raw["shape"]
    _check(isinstance(shape, list) and len(shape) <= 32 and all(isinstance(s, int) and 0 <= s for s in shape),
           "malformed shape")
    _check(isinstance(raw["bytes"], str) and len(raw["bytes"]) <= MAX_ARRAY_BYTES * 4 // 3 + 4, "array too large")
    data = base64.b64decode(raw["bytes"], validate=True)
    count = math.prod(shape)
    _check(count * dtype.itemsize == len(data), "array size does not match its shape")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def decode(raw: Any, depth: int = 0) -> Any:
    """JSON structure -> plain data. Raises ValueError_ on anything malformed."""
    _check(depth <= MAX_DEPTH + 1, "nesting too deep")
    if raw is None or isinstance(raw, (bool, int, float)):
        return raw
    if isinstance(raw, str):
        _check(len(raw) <= MAX_TEXT, "string too long")
        return raw
    if isinstance(raw, list):
        _check(len(raw) <= MAX_ITEMS, "list too long")
        return [decode(v, depth + 1) for v in raw]
    _check(isinstance(raw, dict) and len(raw) == 1, "malformed value")
    (tag, body), = raw.items()
    if tag == "float":
        _check(body in ("nan", "inf", "-inf"), "malformed float")
        return float(body)
    if tag == "complex":
        _check(isinstance(body, list) and len(body) == 2, "malformed complex")
        return complex(float(body[0]), float(body[1]))
    if tag == "bytes":
        _check(isinstance(body, str) and len(body) <= MAX_TEXT, "bytes too long")
        return base64.b64decode(body, validate=True)
    if tag == "array":
        return _decode_array(body)
    if tag == "scalar":
        return _decode_array(body)[()]
    if tag == "dtype":
        _check(isinstance(body, str) and len(body) < 16, "malformed dtype")
        return np.dtype(body) if body != "|O" else Opaque("dtype", "object")
    if tag in ("tuple", "set"):
        _check(isinstance(body, list) and len(body) <= MAX_ITEMS, f"malformed {tag}")
        items = [decode(v, depth + 1) for v in body]
        if tag == "tuple":
            return tuple(items)
        try:
            return set(items)
        except TypeError:
            raise ValueError_("unhashable set member") from None
    if tag == "dict":
        _check(isinstance(body, list) and len(body) <= MAX_ITEMS, "malformed dict")
        result = {}
        for pair in body:
            _check(isinstance(pair, list) and len(pair) == 2, "malformed dict entry")
            key = decode(pair[0], depth + 1)
            try:
                result[key] = decode(pair[1], depth + 1)
            except TypeError:
                raise ValueError_("unhashable dict key") from None
        return result
    if tag == "raised":
        _check(isinstance(body, dict) and isinstance(body.get("types"), list)
               and all(isinstance(t, str) and len(t) < 200 for t in body["types"])
               and len(body["types"]) < 64 and isinstance(body.get("message"), str), "malformed error")
        return RaisedError(tuple(body["types"]), body["message"][:MAX_TEXT])
    if tag == "opaque":
        _check(isinstance(body, list) and len(body) == 2 and all(isinstance(b, str) for b in body), "malformed opaque")
        return Opaque(body[0][:100], body[1][:200])
    raise ValueError_(f"unknown value tag {tag!r}")


def raised_error(error: BaseException, message_cap: int = 2000) -> RaisedError:
    """What an action raised, as data: its class names along the MRO and its message."""
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ is still an error that was raised
        message = ""
    return RaisedError(tuple(cls.__name__ for cls in type(error).__mro__), message[:message_cap])
