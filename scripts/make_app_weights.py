"""Train the visualizer app's two small models and save them as one small file (``make visualize``).

The app (``app/visualizer.ipynb``) must start in seconds, so it loads trained weights instead of
training: this script makes them, from the course's own parts and generated sentences (notebooks 08
and 09), offline:

- the BERT + LSTM classifier of notebook 08 (``TokenLSTM(H, (64, 32))``: every token's last hidden
  state into two stacked LSTMs, packed by the attention mask), trained as notebook 08 trains it:
  20 epochs, Adam at lr 3e-3, batch 64;
- the layer-pooling classifier of notebook 09 (``BiLSTM final states`` over the raw [CLS] of every
  hidden state, the features the article's ``LSTMPooling`` receives), whose layer-wise importance
  the app shows, trained as notebook 09 trains it and on notebook 09's sentences (2000, plain and
  negation kinds, 42 / 9 / 49 % split): early stopping on the validation split (at most 60 epochs,
  patience 10, best weights kept), Adam at lr 1e-2, batch 128; with the training mean of every
  layer's [CLS], the importance methods' reference ("the layer absent"). On the app's own 1200
  sentences of all four kinds the same recipe learns nothing from [CLS] alone (test accuracy
  0.50-0.59 at lr 1e-2 to 1e-3, raw or standardised, against a majority rate of 0.556).

They are not the notebooks' own models: one seed each. The file records how they were trained
(``training``) and, per model, its test size and the test split's majority-class rate (chance,
computed from the labels), so the page can show every accuracy next to its baseline. Weights are stored as float16 (about 0.5 MB in all) with the
settings that rebuild the models and a few test sentences for the app's menu. Run:
``python scripts/make_app_weights.py`` (about 60 s on 2 idle cores); it overwrites
``app/weights/classifiers.pt``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from course_utils.bert_lstm import TokenLSTM
from course_utils.checks import majority_rate
from course_utils.early_stopping import train_early_stopping
from course_utils.encoders import encode, load_encoder
from course_utils.layer_pooling import make_classifier
from course_utils.seeding import seed_everything
from course_utils.tasks import sentiment_task
from course_utils.training import accuracy, train

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "app" / "weights" / "classifiers.pt"
TOKEN_HIDDEN = (64, 32)
POOL_HIDDEN = 32
TOKEN_EPOCHS, TOKEN_LR = 20, 3e-3  # notebook 08
POOL_MAX_EPOCHS, POOL_PATIENCE, POOL_LR = 60, 10, 1e-2  # notebook 09
POOL_DATA = {"n": 2000, "kind_weights": (1, 1, 0, 0), "fractions": (0.42, 0.09)}  # notebook 09


def _half(state: dict) -> dict:
    return {k: v.detach().to(torch.float16) for k, v in state.items()}


def main(n_sentences: int = 1200, seed: int = 0, out: Path = OUT) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    start = time.perf_counter()
    data = sentiment_task(n_sentences, seed=seed)
    encoder = load_encoder()
    feats = {
        s: encode(encoder, getattr(data, s)[0], progress=False) for s in ("train", "val", "test")
    }
    labels = {s: getattr(data, s)[1] for s in ("train", "val", "test")}
    H, L = encoder.model.config.hidden_size, encoder.num_layers

    seed_everything(seed)
    token_model = TokenLSTM(H, TOKEN_HIDDEN)
    train(
        token_model,
        (feats["train"].last_hidden_state, feats["train"].attention_mask, labels["train"]),
        loss_fn=F.cross_entropy,
        epochs=TOKEN_EPOCHS,
        lr=TOKEN_LR,
        seed=seed,
        device="cpu",
        progress=False,
    )
    pool_data = sentiment_task(
        POOL_DATA["n"],
        seed=seed,
        kind_weights=POOL_DATA["kind_weights"],
        fractions=POOL_DATA["fractions"],
    )
    z = {  # raw [CLS] per layer, as the article's LSTMPooling receives them
        s: encode(encoder, getattr(pool_data, s)[0], progress=False).cls_per_layer
        for s in ("train", "val", "test")
    }
    pool_labels = {s: getattr(pool_data, s)[1] for s in ("train", "val", "test")}
    reference = z["train"].mean(dim=0)  # (L + 1, H): every layer's training mean
    seed_everything(seed)
    pool_model = make_classifier(
        "BiLSTM final states", num_layers=L, hidden_size=H, lstm_hidden=POOL_HIDDEN
    )
    stopped = train_early_stopping(
        pool_model,
        (z["train"], pool_labels["train"]),
        (z["val"], pool_labels["val"]),
        loss_fn=F.cross_entropy,
        max_epochs=POOL_MAX_EPOCHS,
        patience=POOL_PATIENCE,
        lr=POOL_LR,
        batch_size=128,
        seed=seed,
        device="cpu",
    )
    with torch.no_grad():
        acc_token = accuracy(
            token_model(feats["test"].last_hidden_state, feats["test"].attention_mask),
            labels["test"],
        )
        acc_pool = accuracy(pool_model(z["test"]), pool_labels["test"])
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "encoder": encoder.name,
            "seed": seed,
            "token_lstm": {"hidden_sizes": TOKEN_HIDDEN, "state": _half(token_model.state_dict())},
            "pooling": {
                "name": "BiLSTM final states",
                "lstm_hidden": POOL_HIDDEN,
                "state": _half(pool_model.state_dict()),
            },
            "features": "raw [CLS] of every hidden state",
            "reference": reference.half(),
            "test_accuracy": {"token_lstm": acc_token, "pooling": acc_pool},
            "test_size": {"token_lstm": len(labels["test"]), "pooling": len(pool_labels["test"])},
            "test_majority": {
                "token_lstm": majority_rate(labels["test"]),
                "pooling": majority_rate(pool_labels["test"]),
            },
            "training": {
                "sentences": n_sentences,
                "pooling_sentences": POOL_DATA,
                "token_lstm": f"{TOKEN_EPOCHS} epochs, lr {TOKEN_LR:g}, batch 64 (as notebook 08)",
                "pooling": (
                    f"early stopping on the validation split: best epoch {stopped.best_epoch} of "
                    f"{stopped.epochs}, patience {POOL_PATIENCE}, lr {POOL_LR:g}, batch 128, raw "
                    "[CLS] features (as notebook 09)"
                ),
            },
            "sentences": data.test[0][:12],
        },
        out,
    )
    print(
        f"saved {out.relative_to(ROOT)} ({out.stat().st_size / 1e3:.0f} kB) in "
        f"{time.perf_counter() - start:.0f} s; test accuracy: BERT + LSTM {acc_token:.3f} "
        f"(n={len(labels['test'])}, majority {majority_rate(labels['test']):.3f}), BiLSTM layer "
        f"pooling {acc_pool:.3f} (n={len(pool_labels['test'])}, majority "
        f"{majority_rate(pool_labels['test']):.3f}, best epoch {stopped.best_epoch})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.sentences, args.seed)
