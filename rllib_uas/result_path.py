"""Reading a metric from RLlib's nested result dicts by its slash path ("env_runners/win_rate"), the
way Tune's stop criteria and the YAML files name metrics. Plain Python: the plots use it without Ray."""

from __future__ import annotations

from typing import Any, Mapping


def metric_at(result: Mapping[str, Any], path: str, default: Any = float("nan")) -> Any:
    """result["a"]["b"] for path "a/b", or `default` where a part is missing."""
    node: Any = result
    for part in path.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node
