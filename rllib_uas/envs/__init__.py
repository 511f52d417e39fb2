"""SMAC environments: the embedded battle engine, the StarCraft2Env API and RLlib/PettingZoo views."""

# the names the SMAC envs are registered under with Tune (`envs.registry`): kept here, free of imports,
# so the CLI's pre-flight can recognise them without importing Ray
ENV_NAMES = ("smac", "smac_team")


def import_class_path(path: str):
    """What a 'module.Class' env path names (the pre-flight's check and `envs.registry`'s registration
    read it alike), or None when it names nothing importable."""
    module, _, attr = path.rpartition(".")
    if not module:
        return None
    import importlib

    try:
        return getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
