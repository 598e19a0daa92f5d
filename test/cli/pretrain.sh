#!/usr/bin/env bash
# Command-line tests of pretrain: resume bit-identity (also after a kill during a checkpoint write), two-rank
# equivalence, learning on real sequence, and early failure on bad input.
. "$(dirname "$0")/lib.sh"
G=$DATA/train/chr20-40k.fa
cp "$G" "$G.fai" .
G=chr20-40k.fa
T=(--keep-checkpoint --config "$DATA/train/tiny.config.json" --seq-len 64 --batch 2 --steps 6 --checkpoint-every 2 --valid-every 3
   --valid-regions 20:35,001-40,000 --valid-windows 4 --lr 5e-3 -@ 1)

# --- resume is bit-identical, even after SIGKILL in the middle of a checkpoint write ------------------------
run straight 0 "$BIN" pretrain "${T[@]}" -o A.safetensors $G
[ -s A.safetensors ] && [ -s A.safetensors.ckpt ] && [ -s A.safetensors.log.tsv ] && ok || bad "pretrain outputs missing"
[ "$(tail -n +2 A.safetensors.log.tsv | wc -l)" = 6 ] && ok || bad "log should have 6 steps"
JANUSDNA_TEST_KILL_IN_CHECKPOINT=4 "$BIN" pretrain "${T[@]}" -o B.safetensors $G > killed.out 2> killed.err
[ $? -eq 137 ] && ok || bad "the crash hook did not kill the run"
[ ! -e B.safetensors ] && ok || bad "a killed run left a final model"
run ckpt_intact 0 "$BIN" info --tensors B.safetensors.ckpt     # the step-2 checkpoint survived the kill
run resumed 0 "$BIN" pretrain "${T[@]}" --resume B.safetensors.ckpt -o B.safetensors $G
"$BIN" info --tensors A.safetensors > A.tensors; "$BIN" info --tensors B.safetensors > B.tensors
cmp -s A.tensors B.tensors && ok || bad "resumed weights differ from an uninterrupted run"
# step tokens lr loss aux_loss grad_norm, and the validation bits per base (column 8)
cut -f1-6,8 A.safetensors.log.tsv > A.log; cut -f1-6,8 B.safetensors.log.tsv > B.log
[ "$(awk -F'\t' 'NR > 1 && $7 != "."' A.log | wc -l)" -ge 2 ] && ok || bad "the log has no validation rows to compare"
cmp -s A.log B.log && ok || bad "resumed log differs (steps, losses, gradient norms, validation bits)"
# resuming with another thread count is allowed, with a warning that it is no longer bit-identical
T2=("${T[@]:0:${#T[@]}-2}" -@ 2)
run resumed_threads 0 "$BIN" pretrain "${T2[@]}" --resume B.safetensors.ckpt -o C.safetensors $G
grep -q 'written with -@ 1, resuming with -@ 2' resumed_threads.err && ok || bad "no warning when resuming with another -@"
run info_training 0 "$BIN" info B.safetensors
grep -q 'meta\[janusdna_training\].*"steps":6' info_training.out && ok || bad "info shows no training metadata"

# --- two ranks on loopback reach the weights of one rank with the same global batch -------------------------
D=(--config "$DATA/train/tiny.config.json" --seq-len 64 --batch 2 --steps 4 --tokens-per-step 256 --valid-every 0
   --checkpoint-every 0 -@ 1)
run one_rank 0 "$BIN" pretrain "${D[@]}" -o one.safetensors $G
# A port the kernel says is free (bound to 0 and read back); a try that loses it to another program is retried,
# and each rank is bounded in time so that a lost peer cannot hang the suite.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for try in 1 2 3; do
  port=$(free_port)
  WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port timeout 300 "$BIN" pretrain "${D[@]}" -o two.safetensors $G > r1.out 2> r1.err &
  r1=$!
  WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port timeout 300 "$BIN" pretrain "${D[@]}" -o two.safetensors $G > r0.out 2> r0.err
  rc0=$?; wait $r1; rc1=$?
  [ $rc0 -eq 0 ] && [ $rc1 -eq 0 ] && break
  grep -qi "address already in use" r0.err r1.err || break
done
[ $rc0 -eq 0 ] && [ $rc1 -eq 0 ] && ok || bad "two-rank run failed (exit $rc0/$rc1): $(tail -2 r0.err r1.err)"
printf ">probe\n%s\n" "$(head -c 300 <(grep -v '>' $G | tr -d '\n'))" > probe.fa
"$BIN" predict -m one.safetensors probe.fa > one.tsv && "$BIN" predict -m two.safetensors probe.fa > two.tsv
same_numbers one.tsv two.tsv 1e-4 && ok || bad "two ranks differ from one rank"
# tokens, loss, aux loss and the gradient norm (a gradient off by the world size would pass under clipping and
# AdamW, but not here)
cut -f2,4,5,6 one.safetensors.log.tsv > one.log; cut -f2,4,5,6 two.safetensors.log.tsv > two.log
same_numbers one.log two.log 1e-4 && ok || bad "two-rank losses or gradient norms differ from one rank"

