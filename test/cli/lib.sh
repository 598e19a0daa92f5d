# Shared helpers for the command-line tests (test/cli/*.sh). Each script is run as
#   bash test/cli/NAME.sh PATH/TO/janusdna PATH/TO/test
# runs janusdna as a user would, compares with checked-in expected output (test/cli/expected/*; regenerate with
# UPDATE=1 after checking that the difference is intended) and ends with "NAME: N passed, N failed".
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
# same_numbers A B [TOL]: two tables equal except that numbers may differ by TOL (default 2e-6).
same_numbers() {
  paste "$1" "$2" | awk -F'\t' -v tol="${3:-2e-6}" '{ n = NF / 2; for (i = 1; i <= n; i++) { a = $i; b = $(i + n);
        if (a != b && (a + 0 != a || (a - b > tol || b - a > tol))) { print NR": "$0; exit 1 } } }' >&2 \
     && [ "$(wc -l < "$1")" = "$(wc -l < "$2")" ]
}
# close NAME FILE: like golden, but numbers may differ by 2e-6 (thread counts change the summation order).
close() {
  if [ "${UPDATE:-0}" = 1 ]; then cp "$2" "$EXP/$1"; ok; return; fi
  if same_numbers "$EXP/$1" "$2"; then ok; else bad "$1 differs from expected"; fi
}
no_file() { if [ -e "$1" ] || ls "$1".tmp.* >/dev/null 2>&1; then bad "partial output $1 left behind"; else ok; fi; }

# finish NAME: prints the tally and sets the exit status.
finish() { echo "$1: $pass passed, $fail failed"; [ $fail -eq 0 ]; }
