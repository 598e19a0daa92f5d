#!/usr/bin/env bash
# Command-line tests of the dispatcher, info and predict.
. "$(dirname "$0")/lib.sh"

# --- the dispatcher -----------------------------------------------------------------------------------------
run noargs 1 "$BIN";                       grep -q "predict" noargs.err && ok || bad "usage lists no commands"
run version 0 "$BIN" --version;            grep -q "LibTorch" version.out && grep -q "htslib" version.out && grep -q "BLAS" version.out && ok || bad "--version incomplete"
run help 0 "$BIN" help predict;            grep -q -- "--model" help.out && ok || bad "help predict"
run helpflag 0 "$BIN" predict --help;      cmp -s help.out helpflag.out && ok || bad "help CMD differs from CMD --help"
run helpdef 0 "$BIN" pretrain --help;      grep -q -- "--steps INT=1000" helpdef.out && ok || bad "--help shows no defaults"
run usage 1 "$BIN" predict;                grep -q "Usage" usage.err && ok || bad "predict without input prints no usage"
run unknown 1 "$BIN" frobnicate

# --- info ---------------------------------------------------------------------------------------------------
run info 0 "$BIN" info "$DATA/tiny-midattn.model.safetensors"
sed "s|$DATA|DATA|" info.out > info.txt; golden info.txt info.txt
run infojson 0 "$BIN" info --json "$DATA/tiny-nomidattn.model.safetensors"
grep -q '"activated"' infojson.out && ok || bad "info --json"

# --- predict ------------------------------------------------------------------------------------------------
run predict 0 "$BIN" predict "$DATA/tiny-midattn.fa";  close predict.tsv predict.out
run predict_stdin 0 "$BIN" predict - < "$DATA/tiny-midattn.fa"; cmp -s predict.out predict_stdin.out && ok || bad "stdin differs"
gzip -c "$DATA/tiny-midattn.fa" > in.fa.gz
run predict_gz 0 "$BIN" predict -@ 1 -o gz.tsv in.fa.gz; close predict.tsv gz.tsv
run predict_st 0 "$BIN" predict -o out.safetensors "$DATA/tiny-midattn.fa"; [ -s out.safetensors ] && ok || bad "no safetensors"
# Long records are tiled on the grid track uses: away from the record's end, a base's probabilities equal track's
# over the same bases of the reference (the record is the contig's first 3,000 bases, so the grids coincide);
# --window 0 is one pass, which for records shorter than the window is what the default gives too.
(echo ">long"; sed -n 2,51p "$DATA/variants/ref.fa") > long.fa
run tiled 0 "$BIN" predict --window 256 -o tiled.tsv long.fa
run tiled_track 0 "$BIN" track --window 256 -t pA,pC,pG,pT -O bedgraph -o tt --no-version -r 20:1-2500 "$DATA/variants/ref.fa"
paste tt.pA.bedgraph tt.pC.bedgraph tt.pG.bedgraph tt.pT.bedgraph | awk -F'\t' '{ printf "%d\t%.6f\t%.6f\t%.6f\t%.6f\n", $3, $4, $8, $12, $16 }' > tt.txt
awk -F'\t' 'NR > 1 && $2 <= 2500 && $3 ~ /[ACGT]/ { print $2"\t"$4"\t"$5"\t"$6"\t"$7 }' tiled.tsv > tp.txt
[ "$(wc -l < tp.txt)" -gt 2000 ] && same_numbers tt.txt tp.txt 2e-6 && ok || bad "tiled predict differs from track"
run onepass 0 "$BIN" predict --window 0 -o onepass.tsv long.fa
! cmp -s onepass.tsv tiled.tsv && [ "$(wc -l < onepass.tsv)" = "$(wc -l < tiled.tsv)" ] && ok || bad "--window 0 is not one pass"
run short0 0 "$BIN" predict --window 0 "$DATA/tiny-midattn.fa"; cmp -s short0.out predict.out && ok || bad "--window 0 on short records"
run predwin5 1 "$BIN" predict --window 5 "$DATA/tiny-midattn.fa"; one_error predwin5 "at least 16"
# Probabilities of each row sum to 1.
awk -F'\t' 'NR>1 { s=$4+$5+$6+$7; if (s<0.9999 || s>1.0001) bad=1 } END { exit bad }' predict.out && ok || bad "rows do not sum to 1"

