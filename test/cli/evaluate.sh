#!/usr/bin/env bash
# Command-line tests of evaluate's options that the fine-tuning tests do not reach: --lm over several windows against
# the per-window sum computed independently with predict, -R, --window, --train-regions, --markov-train, -o; and
# --score / --direction for variant effects against an AUROC computed here; options of another mode refused.
. "$(dirname "$0")/lib.sh"
cp "$DATA/train/chr20-40k.fa" "$DATA/train/chr20-40k.fa.fai" .
G=chr20-40k.fa
value() { awk -F'\t' -v m="$1" -v k="$2" '$1 == m && $2 == "1" && $3 == k { print $4 }' "$3"; }

# --- --lm on 500 bases with --window 128: non-overlapping windows 0-128, 128-256, 256-384, and the last one moved
# back to keep 128 bases of context (372-500) with only its new bases (384-500) scored. Each window here is a FASTA
# record that predict scores in one pass; the bits are summed over the scored bases.
run lm128 0 "$BIN" evaluate -@ 1 --lm $G -r 20:30,001-30,500 --window 128 --tsv lm128.tsv
S=$(samtools faidx $G 20:30001-30500 | grep -v '>' | tr -d '\n')
printf '>w0\n%s\n>w1\n%s\n>w2\n%s\n>w3\n%s\n' "${S:0:128}" "${S:128:128}" "${S:256:128}" "${S:372:128}" > windows.fa
run pred 0 "$BIN" predict -@ 1 windows.fa
want=$(awk -F'\t' 'NR > 1 && !($1 == "w3" && $2 <= 12) { i = index("ACGT", $3); if (i == 0) next
         b -= log($(3 + i)) / log(2); n++ } END { printf "%.6f %d", b / n, n }' pred.out)
got=$(value janusdna bits_per_base lm128.tsv)
[ "${want#* }" = 500 ] && [ "$(value janusdna bases lm128.tsv | cut -d. -f1)" = 500 ] \
  && awk -v a="${want% *}" -v b="$got" 'BEGIN { exit !((a - b) ^ 2 < 1e-8) }' && ok || bad "--lm over 4 windows: $got, per-window sum $want"
# --window changes the model's bits (and nothing else); -R BED is the same region as -r.
run lm64 0 "$BIN" evaluate -@ 1 --lm $G -r 20:30,001-30,500 --window 64 --tsv lm64.tsv
[ "$(value janusdna bits_per_base lm64.tsv)" != "$got" ] && [ "$(grep -v '^janusdna' lm64.tsv)" = "$(grep -v '^janusdna' lm128.tsv)" ] \
  && ok || bad "--window had no effect, or changed the baselines"
printf '20\t30000\t30500\n' > one.bed
run lmR 0 "$BIN" evaluate -@ 1 --lm $G -R one.bed --window 128 --tsv lmR.tsv
cmp -s lmR.tsv lm128.tsv && ok || bad "-R BED differs from -r"
# --train-regions: the Markov baseline is counted on those bases only (the header says how many); the model's row
# does not change.
run lmtrain 0 "$BIN" evaluate -@ 1 --lm $G -r 20:30,001-30,500 --window 128 --train-regions 20:1-10,000 --tsv lmtrain.tsv
grep -q "Markov counted on 10000 bases" lmtrain.out && [ "$(grep '^janusdna' lmtrain.tsv)" = "$(grep '^janusdna' lm128.tsv)" ] \
  && ! cmp -s <(grep Markov lmtrain.tsv) <(grep Markov lm128.tsv) && ok || bad "--train-regions: $(head -1 lmtrain.out)"
# --markov-train in records mode: counted on another FASTA, so no longer in-sample.
samtools faidx $G 20:1-20000 > train.fa
run lmrec 0 "$BIN" evaluate -@ 1 --lm windows.fa --tsv lmrec.tsv
run lmrec_t 0 "$BIN" evaluate -@ 1 --lm windows.fa --markov-train train.fa --tsv lmrec_t.tsv
grep -q "in-sample" lmrec.out && ! grep -q "in-sample" lmrec_t.out && grep -q "20000 bases" lmrec_t.out \
  && ! cmp -s <(grep Markov lmrec.tsv) <(grep Markov lmrec_t.tsv) && ok || bad "--markov-train: $(head -1 lmrec_t.out)"
