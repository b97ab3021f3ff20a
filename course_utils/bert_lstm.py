"""Article 000's three ways to put an LSTM on top of a (frozen) BERT encoder, written as it should be.

The models take features that :func:`course_utils.encoders.encode` computed once, so training them
costs only the LSTM:

1. :class:`ClsLSTM`: one sentence vector (the [CLS] hidden state, or the pooler output the article's
   ``bert_model(input_ids)[1]`` really returns) given a time axis of length 1, then an LSTM.
2. :class:`TokenLSTM`: every token's last hidden state into two stacked LSTMs (Keras:
   ``LSTM(128, return_sequences=True)`` then ``LSTM(64)``), packed by the attention mask so that
   padding never enters the recurrence.
3. :class:`MeanPoolLSTM`: the masked mean of the token states (Keras: ``GlobalAveragePooling1D``),
   given a time axis of length 1, then an LSTM.

``use_mask=False`` in 2 and 3 reproduces the seed, which passes no attention mask: the LSTM runs over
the padding and the average includes it. :func:`seed_example1` shows what PyTorch does with the article's
2-D input to an LSTM.

Shapes: ``N`` sentences, ``T`` tokens, ``H`` BERT hidden size, ``C`` classes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .masks import lengths_from_mask, masked_mean


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

    Keras ``GlobalAveragePooling1D`` then ``tf.expand_dims(..., axis=1)``; here :func:`course_utils.masks.masked_mean`
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
    """What PyTorch does with the article's ``LSTM(128)(bert_model(input_ids)[1])``: no error.

    Keras refuses the 2-D ``(batch, H)`` tensor (``expected ndim=3, found ndim=2``). ``nn.LSTM``
    accepts it as **one unbatched sequence** of length ``batch``: sentence ``i``'s output then depends
    on the sentences before it in the batch. Returns the per-"step" outputs, shape ``(N, hidden)``.
    """
    if pooler_output.ndim != 2:
        raise ValueError(f"expected the 2-D pooler output (N, H), got {tuple(pooler_output.shape)}")
    output, _ = lstm(pooler_output)  # read as (L=N, H_in): the batch becomes the time axis
    return output
