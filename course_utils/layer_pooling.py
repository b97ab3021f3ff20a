"""Pooling over BERT layers: the [CLS] vector of every layer read as a sequence (article 004).

A BERT encoder with ``L`` layers gives ``L + 1`` hidden states (the embedding output, then one per
layer). Their [CLS] vectors, stacked, form a short sequence ``(N, L+1, H)`` *along depth*, and any
sequence model can pool it. This module holds the article's ``LSTMPooling`` as the article wrote it, a
corrected bidirectional pooling, and the usual static baselines, all on the same input: the cached
``cls_per_layer`` tensor of :func:`course_utils.encoders.encode`.

Shape symbols: ``N`` examples, ``L`` transformer layers (``L + 1`` hidden states with the embedding
output at index 0), ``H`` the encoder's ``hidden_size``, ``D`` the LSTM's ``hidden_size`` per direction.

Every pooling module maps ``cls_per_layer (N, L+1, H)`` to a vector ``(N, out_features)`` and reads the
layers ``first_layer .. L`` (default 1: the embedding output's [CLS] is the same vector for every
sentence, see :func:`embedding_cls_spread`). :class:`PooledClassifier` puts a linear head on top.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .capture import expose_attention
from .device import without_cudnn

__all__ = [
    "LSTMPooling",
    "BiLSTMPooling",
    "LastLayerCLS",
    "MeanLayers",
    "ScalarMix",
    "PooledClassifier",
    "cls_from_hidden_states",
    "direction_gradients",
    "embedding_cls_spread",
    "LayerStandardizer",
    "shuffle_layers",
    "LAYER_POOLINGS",
    "LSTM_POOLINGS",
    "make_classifier",
]


def _check_cls(x: torch.Tensor, hidden_size: int | None, min_layers: int, who: str) -> None:
    """Raise a clear error unless ``x`` is ``(N, L+1, H)`` with enough layers."""
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"{who} expects cls_per_layer of shape (batch, num_layers + 1, hidden_size), got {got}; "
            "stack the [CLS] vector of every hidden state with cls_from_hidden_states(...)"
        )
    if hidden_size is not None and x.shape[-1] != hidden_size:
        raise ValueError(
            f"{who} was built for hidden_size={hidden_size}, got cls_per_layer of shape "
            f"{tuple(x.shape)}; build it with hidden_size={x.shape[-1]}"
        )
    if x.shape[1] < min_layers:
        raise ValueError(
            f"{who} reads hidden states up to index {min_layers - 1}, but cls_per_layer has only "
            f"{x.shape[1]} (shape {tuple(x.shape)}); lower num_layers or first_layer"
        )


def cls_from_hidden_states(hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack the [CLS] vector (token 0) of every hidden state: ``(N, L+1, H)``.

    Args:
        hidden_states: what ``BertModel(..., output_hidden_states=True).hidden_states`` returns, a
            tuple of ``L + 1`` tensors ``(N, T, H)``, the embedding output first.
    """
    if isinstance(hidden_states, torch.Tensor) or not len(hidden_states):
        raise ValueError(
            "expected a tuple of hidden states (N, T, H), one per layer, as returned with "
            "output_hidden_states=True"
        )
    return torch.stack([h[:, 0] for h in hidden_states], dim=1)  # (N, L+1, H)


