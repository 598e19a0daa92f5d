#!/usr/bin/env bash
# Command-line tests of finetune, evaluate (classification, variant effect, language modelling) and predict with a
# fine-tuned model: golden tables, provenance, frozen backbones, plots, and one-line errors naming file and line.
. "$(dirname "$0")/lib.sh"
E=$DATA/eval
TATA=$E/tata-mini        # 48 train / 16 dev / 24 test rows of GUE prom_300_tata
F=(--max-length 128 --batch 8 -@ 1)

# --- finetune, then evaluate against the baselines on the same split -------------------------------------------
# The reference's pooling reproduces the goldens made before the poolings were named.
run ft 0 "$BIN" finetune "${F[@]}" --keep-checkpoint --epochs 2 --rc --pooling reference -o A.safetensors $TATA
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
# -m takes one value: the dataset after it stays the positional argument (the same split as the model records).
run eval_mdir 0 "$BIN" evaluate -@ 1 -m A.safetensors --tsv Adir.eval.tsv $TATA
cmp -s Adir.eval.tsv A.eval.tsv && ok || bad "evaluate -m M DIR: $(head -2 eval_mdir.err)"
grep -q "^janusdna (fine-tuned, reference pooling, w/ rc) " eval1.out && grep -q "^k-mer logistic regression" eval1.out && grep -q "^majority class " eval1.out \
  && ok || bad "classification table lacks a row: $(cat eval1.out)"
grep -q "test n=24; 1 run(s)" eval1.out && ok || bad "table header: $(head -1 eval1.out)"
# Majority class on a balanced 12/12 test split: accuracy 0.5, MCC 0, AUROC 0.5, whatever the model does.
grep -q "^majority class	1	accuracy	0.500000" A.eval.tsv && grep -q "^majority class	1	auroc	0.500000" A.eval.tsv && ok || bad "majority baseline values"
head -c 4 A.roc.svg | grep -q "<svg" && [ "$(grep -o '<polyline' A.roc.svg | wc -l)" -ge 2 ] && ok || bad "ROC plot"
grep -q "<svg" A.confusion.svg && ok || bad "confusion plot"
python3 -c "import json,sys; j=json.load(open('A.eval.json')); c=j['runs'][0]['janusdna']['confusion']; sys.exit(0 if sum(map(sum,c))==24 else 1)" \
  && ok || bad "JSON confusion matrix does not count the 24 test sequences"

# A dataset named by a relative path is recorded relative to the model file: the model and its dataset can move
# together, and evaluate finds it from any directory.
mkdir -p proj/models && cp -r "$TATA" proj/tata
(cd proj && "$BIN" finetune "${F[@]}" --freeze-backbone --epochs 1 -o models/R.safetensors tata > ../rel.out 2> ../rel.err) && ok || bad "finetune with a relative dataset: $(tail -1 rel.err)"
mv proj moved
run eval_moved 0 "$BIN" evaluate -@ 1 -m moved/models/R.safetensors --tsv moved.tsv
grep -q "moved/tata" eval_moved.out && ok || bad "evaluate did not find the dataset next to the moved model: $(head -3 eval_moved.out)"
# Two seeds: mean ± sd over runs; each run re-made from the split its model records.
run ft2 0 "$BIN" finetune "${F[@]}" --epochs 2 --rc --pooling reference --seed 2 -o B.safetensors $TATA
[ ! -e B.safetensors.ckpt ] && ok || bad "the checkpoint of a finished run was left without --keep-checkpoint"
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

# --- learning on a planted signal: class 1 carries GGGGGGGG in the middle of random sequence, class 0 AAAAAAAA -------
# (the goldens above only freeze a 2-epoch run on 48 real sequences, which is at chance; this must learn)
planted() { awk -v n="$2" -v seed="$3" 'BEGIN { srand(seed); print "sequence,label"
  for (i = 0; i < n; i++) { y = i % 2; s = ""; for (j = 0; j < 64; j++) s = s substr("ACGT", int(rand() * 4) + 1, 1)
    s = substr(s, 1, 28) (y ? "GGGGGGGG" : "AAAAAAAA") substr(s, 37); print s "," y } }' > "$1"; }
