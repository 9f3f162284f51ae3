#!/usr/bin/env python3
"""A stand-in for the Anthropic Messages API on 127.0.0.1, for trying `triage ask` and
`triage report` end to end without a key or the internet (the test suite has its own Swift
server; this one is for demonstrations and the closing-note runs).

Every POST /v1/messages gets a well-formed Messages API answer whose token counts follow the
request (input ≈ characters / 4 of system + messages, output ≈ 60–220), so costs in the
record are realistic. A seeded fraction of requests can be made to fail or to hedge, to see
retries, escalations and breakers at work.

Run:  python3 tools/messages_test_server.py --port 8765 [--fail-rate 0.02] [--hedge-rate 0.1]
then: ANTHROPIC_BASE_URL=http://127.0.0.1:8765 ANTHROPIC_API_KEY=test triage ask ...
Only the standard library is used.
"""
import argparse
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = [
    "Thanks for your question. Here is what to do in the app: open the relevant section, follow the steps shown, "
    "and contact support in Help › Chat if anything looks wrong.",
    "I can help with that. Please check the details in the app first; most issues like this resolve within a few "
    "business days, and our support team can look into it if not.",
]
HEDGES = ["I'm not sure, but maybe the app can help with this.", "Perhaps check the app; I don't know the details."]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 529")
    ap.add_argument("--hedge-rate", type=float, default=0.0, help="share of answers that hedge")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            req = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/v1/messages":
                return self.send(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
            with lock:
                fail = rng.random() < args.fail_rate
                hedge = rng.random() < args.hedge_rate
                out_tokens = rng.randint(60, 220)
            if fail:
                return self.send(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            chars = len(req.get("system", "")) + sum(len(m.get("content", "")) for m in req.get("messages", []))
            text = (HEDGES if hedge else ANSWERS)[out_tokens % 2]
            self.send(200, {
                "id": "msg_local", "type": "message", "role": "assistant", "model": req.get("model", "unknown"),
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "usage": {"input_tokens": max(1, chars // 4), "output_tokens": out_tokens},
            })

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"Messages API stand-in on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
