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
# Throughput and peak memory on 20,000 questions.
/usr/bin/time -f "%e %M" -o "$work/time" "$bin" ask --jsonl < "$work/q.txt" > "$work/out.jsonl"
read -r secs kb < "$work/time"
lines=$(wc -l < "$work/out.jsonl")
python3 -c "import sys; s=float('$secs'); print(f'ask --jsonl: {$lines} answers in {s:.3f} s = {$lines/max(s,1e-3):,.0f} questions/s; peak RSS {$kb/1024:.1f} MiB')"
