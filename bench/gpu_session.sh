#!/usr/bin/env bash
# One lent-GPU session: CUDA tests, concurrent retraining of the shipped tiny models, GPU benchmarks.
# Run from the repository root on a CUDA machine; results go under $OUT (default runs/gpu-session).
# Usage: SAIRBENCH_COMMIT=$(git rev-parse HEAD) bash bench/gpu_session.sh [TRAIN_BUDGET_S]
set -u
OUT=${OUT:-runs/gpu-session}
BUDGET=${1:-280}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" runs/gpu-logs
LOGS=runs/gpu-logs

# the image has torch & co; install sairbench itself without dependencies (no network there)
if ! python3 -m pip install -q --no-deps --no-build-isolation -e . >"$LOGS/pip.log" 2>&1; then
  echo "pip install failed; falling back to PYTHONPATH"; mkdir -p /tmp/pp && ln -sfn "$PWD/baselines" /tmp/pp/sairbench_baselines
  export PYTHONPATH="/tmp/pp:$PWD"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOGS/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$LOGS/gpu.txt"

(python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_decoders.py >"$LOGS/pytest_gpu.log" 2>&1
 echo "pytest exit $?" >>"$LOGS/pytest_gpu.log") &
python3 bench/train_shipped.py --device cuda --budget-s "$BUDGET" --workers 2 --out runs/gpu 2>&1 | tee "$LOGS/train.log"
wait
tail -3 "$LOGS/pytest_gpu.log"

python3 bench/bench_models.py --device cuda --models liif lte sair --repeats 3 --scale 4 --big 2048 \
  --train-steps 10 --mm-size 8192 --tol 5e-3 --out "$LOGS/bench_models_gpu_fp32.json" >"$LOGS/bench_fp32.log" 2>&1
tail -32 "$LOGS/bench_fp32.log"
python3 bench/bench_models.py --device cuda --precision fp16 --models liif sair --repeats 3 --scale 4 --big 2048 \
  --train-steps 0 --mm-size 8192 --tol 5e-2 --out "$LOGS/bench_models_gpu_fp16.json" >"$LOGS/bench_fp16.log" 2>&1
tail -24 "$LOGS/bench_fp16.log"

cp runs/gpu/report.json runs/gpu/logs/*.log "$LOGS/" 2>/dev/null
tar czf "$OUT/logs.tgz" -C runs gpu-logs
python3 bench/pack_weights.py runs/gpu "$OUT"
ls -la "$OUT"
