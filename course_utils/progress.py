"""Progress bars that leave nothing behind in a saved notebook.

A ``tqdm.auto`` bar in a notebook is a widget. Its saved output keeps only a text fallback written
when the bar was created ("0/20", "0%"), which JupyterLab shows as a frozen bar until the notebook
is run again. :func:`progress_bar` shows the same widget through a display handle and empties that
output when the bar closes, so an executed notebook keeps no bar. In a terminal it is a text bar.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(iterable: Iterable, *, desc: str, **kwargs: Any):
    """``tqdm.auto.tqdm(iterable, desc=desc, leave=False, **kwargs)`` that leaves no saved output."""
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm_notebook

    kwargs.setdefault("leave", False)
    if not issubclass(tqdm, tqdm_notebook):  # a terminal: a text bar
        return tqdm(iterable, desc=desc, **kwargs)
    from IPython.display import display

    bar = _notebook_bar()(iterable, desc=desc, display=False, **kwargs)
    bar._handle = display(bar.container, display_id=True)
    return bar


@functools.cache
def _notebook_bar() -> type:
    """The notebook bar class, made on first use (tqdm.notebook imports ipywidgets)."""
    from tqdm.notebook import tqdm_notebook

    class NotebookBar(tqdm_notebook):
        def close(self) -> None:
            super().close()
            handle, self._handle = getattr(self, "_handle", None), None
            if handle is not None:  # the saved output becomes empty text
                handle.update({"text/plain": ""}, raw=True)

    return NotebookBar
