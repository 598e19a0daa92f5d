#!/usr/bin/env bash
# Command-line tests of score-variants: scores, record conservation, every output type, bad input.
. "$(dirname "$0")/lib.sh"
V=$DATA/variants
REF=$V/ref.fa
SV() { "$BIN" score-variants -f "$REF" --window 64 "$@"; }
# A 40-record slice of the real indels for the output-type tests (the full file is scored once).
(bcftools view -h "$V/indels.vcf.gz"; bcftools view -H "$V/indels.vcf.gz" | head -40) | bgzip > small.vcf.gz
Q='%CHROM\t%POS\t%REF\t%ALT\t%JANUS_LLR\t%JANUS_PLL\n'
# near NAME FILE: like close (lib.sh), but htslib prints 6 significant digits: numbers may differ by 1e-4 relative.
near() {
  if [ "${UPDATE:-0}" = 1 ]; then cp "$2" "$EXP/$1"; ok; return; fi
  if paste "$EXP/$1" "$2" | awk -F'\t' '{ n = NF / 2; for (i = 1; i <= n; i++) { a = $i; b = $(i + n); if (a == b) continue;
        na = split(a, x, ","); split(b, y, ","); for (j = 1; j <= na; j++) { if (x[j] == y[j]) continue; d = x[j] - y[j];
        if (x[j] + 0 != x[j] || d * d > 1e-8 * (1 + x[j] * x[j])) { print NR": "$0; exit 1 } } } }' >&2 \
     && [ "$(wc -l < "$EXP/$1")" = "$(wc -l < "$2")" ]; then ok; else bad "$1 differs from expected"; fi
}
# conserved NAME IN OUT: OUT minus the added INFO tags equals IN, record for record.
conserved() {
  bcftools view -H "$2" > "$1.in.txt"
  bcftools annotate -x INFO/JANUS_LLR,INFO/JANUS_PLL,INFO/JANUS_REF_MISMATCH "$3" | bcftools view -H > "$1.back.txt"
  if [ -s "$1.in.txt" ] && cmp -s "$1.in.txt" "$1.back.txt"; then ok; else bad "$1: records changed"; diff "$1.in.txt" "$1.back.txt" | head -4 >&2; fi
}

# --- scores and record conservation on the real VCFs and a VCF with samples ---------------------------------
run samples 0 SV --no-version -o samples.vcf "$V/samples.vcf"
bcftools query -f "$Q" samples.vcf > samples.tsv; near score_samples.tsv samples.tsv
conserved samples "$V/samples.vcf" samples.vcf
grep -q "records, .* ALT alleles: .* scored .* forward passes" samples.err && ok || bad "no summary: $(cat samples.err)"
grep -q "warning: 1 record with REF not matching" samples.err && grep -q "20:7400 REF G" samples.err && ok || bad "no REF mismatch warning"
grep -q 'contig "chrX" not in' samples.err && ok || bad "no missing-contig warning"
bcftools view -H -i 'INFO/JANUS_REF_MISMATCH=1' samples.vcf | cut -f3 > mm.txt; [ "$(cat mm.txt)" = ref_mismatch ] && ok || bad "JANUS_REF_MISMATCH flag: $(cat mm.txt)"
for id in symbolic_del gvcf bnd missing_contig long_ins ref_mismatch; do
  v=$(bcftools query -i "ID=\"$id\"" -f '%JANUS_LLR %JANUS_PLL' samples.vcf); [ "$v" = ". ." ] && ok || bad "$id scored: $v"
