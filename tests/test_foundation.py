"""Foundation of course_utils: import cost, seeding, device, data, training loop, feedback.

The claim checks are tested in ``test_checks.py``.
"""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import course_utils
from course_utils import data, device, feedback, seeding, training


def test_import_is_lazy_and_changes_nothing():
    # `import course_utils` must not load torch or transformers, nor touch matplotlib's state.
    code = (
        "import sys, course_utils;"
        "heavy = [m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules];"
        "assert not heavy, heavy;"
        "import course_utils.data;"
        "assert 'torch' in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_submodules_are_attributes_and_unknown_names_fail():
    assert course_utils.data is data
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        course_utils.nope  # noqa: B018


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seeding.seed_everything(3)
    first = draw()
    seeding.seed_everything(3)
    assert draw() == first
    with pytest.raises(ValueError, match="non-negative int"):
        seeding.seed_everything(-1)


def test_seeded_restores_the_outer_random_state():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with seeding.seeded(123) as gen:
        inner = torch.rand(2, generator=gen)
        torch.rand(5)  # consumes the global stream inside the block only
    assert torch.equal(torch.rand(3), expected)
    with seeding.seeded(123) as gen:
        assert torch.equal(torch.rand(2, generator=gen), inner)


def test_pick_device_defaults_to_an_available_device_and_refuses_missing_gpu():
    assert device.pick_device().type in {"cpu", "cuda", "mps"}
    assert device.pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            device.pick_device("cuda")
    assert device.describe_device(torch.device("cpu")).startswith("cpu")


def test_data_is_seeded_shaped_and_leaves_global_state_alone():
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    x, y = data.adding_problem(50, 20, seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    x2, y2 = data.adding_problem(50, 20, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x.shape == (50, 20, 2) and y.shape == (50,)
    markers = x[..., 1]
    assert torch.equal(markers.sum(1), torch.full((50,), 2.0))
    assert torch.all(markers[:, :10].sum(1) == 1) and torch.all(markers[:, 10:].sum(1) == 1)
    assert torch.allclose((x[..., 0] * markers).sum(1), y)


def test_symbol_tasks_and_windows():
    src, tgt = data.symbol_task(8, 5, vocab_size=6, task="reverse", seed=0)
    assert torch.equal(tgt, src.flip(1)) and src.min() >= 1 and src.max() <= 5
    src, tgt = data.symbol_task(8, 5, task="copy")
    assert torch.equal(src, tgt)
    series = torch.arange(20.0).view(2, 10)
    x, y = data.make_windows(series, window=4, horizon=2)
    assert x.shape == (10, 4, 1) and y.shape == (10, 2)
    assert torch.equal(x[0, :, 0], torch.tensor([0.0, 1, 2, 3])) and torch.equal(
        y[0], torch.tensor([4.0, 5])
    )
    with pytest.raises(ValueError, match="exceeds the series length"):
        data.make_windows(series, window=9, horizon=2)


def test_series_kinds_and_errors():
    periodic = data.make_series(4, 50, kind="periodic", seed=0)
    walk = data.make_series(4, 50, kind="random_walk", seed=0)
    assert periodic.shape == walk.shape == (4, 50)
    assert periodic.abs().max() < 3  # bounded sines plus small noise
    with pytest.raises(ValueError, match="kind must be"):
        data.make_series(2, 10, kind="sawtooth")
    splits = data.forecasting_task(n_series=20, length=60, window=12, horizon=3)
    assert splits.train[0].shape[1:] == (12, 1) and splits.test[1].shape[1:] == (3,)


def test_split_and_padding():
    x = torch.arange(100.0)
    parts = data.split(x, x * 2, seed=0)
    assert parts.sizes() == {"train": 70, "val": 15, "test": 15}
    all_x = torch.cat([parts.train[0], parts.val[0], parts.test[0]])
    assert torch.equal(all_x.sort().values, x)
    assert torch.equal(parts.train[1], parts.train[0] * 2)
    with pytest.raises(ValueError, match="same length"):
        data.split(x, x[:5])
    seqs = torch.ones(3, 4, 2)
    padded = data.pad_to_lengths(seqs, torch.tensor([4, 2, 1]))
    assert padded[:, :, 0].sum(1).tolist() == [4, 2, 1]
    with pytest.raises(ValueError, match="lengths must lie"):
        data.pad_to_lengths(seqs, torch.tensor([5, 1, 1]))


class _Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 16, batch_first=True)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1]).squeeze(-1)


