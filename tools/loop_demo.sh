#!/usr/bin/env bash
# The operator's loop on real queries, with the real binary (run `make build` first):
#
#   1. every query of banking77-oos/valid.jsonl through `triage ask`, the shipped model as the
#      primary and its INT8 twin as the candidate, in shadow (share 0);
#   2. the same queries again with the candidate answering half of them (share 0.5);
#   3. `triage review export`, the gold labels filled in, `triage review import`;
#   4. `triage report` (measured edge accuracy with its 95 % interval, error budgets, the
#      candidate side by side with a recommendation) and `triage tune --from-record`;
#   5. the report's measured edge accuracy set against the accuracy computed directly over every
#      edge answer of the two passes (the gold label of each query is known).
#
# The gold labels of the data set stand in for the human reviewer: a queued edge answer gets the
# query's gold intent (or "oos"); a queued cloud answer gets the gold label too and a verdict,
# "correct": false when the stand-in server hedged ("I'm not sure…", what a reviewer would reject)
# and true otherwise. The cloud tier is tools/messages_test_server.py on 127.0.0.1 (2 % of
# requests answered 529, 10 % of answers hedged), so no key and no internet are needed.
#
# Everything goes into a fresh temporary directory (record, config, response cache); nothing in
# the repository or the user's ~/.cache or ~/.local/state is touched (tune runs with --dry-run).
#
#   tools/loop_demo.sh [DATA_DIR]      DATA_DIR defaults to ../shared/data/banking77-oos
#   TRIAGE=path/to/triage tools/loop_demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
triage=${TRIAGE:-$repo/.build/release/triage}
data=${1:-$repo/../shared/data/banking77-oos}
valid=$data/valid.jsonl
model=$repo/weights/banking77
candidate=$repo/weights/banking77-int8
[ -x "$triage" ] || { echo "loop_demo: $triage not found: run 'make build' (or set TRIAGE)" >&2; exit 1; }
[ -f "$valid" ] || { echo "loop_demo: $valid not found (pass the data directory)" >&2; exit 1; }
[ -d "$candidate" ] || { echo "loop_demo: $candidate not found (triage quantize writes it)" >&2; exit 1; }

work=$(mktemp -d /tmp/triage-loop.XXXXXX)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
export XDG_CACHE_HOME=$work/cache XDG_STATE_HOME=$work/state XDG_CONFIG_HOME=$work/config
db=$work/decisions.sqlite
# A fixed sampling seed makes the run repeatable; the response cache stays in each process, so
# the second pass asks the cloud again instead of replaying the first pass's answers.
cat > "$work/config.json" <<'JSON'
{"review": {"sample_rate": 0.02, "sample_seed": 20261206}, "cache": {"path": "memory"}}
JSON

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 tools/messages_test_server.py --port "$port" --fail-rate 0.02 --hedge-rate 0.1 --seed 7 &
server_pid=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export ANTHROPIC_BASE_URL=http://127.0.0.1:$port ANTHROPIC_API_KEY=stand-in-key

python3 -c 'import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip(): print(json.loads(line)["text"])' "$valid" > "$work/queries.txt"
n=$(wc -l < "$work/queries.txt")

step() { printf '\n$ %s\n' "$*"; }
ask() {
    local share=$1 out=$2
    step triage ask --json --db "\$DB" --config "\$CONFIG" --model weights/banking77 \
        --candidate weights/banking77-int8 --candidate-share "$share" "< queries.txt ($n queries) > $(basename "$out")"
    local t0=$SECONDS
    "$triage" ask --json --db "$db" --config "$work/config.json" --model "$model" \
        --candidate "$candidate" --candidate-share "$share" < "$work/queries.txt" > "$out"
    python3 - "$out" "$((SECONDS - t0))" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
routes = {}
for r in rows: routes[r["route"]] = routes.get(r["route"], 0) + 1
served = sum(1 for r in rows if (r.get("candidate") or {}).get("candidate_served"))
print(f"{len(rows)} answered in {sys.argv[2]} s: " + ", ".join(f"{k} {v}" for k, v in sorted(routes.items()))
      + f"; answered by the candidate: {served}")
PY
}

