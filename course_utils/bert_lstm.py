"""Seed 000's three ways to put an LSTM on top of a (frozen) BERT encoder, written as it should be.

The models take features that :func:`course_utils.encoders.encode` computed once, so training them
costs only the LSTM:

1. :class:`ClsLSTM`: one sentence vector (the [CLS] hidden state, or the pooler output the seed's
   ``bert_model(input_ids)[1]`` really returns) given a time axis of length 1, then an LSTM.
2. :class:`TokenLSTM`: every token's last hidden state into two stacked LSTMs (Keras:
   ``LSTM(128, return_sequences=True)`` then ``LSTM(64)``), packed by the attention mask so that
   padding never enters the recurrence.
3. :class:`MeanPoolLSTM`: the masked mean of the token states (Keras: ``GlobalAveragePooling1D``),
   given a time axis of length 1, then an LSTM.

``use_mask=False`` in 2 and 3 reproduces the seed, which passes no attention mask: the LSTM runs over
the padding and the average includes it. :func:`seed_example1` shows what PyTorch does with the seed's
2-D input to an LSTM.

Shapes: ``N`` sentences, ``T`` tokens, ``H`` BERT hidden size, ``C`` classes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence


def _check_tokens(x: torch.Tensor, mask: torch.Tensor, input_size: int) -> None:
    if x.ndim != 3 or x.shape[-1] != input_size:
        raise ValueError(
            f"expected token states of shape (N, T, H) = (*, *, {input_size}), got {tuple(x.shape)}"
        )
    if mask.shape != x.shape[:2]:
        raise ValueError(
            f"expected an attention mask of shape (N, T) = {tuple(x.shape[:2])}, got "
            f"{tuple(mask.shape)}; pass Encoded.attention_mask"
        )


def lengths_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Real tokens per row of an ``(N, T)`` attention mask (1 = real), as int64 on the CPU.

    The mask must be right-padded (ones, then zeros), as BERT tokenizers make it.
    """
    lengths = mask.long().sum(dim=1)
    if int(lengths.min()) < 1:
        raise ValueError("every row of the attention mask needs at least one real token (1)")
    steps = torch.arange(mask.shape[1], device=mask.device)
    if not torch.equal(mask.bool(), steps.unsqueeze(0) < lengths.unsqueeze(1)):
        raise ValueError("the attention mask must be right-padded: ones first, then zeros")
    return lengths.cpu()


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the real tokens: ``sum_t m_t x_t / sum_t m_t``; ``mask=None`` averages every step.

    Shape: ``x (N, T, H)``, ``mask (N, T)`` -> ``(N, H)``.
    """
    if mask is None:
        return x.mean(dim=1)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"expected mask of shape {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    m = mask.to(x.dtype).unsqueeze(-1)  # (N, T, 1)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


class ClsLSTM(nn.Module):
    """Strategy 1: one sentence vector as a one-step sequence into an LSTM, then a linear classifier.

    Keras needs the vector reshaped to ``(batch, 1, H)`` before ``LSTM(128)``; so does PyTorch
    (``x.unsqueeze(1)``). With one step, the LSTM's forget gate has nothing to forget: it acts as a
    gated feed-forward layer.

    Args:
        input_size: ``H``. hidden_size: LSTM width. num_classes: ``C``.

    Shape: ``x (N, H)`` -> logits ``(N, C)``.
    """

    def __init__(self, input_size: int, hidden_size: int = 128, num_classes: int = 2) -> None:
        super().__init__()
        self.input_size = input_size
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"expected one vector per sentence, shape (N, H) = (*, {self.input_size}), got "
                f"{tuple(x.shape)}; for token states use TokenLSTM"
            )
        _, (h_n, _) = self.lstm(x.unsqueeze(1))  # (N, 1, H): a time axis of length 1
        return self.head(h_n[-1])  # (N, hidden) -> (N, C)


class _TokenModel(nn.Module):
    """Shared by the models that read every token: the input size, the mask switch, the checks."""

    def __init__(self, input_size: int, use_mask: bool) -> None:
        super().__init__()
        self.input_size = input_size
        self.use_mask = use_mask

    def _check(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        _check_tokens(x, mask, self.input_size)


class TokenLSTM(_TokenModel):
    """Strategy 2: every token's state into two stacked LSTMs; padding packed away.

    Keras ``LSTM(128, return_sequences=True)`` -> ``LSTM(64)`` is two ``nn.LSTM`` here: the first
    returns every step (``return_sequences=True`` is PyTorch's default ``output``), the second's last
    hidden state ``h_n`` (the state at each sentence's own last real token, thanks to packing) feeds
    the classifier.

    Args:
        input_size: ``H``. hidden_sizes: widths of the two LSTMs. num_classes: ``C``.
        use_mask: ``True`` packs by the attention mask. ``False`` is the seed: the LSTMs run over the
            padding too and the classifier reads the state after the last **padded** step.

    Shape: ``x (N, T, H)``, ``mask (N, T)`` -> logits ``(N, C)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: tuple[int, int] = (128, 64),
        num_classes: int = 2,
        *,
        use_mask: bool = True,
    ) -> None:
        super().__init__(input_size, use_mask)
        self.lstm1 = nn.LSTM(input_size, hidden_sizes[0], batch_first=True)
        self.lstm2 = nn.LSTM(hidden_sizes[0], hidden_sizes[1], batch_first=True)
        self.head = nn.Linear(hidden_sizes[1], num_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self._check(x, mask)
        if self.use_mask:
            packed = pack_padded_sequence(
                x, lengths_from_mask(mask), batch_first=True, enforce_sorted=False
            )
            seq, _ = self.lstm1(packed)  # packed: every real step, none of the padding
            _, (h_n, _) = self.lstm2(seq)  # h_n (1, N, hidden2): state at each own last token
        else:
            seq, _ = self.lstm1(x)  # (N, T, hidden1), padding included
            _, (h_n, _) = self.lstm2(seq)  # state after the last padded step
        return self.head(h_n[-1])


class MeanPoolLSTM(_TokenModel):
    """Strategy 3: the mean of the token states as a one-step sequence into an LSTM.

    Keras ``GlobalAveragePooling1D`` then ``tf.expand_dims(..., axis=1)``; here :func:`masked_mean`
    then ``unsqueeze(1)``.

    Args:
        use_mask: ``True`` averages the real tokens only; ``False`` (the seed) averages the padding in.

    Shape: ``x (N, T, H)``, ``mask (N, T)`` -> logits ``(N, C)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 128,
        num_classes: int = 2,
        *,
        use_mask: bool = True,
    ) -> None:
        super().__init__(input_size, use_mask)
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self._check(x, mask)
        pooled = masked_mean(x, mask if self.use_mask else None)  # (N, H)
        _, (h_n, _) = self.lstm(pooled.unsqueeze(1))  # (N, 1, H)
        return self.head(h_n[-1])


def seed_example1(pooler_output: torch.Tensor, lstm: nn.LSTM) -> torch.Tensor:
    """What PyTorch does with the seed's ``LSTM(128)(bert_model(input_ids)[1])``: no error.

    Keras refuses the 2-D ``(batch, H)`` tensor (``expected ndim=3, found ndim=2``). ``nn.LSTM``
    accepts it as **one unbatched sequence** of length ``batch``: sentence ``i``'s output then depends
    on the sentences before it in the batch. Returns the per-"step" outputs, shape ``(N, hidden)``.
    """
    if pooler_output.ndim != 2:
        raise ValueError(f"expected the 2-D pooler output (N, H), got {tuple(pooler_output.shape)}")
    output, _ = lstm(pooler_output)  # read as (L=N, H_in): the batch becomes the time axis
    return output


def multiply_adds(run: Callable[[], object], *modules: nn.Module) -> int:
    """Multiply-adds of the matrix products that ``run()`` computes: counted, not timed.

    Linear layers, ``matmul`` and ``bmm`` (BERT's projections, feed-forward and attention) are
    counted by ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add). ``nn.LSTM``'s
    fused kernel is invisible to it (and a packed input runs another path), so a hook on every ``nn.LSTM`` inside ``modules`` adds
    ``4 * hidden * (input + hidden)`` per layer, direction and step it really runs (a packed
    sequence counts its real steps only). Elementwise work (gates, tanh, softmax, the mean) is left
    out: it is small next to the products and the same on both sides of the comparisons made here.

    Returns the count as an int (deterministic: the same on every machine).
    """
    from torch.utils.flop_counter import FlopCounterMode

    counted = {"lstm": 0, "seen_inside": 0, "at_entry": 0}
    flops = FlopCounterMode(display=False)

    def enter(lstm: nn.LSTM, args: tuple) -> None:
        counted["at_entry"] = flops.get_total_flops()
        x = args[0]
        if isinstance(x, PackedSequence):
            steps = x.data.shape[0]  # real steps of every sequence
        elif x.ndim == 3:
            steps = x.shape[0] * x.shape[1]
        else:  # unbatched (L, H_in)
            steps = x.shape[0]
        if lstm.proj_size:
            raise ValueError("multiply_adds does not count LSTMs with proj_size")
        dirs = 2 if lstm.bidirectional else 1
        h = lstm.hidden_size
        for layer in range(lstm.num_layers):
            width = lstm.input_size if layer == 0 else h * dirs
            counted["lstm"] += dirs * steps * 4 * h * (width + h)

    def leave(lstm: nn.LSTM, args: tuple, output: object) -> None:
        # some LSTM paths (packed input) run as visible matmuls: drop them, the formula counts them
        counted["seen_inside"] += flops.get_total_flops() - counted["at_entry"]

    handles = [
        hook
        for module in modules
        for m in module.modules()
        if isinstance(m, nn.LSTM)
        for hook in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))
    ]
    try:
        with torch.no_grad(), flops:
            run()
    finally:
        for handle in handles:
            handle.remove()
    return (flops.get_total_flops() - counted["seen_inside"]) // 2 + counted["lstm"]


def plot_comparison(
    accuracy_by_kind: dict[str, dict[str, float]],
    *,
    chance: float | dict[str, float],
    ax=None,
):
    """Grouped bars: test accuracy of each strategy (groups), overall and per sentence kind (bars).

    Args:
        accuracy_by_kind: ``{strategy: {"all": acc, "plain": acc, ...}}``; every strategy must have
            the same keys.
        chance: the majority-class rate of the test labels (``checks.majority_rate``), one per key
            of the accuracies (``{"all": .., "plain": .., ...}``) or one number for all; a short
            dashed line over each bar marks it. Required: chance comes from the data, never 0.5.

    Returns the ``Figure``.
    """
    import numpy as np

    from .style import LINE_COLORS, course_style, new_figure

    if not accuracy_by_kind:
        raise ValueError("give at least one strategy's accuracies")
    kinds = list(next(iter(accuracy_by_kind.values())))
    for name, accs in accuracy_by_kind.items():
        if list(accs) != kinds:
            raise ValueError(f"{name!r} has keys {list(accs)}, expected {kinds}")
    rates = chance if isinstance(chance, dict) else dict.fromkeys(kinds, chance)
    if set(rates) != set(kinds):
        raise ValueError(
            f"chance needs one majority rate per key {kinds}, got {sorted(rates)}; compute them "
            "with checks.majority_rate on each group's test labels"
        )
    with course_style():
        if ax is None:
            _, ax = new_figure(figsize=(7.5, 3.0))
        names = list(accuracy_by_kind)
        width = 0.8 / len(kinds)
        x = np.arange(len(names))
        for k, kind in enumerate(kinds):
            values = [accuracy_by_kind[n][kind] for n in names]
            centres = x + (k - (len(kinds) - 1) / 2) * width
            ax.bar(
                centres,
                values,
                width,
                label=kind,
                color=LINE_COLORS[k % len(LINE_COLORS)],
                alpha=1.0 if kind == "all" else 0.7,
            )
            ax.hlines(
                [rates[kind]] * len(names),
                centres - width / 2,
                centres + width / 2,
                color="black",
                linestyle="--",
                linewidth=1,
                label="majority rate" if k == 0 else None,
            )
        ax.set_xticks(x, names)
        ax.set_ylim(0, 1)
        ax.set_ylabel("test accuracy")
        ax.set_xlabel("strategy")
        ax.legend(ncols=len(kinds) + 1, loc="upper left", fontsize=7, frameon=False)
    return ax.figure
