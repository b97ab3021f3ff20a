"""Train the visualizer app's two small models and save them as one small file (``make visualize``).

The app (``app/visualizer.ipynb``) must start in seconds, so it loads trained weights instead of
training: this script makes them, from the course's own parts and generated sentences (notebooks 08
and 09), offline:

- the BERT + LSTM classifier of notebook 08 (``TokenLSTM``: every token's last hidden state into two
  stacked LSTMs, packed by the attention mask);
- the layer-pooling classifier of notebook 09 (``BiLSTM final states`` over the standardised [CLS]
  of every hidden state), whose layer-wise importance the app shows, with the training statistics
  of the standardiser.

Weights are stored as float16 (about 0.5 MB in all) with the settings that rebuild the models, their
test accuracy and a few test sentences for the app's menu. Run:
``python scripts/make_app_weights.py`` (about 70 s on 2 idle cores); it overwrites
``app/weights/classifiers.pt``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from course_utils.bert_lstm import TokenLSTM
from course_utils.encoders import encode, load_encoder
from course_utils.layer_pooling import LayerStandardizer, make_classifier
from course_utils.seeding import seed_everything
from course_utils.sentences import make_sentiment_dataset
from course_utils.training import accuracy, train

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "app" / "weights" / "classifiers.pt"
TOKEN_HIDDEN = (64, 32)
POOL_HIDDEN = 32


def _half(state: dict) -> dict:
    return {k: v.detach().to(torch.float16) for k, v in state.items()}


def main(n_sentences: int = 1200, epochs: int = 30, seed: int = 0, out: Path = OUT) -> None:
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
        epochs=epochs,
        lr=3e-3,
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
    train(
        pool_model,
        (z["train"], labels["train"]),
        loss_fn=F.cross_entropy,
        epochs=epochs,
        lr=1e-2,
        batch_size=128,
        seed=seed,
        device="cpu",
        progress=False,
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
            "sentences": data.test[0][:12],
        },
        out,
    )
    print(
        f"saved {out.relative_to(ROOT)} ({out.stat().st_size / 1e3:.0f} kB) in "
        f"{time.perf_counter() - start:.0f} s; test accuracy: BERT + LSTM {acc_token:.2f}, "
        f"BiLSTM layer pooling {acc_pool:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.sentences, args.epochs, args.seed)
