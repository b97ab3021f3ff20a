"""The course's views for any model, in one call: ``inspect(model, *inputs)``.

Each notebook builds explorers for its own models. :func:`inspect` points the same views at a model
of your own: it runs the model once on your inputs (``model(*inputs, **kwargs)``), records what can
be looked inside, and returns an :class:`Inspector` widget with one view per component::

    from course_utils.inspector import inspect
    inspector = inspect(model, x)          # the last expression of a cell shows the widget
    inspector.views                        # {"encoder.lstm": <state explorer>, "attn": <heads>, ...}
    inspector.traces["encoder.lstm"]       # the raw LSTMTrace (h, c, gates of every layer)
    inspector.attentions["attn"]           # (N, heads, L, S) per-head weights
    inspector.views["attn"].save("attn.png")

What it finds (at any depth of nesting, named as in ``model.named_modules()``, ``""`` = the model):

- every ``nn.LSTM`` (stacked, bidirectional, time-major or batch-first, packed input): the state-flow
  view of :func:`course_utils.state_plots.state_explorer`, recorded with
  :func:`course_utils.tracing.trace_lstms`;
- every ``nn.MultiheadAttention`` (also inside ``nn.TransformerEncoder``, also when its caller passes
  ``need_weights=False``): per-head weights in :func:`course_utils.head_plots.head_explorer`,
  recorded with :func:`course_utils.capture.capture_attention`;
- a Hugging Face BERT-style encoder (a ``BertModel``, or a model containing one): attention by layer
  and head as a heatmap or token lines (the canvas of :mod:`course_utils.bert_views`), recorded by
  hooks on its self-attention modules while it runs with eager attention.

Long inputs: a view shows at most ``max_steps`` positions (default 64) starting at ``window_start``
and says so in its title line; the recorded data stay whole. The model runs in eval mode (no
dropout) and without gradients; its mode is restored afterwards.

What it cannot show: GRU, ``nn.LSTMCell`` loops and hand-written attention (no module to hook);
``nn.LSTM`` with ``proj_size > 0``; attention computed by a fused kernel that never returns weights
(other than ``nn.MultiheadAttention`` and BERT-style models, whose fused paths are switched off).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

from .capture import capture_attention
from .tracing import LSTMTrace, trace_lstms
from .widgets import FigureExplorer, index_control

__all__ = ["Inspector", "NothingToInspectError", "inspect", "bert_encoders", "window_trace"]

#: Positions (time steps, tokens) a view shows at most; longer inputs get a window.
MAX_STEPS = 64

LOOKED_FOR = (
    "nn.LSTM, nn.MultiheadAttention (also inside nn.TransformerEncoder) and "
    "transformers BERT-style encoders (BertModel or a model containing one)"
)


class NothingToInspectError(ValueError):
    """The model holds none of the components :func:`inspect` can look inside."""


def bert_encoders(model: nn.Module) -> dict[str, nn.Module]:
    """Hugging Face BERT-style encoders inside ``model`` (or ``model`` itself), by name.

    A BERT-style encoder is a transformers model with ``embeddings``, an ``encoder`` and a config
    that names its heads and layers (``BertModel``, ``RobertaModel``, ...); a model that wraps one
    (``BertForSequenceClassification``) is found through it.
    """
    found = {}
    for name, module in model.named_modules():
        config = getattr(module, "config", None)
        if (
            hasattr(module, "embeddings")
            and hasattr(module, "encoder")
            and getattr(config, "num_attention_heads", None)
            and getattr(config, "num_hidden_layers", None)
        ):
            found[name] = module
    return found


def _self_attentions(bert: nn.Module) -> list[nn.Module]:
    """The self-attention modules of a BERT-style encoder, in layer order."""
    found = [m for _, m in bert.named_modules() if type(m).__name__.endswith("SelfAttention")]
    if not found:
        raise NothingToInspectError(
            f"{type(bert).__name__} looks like a BERT-style encoder but has no *SelfAttention "
            "module to record attention from"
        )
    return found


@contextlib.contextmanager
def _record_bert(bert: nn.Module, sink: list[torch.Tensor]):
    """Record each layer's ``(N, heads, T, T)`` attention while ``bert`` runs with eager attention."""
    previous = bert.config._attn_implementation
    switch = hasattr(bert, "set_attn_implementation") and previous != "eager"
    handles = []

    def hook(_module, _args, output):
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if weights is not None:
            sink.append(weights.detach())

    try:
        if switch:
            bert.set_attn_implementation("eager")  # fused kernels return no weights
        handles = [m.register_forward_hook(hook) for m in _self_attentions(bert)]
        yield
    finally:
        for handle in handles:
            handle.remove()
        if switch:
            bert.set_attn_implementation(previous)


