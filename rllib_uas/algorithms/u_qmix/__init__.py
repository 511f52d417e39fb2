from rllib_uas.algorithms.u_qmix.algorithm import UQMIX, UQMIXConfig

__all__ = ["UQMIX", "UQMIXConfig"]
