"""Promises of the project layout: one environment described twice alike, clean notebooks, a true README."""

import json
import re
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_pyproject_dependencies():
    # what pyproject.toml declares, as the installed package's metadata reports it (the browser extra is
    # for make test-browser and make book only, outside the course's environment)
    declared = {_name(r) for r in metadata.requires("dattn") if 'extra == "browser"' not in r}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_name(r) for r in pip if not r.startswith("-e")}
    assert listed == declared
    assert "-e ." in pip
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.removeprefix("python") == metadata.metadata("dattn")["Requires-Python"]


def test_notebooks_are_committed_without_outputs():
    assert NOTEBOOKS, "the course has no notebooks"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name} has outputs"


def test_readme_lists_every_notebook_and_both_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    for path in NOTEBOOKS:
        assert path.name in readme, f"README.md does not list {path.name}"