def _holdings(model: nn.Module) -> str:
    """What a model is made of, e.g. ``"Linear x2, GRU x1"`` (leaf module types)."""
    leaves = Counter(
        type(m).__name__ for m in model.modules() if m is not model and not any(m.children())
    )
    return ", ".join(f"{k} x{v}" for k, v in leaves.most_common()) or "no submodules"


def window_trace(trace: LSTMTrace, start: int, stop: int) -> LSTMTrace:
    """The steps ``start .. stop - 1`` of a trace, as a trace (lengths clipped to the window)."""
    if not 0 <= start < stop <= trace.seq_len:
        raise ValueError(
            f"window must satisfy 0 <= start < stop <= {trace.seq_len}, got {start, stop}"
        )
    cut = {k: getattr(trace, k)[:, :, :, start:stop] for k in ("h", "c", "i", "f", "g", "o")}
    inputs = tuple(x[:, start:stop] for x in trace.inputs)
    lengths = (trace.lengths - start).clamp(min=1, max=stop - start)
    return dataclasses.replace(trace, inputs=inputs, lengths=lengths, **cut)


def _window(n: int, start: int, size: int) -> tuple[int, int]:
    if n <= size:
        return 0, n
    start = min(max(0, start), n - size)
    return start, start + size


def _token_lists(tokens, n: int, length: int) -> list[list[str]] | None:
    """``tokens`` as one list per example: one list for all, a list per example, or None."""
    if tokens is None:
        return None
    tokens = list(tokens)
    if tokens and isinstance(tokens[0], str):
        tokens = [tokens] * n
    if len(tokens) != n:
        raise ValueError(f"tokens: got {len(tokens)} token lists for {n} examples")
    out = [list(map(str, t)) for t in tokens]
    if any(len(t) < length for t in out):
        raise ValueError(f"tokens: each list needs {length} labels (one per position)")
    return out


def _find_ids(inputs: tuple, kwargs: Mapping[str, Any]) -> torch.Tensor | None:
    ids = kwargs.get("input_ids")
    if ids is None and inputs and torch.is_tensor(inputs[0]) and not inputs[0].is_floating_point():
        ids = inputs[0]
    return ids


