#!/usr/bin/env bash
# Command-line tests of track: bedGraph/bigWig tracks equal predict's probabilities; saturation mutagenesis.
. "$(dirname "$0")/lib.sh"
REF=$DATA/variants/ref.fa
# A contig shorter than the window is one window: track must equal predict over the same sequence.
printf '>s\nACGTTGCANNNAGCTAGCTAGGATCGATTACGATCGNATCGATCGGGCTAGCTAGCATCGAT\n' > s.fa
run predict 0 "$BIN" predict s.fa
NB=$(grep -v ">" s.fa | tr -d "N\n" | wc -c)
run all 0 "$BIN" track -t all -O bedgraph -o trk --no-version -r s s.fa
for t in pref entropy pA pC pG pT llr_mean llr_min; do [ -s trk.$t.bedgraph ] && ok || bad "no track $t"; done
[ "$(wc -l < trk.pA.bedgraph)" = "$NB" ] && ok || bad "N positions not absent: $(wc -l < trk.pA.bedgraph) lines"
# pA..pT and pref equal predict's probabilities (predict prints 6 decimals).
paste trk.pA.bedgraph trk.pC.bedgraph trk.pG.bedgraph trk.pT.bedgraph trk.pref.bedgraph | awk -F'\t' '{ print $2+1"\t"$4"\t"$8"\t"$12"\t"$16"\t"$20 }' > t.txt
awk -F'\t' 'NR > 1 && $3 != "N" { r = ($3=="A") ? $4 : ($3=="C") ? $5 : ($3=="G") ? $6 : $7; print $2"\t"$4"\t"$5"\t"$6"\t"$7"\t"r }' predict.out > p.txt
paste t.txt p.txt | awk -F'\t' '{ if ($1 != $7) exit 1; for (i = 2; i <= 6; i++) if ($i - $(i+6) > 2e-6 || $(i+6) - $i > 2e-6) exit 1 }' \
  && [ "$(wc -l < t.txt)" = "$(wc -l < p.txt)" ] && ok || bad "track probabilities differ from predict"
# entropy and LLRs follow from the probabilities.
paste trk.pA.bedgraph trk.pC.bedgraph trk.pG.bedgraph trk.pT.bedgraph trk.entropy.bedgraph | awk -F'\t' '{ h = 0;
  for (i = 4; i <= 16; i += 4) if ($i > 0) h -= $i * log($i) / log(2); if (h - $20 > 1e-4 || $20 - h > 1e-4) exit 1 }' && ok || bad "entropy"
paste trk.pref.bedgraph trk.llr_min.bedgraph trk.llr_mean.bedgraph | awk -F'\t' '{ if ($8 > $12 + 1e-6) exit 1 }' && ok || bad "llr_min > llr_mean"
# llr_mean and llr_min recomputed from the printed pA..pT and the sequence: the mean and the minimum over the three
# other bases of ln p(ALT) - ln p(REF) (a sign flip or a wrong base fails here).
SEQ=$(grep -v ">" s.fa | tr -d "\n")
paste trk.pA.bedgraph trk.pC.bedgraph trk.pG.bedgraph trk.pT.bedgraph trk.llr_mean.bedgraph trk.llr_min.bedgraph | awk -F'\t' -v seq="$SEQ" '
  { r = index("ACGT", substr(seq, $2 + 1, 1)); if (r == 0) exit 1; split($4" "$8" "$12" "$16, p, " ")
    m = 0; mn = 1e9; for (c = 1; c <= 4; c++) if (c != r) { d = log(p[c]) - log(p[r]); m += d / 3; if (d < mn) mn = d }
    if (m - $20 > 1e-4 || $20 - m > 1e-4 || mn - $24 > 1e-4 || $24 - mn > 1e-4) exit 1; n++ } END { if (n != 58) exit 1 }' \
  && ok || bad "llr_mean / llr_min do not follow from pA..pT"
