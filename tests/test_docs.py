"""Docs that run: every repository path the docs name exists.

README.md, CONTRIBUTING.md, docs/, and the docstrings and comments of course_utils, scripts and
benchmarks name files (``tests/test_x.py``, ``notebooks/NN_*.ipynb``, ``scripts/x.py``, ...). A path
that does not exist sends a reader nowhere; this test finds every such path and checks it. Templates
(``test_<module>.py``, ``{name}.png``) are skipped; ``NN`` stands for a notebook number; a dotted
reference (``tests/notebook_tools.run_tagged_cell``) checks its module.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = ("tests", "course_utils", "scripts", "benchmarks", "notebooks", "docs", "app")
PATH = re.compile(rf"(?<![\w./-])((?:{'|'.join(TOP)})/(?:[\w.*{{}}-]|<[\w-]+>)*[\w*])")
EXTENSIONS = {"py", "ipynb", "md", "sh", "cfg", "png", "pt", "txt", "toml", "json", "yml", "yaml"}


def doc_files() -> list[Path]:
    """The files whose text names repository paths for a reader."""
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for folder in ("course_utils", "scripts", "benchmarks"):
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".sh"})
    return [f for f in files if f.is_file()]


def exists(path: str) -> bool:
    """Whether ``path`` (a file, a folder, a glob, or ``module.attribute``) names something real."""
    path = path.replace("NN_", "[0-9][0-9]_")
    if any(c in path for c in "*["):
        return any(ROOT.glob(path))
    if (ROOT / path).exists():
        return True
    stem, _, suffix = path.rpartition(".")
    return bool(stem) and suffix not in EXTENSIONS and (ROOT / f"{stem}.py").is_file()


def missing_paths(text: str) -> list[str]:
    """The repository paths named in ``text`` that do not exist (templates skipped)."""
    named = {m.group(1) for m in PATH.finditer(text)}
    return sorted(p for p in named if not re.search(r"[<{]", p) and not exists(p))


def test_every_path_the_docs_name_exists():
    missing = {
        str(f.relative_to(ROOT)): bad for f in doc_files() if (bad := missing_paths(f.read_text()))
    }
    assert not missing, f"docs name paths that do not exist (fix the path or the doc): {missing}"


def test_the_path_check_fails_on_a_made_up_path():
    assert missing_paths("see `tests/test_made_up_paths.py` and scripts/no_such.sh") == [
        "scripts/no_such.sh",
        "tests/test_made_up_paths.py",
    ]
    assert missing_paths("notebooks/99_*.ipynb, tests/notebook_tools.no_such_thing") == [
        "notebooks/99_*.ipynb"
    ]  # a glob must match a file; a dotted name checks its module only
    assert missing_paths("tests/not_a_module.run, course_utils/<topic>.py") == [
        "tests/not_a_module.run"
    ]
    assert not missing_paths("notebooks/NN_*.ipynb, tests/test_docs.py, docs/gallery")
