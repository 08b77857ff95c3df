#!/usr/bin/env bash
# Set up facecap in ./.venv on a fresh machine. Idempotent: a second run only checks.
#
# Without an NVIDIA GPU it installs PyTorch's CPU build first, so that the plain `torch`
# requirement does not pull several GB of CUDA packages. With a GPU it keeps the default
# (CUDA) build; add nvdiffrast afterwards with:  .venv/bin/pip install -e '.[cuda]'
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${FACECAP_TORCH_VERSION:-2.13.0}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found, installing the CUDA build of torch"
    "${PIP[@]}" install "torch==$TORCH_VERSION" || "${PIP[@]}" install torch
  else
    echo "setup: no GPU, installing the CPU build of torch"
    # A local CPU wheel (pip's find-links; its dependencies from the usual index) first, otherwise
    # PyTorch's CPU wheel index. "+cpu" matches no CUDA build, so neither route can pull CUDA packages.
    "${PIP[@]}" install "torch==$TORCH_VERSION+cpu" 2>/dev/null \
      || "${PIP[@]}" install --retries 2 "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu \
      || "${PIP[@]}" install --retries 2 torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
# The batch extra (Ray) too, so that the suite runs facecap batch's tests on a local Ray cluster.
"${PIP[@]}" install -e '.[test,batch]'
# The Khronos glTF Validator for the glTF test (tests/export/test_gltf.py skips without it).
if command -v npm >/dev/null 2>&1; then
  npm install --prefix tools/gltf --no-audit --no-fund --no-package-lock --silent \
    || echo "setup: gltf-validator not installed (the glTF validation test will skip)"
fi
.venv/bin/python -c "import facecap, torch, cv2; print(f'setup: facecap {facecap.__version__}, torch {torch.__version__}, OpenCV {cv2.__version__}, CUDA {torch.cuda.is_available()}')"
