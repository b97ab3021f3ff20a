"""The course's views for any model, in one call: ``inspect(model, *inputs)``.

Each notebook builds explorers for its own models. :func:`inspect` points the same views at a model
of your own. It works in two steps: **record**, then **build views**. It runs the model once on your
inputs (``model(*inputs, **kwargs)``) with every recorder that finds something in it open, then builds
one view per recorded component and returns an :class:`Inspector` widget with a picker::

    from course_utils.inspector import inspect
    inspector = inspect(model, x)          # the last expression of a cell shows the widget
    inspector.views                        # {"encoder.lstm": <state explorer>, "attention": ..., ...}
    inspector.records["encoder.lstm"]      # the record behind a view (an LSTMTrace here)
    inspector.recordings["lstm"].calls("decoder")   # every call, as recorded
    inspector.save("view.html")            # the view shown now, as one file that works offline

What it records (at any depth of nesting, named as in ``model.named_modules()``, ``""`` = the model):

- every ``nn.LSTM`` (stacked, bidirectional, time-major or batch-first, packed, ``proj_size``),
  ``nn.GRU`` and plain ``nn.RNN``, every ``nn.LSTMCell`` / ``nn.GRUCell`` called in a loop: h (and c)
  and the gates of every layer, direction and step (:mod:`course_utils.tracing`, :mod:`course_utils.gru_tracing`,
  :mod:`course_utils.cell_tracing`), shown in the state view and searchable for patterns of units
  (:mod:`course_utils.pattern_plots`);
- every ``nn.MultiheadAttention`` (also inside ``nn.TransformerEncoder``, also when its caller passes
  ``need_weights=False``) and every hand-written attention module that exposes its weights with
  :func:`course_utils.capture.expose_attention` (the course's ``BahdanauAttention``,
  ``AdditiveAttentionPooling``, the layer poolings of notebook 09): per-head weights;
- every Hugging Face transformer inside the model that returns attentions: BERT-style encoders,
  DistilBERT, decoder-only models (GPT-2 style, shown as causal) and encoder-decoders (BART/T5 style:
  encoder self-, decoder self- and cross-attention), by layer and head
  (:mod:`course_utils.transformer_attention`).

Every call is recorded. A module called once per step of a loop (a decoder's LSTM or its attention)
is shown as one sequence, its calls joined (a decoder's attention over 12 steps: one steps x source
alignment); the view's note says how. Calls that do not continue each other get one view per call.

Long inputs: a view shows at most ``max_steps`` positions (default 64) starting at ``window_start``
and says so in its note; the records stay whole. The model runs in eval mode (no dropout) and without
gradients; its mode is restored afterwards.

What it cannot show: recurrent or attention code
written without modules (a loop of matrix products inside one forward), and attention computed by a
fused kernel that never returns weights (other than ``nn.MultiheadAttention`` and Hugging Face models,
whose fused paths are switched off while recording).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import torch
from torch import nn

from .capture import attention_modules, capture_attention
from .plots import window_bounds
from .records import Recording, holdings
from .widgets import FigureExplorer

__all__ = ["Inspector", "NothingToInspectError", "inspect", "window_trace"]

#: Positions (time steps, tokens) a view shows at most; longer inputs get a window.
MAX_STEPS = 64

LOOKED_FOR = (
    "nn.LSTM, nn.GRU, nn.RNN, nn.LSTMCell/nn.GRUCell, nn.MultiheadAttention (also inside "
    "nn.TransformerEncoder), attention modules that call course_utils.capture.expose_attention, and "
    "Hugging Face transformers (BERT, DistilBERT, GPT-2, BART, T5, ...)"
)

#: kind -> how the picker names it
KIND_LABELS = {
    "lstm": "LSTM states",
    "gru": "GRU states",
    "rnn": "RNN states",
    "cell": "recurrent cell states",
    "pattern": "pattern search",
    "attention": "attention",
    "transformer": "transformer attention",
}


class NothingToInspectError(ValueError):
    """The model holds none of the components :func:`inspect` can look inside."""


def window_trace(trace: Any, start: int, stop: int) -> Any:
    """The steps ``start .. stop - 1`` of a trace (LSTM or GRU), as a trace (lengths clipped)."""
    if not 0 <= start < stop <= trace.seq_len:
        raise ValueError(
            f"window must satisfy 0 <= start < stop <= {trace.seq_len}, got {start, stop}"
        )
    names = (*getattr(trace, "states", ("h", "c")), *getattr(trace, "gates", ("i", "f", "g", "o")))
    cut = {k: getattr(trace, k)[:, :, :, start:stop] for k in names}
    if getattr(trace, "h_cell", None) is not None:
        cut["h_cell"] = trace.h_cell[:, :, :, start:stop]
    inputs = tuple(x[:, start:stop] for x in trace.inputs)
    lengths = (trace.lengths - start).clamp(min=1, max=stop - start)
    return dataclasses.replace(trace, inputs=inputs, lengths=lengths, **cut)


def _labels(
    tokens: Any, name: str, n: int, length: int, notes: list[str], what: str = "tokens"
) -> list[list[str]] | None:
    """Position labels for one component, one list per example, or None (numbered).

    ``tokens``: a dict picks by component name (``{"encoder": src, "decoder": tgt}``); one list
    (or one per example) labels every component with at least that many positions; a component
    with more positions than labels is numbered instead, and its note says so.
    """
    if isinstance(tokens, Mapping):
        tokens = tokens.get(name)
    if tokens is None:
        return None
    tokens = list(tokens)
    if tokens and isinstance(tokens[0], str):
        tokens = [tokens] * n
    if len(tokens) != n:
        raise ValueError(f"{what}: got {len(tokens)} label lists for {n} examples")
    out = [list(map(str, t)) for t in tokens]
    short = min(len(t) for t in out)
    if short < length:
        notes.append(
            f"{what}= gives {short} labels but this view has {length} positions: numbered "
            f"instead ({what}={{{name!r}: [...]}} labels one component)"
        )
        return None
    return out


# -- step 1: record --------------------------------------------------------------------------------
#: recorder kind -> the module classes it traces (a subclass with its own forward is left out)
_RECURRENT = {
    "lstm": (nn.LSTM,),
    "gru": (nn.GRU,),
    "rnn": (nn.RNN,),
    "cell": (nn.LSTMCell, nn.GRUCell),
}


def _open_tracer(kind: str, model: nn.Module, names: list[str]):
    if kind == "lstm":
        from .tracing import trace_lstms as tracer
    elif kind == "gru":
        from .gru_tracing import trace_grus as tracer
    elif kind == "rnn":
        from .gru_tracing import trace_rnns as tracer
    else:
        from .cell_tracing import trace_cells as tracer
    return tracer(model, only=names)


def _recorders(
    model: nn.Module,
) -> tuple[dict[str, Callable[[], contextlib.AbstractContextManager]], dict[str, str]]:
    """kind -> a function opening the recorder of that kind, for the kinds found in ``model``; and
    the modules left out, name -> why."""
    found: dict[str, Callable[[], contextlib.AbstractContextManager]] = {}
    skipped: dict[str, str] = {}
    for kind, classes in _RECURRENT.items():
        names = []
        for name, module in model.named_modules():
            base = next((c for c in classes if isinstance(module, c)), None)
            if base is None:
                continue
            if type(module).forward is not base.forward:  # its own forward: tracing would skip it
                skipped[name] = (
                    f"a {type(module).__name__} (subclass of nn.{base.__name__} with its own "
                    "forward) is not traced"
                )
            else:
                names.append(name)
        if names:
            found[kind] = lambda kind=kind, names=names: _open_tracer(kind, model, names)
    if attention_modules(model):
        found["attention"] = lambda: capture_attention(model)
    if "transformers" in sys.modules:  # a model holding a transformers model has imported it
        from .transformer_attention import transformer_models

        if transformer_models(model):
            from .transformer_attention import capture_transformer_attention

            found["transformer"] = lambda: capture_transformer_attention(model)
    return found, skipped


def _record(
    model: nn.Module, inputs: tuple, kwargs: Mapping[str, Any]
) -> tuple[dict, Any, dict[str, str]]:
    """Run the model once in eval mode, no gradients, with every recorder open."""
    recorders, skipped = _recorders(model)
    if not recorders:
        left_out = "".join(f" {n or '(the model)'}: {why}." for n, why in skipped.items())
        raise NothingToInspectError(
            f"inspect found nothing to look inside {type(model).__name__}: it looks for "
            f"{LOOKED_FOR}; this model holds {holdings(model)}. (A hand-written attention module "
            "is shown once its forward calls course_utils.capture.expose_attention(self, weights).)"
            + left_out
        )
    was_training = [(m, m.training) for m in model.modules()]
    recordings: dict[str, Recording] = {}
    with contextlib.ExitStack() as stack:
        model.eval()
        stack.callback(lambda: [m.train(t) for m, t in was_training])
        stack.enter_context(torch.no_grad())
        for kind, open_recorder in recorders.items():
            recordings[kind] = stack.enter_context(open_recorder())
        output = model(*inputs, **kwargs)
    return recordings, output, skipped


# -- step 2: build views ---------------------------------------------------------------------------
@dataclasses.dataclass
class _Component:
    """One view to build: its key in ``Inspector.views``, kind, record and note."""

    key: str
    kind: str
    record: Any
    note: str = ""


def _components(recordings: dict[str, Recording]) -> list[_Component]:
    """One component per recorded module (its calls joined), or per call when they do not join."""
    out = []
    for kind, rec in recordings.items():
        for name in rec.names:
            calls = rec.calls(name)
            if kind == "transformer":  # one call of a model: encoder, decoder and cross records
                part = {"self": "", "decoder self": " (decoder self)", "cross": " (cross)"}
                several = len({record.call for record in calls}) > 1
                for record in calls:
                    key = name + part.get(record.kind, f" ({record.kind})")
                    key += f" (call {record.call})" if several else ""
                    out.append(_Component(key, kind, record))
                continue
            record, how = rec.joined(name)
            if len(calls) > 1 and record is calls[-1]:  # not the steps of one loop
                for k, call in enumerate(calls):
                    out.append(
                        _Component(
                            f"{name} (call {k})",
                            kind,
                            call,
                            f"call {k} of {len(calls)}: the calls do not continue each other",
                        )
                    )
                continue
            out.append(_Component(name, kind, record, how))
    return out


def _state_views(
    comp: _Component, tokens: Any, max_steps: int, window_start: int
) -> list[tuple[_Component, FigureExplorer]]:
    """The state view and the pattern-search view of a traced LSTM, GRU or cell."""
    from .pattern_plots import pattern_explorer
    from .state_plots import state_explorer

    trace, notes = comp.record, [comp.note] if comp.note else []
    t0, t1 = window_bounds(trace.seq_len, window_start, max_steps)
    if (t0, t1) != (0, trace.seq_len):
        notes.append(
            f"T = {trace.seq_len} steps: steps {t0}-{t1 - 1} shown (window_start= and "
            "max_steps= pick others; inspector.records holds them all)"
        )
        trace = window_trace(trace, t0, t1)
    labels = _labels(tokens, comp.record.name, trace.batch, t1, notes)
    if labels is not None:
        labels = [row[t0:t1] for row in labels]
    note = "; ".join(notes)
    states = dataclasses.replace(comp, note=note)
    pattern_key = f"{comp.key} (patterns)" if comp.key else "(patterns)"
    pattern = _Component(pattern_key, "pattern", comp.record, note)
    return [
        (states, state_explorer(trace, tokens=labels)),
        (pattern, pattern_explorer(trace, tokens=labels)),
    ]


def _attention_view(
    comp: _Component, tokens: Any, query_tokens: Any, max_steps: int, window_start: int
) -> FigureExplorer:
    """Per-head weights; a decoder's joined calls (rows: its steps) are not self-attention."""
    from .head_plots import head_explorer

    call = comp.record
    weights, padding = call.weights, call.key_padding_mask
    n, _, n_q, n_k = weights.shape
    lengths = None if padding is None else (~padding).sum(-1).tolist()
    notes = [comp.note] if comp.note else []
    labels = _labels(tokens, call.name, n, n_k, notes)
    rows = _labels(query_tokens, call.name, n, n_q, notes, what="query_tokens")
    self_attention = getattr(call, "steps", 1) == 1 and rows is None and n_q == n_k
    q0, q1 = window_bounds(n_q, window_start, max_steps)
    k0, k1 = window_bounds(n_k, window_start, max_steps)
    if (q0, q1, k0, k1) != (0, n_q, 0, n_k):
        notes.append(
            f"{n_q} queries x {n_k} keys: positions {k0}-{k1 - 1} shown; each row holds only "
            "the weight on the keys in the window (not rescaled)"
        )
        weights = weights[:, :, q0:q1, k0:k1]
        if lengths is not None:
            lengths = [max(1, min(k1, m) - k0) for m in lengths]
        if labels is not None:
            labels = [t[k0:k1] for t in labels]
        if rows is not None:
            rows = [t[q0:q1] for t in rows]
    comp.note = "; ".join(notes)
    what = "decoder steps x source" if getattr(call, "steps", 1) > 1 else "per head"
    return head_explorer(
        weights,
        tokens=labels,
        query_tokens=rows,
        lengths=lengths,
        self_attention=self_attention,
        title=f"{comp.key or 'the model'}: attention {what}",
    )


