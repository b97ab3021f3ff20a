"""The standalone visualizer (``make visualize``): the course's views of its models, with no code.

One sentence, picked from a menu or typed, drives three tabs:

(a) **attention**: the pretrained encoder's self-attention by layer and head, as a heatmap or as
    token lines (notebook 08's explorer);
(b) **BERT + LSTM**: the notebook-08 classifier's prediction, and the h, c and gates of its two
    LSTMs over the sentence's tokens (``inspect``'s state views; the grid names the token read at
    each step);
(c) **layer importance**: which hidden state's [CLS] the notebook-09 BiLSTM pooling relies on for
    the class it **predicts**, by ablation, gradient x input and integrated gradients, next to the
    same model **untrained** (the control: what the methods give for a model that learned nothing).
    The spread is over the menu's sentences (and a typed one), the shown sentence in red.

Each tab opens with a two-line guide (:data:`GUIDES`: what it shows, what to look for).

The two classifiers are loaded from ``app/weights/classifiers.pt`` (made by
``scripts/make_app_weights.py``), so the app starts in seconds and works offline. They are not the
notebooks' own models (one seed, the script's 1200 sentences); the page says how they were trained
and shows each test accuracy next to the test split's majority-class rate and size. The attention
and importance tabs carry the course's caveat: weights and scores describe what a model computes
with, not why it decides (notebook 07; CONTRIBUTING, rule 12). Built from the
course's own explorers: :func:`~course_utils.bert_views.bert_attention_explorer`,
:func:`~course_utils.inspector.inspect`, :func:`~course_utils.importance_plots.importance_explorer`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import torch

__all__ = [
    "CAVEAT",
    "GUIDES",
    "IMPORTANCE_NOTE",
    "VisualizerApp",
    "WEIGHTS",
    "accuracy_line",
    "load_models",
]

WEIGHTS = Path(__file__).resolve().parents[1] / "app" / "weights" / "classifiers.pt"
CLASSES = ("negative", "positive")
CAVEAT = (
    "Attention weights are not explanations: where a head looks is what the model computes with, "
    "not why it decides (Jain &amp; Wallace 2019); only a control, such as the same model trained "
    "with uniform attention (Wiegreffe &amp; Pinter 2019), can show that looking there matters."
)
#: Each tab's guide: what it shows, then what to look for.
GUIDES = {
    "attention": (
        "<b>What it shows:</b> the pretrained encoder's self-attention on this sentence, one layer "
        "and head at a time: each row is a token that looks, each column a token it looks at, and "
        "every row sums to 1.",
        "<b>What to look for:</b> heads with a clear pattern (the previous or next token, [CLS] or "
        "[SEP], the same word elsewhere) against heads spread evenly over the sentence.",
    ),
    "BERT + LSTM": (
        "<b>What it shows:</b> the classifier's prediction, and the h, c and gates of each of its "
        "two LSTMs at every token (the grid names the token read at each step).",
        "<b>What to look for:</b> the steps where the gates move (a negation, a <i>but</i>) and "
        "units whose c changes there and then holds until the end.",
    ),
    "layer importance": (
        "<b>What it shows:</b> how much each encoder layer's [CLS] supports the predicted class, by "
        "three methods; top: one method over all the menu's sentences (this one in red); bottom: "
        "this sentence, every method.",
        "<b>What to look for:</b> layers where the methods agree, and whether the trained model "
        "differs from the untrained control: a pattern the control shows too says nothing about "
        "what training learned.",
    ),
}
IMPORTANCE_NOTE = (
    "Importance of the <b>predicted</b> class: each method scores how much each layer's [CLS] "
    "supports the class the model predicts for this sentence (not the true label, not the other "
    "class). Importance scores, like attention weights, describe the model, not the reason for "
    "its answer; compare with the untrained model (the control)."
)


def load_models(encoder, path: Path = WEIGHTS) -> dict[str, Any]:
    """The app's trained classifiers (float32, eval mode), their untrained twin and the settings."""
    from .bert_lstm import TokenLSTM
    from .layer_pooling import make_classifier
    from .seeding import seeded

    if not Path(path).exists():
        raise FileNotFoundError(
            f"{path} is missing: make it with `python scripts/make_app_weights.py` (about a minute)"
        )
    saved = torch.load(path, map_location="cpu", weights_only=True)
    H, L = encoder.model.config.hidden_size, encoder.num_layers
    token = TokenLSTM(H, tuple(saved["token_lstm"]["hidden_sizes"]))
    token.load_state_dict({k: v.float() for k, v in saved["token_lstm"]["state"].items()})

    def pooling():
        return make_classifier(
            saved["pooling"]["name"],
            num_layers=L,
            hidden_size=H,
            lstm_hidden=saved["pooling"]["lstm_hidden"],
        )

    pool = pooling()
    pool.load_state_dict({k: v.float() for k, v in saved["pooling"]["state"].items()})
    with seeded(saved["seed"]):  # the same initial weights the trained model started from
        untrained = pooling()
    return {
        "token_lstm": token.eval(),
        "pooling": pool.eval(),
        "untrained": untrained.eval(),
        "reference": saved["reference"].float(),  # (L + 1, H): each layer's training mean
        "sentences": list(saved["sentences"]),
        "test_accuracy": saved["test_accuracy"],
        "test_size": saved["test_size"],
        "test_majority": saved["test_majority"],
        "training": saved["training"],
    }


