#!/usr/bin/env bash
# A real fleet run for the README: two boxes (`box-a`, `box-b`), each its own SQLite record,
# answer the valid split of banking77-oos between them through the full cascade (against
# tools/messages_test_server.py, a local stand-in for the Messages API: 2 % 529s, 10 % hedged
# answers), ship to one throwaway PostgreSQL (scripts/with-postgres.sh) with `triage sync`,
# then `triage report --db postgres://…` writes the text report, JSON and the HTML page, and
# headless Chromium takes a phone-width screenshot of it.
#
#   tools/fleet_demo.sh [OUT_DIR]     (default docs/; needs a built .build/release/triage)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs}
triage=${TRIAGE:-.build/release/triage}
data=${DATA:-../shared/data/banking77-oos/valid.jsonl}
[ -x "$triage" ] || { echo "fleet_demo: build first (make build)" >&2; exit 1; }
[ -f "$data" ] || { echo "fleet_demo: $data not found" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d /tmp/triage-fleet-demo.XXXXXX)
ms_port=$(( 30000 + RANDOM % 20000 ))
python3 tools/messages_test_server.py --port "$ms_port" --fail-rate 0.02 --hedge-rate 0.1 >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
python3 - "$data" "$work" <<'PY'
import json, sys
rows = [json.loads(l)["text"] for l in open(sys.argv[1])]
open(sys.argv[2] + "/a.txt", "w").write("\n".join(rows[0::2]) + "\n")
open(sys.argv[2] + "/b.txt", "w").write("\n".join(rows[1::2]) + "\n")
PY
export triage work ms_port out
scripts/with-postgres.sh bash -c '
set -euo pipefail
url="postgres://triage@${TRIAGE_TEST_PG_URL#*@}"
export TRIAGE_PG_PASSWORD=$(echo "$TRIAGE_TEST_PG_URL" | sed -E "s|postgres://[^:]*:([^@]*)@.*|\1|")
for box in a b; do
    printf "{\"node\": \"box-%s\", \"record\": {\"postgres\": \"%s\"}}\n" "$box" "$url" > "$work/config-$box.json"
done
# Box a answers its first 10 % in shadow mode, so the report has edge accuracy to show.
head -n ${SHADOW:-110} "$work/a.txt" > "$work/a-shadow.txt"; tail -n +$(( ${SHADOW:-110} + 1 )) "$work/a.txt" > "$work/a-live.txt"
export ANTHROPIC_BASE_URL=http://127.0.0.1:$ms_port ANTHROPIC_API_KEY=demo-key
"$triage" sync --follow --config "$work/config-a.json" --db "$work/a.sqlite" > "$work/sync-a.log" 2>&1 & fa=$!
"$triage" sync --follow --config "$work/config-b.json" --db "$work/b.sqlite" > "$work/sync-b.log" 2>&1 & fb=$!
( "$triage" ask --shadow --config "$work/config-a.json" --db "$work/a.sqlite" < "$work/a-shadow.txt" > /dev/null
  "$triage" ask --config "$work/config-a.json" --db "$work/a.sqlite" < "$work/a-live.txt" > /dev/null ) &
pa=$!
"$triage" ask --config "$work/config-b.json" --db "$work/b.sqlite" < "$work/b.txt" > /dev/null
wait $pa
sleep 3; kill $fa $fb; wait $fa $fb 2>/dev/null || true
for box in a b; do "$triage" sync --config "$work/config-$box.json" --db "$work/$box.sqlite"; done
"$triage" report --db "$url" --box-cost 40 --volume 1000000 --html "$out/fleet-report.html" | tee "$out/fleet-report.txt"
"$triage" report --db "$url" --box-cost 40 --volume 1000000 --json > "$work/fleet-report.json"
for box in a b; do "$triage" report --db "$work/$box.sqlite" --json > "$work/report-$box.json"; done
python3 - "$work" <<PY
import json, sys
w = sys.argv[1]
f = json.load(open(w + "/fleet-report.json")); a = json.load(open(w + "/report-a.json")); b = json.load(open(w + "/report-b.json"))
print("fleet total", f["total_queries"], "= boxes", a["total_queries"], "+", b["total_queries"])
print("fleet cost %.6f = boxes %.6f" % (f["total_cost_usd"], a["total_cost_usd"] + b["total_cost_usd"]))
PY
'
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=412,2400 \
    --screenshot="$out/fleet-report-phone.png" "file://$(realpath "$out/fleet-report.html")" 2>/dev/null
echo "fleet_demo: $out/fleet-report.html, $out/fleet-report.txt, $out/fleet-report-phone.png" >&2
