"""Layer-wise [CLS] importance: which hidden states does a model that pools over layers rely on?

Every method here answers the question for a model ``f`` that maps ``cls_per_layer (N, L+1, H)`` to
logits ``(N, C)`` (any :class:`~course_utils.layer_pooling.PooledClassifier`), and returns a
:class:`LayerImportance`: one score per example and per hidden state, ``(N, L+1)``.

The score explained is the **log-odds of the target class**,
:math:`s(x) = z_y - \\log\\sum_{c \\ne y} e^{z_c}` (for two classes simply :math:`z_y - z_{1-y}`), so
scores of different methods are in the same unit and "positive" always means "this layer pushed the
model towards the target".

Methods (each replaces the [CLS] vector of layer ``k`` by a *baseline* ``b_k``, by default the mean
[CLS] of that layer over a reference set, so "absent" means "an average sentence", not "all zeros"):

- :func:`ablation_importance`: :math:`s(x) - s(x \\text{ with } x_k := b_k)`, one layer at a time.
- :func:`resample_ablation_importance`: the same drop, with layer ``k`` taken from *other* sentences
  (donors) instead of a mean: a baseline on the data manifold (a mean of standardised features is the
  all-zero vector, which no sentence produces).
- :func:`gradient_x_input`: :math:`\\sum_h (x_{kh} - b_{kh})\\, \\partial s / \\partial x_{kh}`, the
  first-order estimate of the same change from one backward pass.
- :func:`integrated_gradients`: the gradient averaged along the straight path from ``b`` to ``x``;
  the scores of all layers add up to :math:`s(x) - s(b)` (completeness).
- :func:`mix_weight_importance`: the learned weights of a scalar mix, the same for every example.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .device import without_cudnn

__all__ = [
    "LayerImportance",
    "layer_names",
    "target_log_odds",
    "layer_baseline",
    "ablation_importance",
    "resample_ablation_importance",
    "gradient_x_input",
    "integrated_gradients",
    "mix_weight_importance",
    "rank_agreement",
    "METHODS",
]

#: Display names of the per-example methods, in the order the notebook shows them.
METHODS: tuple[str, ...] = ("ablation", "gradient x input", "integrated gradients")


def layer_names(num_hidden_states: int) -> list[str]:
    """Labels for the ``L + 1`` hidden states: ``["emb", "1", ..., "L"]``."""
    return ["emb"] + [str(k) for k in range(1, num_hidden_states)]


@dataclass
class LayerImportance:
    """Scores of one method: ``scores[i, k]`` is how much hidden state ``k`` mattered for example ``i``.

    Attributes:
        method: the method's name (shown in plots).
        scores: ``(N, L+1)`` float tensor, in log-odds of the target class (mix weights: a share).
        layers: one label per hidden state (``"emb", "1", ...``).
        per_example: ``False`` when every row is the same (mix weights: no spread to show).
        unit: what a score measures (axis label).
        meta: anything else worth keeping (e.g. the completeness gap of integrated gradients).
    """

    method: str
    scores: torch.Tensor
    layers: list[str]
    per_example: bool = True
    unit: str = "change in log-odds of the target"
    meta: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scores.ndim != 2 or self.scores.shape[1] != len(self.layers):
            raise ValueError(
                f"scores must be (examples, layers) = (*, {len(self.layers)}), "
                f"got {tuple(self.scores.shape)}"
            )
        self.scores = self.scores.detach().float().cpu()

    @property
    def num_examples(self) -> int:
        return self.scores.shape[0]

    def profile(self) -> torch.Tensor:
        """The mean score per layer over examples, ``(L+1,)``."""
        return self.scores.mean(dim=0)

    def shares(self) -> torch.Tensor:
        """The mean *absolute* score per layer as a share of the total, ``(L+1,)`` summing to 1.

        Puts methods with different units (log-odds, mix weights) on one scale for comparison.
        """
        magnitude = self.scores.abs().mean(dim=0)
        return magnitude / magnitude.sum().clamp_min(1e-12)

    def example_shares(self) -> torch.Tensor:
        """Per example, each layer's absolute score as a share of that example's total, ``(N, L+1)``.

        One share per test item, so two models explained on the same items can be compared with a
        paired bootstrap (:func:`course_utils.checks.paired_bootstrap`). A row whose scores are all 0
        gets shares of 0.
        """
        magnitude = self.scores.abs()
        return magnitude / magnitude.sum(dim=1, keepdim=True).clamp_min(1e-12)

    def top_layer(self) -> str:
        """The label of the layer with the largest mean absolute score."""
        return self.layers[int(self.scores.abs().mean(dim=0).argmax())]

    def subset(self, index: torch.Tensor | Sequence[int]) -> LayerImportance:
        """The same method on a subset of the examples."""
        return LayerImportance(
            self.method,
            self.scores[index],
            list(self.layers),
            self.per_example,
            self.unit,
            dict(self.meta),
        )


def target_log_odds(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Log-odds of the target class per example: ``z_y - logsumexp(z_c, c != y)``, shape ``(N,)``."""
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (N, C) and targets (N,), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
    if logits.shape[1] < 2:
        raise ValueError(f"log-odds need at least 2 classes, got logits {tuple(logits.shape)}")
    chosen = logits.gather(1, targets.view(-1, 1)).squeeze(1)  # (N,)
    others = logits.scatter(1, targets.view(-1, 1), float("-inf"))  # (N, C), target masked out
    return chosen - torch.logsumexp(others, dim=1)


