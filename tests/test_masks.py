"""course_utils.masks: one name per mask convention (True at real steps, or True at padding)."""

from __future__ import annotations

import pytest
import torch

from course_utils.masks import (
    causal_mask,
    lengths_from_mask,
    lengths_from_padding_mask,
    lengths_to_mask,
    masked_mean,
    masked_softmax,
    padding_mask,
)

H = 6


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Token states (3, 7, H) and their attention mask (1 = real token), lengths 5, 2, 4."""
    mask = lengths_to_mask(torch.tensor([5, 2, 4]), 7).long()  # as a BERT tokenizer makes it
    states = torch.randn(3, 7, H, generator=torch.Generator().manual_seed(0))
    return states.masked_fill(mask.unsqueeze(-1) == 0, 7.0), mask  # junk on padding, as [PAD]


def test_lengths_to_mask_and_its_errors():
    assert lengths_to_mask(torch.tensor([2, 3]), 4).tolist() == [
        [True, True, False, False],
        [True, True, True, False],
    ]
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 4\]"):
        lengths_to_mask(torch.tensor([0, 5]), 4)
    assert lengths_to_mask(torch.tensor([3, 1]), 4).tolist() == [
        [True, True, True, False],
        [True, False, False, False],
    ]
    with pytest.raises(ValueError, match="1-D"):
        lengths_to_mask(torch.ones(2, 2, dtype=torch.long), 4)


def test_masked_softmax_gives_padding_exactly_zero():
    scores = torch.randn(3, 5)
    mask = lengths_to_mask(torch.tensor([5, 2, 1]), 5)
    w = masked_softmax(scores, mask)
    assert torch.all(w[~mask] == 0)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(w[1, :2], torch.softmax(scores[1, :2], dim=0))
    torch.testing.assert_close(masked_softmax(scores), torch.softmax(scores, dim=-1))
    with pytest.raises(ValueError, match="at least one real"):
        masked_softmax(scores, torch.zeros(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"expected|got \(3, 4\)"):
        masked_softmax(scores, mask[:, :4])


def test_causal_mask_and_padding_mask_values():
    assert causal_mask(3).tolist() == [[False, True, True], [False, False, True], [False] * 3]
    assert padding_mask(torch.tensor([1, 3]), 4).tolist() == [
        [False, True, True, True],
        [False, False, False, True],
    ]
    assert padding_mask(torch.tensor([2, 3])).shape == (2, 3)
    with pytest.raises(ValueError, match="positive int"):
        causal_mask(0)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, seq_len=2\]"):
        padding_mask(torch.tensor([3]), 2)


def test_masked_mean_ignores_padding_and_matches_a_loop():
    x, mask = batch()
    out = masked_mean(x, mask)
    expected = torch.stack([x[i, : int(mask[i].sum())].mean(0) for i in range(3)])
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(masked_mean(x, None), expected)  # the seed's plain mean
    with pytest.raises(ValueError, match="expected mask of shape"):
        masked_mean(x, mask[:, :3])


def test_lengths_from_mask_checks_right_padding():
    _, mask = batch()
    assert lengths_from_mask(mask).tolist() == [5, 2, 4]
    with pytest.raises(ValueError, match="right-padded"):
        lengths_from_mask(mask.flip(1))
    with pytest.raises(ValueError, match="at least one real token"):
        lengths_from_mask(torch.zeros(2, 3))


def test_lengths_from_padding_mask():
    mask = torch.tensor([[False, False, True], [False, False, False]])
    assert lengths_from_padding_mask(mask).tolist() == [2, 3]


def test_the_two_conventions_are_each_others_negation_and_read_back():
    lengths = torch.tensor([3, 1, 4])
    real, pad = lengths_to_mask(lengths, 4), padding_mask(lengths, 4)
    assert torch.equal(real, ~pad)
    assert torch.equal(lengths_from_mask(real), lengths)
    assert torch.equal(lengths_from_padding_mask(pad), lengths)
    assert lengths_from_padding_mask(pad).tolist() == [3, 1, 4]  # ints for plot code
    with pytest.raises(ValueError, match=r"\(N, S\), True at padding"):
        lengths_from_padding_mask(pad[0])


def test_masks_live_on_the_device_of_their_input():
    assert causal_mask(3, "meta").device.type == "meta"
    pad = torch.zeros(2, 4, dtype=torch.bool, device="meta")
    assert lengths_from_padding_mask(pad).device.type == "meta"
