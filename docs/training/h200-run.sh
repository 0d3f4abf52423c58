#!/bin/bash
# The one H200 call of issue 14: copied with models/, bench/, train data as lossless WebP (data/T91, data/BSD200)
# and Set5 (eval/) into a git-ignored folder of the checkout, run as `cd .devrun && BUDGET=320 ./run.sh`.
# One device run: bench (issue 12) then real-world fine-tunes ×2 and ×4 concurrently.
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 VCS_SHARED_DIR=$PWD/shared-none
STEPS=${STEPS:-400000}; BUDGET=${BUDGET:-330}; BENCH_S=${BENCH_S:-1.0}; WORKERS=${WORKERS:-7}; DEVICE=${DEVICE:-cuda}
{
date -u; nvidia-smi -L 2>&1; nproc; python3 -c "import torch, PIL, PIL.features as f; print(torch.__version__, PIL.__version__, 'webp', f.check('webp'), torch.cuda.is_available())"
if [ "$DEVICE" = cuda ]; then
  timeout 120 python3 -m bench.engine --device cuda --batches 1 4 16 --tile 512 --seconds $BENCH_S --json $OUT/engine-gpu.json
  TORCHINDUCTOR_COMPILE_THREADS=1 timeout 75 python3 gpu_extras.py $OUT/engine-gpu-extras.json 70
fi
date -u
for s in 2 4; do
  patch=64; [ $s = 4 ] && patch=48
  python3 -m models.train --model vcsr-real-x$s --degradation real --init vcsr-m-x$s --amp --device $DEVICE \
    --workers $WORKERS --batch ${BATCH:-32} --patch $patch --lr 2e-4 --steps $STEPS --time-budget $BUDGET \
    --checkpoint-every ${CKPT:-2000} --export-checkpoints --log-every ${LOGEVERY:-500} --data data --eval-root eval \
    --run-dir /tmp/run-x$s --out $OUT/vcsr-real-x$s.safetensors > $OUT/train-x$s.log 2>&1 &
done
wait
date -u; ls -la $OUT
} 2>&1 | tee $OUT/run.log
