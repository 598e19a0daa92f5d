#!/usr/bin/env bash
# Command-line tests of finetune, evaluate (classification, variant effect, language modelling) and predict with a
# fine-tuned model: golden tables, provenance, frozen backbones, plots, and one-line errors naming file and line.
. "$(dirname "$0")/lib.sh"
E=$DATA/eval
TATA=$E/tata-mini        # 48 train / 16 dev / 24 test rows of GUE prom_300_tata
F=(--max-length 128 --batch 8 -@ 1)

# --- finetune, then evaluate against the baselines on the same split -------------------------------------------
# The reference's pooling reproduces the goldens made before the poolings were named.
run ft 0 "$BIN" finetune "${F[@]}" --epochs 2 --rc --pooling reference -o A.safetensors $TATA
[ -s A.safetensors ] && [ -s A.safetensors.ckpt ] && ok || bad "finetune outputs missing"
[ "$(tail -n +2 A.safetensors.log.tsv | wc -l)" = 2 ] && ok || bad "log should have 2 epochs"
grep -q "classes 0,1; train 48, validation 16, test 24; length 128; full fine-tuning, reference pooling, w/ rc" ft.err && ok || bad "finetune summary: $(cat ft.err)"
# resuming the finished run with another -@ is allowed (nothing left to do) and warns that it is not bit-identical
run ft_threads 0 "$BIN" finetune --max-length 128 --batch 8 -@ 2 --epochs 2 --rc --pooling reference --resume A.safetensors.ckpt -o A2.safetensors $TATA
grep -q 'written with -@ 1, resuming with -@ 2' ft_threads.err && ok || bad "no warning when resuming with another -@"
run info_ft 0 "$BIN" info A.safetensors
grep -q 'meta\[janusdna_classifier\].*"classes":\["0","1"\]' info_ft.out && ok || bad "info shows no classifier metadata"
grep -q '"pooling":"reference","pooling_version":2' info_ft.out && ok || bad "info shows no pooling: $(grep classifier info_ft.out)"
run eval1 0 "$BIN" evaluate -@ 1 -m A.safetensors --tsv A.eval.tsv --json A.eval.json --plot A
close finetune_eval.tsv A.eval.tsv
grep -q "^janusdna (fine-tuned, reference pooling, w/ rc) " eval1.out && grep -q "^k-mer logistic regression" eval1.out && grep -q "^majority class " eval1.out \
  && ok || bad "classification table lacks a row: $(cat eval1.out)"
grep -q "test n=24; 1 run(s)" eval1.out && ok || bad "table header: $(head -1 eval1.out)"
# Majority class on a balanced 12/12 test split: accuracy 0.5, MCC 0, AUROC 0.5, whatever the model does.
grep -q "^majority class	1	accuracy	0.500000" A.eval.tsv && grep -q "^majority class	1	auroc	0.500000" A.eval.tsv && ok || bad "majority baseline values"
head -c 4 A.roc.svg | grep -q "<svg" && [ "$(grep -o '<polyline' A.roc.svg | wc -l)" -ge 2 ] && ok || bad "ROC plot"
grep -q "<svg" A.confusion.svg && ok || bad "confusion plot"
python3 -c "import json,sys; j=json.load(open('A.eval.json')); c=j['runs'][0]['janusdna']['confusion']; sys.exit(0 if sum(map(sum,c))==24 else 1)" \
  && ok || bad "JSON confusion matrix does not count the 24 test sequences"

# Two seeds: mean ± sd over runs; each run re-made from the split its model records.
run ft2 0 "$BIN" finetune "${F[@]}" --epochs 2 --rc --pooling reference --seed 2 -o B.safetensors $TATA
run eval2 0 "$BIN" evaluate -@ 1 -m A.safetensors -m B.safetensors --json AB.json
grep -q "2 run(s)" eval2.out && grep -q " ± " eval2.out && ok || bad "two runs give no mean ± sd: $(cat eval2.out)"
python3 -c "import json,sys; j=json.load(open('AB.json')); sys.exit(0 if j['summary']['janusdna (fine-tuned, reference pooling, w/ rc)']['accuracy']['n']==2 else 1)" \
  && ok || bad "JSON summary lacks n=2"

# --- predict: a fine-tuned model classifies whole records -----------------------------------------------------
tail -n +2 $TATA/test.csv | head -4 | awk -F, '{print ">s"NR"\n"$1}' > four.fa
run pred 0 "$BIN" predict -@ 1 -m A.safetensors four.fa
close finetune_predict.tsv pred.out
# The same probabilities as evaluate computes for those sequences: predicted classes agree with the JSON's count.
[ "$(tail -n +2 pred.out | wc -l)" = 4 ] && ok || bad "predict wrote $(wc -l < pred.out) lines"

