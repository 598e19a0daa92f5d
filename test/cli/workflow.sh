#!/usr/bin/env bash
# The Snakemake workflow (workflow/Snakefile) with `snakemake --cores 2`: a VCF scored in chunks equals one whole-file
# run record for record; a failing chunk stops the workflow with no merged output; a rerun after deleting one chunk
# runs one chunk job; tracks and BED embeddings merge into one bigWig per track and one NPY + BED.
. "$(dirname "$0")/lib.sh"
SNAKEFILE=$TEST/../workflow/Snakefile
V=$DATA/variants
REF=$V/ref.fa
if ! command -v snakemake > /dev/null; then bad "snakemake is not installed (scripts/install-deps.sh installs it)"; finish cli-workflow; exit; fi
# The Python that runs snakemake (Debian's, with pyBigWig) reads the bigWigs back.
PY=$(head -1 "$(command -v snakemake)" | sed -n 's/^#! *//p'); [ -x "${PY%% *}" ] || PY=python3
# janusdna on the PATH as the workflow runs it; the tiny model through --config model=.
mkdir bin; ln -s "$BIN" bin/janusdna; export PATH=$TMP/bin:$PATH
MODEL=$JANUSDNA_MODEL
SM() { local out=$1; shift; snakemake -s "$SNAKEFILE" --cores 2 -d "$out" --config reference="$REF" model="$MODEL" threads=1 window=128 "$@"; }
Q='%CHROM\t%POS\t%REF\t%ALT\t%JANUS_LLR\t%JANUS_PLL\n'

# The 48 SNVs and 194 indels of the 301,733 bp contig in one sorted, indexed VCF; chunk_bp 100,000 gives 4 chunks.
(bcftools view -h "$V/indels.vcf.gz"; (bcftools view -H "$V/clinvar.vcf" | awk -F"\t" -v OFS="\t" "{ \$8 = \".\"; print }"; bcftools view -H "$V/indels.vcf.gz") | sort -k2,2n) \
  | bgzip > all.vcf.gz && tabix -p vcf all.vcf.gz
N=$(bcftools view -H all.vcf.gz | wc -l)
run single 0 "$BIN" score-variants --window 128 -f "$REF" -Oz -o single.vcf.gz all.vcf.gz

# --- chunks merged == one whole-file run ------------------------------------------------------------------------
run wf 0 SM out vcf="$PWD/all.vcf.gz" chunk_bp=100000
[ "$(ls out/chunks/vcf/*.bcf 2> /dev/null | wc -l)" = 4 ] && ok || bad "expected 4 chunks: $(ls out/chunks/vcf)"
[ -s out/scored.vcf.gz ] && [ -s out/scored.vcf.gz.tbi ] && ok || bad "no scored.vcf.gz + .tbi"
bcftools view -H single.vcf.gz > single.txt; bcftools view -H out/scored.vcf.gz > merged.txt
[ "$(wc -l < merged.txt)" = "$N" ] && cmp -s single.txt merged.txt && ok || { bad "merged records differ from the whole-file run"; diff single.txt merged.txt | head -4 >&2; }
[ "$(bcftools query -i 'JANUS_PLL!="."' -f '%POS\n' out/scored.vcf.gz | wc -l)" = "$N" ] && ok || bad "not every record scored"
[ "$(tabix out/scored.vcf.gz 20:100001-200000 | wc -l)" = "$(awk '$2 > 100000 && $2 <= 200000' single.txt | wc -l)" ] && ok || bad "tabix index"
# A VCF without an index is indexed first; plain VCF input works the same.
bcftools view all.vcf.gz > plain.vcf
run wf_plain 0 SM out_plain vcf="$PWD/plain.vcf" chunk_bp=100000
bcftools view -H out_plain/scored.vcf.gz | cmp -s - single.txt && ok || bad "unindexed VCF: records differ"
# Relative paths are taken from the directory snakemake is started from.
run wf_rel 0 snakemake -s "$SNAKEFILE" --cores 2 -d out_rel --config reference="$REF" model="$MODEL" threads=1 window=128 vcf=all.vcf.gz chunk_bp=150000
bcftools view -H out_rel/scored.vcf.gz | cmp -s - single.txt && ok || bad "relative VCF path: records differ"

