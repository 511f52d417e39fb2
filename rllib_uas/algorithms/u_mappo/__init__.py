from rllib_uas.algorithms.u_mappo.algorithm import UMAPPO, UMAPPOConfig

__all__ = ["UMAPPO", "UMAPPOConfig"]
