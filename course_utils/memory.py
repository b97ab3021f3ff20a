"""Where a trained LSTM keeps a value it must remember: cut its cell state between two marks.

Notebook 01 trains an LSTM on the adding problem with a long gap between the two marked steps and asks
whether the first value crosses the gap in the cell state ``c``. The tools here answer that by
measurement, not by reading the gates:

- :func:`between_marks`: the steps strictly after the first marked step and before the second, where
  only memory can carry the first value;
- :func:`run_with_cell_cut`: run a one-layer ``nn.LSTM`` step by step and, at chosen steps and units,
  feed the cell a zero ``c_{t-1}`` (the link ``c_{t-1} -> c_t`` cut; ``h`` and every weight untouched),
  or (``detach=True``) the same ``c_{t-1}`` with its gradient link cut: the forward pass unchanged, so
  the gradient can only travel back through ``h`` across those steps;
- :func:`with_first_value` and :func:`run_with_state_swap`: an interchange intervention. Two sequences
  differ only in the first marked value; right after the first mark, the host takes the donor's ``c``
  (or ``h``) in chosen units, and everything else stays its own. A state that carries the first value
  moves the prediction by the two values' difference (:func:`interchange_slope` about 1), a state that
  does not leaves it (slope about 0). Both runs stay on the data the model was trained on;
- :func:`forgot_first_value`: what the best model that lost the first value can predict (the second
  value plus the mean of the first, 0.5): the baseline a model that remembers must beat;
- :func:`chrono_init_`: the forget-gate initialisation of Tallec & Ollivier (2018), which spreads the
  forget gates' time scales over ``1 .. max_delay`` steps.

Shapes follow the course: ``x (N, T, 2)`` with features ``[value, marker]``, ``batch_first``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "between_marks",
    "chrono_init_",
    "first_marks",
    "forgot_first_value",
    "interchange_slope",
    "run_with_cell_cut",
    "run_with_state_swap",
    "with_first_value",
]


def _check_marked(x: torch.Tensor) -> torch.Tensor:
    """The markers ``(N, T)`` of an adding-problem batch, after checking that each row has two."""
    if x.ndim != 3 or x.shape[-1] != 2:
        raise ValueError(
            f"expected x of shape (batch, seq_len, 2) = [value, marker], got {tuple(x.shape)}"
        )
    markers = x[..., 1]
    counts = (markers != 0).sum(dim=1)
    if not bool((counts == 2).all()):
        raise ValueError(
            f"every sequence needs exactly two marked steps, got counts {counts.unique().tolist()}"
        )
    return markers


def between_marks(x: torch.Tensor) -> torch.Tensor:
    """``(N, T)`` bool: True at the steps strictly between the two marked steps of each sequence."""
    markers = _check_marked(x) != 0
    seen = markers.long().cumsum(dim=1)  # 1 from the first mark on, 2 from the second on
    return (seen == 1) & ~markers


def first_marks(x: torch.Tensor) -> torch.Tensor:
    """``(N,)`` the index of each sequence's first marked step."""
    return (_check_marked(x) != 0).long().argmax(dim=1)