mkdir -p planted; planted planted/train.csv 96 1; planted planted/dev.csv 16 2; planted planted/test.csv 32 3
PL=(--batch 16 -@ 1)
run pl_full 0 "$BIN" finetune "${PL[@]}" --epochs 8 --lr 1e-2 -o PF.safetensors planted
run pl_probe 0 "$BIN" finetune "${PL[@]}" --freeze-backbone --epochs 20 --lr 1e-2 -o PP.safetensors planted
for m in PF PP; do
  run pl_eval_$m 0 "$BIN" evaluate -@ 1 -m $m.safetensors --tsv $m.eval.tsv --json $m.eval.json
  awk -F'\t' '$2 == "1" && $1 ~ /^janusdna/ { v[$3] = $4 } $2 == "1" && $1 == "majority class" && $3 == "accuracy" { maj = $4 }
    END { exit !(v["accuracy"] >= 0.85 && v["auroc"] >= 0.9 && maj == 0.5) }' $m.eval.tsv \
    && ok || bad "$m did not learn the planted signal: $(grep -E '	1	(accuracy|auroc)' $m.eval.tsv | tr '\n' ' ')"
done
# predict on the 32 test sequences: its predicted classes are the column sums of evaluate's confusion matrix.
tail -n +2 planted/test.csv | awk -F, '{ print ">t" NR; print $1 }' > planted.fa
run pl_pred 0 "$BIN" predict -@ 1 -m PP.safetensors planted.fa
python3 - PP.eval.json pl_pred.out <<'PY' && ok || bad "predict's classes disagree with evaluate's confusion matrix"
import json, sys
c = json.load(open(sys.argv[1]))['runs'][0]['janusdna']['confusion']
rows = [l.split('\t') for l in open(sys.argv[2]).read().split('\n')[1:] if l]
pred = [sum(1 for r in rows if r[1] == k) for k in ('0', '1')]
sys.exit(0 if len(rows) == 32 and pred == [c[0][0] + c[1][0], c[0][1] + c[1][1]] else 1)
PY

# --- --metric, --patience ---------------------------------------------------------------------------------------
run pl_auroc 0 "$BIN" finetune "${PL[@]}" --freeze-backbone --epochs 4 --lr 1e-2 --metric auroc -o PA.safetensors planted
head -1 PA.safetensors.log.tsv | grep -q "valid_auroc" && \
  awk -F'\t' 'NR > 1 { if ($7 > best) { best = $7; want = $1 } if ($9 == "*") got = $1 } END { exit !(got == want) }' PA.safetensors.log.tsv \
  && ok || bad "--metric auroc: the best epoch is not the one of highest validation AUROC"
# With patience 2 the run stops 2 epochs after its best one, long before --epochs 40.
run pl_pat 0 "$BIN" finetune "${PL[@]}" --freeze-backbone --epochs 40 --lr 1e-2 --patience 2 -o PT.safetensors planted
awk -F'\t' 'NR > 1 { n = $1; if ($9 == "*") best = $1 } END { exit !(n == best + 2 && n < 40) }' PT.safetensors.log.tsv \
  && ok || bad "--patience 2: $(tail -n +2 PT.safetensors.log.tsv | cut -f1,7,9 | tr '\n' ' ')"

# --- columns by name, and the validation split's seed -----------------------------------------------------------
mkdir -p renamed
for f in train dev test; do awk -F, -v OFS=, 'NR == 1 { print "id,cls,dna"; next } { print "r" NR, $2, $1 }' planted/$f.csv > renamed/$f.csv; done
run pl_cols 0 "$BIN" finetune "${PL[@]}" --freeze-backbone --epochs 2 --lr 1e-2 --seq-column dna --label-column cls -o PC.safetensors renamed
run pl_cols_ref 0 "$BIN" finetune "${PL[@]}" --freeze-backbone --epochs 2 --lr 1e-2 -o PR.safetensors planted
"$BIN" info --tensors PC.safetensors > PC.t; "$BIN" info --tensors PR.safetensors > PR.t
cmp -s PC.t PR.t && ok || bad "--seq-column/--label-column: another model than from the same data under the usual names"
# One training file, validation drawn from it: the same --split-seed gives the same model, another one another.
for s in 1 1b 2; do
  run pl_split_$s 0 "$BIN" finetune "${PL[@]}" --freeze-backbone --epochs 2 --lr 1e-2 --valid-fraction 0.25 --split-seed ${s%b} -o PS$s.safetensors planted/train.csv
  "$BIN" info --tensors PS$s.safetensors > PS$s.t