# -o FILE holds the table that goes to stdout without it, and stdout stays empty.
run lm_o 0 "$BIN" evaluate -@ 1 --lm $G -r 20:30,001-30,500 --window 128 -o table.txt
[ ! -s lm_o.out ] && cmp -s table.txt lm128.out && ok || bad "-o: $(head -2 table.txt)"

# --- variant effects: --score picks the INFO tag, --direction the end of it; AUROC recomputed here ----------------
V=$DATA/variants
run sv 0 "$BIN" score-variants -@ 1 -f $V/ref.fa -o scored.vcf.gz $V/clinvar.vcf
EV=(--variants scored.vcf.gz --label-info LABEL --positive Pathogenic -f $V/ref.fa --bootstrap 20)
# auroc TAG lower|higher: P(positive's score is more extreme in the given direction than a negative's), ties 1/2.
auroc() { bcftools query -f "%INFO/LABEL\t%INFO/$1\n" scored.vcf.gz | awk -F'\t' -v d="$2" '
  { s = (d == "lower") ? -$2 : $2; if ($1 == "Pathogenic") p[++np] = s; else q[++nq] = s }
  END { for (i = 1; i <= np; i++) for (j = 1; j <= nq; j++) a += (p[i] > q[j]) ? 1 : (p[i] == q[j]) ? 0.5 : 0
        printf "%.6f", a / (np * nq) }'; }
for tag in JANUS_LLR JANUS_PLL; do
  for dir in lower higher; do
    run ev_${tag}_$dir 0 "$BIN" evaluate "${EV[@]}" --score $tag --direction $dir --tsv ev_${tag}_$dir.tsv
    got=$(value "janusdna ($tag)" auroc ev_${tag}_$dir.tsv); want=$(auroc $tag $dir)
    awk -v a="$got" -v b="$want" 'BEGIN { exit !(a != "" && (a - b) ^ 2 < 1e-10) }' && ok || bad "--score $tag --direction $dir: AUROC $got, expected $want"
  done
done
run e_dir 1 "$BIN" evaluate "${EV[@]}" --direction up; one_error e_dir "direction"
run e_score 1 "$BIN" evaluate "${EV[@]}" --score NOPE; one_error e_score "NOPE"

# --- contig names and the reference, as in every command: -f names the reference in each mode (DATA too with --lm),
# and --chr-prefix matches chr20 regions or VCF records to the reference's 20, with the same numbers -------------
run lm_f 0 "$BIN" evaluate -@ 1 --lm -f $G -r chr20:30,001-30,500 --chr-prefix --window 128 --tsv lm_f.tsv
cmp -s lm_f.tsv lm128.tsv && ok || bad "--lm -f REF -r chr20:... --chr-prefix differs: $(head -2 lm_f.err)"
run lm_two 1 "$BIN" evaluate --lm -f $G $V/ref.fa -r 20:1-100; one_error lm_two "two references"
bcftools view -h scored.vcf.gz | sed 's/^##contig=<ID=20,/##contig=<ID=chr20,/; s/^##reference=.*//' | grep -v '^$' > chr.vcf
bcftools view -H scored.vcf.gz | sed 's/^20\t/chr20\t/' >> chr.vcf
run ev_chr 0 "$BIN" evaluate "${EV[@]/scored.vcf.gz/chr.vcf}" --chr-prefix --tsv ev_chr.tsv
run ev_20 0 "$BIN" evaluate "${EV[@]}" --tsv ev_20.tsv
cmp -s ev_chr.tsv ev_20.tsv && ok || bad "--variants with chr20 records and --chr-prefix differs: $(head -2 ev_chr.err)"
run ev_nochr 1 "$BIN" evaluate "${EV[@]/scored.vcf.gz/chr.vcf}"; one_error ev_nochr "chr20"

# --- the modes are separate: an option of another mode is refused before any work, in one line naming it --------
run e_mode_lm 1 "$BIN" evaluate -@ 1 --lm $G -r 20:30,001-30,500 --label-id X
one_error e_mode_lm "^janusdna evaluate: --label-id belongs to evaluate --variants$"
run e_mode_var 1 "$BIN" evaluate "${EV[@]}" --window 128
one_error e_mode_var "^janusdna evaluate: --window belongs to evaluate --lm$"
run e_mode_cls 1 "$BIN" evaluate -m A.safetensors --bootstrap 10 -o never.txt
one_error e_mode_cls "^janusdna evaluate: --bootstrap belongs to evaluate --variants$"; no_file never.txt
finish cli-evaluate