class VisualizerApp(widgets.VBox):
    """The app's page: a sentence picker and three tabs of views (see the module docstring)."""

    def __init__(self, encoder, models: dict[str, Any], sentences: list[str] | None = None):
        from .bert_views import bert_attention_explorer

        self.encoder, self.models = encoder, models
        self.sentences = list(sentences or models["sentences"])
        self.menu = widgets.Dropdown(
            options=self.sentences,
            value=self.sentences[0],
            description="sentence",
            layout=widgets.Layout(width="560px"),
        )
        self.typed = widgets.Text(
            placeholder="or type a sentence and press Enter",
            continuous_update=False,
            layout=widgets.Layout(width="420px"),
        )
        self.attention = bert_attention_explorer(encoder, self.sentences)
        for name in ("sentence", "own"):  # the page's own picker drives it
            self.attention.controls[name].layout.display = "none"
        self.prediction = widgets.HTML()
        self.states = widgets.Box(layout=widgets.Layout(max_width="100%"))
        self.importance = widgets.Box(layout=widgets.Layout(max_width="100%"))
        self.tabs = widgets.Tab(
            [
                widgets.VBox([_guide("attention"), _note(CAVEAT), self.attention]),
                widgets.VBox([_guide("BERT + LSTM"), self.prediction, self.states]),
                widgets.VBox([_guide("layer importance"), _note(IMPORTANCE_NOTE), self.importance]),
            ],
            layout=widgets.Layout(max_width="100%"),
        )
        for k, title in enumerate(("attention", "BERT + LSTM", "layer importance")):
            self.tabs.set_title(k, title)
        self.status = widgets.HTML()
        self.intro = widgets.HTML(
            "<h2 style='margin:4px 0'>LSTMs, attention and BERT: the course's visualizer</h2>"
            "Pick a sentence or type your own. Encoder: all-MiniLM-L6-v2 (pretrained, offline). "
            + accuracy_line(models)
        )
        super().__init__(
            [
                self.intro,
                widgets.HBox([self.menu, self.typed], layout=_wrap()),
                self.status,
                self.tabs,
            ],
            layout=widgets.Layout(max_width="100%"),
        )
        self.menu.observe(self._on_menu, names="value")
        self.typed.observe(self._on_typed, names="value")
        self.show(self.sentences[0])

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> VisualizerApp:
        """Load the encoder and the shipped weights, and build the page (what the app runs)."""
        from .encoders import load_encoder

        torch.set_num_threads(1)  # small models, shared cores: one thread is fastest
        encoder = load_encoder()
        return cls(encoder, load_models(encoder, path))

    @property
    def text(self) -> str:
        """The sentence shown now."""
        return self.typed.value.strip() or self.menu.value

    def _on_menu(self, change: dict) -> None:
        if change["new"] is None:
            return
        if self.typed.value:
            self.typed.unobserve(self._on_typed, names="value")
            self.typed.value = ""  # a picked sentence wins over an earlier typed one
            self.typed.observe(self._on_typed, names="value")
        self.show(change["new"])

    def _on_typed(self, change: dict) -> None:
        text = change["new"].strip()
        if not text:
            return
        self.menu.unobserve(self._on_menu, names="value")
        self.menu.index = None  # the menu names no sentence while a typed one is shown
        self.menu.observe(self._on_menu, names="value")
        self.show(text)

    def show(self, text: str) -> None:
        """Draw every tab for ``text``."""
        from .encoders import encode

        start = time.perf_counter()
        try:
            encoded = encode(self.encoder, [text], attentions=True, progress=False)
            self.attention.controls["own"].value = text
            self._classifier(encoded)
            self._importance(text)
            self.status.value = (
                f"<small>{len(encoded.tokens(0))} tokens, drawn in "
                f"{time.perf_counter() - start:.2f} s</small>"
            )
        except Exception as exc:  # shown on the page: the app has no cell to print into
            self.status.value = f"<span style='color:#b00'>Cannot show this sentence: {exc}</span>"

    def _classifier(self, encoded) -> None:
        from .inspector import inspect

        model = self.models["token_lstm"]
        tokens = encoded.tokens(0)
        # the state views write each step's token under the grid's input arrows
        inspector = inspect(model, encoded.last_hidden_state, encoded.attention_mask, tokens=tokens)
        probs = torch.softmax(inspector.output, dim=-1)[0]
        label = int(probs.argmax())
        listed = " ".join(f"<code>{k}:{t}</code>" for k, t in enumerate(tokens))
        self.prediction.value = (
            f"<b>prediction: {CLASSES[label]}</b> ({probs[label]:.0%}). Below: the h, c and gates "
            f"of its two LSTMs (pick one) at every token; time step k is token k: {listed}"
        )
        self.states.children = [inspector]

    def _importance(self, text: str) -> None:
        """The importance explorer over the menu's sentences (and ``text`` if typed), ``text`` shown."""
        from .encoders import encode
        from .importance import ablation_importance, gradient_x_input, integrated_gradients
        from .importance_plots import importance_explorer

        texts = self.sentences if text in self.sentences else [*self.sentences, text]
        encoded = encode(self.encoder, texts, progress=False)
        z = encoded.cls_per_layer  # (N, L+1, H): raw, as the model was trained
        reference = self.models["reference"].expand_as(z)  # each layer's training mean: "absent"
        imps, predictions = {}, {}
        for name, key in (("trained", "pooling"), ("untrained (control)", "untrained")):
            model = self.models[key]
            with torch.no_grad():
                target = model(z).argmax(-1)
            predictions[name] = target
            imps[name] = {
                "ablation": ablation_importance(model, z, target, reference=reference),
                "gradient x input": gradient_x_input(model, z, target, reference=reference),
                "integrated gradients": integrated_gradients(
                    model, z, target, steps=16, reference=reference
                ),
            }
        explorer = importance_explorer(
            imps,
            texts=texts,
            predictions=predictions,
            class_names=CLASSES,
            index=texts.index(text),
        )
        explorer.controls["index"].layout.display = "none"  # the page's picker drives it
        self.importance.children = [explorer]