def _check_inputs(model: nn.Module, x: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    if x.ndim != 3:
        raise ValueError(
            f"expected cls_per_layer of shape (batch, num_layers + 1, hidden_size), got {tuple(x.shape)}"
        )
    if model.training:
        raise RuntimeError(
            "the model is in training mode (dropout would make the scores random); call model.eval()"
        )
    if targets is None:
        with torch.no_grad():
            targets = model(x).argmax(dim=1)
    if targets.shape != x.shape[:1]:
        raise ValueError(f"expected targets of shape ({x.shape[0]},), got {tuple(targets.shape)}")
    return targets


def layer_baseline(
    reference: torch.Tensor | None, x: torch.Tensor, baseline: str | torch.Tensor = "mean"
) -> torch.Tensor:
    """The "absent layer" value ``b (L+1, H)``.

    Args:
        reference: features to average for ``"mean"`` (e.g. the training split); ``None`` uses ``x``.
        x: the features being explained, ``(N, L+1, H)``.
        baseline: ``"mean"`` (mean [CLS] per layer), ``"zero"``, or a tensor ``(L+1, H)``.
    """
    if isinstance(baseline, torch.Tensor):
        if baseline.shape != x.shape[1:]:
            raise ValueError(
                f"baseline must have shape {tuple(x.shape[1:])}, got {tuple(baseline.shape)}"
            )
        return baseline.to(x)
    if baseline == "mean":
        ref = x if reference is None else reference
        if ref.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"reference must be (*, {x.shape[1]}, {x.shape[2]}), got {tuple(ref.shape)}"
            )
        return ref.mean(dim=0).to(x)  # (L+1, H)
    if baseline == "zero":
        return torch.zeros_like(x[0])
    raise ValueError(f"baseline must be 'mean', 'zero' or a tensor, got {baseline!r}")


def _prepare(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor | None,
    reference: torch.Tensor | None,
    baseline: str | torch.Tensor,
):
    """Validate the inputs; return the targets, the baseline ``(L+1, H)`` and the score function."""
    targets = _check_inputs(model, x, targets)
    return targets, layer_baseline(reference, x, baseline), _score_fn(model, targets)


def _score_fn(model: nn.Module, targets: torch.Tensor) -> Callable[..., torch.Tensor]:
    """``score(feats, rows)``: the target log-odds of ``feats``, whose rows are the examples ``rows``
    (default: every example, in order)."""
    return lambda feats, rows=slice(None): target_log_odds(model(feats), targets[rows])


_BASELINE_ARGS = """
    Args:
        model: ``cls_per_layer (N, L+1, H) -> logits (N, C)``, in eval mode.
        x: features to explain ``(N, L+1, H)``.
        targets: class explained per example; ``None`` uses the model's prediction.
        reference: features whose mean is the baseline (e.g. the training split).
        baseline: ``"mean"`` (of ``reference``), ``"zero"``, or a tensor ``(L+1, H)``.
"""