def _ids_labels(
    ids: Any, name: str, n: int, tokens: Any, tokenizer: Any, notes: list[str]
) -> list[list[str]] | None:
    """Labels for one sequence of ids: given ``tokens``, else from the tokenizer, else None."""
    length = ids.shape[-1] if torch.is_tensor(ids) else None
    if tokens is not None and length is not None:
        return _labels(tokens, name, n, length, notes)
    if tokenizer is not None and torch.is_tensor(ids):
        return [tokenizer.convert_ids_to_tokens(row.tolist()) for row in ids]
    return None


def _transformer_view(
    comp: _Component, inputs: tuple, kwargs: Mapping[str, Any], tokens, tokenizer, max_steps, start
) -> FigureExplorer:
    """Layer and head views of a transformer record; labels from ``tokens`` or the tokenizer."""
    from .bert_views import transformer_explorer

    record = comp.record
    n = record.weights.shape[0]
    ids = kwargs.get("input_ids")
    if ids is None and inputs and torch.is_tensor(inputs[0]) and not inputs[0].is_floating_point():
        ids = inputs[0]
    notes: list[str] = []
    source = _ids_labels(ids, record.name, n, tokens, tokenizer, notes)
    target = _ids_labels(kwargs.get("decoder_input_ids"), record.name, n, None, tokenizer, notes)
    if record.kind == "self":
        keys = queries = source
    elif record.kind == "cross":
        keys, queries = source, target
    else:  # decoder self-attention
        keys = queries = target
    t_key = record.weights.shape[-1]
    real = t_key if record.key_padding is None else int((~record.key_padding).sum(-1).max())
    w0, w1 = window_bounds(real, start, max_steps)
    if (w0, w1) != (0, real):
        notes.append(
            f"{real} tokens: tokens {w0}-{w1 - 1} shown; each row holds only the weight on the "
            "tokens in the window (not rescaled)"
        )
    comp.note = "; ".join(notes)
    return transformer_explorer(
        record,
        tokens=keys,
        query_tokens=queries,
        max_steps=max_steps,
        window_start=start,
        special_tokens=tuple(getattr(tokenizer, "all_special_tokens", ()) or ()),
    )