done
cmp -s PS1.t PS1b.t && ! cmp -s PS1.t PS2.t && ok || bad "--split-seed: not deterministic, or without effect"

# --- a crash mid-epoch, then --resume from the --checkpoint-every checkpoint: the uninterrupted run's model ------
# 96 sequences in batches of 16: 6 steps per epoch; the crash comes right after the checkpoint of step 8.
R=("${PL[@]}" --epochs 2 --lr 1e-2 --checkpoint-every 4)
run pl_straight 0 "$BIN" finetune "${R[@]}" -o S.safetensors planted
JANUSDNA_TEST_KILL_AFTER_CHECKPOINT=8 "$BIN" finetune "${R[@]}" -o K.safetensors planted > killed.out 2> killed.err
[ $? -eq 137 ] && [ ! -e K.safetensors ] && [ -s K.safetensors.ckpt ] && ok || bad "the crash hook did not stop the run after step 8"
[ "$(tail -n +2 K.safetensors.log.tsv | wc -l)" = 1 ] && ok || bad "the crashed run should have logged 1 epoch"
run pl_resume 0 "$BIN" finetune "${R[@]}" --resume K.safetensors.ckpt -o K.safetensors planted
"$BIN" info --tensors S.safetensors > S.t; "$BIN" info --tensors K.safetensors > K.t
cmp -s S.t K.t && ok || bad "resumed from a mid-epoch checkpoint: weights differ from the uninterrupted run"
cmp -s <(cut -f1-7,9 S.safetensors.log.tsv) <(cut -f1-7,9 K.safetensors.log.tsv) && ok || bad "resumed log differs"

# --- other dataset formats, as distributed ---------------------------------------------------------------------
run gb_dir 0 "$BIN" finetune "${F[@]}" --epochs 1 --valid-fraction 0.34 -o G.safetensors $E/gb-seq
run bed 0 "$BIN" finetune "${F[@]}" --epochs 1 --folds 2 --fold 2 -f $E/ref.fa -o BED.safetensors $E/regions.bed
grep -q "validation = fold 2 of 2" bed.err && ok || bad "folds not reported: $(cat bed.err)"
# evaluate rebuilds the fold from the model's metadata; --test (and -f) come from the command line.
run ev_bed 0 "$BIN" evaluate -@ 1 -m BED.safetensors --test $E/regions.bed -f $E/ref.fa
grep -q "validation = fold 2 of 2.*test n=4" ev_bed.out && ok || bad "evaluate did not rebuild the fold: $(head -1 ev_bed.out)"
# A chr20 BED against the 20 reference with --chr-prefix: the same sequences, hence the same model and numbers; the
# model records the option, so evaluate needs it only for files it is given anew (here --test).
sed 's/^20\t/chr20\t/' $E/regions.bed > chr.bed
run bed_chr 0 "$BIN" finetune "${F[@]}" --epochs 1 --folds 2 --fold 2 -f $E/ref.fa --chr-prefix -o BEDchr.safetensors chr.bed
run ev_bed_tsv 0 "$BIN" evaluate -@ 1 -m BED.safetensors --test $E/regions.bed -f $E/ref.fa --tsv bed.tsv
run ev_chr_tsv 0 "$BIN" evaluate -@ 1 -m BEDchr.safetensors --test chr.bed -f $E/ref.fa --tsv bedchr.tsv
cmp -s bed.tsv bedchr.tsv && ok || bad "finetune/evaluate of a chr20 BED with --chr-prefix differ: $(head -2 ev_chr_tsv.err)"
run bed_nochr 1 "$BIN" finetune "${F[@]}" --epochs 1 -f $E/ref.fa -o never.safetensors chr.bed; one_error bed_nochr "chr20"
no_file never.safetensors

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