# --- learning: a few hundred steps on real sequence bring held-out loss well below 2 bits per base -----------
run learn 0 "$BIN" pretrain --config "$DATA/train/tiny.config.json" --seq-len 128 --batch 4 --steps 300 --lr 1e-2 \
  --valid-regions 20:35,001-40,000 --valid-every 100 --valid-windows 16 --checkpoint-every 0 -o learn.safetensors $G
bits=$(awk -F'\t' 'NR>1 && $8 != "." { b = $8 } END { print b }' learn.safetensors.log.tsv)
echo "validation bits/base after 300 steps: $bits" >&2
awk -v b="$bits" 'BEGIN { exit !(b < 1.95) }' && ok || bad "validation $bits bits/base is not below 1.95"

# --- data and model options: each one changes what the summary reports -----------------------------------------
# Window starts are counted as training bases: an interval of L bases gives L - seq_len + 1.
Q=(--config "$DATA/train/tiny.config.json" --seq-len 64 --batch 2 --steps 1 --checkpoint-every 0 --valid-every 0 -@ 1)
run testreg 0 "$BIN" pretrain "${Q[@]}" --valid-regions 20:35,001-40,000 --test-regions 20:30,001-35,000 -o t.safetensors $G
grep -q "29937 train bases in 1 interval; 32 validation and 32 test windows" testreg.err \
  && grep -Eq "test [0-9.]+ bits/base" testreg.err && ok || bad "--test-regions not held out: $(tail -2 testreg.err)"
# -R with a 4th column: train, valid and test rows; only the train rows are trained on.
printf '20\t0\t20000\ttrain\n20\t20000\t25000\tvalid\n20\t25000\t30000\ttest\n20\t30000\t40000\ttrain\n' > split.bed
run splitbed 0 "$BIN" pretrain "${Q[@]}" -R split.bed -o s.safetensors $G
grep -q "29874 train bases in 2 intervals; 32 validation and 32 test windows" splitbed.err && ok || bad "-R split column: $(tail -2 splitbed.err)"
# -m starts from the weights of a model: the first step's loss is the trained model's, not a fresh one's.
run fromweights 0 "$BIN" pretrain "${Q[@]:2}" -m learn.safetensors -o w.safetensors $G
run fresh 0 "$BIN" pretrain "${Q[@]}" -o f.safetensors $G
lw=$(awk -F'\t' 'NR == 2 { print $4 }' w.safetensors.log.tsv); lf=$(awk -F'\t' 'NR == 2 { print $4 }' f.safetensors.log.tsv)
awk -v a="$lw" -v b="$lf" 'BEGIN { exit !(a < 1.6 && b > 2.5) }' && ok || bad "-m: first loss $lw (from weights) vs $lf (fresh)"
# --preset builds the paper's configuration.
run preset 0 "$BIN" pretrain --preset 32-midattn --seq-len 64 --batch 1 --steps 1 --checkpoint-every 0 --valid-every 0 --valid-windows 2 -@ 1 -o p.safetensors $G
"$BIN" info p.safetensors > p.info
grep -q "^hidden_size.32$" p.info && grep -q "^layers.8$" p.info && grep -q "^experts.16 (top-2)$" p.info && ok || bad "--preset 32-midattn: $(head -8 p.info)"

# --- bad input fails at once, with one clear line -----------------------------------------------------------
run long 1 "$BIN" pretrain --config "$DATA/train/tiny.config.json" --seq-len 100000 -o x.safetensors $G
one_error long "seq-len 100000"
run short 1 "$BIN" pretrain --config "$DATA/train/tiny.config.json" --seq-len 5 -o x.safetensors $G
one_error short "at least 16"
# Without validation or test regions the summary says so, instead of printing nan.
run novalid 0 "$BIN" pretrain --config "$DATA/train/tiny.config.json" --seq-len 64 --batch 2 --steps 1 -@ 1 -o nv.safetensors $G
grep -q "no validation regions; no test regions" novalid.err && ! grep -qi nan novalid.err && ok || bad "summary without validation: $(cat novalid.err)"
[ -s nv.safetensors ] && [ ! -e nv.safetensors.ckpt ] && ok || bad "the checkpoint of a finished run was left without --keep-checkpoint"
printf "chr20\t0\t1000\ttrain\n" > missing.bed
run badbed 1 "$BIN" pretrain --config "$DATA/train/tiny.config.json" -R missing.bed -o x.safetensors $G
one_error badbed "missing.bed:1"
run nodir 1 "$BIN" pretrain --config "$DATA/train/tiny.config.json" -o /nonexistent/x.safetensors $G
one_error nodir "/nonexistent"
run otherconfig 1 "$BIN" pretrain --preset 32-midattn --seq-len 64 --batch 2 --steps 6 --resume A.safetensors.ckpt -o x.safetensors $G
one_error otherconfig "different model configuration"
no_file x.safetensors

finish cli-pretrain