class Inspector(widgets.VBox):
    """One view per component of a model, with a picker; the records stay reachable.

    Attributes:
        views: view name -> its explorer. A component's name is as in ``named_modules`` (``""`` =
            the model); a recurrent component has a second view ``"<name> (patterns)"``
            (``"(patterns)"`` for the model itself); calls that do not continue each other are
            ``"<name> (call k)"``.
        kinds: view name -> ``"lstm"``, ``"gru"``, ``"rnn"``, ``"cell"``, ``"pattern"``, ``"attention"`` or
            ``"transformer"``.
        records: view name -> the record it draws (an ``LSTMTrace``, ``GRUTrace``, ``AttentionCall``
            or ``TransformerAttention``, whole: windows cut only the view).
        recordings: recorder kind -> its :class:`~course_utils.records.Recording` (every call).
        notes: view name -> what the view leaves out or how its calls were joined.
        skipped: module name -> why it was left out (a subclass of ``nn.LSTM`` with its own forward).
        output: what the model returned.
    """

    def __init__(
        self,
        views: dict[str, FigureExplorer],
        components: dict[str, _Component],
        *,
        recordings: dict[str, Recording],
        output: Any,
        model_name: str,
        skipped: Mapping[str, str] | None = None,
    ) -> None:
        self.views, self.recordings, self.output = views, recordings, output
        self.skipped = dict(skipped or {})
        self.kinds = {k: c.kind for k, c in components.items()}
        self.records = {k: c.record for k, c in components.items()}
        self.notes = {k: c.note for k, c in components.items() if c.note}
        options = [(f"{k or '(the model)'}: {KIND_LABELS[self.kinds[k]]}", k) for k in views]
        self.picker = widgets.Dropdown(
            options=options, description="component", style={"description_width": "initial"}
        )
        self.picker.layout.display = "none" if len(options) == 1 else None
        self.note = widgets.HTML()
        self.holder = widgets.Box(layout=widgets.Layout(max_width="100%"))
        found = Counter(self.kinds[k] for k in views if self.kinds[k] != "pattern")
        head = ", ".join(
            f"{v} {KIND_LABELS[k]} view{'s' if v > 1 else ''}" for k, v in found.items()
        )
        super().__init__(
            [
                widgets.HTML(f"<b>inspect({model_name})</b>: {head}"),
                self.picker,
                self.note,
                self.holder,
            ],
            layout=widgets.Layout(max_width="100%"),
        )
        self.picker.observe(lambda _c: self._show(), names="value")
        self._show()

    @property
    def current(self) -> FigureExplorer:
        """The view shown now."""
        return self.views[self.picker.value]

    def _show(self) -> None:
        name = self.picker.value
        self.holder.children = [self.views[name]]
        note = self.notes.get(name, "")
        self.note.value = f"<i>{note}</i>" if note else ""

    def save(self, path: str, **options: Any) -> Any:
        """Save the view shown now: ``.png``, ``.svg``, ``.pdf``, or ``.html`` (works offline)."""
        return self.current.save(path, **options)

    def summary(self) -> str:
        """One line per view: name, kind and the shape of what it shows."""
        lines = []
        for name, kind in self.kinds.items():
            record = self.records[name]
            if kind == "pattern":
                lines.append(f"{name!r}: pattern search over the states above")
                continue
            if hasattr(record, "h"):
                shape = f"h {tuple(record.h.shape)} (layers, directions, batch, steps, units)"
            else:
                shape = f"weights {tuple(record.weights.shape)}"
            note = f"; {self.notes[name]}" if name in self.notes else ""
            lines.append(f"{name or '(the model)'!r}: {kind}, {shape}{note}")
        return "\n".join(lines)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        if data is None:
            return bundle
        static, static_meta = self.current._repr_mimebundle_(**kwargs)
        data["image/png"] = static["image/png"]  # reads without a kernel (GitHub, nbviewer)
        data["text/plain"] = self.summary()
        return data, {**(metadata or {}), **static_meta}


