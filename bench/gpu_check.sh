#!/usr/bin/env bash
# The GPU check in one command, from a bare checkout: prints one JSON line (see bench/gpu_check.py).
# It needs torch, transformers and numpy only; they are installed (as the `gpu` extra pins them) where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import torch, transformers, numpy" 2>/dev/null; then
  "$PYTHON" -m pip install -q "torch>=2.6" "transformers>=5,<6" numpy >&2
fi
exec "$PYTHON" bench/gpu_check.py "$@"
