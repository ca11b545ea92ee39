#!/usr/bin/env bash
# Whole-process numbers for `reportbot ask --jsonl`: start-up time, throughput
# on 20,000 questions, peak memory. Run: bash benches/process.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/reportbot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# 20,000 questions: the test question set repeated.
python3 - "$work/q.txt" <<'PY'
import json, sys
qs = [json.loads(l)["q"] for f in ("tests/questions/cases.jsonl", "tests/questions/forms.jsonl")
      for l in open(f, encoding="utf-8") if l.strip()]
qs = [q.replace("\n", " ") for q in qs]
out = [qs[i % len(qs)] for i in range(20000)]
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(out) + "\n")
PY
# Start-up: one question, best of 20 runs.
best=999999
for _ in $(seq 20); do
  s=$(date +%s%N); "$bin" ask "李彬" >/dev/null; e=$(date +%s%N)
  t=$(( (e - s) / 1000 )); [ "$t" -lt "$best" ] && best=$t
done
echo "start-up + one answer: $(( best / 1000 )).$(( (best % 1000) / 100 )) ms (best of 20)"
# Throughput and peak memory on 20,000 questions: 7 runs timed in
# nanoseconds (/usr/bin/time's 10 ms steps are 8 % of a run), median and
# best; the largest peak RSS of the runs.
runs=()
kb=0
for _ in $(seq 7); do
  s=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$work/time" "$bin" ask --jsonl < "$work/q.txt" > "$work/out.jsonl"
  e=$(date +%s%N)
  runs+=($(( e - s )))
  k=$(cat "$work/time"); [ "$k" -gt "$kb" ] && kb=$k
done
lines=$(wc -l < "$work/out.jsonl")
python3 - "$lines" "$kb" "${runs[@]}" <<'PY'
import statistics, sys
lines, kb, runs = int(sys.argv[1]), int(sys.argv[2]), sorted(int(x) / 1e9 for x in sys.argv[3:])
med, best = statistics.median(runs), runs[0]
print(f"ask --jsonl: {lines} answers; median {med:.3f} s = {lines/med:,.0f} questions/s, "
      f"best {best:.3f} s = {lines/best:,.0f} questions/s ({len(runs)} runs); peak RSS {kb/1024:.1f} MiB")
PY