def inspect(
    model: nn.Module,
    *inputs: Any,
    tokens: Sequence[str] | Sequence[Sequence[str]] | Mapping[str, Sequence] | None = None,
    query_tokens: Sequence[str] | Sequence[Sequence[str]] | Mapping[str, Sequence] | None = None,
    tokenizer: Any = None,
    max_steps: int = MAX_STEPS,
    window_start: int = 0,
    **kwargs: Any,
) -> Inspector:
    """Run ``model(*inputs, **kwargs)`` once, recording everything; return one view per component.

    Args:
        model: any ``nn.Module`` holding at least one of the components listed in the module's
            docstring (or being one).
        inputs, kwargs: what the model is called with (kwargs go to the model).
        tokens: position labels: one list for every example, or one per example, used by every
            view with that many positions (others are numbered, and say so); or a dict
            ``{component name: labels}`` (a seq2seq model: ``{"encoder": src, "decoder": tgt,
            "attention": src}``).
        query_tokens: labels of an attention's rows when they are not its keys (a decoder's
            steps): a list, or a dict by component name.
        tokenizer: a Hugging Face tokenizer: transformer views read their tokens from the input ids.
        max_steps: the most positions (steps, tokens) a view shows; longer inputs get a window.
        window_start: the first position of that window.

    Raises:
        NothingToInspectError: the model holds none of the components looked for, or the forward
            pass called none of them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"inspect expects an nn.Module, got {type(model).__name__}")
    if max_steps < 2:
        raise ValueError(f"max_steps must be at least 2, got {max_steps}")
    recordings, output, skipped = _record(model, inputs, kwargs)
    views: dict[str, FigureExplorer] = {}
    components: dict[str, _Component] = {}
    for comp in _components(recordings):
        if comp.kind in ("lstm", "gru", "rnn", "cell"):
            built = _state_views(comp, tokens, max_steps, window_start)
        elif comp.kind == "attention":
            view = _attention_view(comp, tokens, query_tokens, max_steps, window_start)
            built = [(comp, view)]
        else:
            view = _transformer_view(
                comp, inputs, kwargs, tokens, tokenizer, max_steps, window_start
            )
            built = [(comp, view)]
        for c, view in built:
            views[c.key], components[c.key] = view, c
    if not views:
        watched = sorted({n for rec in recordings.values() for n in rec.watched})
        raise NothingToInspectError(
            f"{type(model).__name__} holds {', '.join(repr(n) for n in watched)} but the forward "
            "pass called none of them with these inputs"
        )
    return Inspector(
        views,
        components,
        recordings=recordings,
        output=output,
        model_name=type(model).__name__,
        skipped=skipped,
    )