done
v=$(bcftools query -i 'ID="star"' -f '%JANUS_LLR %JANUS_PLL' samples.vcf); echo "$v" | grep -Eq '^\.,\. -?[0-9][0-9.e-]*,\.$' && ok || bad "star: $v"
v=$(bcftools query -i 'ID="multi_snv"' -f '%JANUS_LLR' samples.vcf); echo "$v" | grep -Eq '^-?[0-9.e-]+,-?[0-9.e-]+$' && ok || bad "multi_snv: $v"
v=$(bcftools query -i 'ID="contig_end"' -f '%JANUS_LLR' samples.vcf); [ "$v" != . ] && ok || bad "contig end not scored"
grep -q '^##INFO=<ID=JANUS_LLR,Number=A,Type=Float' samples.vcf && grep -q '^##INFO=<ID=JANUS_PLL,Number=A,Type=Float' samples.vcf \
  && ! grep -q '^##janusdna' samples.vcf && ok || bad "header lines (--no-version)"

run indels 0 SV -o indels.vcf.gz "$V/indels.vcf.gz"; conserved indels "$V/indels.vcf.gz" indels.vcf.gz
[ "$(bcftools query -i 'JANUS_PLL!="."' -f '%POS\n' indels.vcf.gz | wc -l)" = 194 ] && ok || bad "not all 194 indels scored"
grep -q "194 records" indels.err && ok || bad "summary: $(cat indels.err)"
bcftools view -h indels.vcf.gz | grep -q '^##janusdnaVersion=' && bcftools view -h indels.vcf.gz | grep -q '^##janusdnaCommand=.*score-variants' && ok || bad "no provenance lines"
run clinvar 0 SV -o clinvar.bcf "$V/clinvar.vcf";   conserved clinvar "$V/clinvar.vcf" clinvar.bcf
[ "$(bcftools query -i 'JANUS_LLR!="."' -f '%POS\n' clinvar.bcf | wc -l)" = 48 ] && ok || bad "not all 48 SNVs scored"
# Nothing scorable because of contig names: an error naming the contig, and no output.
run multi 1 SV -o multi.vcf "$V/multiallelic.vcf";  one_error multi 'no record could be scored: contig "1" not in'; no_file multi.vcf

# --- a score depends on the variant only: whole file, interleaved thirds, region shards, -@ 1, --batch 1 -----------
# agree A B: the same rows, the same numbers, digit for digit (a window's output does not depend on the windows
# batched with it, so the scores are bit for bit the same).
agree() { [ -s "$1" ] && cmp -s "$1" "$2" || { diff "$1" "$2" | head -4 >&2; false; }; }
(bcftools view -h "$V/indels.vcf.gz"; (bcftools view -H "$V/clinvar.vcf" | awk -F"\t" -v OFS="\t" "{ \$8 = \".\"; print }"; bcftools view -H "$V/indels.vcf.gz") | sort -k2,2n) > all.vcf
run whole 0 SV -o whole.vcf all.vcf; bcftools query -f "$Q" whole.vcf > whole.tsv
[ "$(wc -l < whole.tsv)" = 242 ] && ok || bad "48 SNVs + 194 indels expected: $(wc -l < whole.tsv)"
for k in 0 1 2; do
  (bcftools view -h all.vcf; bcftools view -H all.vcf | awk -v k=$k 'NR % 3 == k') > third$k.vcf
  run third$k 0 SV -o third$k.out.vcf third$k.vcf
done
for k in 0 1 2; do bcftools query -f "$Q" third$k.out.vcf; done | sort -k2,2n -k3,3 -k4,4 > thirds.tsv
sort -k2,2n -k3,3 -k4,4 whole.tsv > whole.sorted.tsv
agree whole.sorted.tsv thirds.tsv && ok || bad "interleaved thirds scored differently from the whole file"
run batch1 0 SV -@ 1 --batch 1 --chunk 7 -o batch1.vcf all.vcf; bcftools query -f "$Q" batch1.vcf > batch1.tsv
agree whole.tsv batch1.tsv && ok || bad "-@ 1 --batch 1 --chunk 7 scored differently"
bgzip -c all.vcf > all.vcf.gz && tabix -p vcf all.vcf.gz
for r in 20:1-100000 20:100001-200000 20:200001-301733; do
  run shard 0 SV -r $r -o shard.vcf all.vcf.gz; bcftools query -f "$Q" shard.vcf
