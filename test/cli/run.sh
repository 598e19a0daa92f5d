#!/usr/bin/env bash
# Command-line tests: run janusdna as a user would and compare with checked-in expected output
# (test/cli/expected/*; regenerate with UPDATE=1 after checking the difference is intended).
# Usage: run.sh PATH/TO/janusdna PATH/TO/test
set -u
BIN=$(readlink -f "$1"); TEST=$(readlink -f "$2"); DATA=$TEST/data; EXP=$TEST/cli/expected
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
export JANUSDNA_MODEL=$DATA/tiny-midattn.model.safetensors
pass=0; fail=0
ok()   { pass=$((pass+1)); }
bad()  { fail=$((fail+1)); echo "FAIL: $*" >&2; }

# run NAME EXPECTED_STATUS CMD...: runs CMD, keeps stdout in NAME.out and stderr in NAME.err.
run() {
  local name=$1 want=$2; shift 2
  "$@" > "$name.out" 2> "$name.err"; local rc=$?
  if [ "$want" = 0 ] && [ $rc -ne 0 ]; then bad "$name: exit $rc: $(head -3 "$name.err")"; return 1; fi
  if [ "$want" != 0 ] && [ $rc -eq 0 ]; then bad "$name: succeeded but should have failed"; return 1; fi
  ok
}
# golden NAME FILE: FILE equals expected/NAME.
golden() {
  if [ "${UPDATE:-0}" = 1 ]; then cp "$2" "$EXP/$1"; ok; return; fi
  if cmp -s "$2" "$EXP/$1"; then ok; else bad "$1 differs from expected:"; diff "$EXP/$1" "$2" | head -5 >&2; fi
}
# one_error NAME PATTERN: NAME.err is one line "janusdna CMD: ..." containing PATTERN.
one_error() {
  local n; n=$(wc -l < "$1.err")
  if [ "$n" -ne 1 ]; then bad "$1: expected one error line, got $n: $(head -3 "$1.err")"; return; fi
  if grep -q -- "$2" "$1.err" && grep -q "^janusdna " "$1.err"; then ok; else bad "$1: error '$(cat "$1.err")' lacks '$2'"; fi
}
# close NAME FILE: like golden, but numbers may differ by 2e-6 (thread counts change the summation order).
close() {
  if [ "${UPDATE:-0}" = 1 ]; then cp "$2" "$EXP/$1"; ok; return; fi
  if paste "$EXP/$1" "$2" | awk -F'\t' '{ n = NF / 2; for (i = 1; i <= n; i++) { a = $i; b = $(i + n);
        if (a != b && (a + 0 != a || (a - b > 2e-6 || b - a > 2e-6))) { print NR": "$0; exit 1 } } }' >&2 \
     && [ "$(wc -l < "$EXP/$1")" = "$(wc -l < "$2")" ]; then ok; else bad "$1 differs from expected"; fi
}
no_file() { if [ -e "$1" ] || ls "$1".tmp.* >/dev/null 2>&1; then bad "partial output $1 left behind"; else ok; fi; }

# --- the dispatcher -----------------------------------------------------------------------------------------
run noargs 1 "$BIN";                       grep -q "predict" noargs.err && ok || bad "usage lists no commands"
run version 0 "$BIN" --version;            grep -q "LibTorch" version.out && grep -q "htslib" version.out && grep -q "BLAS" version.out && ok || bad "--version incomplete"
run help 0 "$BIN" help predict;            grep -q -- "--model" help.out && ok || bad "help predict"
run helpflag 0 "$BIN" predict --help;      cmp -s help.out helpflag.out && ok || bad "help CMD differs from CMD --help"
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

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
