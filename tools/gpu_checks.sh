#!/usr/bin/env bash
# The CUDA checks in one run, for a machine with an NVIDIA GPU and PyTorch but perhaps no package index
# (a lent GPU machine): nvdiffrast builds and runs, the nvdiffrast and torch rasterisers (and the rasterised
# surface sampler) agree, and the GPU benchmarks (the rasteriser, the sampler on the dev takes' cameras, and
# the fit of 9 views at 1600x1200, with its agreement with the CPU).
#
# Prepare in the repository root, where pip can download:
#   echo /.whl/ >> .git/info/exclude; echo /.gpu_shared/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2010_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
#       -d .whl diffrp-nvdiffrast==0.3.3.1 imageio-ffmpeg==0.5.1 fast-simplification==0.2.0
#       # nvdiffrast's sources; ffmpeg (27 MB); the decimator (0.3 MB)
#   mkdir -p .gpu_shared/data/rigs && cp ../shared/data/rigs/ict_full.npz .gpu_shared/data/rigs/
#   for t in dev_ict_4cam dev_ict_3cam_performer; do mkdir -p .gpu_shared/data/takes/$t && \
#       cp ../shared/data/takes/$t/{calibration,ground_truth}.json .gpu_shared/data/takes/$t/; done
# then run there, from the repository root: FACECAP_SHARED=.gpu_shared bash tools/gpu_checks.sh
# (nvdiffrast compiles on first use with the machine's nvcc and ninja, a minute or two).
# Logs and bench_fit_views.json go to $OUT (or gpu_checks/). Each step has a time limit; together at most
# 570 s, inside a lent machine's 10-minute command.
set -uo pipefail
out=${OUT:-gpu_checks}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export FACECAP_SHARED=${FACECAP_SHARED:-../shared}
rig=$FACECAP_SHARED/data/rigs/ict_full.npz
[ -f "$rig" ] || { echo "needs $rig (set FACECAP_SHARED)"; exit 2; }
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PYTHONPATH
fi

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log, say how it ended
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]}"
}

step gpu 30 python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"
step cuda_tests 180 python3 -m pytest -q -p no:cacheprovider -m cuda tests
step bench_render 50 python3 tools/bench_render.py
step bench_samples 50 python3 tools/bench_surface_samples.py --device cuda --repeats 5
work=$(mktemp -d)   # the synthetic take and the fits: large, and not wanted back
step bench_fit_views 260 python3 tools/bench_fit_views.py --device cuda --threads "$(nproc)" --compare-cpu 4 \
    --out "$work"
cp "$work/bench_fit_views.json" "$out/" 2>/dev/null