done > shards.tsv
agree whole.tsv shards.tsv && ok || bad "region shards scored differently"
# An SNV's JANUS_LLR equals track --all-snvs' (the same grid at the default flank).
run sat 0 "$BIN" track --all-snvs --window 64 -O t -o sat.tsv.gz -r 20:175601-175800 "$REF"
zcat sat.tsv.gz | grep -v '^#' | cut -f1-5 > sat.txt
bcftools view -H all.vcf | awk '$2 > 175600 && $2 <= 175800 && length($4) == 1 && length($5) == 1' | cut -f1,2,4,5 > snv_here.txt
[ -s snv_here.txt ] && awk -F'\t' 'NR == FNR { s[$1":"$2":"$3":"$4] = $5; next } { k = $1":"$2":"$3":"$4; if (!(k in s)) exit 1; print $1"\t"$2"\t"$3"\t"$4"\t"s[k] }' \
    sat.txt snv_here.txt > sat_here.tsv && awk -F'\t' '$2 > 175600 && $2 <= 175800 && length($3) == 1 && length($4) == 1' whole.tsv | cut -f1-5 > sv_here.tsv \
  && agree sv_here.tsv sat_here.tsv && ok || bad "JANUS_LLR differs from track --all-snvs"

# --- output types, index, pipes ------------------------------------------------------------------------------
run z 0 SV -W -O z -o z.vcf.gz small.vcf.gz
[ -s z.vcf.gz.csi ] && [ "$(bcftools view -H -r 20:1-60000 z.vcf.gz | wc -l)" -gt 0 ] && ok || bad "-W csi for .vcf.gz"
run b 0 SV -W -o b.bcf small.vcf.gz
[ -s b.bcf.csi ] && [ "$(bcftools view -H -r 20:1-60000 b.bcf | wc -l)" = "$(bcftools view -H -r 20:1-60000 z.vcf.gz | wc -l)" ] && ok || bad "-W csi for .bcf"
run u 0 SV -O u -o u.bcf small.vcf.gz; conserved u small.vcf.gz u.bcf
run t 0 SV -W -O t -o t.tsv.gz small.vcf.gz
[ -s t.tsv.gz.tbi ] && [ "$(tabix t.tsv.gz 20:1-60000 | wc -l)" -gt 0 ] && ok || bad "table + tabix"
zcat t.tsv.gz | head -1 | grep -q "^#CHROM	POS	REF	ALT	JANUS_LLR	JANUS_PLL$" && ok || bad "table header"
zcat t.tsv.gz | tail -n +2 > t.txt; bcftools query -f "$Q" z.vcf.gz | sed 's/\t\.\t/\t.\t/' > z.txt
cmp -s <(cut -f1-4 t.txt) <(cut -f1-4 z.txt) && ok || bad "table rows differ from the VCF records"
for f in z.vcf.gz b.bcf u.bcf indels.vcf.gz; do bcftools view "$f" > /dev/null 2>&1 && ok || bad "bcftools cannot read $f"; done
bcftools view -Ou "$V/samples.vcf" | SV - -Ob > pipe.bcf 2> pipe.err && ok || bad "pipe: $(cat pipe.err)"
[ "$(bcftools view -H pipe.bcf | wc -l)" = "$(bcftools view -H "$V/samples.vcf" | wc -l)" ] && ok || bad "pipe lost records"
run t1 0 SV -@ 1 --no-version "$V/samples.vcf"; bcftools query -f "$Q" t1.out > t1.tsv; near score_samples.tsv t1.tsv
# Unsorted input: the same scores per variant.
(bcftools view -h small.vcf.gz; bcftools view -H small.vcf.gz | awk 'NR % 2 == 0'; bcftools view -H small.vcf.gz | awk 'NR % 2 == 1') > shuf.vcf
run shuf 0 SV -o shuf.vcf.out.vcf shuf.vcf
bcftools query -f "$Q" shuf.vcf.out.vcf | sort -k2,2n > s1.txt; bcftools query -f "$Q" z.vcf.gz | sort -k2,2n > s2.txt
# Every ALT allele of every record has a PLL, and every LLR and PLL of every allele matches the sorted run's.
paste s1.txt s2.txt | awk -F'\t' '{ if ($1 != $7 || $2 != $8 || $4 != $10) exit 1
    for (c = 5; c <= 6; c++) { na = split($c, x, ","); nb = split($(c + 6), y, ","); if (na != nb) exit 1
      for (j = 1; j <= na; j++) { if (c == 6 && x[j] == ".") exit 1; if (x[j] == y[j]) continue
        if (x[j] == "." || y[j] == "." || x[j] - y[j] > 1e-5 || y[j] - x[j] > 1e-5) exit 1 } } }
  ' && [ "$(wc -l < s1.txt)" = 40 ] && ok || bad "unsorted input scored differently"
