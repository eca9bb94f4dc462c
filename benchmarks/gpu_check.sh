#!/usr/bin/env bash
# One-call GPU check (issue 15): every CUDA test, then the GPU timings, in
# under 8 minutes on one GPU: a log (gpu_check.txt) and the benchmarks' JSON.
#
#   bash benchmarks/gpu_check.sh            # writes benchmarks/results/gpu_check.txt
#   OUT=/some/dir bash benchmarks/gpu_check.sh   # writes $OUT/gpu_check.txt
#
# Each step has its own time limit (total <= 450 s), so one slow step cannot
# eat the others' time; a step that fails or times out is recorded and the
# script goes on. Exit status: 0 when every step passed.
set -u
cd "$(dirname "$0")/.."
dest="${OUT:-benchmarks/results}"
mkdir -p "$dest"
results="$dest/gpu_check.txt"
: > "$results"
status=0

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    echo "===== $name (limit ${limit}s): $*" | tee -a "$results"
    local start=$SECONDS
    timeout --signal=INT --kill-after=10 "$limit" "$@" >> "$results" 2>&1
    local rc=$?
    echo "===== $name: exit $rc after $((SECONDS - start))s" | tee -a "$results"
    [ "$rc" -eq 0 ] || status=1
}

{
    echo "# gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    python -c "import torch, skstruct; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print('device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-'); print('skstruct', skstruct.__version__)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
} >> "$results" 2>&1

# 1. Every CUDA test: all are marked gpu (pytest -m gpu), none may skip here.
step "cuda tests" 120 python -m pytest -m gpu -q -rs -p no:randomly tests
# 2. fit vs a hand-written loop on the same network (issue 16's ratios, on CUDA).
step "bench_training" 120 python benchmarks/bench_training.py --device cuda --repeats 3 \
    --output "$dest/bench_training_cuda.json"
# 3. the losses vs cross-entropy.
step "bench_losses" 60 python benchmarks/bench_losses.py --device cuda --repeats 30 --classes 10 1000 10000 \
    --output "$dest/bench_losses_cuda.json"
# 4. a short MIL suite.
step "reproduce mil" 60 python -m skstruct reproduce mil --device cuda --datasets musk1 --epochs 10 --n-jobs 1 --quiet
# 5. one bag per step against the reference loop, both on CUDA (3 folds, 20 epochs).
step "bench_mil" 90 python benchmarks/bench_mil.py --device cuda --datasets musk1 --folds 3 --epochs 20 \
    --batch-sizes 1,8 --output "$dest/bench_mil_cuda.json"

echo "# gpu_check done: status $status (results in $results)" | tee -a "$results"
exit $status
