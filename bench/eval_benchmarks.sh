#!/usr/bin/env bash
# The evaluation table of docs/EVALUATION.md: finetune + evaluate on every task of ../shared/data/benchmarks (GUE
# and GenomicBenchmarks chr20), with the reference's pooling and the mean over the real bases, next to the k-mer and
# majority baselines; zero-shot ClinVar-vs-common SNVs; bits per base on the held-out test block. Two queues run
# side by side, one thread each.
#   bash bench/eval_benchmarks.sh [SHARED_DATA_DIR] [OUT_DIR] [PART...]      (default ../shared/data, eval-bench, all)
# PART: gb (the GenomicBenchmarks tasks), gue (the GUE tasks), ft (full fine-tuning), pool (the center and mean+max
# poolings), zeroshot (variants and bits per base); the outputs of each are NAME.table, NAME.json and NAME.out (the finetune log and its wall time).
set -euo pipefail
J=$(readlink -f "${JANUSDNA:-build/janusdna}")
D=$(readlink -f "${1:-../shared/data}"); OUT=${2:-eval-bench}; shift $(( $# > 2 ? 2 : $# )) || true
PARTS=${*:-gb gue ft pool zeroshot}
B=$D/benchmarks; G=$B/gb-chr20; R=$D/grch37-chr20/20.fa.gz
mkdir -p "$OUT"; cd "$OUT"
T() { /usr/bin/time -f "%e s, peak RSS %M KB" "$@"; }
want() { [[ " $PARTS " == *" $1 "* ]]; }
PROBE=(--freeze-backbone --epochs 30 --lr 1e-2 --batch 32)
FULL=(--epochs 2 --batch 32 --lr 1e-3)   # full fine-tuning, the reference's AdamW recipe, 2 epochs for CPU time

# gb NAME TASK POOLING [finetune options]: seeded 90/10 splits (the GenomicBenchmarks protocol; seeds $SEEDS, default
# 1 2 3), then evaluate.
gb() {
  local name=$1 task=$2 pool=$3; shift 3
  local models=()
  for s in ${SEEDS:-1 2 3}; do
    T "$J" finetune -@ 1 "$@" --pooling "$pool" --split-seed $s --seed $s -o "$name.$s.safetensors" \
      "$G/$task.train.tsv" --test "$G/$task.test.tsv" > "$name.$s.out" 2>&1
    models+=(-m "$name.$s.safetensors")
  done
  "$J" evaluate -@ 1 "${models[@]}" --json "$name.json" > "$name.table"
}
# gue NAME DIR POOLING SEEDS [finetune options]: GUE's own train/dev/test; DIR without train.csv: dev as the
# training split with a stratified 10 % of it for validation (seeded), test as test.
gue() {
  local name=$1 dir=$B/gue/$2 pool=$3 seeds=$4; shift 4
  local models=() data
  for s in $seeds; do
    if [ -e "$dir/train.csv" ]; then data=("$dir"); else data=("$dir/dev.csv" --test "$dir/test.csv" --split-seed $s); fi
    T "$J" finetune -@ 1 "$@" --pooling "$pool" --seed $s -o "$name.$s.safetensors" "${data[@]}" > "$name.$s.out" 2>&1
    models+=(-m "$name.$s.safetensors")
  done
  "$J" evaluate -@ 1 "${models[@]}" --json "$name.json" > "$name.table"
}
q1() {
  if want gb; then
    for pool in mean reference; do
      gb ensembl.probe.$pool human_enhancers_ensembl $pool "${PROBE[@]}" --rc
      gb cohn.probe.$pool human_enhancers_cohn $pool "${PROBE[@]}" --rc
    done
  fi
  if want ft; then
    gb ensembl.ft.mean human_enhancers_ensembl mean "${FULL[@]}"
    SEEDS=1 gb regulatory.ft.mean human_ensembl_regulatory mean "${FULL[@]}"
  fi
  if want pool; then
    gue splice.probe.center splice/reconstructed center "1" "${PROBE[@]}"
  fi
  if want zeroshot; then
    "$J" score-variants -@ 1 -f "$R" -o gpn.scored.vcf.gz "$D/variants/gpn_clinvar_pathogenic_vs_common.chr20.hg19.vcf" 2> gpn.out
    "$J" evaluate --variants gpn.scored.vcf.gz --label-id '^Pathogenic' -f "$R" --json gpn.json > gpn.table
    T "$J" evaluate -@ 1 --lm "$R" -r 20:60,000,001-60,500,000 --json lm.json > lm.table 2> lm.out
  fi
}
q2() {
  if want gb; then
    for pool in mean reference; do gb regulatory.probe.$pool human_ensembl_regulatory $pool "${PROBE[@]}"; done
  fi
  if want ft; then
    gb ensembl.ft.reference human_enhancers_ensembl reference "${FULL[@]}"
    SEEDS=1 gb regulatory.ft.reference human_ensembl_regulatory reference "${FULL[@]}"
  fi
  if want pool; then
    for pool in center mean+max; do SEEDS=1 gb ensembl.probe.$pool human_enhancers_ensembl $pool "${PROBE[@]}" --rc; done
  fi
  if want gue; then
    # One length per task and no N: both poolings compute the same features (to float rounding); the reference's
    # is run on tata to show it, the mean on every task.
    gue tata.probe.reference prom/prom_300_tata reference "1 2 3" "${PROBE[@]}"
    gue tata.probe.mean prom/prom_300_tata mean "1 2 3" "${PROBE[@]}"
    gue tf2.probe.mean tf/2 mean "1" "${PROBE[@]}"
    gue mouse0.probe.mean mouse/0 mean "1 2 3" "${PROBE[@]}"
    gue h3.probe.mean EMP/H3 mean "1 2 3" "${PROBE[@]}"
    gue splice.probe.mean splice/reconstructed mean "1" "${PROBE[@]}"
    gue core.probe.mean prom/prom_core_all mean "1" "${PROBE[@]}"
  fi
}
q1 & p1=$!
q2 & p2=$!
wait $p1 && wait $p2
cat *.table