# --rc: each probability is the mean of this strand's and of the reverse complement's, the latter computed here
# independently as its own contig (one window each, so both are exact passes over the whole sequence).
awk '/^>/ { print ">r"; next } { s = s $0 } END { n = length(s); t = ""; for (i = n; i >= 1; i--) t = t substr("TGCAN", index("ACGTN", substr(s, i, 1)), 1); print t }' s.fa > r.fa
run rcfwd 0 "$BIN" track -t all -O bedgraph -o rtrk --no-version -r r r.fa
run rc 0 "$BIN" track --rc -t pA,pC,pG,pT -O bedgraph -o rc --no-version -r s s.fa
L=${#SEQ}
paste rtrk.pA.bedgraph rtrk.pC.bedgraph rtrk.pG.bedgraph rtrk.pT.bedgraph > r4.txt
paste trk.pA.bedgraph trk.pC.bedgraph trk.pG.bedgraph trk.pT.bedgraph rc.pA.bedgraph rc.pC.bedgraph rc.pG.bedgraph rc.pT.bedgraph \
  | awk -F'\t' -v L="$L" 'NR == FNR { rp[$2] = $4" "$8" "$12" "$16; next }
    { split(rp[L - 1 - $2], q, " "); if (!(L - 1 - $2 in rp)) exit 1
      for (c = 1; c <= 4; c++) { want = ($(4 * c) + q[5 - c]) / 2; got = $(16 + 4 * c); if (want - got > 2e-6 || got - want > 2e-6) exit 1 }
      if (($4 - $20) ^ 2 > 1e-12 && ($8 - $24) ^ 2 > 1e-12) moved = 1; n++ }
    END { if (n != 58 || !moved) exit 1 }' r4.txt - && ok || bad "--rc is not the mean of the two strands"
# bgzipped bedGraph from a .gz suffix, indexed with -W only (as in every command); a region of the 300 kb reference.
run gz 0 "$BIN" track --window 64 -r 20:1001-1300 -o pref.bedgraph.gz "$REF"
[ ! -e pref.bedgraph.gz.tbi ] && [ "$(bgzip -dc pref.bedgraph.gz | grep -vc '^#')" = 300 ] && ok || bad "bgzip without -W: no index"
run gzW 0 "$BIN" track --window 64 -W -r 20:1001-1300 -o prefW.bedgraph.gz "$REF"
[ -s prefW.bedgraph.gz.tbi ] && [ "$(tabix prefW.bedgraph.gz 20:1101-1110 | wc -l)" = 10 ] && ok || bad "bgzip + tabix with -W"
[ "$(zcat pref.bedgraph.gz | grep -vc '^#')" = 300 ] && ok || bad "300 bases expected"
zcat pref.bedgraph.gz | head -1 | grep -q '^# pref track: janusdna' && ok || bad "provenance line"
run stdout 0 "$BIN" track --window 64 -r 20:1001-1300 -O bedgraph "$REF"
cmp -s <(grep -v '^#' stdout.out) <(zcat pref.bedgraph.gz | grep -v '^#') && ok || bad "stdout bedGraph differs"
# Text goes to stdout as text, and -o FILE is compressed only when its suffix (or -O) asks; -f names the reference
# as well as the positional argument does.
run plainout 0 "$BIN" track --window 64 -r 20:1001-1300 --no-version "$REF"
run plainbed 0 "$BIN" track --window 64 -r 20:1001-1300 --no-version -o y.bed "$REF"
run fref 0 "$BIN" track --window 64 -r 20:1001-1300 --no-version -f "$REF"
run zout 0 "$BIN" track --window 64 -r 20:1001-1300 --no-version -W -O z -o z.bg.gz "$REF"
[ "$(head -c1 plainout.out)" = 2 ] && cmp -s plainout.out y.bed && cmp -s plainout.out fref.out && [ ! -e y.bed.tbi ] \
  && [ "$(bgzip -dc z.bg.gz)" = "$(cat plainout.out)" ] && [ -s z.bg.gz.tbi ] && ok || bad "text output / -O z / -f"
run noidx 1 "$BIN" track --window 64 -r 20:1001-1300 -W "$REF"; one_error noidx "write-index needs an output file"
run tworefs 1 "$BIN" track --window 64 -r 20:1001-1300 -f "$REF" s.fa; one_error tworefs "two references"
run win5 1 "$BIN" track --window 5 -r 20:1001-1300 "$REF"; one_error win5 "at least 16"
# Numeric contig names in a comma list, as bcftools takes them.
run numlist 0 "$BIN" track --window 64 -r 20:1001-1100,20:2001-2100 -O bedgraph --no-version "$REF"
# Repeated -r and -R BED (0-based) give both regions, each as its own run gives it.
run r1 0 "$BIN" track --window 64 -r 20:1001-1100 -O bedgraph --no-version "$REF"
run r2 0 "$BIN" track --window 64 -r 20:2001-2100 -O bedgraph --no-version "$REF"
run rr 0 "$BIN" track --window 64 -r 20:1001-1100 -r 20:2001-2100 -O bedgraph --no-version "$REF"
cat r1.out r2.out > r12.txt; [ "$(wc -l < rr.out)" = 200 ] && cmp -s rr.out r12.txt && ok || bad "repeated -r"
printf '20\t1000\t1100\n20\t2000\t2100\n' > two.bed
run bedR 0 "$BIN" track --window 64 -R two.bed -O bedgraph --no-version "$REF"
cmp -s bedR.out r12.txt && ok || bad "-R BED differs from the same regions given with -r"
# --chr-prefix: the output names the contig as the regions do (chr20), with the values of the reference's 20, in
# bedGraph and in --all-snvs VCF records and header; one contig asked for under two names is refused.
run chrp 0 "$BIN" track --window 64 -r chr20:1001-1100 --chr-prefix -O bedgraph --no-version "$REF"
[ "$(cut -f1 chrp.out | sort -u)" = chr20 ] && [ "$(cut -f2- chrp.out)" = "$(cut -f2- r1.out)" ] && ok || bad "--chr-prefix bedGraph: $(head -1 chrp.out)"
run chrsnv 0 "$BIN" track --all-snvs --window 64 --chr-prefix -r chr20:1001-1010 --no-version "$REF"
run snv20 0 "$BIN" track --all-snvs --window 64 -r 20:1001-1010 --no-version "$REF"
[ "$(grep -v '^#' chrsnv.out | cut -f1 | sort -u)" = chr20 ] && grep -q '^##contig=<ID=chr20,length=' chrsnv.out \
  && [ "$(grep -v '^#' chrsnv.out | cut -f2-)" = "$(grep -v '^#' snv20.out | cut -f2-)" ] && ok || bad "--chr-prefix --all-snvs"
run twonames 1 "$BIN" track --window 64 -r chr20:1001-1100 -r 20:2001-2100 --chr-prefix "$REF"; one_error twonames "both"
run bw 0 "$BIN" track --window 64 -r 20:1001-1300 -o pref.bw "$REF"
[ -s pref.bw ] && head -c 4 pref.bw | od -An -tx1 | grep -q "26 fc 8f 88" && ok || bad "not a bigWig"
# A base's values do not depend on the region asked for, nor on --batch or -@ (bit for bit).
run big 0 "$BIN" track --window 64 -t pref,entropy -r 20:1001-2000 -O bedgraph -o big --no-version "$REF"
run parts 0 "$BIN" track --window 64 -t pref,entropy -@ 1 --batch 1 -r 20:1500-1503 -r 20:1990-2100 -r 20:1001-1001 -O bedgraph -o parts --no-version "$REF"
for t in pref entropy; do
  awk -F'\t' 'NR == FNR { v[$2] = $4; next } ($2 in v) { if (v[$2] != $4) { print; bad = 1 } ; n++ } END { exit bad || n != 16 }' \
    big.$t.bedgraph parts.$t.bedgraph && ok || bad "track $t: values at a base depend on the region"
done
# Saturation mutagenesis: 3 SNVs per scored base, as VCF, indexed bgzipped VCF, BCF and table.
run sat 0 "$BIN" track --all-snvs -O v -r s s.fa
[ "$(grep -vc '^#' sat.out)" = $((3 * NB)) ] && ok || bad "saturation: $(grep -vc '^#' sat.out) records"
bcftools query -f '%POS\t%REF\t%ALT\t%JANUS_LLR\n' sat.out | awk -F'\t' '{ n[$1]++ } END { for (p in n) if (n[p] != 3) exit 1 }' && ok || bad "not 3 per base"
run satz 0 "$BIN" track --all-snvs --window 64 -W -O z -o sat.vcf.gz -r 20:1001-1100 "$REF"
[ -s sat.vcf.gz.csi ] && [ "$(bcftools view -H -r 20:1050 sat.vcf.gz | wc -l)" = 3 ] && ok || bad "saturation VCF index"
run satb 0 "$BIN" track --all-snvs --window 64 -o sat.bcf -r 20:1001-1100 "$REF"
cmp -s <(bcftools query -f '%POS%REF%ALT %JANUS_LLR\n' sat.bcf) <(bcftools query -f '%POS%REF%ALT %JANUS_LLR\n' sat.vcf.gz) && ok || bad "BCF differs"
run satt 0 "$BIN" track --all-snvs --window 64 -W -O t -o sat.tsv.gz -r 20:1001-1100 "$REF"
[ "$(tabix sat.tsv.gz 20:1050-1050 | wc -l)" = 3 ] && ok || bad "saturation table"
# LLRs of the saturation equal score-variants' JANUS_LLR for the same SNVs (same window plan here: one window).
"$BIN" score-variants -f s.fa --no-pll sat.out 2> sv.err | bcftools query -f '%JANUS_LLR\n' > sv.txt
bcftools query -f '%JANUS_LLR\n' sat.out > sat.txt; cmp -s sv.txt sat.txt && ok || bad "saturation LLR != score-variants LLR"
# -v 0 prints nothing; by default one summary line and no progress (stderr is not a terminal here); --progress
# draws a rising count of bases on stderr anyway.
run quiet 0 "$BIN" track -v 0 --no-version --window 64 -r 20:1001-30000 -O bedgraph "$REF"
run noprog 0 "$BIN" track --no-version --window 64 -r 20:1001-30000 -O bedgraph "$REF"
[ ! -s quiet.err ] && cmp -s quiet.out noprog.out && ok || bad "-v 0 printed: $(head -2 quiet.err)"
[ "$(wc -l < noprog.err)" = 1 ] && ! grep -q $'\r' noprog.err && ok || bad "progress without --progress: $(head -c 200 noprog.err)"
run prog 0 "$BIN" track --progress --no-version --window 64 -r 20:1001-30000 -O bedgraph "$REF"
tr '\r' '\n' < prog.err | awk '/^track: [0-9]+ bases, / { n++; if ($2 < last || $2 > 29000) exit 1; last = $2 } END { if (n < 2) exit 1 }' \
  && cmp -s prog.out noprog.out && ok || bad "--progress: $(head -c 200 prog.err)"
# Bad input.
run noregion 1 "$BIN" track -o x.bedgraph.gz "$REF";          one_error noregion "-r REGION"
cmp -s numlist.out rr.out && ok || bad "-r A,B differs from -r A -r B"
run badtrack 1 "$BIN" track -t foo -r s s.fa;                  one_error badtrack "unknown track"
run badcontig 1 "$BIN" track -r chr20:1-100 -o y.bedgraph.gz "$REF"; one_error badcontig 'did you mean "20"'; no_file y.bedgraph.gz
# A missing output directory is found before any work, in the same words in every command.
run nodir 1 "$BIN" track -r 20:1001-1100 -o /nonexistent-dir/x.bedgraph.gz "$REF"; one_error nodir "/nonexistent-dir/x.bedgraph.gz: output directory /nonexistent-dir does not exist"; grep -q "forward pass" nodir.err && bad "nodir: work was done before the check" || ok

finish cli-track
