#!/usr/bin/env bash
# One distillation round on a lent GPU machine (see gpu_distil.py); results under $OUT/d.
# Teacher weights (~45 MB each) stay on the machine: only summaries and students come back.
set -u
cd "$(dirname "$0")"
mkdir -p "$OUT/d" /tmp/distil-teachers
ln -sfn /tmp/distil-teachers "$OUT/d/teachers"
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 20 > "$OUT/smi.csv" &
SMI=$!
trap 'kill $SMI 2>/dev/null' EXIT  # a background job left running holds the caller's pipe open
python3 gpu_distil.py run --corpus ../runs/gpu2/corpus.npz --out "$OUT/d" \
    --teacher-s "${TEACHER_S:-120}" --total-s "${TOTAL_S:-330}"
python3 gpu_search.py bundle --out "$OUT/d" --dest "$OUT/d/bundle"
rm -f "$OUT/d/teachers"
# The machine returns only a handful of files: everything else travels as one archive.
tar -C "$OUT/d" -czf "$OUT/distil.tgz" logs teacher-summaries runs 2>/dev/null
rm -rf "$OUT/d/logs" "$OUT/d/teacher-summaries" "$OUT/d/runs"
