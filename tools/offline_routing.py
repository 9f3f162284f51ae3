#!/usr/bin/env python3
"""Measure the cascade offline on labelled queries: run `triage ask --offline --json
--record-off` over every text of a JSONL file ({"text", "label"}) in one process and
compare each decision with the true label.

Prints (and with --json writes):
- edge share: in-scope queries answered at the edge;
- edge accuracy: answers given at the edge whose label is the true one (an out-of-scope
  query answered at the edge counts as wrong);
- under-routing: out-of-scope queries answered at the edge (share of all out-of-scope),
  and in-scope queries answered at the edge with the wrong intent;
- over-routing: in-scope queries the edge labelled correctly but still sent on
  (share of in-scope queries, and of everything escalated);
- why queries left the edge (the decision's reason);
- per-query latency p50/p95: the edge forward pass (`latency.edge_ms`), and the whole
  decision (`latency_ms`: tokenize + forward + routing + answer).

Needs only the standard library and a release build of triage (`make build`).

Run: python3 tools/offline_routing.py [--data ../shared/data/banking77-oos/valid.jsonl]
         [--model weights/banking77] [--int8] [--json OUT]
"""
import argparse
import collections
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, p):
    """Nearest-rank percentile (the value at rank ceil(p/100 · n))."""
    s = sorted(values)
    if not s:
        return float("nan")
    rank = max(1, -(-len(s) * p // 100))
    return s[int(rank) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "banking77-oos", "valid.jsonl"))
    ap.add_argument("--model", default=os.path.join(ROOT, "weights", "banking77"))
    ap.add_argument("--triage", default=os.path.join(ROOT, ".build", "release", "triage"))
    ap.add_argument("--int8", action="store_true", help="run the INT8 model")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", metavar="OUT", help="write the figures to this JSON file")
    args = ap.parse_args()

    rows = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    for r in rows:
        if "\n" in r["text"] or "\r" in r["text"]:
            sys.exit(f"a text holds a line break, which `ask` would read as two queries: {r['text']!r}")
    cmd = [args.triage, "ask", "--offline", "--json", "--record-off", "--model", args.model]
    if args.int8:
        cmd.append("--int8")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    stdin = "".join(r["text"] + "\n" for r in rows)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, encoding="utf-8")
    if proc.returncode != 0:
        sys.exit(f"triage ask failed ({proc.returncode}): {proc.stderr.strip()}")
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if len(out) != len(rows):
        sys.exit(f"{len(rows)} queries in, {len(out)} answers out")

    ins = oos = 0
    edge_in = edge_in_right = edge_oos = 0
    over = escalated = 0
    reasons = collections.Counter()
    # out-of-scope queries answered at the edge, by the file's "source" (in-domain held-out
    # intents vs out-of-domain queries), when it has one
    oos_by_source = collections.Counter()
    edge_oos_by_source = collections.Counter()
    edge_ms, total_ms = [], []
    for r, d in zip(rows, out):
        is_oos = r["label"] == "oos"
        at_edge = d["route"] == "edge"
        right = d["label"] == r["label"]
        edge_ms.append(d["latency"]["edge_ms"])
        total_ms.append(d["latency_ms"])
        if is_oos:
            oos += 1
            edge_oos += at_edge
            src = r.get("source", "oos")
            oos_by_source[src] += 1
            edge_oos_by_source[src] += at_edge
        else:
            ins += 1
            edge_in += at_edge
            edge_in_right += at_edge and right
        if not at_edge:
            escalated += 1
            reasons[d["reason"]] += 1
            over += (not is_oos) and right
    edge_total = edge_in + edge_oos
    figures = {
        "queries": len(rows), "in_scope": ins, "out_of_scope": oos,
        "edge_answers": edge_total,
        "edge_share_in_scope": edge_in / ins if ins else None,
        "edge_accuracy": edge_in_right / edge_total if edge_total else None,
        "under_routed_oos": edge_oos, "under_routing_oos_rate": edge_oos / oos if oos else None,
        "edge_wrong_intent": edge_in - edge_in_right,
        "escalated": escalated, "over_routed": over,
        "over_routing_rate_in_scope": over / ins if ins else None,
        "over_routing_share_of_escalated": over / escalated if escalated else None,
        "escalation_reasons": dict(reasons.most_common()),
        "under_routing_by_source": {k: {"out_of_scope": n, "answered_at_edge": edge_oos_by_source[k],
                                        "rate": edge_oos_by_source[k] / n} for k, n in sorted(oos_by_source.items())},
        "edge_ms_p50": percentile(edge_ms, 50), "edge_ms_p95": percentile(edge_ms, 95),
        "total_ms_p50": percentile(total_ms, 50), "total_ms_p95": percentile(total_ms, 95),
        "model": os.path.relpath(args.model, ROOT), "int8": args.int8, "data": os.path.basename(args.data),
    }

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.2f} %"

    print(f"{len(rows)} queries ({ins} in-scope, {oos} out-of-scope), model {figures['model']}"
          + (" INT8" if args.int8 else " FP32"))
    print(f"edge share of in-scope:   {pct(figures['edge_share_in_scope'])} ({edge_in}/{ins})")
    print(f"edge accuracy:            {pct(figures['edge_accuracy'])} ({edge_in_right}/{edge_total} answers right)")
    print(f"under-routing:            {pct(figures['under_routing_oos_rate'])} of out-of-scope answered at the edge "
          f"({edge_oos}/{oos}); {edge_in - edge_in_right} in-scope answered with the wrong intent")
    if len(oos_by_source) > 1:
        print("  by source:              " + "; ".join(
            f"{k} {pct(v['rate'])} ({v['answered_at_edge']}/{v['out_of_scope']})"
            for k, v in figures["under_routing_by_source"].items()))
    print(f"over-routing:             {pct(figures['over_routing_rate_in_scope'])} of in-scope correctly labelled "
          f"but escalated ({over}/{ins}; {pct(figures['over_routing_share_of_escalated'])} of {escalated} escalated)")
    print("escalation reasons:       " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    print(f"latency per query:        edge forward p50 {figures['edge_ms_p50']:.2f} ms, p95 {figures['edge_ms_p95']:.2f} ms; "
          f"whole decision p50 {figures['total_ms_p50']:.2f} ms, p95 {figures['total_ms_p95']:.2f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