class Inspector(widgets.VBox):
    """One view per component of a model, with a picker; the recorded data stay reachable.

    Attributes:
        views: component name (as in ``named_modules``; ``""`` = the model) -> its explorer.
        kinds: component name -> ``"lstm"``, ``"attention"`` or ``"bert"``.
        traces: LSTM name -> :class:`~course_utils.tracing.LSTMTrace` (the last call, whole).
        attentions: attention name -> ``(N, heads, L, S)`` per-head weights (the last call, whole);
            BERT-style encoder name -> ``(N, layers, heads, T, T)``.
        notes: component name -> what the view leaves out (windows, repeated calls).
        output: what the model returned.
    """

    def __init__(
        self,
        views: dict[str, FigureExplorer],
        kinds: dict[str, str],
        *,
        traces: dict[str, LSTMTrace],
        attentions: dict[str, torch.Tensor],
        notes: dict[str, str],
        output: Any,
        model_name: str,
    ) -> None:
        self.views, self.kinds, self.traces = views, kinds, traces
        self.attentions, self.notes, self.output = attentions, notes, output
        label = {"lstm": "LSTM", "attention": "multi-head attention", "bert": "BERT encoder"}
        options = [(f"{name or '(the model)'}: {label[kinds[name]]}", name) for name in views]
        self.picker = widgets.Dropdown(
            options=options, description="component", style={"description_width": "initial"}
        )
        self.picker.layout.display = "none" if len(options) == 1 else None
        self.note = widgets.HTML()
        self.holder = widgets.Box(layout=widgets.Layout(max_width="100%"))
        found = Counter(kinds.values())
        head = ", ".join(f"{v} {label[k]}{'s' if v > 1 else ''}" for k, v in found.items())
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

    def save(self, path: str) -> None:
        """Save the view shown now (``.png``, ``.svg`` or ``.pdf``)."""
        self.current.save(path)

    def summary(self) -> str:
        """One line per view: name, kind and what it shows."""
        lines = []
        for name, kind in self.kinds.items():
            data = self.traces.get(name) if kind == "lstm" else self.attentions.get(name)
            shape = (
                f"h {tuple(data.h.shape)} (layers, directions, batch, steps, units)"
                if kind == "lstm"
                else f"weights {tuple(data.shape)}"
            )
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
    tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
    tokenizer: Any = None,
    max_steps: int = MAX_STEPS,
    window_start: int = 0,
    **kwargs: Any,
) -> Inspector:
    """Run ``model(*inputs, **kwargs)`` once and return the course's views of what it holds.

    Args:
        model: any ``nn.Module`` with at least one ``nn.LSTM``, ``nn.MultiheadAttention`` or
            BERT-style encoder inside (or being one).
        inputs, kwargs: what the model is called with (kwargs go to the model).
        tokens: position labels for attention views: one list for every example, or one per example.
        tokenizer: a Hugging Face tokenizer: BERT views read their tokens from the input ids with it.
        max_steps: the most positions (steps, tokens) a view shows; longer inputs get a window.
        window_start: the first position of that window.

    Raises:
        NothingToInspectError: the model holds none of the components looked for.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"inspect expects an nn.Module, got {type(model).__name__}")
    if max_steps < 2:
        raise ValueError(f"max_steps must be at least 2, got {max_steps}")
    lstms = {n: m for n, m in model.named_modules() if isinstance(m, nn.LSTM)}
    lstm_names = list(lstms)
    skipped = {
        n: "proj_size > 0: its h is a projection, not traced"
        for n, m in lstms.items()
        if m.proj_size > 0
    }
    mha_names = [n for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    berts = bert_encoders(model)
    if not (lstm_names or mha_names or berts):
        raise NothingToInspectError(
            f"inspect found nothing to look inside {type(model).__name__}: it looks for "
            f"{LOOKED_FOR}; this model holds {_holdings(model)}. (GRU, nn.LSTMCell loops and "
            "hand-written attention have no module whose states or weights can be recorded.)"
        )
    bert_weights: dict[str, list[torch.Tensor]] = {name: [] for name in berts}
    was_training = [(m, m.training) for m in model.modules()]
    with contextlib.ExitStack() as stack:
        model.eval()
        stack.callback(lambda: [m.train(t) for m, t in was_training])
        stack.enter_context(torch.no_grad())
        # one tracer per module: an LSTM the tracer cannot follow leaves the others traced
        tracers = {
            n: stack.enter_context(trace_lstms(m)) for n, m in lstms.items() if n not in skipped
        }
        cap = stack.enter_context(capture_attention(model)) if mha_names else None
        for name, bert in berts.items():
            stack.enter_context(_record_bert(bert, bert_weights[name]))
        output = model(*inputs, **kwargs)

    views: dict[str, FigureExplorer] = {}
    kinds: dict[str, str] = {}
    traces: dict[str, LSTMTrace] = {}
    attentions: dict[str, torch.Tensor] = {}
    notes: dict[str, str] = {}
    for name, tracer in tracers.items():
        calls = list(tracer)
        if not calls:
            continue
        calls = [dataclasses.replace(t, name=name) for t in calls]  # named as in the model
        trace = traces[name] = calls[-1]
        kinds[name] = "lstm"
        note = [f"called {len(calls)} times: the last call is shown"] if len(calls) > 1 else []
        t0, t1 = _window(trace.seq_len, window_start, max_steps)
        if (t0, t1) != (0, trace.seq_len):
            note.append(
                f"T = {trace.seq_len} steps: steps {t0}-{t1 - 1} shown (window_start= and "
                "max_steps= pick others; inspector.traces holds them all)"
            )
            trace = window_trace(trace, t0, t1)
        from .state_plots import state_explorer

        views[name] = state_explorer(trace)
        if note:
            notes[name] = "; ".join(note)
    if cap is not None:
        for name in mha_names:
            key = name or type(model).__name__  # capture_attention names the model by its type
            if key not in cap:
                continue
            calls = cap.calls_of(key)
            call = calls[-1]
            weights = attentions[name] = call.weights
            kinds[name] = "attention"
            views[name] = _attention_view(
                weights, call.key_padding_mask, tokens, max_steps, window_start, notes, name
            )
            if len(calls) > 1:
                notes[name] = f"called {len(calls)} times: the last call is shown; " + notes.get(
                    name, ""
                )
    for name, layers in bert_weights.items():
        if not layers:
            continue
        weights = attentions[name] = torch.stack(layers, dim=1)  # (N, layers, heads, T, T)
        kinds[name] = "bert"
        views[name] = _bert_view(
            weights, inputs, kwargs, tokens, tokenizer, max_steps, window_start, notes, name
        )
    if not views and skipped:
        raise NothingToInspectError(
            f"{type(model).__name__}: nothing to show; not traced: "
            + "; ".join(f"{n or '(the model)'}: {why}" for n, why in skipped.items())
        )
    if not views:
        raise NothingToInspectError(
            f"{type(model).__name__} holds {', '.join(sorted(set(lstm_names + mha_names) | set(berts)))}"
            " but the forward pass called none of them with these inputs"
        )
    if skipped:
        first = next(iter(views))
        notes[first] = "; ".join(
            [notes.get(first, "")]
            + [f"{n or '(the model)'} not shown ({why})" for n, why in skipped.items()]
        ).lstrip("; ")
    return Inspector(
        views,
        kinds,
        traces=traces,
        attentions=attentions,
        notes={k: v for k, v in notes.items() if v and k in views},
        output=output,
        model_name=type(model).__name__,
    )


def _attention_view(
    weights: torch.Tensor,
    padding: torch.Tensor | None,
    tokens,
    max_steps: int,
    window_start: int,
    notes: dict[str, str],
    name: str,
) -> FigureExplorer:
    from .head_plots import head_explorer

    n, _, n_q, n_k = weights.shape
    lengths = None if padding is None else (~padding).sum(-1).tolist()
    labels = _token_lists(tokens, n, n_k)
    q0, q1 = _window(n_q, window_start, max_steps)
    k0, k1 = _window(n_k, window_start, max_steps)
    if (q0, q1, k0, k1) != (0, n_q, 0, n_k):
        notes[name] = (
            f"{n_q} queries x {n_k} keys: positions {k0}-{k1 - 1} shown; each row holds only "
            "the weight on the keys in the window (not rescaled)"
        )
        weights = weights[:, :, q0:q1, k0:k1]
        if lengths is not None:
            lengths = [max(1, min(k1, n) - k0) for n in lengths]
        if labels is not None:
            labels = [t[k0:k1] for t in labels]
    return head_explorer(
        weights, tokens=labels, lengths=lengths, title=f"{name or 'the model'}: attention per head"
    )


def _bert_view(
    weights: torch.Tensor,
    inputs: tuple,
    kwargs: Mapping[str, Any],
    tokens,
    tokenizer,
    max_steps: int,
    window_start: int,
    notes: dict[str, str],
    name: str,
) -> FigureExplorer:
    """Layer, head, view and (when known) [CLS]/[SEP] controls over ``(N, L, heads, T, T)``."""
    from .bert_views import _ExplorerCanvas

    n, n_layers, n_heads, t, _ = weights.shape
    mask = kwargs.get("attention_mask")
    lengths = [t] * n if mask is None else [int(v) for v in mask.sum(-1).tolist()]
    ids = _find_ids(inputs, kwargs)
    if tokens is not None:
        labels = _token_lists(tokens, n, t)
    elif tokenizer is not None and ids is not None:
        labels = [tokenizer.convert_ids_to_tokens(row.tolist()) for row in ids]
    else:
        labels = [[str(k) for k in range(t)] for _ in range(n)]
    specials = set(getattr(tokenizer, "all_special_tokens", ()) or ())
    w0, w1 = _window(max(lengths), window_start, max_steps)
    if (w0, w1) != (0, max(lengths)):
        notes[name] = (
            f"{max(lengths)} tokens: tokens {w0}-{w1 - 1} shown; each row holds only the weight "
            "on the tokens in the window (not rescaled)"
        )
    arr = weights.numpy()

    def matrix(example: int, layer: int, head: int, hide: bool) -> tuple[np.ndarray, list[str]]:
        stop = min(lengths[example], w1)
        keep = list(range(w0, stop))
        if hide:
            keep = [k for k in keep if labels[example][k] not in specials] or keep
        layer_w = arr[example, layer - 1]
        m = layer_w.mean(0) if head == 0 else layer_w[head - 1]
        return m[np.ix_(keep, keep)], [labels[example][k] for k in keep]

    canvas: list = []

    def draw(
        fig, example: int, layer: int, head: int, view: str, hide_special: bool = False
    ) -> None:
        m, toks = matrix(example, layer, head, hide_special)
        if not fig.axes:
            canvas[:] = [_ExplorerCanvas(fig, max_steps)]
        which = "mean of heads" if head == 0 else f"head {head}"
        title = f"layer {layer}, {which}"
        if hide_special and view == "lines":
            title += " ([CLS]/[SEP] hidden, others not rescaled)"
        canvas[0].show(m, toks, title, view)

    controls = {
        "example": index_control("example", n),
        "layer": widgets.IntSlider(value=1, min=1, max=n_layers, description="layer"),
        "head": widgets.Dropdown(
            options=[("mean", 0)] + [(str(h), h) for h in range(1, n_heads + 1)],
            value=1 if n_heads > 1 else 0,
            description="head",
            layout=widgets.Layout(width="130px"),
        ),
        "view": widgets.ToggleButtons(
            options=["heatmap", "lines"], value="heatmap", description="view"
        ),
    }
    if specials:  # known only with a tokenizer
        controls["hide_special"] = widgets.Checkbox(value=False, description="hide [CLS]/[SEP]")
    return FigureExplorer(
        draw,
        controls,
        figsize=(5.6, 4.4),
        layout=None,
        clear=False,
        title=f"{name or 'the model'}: self-attention by layer and head",
    )