# --- a rerun redoes only what is missing ------------------------------------------------------------------------
run noop 0 SM out vcf="$PWD/all.vcf.gz" chunk_bp=100000
grep -q "Nothing to be done" noop.err && ok || bad "a complete rerun ran jobs: $(grep -A8 'Job stats' noop.err)"
rm out/chunks/vcf/2.bcf
run rerun 0 SM out vcf="$PWD/all.vcf.gz" chunk_bp=100000
grep -Eq '^score_chunk +1( |$)' rerun.err && ! grep -Eq '^(index_vcf) ' rerun.err && ok || bad "rerun after deleting one chunk: $(grep -A8 'Job stats' rerun.err)"
[ "$(grep -c "rule score_chunk:" rerun.err)" = 1 ] && ok || bad "more than one chunk job ran"
bcftools view -H out/scored.vcf.gz | cmp -s - single.txt && ok || bad "records differ after the rerun"

# --- a failing chunk: the workflow fails, no merged file --------------------------------------------------------
# A janusdna that fails on the chunk 20:100001-200000, as a crash or a bad node would.
mkdir failbin
printf '#!/bin/sh\ncase "$*" in *20:100001-200000*) echo "janusdna score-variants: simulated failure" >&2; exit 1;; esac\nexec %q "$@"\n' "$BIN" > failbin/janusdna
chmod +x failbin/janusdna
run fail 1 SM out_fail vcf="$PWD/all.vcf.gz" chunk_bp=100000 janusdna="$PWD/failbin/janusdna"
no_file out_fail/scored.vcf.gz; no_file out_fail/scored.vcf.gz.tbi; no_file out_fail/chunks/vcf/1.bcf
grep -q "simulated failure" out_fail/logs/score/1.log && ok || bad "the chunk's log lacks its error"

# --- tracks: one bigWig per track, equal to one run over the same regions --------------------------------------
printf '20\t1000\t1400\n20\t99900\t100300\n20\t1300\t2000\n' > trk.bed
run wf_track 0 SM out_trk tracks=pref,entropy track_bed="$PWD/trk.bed" chunk_bp=200
[ "$(ls out_trk/chunks/track/*.pref.bedgraph | wc -l)" -ge 3 ] && ok || bad "tracks not chunked"
run trk_single 0 "$BIN" track --window 128 -t pref,entropy -R trk.bed -O bigwig -o trk "$REF"
dump() { $PY -c 'import pyBigWig, sys
b = pyBigWig.open(sys.argv[1])
for c, n in b.chroms().items():
    for s, e, v in (b.intervals(c) or []):
        for x in range(s, e): print(c, x, "%.6g" % v, sep="\t")' "$1"; }
for t in pref entropy; do
  dump out_trk/tracks/$t.bw > wf.$t.txt; dump trk.$t.bw > single.$t.txt
  [ "$(wc -l < wf.$t.txt)" = 1400 ] && cmp -s wf.$t.txt single.$t.txt && ok || bad "track $t differs from one run ($(wc -l < wf.$t.txt) values)"
done

# --- embeddings of a (sorted) BED: one NPY + its row-aligned BED, in input order --------------------------------
printf '20\t100\t1100\tr1\n20\t5000\t6000\tr2\n20\t7000\t7500\tr3\n20\t250000\t251000\tr4\n20\t300000\t301000\tr5\n' > emb.bed
run wf_embed 0 SM out_emb embed_bed="$PWD/emb.bed" embed_chunk=2
[ "$(ls out_emb/chunks/embed/*.npy | wc -l)" = 3 ] && ok || bad "embeddings not in 3 chunks"
run emb_single 0 "$BIN" embed --window 128 -R emb.bed -O npy -o emb "$REF"
cmp -s out_emb/embeddings.bed emb.bed && ok || bad "merged BED differs from one run"
python3 -c 'import sys, ast, struct
def rows(p):
    f = open(p, "rb"); assert f.read(6) == b"\x93NUMPY"; f.read(2)
    n = struct.unpack("<H", f.read(2))[0]; d = ast.literal_eval(f.read(n).decode()); data = f.read()
    assert d["descr"] == "<f4", d; return d["shape"], struct.unpack("<%df" % (len(data) // 4), data)
(sa, a), (sb, b) = rows(sys.argv[1]), rows(sys.argv[2])
sys.exit(0 if sa == sb and sa[0] == 5 and a == b else 1)' out_emb/embeddings.npy emb.npy \
  && ok || bad "merged NPY differs from one run"

finish cli-workflow
