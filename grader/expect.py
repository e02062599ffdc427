"""Assertions that teach, and the one choke point of grading.

Checkpoint tests use these instead of bare `assert`: every failure names the call, the input,
expected vs got, and a hint, so a student learns what was asked of their code.

Each call is also where the trust boundary runs (see "The trust boundary" in DESIGN.md). A
checkpoint runs in one of three modes, chosen by the pytest plugin that runs it:

- direct (`tito check`, plain pytest): compare at once and fail the test with a message.
- record (`tito grade`, inside the sandbox): compare nothing; record the student's value (as
  plain data, `grader.values`) under (test, sequence number). The expected values are never
  computed there: the sandbox runs a copy of the test file with them removed
  (`grader.sandbox_view`), and the oracle (torch) is absent.
- reference (`tito grade`, trusted): run against the reference solution, compare as in direct
  mode (the reference must pass its own checkpoint) and record each `Check`: the expected
  value, its tolerance, the messages.

`judge_value` is the one comparison all three use, so a student is judged by the same rule
whether their value was compared at once or recorded in a sandbox and judged outside it.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from .values import Opaque, RaisedError, raised_error, to_data

MAX_SHOWN = 300  # characters of a value shown in a message before it is cut


@dataclass
class Check:
    """What one expect_* call asks of the value it is given (the trusted side of a comparison)."""

    kind: str                              # "close", "equal", "raises" or "that"
    call: str
    hint: str = ""
    expected: Any = None                   # close/equal: the value; that: its description
    rtol: float = 0.0
    atol: float = 0.0
    errors: tuple[str, ...] = ()           # raises: acceptable exception class names
    message_contains: str = ""             # raises
    predicate: str = ""                    # that: "module:qualname" of a module-level function
    args: tuple[Any, ...] = field(default_factory=tuple)  # that: extra arguments of the predicate


class Sink(Protocol):
    """Where record and reference modes send what they see (installed by grader.pytest_plugin)."""

    mode: str  # "record" or "reference"

    def record_value(self, kind: str, value: Any) -> None: ...
    def record_check(self, check: Check) -> None: ...


_sink: Sink | None = None


def install_sink(sink: Sink | None) -> None:
    global _sink
    _sink = sink


# -- showing values --------------------------------------------------------------------------------

def show(value: Any) -> str:
    """A value on one line, cut to MAX_SHOWN characters."""
    if isinstance(value, (np.ndarray, np.generic)):
        text = np.array2string(np.asarray(value), precision=6, threshold=40, separator=", ")
    elif isinstance(value, RaisedError):
        text = f"{value.name}: {value.message}"
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _message(check: Check, expected: str, got: str, detail: str = "") -> str:
    lines = [check.call, f"  expected: {expected}", f"  got:      {got}"]
    if detail:
        lines.append(f"  {detail}")
    if check.hint:
        lines.append(f"  hint: {check.hint}")
    return "\n".join(lines)


# -- the one comparison ----------------------------------------------------------------------------

def _numbers(value: Any) -> np.ndarray | None:
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged or odd values are simply not numbers
        return None
    return array if array.dtype.kind in "biufc" else None


def _judge_close(check: Check, got: Any) -> str | None:
    expected = np.asarray(check.expected)
    got_array = _numbers(got)
    if got_array is None:
        return _message(check, f"numbers of shape {expected.shape}", show(got))
    if got_array.shape != expected.shape:
        return _message(check, f"shape {expected.shape}", f"shape {got_array.shape}")
    with np.errstate(all="ignore"):
        if np.allclose(got_array, expected, rtol=check.rtol, atol=check.atol, equal_nan=True):
            return None
        error = np.abs(got_array.astype(np.complex128) - expected.astype(np.complex128)).real
    # a NaN where a number was expected is the worst difference of all
    both_nan = np.isnan(got_array) & np.isnan(expected) if got_array.dtype.kind in "fc" and expected.dtype.kind in "fc" else False
    error = np.where(np.isnan(error) & ~both_nan, np.inf, error)
    error = np.nan_to_num(error, nan=0.0, posinf=np.inf)
    worst = np.unravel_index(np.argmax(error), error.shape) if error.size else ()
    detail = f"largest difference {np.max(error):.3g} at index {tuple(int(i) for i in worst)}" if error.size else ""
    return _message(check, show(expected), show(got_array), detail)


def values_equal(got: Any, expected: Any) -> bool:
    """Exact equality of plain data (arrays compare elementwise and by shape, containers item by item)."""
    try:
        if isinstance(expected, (tuple, list)) and type(got) is type(expected):
            return len(got) == len(expected) and all(values_equal(g, e) for g, e in zip(got, expected))
        if isinstance(expected, dict) and isinstance(got, dict):
            return got.keys() == expected.keys() and all(values_equal(got[k], expected[k]) for k in expected)
        if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
            return bool(np.array_equal(np.asarray(got), np.asarray(expected)))
        if isinstance(got, Opaque) or isinstance(expected, Opaque):
            return got == expected
        same = got == expected
        return bool(same) if isinstance(same, (bool, np.bool_)) else False
    except Exception:  # noqa: BLE001 - values that cannot be compared are not equal
        return False


def _judge_equal(check: Check, got: Any) -> str | None:
    if values_equal(got, check.expected):
        return None
    return _message(check, show(check.expected), show(got))


BUILTIN_ERRORS = {name: cls for name, cls in vars(builtins).items()
                  if isinstance(cls, type) and issubclass(cls, BaseException)}


def plausible_error(raised: RaisedError) -> bool:
    """Do the class names form a real MRO as far as Python's own exceptions go?

    A forged record naming every exception class at once is refused: each builtin exception
    named must be followed, in order, by its own builtin ancestors.
    """
    names = list(raised.types)
    for index, name in enumerate(names):
        cls = BUILTIN_ERRORS.get(name)
        if cls is not None:
            ancestors = [c.__name__ for c in cls.__mro__[1:]]
            rest = names[index + 1:]
            positions = [rest.index(a) if a in rest else -1 for a in ancestors]
            if -1 in positions or positions != sorted(positions):
                return False
    return bool(names) and names[-2:] == ["BaseException", "object"]


def _judge_raises(check: Check, got: Any) -> str | None:
    wanted = " or ".join(check.errors)
    if not isinstance(got, RaisedError):
        return _message(check, f"an error of type {wanted}", f"no error; it returned {show(got)}")
    if not plausible_error(got) or not set(check.errors) & set(got.types):
        return _message(check, f"an error of type {wanted}", f"{got.name}: {got.message}")
    if check.message_contains and check.message_contains.lower() not in got.message.lower():
        return _message(check, f"{wanted} whose message mentions {check.message_contains!r}",
                        f"{got.name}: {got.message}")
    return None


def resolve_predicate(qualified: str) -> Callable[..., Any]:
    """The module-level function "package.module:name"."""
    import importlib

    module_name, _, name = qualified.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _judge_that(check: Check, got: Any, predicate: Callable[..., Any] | None = None) -> str | None:
    predicate = predicate or resolve_predicate(check.predicate)
    try:
        holds = predicate(got, *check.args)
    except Exception as error:  # noqa: BLE001 - a value the predicate cannot handle does not satisfy it
        return _message(check, str(check.expected), f"{show(got)} ({type(error).__name__}: {error})")
    return None if holds is True or isinstance(holds, np.bool_) and bool(holds) else _message(check, str(check.expected), show(got))


def judge_value(check: Check, got: Any) -> str | None:
    """None if the (plain-data) value `got` meets `check`, else the teaching message."""
    if check.kind == "close":
        return _judge_close(check, got)
    if check.kind == "equal":
        return _judge_equal(check, got)
    if check.kind == "raises":
        return _judge_raises(check, got)
    if check.kind == "that":
        return _judge_that(check, got)
    return f"{check.call}\n  unknown kind of check {check.kind!r}"


def _settle(check: Check, got: Any, predicate: Callable[..., Any] | None = None) -> None:
    """Direct and reference modes: fail now if `got` misses; reference mode also records."""
    failure = _judge_that(check, got, predicate) if check.kind == "that" else judge_value(check, got)
    if failure:
        raise AssertionError(failure)
    if _sink is not None and _sink.mode == "reference":
        _sink.record_check(check)


def _recording() -> bool:
    return _sink is not None and _sink.mode == "record"


# -- the public API ---------------------------------------------------------------------------------

def expect_close(got: Any, expected: Any, *, call: str, hint: str = "",
                 rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """`got` must have `expected`'s shape and values within rtol/atol (NaNs must line up)."""
    if _recording():
        _sink.record_value("close", to_data(got))
        return
    expected_array = np.asarray(to_data(expected))
    _settle(Check("close", call, hint, expected_array, float(rtol), float(atol)), to_data(got))


