#!/usr/bin/env bash
# The nano CV4x4x4 tokenizer runs on one lent GPU (an H200 here): three widths trained side by side on the same clip
# archive for the same wall-clock budget, so that the released one is chosen by held-out reconstruction, not guessed.
#   cosmos-hf sim export-clips --num 6000 --seed-offset 1000 --out outputs/clips/physics_6000.npz   (on a CPU machine)
#   bash training/train_nano_tokenizers_gpu.sh OUT_DIR [MINUTES]
# Each run: training/configs/tokenizer_nano_cv4x4x4.yaml (the CPU recipe: 32 channels, 1 residual block a level,
# batch 8) widened and with GPU-sized batches, `--max_train_minutes` (the run measures its speed and sets max_train_steps, and the cosine schedule's
# length, to what fits). OUT_DIR/<variant>.tar holds model/ (save_pretrained) and metrics.jsonl.
set -euo pipefail
out=${1:?usage: train_nano_tokenizers_gpu.sh OUT_DIR [MINUTES]}
minutes=${2:-6.5}
config=training/configs/tokenizer_nano_cv4x4x4.yaml
mkdir -p "$out"
declare -A variants=(
  [c48r2]="--set model.overrides.channels=48 --set model.overrides.num_res_blocks=2 --set training.batch_size=32"
  [c32r2]="--set model.overrides.num_res_blocks=2 --set training.batch_size=32"
  [c32r1]="--set training.batch_size=32"
)
pids=()
for name in "${!variants[@]}"; do
  # shellcheck disable=SC2086
  "${PYTHON:-python3}" training/train_tokenizer.py --config "$config" --output_dir "outputs/gpu_tokenizers/$name" \
      --max_train_minutes "$minutes" --max_train_steps 40000 --set training.checkpointing_steps=2000 \
      ${variants[$name]} > "$out/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
for name in "${!variants[@]}"; do
  dir=outputs/gpu_tokenizers/$name
  if [ -d "$dir/model" ]; then
    tar -cf "$out/$name.tar" -C "$dir" model metrics.jsonl config.yaml 2>/dev/null || tar -cf "$out/$name.tar" -C "$dir" model metrics.jsonl
  fi
  tail -n 3 "$out/$name.log"
done
exit $status
