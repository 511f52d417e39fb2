from rllib_uas.algorithms.u_qmix.algorithm import UQMIX
from rllib_uas.algorithms.u_qmix.config import UQMIXConfig

__all__ = ["UQMIX", "UQMIXConfig"]