class LSTMPooling(nn.Module):
    """The seed's LSTM pooling, kept as written (article 004): a BiLSTM over layers 1..L, ``out[:, -1, :]``.

    Its two quirks are what notebook 09 examines: it skips the embedding output (``range(1,
    num_layers + 1)``), and ``out[:, -1, :]`` of a bidirectional LSTM joins the forward state after
    the last layer with the backward state after **one** step, which has read only the last layer.

    Args:
        num_layers: number of transformer layers ``L`` (the hidden states read are 1..L).
        hidden_size: the encoder's width ``H``.
        lstm_hidden: the LSTM's ``hidden_size`` per direction ``D`` (the seed uses 256).
        dropout: dropout on the pooled vector, as in the seed.

    Inputs: ``cls_per_layer (N, L+1, H)``, or the tuple of hidden states as the seed passes them.
    Outputs: ``(N, 2 * D)``.
    """

    def __init__(
        self, num_layers: int, hidden_size: int, lstm_hidden: int = 256, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(hidden_size, lstm_hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out_features = 2 * lstm_hidden

    def layer_sequence(self, cls_per_layer: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """The layers the seed reads, ``(N, L, H)``: hidden states 1..L, the embedding output skipped."""
        if not isinstance(cls_per_layer, torch.Tensor):
            cls_per_layer = cls_from_hidden_states(cls_per_layer)
        _check_cls(cls_per_layer, self.hidden_size, self.num_layers + 1, "LSTMPooling")
        return cls_per_layer[:, 1 : self.num_layers + 1]  # (N, L, H), as range(1, num_layers + 1)

    def forward(self, cls_per_layer: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        out, _ = self.lstm(self.layer_sequence(cls_per_layer))  # (N, L, 2D)
        return self.dropout(out[:, -1, :])  # (N, 2D): backward half has read only layer L


class BiLSTMPooling(nn.Module):
    """Corrected LSTM pooling: the **final** state of each direction, ``[h_fwd(L); h_bwd(first)]``.

    The forward direction reads ``first_layer -> L`` and ends at the last layer; the backward direction
    reads ``L -> first_layer`` and ends at the first, so its final state sits at position 0 of
    ``out``. Both final states are in ``h_n``: ``torch.cat([h_n[-2], h_n[-1]], dim=-1)``, which
    equals ``cat(out[:, -1, :D], out[:, 0, D:])``.

    Args:
        hidden_size: the encoder's width ``H``.
        lstm_hidden: the LSTM's ``hidden_size`` per direction ``D``.
        first_layer: first hidden state read (1 skips the embedding output, 0 reads it too).
        dropout: dropout on the pooled vector.
        bidirectional: ``False`` gives a forward-only LSTM (its last state has read every layer).

    Inputs: ``cls_per_layer (N, L+1, H)``. Outputs: ``(N, 2 * D)`` (``(N, D)`` if unidirectional).
    """

    def __init__(
        self,
        hidden_size: int,
        lstm_hidden: int = 64,
        *,
        first_layer: int = 1,
        dropout: float = 0.1,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        if first_layer < 0:
            raise ValueError(f"first_layer must be >= 0, got {first_layer}")
        self.hidden_size = hidden_size
        self.first_layer = first_layer
        self.lstm = nn.LSTM(hidden_size, lstm_hidden, batch_first=True, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.out_features = lstm_hidden * (2 if bidirectional else 1)

    def forward(self, cls_per_layer: torch.Tensor) -> torch.Tensor:
        _check_cls(cls_per_layer, self.hidden_size, self.first_layer + 1, "BiLSTMPooling")
        _, (h_n, _) = self.lstm(cls_per_layer[:, self.first_layer :])  # h_n: (dirs, N, D)
        pooled = torch.cat(list(h_n[-2:]), dim=-1) if self.lstm.bidirectional else h_n[-1]
        return self.dropout(pooled)  # (N, 2D): forward ended at layer L, backward at first_layer


def _expose_layer_weights(
    module: nn.Module, cls_per_layer: torch.Tensor, first: int | None
) -> None:
    """Show a fixed pooling's weights over the hidden states as attention over layers.

    ``first=None``: the last layer only; else equal weights on layers ``first .. L``. Every example
    gets the same row ``(L + 1,)``; built only while something records.
    """

    def weights() -> torch.Tensor:
        n, states = cls_per_layer.shape[:2]
        row = torch.zeros(states, device=cls_per_layer.device)
        if first is None:
            row[-1] = 1.0
        else:
            row[first:] = 1.0 / (states - first)
        return row.expand(n, -1)

    expose_attention(module, weights)


class LastLayerCLS(nn.Module):
    """Baseline: the last layer's [CLS] vector, ``cls_per_layer[:, -1]`` (what most classifiers use).

    Its weights over the hidden states (1 on the last, 0 elsewhere) are recorded as attention over
    layers by ``capture_attention`` and ``inspect``, as every pooling's are.
    """

    exposes_attention = True

    def __init__(self, hidden_size: int, *, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.dropout = nn.Dropout(dropout)
        self.out_features = hidden_size

    def forward(self, cls_per_layer: torch.Tensor) -> torch.Tensor:
        _check_cls(cls_per_layer, self.hidden_size, 1, "LastLayerCLS")
        _expose_layer_weights(self, cls_per_layer, None)
        return self.dropout(cls_per_layer[:, -1])  # (N, H)


class MeanLayers(nn.Module):
    """Baseline: the mean of the [CLS] vectors of layers ``first_layer .. L`` (static, no weights).

    Its equal weights over the layers read are recorded as attention over layers by
    ``capture_attention`` and ``inspect``.
    """

    exposes_attention = True

    def __init__(self, hidden_size: int, *, first_layer: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.first_layer = first_layer
        self.dropout = nn.Dropout(dropout)
        self.out_features = hidden_size

    def forward(self, cls_per_layer: torch.Tensor) -> torch.Tensor:
        _check_cls(cls_per_layer, self.hidden_size, self.first_layer + 1, "MeanLayers")
        _expose_layer_weights(self, cls_per_layer, self.first_layer)
        return self.dropout(cls_per_layer[:, self.first_layer :].mean(dim=1))  # (N, H)


class ScalarMix(nn.Module):
    r"""Baseline: a learned scalar mix of layers (ELMo), :math:`\gamma \sum_k \mathrm{softmax}(w)_k x_k`.

    One weight per layer, shared by every example: the simplest model that *learns which layers
    matter*, and its weights can be read directly (:attr:`weights`); ``capture_attention`` and
    ``inspect`` record them as attention over layers.

    Args:
        hidden_size: the encoder's width ``H``.
        num_layers: number of transformer layers ``L``.
        first_layer: first hidden state mixed (the weights cover ``first_layer .. L``).
    """

    exposes_attention = True

    def __init__(
        self, hidden_size: int, num_layers: int, *, first_layer: int = 1, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.first_layer = first_layer
        self.logits = nn.Parameter(torch.zeros(num_layers + 1 - first_layer))  # uniform at start
        self.gamma = nn.Parameter(torch.ones(()))
        self.dropout = nn.Dropout(dropout)
        self.out_features = hidden_size

    @property
    def weights(self) -> torch.Tensor:
        """The mix weights ``softmax(w)``, one per layer read, ``(L + 1 - first_layer,)``."""
        return torch.softmax(self.logits, dim=0)

    def layer_weights(self) -> torch.Tensor:
        """The weights over **all** hidden states ``(L + 1,)``: 0 for the layers not read."""
        full = torch.zeros(self.num_layers + 1, device=self.logits.device)
        full[self.first_layer :] = self.weights.detach()
        return full

    def forward(self, cls_per_layer: torch.Tensor) -> torch.Tensor:
        _check_cls(cls_per_layer, self.hidden_size, self.num_layers + 1, "ScalarMix")
        expose_attention(self, lambda: self.layer_weights().expand(len(cls_per_layer), -1))
        x = cls_per_layer[:, self.first_layer : self.num_layers + 1]  # (N, K, H)
        mixed = torch.einsum("k,nkh->nh", self.weights, x)  # (N, H)
        return self.dropout(self.gamma * mixed)


class PooledClassifier(nn.Module):
    """A pooling module followed by a head: ``cls_per_layer (N, L+1, H) -> logits (N, C)``.

    This is the article's ``classifier_head(lstm_pooling(...))`` as one module, so every pooling strategy
    trains with the same loop and the importance methods see one function of ``cls_per_layer``.

    Args:
        pooling: any module with ``out_features`` mapping ``(N, L+1, H)`` to ``(N, out_features)``.
        num_classes: ``C``.
        head_hidden: ``None`` for a linear head (the article's); an int for a one-hidden-layer MLP head
            (``Linear -> tanh -> Linear``), which gives a static pooling the non-linearity an LSTM
            pooling has, so a comparison measures the pooling and not the head.
    """

    def __init__(
        self, pooling: nn.Module, num_classes: int = 2, head_hidden: int | None = None
    ) -> None:
        super().__init__()
        if not hasattr(pooling, "out_features"):
            raise TypeError(
                f"pooling must say its output width in .out_features, {type(pooling).__name__} does not"
            )
        self.pooling = pooling
        width = pooling.out_features
        self.head = (
            nn.Linear(width, num_classes)
            if head_hidden is None
            else nn.Sequential(
                nn.Linear(width, head_hidden), nn.Tanh(), nn.Linear(head_hidden, num_classes)
            )
        )

    def forward(self, cls_per_layer: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooling(cls_per_layer))  # (N, C)


#: The strategies compared in notebook 09, by display name.
LAYER_POOLINGS: tuple[str, ...] = (
    "seed LSTMPooling",
    "BiLSTM final states",
    "last-layer CLS",
    "mean of layers",
    "scalar mix",
)
#: The strategies that pool with an LSTM (they get a linear head, as in the seed).
LSTM_POOLINGS: tuple[str, ...] = LAYER_POOLINGS[:2]


def make_classifier(
    name: str,
    *,
    num_layers: int,
    hidden_size: int,
    lstm_hidden: int = 64,
    num_classes: int = 2,
    dropout: float = 0.1,
    head_hidden: int | None = None,
) -> PooledClassifier:
    """Build one of :data:`LAYER_POOLINGS` with a head (the same settings for every strategy).

    Args:
        head_hidden: ``None``: a linear head; an int: an MLP head of that width (see
            :class:`PooledClassifier`).
    """
    poolings = {
        "seed LSTMPooling": lambda: LSTMPooling(num_layers, hidden_size, lstm_hidden, dropout),
        "BiLSTM final states": lambda: BiLSTMPooling(hidden_size, lstm_hidden, dropout=dropout),
        "last-layer CLS": lambda: LastLayerCLS(hidden_size, dropout=dropout),
        "mean of layers": lambda: MeanLayers(hidden_size, dropout=dropout),
        "scalar mix": lambda: ScalarMix(hidden_size, num_layers, dropout=dropout),
    }
    if name not in poolings:
        raise ValueError(f"unknown pooling {name!r}; choose one of {list(poolings)}")
    return PooledClassifier(poolings[name](), num_classes, head_hidden)


def direction_gradients(
    lstm: nn.LSTM, sequence: torch.Tensor, *, position: int = -1
) -> dict[str, torch.Tensor]:
    """How much each step of ``sequence`` moves the two halves of a BiLSTM output at ``position``.

    Sums the forward half ``out[:, position, :D]`` and the backward half ``out[:, position, D:]``
    separately, back-propagates each to the input and returns the gradient norm per step.

    Args:
        lstm: a bidirectional, ``batch_first`` ``nn.LSTM``.
        sequence: ``(N, K, input_size)``, e.g. the [CLS] vectors of ``K`` layers.
        position: which output step to read; ``-1`` is the article's ``out[:, -1, :]``.

    Returns:
        ``{"forward": (K,), "backward": (K,)}``: the norm of d(half)/d(step k), over examples and
        features. A step the half never read gets exactly 0.
    """
    if not (lstm.bidirectional and lstm.batch_first):
        raise ValueError("direction_gradients needs a bidirectional nn.LSTM with batch_first=True")
    if sequence.ndim != 3 or sequence.shape[-1] != lstm.input_size:
        raise ValueError(
            f"expected sequence of shape (batch, seq_len, input_size) = (*, *, {lstm.input_size}), "
            f"got {tuple(sequence.shape)}"
        )
    d = lstm.hidden_size
    result = {}
    for name, half in (("forward", slice(0, d)), ("backward", slice(d, 2 * d))):
        x = sequence.detach().clone().requires_grad_(True)
        with torch.enable_grad(), without_cudnn():  # cuDNN's LSTM has no backward in eval mode
            out, _ = lstm(x)  # (N, K, 2D)
            (grad,) = torch.autograd.grad(out[:, position, half].sum(), x)
        result[name] = grad.pow(2).sum(dim=(0, 2)).sqrt()  # (K,)
    return result


def embedding_cls_spread(cls_per_layer: torch.Tensor) -> torch.Tensor:
    """Per hidden state, the largest deviation of any example's [CLS] from the first one: ``(L+1,)``.

    The embedding output's [CLS] is word embedding + position 0 + token type 0, layer-normed: the same
    vector for every sentence, so its spread is 0 (up to float noise) and a pooling loses nothing by
    skipping it. Every later layer has attended to the sentence and differs.
    """
    _check_cls(cls_per_layer, None, 1, "embedding_cls_spread")
    return (cls_per_layer - cls_per_layer[:1]).abs().amax(dim=(0, 2))  # (L+1,)


class LayerStandardizer:
    """Per-layer, per-feature standardisation of ``cls_per_layer`` with training statistics.

    Why: in all-MiniLM-L6-v2 the [CLS] vectors of layers 1..L-1 move by well under 3 % from sentence
    to sentence, layer L by about 70 %. Every attribution method compares a layer with its baseline
    (``x_k - b_k``), so on raw features the early layers score about 0 for *any* model, trained or
    not: the inputs decide the answer. Small spread is not lack of information, though: after
    standardising, each early layer alone predicts the label well. ``(x - mean) / std`` with the
    training split's mean and std per (layer, feature) gives every layer the same scale; a feature
    that never varies (the embedding output's [CLS]) maps to 0.

    Shapes: ``x (N, L+1, H)``; ``mean`` and ``std`` are ``(L+1, H)``.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        if mean.shape != std.shape or mean.ndim != 2:
            raise ValueError(
                f"mean and std must both be (num_layers + 1, hidden_size), got {tuple(mean.shape)} "
                f"and {tuple(std.shape)}"
            )
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, x_train: torch.Tensor) -> LayerStandardizer:
        """Mean and (unbiased) std per layer and feature over the training examples."""
        _check_cls(x_train, None, 1, "LayerStandardizer.fit")
        if len(x_train) < 2:
            raise ValueError(f"need at least 2 training examples for a std, got {len(x_train)}")
        return cls(x_train.mean(dim=0), x_train.std(dim=0))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_cls(x, self.mean.shape[-1], self.mean.shape[0], "LayerStandardizer")
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"fitted on {self.mean.shape[0]} hidden states, got x of shape {tuple(x.shape)}"
            )
        varies = self.std > 0
        z = (x - self.mean) / torch.where(varies, self.std, torch.ones_like(self.std))
        return torch.where(varies, z, torch.zeros_like(z))  # (N, L+1, H)


def shuffle_layers(
    x: torch.Tensor, layers: Sequence[int], *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A control task: the chosen hidden states are taken from a random other example.

    Each chosen layer gets its own permutation of the rows, so its vectors stay realistic (same
    distribution) but say nothing about the example's label. A model that "learns which layers
    matter" must learn to ignore them: after training, its importance on them should fall.

    Returns a new tensor ``(N, L+1, H)``; ``x`` is not changed.
    """
    _check_cls(x, None, 1, "shuffle_layers")
    layers = list(layers)
    if not all(0 <= k < x.shape[1] for k in layers):
        raise ValueError(f"layers must be in 0..{x.shape[1] - 1}, got {layers}")
    out = x.clone()
    for k in layers:
        out[:, k] = x[torch.randperm(len(x), generator=generator), k]
    return out
