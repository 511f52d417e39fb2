from rllib_uas.algorithms.u_mappo.config import UMAPPO, UMAPPOConfig

__all__ = ["UMAPPO", "UMAPPOConfig"]