conserved shuf shuf.vcf shuf.vcf.out.vcf
# Multi-allelic records in an unsorted file (samples.vcf): every allele of every record scores as in the sorted file.
bcftools sort -Ov -o sorted_samples.vcf "$V/samples.vcf" 2> /dev/null
run sorted_samples 0 SV --no-version -o sorted_samples.out.vcf sorted_samples.vcf
bcftools query -f "$Q" samples.vcf | sort > us.txt; bcftools query -f "$Q" sorted_samples.out.vcf | sort > ss.txt
[ "$(wc -l < us.txt)" = 21 ] && cmp -s us.txt ss.txt && grep -Eq '^20	5000	T	A,C	[-0-9.e]+,[-0-9.e]+	[-0-9.e]+,[-0-9.e]+$' us.txt \
  && grep -Eq '^20	6000	TCC	T,TCCAC,ACC	\.,\.,\.	[-0-9.e]+,[-0-9.e]+,[-0-9.e]+$' us.txt && ok || bad "unsorted multi-allelic records scored differently"
# -R BED: exactly the records bcftools -R selects from the same BED (0-based), scored as in the whole-file run.
printf '20\t10000\t60000\n20\t150000\t200000\n' > sel.bed
run selR 0 SV -R sel.bed --no-version small.vcf.gz
bcftools query -f '%POS\n' -T sel.bed small.vcf.gz > want_pos.txt; bcftools query -f '%POS\n' selR.out > got_pos.txt
[ -s want_pos.txt ] && [ "$(wc -l < want_pos.txt)" -lt 40 ] && cmp -s want_pos.txt got_pos.txt && ok || bad "-R: records differ from bcftools -R"
# --max-indel N: alleles longer than N get '.', the others are scored.
run maxindel 0 SV --max-indel 2 --no-version small.vcf.gz
bcftools query -f '%REF\t%ALT\t%JANUS_PLL\n' maxindel.out | awk -F'\t' '{ long = (length($1) > 2 || length($2) > 2)
    if (long != ($3 == ".")) exit 1; n += long } END { if (n == 0 || n == NR) exit 1 }' && ok || bad "--max-indel"
