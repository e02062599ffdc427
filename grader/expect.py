"""Assertions that teach: every failure names the call, the input, expected vs got, and a hint.

Checkpoint tests use these instead of bare `assert` so that a student reading a failure learns
what was asked of their code, not just that something is off.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

MAX_SHOWN = 300  # characters of an array shown in a message before it is cut


def _as_array(value: Any) -> np.ndarray:
    """The numbers inside a Tensor, a torch tensor, a numpy array or a plain value."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # torch.Tensor
        return value.detach().numpy()
    if hasattr(value, "data") and isinstance(getattr(value, "data"), np.ndarray):  # tinytorch Tensor
        return value.data
    return np.asarray(value)


def _show(value: Any) -> str:
    text = np.array2string(np.asarray(value), precision=6, threshold=40, separator=", ")
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _fail(call: str, expected: str, got: str, hint: str, detail: str = "") -> None:
    lines = [call, f"  expected: {expected}", f"  got:      {got}"]
    if detail:
        lines.append(f"  {detail}")
    if hint:
        lines.append(f"  hint: {hint}")
    raise AssertionError("\n".join(lines))


def expect_close(got: Any, expected: Any, *, call: str, hint: str = "",
                 rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """`got` must have `expected`'s shape and values within rtol/atol (NaNs must line up)."""
    got_array, expected_array = _as_array(got), _as_array(expected)
    if got_array.shape != expected_array.shape:
        _fail(call, f"shape {expected_array.shape}", f"shape {got_array.shape}", hint)
    if not np.allclose(got_array, expected_array, rtol=rtol, atol=atol, equal_nan=True):
        with np.errstate(invalid="ignore"):
            error = np.abs(got_array.astype(np.float64) - expected_array.astype(np.float64))
        # a NaN where a number was expected is the worst difference of all
        error = np.where(np.isnan(error) & ~(np.isnan(got_array) & np.isnan(expected_array)), np.inf, error)
        error = np.nan_to_num(error, nan=0.0, posinf=np.inf)
        worst = np.unravel_index(np.argmax(error), error.shape) if error.size else ()
        detail = f"largest difference {np.max(error):.3g} at index {tuple(int(i) for i in worst)}"
        _fail(call, _show(expected_array), _show(got_array), hint, detail)


def expect_equal(got: Any, expected: Any, *, call: str, hint: str = "") -> None:
    """Exact equality, for shapes, counts, dtypes, integers and strings."""
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
        same = np.array_equal(_as_array(got), _as_array(expected))
    else:
        same = got == expected
    if not same:
        _fail(call, repr(expected) if not isinstance(expected, np.ndarray) else _show(expected),
              repr(got) if not isinstance(got, np.ndarray) else _show(got), hint)


def expect_true(condition: bool, *, call: str, expected: str, got: str, hint: str = "") -> None:
    """A condition that has no single expected value (a sum that must be 1, a bound)."""
    if not condition:
        _fail(call, expected, got, hint)


def expect_raises(error: type[BaseException] | tuple[type[BaseException], ...],
                  action: Callable[[], Any], *, call: str, hint: str = "",
                  message_contains: str = "") -> BaseException:
    """`action()` must raise `error` (and mention `message_contains`); returns the exception."""
    names = error.__name__ if isinstance(error, type) else " or ".join(e.__name__ for e in error)
    try:
        result = action()
    except NotImplementedError:
        raise  # reported as "not written yet", not as a wrong error type
    except error as raised:
        if message_contains and message_contains.lower() not in str(raised).lower():
            _fail(call, f"{names} whose message mentions {message_contains!r}",
                  f"{type(raised).__name__}: {raised}", hint)
        return raised
    except Exception as raised:  # noqa: BLE001 - the wrong kind of error is what we report
        _fail(call, f"an error of type {names}", f"{type(raised).__name__}: {raised}", hint)
    _fail(call, f"an error of type {names}", f"no error; it returned {_show(_as_array(result)) if result is not None else None}", hint)
    raise AssertionError("unreachable")