def _baseline_method(compute: Callable[..., LayerImportance]) -> Callable[..., LayerImportance]:
    """The public form of a method that compares ``x`` with a baseline ``b``: one signature for all.

    ``compute(x, base, score, **options)`` gets the checked features, the baseline ``(L+1, H)``, the
    score function of :func:`_score_fn` and its own keyword-only options (which the public signature
    lists after ``baseline``).
    """

    def method(
        model: nn.Module,
        x: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        reference: torch.Tensor | None = None,
        baseline: str | torch.Tensor = "mean",
        **options,
    ) -> LayerImportance:
        _, base, score = _prepare(model, x, targets, reference, baseline)
        return compute(x, base, score, **options)

    own = inspect.signature(method).parameters.values()
    extra = inspect.signature(compute).parameters.values()
    method.__signature__ = inspect.signature(method).replace(
        parameters=[p for p in own if p.kind != p.VAR_KEYWORD]
        + [p for p in extra if p.kind == p.KEYWORD_ONLY]
    )
    method.__name__ = method.__qualname__ = compute.__name__
    method.__module__ = compute.__module__
    method.__doc__ = (compute.__doc__ or "") + _BASELINE_ARGS
    return method


@_baseline_method
@torch.no_grad()
def ablation_importance(x, base, score) -> LayerImportance:
    """Replace one layer's [CLS] by its baseline and measure the drop in target log-odds.

    Exact for "this layer alone is removed", but blind to redundancy: if two layers carry the same
    information, removing either one costs little although together they matter:
    ``scores[i, k] = s(x_i) - s(x_i, layer k ablated)``.
    """
    full = score(x)  # (N,)
    columns = []
    for k in range(x.shape[1]):
        ablated = x.clone()
        ablated[:, k] = base[k]  # (N, H) <- (H,)
        columns.append(full - score(ablated))
    return LayerImportance("ablation", torch.stack(columns, dim=1), layer_names(x.shape[1]))


@torch.no_grad()
def resample_ablation_importance(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor | None = None,
    *,
    donors: torch.Tensor,
    draws: int = 4,
    generator: torch.Generator | None = None,
) -> LayerImportance:
    """Ablation with a baseline on the data manifold: layer ``k`` taken from random other sentences.

    For each example and each draw, layer ``k`` is replaced by layer ``k`` of a random row of
    ``donors`` (e.g. the training split); the score drop is averaged over ``draws``. Unlike a mean
    (or, after standardising, the all-zero vector), every replacement is a vector a real sentence
    produced, so the model is never asked about inputs it has never seen.

    Args:
        model: ``cls_per_layer (N, L+1, H) -> logits (N, C)``, in eval mode.
        x: features to explain ``(N, L+1, H)``.
        targets: class explained per example; ``None`` uses the model's prediction.
        donors: features to draw replacements from ``(M, L+1, H)``.
        draws: replacements per example and layer (more: less noise).
        generator: for the donor draws (the same generator state gives the same scores).

    Returns:
        :class:`LayerImportance` with ``scores[i, k] = s(x_i) - mean_d s(x_i, layer k := donor_d)``.
    """
    targets = _check_inputs(model, x, targets)
    if donors.ndim != 3 or donors.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"donors must be (*, {x.shape[1]}, {x.shape[2]}) like x, got {tuple(donors.shape)}"
        )
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    score = _score_fn(model, targets)
    full = score(x)  # (N,)
    picks = torch.randint(0, len(donors), (draws, x.shape[1], len(x)), generator=generator)
    columns = []
    for k in range(x.shape[1]):
        drop = torch.zeros_like(full)
        for d in range(draws):
            ablated = x.clone()
            ablated[:, k] = donors[picks[d, k].to(donors.device), k].to(x)  # (N, H)
            drop += full - score(ablated)
        columns.append(drop / draws)
    return LayerImportance(
        "resample ablation", torch.stack(columns, dim=1), layer_names(x.shape[1])
    )


def _gradients(score: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor) -> torch.Tensor:
    points = points.detach().requires_grad_(True)
    with torch.enable_grad(), without_cudnn():  # cuDNN's LSTM has no backward in eval mode
        (grad,) = torch.autograd.grad(score(points).sum(), points)
    return grad


