#!/usr/bin/env bash
# Command-line tests of interrupts: SIGINT or SIGTERM in the middle of a run removes every temporary file (and
# its index), prints one line, and exits 128 + signal; pretrain's line names the --resume command.
. "$(dirname "$0")/lib.sh"
REF=$DATA/variants/ref.fa
cp "$REF" "$REF.fai" .
REF=ref.fa
set -m  # background jobs in their own process groups: a non-interactive shell starts them with SIGINT ignored

# wait_for GLOB PID: waits (up to 60 s) until a file matching GLOB exists while PID still runs.
wait_for() {
  local i
  for i in $(seq 600); do
    if compgen -G "$1" > /dev/null; then return 0; fi
    kill -0 "$2" 2> /dev/null || return 1
    sleep 0.1
  done
  return 1
}
# interrupted NAME SIGNAL STATUS OUT PID: once PID has a temporary file OUT*.tmp.*, SIGNAL makes it exit STATUS
# with one line on stderr, and no file OUT* is left (neither temporary nor final, nor an index).
interrupted() {
  local name=$1 sig=$2 want=$3 out=$4 pid=$5
  if ! wait_for "$out*.tmp.*" "$pid"; then bad "$name: no temporary file $out*.tmp.* appeared"; kill -9 "$pid" 2> /dev/null; return; fi
  kill -"$sig" "$pid"; wait "$pid"; local rc=$?
  [ $rc -eq "$want" ] && ok || bad "$name: exit $rc after SIG$sig, expected $want"
  if compgen -G "$out*" > /dev/null; then bad "$name: left $(ls "$out"*)"; else ok; fi
  one_error "$name" "interrupted\|terminated"
}
SLOW=(--window 64 --batch 1 --rc -@ 1)

# track: bedGraph.gz (+ .tbi) and several tracks at once
"$BIN" track "${SLOW[@]}" -r 20:1-300000 -t all -o tr "$REF" > track.out 2> track.err & pid=$!
interrupted track INT 130 tr. $pid
"$BIN" track "${SLOW[@]}" -r 20:1-300000 -o one.bedgraph.gz "$REF" > term.out 2> term.err & pid=$!
interrupted term TERM 143 one.bedgraph.gz $pid
# track --all-snvs with an index
"$BIN" track "${SLOW[@]}" --all-snvs -W -r 20:1-300000 -O z -o snvs.vcf.gz "$REF" > snvs.out 2> snvs.err & pid=$!
interrupted snvs INT 130 snvs.vcf.gz $pid
# embed, per base NPY
awk 'BEGIN { for (i = 0; i < 300; i++) print "20\t" i * 1000 "\t" i * 1000 + 1000 }' > kb.bed
"$BIN" embed "${SLOW[@]}" -R kb.bed --pool none -O npy -o emb "$REF" > embed.out 2> embed.err & pid=$!
interrupted embed INT 130 emb. $pid

# score-variants and predict read a pipe that stays open: they are waiting for more input when the signal comes
# (htslib reads a pipe in 64 KiB blocks, so more than that is sent first).
mkfifo vcf.fifo fa.fifo
"$BIN" score-variants -f "$REF" --chunk 1 -o sv.vcf.gz - < vcf.fifo > sv.out 2> sv.err & pid=$!
exec 3> vcf.fifo
{ grep '^#' "$DATA/variants/clinvar.vcf"; for i in $(seq 30); do grep -v '^#' "$DATA/variants/clinvar.vcf"; done; } >&3 2> /dev/null &
interrupted sv INT 130 sv.vcf.gz $pid
exec 3>&-
"$BIN" predict -o pred.tsv - < fa.fifo > predict.out 2> predict.err & pid=$!
exec 3> fa.fifo
{ for i in $(seq 4); do echo ">r$i"; sed -n 2,2000p "$REF"; done; } >&3 2> /dev/null &
interrupted predict TERM 143 pred.tsv $pid
exec 3>&-

# pretrain: the line says how to resume from the last checkpoint, which is kept
G=$DATA/train/chr20-40k.fa
"$BIN" pretrain --config "$DATA/train/tiny.config.json" --seq-len 64 --batch 2 --steps 100000 --checkpoint-every 1 \
  -@ 1 -o pt.safetensors "$G" > pretrain.out 2> pretrain.err & pid=$!
if wait_for pt.safetensors.ckpt $pid; then
  kill -INT $pid; wait $pid; rc=$?
  [ $rc -eq 130 ] && ok || bad "pretrain: exit $rc after SIGINT, expected 130"
  grep -q "interrupted (SIGINT).*janusdna pretrain --resume pt.safetensors.ckpt" pretrain.err && ok || bad "pretrain: $(tail -1 pretrain.err)"
  [ -s pt.safetensors.ckpt ] && ! compgen -G "pt.safetensors.ckpt.tmp.*" > /dev/null && [ ! -e pt.safetensors ] && ok \
    || bad "pretrain: checkpoint missing or temporary files left"
else
  bad "pretrain wrote no checkpoint"; kill -9 $pid
fi

finish interrupt
