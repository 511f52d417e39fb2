"""An env runner that fails to start, named by its own error.

Under RLlib's default fault tolerance (`restart_failed_env_runners`), an env runner whose constructor
raises (an env that cannot be made with its env_config, a module that refuses the env's spaces) is
logged in the algorithm's process and dropped. `Algorithm.setup` then fails later, in
`EnvRunnerGroup.get_spaces`, with `IndexError: list index out of range`, and the runner's own error
appears nowhere in what `rllib train` prints. Both team algorithms mix in `RunnerStartErrors`, which
builds one runner in the algorithm's process on that failure and raises what it raised.
"""

from __future__ import annotations

import traceback
from typing import Any


class RunnerStartErrors:
    """Mix into an Algorithm (before it in the bases): its setup names a failed env runner's error."""

    def setup(self, config: Any) -> None:
        try:
            super().setup(config)
        except IndexError as err:
            if not _raised_in_get_spaces(err):
                raise
            raise RuntimeError(runner_start_error(config)) from err


def _raised_in_get_spaces(err: BaseException) -> bool:
    return any(frame.name == "get_spaces" for frame in traceback.extract_tb(err.__traceback__))


def runner_start_error(config: Any) -> str:
    """One line: what an env runner raises when built here as RLlib builds a remote one (worker 1)."""
    try:
        runner = config.env_runner_cls(config=config, worker_index=1, num_workers=max(1, config.num_env_runners))
    except Exception as err:  # noqa: BLE001 - whatever the runner raised is the message
        first = (str(err).strip().splitlines() or [""])[0]
        return f"an env runner failed to start: {type(err).__name__}: {first}"
    runner.stop()
    return (
        "RLlib's env runners failed to start (an IndexError in EnvRunnerGroup.get_spaces), though one "
        "built in the algorithm's process did not fail; `rllib train -v` shows the Ray workers' logs"
    )