def expect_equal(got: Any, expected: Any, *, call: str, hint: str = "") -> None:
    """Exact equality, for shapes, counts, dtypes, integers and strings."""
    if _recording():
        _sink.record_value("equal", to_data(got))
        return
    _settle(Check("equal", call, hint, to_data(expected)), to_data(got))


def expect_that(got: Any, predicate: Callable[..., bool], *args: Any, call: str, expected: str,
                hint: str = "") -> None:
    """`predicate(got, *args)` must be True: for properties with no single expected value.

    The predicate must be a module-level function (of the test file, say): in `tito grade` it
    runs on the trusted side over the student's recorded value, so it cannot be fooled from
    inside the student's process.
    """
    if _recording():
        _sink.record_value("that", to_data(got))
        return
    qualified = f"{predicate.__module__}:{predicate.__qualname__}"
    if "<" in qualified:
        raise TypeError(f"expect_that needs a module-level function, not {qualified}")
    check = Check("that", call, hint, expected, predicate=qualified, args=tuple(to_data(a) for a in args))
    _settle(check, to_data(got), predicate)


def expect_raises(error: type[BaseException] | tuple[type[BaseException], ...] | None,
                  action: Callable[[], Any], *, call: str, hint: str = "",
                  message_contains: str = "") -> BaseException | None:
    """`action()` must raise `error` (and mention `message_contains`); returns the exception."""
    try:
        result = action()
    except NotImplementedError:
        raise  # reported as "not written yet", not as a wrong error type
    except Exception as raised:  # noqa: BLE001 - which error it was is what gets judged
        outcome: Any = raised_error(raised)
        caught: BaseException | None = raised
    else:
        outcome, caught = to_data(result), None
    if _recording():
        _sink.record_value("raises", outcome)
        return caught
    kinds = (error,) if isinstance(error, type) else tuple(error or ())
    _settle(Check("raises", call, hint, errors=tuple(k.__name__ for k in kinds),
                  message_contains=message_contains), outcome)
    return caught

