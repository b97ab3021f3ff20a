"""Gradient connectivity: how strongly each input time step can still move a sequence model's output.

"Vanishing gradients" is a statement about numbers we can measure. For an input ``x`` of shape
``(B, T, F)`` and a scalar objective ``L`` (a loss, or simply the model's outputs summed), the gradient
``dL/dx_t`` says how much a small change of the input at step ``t`` changes ``L``. Its norm per step,

.. math:: g_t = \\lVert \\partial L / \\partial x_t \\rVert_2 ,

is the "connectivity" picture of Distill's *Visualizing memorization in RNNs*: if ``g_t`` falls by
orders of magnitude from the last step back to the first, early inputs barely reach the output and the
model cannot learn from them. The functions here compute that profile for **any** model that maps a
float tensor ``(B, T, F)`` to outputs (LSTM stacks, attention models, anything); the plots live in
:mod:`course_utils.gradient_plots`.

Shapes: ``B`` examples, ``T`` time steps, ``F`` input features.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .device import without_cudnn

#: ``objective(outputs) -> scalar``: what we differentiate (default: the outputs summed).
Objective = Callable[[torch.Tensor], torch.Tensor]


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"x must be a torch.Tensor of shape (batch, seq_len, input_size), got {type(x)}"
        )
    if x.ndim != 3:
        raise ValueError(
            f"expected x of shape (batch, seq_len, input_size), got {tuple(x.shape)}; "
            "add a feature axis with x.unsqueeze(-1) for a univariate series"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"x must be a float tensor to take gradients with respect to it, got {x.dtype}; for token "
            "ids, measure the gradient with respect to the embedded inputs instead"
        )


class _EvalMode:
    """Put a module in eval mode (no dropout) for the measurement, then restore its mode.

    cuDNN is off inside (:func:`~course_utils.device.without_cudnn`): its LSTM kernel has no
    backward in eval mode.
    """

    def __init__(self, model: Callable) -> None:
        self.module = model if isinstance(model, nn.Module) else None
        self.cudnn = without_cudnn()

    def __enter__(self) -> None:
        self.cudnn.__enter__()
        if self.module is not None:
            self.was_training = self.module.training
            self.module.eval()

    def __exit__(self, *exc: object) -> None:
        if self.module is not None:
            self.module.train(self.was_training)
        self.cudnn.__exit__(*exc)


def input_gradient_norms(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    objective: Objective | None = None,
) -> torch.Tensor:
    """Per-example, per-step norm of the gradient of ``objective(model(x))`` with respect to ``x``.

    The model runs in eval mode (restored afterwards) and parameter ``.grad`` fields are left
    untouched (``torch.autograd.grad`` is used, not ``backward``), so it is safe mid-training.

    Args:
        model: any callable ``model(x) -> outputs``; wrap extra inputs in a lambda, e.g.
            ``lambda x: model(x, lengths)``.
        x: float inputs ``(B, T, F)``.
        objective: ``objective(outputs) -> scalar``. Default: ``outputs.sum()``, so row ``i`` is the
            gradient of example ``i``'s own output (examples do not mix in eval mode). For a loss, sum
            over the batch (``reduction="sum"``) so each row is that example's loss gradient.

    Returns:
        ``(B, T)`` tensor of L2 norms over the feature axis, detached.

    Example:
        >>> lstm, head = nn.LSTM(2, 8, batch_first=True), nn.Linear(8, 1)
        >>> model = lambda x: head(lstm(x)[0][:, -1])
        >>> input_gradient_norms(model, torch.randn(4, 10, 2)).shape
        torch.Size([4, 10])
    """
    _check_input(x)
    x = x.detach().clone().requires_grad_(True)
    with _EvalMode(model), torch.enable_grad():
        outputs = model(x)
        value = objective(outputs) if objective is not None else outputs.sum()
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(
                "the objective must be a scalar tensor; sum or average it over the batch "
                f"(got shape {tuple(getattr(value, 'shape', ()))})"
            )
        (grad,) = torch.autograd.grad(value.reshape(()), x, allow_unused=True)
    if grad is None:  # the outputs do not depend on x at all
        grad = torch.zeros_like(x)
    return grad.norm(dim=-1).detach()  # (B, T)


def connectivity_map(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
) -> torch.Tensor:
    """Distill's connectivity matrix: how much output step ``t`` depends on input step ``s``.

    ``model(x)`` must return one output per step, shape ``(B, T, H)`` (``return_sequences=True`` in
    Keras terms; ``nn.LSTM``'s ``output``). Entry ``[t, s]`` is the norm of the gradient of
    ``outputs[:, t].sum()`` with respect to ``x[:, s]``, averaged over the batch. A causal model gives
    exactly 0 above the diagonal (``s > t``): step ``t`` has not read the future yet.

    The sum runs over the units of ``h_t`` too, so units whose gradients have opposite signs can
    cancel: this is ``||d(sum_k h_{t,k}) / dx_s||``, one backward pass per output step, not the norm
    of the Jacobian ``dh_t / dx_s`` (that would need one pass per unit). Label plots accordingly.

    Returns:
        ``(T, T)`` tensor, rows = output steps, columns = input steps.
    """
    _check_input(x)
    x = x.detach().clone().requires_grad_(True)
    rows = []
    with _EvalMode(model), torch.enable_grad():
        outputs = model(x)
        if outputs.ndim != 3 or outputs.shape[:2] != x.shape[:2]:
            raise ValueError(
                "connectivity_map needs one output per step, shape (batch, seq_len, hidden) = "
                f"({x.shape[0]}, {x.shape[1]}, *), got {tuple(outputs.shape)}; for a last-step "
                "model use input_gradient_norms instead"
            )
        for t in range(x.shape[1]):
            (grad,) = torch.autograd.grad(outputs[:, t].sum(), x, retain_graph=True)
            rows.append(grad.norm(dim=-1).mean(dim=0))  # (T,)
    return torch.stack(rows).detach()  # (T_out, T_in)


def first_last_ratio(norms: torch.Tensor) -> float:
    """How much weaker the gradient is at the first step than at the last: ``g_0 / g_{T-1}``.

    ``norms`` is ``(T,)`` or ``(B, T)`` (then averaged over the batch first). A value near 1 means the
    first input reaches the output as strongly as the last; 1e-3 means a thousand times more weakly.
    """
    profile = _profile(norms)
    last = float(profile[-1])
    if last == 0.0:
        raise ValueError("the gradient at the last step is 0, so the ratio is undefined")
    return float(profile[0]) / last


def decay_per_step(norms: torch.Tensor) -> float:
    """The average factor by which the gradient shrinks per step back in time (geometric mean).

    ``(g_0 / g_{T-1}) ** (1 / (T - 1))``: 1.0 means no decay; 0.8 means each step back keeps 80 %.
    """
    profile = _profile(norms)
    if len(profile) < 2:
        raise ValueError("need at least two steps to measure a decay")
    return first_last_ratio(profile) ** (1.0 / (len(profile) - 1))


def _profile(norms: torch.Tensor) -> torch.Tensor:
    norms = torch.as_tensor(norms, dtype=torch.float64)
    if norms.ndim == 2:
        norms = norms.mean(dim=0)
    if norms.ndim != 1 or norms.numel() == 0:
        raise ValueError(f"expected norms of shape (T,) or (B, T), got {tuple(norms.shape)}")
    return norms


def log_slope(norms: torch.Tensor) -> torch.Tensor:
    """The per-step growth of ``log10 g_t`` towards the output, per sequence: a scale-free decay rate.

    ``norms`` is ``(B, T)`` (per-sequence gradient norms, e.g. from :func:`input_gradient_norms`)
    or ``(T,)``. Returns the least-squares slope of ``log10 g_t`` against ``t`` for each row, shape
    ``(B,)`` (or a 0-d tensor): how many powers of ten the gradient loses per step back in time, so
    ``10 ** -slope`` is the share that survives one more step. Multiplying the gradients by a constant
    (a larger output head, another loss scale) shifts every ``log10 g_t`` by the same amount and leaves
    the slope unchanged, unlike ``g_0`` itself. Take the steps you want first (``norms[:, :T // 2]``).
    """
    values = torch.as_tensor(norms, dtype=torch.float64)
    if values.ndim not in (1, 2) or values.shape[-1] < 2:
        raise ValueError(
            f"expected norms of shape (T,) or (B, T) with T >= 2, got {tuple(values.shape)}"
        )
    if not (values > 0).all():
        raise ValueError("log_slope needs positive gradient norms (a 0 has no logarithm)")
    logs = values.log10()
    t = torch.arange(logs.shape[-1], dtype=torch.float64, device=logs.device)
    t = t - t.mean()
    return ((logs - logs.mean(dim=-1, keepdim=True)) * t).sum(dim=-1) / (t**2).sum()
