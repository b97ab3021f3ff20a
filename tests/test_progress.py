"""Progress bars: a text bar in a terminal; in a notebook, no bar is left in the saved output."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.progress import progress_bar


def test_a_terminal_gets_a_text_bar_that_iterates_everything():
    assert list(progress_bar(range(4), desc="x")) == [0, 1, 2, 3]


@pytest.mark.slow
def test_an_executed_notebook_keeps_no_frozen_bar():
    from nbclient import NotebookClient

    source = (
        "import torch\n"
        "from course_utils.training import train\n"
        "from course_utils.progress import progress_bar\n"
        "print('before')\n"
        "total = sum(progress_bar(range(5), desc='counting'))\n"
        "train(torch.nn.Linear(2, 1), (torch.randn(8, 2), torch.randn(8, 1)),\n"
        "      loss_fn=torch.nn.functional.mse_loss, epochs=3, desc='training')\n"
        "print('after', total)"
    )
    nb = new_notebook(cells=[new_code_cell(source)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    NotebookClient(nb, timeout=120).execute()
    outputs = nb.cells[0].outputs
    texts = [o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs]
    assert "after 10" in "".join(texts)
    assert not any("0/" in t or "it/s" in t for t in texts), texts  # no "0/5" fallback saved
