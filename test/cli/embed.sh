#!/usr/bin/env bash
# Command-line tests of janusdna embed (issue 3): outputs, equivalences, the bedtools pipeline, errors.
. "$(dirname "$0")/lib.sh"
IO=$DATA/io
H=32   # hidden size of the fixture model
E="$BIN embed"

# --- usage ----------------------------------------------------------------------------------------------------
run usage 1 $E;                                   grep -q "Usage" usage.err && ok || bad "embed without input prints no usage"
run help 0 $E --help;                             grep -q -- "--window" help.out && ok || bad "embed --help"

# --- --window 0, no flank: the fixture records' per-base embeddings are predict's hidden states -----------------
run recs_st 0 $E --records "$DATA/tiny-midattn.fa" --window 0 --flank 0 --pool none --dtype f32 -o recs.safetensors
run pred_st 0 "$BIN" predict -O safetensors -o pred.safetensors "$DATA/tiny-midattn.fa"
python3 - recs.safetensors pred.safetensors "$DATA/tiny-midattn.expected.safetensors" > cmp.txt 2>&1 <<'PY' && ok || bad "embed hidden != predict/expected hidden: $(cat cmp.txt)"
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    out = {}
    for k, v in h.items():
        if k == '__metadata__' or v['dtype'] != 'F32': continue
        s, e = v['data_offsets']; out[k] = (v['shape'], struct.unpack('<%df' % ((e - s) // 4), d[s:e]))
    return out
emb, pred, exp = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
B, L, H = exp['hidden'][0]
for i in range(B):
    e = emb['seq%d' % i]; p = pred['seq%d.hidden' % i]; x = exp['hidden'][1][i * L * H:(i + 1) * L * H]
    assert e[0] == [L, H], e[0]
    d1 = max(abs(a - b) for a, b in zip(e[1], p[1])); d2 = max(abs(a - b) for a, b in zip(e[1], x))
    assert d1 <= 1e-5 and d2 <= 1e-4, (i, d1, d2)
PY
run recs_tsv 0 $E --records "$DATA/tiny-midattn.fa" --window 0 --flank 0 --pool none
awk -F'\t' -v n=$((H + 3)) 'NF != n { exit 1 } $3 == "N" { nn++ } END { exit nn == 0 }' recs_tsv.out && ok || bad "per-base tsv: columns or N marks"

# --- pooled text (default for --records and -R) ---------------------------------------------------------------
run recs_pool 0 $E --records "$DATA/tiny-midattn.fa";              close embed_records.bed recs_pool.out
run recs_stdin 0 $E --records - < "$DATA/tiny-midattn.fa";         cmp -s recs_pool.out recs_stdin.out && ok || bad "stdin differs"
run bedpool 0 $E -R "$IO/regions.bed" "$IO/ref.fa"
close embed_regions.bed bedpool.out
grep -q "past the end" bedpool.err && ok || bad "no clipping warning"
run bedpool_gz 0 $E -R "$IO/regions.bed.gz" "$IO/ref.fa.gz";       cmp -s bedpool.out bedpool_gz.out && ok || bad "bgzip reference/BED differ"
run threads 0 $E -@ 1 --batch 1 -R "$IO/regions.bed" "$IO/ref.fa"; close embed_regions.bed threads.out

# --- -r and the equivalent -R line give identical output ------------------------------------------------------
printf '20\t100\t250\n' > one.bed
for pool in mean none; do
  run r_$pool 0 $E -r 20:101-250 --pool $pool "$IO/ref.fa"
  run R_$pool 0 $E -R one.bed --pool $pool "$IO/ref.fa"
  cmp -s r_$pool.out R_$pool.out && ok || bad "-r and -R differ (--pool $pool)"
done
run commas 0 $E -r 20:1,01-2,50 --pool none "$IO/ref.fa";          cmp -s r_none.out commas.out && ok || bad "commas"
run braces 0 $E -r '{HLA-DRB1*12:17}:1-100' --pool mean "$IO/ref.fa"; [ "$(cut -f4 braces.out)" = "HLA-DRB1*12:17:1-100" ] && ok || bad "braces name"

# --- strand '-' equals --records on the reverse-complemented sequence ----------------------------------------
printf '20\t100\t250\tpromoter\t0\t-\n' > minus.bed
bedtools getfasta -s -name -fi "$IO/ref.fa" -bed minus.bed -fo minus.fa 2> /dev/null
run minus 0 $E -R minus.bed --pool none --flank 0 --window 0 "$IO/ref.fa"
run minus_rec 0 $E --records minus.fa --pool none --flank 0 --window 0
cmp -s <(cut -f3- minus.out) <(cut -f3- minus_rec.out) && ok || bad "strand - differs from the reverse-complemented record"
# Tiled, per base: with --rc the rows are strand-symmetric, so strand '-' gives strand '+''s rows in reverse order.
printf '20\t100\t250\tpromoter\t0\t+\n' > plus.bed
run minus_rc 0 $E -R minus.bed --pool none --window 64 --rc "$IO/ref.fa"
run plus_rc 0 $E -R plus.bed --pool none --window 64 --rc "$IO/ref.fa"
paste <(tac minus_rc.out | cut -f4-) <(cut -f4- plus_rc.out) | awk -F'\t' '{ n = NF / 2; for (i = 1; i <= n; i++) { d = $i - $(i + n); if (d * d > 1e-10) exit 1 } }' \
  && [ "$(wc -l < plus_rc.out)" = 150 ] && ok || bad "tiled --rc: strand - rows are not strand + rows reversed"
[ "$(head -1 minus.out | cut -f2)" = 250 ] && [ "$(tail -1 minus.out | cut -f2)" = 101 ] && ok || bad "strand - positions"

# --- tiling: a contig shorter than the window is one pass over the contig, tiled or not; long regions stream ------
run tiled 0 $E -r 20:501-900 --window 4096 --pool none "$IO/ref.fa"
run untiled 0 $E -r 20:501-900 --window 0 --flank 2000 --pool none "$IO/ref.fa"
cmp -s tiled.out untiled.out && ok || bad "tiled != untiled for a contig shorter than the window"
run long 0 $E -r 20 --window 256 --pool none -O npy -o long "$DATA/embed/chr20_5k.fa"
head -c 128 long.npy | grep -q "'shape': (5000, $H)" && ok || bad "long.npy shape"
head -c 128 long.npy | grep -q "'descr': '<f2'" && ok || bad "per-base default dtype is not f16"
head -c 128 long.scored.npy | grep -q "'shape': (5000,)" && ok || bad "long.scored.npy shape"
[ "$(cat long.bed)" = "$(printf '20\t0\t5000\t20:1-5000\t0\t+\t0\t5000')" ] && ok || bad "long.bed"
grep -q '"model_md5"' long.json && grep -q '"window": 256' long.json && grep -q '"stride": 192' long.json && grep -q '"flank": 0' long.json && grep -q '"tiling": "windows on a grid' long.json && ok || bad "long.json"

# --- NPY pooled + row-aligned BED + JSON; safetensors ---------------------------------------------------------
run npy 0 $E -R "$IO/regions.bed" -O npy -o pooled "$IO/ref.fa"
head -c 128 pooled.npy | grep -q "'descr': '<f4', 'fortran_order': False, 'shape': (4, $H)" && ok || bad "pooled.npy header"
cut -f1-4 bedpool.out > a.txt; cut -f1-4 pooled.bed > b.txt; cmp -s a.txt b.txt && ok || bad "pooled.bed rows do not match text rows"
grep -q '"regions": 4' pooled.json && grep -q '"janusdna_version"' pooled.json && ok || bad "pooled.json"
run st 0 $E -R "$IO/regions.bed" --pool none -o per.safetensors "$IO/ref.fa"
[ -s per.safetensors ] && grep -aq '"promoter.scored"' per.safetensors && ok || bad "safetensors keys"
grep -aq '"janusdna_version"' per.safetensors && ! grep -aq janusdna_janusdna per.safetensors && ok || bad "safetensors metadata keys: one janusdna_ prefix"
run rc 0 $E -R "$IO/regions.bed" --rc "$IO/ref.fa";               [ "$(wc -l < rc.out)" = 4 ] && ok || bad "--rc"

# --- no region: every contig; a missing .fai is built -----------------------------------------------------------
cp "$IO/ref.fa" noidx.fa
run all 0 $E --pool mean noidx.fa
[ "$(cut -f1-4 all.out | tr '\t' ' ')" = "$(printf '20 0 2000 20\nHLA-DRB1*12:17 0 130 HLA-DRB1*12:17\nMT 0 75 MT')" ] && ok || bad "all contigs"
grep -q "building index" all.err && [ -s noidx.fa.fai ] && ok || bad "no .fai built"

# --- N-only region: NaN and a warning ---------------------------------------------------------------------------
printf '>n\nNNNNNNNNNNNNNNNNNNNN\n' > n.fa
run nonly 0 $E -r n --pool mean n.fa
grep -q "no A/C/G/T" nonly.err && [ "$(cut -f5 nonly.out)" = nan ] && ok || bad "N-only region"

# --- the README pipeline: bedtools windows in, bedtools intersect out ----------------------------------------
grep -w '^20' "$IO/ref.fa.fai" | cut -f1,2 > genome.txt
printf '20\t600\t700\tpeak\n' > peaks.bed
# (the README's form: makewindows | awk | embed -R - | bedtools intersect -u)
bedtools makewindows -g genome.txt -w 500 | awk '$2 >= 0 && $3 <= 1500' \
  | $E -R - "$IO/ref.fa" | bedtools intersect -u -a - -b peaks.bed > piped.bed
[ "$(cut -f1-3 piped.bed)" = "$(printf '20\t500\t1000')" ] && [ "$(awk -F'\t' '{print NF}' piped.bed)" = $((H + 4)) ] \
  && ok || bad "bedtools pipeline: $(cut -f1-4 piped.bed)"

# --- errors, tried as a new user would: one line, non-zero exit, no partial output -----------------------------
run chr 1 $E -r chr20:1-100 -O npy -o chr "$IO/ref.fa";          one_error chr 'did you mean "20"'; no_file chr.npy; no_file chr.bed
# --chr-prefix: regions and outputs keep the input's names (chr20), with the values of the reference's 20.
run chrfix 0 $E -r chr20:1-100 --chr-prefix --pool mean "$IO/ref.fa"; run chr20 0 $E -r 20:1-100 --pool mean "$IO/ref.fa"
[ "$(cut -f1-4 chrfix.out)" = "$(printf 'chr20\t0\t100\tchr20:1-100')" ] && [ "$(cut -f5- chrfix.out)" = "$(cut -f5- chr20.out)" ] \
  && ok || bad "--chr-prefix -r: $(cut -f1-4 chrfix.out)"
printf 'chr20\t0\t100\tx\n' > chr.bed
run chrbed 0 $E -R chr.bed --chr-prefix "$IO/ref.fa";           [ "$(cut -f1-4 chrbed.out)" = "$(printf 'chr20\t0\t100\tx')" ] && ok || bad "--chr-prefix -R"
run chrbase 0 $E -r chr20:1-50 --chr-prefix "$IO/ref.fa";       run base20 0 $E -r 20:1-50 "$IO/ref.fa"
[ "$(cut -f1 chrbase.out | sort -u)" = chr20 ] && [ "$(cut -f2- chrbase.out)" = "$(cut -f2- base20.out)" ] && ok || bad "--chr-prefix per base"
run nocontig 1 $E -r chrQ:1-100 -o q.tsv "$IO/ref.fa";           one_error nocontig 'it has: 20'; no_file q.tsv
run past 0 $E -r 20:1900-2500 --pool mean "$IO/ref.fa";          grep -q "clipped" past.err && [ "$(cut -f3 past.out)" = 2000 ] && ok || bad "past end not clipped"
run emptyreg 1 $E -r 20:200-100 -o e.tsv "$IO/ref.fa";           one_error emptyreg "20:200-100"; no_file e.tsv
printf '20\t500\t600\n20\t100\t200\n' > unsorted.bed
run unsorted 1 $E -R unsorted.bed -O npy -o u "$IO/ref.fa";      one_error unsorted "unsorted.bed:2"; no_file u.npy; no_file u.bed; no_file u.json
printf '20\t100\t200\nMT\t1\t5\n20\t300\t400\n' > unsorted2.bed
run unsorted2 1 $E -R unsorted2.bed -o u2.bed "$IO/ref.fa";      one_error unsorted2 "unsorted2.bed:3"; no_file u2.bed
printf '20\t100\t200\n20\tabc\t300\n' > malformed.bed
run malformed 1 $E -R malformed.bed -o m.bed "$IO/ref.fa";       one_error malformed "malformed.bed:2"; no_file m.bed
printf '20\t100\t100\n' > emptybed.bed
run emptybed 1 $E -R emptybed.bed -o eb.bed "$IO/ref.fa";        one_error emptybed "emptybed.bed:1"; no_file eb.bed
cp "$IO/ref.gzip.fa.gz" gz.fa.gz
run gzipref 1 $E -r 20:1-100 -o g.tsv gz.fa.gz;                   one_error gzipref "gz.fa.gz"; no_file g.tsv
mkdir ro && cp "$IO/ref.fa" ro/ref.fa && chmod 555 ro
# The index cannot be built beside a reference in a read-only directory (as "nobody" when we are root).
mkdir -m 777 w
as_nobody $E -r 20:1-100 -o w/ro.tsv ro/ref.fa > roidx.out 2> roidx.err; rc=$?
if [ $rc = 125 ]; then skip "roidx: cannot run as an unprivileged user here"
else [ $rc = 1 ] && ok || bad "roidx: exit $rc"; one_error roidx "ro/ref.fa"; no_file w/ro.tsv; fi
chmod 755 ro
run badmodel 1 $E -m "$IO/ref.fa" -r 20:1-100 -o bm.tsv "$IO/ref.fa"; one_error badmodel "ref.fa"; no_file bm.tsv
run nomodel 1 env JANUSDNA_MODEL=no-such-model.safetensors $E -r 20:1-100 -o nm.tsv "$IO/ref.fa"
one_error nomodel "no-such-model.safetensors"; no_file nm.tsv
# Without -m and $JANUSDNA_MODEL, the bundled default model is found (build tree or installed data directory).
run defaultmodel 0 env -u JANUSDNA_MODEL $E -r 20:1-100 -o dm.tsv "$IO/ref.fa"; [ -s dm.tsv ] && ok || bad "no output with the default model"
run missingref 1 $E -r 20:1-100 no-such.fa;                       one_error missingref "no-such.fa"
run stride 1 $E --window 100 --stride 200 -r 20:1-1000 -o s.tsv "$IO/ref.fa"; one_error stride "--stride"; no_file s.tsv
run npystdout 1 $E -r 20:1-100 -O npy "$IO/ref.fa";               one_error npystdout "-o PREFIX"
run bothr 1 $E -r 20:1-100 -R one.bed "$IO/ref.fa";               one_error bothr "not both"
printf '>a\nACGT\n>a\nACGT\n' > dup.fa
run duprec 1 $E --records dup.fa -O npy -o d;                      one_error duprec "appears twice"; no_file d.npy; no_file d.json
printf '>a\nACGT\n>b\nAC*GT\n' > badchar.fa
run badchar 1 $E --records badchar.fa -O npy -o bc;                one_error badchar "position 3"; no_file bc.npy
run nodir 1 $E -r 20:1-100 -o /nonexistent-dir/x.tsv "$IO/ref.fa"; one_error nodir "/nonexistent-dir/x.tsv: output directory /nonexistent-dir does not exist"
if [ -w /dev/full ]; then
  $E -r 20:1-100 "$IO/ref.fa" > /dev/full 2> full.err && bad "writing to a full disk succeeded" || ok
  one_error full "writ"
fi

# --- per-base rows depend on the position only: overlapping regions, --batch and -@ agree, digit for digit ------
run pb_big 0 $E --window 64 --pool none -r 20:101-900 "$IO/ref.fa"
run pb_parts 0 $E --window 64 --pool none -@ 1 --batch 1 -r 20:500-530 -r 20:890-950 -r 20:101-101 "$IO/ref.fa"
awk -F'\t' 'NR == FNR { r[$2] = $0; next } ($2 in r) { n++; if (r[$2] != $0) bad = 1 } END { exit bad || n != 43 }' pb_big.out pb_parts.out && ok || bad "per-base rows depend on the region"


finish cli-embed
