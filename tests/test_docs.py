"""The docs ship with the package: every repository path they name exists, and nothing points outside."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT = [p for pattern in ("*.md", "docs/*.md", "cluster/*.md", "rllib_uas/**/*.py", "rllib_uas/**/*.yaml",
                          "tuned_examples/**/*.yaml", "benchmarks/*.py", "tests/*.py")
        for p in ROOT.glob(pattern)]
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
    missing = [m for m in REPO_PATH.findall(path.read_text())
               if "<" not in m and "*" not in m and not (ROOT / m).exists() and not (ROOT / m.rstrip(".")).exists()]
    assert not missing, f"{path.relative_to(ROOT)} names paths that do not exist: {missing}"
