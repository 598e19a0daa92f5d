#!/usr/bin/env bash
# The evaluation table of docs/EVALUATION.md: finetune + evaluate on GUE prom_300_tata and tf/2 and on
# GenomicBenchmarks human_enhancers_cohn (chr20), zero-shot ClinVar-vs-common SNVs, and bits per base on the
# held-out test block, each next to its baselines. Two queues run side by side, one thread each.
#   bash bench/eval_benchmarks.sh [SHARED_DATA_DIR] [OUT_DIR]      (default ../shared/data, eval-bench)
set -euo pipefail
J=$(readlink -f "${JANUSDNA:-build/janusdna}")
D=$(readlink -f "${1:-../shared/data}"); OUT=${2:-eval-bench}
B=$D/benchmarks; G=$B/gb-chr20; R=$D/grch37-chr20/20.fa.gz
mkdir -p "$OUT"; cd "$OUT"
T() { /usr/bin/time -f "%e s, peak RSS %M KB" "$@"; }
# Two queues of about equal time on the 2-core machine (session 5: ~2.5 min and ~5 min with the full fine-tuning).
q1() {
  T "$J" finetune -@ 1 --freeze-backbone --epochs 30 --lr 1e-2 -o tf2.probe.safetensors "$B/gue/tf/2" > tf2.probe.out 2>&1
  "$J" evaluate -@ 1 -m tf2.probe.safetensors --json tf2.probe.json --plot tf2.probe > tf2.probe.table
  "$J" score-variants -@ 1 -f "$R" -o gpn.scored.vcf.gz "$D/variants/gpn_clinvar_pathogenic_vs_common.chr20.hg19.vcf" 2> gpn.out
  "$J" evaluate --variants gpn.scored.vcf.gz --label-id '^Pathogenic' -f "$R" --json gpn.json --plot gpn > gpn.table
  T "$J" evaluate -@ 1 --lm "$R" -r 20:60,000,001-60,500,000 --json lm.json > lm.table 2> lm.out
}
q2() {
  for s in 1 2 3; do   # linear probe w/ rc, three seeded 90/10 splits (the GenomicBenchmarks protocol)
    T "$J" finetune -@ 1 --freeze-backbone --rc --epochs 30 --lr 1e-2 --split-seed $s --seed $s \
      -o cohn.probe.$s.safetensors "$G/human_enhancers_cohn.train.tsv" --test "$G/human_enhancers_cohn.test.tsv" > cohn.probe.$s.out 2>&1
  done
  "$J" evaluate -@ 1 -m cohn.probe.1.safetensors -m cohn.probe.2.safetensors -m cohn.probe.3.safetensors \
    --json cohn.probe.json --plot cohn.probe > cohn.probe.table
  T "$J" finetune -@ 1 --freeze-backbone --epochs 30 --lr 1e-2 -o tata.probe.safetensors "$B/gue/prom/prom_300_tata" > tata.probe.out 2>&1
  "$J" evaluate -@ 1 -m tata.probe.safetensors --json tata.probe.json --plot tata.probe > tata.probe.table
  T "$J" finetune -@ 1 --rc --epochs 3 --batch 32 --lr 1e-3 -o cohn.ft.1.safetensors \
    "$G/human_enhancers_cohn.train.tsv" --test "$G/human_enhancers_cohn.test.tsv" > cohn.ft.1.out 2>&1
  "$J" evaluate -@ 1 -m cohn.ft.1.safetensors --json cohn.ft.json --plot cohn.ft > cohn.ft.table
}
q1 & p1=$!
q2 & p2=$!
wait $p1 && wait $p2
cat *.table
