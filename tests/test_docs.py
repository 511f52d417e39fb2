"""The docs ship with the package: every repository path they name exists, and nothing points outside."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT = [
    p
    for pattern in (
        "*.md",
        "docs/*.md",
        "cluster/*.md",
        "rllib_uas/**/*.py",
        "rllib_uas/**/*.yaml",
        "tuned_examples/**/*.yaml",
        "benchmarks/*.py",
        "tests/*.py",
    )
    for p in ROOT.glob(pattern)
]
# a path that starts at one of the repository's top folders, e.g. docs/smac.md or rllib_uas/uas.py
REPO_PATH = re.compile(r"\b((?:docs|rllib_uas|tests|benchmarks|tuned_examples|cluster)/[\w./-]*\w)")


@pytest.mark.parametrize("path", TEXT, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_leaves_the_repository(path):
    text = path.read_text()
    if path.name == "test_docs.py":
        return
    for outside in ("spec/", "DESIGN.md", "../shared", "reviews/"):
        assert outside not in text, f"{path.relative_to(ROOT)} refers to {outside!r}, which is not in the repository"


@pytest.mark.parametrize("path", [p for p in TEXT if p.suffix == ".md"], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_a_doc_names_exists(path):
    missing = [
        m
        for m in REPO_PATH.findall(path.read_text())
        if "<" not in m and "*" not in m and not (ROOT / m).exists() and not (ROOT / m.rstrip(".")).exists()
    ]
    assert not missing, f"{path.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_the_readme_adding_a_map_snippet_runs_as_written(tmp_path, monkeypatch):
    """The YAML and Python blocks under "Adding a map or a unit type", verbatim, in a fresh directory."""
    section = (ROOT / "README.md").read_text().split("#### Adding a map or a unit type", 1)[1]
    yaml_block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    py_block = section.split("```python\n", 1)[1].split("```", 1)[0]
    name = yaml_block.splitlines()[0].lstrip("# ").strip()  # the block says its file name
    (tmp_path / name).write_text(yaml_block)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(py_block, "README snippet", "exec"), scope)
    env = scope["env"]
    env.reset()
    assert env.n_agents == 4 and env.n_enemies == 3


def test_the_readme_counts_the_tests_the_suite_collects():
    """The quick start says how many tests its second command runs; a new or removed test changes it."""
    stated = re.search(r"runs the test suite: ([\d,]+) tests", (ROOT / "README.md").read_text())
    assert stated, "README.md no longer says how many tests the suite runs ('runs the test suite: N tests')"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    collected = re.search(r"^(\d+) tests? collected", out, re.MULTILINE)
    assert collected, f"pytest --collect-only printed no count:\n{out[-2000:]}"
    assert int(stated.group(1).replace(",", "")) == int(collected.group(1)), (
        f"README.md says {stated.group(1)} tests, the suite collects {collected.group(1)}: "
        "update the count in README's quick start"
    )