def test_train_learns_is_repeatable_and_records_history():
    x, y = data.adding_problem(256, 10, seed=0)

    def run():
        seeding.seed_everything(0)
        model = _Regressor()
        hist = training.train(
            model,
            (x, y),
            loss_fn=nn.functional.mse_loss,
            epochs=8,
            lr=1e-2,
            val_data=(x[:64], y[:64]),
            progress=False,
        )
        return model, hist

    model, hist = run()
    _, hist2 = run()
    assert hist.epochs == 8 and len(hist.val_loss) == 8
    assert hist.train_loss == hist2.train_loss  # same seed, same batches, same numbers
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]
    assert not model.training  # left in eval mode
    result = training.evaluate(model, (x[:64], y[:64]), nn.functional.mse_loss)
    assert result["loss"] == pytest.approx(hist.val_loss[-1], rel=1e-5)


def test_train_tracks_metrics_and_validates_input():
    torch.manual_seed(0)
    x = torch.randn(64, 5, 3)
    y = (x[:, :, 0].sum(1) > 0).long()
    model = nn.Sequential(nn.Flatten(), nn.Linear(15, 2))
    hist = training.train(
        model,
        (x, y),
        loss_fn=nn.functional.cross_entropy,
        epochs=3,
        val_data=(x, y),
        metrics={"accuracy": training.accuracy},
        progress=False,
    )
    assert set(hist.last()) == {"train_loss", "val_loss", "accuracy"}
    assert 0 <= hist.last()["accuracy"] <= 1
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        training.train(model, (x, y), loss_fn=nn.functional.cross_entropy, epochs=0)
    with pytest.raises(ValueError, match="same first dimension"):
        training.train(model, (x, y[:3]), loss_fn=nn.functional.cross_entropy, epochs=1)
    with pytest.raises(ValueError, match="accuracy expects logits"):
        training.accuracy(torch.zeros(4, 2), torch.zeros(5, dtype=torch.long))
    assert training.count_parameters(model) == 15 * 2 + 2


def test_feedback_reports_unfinished_broken_and_correct_code():
    def starter(x):
        raise NotImplementedError

    def broken(x):
        return x @ torch.ones(5)  # shape error

    def check(fn):
        fb = feedback.Feedback("Exercise: double it")
        out = fb.call(fn, torch.ones(2, 3))
        if feedback.ran(out) and fb.check_tensor(out):
            fb.check_close(out, torch.full((2, 3), 2.0), hint="multiply by 2")
        return fb

    unfinished = check(starter)
    assert not unfinished.passed and "not written yet" in str(unfinished)
    crashed = check(broken)
    assert not crashed.passed and "raised RuntimeError" in str(crashed)
    wrong = check(lambda x: x)
    assert not wrong.passed and "hint: multiply by 2" in str(wrong)
    right = check(lambda x: 2 * x)
    assert right.passed and "all checks passed" in repr(right)
    assert not feedback.Feedback("empty").passed  # no check ran: not a pass


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


def test_feedback_name_mistake_gives_the_matching_hint():
    fb = feedback.Feedback("t")
    fb.fail("values differ")
    fb.name_mistake(
        torch.zeros(2), {"summed": torch.ones(2), "zeros": torch.zeros(2)}, otherwise="look again"
    )
    assert fb.lines[-1] == (False, "values differ", "zeros")
    fb.fail("values differ")
    fb.name_mistake(torch.full((2,), 5.0), {"summed": torch.ones(2)}, otherwise="look again")
    assert fb.lines[-1][2] == "look again"
    fb.ok("fine")
    with pytest.raises(ValueError, match="failed check"):
        fb.name_mistake(torch.zeros(2), {}, otherwise="x")
