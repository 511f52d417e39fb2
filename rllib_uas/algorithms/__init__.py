"""Algorithms: U-MAPPO (on RLlib's PPO) and U-QMIX (a QMIX-style algorithm on the new API stack)."""
