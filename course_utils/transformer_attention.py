"""Record the attention of any Hugging Face transformer inside a model: encoders, decoders, both.

:func:`capture_transformer_attention` finds every transformers model inside ``model`` (BERT-style
encoders such as BERT and DistilBERT, decoder-only models such as GPT-2, encoder-decoder models such
as BART and T5) and records, per forward call, its attention weights by layer and head::

    with capture_transformer_attention(model) as rec:
        out = model(input_ids, attention_mask=mask)   # exactly what it returns without recording
    rec["bert"].weights.shape     # (N, layers, heads, T_query, T_key)
    rec["bert"].key_padding       # (N, T_key) True at padding, from attention_mask

How it works: for the length of the ``with`` block each transformers model runs with eager attention
(fused kernels return no weights); a forward pre-hook binds the call's arguments to the forward's
signature (positional or keyword) and asks for ``output_attentions=True`` and ``return_dict=True``; a
forward hook reads the weights from the output and gives the caller what it asked for: the same output
class, without the attention fields unless it asked for them, or its ``to_tuple()`` when it asked for
``return_dict=False``. transformers is imported only when a model contains one of its models.

Note:
    A model built with SDPA or flash attention computes the same outputs under eager attention only up
    to float rounding (about 1e-7); one built with ``attn_implementation="eager"`` returns them
    bit for bit.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .records import Recording, Selection, holdings, select_modules

__all__ = ["TransformerAttention", "capture_transformer_attention", "transformer_models"]

ENCODER = "BERT-style encoder"
DECODER = "decoder-only (GPT-2 style)"
ENCODER_DECODER = "encoder-decoder (BART/T5 style)"

#: Output fields that hold attention weights (stripped again when the caller did not ask for them).
ATTENTION_FIELDS = ("attentions", "encoder_attentions", "decoder_attentions", "cross_attentions")


@dataclass(frozen=True, eq=False)
class TransformerAttention:
    """One kind of attention of one forward call of a Hugging Face transformer.

    An encoder-decoder model gives up to three records per call, all named after the model and in
    this order: the encoder's self-attention (``kind="self"``), the decoder's (``"decoder self"``,
    causal) and the decoder's attention over the encoder (``"cross"``).

    Attributes:
        name: the transformer's name in ``model.named_modules()`` (``""`` = the model itself; a
            model with a task head, e.g. ``BertForSequenceClassification``, is found through its
            base model, ``"bert"``).
        call: which forward call of that transformer, counted from 0 (its records share it).
        kind: ``"self"``, ``"decoder self"`` or ``"cross"`` (queries: decoder, keys: encoder).
        causal: True when each query sees only itself and earlier positions (decoders).
        weights: detached ``(N, layers, heads, T_query, T_key)``; each row sums to 1.
        key_padding: ``(N, T_key)`` bool, True at padding keys (from the call's attention mask), or
            None when the caller passed no mask.
        family: ``"BERT-style encoder"``, ``"decoder-only (GPT-2 style)"`` or
            ``"encoder-decoder (BART/T5 style)"``.
    """

    name: str
    call: int
    kind: str
    causal: bool
    weights: torch.Tensor
    key_padding: torch.Tensor | None
    family: str

    @property
    def num_layers(self) -> int:
        return self.weights.shape[1]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[2]


def _modeling_utils() -> Any:
    """transformers' modeling module if it is loaded (a model of it can exist only then), else None."""
    return sys.modules.get("transformers.modeling_utils")


def _has_heads(module: nn.Module) -> bool:
    config = getattr(module, "config", None)
    try:
        return bool(getattr(config, "num_attention_heads", None))
    except Exception:  # a config that computes the attribute from missing fields
        return False


def transformer_models(model: nn.Module) -> dict[str, nn.Module]:
    """The transformers models inside ``model`` whose attention can be recorded, by name.

    Each outermost ``PreTrainedModel`` with attention heads counts once, through its base model
    (``BertForSequenceClassification`` -> its ``bert``); models nested inside it are part of it.
    """
    utils = _modeling_utils()
    if utils is None:
        return {}
    found: dict[str, nn.Module] = {}
    outer: list[nn.Module] = []
    names = {id(m): n for n, m in model.named_modules()}
    for name, module in model.named_modules():
        if not isinstance(module, utils.PreTrainedModel) or not _has_heads(module):
            continue
        if any(module in o.modules() for o in outer):
            continue
        outer.append(module)
        base = getattr(module, "base_model", module)
        found[names.get(id(base), name)] = base
    return found


def _family(config: Any) -> str:
    """The family of a transformers config: encoder, decoder-only or encoder-decoder."""
    if getattr(config, "is_encoder_decoder", False):
        return ENCODER_DECODER
    if getattr(config, "is_decoder", False):
        return DECODER
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = getattr(config, "model_type", "")
    if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return DECODER  # a causal LM only (GPT-2, Llama, ...): every layer is masked
    return ENCODER


def _padding(mask: Any, t_key: int) -> torch.Tensor | None:
    """An attention mask ``(N, T_key)`` (1 or True at real tokens) as booleans True at padding."""
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or mask.shape[-1] != t_key:
        return None
    return mask.detach() == 0


class _Call:
    """One forward call's arguments, read and changed by name.

    An argument is read wherever the caller put it (by position, by keyword or in the forward's
    ``**kwargs``) and changed where it is, so the forward gets it once and the caller's keywords stay
    keywords (transformers' decorators read them from ``**kwargs``).
    """

    def __init__(self, signature: inspect.Signature | None, args: tuple, kwargs: dict) -> None:
        self.args, self.kwargs = list(args), dict(kwargs)
        params = signature.parameters.values() if signature is not None else ()
        self.positional = [
            p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        self.named = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        self.open = signature is None or any(p.kind is p.VAR_KEYWORD for p in params)
        self.values = dict(kwargs)
        if signature is not None:
            try:
                bound = signature.bind(*args, **kwargs).arguments
            except TypeError:  # a wrong call: the forward raises its own error
                bound = dict(kwargs)
            extra = {
                k: v
                for p in params
                if p.kind is p.VAR_KEYWORD
                for k, v in bound.pop(p.name, {}).items()
            }
            self.values = {**bound, **extra}

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def takes(self, name: str) -> bool:
        """Whether the forward accepts ``name`` (as a parameter or through its ``**kwargs``)."""
        return name in self.named or self.open

    def set(self, name: str, value: Any) -> None:
        index = self.positional.index(name) if name in self.positional else len(self.args)
        if index < len(self.args):
            self.args[index] = value
        elif self.takes(name):
            self.kwargs[name] = value

    def call(self) -> tuple[tuple, dict]:
        """The (args, kwargs) to run the forward with."""
        return tuple(self.args), self.kwargs


def _signature(module: nn.Module) -> inspect.Signature | None:
    try:
        return inspect.signature(module.forward)
    except (TypeError, ValueError):
        return None


@contextlib.contextmanager
def capture_transformer_attention(
    model: nn.Module, *, only: Selection = None
) -> Iterator[Recording[TransformerAttention]]:
    """Record the attention weights of every Hugging Face transformer in ``model`` in a ``with`` block.

    The caller gets exactly the outputs it gets without recording (the attention fields only if it
    asked for them; a tuple if it asked for ``return_dict=False``). ``rec.calls(name)`` lists a transformer's records in call order; within one call
    of an encoder-decoder: encoder self, decoder self, cross (tell them apart by ``kind``).

    Args:
        model: any module containing a transformers model (or one itself).
        only: the transformers to record, by name (a list) or a function of the name.

    Yields:
        A :class:`~course_utils.records.Recording` of :class:`TransformerAttention`.

    Raises:
        ValueError: ``model`` holds no transformers model with attention heads (the message says
            what it holds), or ``only`` selects none.
        RuntimeError: a transformer returned no attention weights even when asked.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> bert = BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2,
        ...                             num_attention_heads=2, intermediate_size=16)).eval()
        >>> with capture_transformer_attention(bert) as rec:
        ...     _ = bert(torch.tensor([[1, 5, 7, 2]]))
        >>> rec[""].weights.shape, rec[""].kind, rec[""].family
        (torch.Size([1, 2, 2, 4, 4]), 'self', 'BERT-style encoder')
    """
    found = transformer_models(model) if isinstance(model, nn.Module) else {}
    wanted = {id(m) for m in found.values()}
    utils = _modeling_utils()
    others = (
        [
            n or "(the model)"
            for n, m in model.named_modules()
            if isinstance(m, utils.PreTrainedModel)
        ]
        if utils is not None and isinstance(model, nn.Module)
        else []
    )
    modules = select_modules(
        model,
        lambda m: id(m) in wanted,
        only,
        recorder="capture_transformer_attention",
        what="Hugging Face transformer",
        hint=(
            "It records transformers models (PreTrainedModel) whose config has attention heads"
            + (f"; the transformers models found have none: {others}" if others else "")
            + (f"; this model holds {holdings(model)}" if isinstance(model, nn.Module) else "")
            + ". For nn.MultiheadAttention and hand-written attention use "
            "course_utils.capture.capture_attention."
        ),
    )
    rec: Recording[TransformerAttention] = Recording("transformer", tuple(modules))
    calls: dict[str, int] = dict.fromkeys(modules, 0)
    pending: dict[int, list[tuple[bool, bool, _Call]]] = {id(m): [] for m in modules.values()}

    def make_hooks(name: str, module: nn.Module):
        config = module.config
        family = _family(config)

        signature = _signature(module)

        def pre_hook(mod, args, kwargs):
            bound = _Call(signature, args, kwargs)
            asked = bound.get("output_attentions")
            if asked is None:
                asked = bool(getattr(config, "output_attentions", False))
            return_dict = bound.get("return_dict")
            as_tuple = not (
                getattr(config, "return_dict", True) if return_dict is None else return_dict
            )
            pending[id(mod)].append((bool(asked), as_tuple, bound))
            bound.set("output_attentions", True)
            if bound.takes("return_dict"):
                bound.set("return_dict", True)  # read the weights by field name
            return bound.call()

        def hook(mod, _args, _kwargs, out):
            asked, as_tuple, bound = pending[id(mod)].pop()
            if not hasattr(out, "keys"):
                raise TypeError(
                    f"{type(mod).__name__} returned a {type(out).__name__}, not a ModelOutput, "
                    "even with return_dict=True; its attention cannot be recorded"
                )
            if family == ENCODER_DECODER:
                parts = (
                    ("encoder_attentions", "self", False, "attention_mask"),
                    ("decoder_attentions", "decoder self", True, "decoder_attention_mask"),
                    ("cross_attentions", "cross", False, "attention_mask"),
                )
            else:
                parts = (
                    ("attentions", "self", family == DECODER, "attention_mask"),
                    ("cross_attentions", "cross", False, "encoder_attention_mask"),
                )
            call = calls[name]
            recorded = 0
            for field_name, kind, causal, mask_name in parts:
                layers = out.get(field_name)
                if not layers:
                    continue
                weights = torch.stack([w.detach() for w in layers], dim=1)  # (N, L, heads, Tq, Tk)
                rec.records.append(
                    TransformerAttention(
                        name,
                        call,
                        kind,
                        causal,
                        weights,
                        _padding(bound.get(mask_name), weights.shape[-1]),
                        family,
                    )
                )
                recorded += 1
            if not recorded:
                raise RuntimeError(
                    f"{type(mod).__name__} ({name or 'the model'}) returned no attention weights "
                    "with eager attention and output_attentions=True; its attention cannot be "
                    "recorded"
                )
            calls[name] = call + 1
            if not asked:
                out = type(out)(**{k: v for k, v in out.items() if k not in ATTENTION_FIELDS})
            return out.to_tuple() if as_tuple else out  # what the caller asked for

        return pre_hook, hook

    outer = {id(m): m for m in _outermost(model, modules.values())}
    previous = {key: m.config._attn_implementation for key, m in outer.items()}
    handles = []
    try:
        for m in outer.values():
            if previous[id(m)] != "eager":
                m.set_attn_implementation("eager")  # fused kernels return no weights
        for name, module in modules.items():
            pre_hook, hook = make_hooks(name, module)
            handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(hook, with_kwargs=True))
        yield rec
    finally:
        for handle in handles:
            handle.remove()
        for key, m in outer.items():
            if previous[key] not in (None, "eager"):
                m.set_attn_implementation(previous[key])


def _outermost(model: nn.Module, bases: Any) -> list[nn.Module]:
    """The outermost transformers model around each base model (whose attention setting counts)."""
    utils = _modeling_utils()
    found = []
    for base in bases:
        outer = base
        for m in model.modules():
            if isinstance(m, utils.PreTrainedModel) and any(x is base for x in m.modules()):
                outer = m
                break  # modules() goes from the outside in: the first is the outermost
        if all(outer is not f for f in found):
            found.append(outer)
    return found
