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
# An expected failure is janusdna's own error status exactly: a crash (134, 139, ...) or a sanitizer report
# never passes.
run() {
  local name=$1 want=$2; shift 2
  "$@" > "$name.out" 2> "$name.err"; local rc=$?
  if grep -qE "^(==[0-9]+==ERROR: |SUMMARY: (Address|Undefined|Leak)Sanitizer)|runtime error: " "$name.err"; then
    bad "$name: sanitizer report: $(grep -m1 -E "ERROR|runtime error" "$name.err")"; return 1; fi
  if [ "$want" = 0 ] && [ $rc -ne 0 ]; then bad "$name: exit $rc: $(head -3 "$name.err")"; return 1; fi
  if [ "$want" != 0 ] && [ $rc -eq 0 ]; then bad "$name: succeeded but should have failed"; return 1; fi
  if [ "$want" != 0 ] && [ $rc -ne "$want" ]; then bad "$name: exit $rc, expected $want (a crash is not an expected failure): $(tail -2 "$name.err")"; return 1; fi
  ok
}
# as_nobody CMD...: runs CMD as the unprivileged user "nobody" when the tests run as root (root ignores file
# permissions, and CI runs as root); returns 125 when that cannot be done here, so the caller reports a skip.
as_nobody() {
  if [ "$(id -u)" != 0 ]; then "$@"; return; fi
  chmod 755 "$TMP"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" --version > /dev/null 2>&1 || return 125
  setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}
skipped=0
skip() { skipped=$((skipped+1)); echo "SKIP: $*" >&2; }
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
# usage_error NAME TEXT: a command-line usage error: "janusdna CMD: ...TEXT..." and the --help hint.
usage_error() {
  if [ "$(wc -l < "$1.err")" = 2 ] && head -1 "$1.err" | grep -q -- "^janusdna .*$2" && grep -q -- "--help" "$1.err"; then ok
  else bad "$1: expected a usage error with '$2', got: $(head -3 "$1.err")"; fi
}
# same_numbers A B [TOL]: two tables equal except that numbers may differ by TOL (default 2e-6) or by one unit of
# the last digit A prints, at most the 6th significant digit (12.3457 is good to 1e-4: a rounding flip of the
# last digit is not a failure).
same_numbers() {
  paste "$1" "$2" | awk -F'\t' -v tol="${3:-2e-6}" '
    function unit(s,   p, e, m, d, u, g) { e = 0; m = s; p = index(tolower(s), "e")
      if (p) { e = substr(s, p + 1) + 0; m = substr(s, 1, p - 1) }
      d = index(m, "."); u = 10 ^ (e - (d ? length(m) - d : 0))
      # %g trims trailing zeros ("0.5"): never looser than the 6th significant digit
      if (s + 0 != 0) { g = 10 ^ (int(log((s < 0 ? -s : s)) / log(10) + 100) - 100 - 5); if (g < u) u = g }
      return u }
    { n = NF / 2; for (i = 1; i <= n; i++) { a = $i; b = $(i + n); if (a == b) continue
        t = tol; u = 1.000001 * unit(a); if (u > t) t = u
        if (a + 0 != a || a - b > t || b - a > t) { print NR": "$0; exit 1 } } }' >&2 \
     && [ "$(wc -l < "$1")" = "$(wc -l < "$2")" ]
}
# close NAME FILE: like golden, but numbers may differ by 2e-6 (thread counts change the summation order).
close() {
  if [ "${UPDATE:-0}" = 1 ]; then cp "$2" "$EXP/$1"; ok; return; fi
  if same_numbers "$EXP/$1" "$2"; then ok; else bad "$1 differs from expected"; fi
}
no_file() { if [ -e "$1" ] || ls "$1".tmp.* >/dev/null 2>&1; then bad "partial output $1 left behind"; else ok; fi; }

# finish NAME: prints the tally and sets the exit status.
finish() {
  if [ $skipped -gt 0 ]; then echo "$1: $pass passed, $fail failed, $skipped skipped"; else echo "$1: $pass passed, $fail failed"; fi
  [ $fail -eq 0 ]
}