# --flank moves the windows: the same records, other windows, other PLLs (an ignored --flank gives identical output).
run flank4 0 SV --flank 4 --no-version "$V/clinvar.vcf"
run flank16 0 SV --no-version "$V/clinvar.vcf"
bcftools query -f '%JANUS_LLR\t%JANUS_PLL\n' flank4.out > f4.txt; bcftools query -f '%JANUS_LLR\t%JANUS_PLL\n' flank16.out > f16.txt
[ "$(wc -l < f4.txt)" = 48 ] && ! cut -f1 f4.txt | grep -qx '\.' && ! cmp -s f4.txt f16.txt && ok || bad "--flank had no effect"
# -r restricts to POS in the regions.
run region 0 SV -r 20:1-20000 small.vcf.gz
[ "$(grep -vc '^#' region.out)" = "$(bcftools view -H small.vcf.gz | awk '$2 <= 20000' | wc -l)" ] && ok || bad "-r"
# -r is repeatable and takes comma lists, numeric contig names included; both forms select the same records.
a=20:1-20000; b=20:40001-60000
run region2 0 SV --no-version -r $a -r $b small.vcf.gz
run regionlist 0 SV --no-version -r $a,$b small.vcf.gz
[ "$(grep -vc '^#' region2.out)" = "$(bcftools view -H small.vcf.gz | awk '$2 <= 20000 || ($2 > 40000 && $2 <= 60000)' | wc -l)" ] \
  && cmp -s region2.out regionlist.out && ok || bad "-r A -r B and -r A,B"
run regionk 0 SV --no-version -r 20:1-20,000,20:40,001-60000 small.vcf.gz; cmp -s region2.out regionk.out && ok || bad "-r with thousands separators in a list"
# The reference: -f, else $JANUSDNA_REF, else ##reference= (relative to the VCF); otherwise one error naming all three.
mkdir -p refdir && cp "$REF" "$REF.fai" refdir/
(bcftools view -h "$V/clinvar.vcf" | sed '1a ##reference=file://ref.fa'; bcftools view -H "$V/clinvar.vcf") > refdir/hdr.vcf
SVN() { "$BIN" score-variants --window 64 --no-version "$@"; }
run byhdr 0 SVN refdir/hdr.vcf
run byenv 0 env JANUSDNA_REF="$REF" "$BIN" score-variants --window 64 --no-version refdir/hdr.vcf
run byf 0 SVN -f "$REF" refdir/hdr.vcf
cmp -s byhdr.out byf.out && cmp -s byenv.out byf.out && [ "$(grep -vc '^#' byf.out)" = 48 ] && ok || bad "reference from the header / \$JANUSDNA_REF"
run noref3 1 SVN "$V/clinvar.vcf"; one_error noref3 "give -f FASTA, set \$JANUSDNA_REF, or add a ##reference= header line"
# With no input named and stdin not a terminal, the VCF is read from stdin.
run stdin 0 SVN -f "$REF" < refdir/hdr.vcf; cmp -s stdin.out byf.out && ok || bad "input from stdin when none is named"
# Impossible settings are refused before any work.
run win5 1 "$BIN" score-variants -f "$REF" --window 5 "$V/clinvar.vcf";     one_error win5 "at least 16"
run winneg 1 "$BIN" score-variants -f "$REF" --window -2 "$V/clinvar.vcf";  one_error winneg "must be a length"
run win0 1 "$BIN" score-variants -f "$REF" --window 0 "$V/clinvar.vcf";     one_error win0 "--window 0"
run thr 1 SV -@ -1 "$V/clinvar.vcf";           one_error thr "threads"
# Counts agree with their nouns.
(bcftools view -h "$V/clinvar.vcf"; bcftools view -H "$V/clinvar.vcf" | head -1) > one.vcf
run one 0 SV one.vcf; grep -q "score-variants: 1 record, 1 ALT allele: 1 scored" one.err && ok || bad "plurals: $(cat one.err)"
# -v 2 says which model was loaded.
run v2 0 SV -v 2 "$V/clinvar.vcf"; grep -q "score-variants: model .*md5 " v2.err && ok || bad "-v 2 prints no model line"
# The model's checksum, read once with the model, is the file's md5sum, in the -v 2 line and in the VCF header.
sum=$(md5sum "$JANUSDNA_MODEL" | cut -d' ' -f1)
grep -q "md5 $sum" v2.err && grep -q "$sum" v2.out && ok || bad "the model's md5 is not md5sum's $sum"
# --rc and --no-pll run and change what they should.
run rc 0 SV --rc "$V/clinvar.vcf"; grep -q "both strands" rc.err && ok || bad "--rc summary"
run nopll 0 SV --no-pll "$V/clinvar.vcf"; [ "$(bcftools query -i 'JANUS_PLL!="."' -f '%POS\n' nopll.out | wc -l)" = 0 ] && ok || bad "--no-pll"

