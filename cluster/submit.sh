#!/usr/bin/env bash
# Submit a training run to a Ray cluster as a Ray job:
#   cluster/submit.sh [--address http://HEAD:8265] EXPERIMENT.yaml [rllib train flags...]
# The repository is shipped as the job's working dir; W&B settings travel in the runtime env
# (WANDB_MODE=offline unless WANDB_API_KEY is set here).
set -euo pipefail
address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
if [[ "${1:-}" == "--address" ]]; then
  [[ $# -ge 2 ]] || { echo "submit.sh: --address needs the head's dashboard address, e.g. http://HEAD:8265" >&2; exit 2; }
  address="$2"; shift 2
fi
if [[ $# -lt 1 ]]; then
  echo "usage: cluster/submit.sh [--address http://HEAD:8265] EXPERIMENT.yaml [rllib train flags]" >&2
  exit 2
fi
experiment="$1"; shift
[[ -f "$experiment" ]] || { echo "submit.sh: no such experiment file: $experiment" >&2; exit 2; }
# the job runs in a copy of this repository: the file must be inside it, named relative to its root
repo="$(cd "$(dirname "$0")/.." && pwd)"
experiment="$(cd "$(dirname "$experiment")" && pwd)/$(basename "$experiment")"
case "$experiment" in
  "$repo"/*) experiment="${experiment#"$repo"/}" ;;
  *) echo "submit.sh: $experiment is outside the repository ($repo), which is all the job receives; copy it into the repository" >&2; exit 2 ;;
esac
mode="${WANDB_MODE:-$([[ -n "${WANDB_API_KEY:-}" ]] && echo online || echo offline)}"
env_json=$(python3 - "$mode" <<'PY'
import json, os, sys
env = {"WANDB_MODE": sys.argv[1], "RAY_DEDUP_LOGS": "0"}
for key in ("WANDB_API_KEY", "WANDB_ENTITY", "RLLIB_UAS_MAP_FILES", "RLLIB_UAS_UNIT_FILES"):
    if os.environ.get(key):
        env[key] = os.environ[key]
print(json.dumps({"env_vars": env}))
PY
)
cd "$repo"
exec ray job submit --address "$address" --working-dir . --runtime-env-json "$env_json" \
  -- rllib train file "$experiment" --ray-address auto --storage-path /tmp/rllib-uas-results "$@"
