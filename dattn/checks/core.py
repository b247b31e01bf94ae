"""What every exercise checker shares: reading an answer, judging it at the displayed precision, saying
what is wrong, and keeping the worked solution until the learner asks for it.

A checker prints one verdict and returns a ``Verdict`` (true when the answer is right). A wrong answer gets
a diagnosis (which likely mistake gives that answer) and a hint, never the expected value; a garbage answer
(None, NaN, inf, text, a list where one number is wanted) gets one line. ``solution(key)`` prints the worked
solution of an exercise; every checker also takes ``show_solution=True``.

Function exercises run the learner's function on inputs made at check time, with the dattn (and torch)
helpers that compute the answer switched off (``switched_off``): calling one fails the check.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

CORRECT, NOT_YET = "Correct!", "Not yet:"


# ----------------------------------------------------------------------------------------------------------
# Verdicts and the exercise registry
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``bool(verdict)`` is True for a right answer. ``mistake`` names the
    diagnosed mistake ("garbage", "cheat", ... or a checker's own name), ``message`` is what was printed."""

    ok: bool
    mistake: str | None
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"Verdict(ok={self.ok}, mistake={self.mistake!r})"


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, its hint, and its worked solution (shown only on request)."""

    key: str
    notebook: str
    hint: str
    solution: str


EXERCISES: dict[str, Exercise] = {}


def register(key: str, notebook: str, hint: str, solution: str) -> Exercise:
    """Add an exercise to the registry (each checker module registers its own)."""
    ex = Exercise(key, notebook, hint.strip(), solution.strip("\n"))
    EXERCISES[key] = ex
    return ex


def exercises(notebook: str | None = None) -> list[str]:
    """The keys of the registered exercises, of one notebook (``"01"``) or of all."""
    return [k for k, ex in EXERCISES.items() if notebook is None or ex.notebook.startswith(notebook)]


def _exercise(key: str) -> Exercise | None:
    if key not in EXERCISES:
        print(f"No exercise called {key!r}; the exercises are: {', '.join(EXERCISES)}.")
        return None
    return EXERCISES[key]


def solution(key: str) -> None:
    """Print the worked solution of the exercise ``key`` (see ``exercises()``)."""
    ex = _exercise(key)
    if ex is not None:
        print(f"Solution of {key!r} (notebook {ex.notebook}):\n{ex.solution}")


def hint(key: str) -> None:
    """Print the hint of the exercise ``key``."""
    ex = _exercise(key)
    if ex is not None:
        print(f"Hint: {ex.hint}")


def verdict(
    key: str, ok: bool, text: str, mistake: str | None = None, show_solution: bool = False,
    with_hint: bool = True,
) -> Verdict:
    """Print ``Correct! text`` or ``Not yet: text`` (plus the exercise's hint), and the solution if asked."""
    lines = [f"{CORRECT if ok else NOT_YET} {text}"]
    if not ok and with_hint and key in EXERCISES:
        lines.append(f"Hint: {EXERCISES[key].hint}")
    if not ok:
        lines.append(f"(checks.solution({key!r}) shows a worked solution.)")
    message = "\n".join(lines)
    print(message)
    if show_solution:
        solution(key)
    return Verdict(ok, None if ok else mistake, message)


def garbage(key: str, problem: str, show_solution: bool = False) -> Verdict:
    """One line for an answer that cannot be read, and a Verdict that says so."""
    message = f"{NOT_YET} {problem}"
    print(message)
    if show_solution:
        solution(key)
    return Verdict(False, "garbage", message)


def not_a_function(key: str, fn, show_solution: bool = False) -> Verdict | None:
    """The garbage verdict when a function exercise gets None or something that cannot be called."""
    if fn is None:
        return garbage(key, "replace None with your function and run the cell again.", show_solution)
    if not callable(fn):
        return garbage(key, f"pass your function itself (its name, no brackets), got a value of type "
                            f"{type(fn).__name__}.", show_solution)
    return None


# ----------------------------------------------------------------------------------------------------------
# Reading answers
# ----------------------------------------------------------------------------------------------------------
class BadAnswer(ValueError):
    """An answer that is not the kind of thing the exercise asks for; the message is the one line to show."""


def _describe(answer) -> str:
    if isinstance(answer, str):
        return f"the text {answer!r}"
    if isinstance(answer, (list, tuple)):
        return f"a {type(answer).__name__} of {len(answer)} value{'' if len(answer) == 1 else 's'}"
    if isinstance(answer, (np.ndarray, torch.Tensor)):
        return f"an array of shape {tuple(answer.shape)}"
    return f"a {type(answer).__name__}"


def as_number(answer, what: str = "one number") -> float:
    """A finite float from an int, float, numpy scalar or one-element array/tensor; else ``BadAnswer``."""
    if answer is None:
        raise BadAnswer("replace None with your answer and run the cell again.")
    if isinstance(answer, (bool, np.bool_)):
        raise BadAnswer(f"{answer} is a truth value; the answer is {what}.")
    if isinstance(answer, str):
        raise BadAnswer(f"the answer is {what}, got {_describe(answer)}: write it without quotes.")
    if isinstance(answer, (np.ndarray, torch.Tensor)):
        if math.prod(answer.shape) != 1:
            raise BadAnswer(f"the answer is {what}, got {_describe(answer)}.")
        answer = answer.reshape(-1)[0].item()
    if isinstance(answer, (list, tuple, set, dict)):
        raise BadAnswer(f"the answer is {what}, got {_describe(answer)}.")
    if isinstance(answer, (complex, np.complexfloating)):
        raise BadAnswer(f"the answer is {what}, got the complex number {answer}.")
    if not isinstance(answer, numbers.Real):
        raise BadAnswer(f"the answer is {what}, got {_describe(answer)}.")
    value = float(answer)
    if math.isnan(value):
        raise BadAnswer("your answer is NaN (not a number): check the computation that produced it.")
    if math.isinf(value):
        raise BadAnswer("your answer is infinite: check for a division by zero.")
    return value


def as_numbers(answer, n: int, what: str) -> np.ndarray:
    """``n`` finite floats from a list, tuple, array or tensor; else ``BadAnswer`` naming what is wrong."""
    if answer is None:
        raise BadAnswer("replace None with your answer and run the cell again.")
    if isinstance(answer, (str, bytes, dict, set)) or not isinstance(answer, (Sequence, np.ndarray, torch.Tensor)):
        raise BadAnswer(f"the answer is {n} numbers ({what}) in a list, got {_describe(answer)}.")
    if isinstance(answer, (np.ndarray, torch.Tensor)):
        if answer.ndim > 1 and max(answer.shape) != math.prod(answer.shape):
            raise BadAnswer(f"the answer is {n} numbers ({what}), got {_describe(answer)}.")
        items = list(answer.reshape(-1))
    else:
        items = list(answer)
    if any(isinstance(v, (Sequence, set, dict)) and not isinstance(v, str) for v in items):
        raise BadAnswer(f"the answer is a flat list of {n} numbers ({what}), got a nested list.")
    if len(items) != n:
        raise BadAnswer(f"the answer is {n} numbers ({what}), got {len(items)}.")
    values = []
    for i, v in enumerate(items):
        try:
            values.append(as_number(v))
        except BadAnswer as err:
            raise BadAnswer(f"value {i} of your list: {err}") from None
    return np.array(values, dtype=np.float64)


def tolerance(decimals: int) -> float:
    """Half a unit of the last displayed decimal: 4.22 is accepted for 4.2222 at 2 decimals."""
    return 0.5 * 10.0**-decimals * (1 + 1e-9) + 1e-12


def close(got, want, decimals: int) -> bool:
    """True when every value of ``got`` rounds like ``want`` at ``decimals`` (half-unit tolerance)."""
    return bool(np.all(np.abs(np.asarray(got, float) - np.asarray(want, float)) <= tolerance(decimals)))


def first_match(got, candidates: Iterable[tuple[str, object, str]], decimals: int) -> tuple[str, str] | None:
    """The (mistake, diagnosis) of the first candidate (name, value, diagnosis) that ``got`` matches."""
    for name, value, text in candidates:
        if value is not None and np.shape(value) == np.shape(got) and close(got, value, decimals):
            return name, text
    return None


# ----------------------------------------------------------------------------------------------------------
# Function exercises: helpers switched off, learner's code run safely
# ----------------------------------------------------------------------------------------------------------
class HelperSwitchedOff(RuntimeError):
    """Raised inside a learner's function that calls a helper the check has switched off."""


@contextmanager
def switched_off(helpers: dict[str, Callable]):
    """Within the block, calling any of ``helpers`` (name -> function, Python or builtin) raises
    ``HelperSwitchedOff``, however it was imported; the names called are collected in the yielded list.

    It works through ``sys.setprofile``, so it also catches a helper bound to another name before the
    check; the previous profiler (if any) is restored afterwards.
    """
    codes = {getattr(f, "__code__", None): name for name, f in helpers.items() if hasattr(f, "__code__")}
    builtins = {id(f): name for name, f in helpers.items() if not hasattr(f, "__code__")}
    used: list[str] = []
    previous = sys.getprofile()

    def profile(frame, event, arg):
        name = None
        if event == "call":
            name = codes.get(frame.f_code)
        elif event == "c_call":
            name = builtins.get(id(arg))
        if name is not None:
            used.append(name)
            raise HelperSwitchedOff(name)
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(profile)
    try:
        yield used
    finally:
        sys.setprofile(previous)


@dataclass
class Run:
    """What a learner's function did on one input: its result, or the exception it raised."""

    result: object = None
    error: BaseException | None = None
    helper: str | None = None  # the switched-off helper it called, if any


def run_learner(fn: Callable, args: tuple, helpers: dict[str, Callable]) -> Run:
    """Call ``fn(*args)`` with ``helpers`` switched off; never raises."""
    with switched_off(helpers) as used:
        try:
            result = fn(*args)
        except HelperSwitchedOff as err:
            return Run(error=err, helper=str(err))
        except Exception as err:  # the learner's code: report it, never crash the notebook
            return Run(error=err, helper=used[0] if used else None)
    return Run(result=result, helper=used[0] if used else None)


def as_tensor_result(result, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """The learner's result as a float64 tensor of ``shape`` (a flat result of the right size is reshaped);
    else ``BadAnswer`` in one line."""
    if result is None:
        raise BadAnswer(f"your function returned None: return {what}.")
    if isinstance(result, (str, bytes)):
        raise BadAnswer(f"your function returned {_describe(result)}: return {what}.")
    try:
        t = torch.as_tensor(np.asarray(result.detach().cpu() if isinstance(result, torch.Tensor) else result,
                                       dtype=np.float64))
    except (TypeError, ValueError):
        raise BadAnswer(f"your function returned {_describe(result)}, which is not numbers: return {what}.") from None
    if [n for n in t.shape if n != 1] != [n for n in shape if n != 1]:  # extra axes of length 1 are fine
        raise BadAnswer(f"your function returned shape {tuple(t.shape)}; expected {what}, shape {shape}.")
    t = t.reshape(shape)
    if not torch.isfinite(t).all():
        raise BadAnswer("your function returned NaN or infinite values.")
    return t


def fresh_seed(seed: int | None) -> int:
    """The given seed, or a new one each call: function checks use inputs the learner has not seen."""
    return int.from_bytes(np.random.default_rng().bytes(4), "little") if seed is None else seed