# --- empty, malformed and bad input --------------------------------------------------------------------------
bcftools view -h "$V/clinvar.vcf" > headeronly.vcf
run headeronly 0 SV -o ho.vcf headeronly.vcf; grep -q '^#CHROM' ho.vcf && [ "$(grep -vc '^#' ho.vcf)" = 0 ] && ok || bad "header-only VCF"
: > empty.vcf
run empty 1 SV -o e.vcf empty.vcf;               one_error empty "empty.vcf"; no_file e.vcf
(bcftools view -h "$V/clinvar.vcf"; bcftools view -H "$V/clinvar.vcf" | head -3; printf '20\tnotanumber\t.\tA\tG\t.\t.\t.\n') > bad.vcf
run malformed 1 SV -o m.vcf bad.vcf;             one_error malformed "bad.vcf:$(($(bcftools view -h "$V/clinvar.vcf" | wc -l) + 4))"; no_file m.vcf
(bcftools view -h "$V/clinvar.vcf"; printf '20\t100\t.\n') > short.vcf
run short 1 SV -o s.vcf short.vcf;               one_error short "short.vcf:$(($(bcftools view -h "$V/clinvar.vcf" | wc -l) + 1)): malformed"; no_file s.vcf
(bcftools view -h "$V/clinvar.vcf"; printf '20\t100\t.\tA\tG\t.\t.\tPOS_HG38=abc\n') > badinfo.vcf
# An unparsable value of a declared INFO tag becomes missing, as bcftools makes it (same htslib parser).
run badinfo 0 SV --no-version -o badinfo.out.vcf badinfo.vcf; [ "$(bcftools view -H badinfo.out.vcf | cut -f8 | cut -d';' -f1)" = "$(bcftools view -H badinfo.vcf | cut -f8)" ] && ok || bad "badinfo: not as bcftools reads it"
head -c 2000 "$V/indels.vcf.gz" > trunc.vcf.gz
run trunc 1 SV -o tr.vcf trunc.vcf.gz;           one_error trunc "trunc.vcf.gz"; no_file tr.vcf
# A bgzip file cut at a block boundary (its end-of-file block missing) is refused, as bcftools refuses it; one cut
# inside a block names the file and the problem.
bgzip -c "$V/clinvar.vcf" > whole.vcf.gz; head -c $(($(stat -c %s whole.vcf.gz) - 28)) whole.vcf.gz > noeof.vcf.gz
run noeof 1 SV -o ne.vcf noeof.vcf.gz;           one_error noeof "noeof.vcf.gz: truncated file: the bgzip end-of-file block is missing"; no_file ne.vcf
bgzip -c small.vcf.gz -d | bgzip -c > s.vcf.gz; head -c $(($(stat -c %s s.vcf.gz) / 2)) s.vcf.gz > halfblock.vcf.gz; tail -c 28 s.vcf.gz >> halfblock.vcf.gz
run halfblock 1 SV -o hb.vcf halfblock.vcf.gz;   one_error halfblock "halfblock.vcf.gz: truncated or corrupt compressed file"; no_file hb.vcf
# -W with unsorted input stops at the first record out of order.
run unsortedW 1 SV -W -Oz -o uw.vcf.gz shuf.vcf; one_error unsortedW "shuf.vcf: record 21 (20:701) is not sorted by position (after 20:65279)"; no_file uw.vcf.gz
# Undeclared INFO and FILTER tags are accepted with a warning, as bcftools accepts them (its annotate14/15 tests).
(bcftools view -h "$V/clinvar.vcf" | grep -v '^##INFO'; bcftools view -H "$V/clinvar.vcf" | head -3 | awk -F'\t' -v OFS='\t' '{ $7 = "LowQual"; $8 = "NEWTAG=1;FLAGX" } 1') > undecl.vcf
run undecl 0 SV -o undecl.out.vcf undecl.vcf
grep -q "not declared in the header" undecl.err && [ "$(bcftools view -H undecl.out.vcf | grep -c 'NEWTAG=1;FLAGX;JANUS_LLR=')" = 3 ] && ok || bad "undeclared tags: $(head -2 undecl.err)"
run notvcf 1 SV "$REF";                          one_error notvcf "not a VCF"
run nofile 1 SV no-such.vcf;                     one_error nofile "no-such.vcf"
run noref 1 "$BIN" score-variants -f no-such.fa "$V/clinvar.vcf"; one_error noref "no-such.fa"
run idxstdout 1 SV -W -Oz "$V/clinvar.vcf";      one_error idxstdout "write-index"
run badtype 1 SV -O x "$V/clinvar.vcf"
# Contig names: a chr20 VCF against a 20 FASTA, matched by --chr-prefix or --rename-chrs, gives chr20 records with
# the same scores; unmatched, nothing is scorable: an error that suggests the fix, and no output.
sed -e 's/^20	/chr20	/' -e 's/##contig=<ID=20,/##contig=<ID=chr20,/' "$V/clinvar.vcf" > chr20.vcf
bcftools query -f '%POS %JANUS_LLR %JANUS_PLL\n' clinvar.bcf > plain.scores
run chr 0 SV --chr-prefix -o chr.vcf chr20.vcf
bcftools query -f '%CHROM\n' chr.vcf | sort -u | grep -qx chr20 && [ "$(bcftools query -f '%POS %JANUS_LLR %JANUS_PLL\n' chr.vcf)" = "$(cat plain.scores)" ] \
  && ok || bad "--chr-prefix: chr20 records with the scores of the 20 records"
