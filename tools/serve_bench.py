#!/usr/bin/env python3
"""Load test of `triage serve` with wrk (Debian's `wrk`, a Lua body script).

Starts the release binary on 127.0.0.1, FP32 and INT8, 2 engine threads, and drives
POST /predict with real queries from banking77-oos (valid split): short ones as they are,
and ~128-token ones made of several joined together. Concurrency 1, 8 and 64. Prints
requests/s, p50/p99 latency, non-2xx answers and the server's peak RSS, as Markdown.

    python3 tools/serve_bench.py [--binary .build/release/triage] [--data FILE] [--duration 10]

Only the standard library; wrk must be installed (`apt-get install wrk`). Nothing here is
a timed test: the figures depend on the machine and on what else runs on it (the load
average is printed with them).
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

LUA = r"""
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %.3f %.3f %d\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max))
end
"""


def load_queries(path):
    texts = []
    with open(path) as f:
        for line in f:
            texts.append(json.loads(line)["text"])
    return texts


def long_queries(texts, words=95):
    # ~128 tokens: consecutive real queries joined until about `words` words.
    out, current = [], []
    for t in texts:
        current.append(t)
        if sum(len(c.split()) for c in current) >= words:
            out.append(" ".join(current))
            current = []
    return out


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def wait_ready(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.1)
    raise SystemExit("triage serve did not become ready")


def tokens_of(port, text):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/tokenize", data=json.dumps({"inputs": text}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return len(json.load(r)[0])


def run_wrk(port, bodies_file, concurrency, duration, script):
    threads = min(concurrency, 2)
    cmd = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{duration}s", "--latency", "-s", script,
           f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, env=dict(os.environ, BODIES=bodies_file), capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+)", out)
    requests, micros, non2xx, socket_errors, p50, p99, _ = m.groups()
    return {"rps": int(requests) / (int(micros) / 1e6), "p50": float(p50), "p99": float(p99),
            "non2xx": int(non2xx), "socket_errors": int(socket_errors), "requests": int(requests)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/release/triage"))
    ap.add_argument("--model", default=os.path.join(REPO, "weights/banking77"))
    ap.add_argument("--data", default="/work/shared/data/banking77-oos/valid.jsonl")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--port", type=int, default=3917)
    ap.add_argument("--concurrency", default="1,8,64")
    args = ap.parse_args()

    texts = load_queries(args.data)
    sets = {"short": texts[:500], "~128 tokens": long_queries(texts)[:200]}
    work = tempfile.mkdtemp(prefix="serve-bench-")
    script = os.path.join(work, "predict.lua")
    with open(script, "w") as f:
        f.write(LUA)
    files = {}
    for name, items in sets.items():
        path = os.path.join(work, name.replace(" ", "").replace("~", "") + ".jsonl")
        with open(path, "w") as f:
            for t in items:
                f.write(json.dumps({"inputs": t}) + "\n")
        files[name] = path

    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# triage serve under wrk ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {rev})\n")
    print(f"- machine: {os.cpu_count()} CPUs; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"- server: `triage serve --threads 2` on 127.0.0.1, wrk on the same machine, {args.duration} s per row")
    print(f"- queries: {args.data}: {len(sets['short'])} short real ones, {len(sets['~128 tokens'])} of ~128 tokens (joined real ones)\n")
    print("| model | queries | tokens (mean) | concurrency | requests/s | p50 ms | p99 ms | non-2xx | socket errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    peaks = {}
    for dtype in ["int8", "fp32"]:
        cmd = [args.binary, "serve", "--model", args.model, "--threads", "2", "--port", str(args.port), "--record-off"]
        if dtype == "int8":
            cmd.append("--int8")
        server = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            wait_ready(args.port)
            for name, items in sets.items():
                sample = items[:20]
                mean_tokens = sum(tokens_of(args.port, t) for t in sample) / len(sample)
                for c in [int(x) for x in args.concurrency.split(",")]:
                    r = run_wrk(args.port, files[name], c, args.duration, script)
                    print(f"| {dtype} | {name} | {mean_tokens:.0f} | {c} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                          f"{r['non2xx']} | {r['socket_errors']} |", flush=True)
            peaks[dtype] = peak_rss_kb(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    print()
    for dtype, kb in peaks.items():
        print(f"- peak RSS of the server ({dtype}): {kb / 1024:.0f} MB")
    print(f"- load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
