#!/usr/bin/env bash
# Runs a suite N times and compares verdicts case by case. Exits non-zero if any case's verdict (pass/FAIL and
# observed outcome) differed between runs, or if a run produced no complete verdict table. The last line says which:
#   REPEAT OK: identical verdicts in N runs (C cases: P pass, F FAIL each time)
#   REPEAT FAILED: …
# Usage: ci/repeat.sh N PATH… [-- extra azrw run flags]
# AZRW selects the binary (default: target/release/azrw); azrw's default --jobs unless given after `--`. Run logs and bundles
# are kept (and their directory printed) when the verdicts differ; AZRW_REPEAT_KEEP=1 keeps them anyway.
# AZRW_REPEAT_LOAD_LAST=1 runs the last run with every core saturated (stress-ng --cpu 0, at normal priority), so
#   AZRW_REPEAT_LOAD_LAST=1 ci/repeat.sh 4 scenarios/retry scenarios/tokens
# compares three idle runs and one under full CPU load: timing checks must reach the same verdicts either way.
set -euo pipefail
n=${1:?usage: ci/repeat.sh N PATH… [-- azrw run flags]}
shift
paths=()
while [[ $# -gt 0 && $1 != -- ]]; do paths+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
extra=("$@")
[[ ${#paths[@]} -gt 0 ]] || { echo "usage: ci/repeat.sh N PATH… [-- azrw run flags]" >&2; exit 2; }
azrw=${AZRW:-target/release/azrw}
[[ -x $azrw ]] || { echo "REPEAT FAILED: $azrw is not an executable (build it, or set AZRW)" >&2; exit 2; }
work=$(mktemp -d)
keep=${AZRW_REPEAT_KEEP:-0}
trap '[[ $keep == 1 ]] || rm -rf "$work"' EXIT

fail() {
  keep=1
  echo "REPEAT FAILED: $* (logs in $work)"
  exit 1
}

load_last=${AZRW_REPEAT_LOAD_LAST:-0}
if [[ $load_last == 1 ]]; then
  command -v stress-ng >/dev/null || { echo "REPEAT FAILED: AZRW_REPEAT_LOAD_LAST=1 needs stress-ng (apt-get install stress-ng)" >&2; exit 2; }
fi
stress=
trap '[[ -z $stress ]] || kill "$stress" 2>/dev/null; [[ $keep == 1 ]] || rm -rf "$work"' EXIT

for i in $(seq 1 "$n"); do
  started=$SECONDS
  label=idle
  if [[ $load_last == 1 && $i == "$n" ]]; then
    stress-ng --cpu 0 --quiet >/dev/null 2>&1 &
    stress=$!
    label="under load (stress-ng --cpu 0 on $(nproc) cores)"
  fi
  "$azrw" run "${paths[@]}" --no-provision --out "$work/out-$i" "${extra[@]}" >"$work/run-$i.log" 2>&1 || true
  if [[ -n $stress ]]; then
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    kill "$stress" 2>/dev/null; wait "$stress" 2>/dev/null || true
    stress=
    label="$label, load average $load at its end"
  fi
  # The console table: "CASE  EXPECTED  OBSERVED  RESULT  EVIDENCE", columns separated by two or more spaces.
  # One line per case: "case-id<TAB>result<TAB>observed". The per-case progress lines ("pass …", "FAIL …") and
  # the details printed after the table are not rows.
  awk -F'  +' '/\[prometheus@/ && NF >= 4 && $0 !~ /^(pass|FAIL) / {print $1 "\t" $4 "\t" $3}' "$work/run-$i.log" \
    | sort >"$work/verdicts-$i.tsv"
  rows=$(wc -l <"$work/verdicts-$i.tsv")
  # The run's own count ("63 passed, 0 failed") must match the rows read, or the table format has changed.
  summary=$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' "$work/run-$i.log" | tail -1 || true)
  [[ -n $summary ]] || fail "run $i printed no verdict summary; its log ends with: $(tail -3 "$work/run-$i.log" | tr '\n' ' ')"
  read -r passed _ failed _ <<<"$summary"
  (( rows == passed + failed )) || fail "run $i: read $rows table rows but azrw reported \"$summary\""
  (( rows > 0 )) || fail "run $i ran no case"
  echo "run $i/$n: $passed pass, $failed FAIL ($((SECONDS - started))s, $label)"
done

status=0
for i in $(seq 2 "$n"); do
  if ! diff -u "$work/verdicts-1.tsv" "$work/verdicts-$i.tsv" >"$work/diff-$i"; then
    echo "run $i differs from run 1 (- run 1, + run $i):"
    sed -n '3,$p' "$work/diff-$i" | grep '^[-+]' || true
    status=1
  fi
done
cases=$(wc -l <"$work/verdicts-1.tsv")
# Results by kind, as the table names them: "63 pass, 6 known-vulnerable, 0 FAIL".
results=$(cut -f2 "$work/verdicts-1.tsv" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')
grep -q $'\tFAIL\t' "$work/verdicts-1.tsv" || results="$results, 0 FAIL"
if [[ $status == 0 ]]; then
  echo "REPEAT OK: identical verdicts in $n runs ($cases cases: $results each time)"
else
  fail "verdicts differ between runs ($cases cases; see the lines above)"
fi