# --- a model file written before the poolings were named -------------------------------------------------------
# Older janusdna wrote "pooling": "mean" (then the reference's mean over the padded input) and no "pooling_version";
# such a file is read as the reference's pooling: the same predictions and table as A, which used it by name.
# relabel IN OUT old|mean: A's weights with old metadata, or labelled as today's "mean" (version 2).
relabel() {
python3 - "$@" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
c = json.loads(h['__metadata__']['janusdna_classifier'])
assert c['pooling_version'] == 2 and c['pooling'] == 'reference'
c['pooling'] = 'mean'
if sys.argv[3] == 'old': c.pop('pooling_version'); c['protocol']['options'].pop('pooling')
h['__metadata__']['janusdna_classifier'] = json.dumps(c, separators=(',', ':'))
t = json.dumps(h, separators=(',', ':')).encode(); t += b' ' * (n - len(t))  # same header size, space-padded
assert len(t) == n
open(sys.argv[2], 'wb').write(b[:8] + t + b[8 + n:])
PY
}
relabel A.safetensors Old.safetensors old; relabel A.safetensors Mean.safetensors mean
"$BIN" info Old.safetensors | grep -q '"pooling":"mean","protocol"' && ok || bad "Old.safetensors lacks the old metadata"
# Records of different lengths (A's input length is 128), so that the two poolings differ.
awk 'NR % 2 == 0 { n = NR / 2; print ">v" n; print substr($0, 1, n == 1 ? 30 : n == 2 ? 70 : n == 3 ? 128 : 300) }' four.fa > varied.fa
run pred_ref 0 "$BIN" predict -@ 1 -m A.safetensors varied.fa
run pred_old 0 "$BIN" predict -@ 1 -m Old.safetensors varied.fa
run pred_mean 0 "$BIN" predict -@ 1 -m Mean.safetensors varied.fa
cmp -s pred_ref.out pred_old.out && ok || bad "an old model file predicts otherwise: $(diff pred_ref.out pred_old.out | head -3)"
cmp -s pred_ref.out pred_mean.out && bad "mean and reference pooling predict the same: the test above proves nothing" || ok
run eval_old 0 "$BIN" evaluate -@ 1 -m Old.safetensors --tsv Old.eval.tsv
close finetune_eval.tsv Old.eval.tsv

# --- linear probe: the backbone is not touched ----------------------------------------------------------------
run probe 0 "$BIN" finetune "${F[@]}" --freeze-backbone --epochs 3 --lr 1e-2 -o P.safetensors $TATA
"$BIN" info --tensors P.safetensors | grep -v '^classifier\.' > P.tensors
"$BIN" info --tensors "$JANUSDNA_MODEL" > M.tensors
cmp -s P.tensors M.tensors && ok || bad "--freeze-backbone changed the backbone"
"$BIN" info --tensors A.safetensors | grep -v '^classifier\.' > A.tensors
cmp -s A.tensors M.tensors && bad "full fine-tuning left the backbone unchanged" || ok
run eval_probe 0 "$BIN" evaluate -@ 1 -m P.safetensors
grep -q "^janusdna (linear probe, mean pooling) " eval_probe.out && ok || bad "linear probe not named in the table"

# --- poolings: each is recorded and read back; models of two poolings are not averaged as one method ------------
for pool in center mean+max; do
  run probe_$pool 0 "$BIN" finetune "${F[@]}" --freeze-backbone --epochs 1 --pooling $pool -o P.$pool.safetensors $TATA
  grep -q "frozen backbone (linear probe), $pool pooling" probe_$pool.err && ok || bad "$pool not in the summary: $(cat probe_$pool.err)"
done
"$BIN" info --tensors P.mean+max.safetensors | grep -q '^classifier.weight.*\[2,64\]' && ok || bad "mean+max head is not [2, 2H]: $("$BIN" info --tensors P.mean+max.safetensors | grep classifier)"
run eval_mixed 0 "$BIN" evaluate -@ 1 -m P.safetensors -m P.center.safetensors
grep -q "^janusdna (mixed protocols) " eval_mixed.out && ok || bad "two poolings averaged as one method: $(cat eval_mixed.out)"
# an unknown pooling is a usage error (CLI11's message and its "Try --help" line), and writes nothing
run e_pool 1 "$BIN" finetune "${F[@]}" --pooling max -o X.safetensors $TATA
grep -q -- "--pooling: max not in {mean,center,mean+max,reference}" e_pool.err && ok || bad "e_pool: $(cat e_pool.err)"
no_file X.safetensors

# --- other dataset formats, as distributed ---------------------------------------------------------------------
run gb_dir 0 "$BIN" finetune "${F[@]}" --epochs 1 --valid-fraction 0.34 -o G.safetensors $E/gb-seq
run bed 0 "$BIN" finetune "${F[@]}" --epochs 1 --folds 2 --fold 2 -f $E/ref.fa -o BED.safetensors $E/regions.bed
grep -q "validation = fold 2 of 2" bed.err && ok || bad "folds not reported: $(cat bed.err)"
# evaluate rebuilds the fold from the model's metadata; --test (and -f) come from the command line.
run ev_bed 0 "$BIN" evaluate -@ 1 -m BED.safetensors --test $E/regions.bed -f $E/ref.fa
grep -q "validation = fold 2 of 2.*test n=4" ev_bed.out && ok || bad "evaluate did not rebuild the fold: $(head -1 ev_bed.out)"

