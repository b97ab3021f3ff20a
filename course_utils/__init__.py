"""Helpers for the course *LSTMs with attention and with BERT*.

Importing the package is cheap and changes nothing: no seeding, no plot style, no printing. Each job
lives in its own submodule and is loaded on first use, so ``import course_utils`` does not pay for
PyTorch or transformers until a notebook asks for them::

    from course_utils.seeding import seed_everything
    from course_utils import tasks         # loads course_utils.tasks (and torch) now
"""

from __future__ import annotations

import importlib
import pkgutil

__version__ = "0.1.0"


def _submodules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]


def __getattr__(name: str):
    """Load ``course_utils.<name>`` on first access (PEP 562): the top-level import stays fast."""
    if name in _submodules():
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_submodules()))
