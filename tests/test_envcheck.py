"""course_utils.envcheck: notebook 00's set-up check accepts newer releases and refuses older ones."""

from __future__ import annotations

import pytest


def _fake_versions(monkeypatch, versions):
    """Make envcheck see ``versions`` (``{package: version or None}``) instead of what is installed."""
    from course_utils import envcheck

    real = envcheck.installed_version
    monkeypatch.setattr(envcheck, "installed_version", lambda name: versions.get(name, real(name)))
    return envcheck


def test_envcheck_newer_release_is_ok_with_a_note_older_or_missing_fails(monkeypatch):
    envcheck = _fake_versions(
        monkeypatch,
        {"torch": "2.14.1", "transformers": "5.24.0", "numpy": "2.4.5", "tqdm": None},
    )
    pins = {"torch": "2.13.0", "transformers": "5.23.0", "numpy": "2.4.6", "tqdm": "4.70.1"}
    torch_, transformers_, numpy_, tqdm_ = envcheck.check_packages(pins)
    assert torch_.ok and str(torch_).startswith("[OK] torch: 2.14.1")
    assert "newer than the tested 2.13.0" in str(torch_) and "fix:" not in str(torch_)
    assert transformers_.ok and "tested 5.23.0" in str(transformers_)
    assert not numpy_.ok and "older than" in str(numpy_) and "fix:" in str(numpy_)
    assert not tqdm_.ok and "not installed" in str(tqdm_)
    assert envcheck.compare_versions("2.13.0+cpu", "2.13.0") == "same"
    assert envcheck.compare_versions("2.13.1+cpu", "2.13.0") == "newer"
    assert envcheck.compare_versions("2.10.0", "2.9.0") == "newer"  # numeric, not alphabetical
    assert envcheck.compare_versions("2.13.0rc1", "2.13.0") == "older"
    assert envcheck.compare_versions("not-a-version", "2.13.0") == "older"


def test_notebook_00_check_cell_passes_on_newer_torch_and_transformers(monkeypatch, capsys):
    """Notebook 00's set-up cell runs to the end (its assert passes) on newer releases."""
    import nbformat

    from tests.notebook_tools import find_notebook

    envcheck = _fake_versions(monkeypatch, {"torch": "2.14.1", "transformers": "5.24.0"})
    nb = nbformat.read(find_notebook("00"), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "run_checks(" in c.source)
    exec(cell.source, {"run_checks": envcheck.run_checks, "NOTEBOOKS_VERSION": "0.1.0"})
    out = capsys.readouterr().out
    assert "[OK] torch: 2.14.1, newer than the tested 2.13.0" in out
    assert "[OK] transformers: 5.24.0, newer than the tested 5.23.0" in out
    assert "You are ready." in out and "[FAIL]" not in out
    _fake_versions(monkeypatch, {"torch": "2.12.0"})
    with pytest.raises(AssertionError, match="fix the"):
        exec(cell.source, {"run_checks": envcheck.run_checks, "NOTEBOOKS_VERSION": "0.1.0"})
    assert "[FAIL] torch: 2.12.0, older than" in capsys.readouterr().out
