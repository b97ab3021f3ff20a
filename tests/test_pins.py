"""The pip set-up and both conda environment files pin the same packages at the same versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from course_utils.envcheck import canonical, read_pins

ROOT = Path(__file__).resolve().parents[1]
# conda-forge's CPU-only PyTorch is the package the pip set-up calls torch.
CONDA_TO_PIP = {"pytorch-cpu": "torch"}


def conda_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pins: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                name, _, version = line.partition("==")
                assert version, f"{path.name}: pip entry {line!r} is not pinned with =="
                pins[canonical(name)] = version
        elif dep.split("=")[0] not in {"python", "pip"}:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)=([^=\s]+)", dep)
            assert match, f"{path.name}: conda entry {dep!r} is not pinned as name=version"
            name = CONDA_TO_PIP.get(match.group(1), match.group(1))
            pins[canonical(name)] = match.group(2)
    return pins


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_environment_file_matches_requirements(env_file):
    expected = read_pins(ROOT / "requirements.txt")
    found = conda_pins(ROOT / env_file)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    differ = {
        n: (found[n], expected[n]) for n in set(found) & set(expected) if found[n] != expected[n]
    }
    assert not missing and not extra and not differ, (
        f"{env_file} is out of step with requirements.txt: missing {missing}, extra {extra}, "
        f"different versions (env, requirements) {differ}"
    )


def test_torch_is_pinned_to_the_cpu_wheel_version():
    # A loose torch pulls several GB of CUDA packages; the course needs the exact CPU build.
    assert read_pins(ROOT / "requirements.txt")["torch"] == "2.13.0"


def test_dev_requirements_are_pinned_and_include_the_course():
    lines = [
        ln.split("#")[0].strip() for ln in (ROOT / "requirements-dev.txt").read_text().splitlines()
    ]
    lines = [ln for ln in lines if ln]
    assert "-r requirements.txt" in lines
    loose = [ln for ln in lines if not ln.startswith("-r") and "==" not in ln]
    assert not loose, f"unpinned test requirements: {loose}"


def test_binder_installs_the_package():
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install" in post_build and "-e ." in post_build