# --- zero-shot variant effect and language modelling ------------------------------------------------------------
V=$DATA/variants
run sv 0 "$BIN" score-variants -@ 1 -f $V/ref.fa -o scored.vcf.gz $V/clinvar.vcf
run ev_var 0 "$BIN" evaluate --variants scored.vcf.gz --label-info LABEL --positive Pathogenic -f $V/ref.fa --bootstrap 200 --tsv var.tsv
close finetune_variants.tsv var.tsv
grep -q "27 positive, 21 negative" ev_var.out && ok || bad "variant counts: $(head -2 ev_var.out)"
run ev_var_id 0 "$BIN" evaluate --variants scored.vcf.gz --label-id '^Pathogenic' -f $V/ref.fa --bootstrap 200 --tsv var_id.tsv
cmp -s var.tsv var_id.tsv && ok || bad "--label-id and --label-info disagree on the same labels"
# A measured numeric effect (here the integer INFO/DP of samples.vcf): Spearman correlation, next to the baseline's.
run sv2 0 "$BIN" score-variants -@ 1 -f $V/ref.fa -o samples.scored.vcf $V/samples.vcf
run ev_eff 0 "$BIN" evaluate --variants samples.scored.vcf --effect-info DP -f $V/ref.fa --tsv eff.tsv
[ "$(grep -c '	1	spearman	-\?[0-9]' eff.tsv)" = 2 ] && ok || bad "no Spearman rows: $(cat eff.tsv)"
cp $DATA/train/chr20-40k.fa $DATA/train/chr20-40k.fa.fai .
run ev_lm 0 "$BIN" evaluate -@ 1 --lm chr20-40k.fa -r 20:30,001-31,000 --tsv lm.tsv --json lm.json
close finetune_lm.tsv lm.tsv
grep -q "^uniform	1	bits_per_base	2.000000" lm.tsv && ok || bad "uniform row"
# Records mode: the same bases as a FASTA record give the model the same bits (the baseline is then in-sample).
samtools faidx chr20-40k.fa 20:30001-31000 > rec.fa
run ev_lm_rec 0 "$BIN" evaluate -@ 1 --lm rec.fa --tsv lmrec.tsv
[ "$(grep '^janusdna	1	bits' lm.tsv)" = "$(grep '^janusdna	1	bits' lmrec.tsv)" ] && ok || bad "records mode differs from regions mode"
grep -q "1 record(s), 1000 bases scored.*in-sample" ev_lm_rec.out && ok || bad "records-mode header: $(head -1 ev_lm_rec.out)"

# --- bad input: one line naming the file (and line), non-zero exit, nothing left behind --------------------------
printf 'seq,label\nACGT,0\n' > nocol.csv
run e_col 1 "$BIN" finetune "${F[@]}" --epochs 2 -o X.safetensors nocol.csv; one_error e_col "nocol.csv:1: no column 'sequence'"
printf 'sequence,label\nACGT,0\nACXT,1\n' > badchar.csv
run e_char 1 "$BIN" finetune "${F[@]}" --epochs 2 -o X.safetensors badchar.csv; one_error e_char "badchar.csv:3"
printf 'sequence,label\nACGTAAC,2\n' > unknown.csv
run e_label 1 "$BIN" finetune "${F[@]}" --epochs 2 -o X.safetensors $TATA/train.csv --valid $TATA/dev.csv --test unknown.csv
one_error e_label "unknown.csv:2: label '2' does not occur in the training split"
printf 'sequence,label\n' > empty.csv
run e_empty 1 "$BIN" finetune "${F[@]}" --epochs 2 -o X.safetensors $TATA/train.csv --test empty.csv; one_error e_empty "empty.csv"
mkdir -p emptydir
run e_dir 1 "$BIN" finetune "${F[@]}" --epochs 2 -o X.safetensors emptydir; one_error e_dir "emptydir"
run e_outdir 1 "$BIN" finetune "${F[@]}" --epochs 2 -o nodir/X.safetensors $TATA; one_error e_outdir "does not exist"
no_file X.safetensors
run e_resume 1 "$BIN" finetune "${F[@]}" --epochs 2 --lr 5e-3 --resume A.safetensors.ckpt -o X.safetensors $TATA
one_error e_resume "other options"
run e_notft 1 "$BIN" evaluate -m "$JANUSDNA_MODEL" $TATA; one_error e_notft "not a fine-tuned model"
run e_nomodel 1 "$BIN" evaluate $TATA; one_error e_nomodel "fine-tuned models (-m"
run e_nolabel 1 "$BIN" evaluate --variants scored.vcf.gz -f $V/ref.fa; one_error e_nolabel "needs labels"
run e_notag 1 "$BIN" evaluate --variants scored.vcf.gz --label-info NOPE -f $V/ref.fa; one_error e_notag "INFO/NOPE is not declared"
run e_lmcontig 1 "$BIN" evaluate --lm chr20-40k.fa -r chr20:1-100; one_error e_lmcontig "chr20"
finish finetune