def with_first_value(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` whose first marked value is ``values`` ``(N,)``; every other number unchanged."""
    first = first_marks(x)
    if values.shape != first.shape:
        raise ValueError(f"expected values of shape ({len(x)},), got {tuple(values.shape)}")
    out = x.clone()
    out[torch.arange(len(x), device=x.device), first, 0] = values.to(x)
    return out


def forgot_first_value(x: torch.Tensor) -> torch.Tensor:
    """``(N,)`` the best prediction of ``first + second`` without the first value: ``second + 0.5``.

    The first value is uniform on (0, 1), so a model that lost it can do no better (in squared error)
    than its mean, 0.5; its expected squared error is the first value's variance, 1/12.
    """
    markers = _check_marked(x) != 0
    last_mark = markers.shape[1] - 1 - markers.flip(dims=[1]).long().argmax(dim=1)  # (N,)
    rows = torch.arange(len(x), device=x.device)
    return x[rows, last_mark, 0] + 0.5


def run_with_cell_cut(
    lstm: nn.LSTM,
    x: torch.Tensor,
    cut: torch.Tensor | None = None,
    units: torch.Tensor | list[int] | None = None,
    *,
    detach: bool = False,
) -> torch.Tensor:
    """Run a one-layer ``batch_first`` ``nn.LSTM`` on ``x``, cutting ``c`` where ``cut`` says.

    At every step ``t`` with ``cut[n, t]`` True, sequence ``n`` enters the step with ``c_{t-1} = 0``
    in the given ``units`` (all units when ``None``): the cell state carries nothing across that step,
    while ``h_{t-1}``, the input and the weights are as usual. With ``detach=True`` the cell enters
    with its own ``c_{t-1}``, detached: every number is the same as without a cut, but no gradient
    flows back along ``c_{t-1} -> c_t`` there. With ``cut=None`` the result equals ``lstm(x)[0]``.

    Returns the outputs ``h`` at every step, ``(N, T, H)``.
    """
    _check_lstm(lstm, "run_with_cell_cut")
    N, T, _ = x.shape
    H = lstm.hidden_size
    if cut is not None and cut.shape != (N, T):
        raise ValueError(
            f"expected cut of shape (batch, seq_len) = ({N}, {T}), got {tuple(cut.shape)}"
        )
    unit_mask = _unit_mask(units, N, H, x.device)
    h = torch.zeros(1, N, H, device=x.device, dtype=x.dtype)
    c = torch.zeros_like(h)
    outputs = []
    for t in range(T):
        if cut is not None:
            drop = cut[:, t].unsqueeze(1) & unit_mask  # (N, H)
            c = torch.where(drop.unsqueeze(0), c.detach() if detach else torch.zeros_like(c), c)
        out, (h, c) = lstm(x[:, t : t + 1], (h, c))
        outputs.append(out)
    return torch.cat(outputs, dim=1)  # (N, T, H)


def _check_lstm(lstm: nn.Module, who: str) -> None:
    if not isinstance(lstm, nn.LSTM) or lstm.num_layers != 1 or lstm.bidirectional:
        raise ValueError(f"{who} takes a one-layer, one-direction nn.LSTM")
    if not lstm.batch_first:
        raise ValueError(f"{who} expects batch_first=True (x of shape (N, T, F))")


def _unit_mask(units, N: int, H: int, device) -> torch.Tensor:
    """``(N, H)`` or ``(H,)`` bool: all units for ``None``, a list of units, or a per-row mask."""
    if isinstance(units, torch.Tensor) and units.dtype == torch.bool:
        if units.shape not in ((H,), (N, H)):
            raise ValueError(
                f"expected a unit mask of shape ({H},) or ({N}, {H}), got {tuple(units.shape)}"
            )
        return units.to(device)
    mask = torch.zeros(H, dtype=torch.bool, device=device)
    mask[torch.arange(H) if units is None else torch.as_tensor(units, dtype=torch.long)] = True
    return mask


def run_with_state_swap(
    lstm: nn.LSTM,
    x: torch.Tensor,
    donor: torch.Tensor,
    units: torch.Tensor | list[int] | None = None,
    *,
    state: str = "c",
) -> torch.Tensor:
    """Interchange intervention: run ``x`` with the donor's ``state`` after the first mark.

    ``x`` and ``donor`` (both ``(N, T, 2)``) have their marks at the same steps. Right after each
    sequence's first marked step, the host ``x`` takes the donor's ``c`` (``state="c"``) or ``h``
    (``state="h"``) in ``units`` (all when ``None``; a list, or an ``(N, H)`` bool mask, one row per
    sequence), keeps its own state elsewhere, and runs on with its own inputs.

    Returns the host's outputs ``h`` at every step, ``(N, T, H)``.
    """
    _check_lstm(lstm, "run_with_state_swap")
    if state not in ("c", "h"):
        raise ValueError(f"state must be 'c' or 'h', got {state!r}")
    if donor.shape != x.shape or not torch.equal(donor[..., 1], x[..., 1]):
        raise ValueError("the donor must have the host's shape and marked steps")
    N, T, _ = x.shape
    H = lstm.hidden_size
    unit_mask = _unit_mask(units, N, H, x.device)
    swap_at = first_marks(x) + 1  # (N,) the step after the first mark
    zeros = torch.zeros(1, N, H, device=x.device, dtype=x.dtype)
    host, other = (zeros, zeros), (zeros, zeros)
    outputs = []
    for t in range(T):
        if t > 0:
            take = ((swap_at == t).unsqueeze(1) & unit_mask).unsqueeze(0)  # (1, N, H)
            k = 1 if state == "c" else 0
            swapped = torch.where(take, other[k], host[k])
            host = (host[0], swapped) if k == 1 else (swapped, host[1])
        out, host = lstm(x[:, t : t + 1], host)
        _, other = lstm(donor[:, t : t + 1], other)
        outputs.append(out)
    return torch.cat(outputs, dim=1)  # (N, T, H)


def interchange_slope(shift: torch.Tensor, difference: torch.Tensor) -> float:
    """Least-squares slope through 0 of the prediction ``shift`` on the inputs' ``difference``.

    1 when the prediction moves by the whole difference (the swapped state carries the value), 0
    when it does not move.
    """
    shift, difference = shift.detach().reshape(-1), difference.detach().reshape(-1)
    if shift.shape != difference.shape or difference.numel() < 2:
        raise ValueError(
            f"expected two tensors of equal length (at least 2), got {shift.numel()} and "
            f"{difference.numel()}"
        )
    return ((shift * difference).sum() / (difference**2).sum()).item()


def chrono_init_(lstm: nn.LSTM, max_delay: int, generator: torch.Generator | None = None) -> None:
    """Chrono initialisation (Tallec & Ollivier, 2018), in place, for every layer and direction.

    Forget-gate bias ``b_f = log(u)`` with ``u ~ U(1, max_delay - 1)``, input-gate bias ``-b_f``
    (``bias_hh`` parts set to 0): at the start, unit ``k`` keeps about ``u_k`` steps of memory, so some
    units remember for short and some for long stretches, and the gradient reaches back that far.
    """
    if max_delay < 3:
        raise ValueError(f"max_delay must be at least 3 steps, got {max_delay}")
    H = lstm.hidden_size
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            if name.startswith("bias_ih"):
                u = torch.rand(H, generator=generator) * (max_delay - 2) + 1  # U(1, max_delay - 1)
                forget = torch.log(u).to(param)
                param[H : 2 * H] = forget
                param[0:H] = -forget
            elif name.startswith("bias_hh"):
                param[0 : 2 * H] = 0.0