echo "# triage at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "?") on $(uname -m), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# primary $model, candidate $candidate; data $valid ($n queries)"
ask 0 "$work/pass1.jsonl"
ask 0.5 "$work/pass2.jsonl"

step triage review export --db "\$DB" --out queue.jsonl
"$triage" review export --db "$db" --out "$work/queue.jsonl"
echo "$(wc -l < "$work/queue.jsonl") decisions in the review queue; first one:"
head -1 "$work/queue.jsonl"

step "fill in the gold labels of valid.jsonl (the stand-in for a human reviewer) > labelled.jsonl"
python3 - "$valid" "$work/queue.jsonl" "$work/labelled.jsonl" <<'PY'
import json, sys
gold = {}
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        r = json.loads(line)
        gold.setdefault(r["text"], r["label"])
hedges = ("I'm not sure", "Perhaps check the app")
counts = {"edge": 0, "cloud": 0, "cloud_wrong": 0}
with open(sys.argv[3], "w", encoding="utf-8") as out:
    for line in open(sys.argv[2], encoding="utf-8"):
        item = json.loads(line)
        if item["query"] not in gold:
            raise SystemExit(f"query of id {item['id']} is not in valid.jsonl: {item['query']!r}")
        item["label"] = gold[item["query"]]
        if item["route"] in ("small", "large"):
            item["correct"] = not item["answer"].startswith(hedges)
            counts["cloud"] += 1
            counts["cloud_wrong"] += not item["correct"]
        else:
            counts["edge"] += 1
        out.write(json.dumps(item) + "\n")
print(f"labelled {counts['edge']} edge (or unanswered) decisions with their gold intent and {counts['cloud']} cloud answers "
      f"with the gold intent and a verdict ({counts['cloud_wrong']} hedged answers marked wrong)")
PY

step triage review import --db "\$DB" labelled.jsonl
"$triage" review import --db "$db" "$work/labelled.jsonl"

step triage report --db "\$DB" --config "\$CONFIG"
"$triage" report --db "$db" --config "$work/config.json"

step triage tune --from-record --db "\$DB" --model weights/banking77 --dry-run
"$triage" tune --from-record --db "$db" --model "$model" --config "$work/config.json" --dry-run

step "check: the report's measured edge accuracy against the accuracy over every edge answer"
"$triage" report --db "$db" --config "$work/config.json" --json > "$work/report.json"
python3 - "$valid" "$work/pass1.jsonl" "$work/pass2.jsonl" "$work/report.json" "$work/labelled.jsonl" <<'PY'
import json, sys
gold = [json.loads(l)["label"] for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
edge = right = 0
for path in sys.argv[2:4]:
    rows = [json.loads(l) for l in open(path)]
    assert len(rows) == len(gold), f"{path}: {len(rows)} answers for {len(gold)} queries"
    for r, g in zip(rows, gold):
        if r["route"] == "edge":
            edge += 1
            right += r["label"] == g
direct = right / edge
m = json.load(open(sys.argv[4]))["measured_accuracy"]["edge"]
labelled = [json.loads(l) for l in open(sys.argv[5])]
lab_edge = [x for x in labelled if x["route"] == "edge"]
naive = sum(x["label"] == x["edge_label"] for x in lab_edge) / max(1, len(lab_edge))
print(f"direct (every edge answer of both passes against its gold label): {right}/{edge} = {direct * 100:.2f} %")
print(f"report (stratified, from {m['labelled']} labels): {m['accuracy'] * 100:.2f} %, "
      f"95 % CI [{m['ci95_low'] * 100:.2f}, {m['ci95_high'] * 100:.2f}]")
print(f"(the labelled edge answers averaged without weights would say {naive * 100:.2f} %: "
      "the review band is over-represented in the queue)")
inside = m["ci95_low"] <= direct <= m["ci95_high"]
print(f"difference {abs(m['accuracy'] - direct) * 100:.2f} points; direct accuracy inside the interval: "
      f"{'yes' if inside else 'NO'}")
sys.exit(0 if inside else 1)
PY
