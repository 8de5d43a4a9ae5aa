#!/usr/bin/env bash
# One distillation round on a lent GPU machine (see gpu_distil.py); results under $OUT/d.
# Teacher weights (~45 MB each) stay on the machine: only summaries and students come back.
set -u
cd "$(dirname "$0")"
mkdir -p "$OUT/d" /tmp/distil-teachers
ln -sfn /tmp/distil-teachers "$OUT/d/teachers"
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 20 > "$OUT/smi.csv" &
python3 gpu_distil.py run --corpus ../runs/gpu2/corpus.npz --out "$OUT/d" \
    --teacher-s "${TEACHER_S:-120}" --total-s "${TOTAL_S:-330}"
python3 gpu_search.py bundle --out "$OUT/d" --dest "$OUT/d/bundle"
rm -f "$OUT/d/teachers"