printf 'chr20 20\n' > rename.txt
run rename 0 SV --rename-chrs rename.txt -o rename.vcf chr20.vcf
[ "$(bcftools query -f '%POS %JANUS_LLR %JANUS_PLL\n' rename.vcf)" = "$(cat plain.scores)" ] && ok || bad "--rename-chrs"
printf 'chr20\n' > badmap.txt
run badmap 1 SV --rename-chrs badmap.txt chr20.vcf; one_error badmap "badmap.txt:1: expected two names"
run nochr 1 SV -o nochr.vcf chr20.vcf;  one_error nochr 'did you mean "20"'; no_file nochr.vcf

# Contigs the header does not declare are accepted (as bcftools does); a BCF whose header was already written when
# such a contig first appears is refused rather than written broken.
grep -v '^##contig' "$V/samples.vcf" > nocontig.vcf
run nocontig 0 SV --chunk 5 -Oz -o nocontig.vcf.gz nocontig.vcf
[ "$(bcftools view -H nocontig.vcf.gz | wc -l)" = "$(grep -vc '^#' nocontig.vcf)" ] && ok || bad "undeclared contigs lost records"
run nocontig_bcf 1 SV --chunk 5 -Ob -o nocontig.bcf nocontig.vcf
one_error nocontig_bcf 'contig "chrX" is not declared in the header'; no_file nocontig.bcf
run nocontig_bcf1 0 SV -Ob -o nocontig1.bcf nocontig.vcf
[ "$(bcftools view -H nocontig1.bcf | wc -l)" = "$(grep -vc '^#' nocontig.vcf)" ] && ok || bad "BCF with contigs added in the first chunk"

# A missing output directory is found before any work, in the same words in every command.
run nodir 1 SV -o /nonexistent-dir/x.vcf.gz "$V/clinvar.vcf"; one_error nodir "/nonexistent-dir/x.vcf.gz: output directory /nonexistent-dir does not exist"

finish cli-score-variants