def accuracy_line(models: dict[str, Any]) -> str:
    """Each test accuracy next to the majority-class rate of its own test split, with its size,
    and how the app's models were trained (they are not the notebooks' own runs)."""
    from .sentences import KINDS

    acc, size, chance = models["test_accuracy"], models["test_size"], models["test_majority"]
    how = models["training"]
    pool = how["pooling_sentences"]
    kinds = ", ".join(k for k, w in zip(KINDS, pool["kind_weights"], strict=True) if w)

    def shown(name: str, key: str) -> str:
        value, n, rate = acc[key], size[key], chance[key]
        return (
            f"{name} {value:.3f} on n={n} test sentences, where always answering the majority "
            f"class scores {rate:.3f} ({value - rate:+.3f} against the majority rate, about "
            f"{round((value - rate) * n)} of {n} sentences)"
        )

    return (
        f"Classifiers trained on the course's generated market news, one seed each, by "
        f"<code>scripts/make_app_weights.py</code>: not the notebooks' own models. "
        f"{shown('BERT + LSTM', 'token_lstm')}, trained on {how['sentences']} sentences of all "
        f"four kinds [{how['token_lstm']}]; "
        f"{shown('layer pooling', 'pooling')}, trained on notebook 09's {pool['n']} sentences "
        f"({kinds} only: on all four kinds [CLS] alone gave it nothing to learn) "
        f"[{how['pooling']}]."
    )


def _guide(tab: str) -> widgets.HTML:
    return widgets.HTML(
        "<br>".join(GUIDES[tab]), layout=widgets.Layout(max_width="100%", margin="2px 0 4px 0")
    )


def _note(html: str) -> widgets.HTML:
    return widgets.HTML(f"<small>{html}</small>", layout=widgets.Layout(max_width="100%"))


def _wrap() -> widgets.Layout:
    return widgets.Layout(display="flex", flex_flow="row wrap", max_width="100%")
