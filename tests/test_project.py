"""Promises of the project layout: one environment described twice alike, clean notebooks, a true README."""

import json
import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_names_the_pyproject_dependencies():
    # the core and the course and test extras, as pyproject.toml declares them (the browser extra is for make
    # test-browser and make book only, outside the course's environment)
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    declared = [*project["dependencies"], *extras["course"], *extras["test"]]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = [r for r in pip if not r.startswith("-e")]
    assert sorted(listed) == sorted(declared)  # the same requirement strings, versions and markers included
    assert "-e ." in pip
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.removeprefix("python") == project["requires-python"]


def test_the_core_is_light():
    """pip install dattn pulls torch, einops, numpy and pyyaml only; plain torch (no CPU-wheel pin)."""
    project = pyproject()["project"]
    assert project["dependencies"] == ["torch", "einops", "numpy", "pyyaml"]
    extras = project["optional-dependencies"]
    assert {"course", "test", "browser"} <= set(extras)
    course = {_name(r) for r in extras["course"]}
    assert {"timm", "matplotlib", "ipywidgets", "jupyterlab", "tqdm"} <= course
    test = {_name(r) for r in extras["test"]}
    assert {"pytest", "nbmake", "ruff", "onnx", "onnxscript", "onnxruntime", "thop"} <= test
    makefile = (ROOT / "Makefile").read_text()
    assert '".[course,test]"' in makefile  # make lab and make test install both extras


def test_every_data_file_of_the_package_is_installed():
    """A non-editable install ships only .py files and what [tool.setuptools.package-data] names: every other file
    under dattn/ (the live widgets' script, the yaml configs) must match one of its patterns."""
    patterns = pyproject()["tool"]["setuptools"]["package-data"]
    pkg_root = ROOT / "dattn"
    data = [p for p in pkg_root.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert data  # at least the configs and live.js
    for path in data:
        covered = False
        for package, globs in patterns.items():
            base = ROOT.joinpath(*package.split("."))
            if base in path.parents:
                covered |= any(path in base.glob(g) for g in globs)
        assert covered, f"{path.relative_to(ROOT)} is not in [tool.setuptools.package-data]"


def test_notebooks_are_committed_without_outputs():
    assert NOTEBOOKS, "the course has no notebooks"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name} has outputs"
        ids = [cell.get("id") for cell in nb["cells"]]
        assert None not in ids and len(set(ids)) == len(ids), f"{path.name}: every cell needs its own id (nbformat 4.5)"


def test_readme_lists_every_notebook_and_both_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    for path in NOTEBOOKS:
        assert path.name in readme, f"README.md does not list {path.name}"
