"""SMAC environments: the embedded battle engine, the StarCraft2Env API and RLlib/PettingZoo views."""

# the names the SMAC envs are registered under with Tune (`envs.registry`): kept here, free of imports,
# so the CLI's pre-flight can recognise them without importing Ray
ENV_NAMES = ("smac", "smac_team")
