#!/usr/bin/env bash
# Creates benchmarks/.peer-venv with braindecode (the peer) and a torch/torchaudio pair that load
# together: braindecode imports torchaudio at import time, and PyPI's torchaudio does not load
# beside the CPU build of torch 2.13.0 that biodecode uses. Nothing of the peer is stubbed or patched.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.peer-venv
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import braindecode" 2>/dev/null; then
    exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.9.1" "torchaudio==2.9.*"
"$VENV/bin/python" -m pip install -q "torch==2.9.1" "braindecode==1.8.1" "mne>=1.11"
"$VENV/bin/python" -c "import braindecode, torch, torchaudio; print('peer ready: braindecode', braindecode.__version__, 'torch', torch.__version__)"
