"""One container for everything a recorder records: the same lookups for states and attention.

Every recorder in the course (:func:`~course_utils.tracing.trace_lstms` for LSTMs,
:func:`~course_utils.gru_tracing.trace_grus` and ``trace_rnns`` for GRUs and plain RNNs,
:func:`~course_utils.cell_tracing.trace_cells` for ``nn.LSTMCell``/``nn.GRUCell`` loops,
:func:`~course_utils.capture.capture_attention` for attention modules,
:func:`~course_utils.transformer_attention.capture_transformer_attention` for Hugging Face
transformers) yields a :class:`Recording`, and every record in it has a ``name`` and a ``call``::

    with trace_lstms(model) as rec:          # or capture_attention(model), ...
        model(x)
    rec[0]                  # the first call recorded (of any module), a record
    rec["encoder.lstm"]     # the last call of that module, a record
    rec.calls("decoder")    # every call of that module, in order
    rec.names               # the modules called, in the order of their first call
    rec.joined("decoder")   # a module called once per step of a loop: its calls as one sequence

Modules are named as in ``model.named_modules()``: ``""`` is the model itself. ``record.call`` counts
the calls of that module from 0. Every recorder takes ``only=`` (a list of names, or a function of
the name) to watch some modules and not others, checked by :func:`select_modules`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from torch import nn

__all__ = ["Record", "Recording", "Selection", "holdings", "select_modules"]

#: ``only=``: module names, or a function that says yes or no to a name.
Selection = Sequence[str] | Callable[[str], bool] | None


class Record(Protocol):
    """What every record has: the module's name (``""`` = the model) and its call number (0-based)."""

    name: str
    call: int


_R = TypeVar("_R", bound=Record)


def _label(name: str) -> str:
    return repr(name) if name else "'' (the model itself)"


@dataclass
class Recording(Generic[_R]):
    """The records of one ``with`` block, in the order the calls happened.

    Attributes:
        what: what was recorded, for messages (``"LSTM"``, ``"attention module"``).
        watched: the names of the modules that were watched (``""`` = the model).
        records: every record, in call order.
    """

    what: str
    watched: tuple[str, ...] = ()
    records: list[_R] = field(default_factory=list)

    def next_call(self, name: str) -> int:
        """The ``call`` number the next record of module ``name`` gets (its calls so far)."""
        return sum(record.name == name for record in self.records)

    @property
    def names(self) -> list[str]:
        """Names of the modules that were called, in the order of their first call."""
        return list(dict.fromkeys(record.name for record in self.records))

    def calls(self, name: str) -> list[_R]:
        """Every call of module ``name``, in order (a module called in a loop has one per step)."""
        found = [record for record in self.records if record.name == name]
        if not found:
            watched = ", ".join(_label(n) for n in self.watched) or "none"
            called = ", ".join(_label(n) for n in self.names) or "none"
            raise KeyError(
                f"no {self.what} call recorded for {_label(name)}; modules called: {called}; "
                f"modules watched: {watched}. Did the forward pass run inside the `with` block? "
                "(Names are as in model.named_modules(); '' is the model itself.)"
            )
        return found

    def __getitem__(self, key: int | str) -> _R:
        """``rec[k]``: the k-th call recorded; ``rec["name"]``: the last call of that module."""
        if isinstance(key, str):
            return self.calls(key)[-1]
        if isinstance(key, bool) or not isinstance(key, int):
            raise TypeError(
                f"index a recording with a call number (int) or a module name (str), got {key!r}"
            )
        if not -len(self.records) <= key < len(self.records):
            raise IndexError(
                f"call {key} of {len(self.records)} recorded {self.what} calls"
                + ("" if self.records else ": call the model inside the `with` block")
            )
        return self.records[key]

    def joined(self, name: str) -> tuple[_R, str]:
        """Module ``name``'s calls as one record, and a sentence saying how they were put together.

        One call: that call. Several calls that are the steps of one loop (each continues where the
        previous one stopped, e.g. a decoder's LSTM or its attention called once per output step):
        one record over all steps, if the record type knows how to join its calls (a class method
        ``join(calls)`` returning ``(joined record, sentence)``, or ``None`` when they do not). Other
        repeated calls: the last call, and the sentence says so (``calls(name)`` holds them all).
        """
        calls = self.calls(name)
        if len(calls) == 1:
            return calls[0], ""
        join = getattr(type(calls[0]), "join", None)
        joined = join(calls) if join is not None else None
        if joined is not None:
            return joined
        return calls[-1], (
            f"called {len(calls)} times on inputs that do not continue each other: the last call "
            "is shown (every call is kept, one view per call)"
        )

    def __iter__(self) -> Iterator[_R]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, name: object) -> bool:
        return any(record.name == name for record in self.records)

    def clear(self) -> None:
        """Forget what was recorded (e.g. between two forward passes in one ``with`` block)."""
        self.records.clear()


def holdings(model: nn.Module) -> str:
    """What a model is made of, e.g. ``"Linear x2, RNN x1"`` (leaf module types): for messages that
    say what a recorder found instead of what it looks for."""
    leaves = Counter(
        type(m).__name__ for m in model.modules() if m is not model and not any(m.children())
    )
    return ", ".join(f"{k} x{v}" for k, v in leaves.most_common()) or "no submodules"


def select_modules(
    model: nn.Module,
    is_wanted: Callable[[nn.Module], bool],
    only: Selection,
    *,
    recorder: str,
    what: str,
    hint: str = "",
) -> dict[str, Any]:
    """The modules of ``model`` a recorder watches, by name (``""`` = the model), after ``only=``.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: no module of the kind (``hint`` says what to do instead), a name in ``only``
            that is not one of them, or an ``only`` that selects none (the message lists them).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"{recorder} expects an nn.Module, got {type(model).__name__}")
    found = {name: m for name, m in model.named_modules() if is_wanted(m)}
    if not found:
        raise ValueError(f"no {what} found in {type(model).__name__}. {hint}".rstrip())
    if only is None:
        return found
    if callable(only):
        chosen = {name: m for name, m in found.items() if only(name)}
    else:
        if isinstance(only, str):
            raise TypeError(f"only= takes a list of module names, got the string {only!r}")
        unknown = sorted(set(only) - set(found))
        if unknown:
            raise ValueError(
                f"only= names {unknown} are not {what}s of {type(model).__name__}; "
                f"found {list(found)} ('' is the model itself)"
            )
        chosen = {name: m for name, m in found.items() if name in set(only)}
    if not chosen:
        raise ValueError(
            f"only= matched none of the {len(found)} {what}s of {type(model).__name__}: "
            f"{list(found)}; pass some of these names, or a function that returns True for them"
        )
    return chosen
