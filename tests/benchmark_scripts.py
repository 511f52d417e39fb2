"""The scripts under benchmarks/ loaded as modules, for the tests of their helpers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str, register: bool = False) -> ModuleType:
    """benchmarks/<name>.py as a module. `register`: also under sys.modules[name] before it runs (a
    dataclass in the script looks its own module up there), with benchmarks/ on sys.path as when it
    runs as a script (it imports its siblings)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    if register:
        if str(BENCHMARKS) not in sys.path:
            sys.path.insert(0, str(BENCHMARKS))
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
