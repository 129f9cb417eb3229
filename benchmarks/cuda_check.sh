#!/usr/bin/env bash
# The CUDA paths, run for real on a GPU machine, in one pass of at most about 10 minutes
# (first run on an H200, 2026-12-04: 2.8 minutes; figures in docs/scaling.md):
#   1. the device-code tests (training, checkpoints and resumption, loading, generation; the slow
#      ones too) with CUDA present, so `device: auto` puts every model on the GPU;
#   2. benchmarks/bench_train.py --device cuda: warm-up and RL-step tokens/s, fp32 against bf16;
#   3. `codefalcon run` on its embedded default (device auto = CUDA): wall time and figures.
#
#   bash benchmarks/cuda_check.sh [OUT_DIR]     # OUT_DIR (default $OUT or /tmp/cuda-check) gets the logs
#
# For a machine whose Python lacks some of codefalcon's dependencies, put their wheels in .whl/
# (installed with --no-deps into /tmp/site) and the test data in .shared-data/ (else ../shared/data).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/cuda-check}}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site" PATH="/tmp/site/bin:$PATH"
fi
[ -d .shared-data ] && export CODEFALCON_SHARED_DATA="$PWD/.shared-data"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'| transformers', transformers.__version__, '| peft', peft.__version__, '|', torch.cuda.get_device_name(0))"
lscpu | grep -m1 'Model name'

section() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%T)"; }

section "1. device-code tests with CUDA present"
timeout 240 python3 -m pytest -q -p no:cacheprovider -rf --timeout 150 \
    tests/rl/test_device.py tests/rl/test_optim.py tests/rl/test_checkpoint.py tests/rl/test_sft.py \
    tests/rl/test_train.py tests/models/test_loading.py tests/models/test_generation.py 2>&1 | grep -E '^(E  |FAILED|ERROR)|passed|failed' | tail -30

section "2. bench_train --device cuda"
timeout 120 python3 benchmarks/bench_train.py --device cuda --threads 8 --warmup-steps 150 2>&1 \
    | grep -v -E 'Loading weights|Writing model|bubblewrap'

section "3. codefalcon run, embedded default, device auto"
started=$(date +%s)
timeout 240 python3 -m codefalcon.cli run out_dir=/tmp/cf-run > "$out/run_summary.jsonl" 2> "$out/run_stderr.txt"
echo "exit $?, $(( $(date +%s) - started )) s wall"
tail -c 3000 "$out/run_summary.jsonl"
grep -E '^\[|rl\]|pass@1|gain' "$out/run_stderr.txt" | tail -15
for f in /tmp/cf-run/rl/metrics.jsonl /tmp/cf-run/sft/metrics.jsonl; do
    [ -f "$f" ] && cp "$f" "$out/$(basename "$(dirname "$f")")_metrics.jsonl"
done
section "done"