@_baseline_method
def gradient_x_input(x, base, score) -> LayerImportance:
    """First-order estimate of the ablation: ``sum_h (x - b) * ds/dx`` per layer, one backward pass.

    Cheap and per example, but local: where the model saturates (a confident prediction) the gradient
    is small even for a layer whose removal would change a lot.
    """
    grad = _gradients(score, x)  # (N, L+1, H)
    scores = ((x - base) * grad).sum(dim=-1)  # (N, L+1)
    return LayerImportance("gradient x input", scores, layer_names(x.shape[1]))


@_baseline_method
def integrated_gradients(
    x, base, score, *, steps: int = 32, batch_size: int = 2048
) -> LayerImportance:
    """Integrated gradients (Sundararajan et al., 2017) summed per layer.

    The gradient is averaged over ``steps`` points on the straight line from the baseline ``b`` (every
    layer at its baseline) to ``x`` (midpoint rule), then multiplied by ``x - b``. The per-layer scores
    add up to ``s(x) - s(b)`` up to the discretisation error, recorded as ``meta["completeness_gap"]``
    (the largest gap over examples).

    Options:
        steps: points on the path (more: a smaller completeness gap).
        batch_size: rows (step x example pairs) per backward pass; memory is about
            ``batch_size * (L+1) * H`` floats plus the model's activations.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps  # midpoints
    delta = x - base  # (N, L+1, H)
    n = len(x)
    # Every (step, example) pair is one row of a big batch, cut into chunks of batch_size rows:
    # few backward passes, and memory bounded by batch_size.
    rows = torch.arange(steps * n, device=x.device)
    total = torch.zeros_like(x)
    for chunk in rows.split(batch_size):
        step, example = chunk // n, chunk % n
        points = base + alphas[step].view(-1, 1, 1) * delta[example]  # (rows, L+1, H)
        grad = _gradients(lambda p, example=example: score(p, example), points)
        total.index_add_(0, example, grad)
    scores = (delta * total / steps).sum(dim=-1)  # (N, L+1)
    with torch.no_grad():
        gap = (scores.sum(dim=1) - (score(x) - score(base.expand_as(x)))).abs().max().item()
    return LayerImportance(
        "integrated gradients", scores, layer_names(x.shape[1]), meta={"completeness_gap": gap}
    )


def mix_weight_importance(model: nn.Module, num_examples: int = 1) -> LayerImportance:
    """The learned weights of a :class:`~course_utils.layer_pooling.ScalarMix`, one row per example.

    The same for every example (no spread), and blind to the size of each layer's vector and to what
    the head does with it: a large weight on a layer whose [CLS] barely varies changes nothing.
    """
    mix = model if hasattr(model, "layer_weights") else getattr(model, "pooling", None)
    if not hasattr(mix, "layer_weights"):
        raise TypeError(
            f"mix weights need a ScalarMix (or a PooledClassifier around one), got {type(model).__name__}"
        )
    weights = mix.layer_weights().cpu()  # (L+1,)
    return LayerImportance(
        "mix weights",
        weights.expand(num_examples, -1).clone(),
        layer_names(len(weights)),
        per_example=False,
        unit="mix weight",
    )


def _ranks(values: torch.Tensor) -> torch.Tensor:
    return values.argsort(dim=-1).argsort(dim=-1).float()


def rank_agreement(
    a: LayerImportance, b: LayerImportance, *, layers: Sequence[int] | None = None
) -> torch.Tensor:
    """Spearman rank correlation of two methods' layer rankings, per example: ``(N,)`` in [-1, 1].

    Args:
        layers: the hidden states to rank (e.g. ``range(1, L + 1)`` to leave out a layer the model
            never reads, whose scores are 0 for every method).
    """
    if a.scores.shape != b.scores.shape:
        raise ValueError(
            f"scores must match, got {tuple(a.scores.shape)} and {tuple(b.scores.shape)}"
        )
    idx = list(range(a.scores.shape[1])) if layers is None else list(layers)
    if len(idx) < 2:
        raise ValueError("ranking needs at least 2 layers")
    ra, rb = _ranks(a.scores[:, idx]), _ranks(b.scores[:, idx])  # (N, K)
    ra, rb = ra - ra.mean(dim=1, keepdim=True), rb - rb.mean(dim=1, keepdim=True)
    denom = (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)
    return (ra * rb).sum(dim=1) / denom
