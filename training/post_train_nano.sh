#!/usr/bin/env bash
# Post-train the bundled nano Video2World into the three post-trained nano world models, one after another, then
# score each on held-out seeds (training/report_post_trained.py):
#
#   training/post_train_nano.sh OUT [train_diffusion.py options...]
#
# writes OUT/{camera,action,multiview}/ (checkpoints, train_log.jsonl, pipeline/), OUT/timings.json (seconds per
# run) and OUT/report.json. Options after OUT go to every training run, e.g. a CPU smoke run:
#   training/post_train_nano.sh /tmp/post --max_train_steps 2 --set data.num_clips=8
# (with REPORT_ARGS="--clips 2 --steps 2" for a short report). A rerun resumes each run from its latest checkpoint.
# Environment: PYTHON (default .venv/bin/python if present, else python), ACCELERATE_ARGS (default
# "--mixed_precision no"; e.g. "--mixed_precision bf16"), REPORT_ARGS (extra options of report_post_trained.py).
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: training/post_train_nano.sh OUT [train_diffusion.py options...]" >&2
    exit 2
fi
OUT=$1
shift
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
mkdir -p "$OUT"
timings="{"
for condition in camera action multiview; do
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$PYTHON" -m accelerate.commands.launch --num_processes 1 --num_machines 1 --dynamo_backend no \
        ${ACCELERATE_ARGS:---mixed_precision no} training/train_diffusion.py \
        --config "training/configs/diffusion_nano_$condition.yaml" --output_dir "$OUT/$condition" \
        --resume_from_checkpoint latest "$@"
    timings="$timings\"$condition\": $(( $(date +%s) - start )), "
done
echo "${timings%, }}" > "$OUT/timings.json"
# shellcheck disable=SC2086
"$PYTHON" training/report_post_trained.py --camera "$OUT/camera/pipeline" --action "$OUT/action/pipeline" \
    --multiview "$OUT/multiview/pipeline" --out "$OUT/report.json" ${REPORT_ARGS:-}
cat "$OUT/timings.json"
