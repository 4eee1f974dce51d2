#!/usr/bin/env bash
# The scale benchmarks in one go, sized to finish in about 10 minutes on one H100/H200:
#   1. step_overhead.py  Janus step / seq-lora step, ViT-B/16, batch 128, bf16, and OE's share of an epoch
#   2. packing.py        1, 2 and 4 fractional trials on the one GPU: aggregate images/s against 1 trial
#   3. full_run.py       the ImageNet-R-shaped run (24,000 train / 6,000 test JPEGs, T=10), janus and seq-lora,
#                        on the GPU data path, 1 epoch measured and the paper's 50 epochs estimated
#
#   bash benchmarks/gpu_suite.sh [OUTDIR]        # default OUTDIR: benchmarks-out/ (one .log per stage)
#   SMALL=1 bash benchmarks/gpu_suite.sh OUTDIR  # the same stages at CPU smoke size (what the tests run)
#
# Needs only the janus package's imports (torch, torchvision, timm, numpy, PIL, safetensors, PyYAML): no Ray,
# MLflow or network. PYTHON picks the interpreter (default: python3). Each stage has its own time limit
# (STAGE_LIMIT seconds, default 240), so one slow stage cannot eat the others; the exit code is the number of
# stages that failed.
set -uo pipefail
out=${1:-benchmarks-out}
py=${PYTHON:-python3}
limit=${STAGE_LIMIT:-240}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export HF_HUB_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0 MLFLOW_DISABLE_TELEMETRY=true PYTHONUNBUFFERED=1
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"

if [[ ${SMALL:-0} == 1 ]]; then
    device=cpu
    step_args=(--backbones test --batch 4 --steps 2 --warmup 1 --epoch-images 64)
    pack_args=(--backbone test --trials 1,2 --batch 4 --steps 2 --warmup 1)
    full_args=(--backbone test --image-size 32 --per-class 5 --batch 16 --eval-batch 64 --project-epochs 3)
else
    device=cuda
    step_args=(--backbones vit --batch 128 --steps 20 --warmup 5 --precision bf16)
    pack_args=(--backbone vit --trials 1,2,4 --batch 128 --steps 20 --warmup 5 --precision bf16)
    full_args=(--backbone vit --per-class 150 --batch 128 --eval-batch 1024 --precision bf16 --channels-last)
fi

failed=0
stage() {   # stage NAME COMMAND...: run with the time limit, log to OUTDIR/NAME.log, count failures
    local name=$1; shift
    echo "== $name: $*" | tee "$out/$name.log"
    local started=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - started)) s" | tee -a "$out/$name.log"
    [[ $rc == 0 ]] || failed=$((failed + 1))
}

{ "$py" -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__,
'cuda', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  echo "cpus $(nproc)"; } 2>&1 | tee "$out/device.log"

stage step_overhead_f32 "$py" "$here/step_overhead.py" "${step_args[@]}" --oe-precision float32 --device "$device"
stage step_overhead_f64 "$py" "$here/step_overhead.py" "${step_args[@]}" --oe-precision float64 --device "$device"
stage packing "$py" "$here/packing.py" "${pack_args[@]}" --device "$device" --cpus "$(nproc)"
stage full_run "$py" "$here/full_run.py" "${full_args[@]}" --device "$device" --cache on --augment-on device \
    --data "$out/imagenet-r-shaped"
rm -rf "$out/imagenet-r-shaped"     # 30,000 JPEGs and their cache: not something to carry back
echo "stages failed: $failed (logs in $out)"
exit "$failed"
