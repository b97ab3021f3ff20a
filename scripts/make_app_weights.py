"""Train the visualizer app's two small models and save them as one small file (``make visualize``).

The app (``app/visualizer.ipynb``) must start in seconds, so it loads trained weights instead of
training: this script makes them, from the course's own parts and generated sentences (notebooks 08
and 09), offline:

- the BERT + LSTM classifier of notebook 08 (``TokenLSTM(H, (64, 32))``: every token's last hidden
  state into two stacked LSTMs, packed by the attention mask), trained as notebook 08 trains it:
  20 epochs, Adam at lr 3e-3, batch 64;
- the layer-pooling classifier of notebook 09 (``BiLSTM final states`` over the standardised [CLS]
  of every hidden state), whose layer-wise importance the app shows, trained as notebook 09 trains
  it: early stopping on the validation split (at most 60 epochs, patience 5, best weights kept),
  Adam at lr 1e-2, batch 128; with the training statistics of the standardiser.

They are not the notebooks' own models: one seed, and 1200 generated sentences of all four kinds
(70 / 15 / 15 % split). The file records how they were trained (``training``), the test size and
the test split's majority-class rate (chance, computed from the labels), so the page can show every
accuracy next to its baseline. Weights are stored as float16 (about 0.5 MB in all) with the
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
from course_utils.layer_pooling import LayerStandardizer, make_classifier
from course_utils.seeding import seed_everything
from course_utils.sentences import make_sentiment_dataset
from course_utils.training import accuracy, train

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "app" / "weights" / "classifiers.pt"
TOKEN_HIDDEN = (64, 32)
POOL_HIDDEN = 32
TOKEN_EPOCHS, TOKEN_LR = 20, 3e-3  # notebook 08
POOL_MAX_EPOCHS, POOL_PATIENCE, POOL_LR = 60, 5, 1e-2  # notebook 09


def _half(state: dict) -> dict:
    return {k: v.detach().to(torch.float16) for k, v in state.items()}


def main(n_sentences: int = 1200, seed: int = 0, out: Path = OUT) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    start = time.perf_counter()
    data = make_sentiment_dataset(n_sentences, seed=seed)
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
    standardizer = LayerStandardizer.fit(feats["train"].cls_per_layer)
    z = {s: standardizer(f.cls_per_layer) for s, f in feats.items()}
    seed_everything(seed)
    pool_model = make_classifier(
        "BiLSTM final states", num_layers=L, hidden_size=H, lstm_hidden=POOL_HIDDEN
    )
    stopped = train_early_stopping(
        pool_model,
        (z["train"], labels["train"]),
        (z["val"], labels["val"]),
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
        acc_pool = accuracy(pool_model(z["test"]), labels["test"])
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
            "standardizer": {"mean": standardizer.mean.half(), "std": standardizer.std.half()},
            "test_accuracy": {"token_lstm": acc_token, "pooling": acc_pool},
            "test_size": len(labels["test"]),
            "test_majority": majority_rate(labels["test"]),
            "training": {
                "sentences": n_sentences,
                "token_lstm": f"{TOKEN_EPOCHS} epochs, lr {TOKEN_LR:g}, batch 64 (as notebook 08)",
                "pooling": (
                    f"early stopping on the validation split: best epoch {stopped.best_epoch} of "
                    f"{stopped.epochs}, lr {POOL_LR:g}, batch 128 (as notebook 09)"
                ),
            },
            "sentences": data.test[0][:12],
        },
        out,
    )
    print(
        f"saved {out.relative_to(ROOT)} ({out.stat().st_size / 1e3:.0f} kB) in "
        f"{time.perf_counter() - start:.0f} s; test accuracy (n={len(labels['test'])}, majority "
        f"rate {majority_rate(labels['test']):.3f}): BERT + LSTM {acc_token:.3f}, BiLSTM layer "
        f"pooling {acc_pool:.3f} (best epoch {stopped.best_epoch})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.sentences, args.seed)
