#!/usr/bin/env bash
# Empty inputs behave alike in every subcommand (README, conventions): an input with no records is an error that
# names the file, with exit 1 and no output file; the one exception is a VCF/BCF header without records, which is
# a valid VCF and gives a valid VCF without records, as bcftools does (a shard of a split VCF can be empty).
. "$(dirname "$0")/lib.sh"
REF=$DATA/variants/ref.fa
: > empty.fa
: > empty.bed
printf '# only a comment\n' > comment.bed
grep '^#' "$DATA/variants/clinvar.vcf" > header.vcf

run predict 1 "$BIN" predict -o p.tsv empty.fa;                              one_error predict "empty.fa"; no_file p.tsv
run embed_rec 1 "$BIN" embed --records empty.fa -o e.bed;                    one_error embed_rec "empty.fa"; no_file e.bed
run embed_bed 1 "$BIN" embed -R empty.bed -O npy -o e "$REF";                one_error embed_bed "empty.bed"; no_file e.npy
run embed_cmt 1 "$BIN" embed -R comment.bed -o e.bed "$REF";                 one_error embed_cmt "comment.bed"; no_file e.bed
run track_bed 1 "$BIN" track -R empty.bed -o t.bedgraph.gz "$REF";           one_error track_bed "empty.bed"; no_file t.bedgraph.gz
run track_stdin 1 "$BIN" track -R - -o t.bedgraph "$REF" < /dev/null;        one_error track_stdin "stdin"; no_file t.bedgraph
run sv_bed 1 "$BIN" score-variants -f "$REF" -R empty.bed -o s.vcf header.vcf; one_error sv_bed "empty.bed"; no_file s.vcf
run lm_bed 1 "$BIN" evaluate --lm "$REF" -R empty.bed -o lm.txt;             one_error lm_bed "empty.bed"; no_file lm.txt
run lm_fa 1 "$BIN" evaluate --lm empty.fa -o lm.txt;                         one_error lm_fa "empty.fa"; no_file lm.txt
run pretrain 1 "$BIN" pretrain --config "$DATA/train/tiny.config.json" --steps 1 -o m.safetensors empty.fa
one_error pretrain "empty.fa"; no_file m.safetensors
# A labelled dataset whose training split has no rows.
mkdir -p ds; cp "$DATA/eval/tata-mini/dev.csv" "$DATA/eval/tata-mini/test.csv" ds/; echo "sequence,label" > ds/train.csv
run finetune 1 "$BIN" finetune --freeze-backbone --epochs 1 -o ft.safetensors ds; one_error finetune "train.csv"; no_file ft.safetensors
run sv_none 1 "$BIN" score-variants -f "$REF" -o s.vcf empty.fa;             one_error sv_none "empty.fa"; no_file s.vcf
# A VCF header without records: a valid VCF out, with the header and the JANUS tags declared, and no records.
run sv_header 0 "$BIN" score-variants -f "$REF" -o s.vcf.gz -W header.vcf
[ "$(bcftools view -H s.vcf.gz | wc -l)" = 0 ] && bcftools view -h s.vcf.gz | grep -q 'ID=JANUS_LLR' && [ -s s.vcf.gz.csi ] \
  && ok || bad "a header-only VCF does not give a valid empty VCF"
"$BIN" score-variants -f "$REF" < header.vcf > piped.vcf 2> piped.err && bcftools view -h piped.vcf > /dev/null 2>&1 \
  && ok || bad "header-only VCF on stdin: $(head -2 piped.err)"
finish cli-empty