# --- bad input, tried as a new user would -------------------------------------------------------------------
: > empty.fa
run empty 1 "$BIN" predict -o e.tsv empty.fa;           one_error empty "empty.fa"; no_file e.tsv
head -c 3000 "$DATA/tiny-midattn.model.safetensors" > binary.fa
run binary 1 "$BIN" predict -o b.tsv binary.fa;         one_error binary "binary.fa"; no_file b.tsv
head -c 60 in.fa.gz > trunc.fa.gz
run truncated 1 "$BIN" predict -o t.tsv trunc.fa.gz;    one_error truncated "trunc.fa.gz"; no_file t.tsv
printf ">ok\nACGTACGT\n>bad\nACGT5ACGT\n" > digit.fa
run digit 1 "$BIN" predict -o d.tsv digit.fa;           one_error digit "position 5"; no_file d.tsv
run missing 1 "$BIN" predict no-such-file.fa;           one_error missing "no-such-file.fa"
head -c 1000 "$DATA/tiny-midattn.model.safetensors" > trunc.safetensors
run badmodel 1 "$BIN" predict -m trunc.safetensors "$DATA/tiny-midattn.fa"; one_error badmodel "trunc.safetensors"
run notmodel 1 "$BIN" info "$DATA/tiny-midattn.fa";     one_error notmodel "tiny-midattn.fa"
run nodir 1 "$BIN" predict -o /nonexistent-dir/x.tsv "$DATA/tiny-midattn.fa"; one_error nodir "/nonexistent-dir/x.tsv"
if [ -w /dev/full ]; then
  "$BIN" predict "$DATA/tiny-midattn.fa" > /dev/full 2> full.err && bad "writing to a full disk succeeded" || ok
  one_error full "writ"
fi

# --- -O: one vocabulary everywhere; format names are aliases of the letters; a type the command does not write is
# refused at parsing (a usage error: the line, then the --help hint) naming the ones it does --------------------------------------------------------------
run o_v 0 "$BIN" predict -O v "$DATA/tiny-midattn.fa";     cmp -s o_v.out predict.out && ok || bad "predict -O v differs from the default"
run o_tsv 0 "$BIN" predict -O tsv "$DATA/tiny-midattn.fa"; cmp -s o_tsv.out predict.out && ok || bad "predict -O tsv (alias of v) differs"
run o_bad 1 "$BIN" predict -O b -o x.bcf "$DATA/tiny-midattn.fa"; usage_error o_bad "one of v, safetensors"; no_file x.bcf
run o_ebed 0 "$BIN" embed --records "$DATA/tiny-midattn.fa" -O bed -o e_bed.txt
run o_ev 0 "$BIN" embed --records "$DATA/tiny-midattn.fa" -O v -o e_v.txt
cmp -s e_bed.txt e_v.txt && [ -s e_v.txt ] && ok || bad "embed -O bed (alias of v) differs from -O v"
run o_ebad 1 "$BIN" embed --records "$DATA/tiny-midattn.fa" -O bw -o e.bw; usage_error o_ebad "one of v, npy, safetensors"
run o_tbw 1 "$BIN" track -O npy -o t.npy -r 20:1001-1100 "$DATA/variants/ref.fa"; usage_error o_tbw "npy is not an output type"

# --- an option that takes values takes one per occurrence: the positional argument after it stays positional -----
REF=$DATA/variants/ref.fa
run opt_last 0 "$BIN" track --window 64 -O bedgraph --no-version -r 20:1001-1100 -r 20:2001-2050 "$REF"
run opt_mid 0 "$BIN" track --window 64 -r 20:1001-1100 "$REF" -r 20:2001-2050 -O bedgraph --no-version
[ "$(wc -l < opt_mid.out)" = 150 ] && cmp -s opt_mid.out opt_last.out && ok || bad "track -r R ref.fa: $(head -2 opt_mid.err)"
cp "$DATA/train/chr20-40k.fa" "$DATA/train/chr20-40k.fa.fai" .
run opt_lm 0 "$BIN" evaluate -@ 1 --lm -r 20:30,001-30,500 chr20-40k.fa --window 128
grep -q "1 region(s), 500 bases scored" opt_lm.out && ok || bad "evaluate --lm -r R ref.fa: $(head -2 opt_lm.err)"
run opt_valid 0 "$BIN" pretrain --config "$DATA/train/tiny.config.json" --seq-len 64 --batch 2 --steps 1 --checkpoint-every 0 \
  --valid-every 0 -@ 1 --valid-regions 20:35,001-40,000 chr20-40k.fa -o v.safetensors
grep -q "34937 train bases" opt_valid.err && ok || bad "pretrain --valid-regions R genome.fa: $(tail -2 opt_valid.err)"
# pretrain reads its genome as every command reads a reference: -f as well, and --chr-prefix for the regions.
run opt_f 0 "$BIN" pretrain --config "$DATA/train/tiny.config.json" --seq-len 64 --batch 2 --steps 1 --checkpoint-every 0 \
  --valid-every 0 -@ 1 --valid-regions chr20:35,001-40,000 --chr-prefix -f chr20-40k.fa -o f.safetensors
grep -q "34937 train bases" opt_f.err && ok || bad "pretrain -f REF --chr-prefix --valid-regions chr20:...: $(tail -2 opt_f.err)"

finish cli-core
