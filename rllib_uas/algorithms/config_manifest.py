"""Our configs' valid keys and plain defaults, kept as data beside the classes.

Importing RLlib (and torch under it) takes 6-8 s; the CLI reads this file instead to refuse an unknown
key, a string where a number goes or a bad value of our own settings in about a second, before
anything heavy is imported. The file is derived from the classes, never edited by hand, and a test
fails when it no longer matches them (after a config change or an RLlib upgrade). Regenerate it with

    python -m rllib_uas.algorithms.config_manifest
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Dict, Iterable, Set

MANIFEST_PATH = Path(__file__).with_name("config_manifest.json")
REGENERATE = "python -m rllib_uas.algorithms.config_manifest"


def valid_config_keys(config: Any) -> Set[str]:
    """Public config attributes, settable properties (e.g. train_batch_size_per_learner) and aliases."""
    props = {
        name
        for klass in type(config).__mro__
        for name, attr in vars(klass).items()
        if isinstance(attr, property) and attr.fset is not None and not name.startswith("_")
    }
    public = {k for k in list(vars(config)) + list(config.to_dict()) if not k.startswith("_")}
    return public | props | {"env", "env_config", "lambda_"}


def _plain(value: Any) -> bool:
    """Values JSON keeps exactly: None, bools, strings, finite numbers."""
    if value is None or isinstance(value, (bool, str, int)):
        return True
    return isinstance(value, float) and math.isfinite(value)


_MISSING = object()


def _deprecated(config: Any, key: str) -> bool:
    """RLlib's deprecated settings are properties wrapped by its `Deprecated` guard, which raises on the
    first read in a process and returns None after: they have no default worth keeping."""
    for klass in type(config).__mro__:
        attr = vars(klass).get(key)
        if isinstance(attr, property):
            return hasattr(attr.fget, "__wrapped__")
    return False


def _default(config: Any, key: str) -> Any:
    """The key's default; _MISSING for aliases and deprecated settings."""
    if _deprecated(config, key):
        return _MISSING
    try:
        return getattr(config, key, _MISSING)
    except Exception:  # noqa: BLE001 - a property that cannot be read on a default config
        return _MISSING


def describe(config: Any, keys: Iterable[str]) -> Dict[str, Any]:
    values = {k: _default(config, k) for k in sorted(keys)}
    return {
        "class": type(config).__name__,
        "keys": sorted(keys),
        "defaults": {k: v for k, v in values.items() if v is not _MISSING and _plain(v)},
    }


def build_manifest() -> Dict[str, Any]:
    """The manifest from the live classes (imports RLlib), one entry per algorithm of `variants`."""
    import ray

    from rllib_uas.variants import VARIANTS

    first = {}
    for v in VARIANTS.values():
        first.setdefault(v.algorithm, v)
    configs = {}
    for algorithm, v in sorted(first.items()):
        config = v.algo_class().get_default_config()
        configs[algorithm] = describe(config, valid_config_keys(config))
    return {"ray": ray.__version__, "configs": configs}


@functools.lru_cache(maxsize=1)
def load_manifest() -> Dict[str, Any]:
    return json.loads(MANIFEST_PATH.read_text())


def main() -> None:
    MANIFEST_PATH.write_text(json.dumps(build_manifest(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {MANIFEST_PATH}")


if __name__ == "__main__":
    main()
