"""The named variants of the two algorithms: the method, its ablations and the baselines.

One table for the experiment files' `run:` names, the benchmarks and the study. A variant is an
algorithm (U-MAPPO's or U-QMIX's implementation) and the switches that make it what it is; every
other setting is the algorithm's default, so variants of one algorithm differ only in these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Type


@dataclass(frozen=True)
class Variant:
    name: str
    algorithm: str  # "mappo" (U-MAPPO's implementation) or "qmix" (U-QMIX's)
    switches: Dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The name in file names: 'U-MAPPO w/o CGI' -> 'U-MAPPO_wo_CGI'."""
        return self.name.replace("/", "").replace(" ", "_")

    def algo_class(self) -> Type:
        if self.algorithm == "mappo":
            from rllib_uas.algorithms.u_mappo import UMAPPO

            return UMAPPO
        from rllib_uas.algorithms.u_qmix import UQMIX

        return UQMIX

    def config(self):
        """The algorithm's default config with this variant's switches set."""
        return self.algo_class().get_default_config().training(**self.switches)


NO_UAS = dict(uas=False, cgi_coeff=0.0)
GROUP = dict(parameter_sharing="group")

VARIANTS: Dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("U-MAPPO", "mappo"),  # UAS + CGI, lambda_I 0.1
        Variant("U-MAPPO w/o CGI", "mappo", dict(cgi_coeff=0.0)),  # UAS only
        Variant("MAPPO", "mappo", NO_UAS),  # native actions, global sharing
        Variant("MAPPO group", "mappo", {**NO_UAS, **GROUP}),  # native actions, one network per group
        Variant("U-QMIX", "qmix"),
        Variant("U-QMIX w/o CGI", "qmix", dict(cgi_coeff=0.0)),
        Variant("QMIX", "qmix", NO_UAS),
        Variant("QMIX group", "qmix", {**NO_UAS, **GROUP}),
        Variant("VDN", "qmix", {**NO_UAS, "mixer": "vdn"}),
    )
}


def variant_of(algorithm: str, settings: Dict[str, Any]) -> str:
    """The name of the variant a run's settings make (its `params.json`): of the algorithm's variants
    whose switches all hold, the one with the most switches ('MAPPO' over 'U-MAPPO' for uas=False)."""
    matching = [
        v
        for v in VARIANTS.values()
        if v.algorithm == algorithm and all(settings.get(k) == value for k, value in v.switches.items())
    ]
    return max(matching, key=lambda v: len(v.switches)).name if matching else algorithm


def variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; available: {', '.join(VARIANTS)}")
    return VARIANTS[name]
