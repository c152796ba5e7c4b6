#!/usr/bin/env bash
# Runs a suite N times and compares verdicts case by case: prints a summary, exits non-zero if any case's verdict
# (pass/fail and observed outcome) differed between runs. Usage: ci/repeat.sh N PATH… [-- extra azrw run flags]
# AZRW selects the binary (default: target/release/azrw); --jobs 2 unless given after `--`.
set -euo pipefail
n=${1:?usage: ci/repeat.sh N PATH… [-- azrw run flags]}
shift
paths=()
while [[ $# -gt 0 && $1 != -- ]]; do paths+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
extra=("$@")
[[ " ${extra[*]} " == *" --jobs "* ]] || extra+=(--jobs 2)
azrw=${AZRW:-target/release/azrw}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$n"); do
  # One line per case: "case-id<TAB>result<TAB>observed", from the console table.
  "$azrw" run "${paths[@]}" --no-provision --out "$work/out-$i" "${extra[@]}" >"$work/run-$i.log" 2>&1 || true
  awk -F'  +' '/\[prometheus@/ && NF >= 4 && $0 !~ /^(pass|FAIL) / {print $1 "\t" $4 "\t" $3}' "$work/run-$i.log" \
    | sort >"$work/verdicts-$i.tsv"
  echo "run $i: $(grep -c $'\tpass\t' "$work/verdicts-$i.tsv" || true) pass, $(grep -vc $'\tpass\t' "$work/verdicts-$i.tsv" || true) not pass"
done
status=0
for i in $(seq 2 "$n"); do
  if ! diff -u "$work/verdicts-1.tsv" "$work/verdicts-$i.tsv" >"$work/diff-$i"; then
    echo "run $i differs from run 1:"; sed -n '3,$p' "$work/diff-$i" | grep '^[-+]'; status=1
  fi
done
cases=$(wc -l <"$work/verdicts-1.tsv")
if [[ $status == 0 ]]; then echo "identical verdicts in $n runs ($cases cases)"; else echo "verdicts differ between runs"; fi
exit $status
