"""The README gallery: small images cut from the notebooks' own committed figures.

Each picture is the figure a notebook cell drew when it was last executed (its ``image/png``
output), found by a piece of that cell's source, scaled down to ``WIDTH`` pixels and saved as an
8-bit palette PNG in ``docs/gallery/`` (a few tens of kB each). Run it after ``make notebooks``:
``python scripts/make_gallery.py``. It fails, naming the notebook, if a cell is no longer found.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import nbformat
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "gallery"
WIDTH = 420

#: name -> (notebook, a piece of the source of the cell that draws it, caption)
GALLERY = {
    "state_flow": (
        "02_stacked_state_flow.ipynb",
        "plot_state_flow(trace",
        "State flow through a stacked LSTM: h goes along and up, c only along",
    ),
    "attention_heads": (
        "07_lstm_multihead_attention.ipynb",
        "plot_heads(",
        "Attention heads of an LSTM + multi-head attention model",
    ),
    "causal_leak": (
        "07_lstm_multihead_attention.ipynb",
        "Design 2: who each query reads",
        "The causal leak: without a mask, each query of a next-token model reads the next token",
    ),
    "bert_attention": (
        "08_bert_lstm.ipynb",
        "plot_token_lines(shown",
        "BERT attention: one head as a heatmap and as token lines",
    ),
    "layer_importance": (
        "09_lstm_pooling_bert_layers.ipynb",
        "layer importance over the test sentences",
        "Layer-wise [CLS] importance by three methods",
    ),
}


def figure_png(notebook: str, marker: str) -> bytes:
    """The first PNG output of the cell of ``notebook`` whose source contains ``marker``."""
    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and marker in cell.source:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "image/png" in data:
                    return base64.b64decode(data["image/png"])
    raise LookupError(f"{notebook}: no cell with {marker!r} and a PNG output (run make notebooks)")


def small(png: bytes, width: int = WIDTH) -> bytes:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    height = round(image.height * width / image.width)
    image = image.resize((width, height), Image.LANCZOS).quantize(colors=128)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (notebook, marker, _caption) in GALLERY.items():
        data = small(figure_png(notebook, marker))
        (OUT / f"{name}.png").write_bytes(data)
        print(f"docs/gallery/{name}.png  {len(data) / 1e3:.0f} kB  from {notebook}")


if __name__ == "__main__":
    main()
