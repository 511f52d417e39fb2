"""SMAC environments: the embedded battle engine, the StarCraft2Env API and RLlib/PettingZoo views."""
