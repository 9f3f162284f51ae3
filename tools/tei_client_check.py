#!/usr/bin/env python3
"""Checks that a real third-party TEI client talks to `triage serve` unchanged.

huggingface_hub's InferenceClient(model=URL).text_classification(text) posts
{"inputs": text, "parameters": {...}} to the URL (POST /), as it does for a TEI
classifier endpoint. Run against a server on 127.0.0.1:3000 (`make serve`):

    python3 -m venv /tmp/hf && /tmp/hf/bin/pip install huggingface_hub
    /tmp/hf/bin/python tools/tei_client_check.py [--url http://127.0.0.1:3000] [--api-key KEY]
"""
import argparse
import json
import urllib.request

from huggingface_hub import InferenceClient


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:3000")
    ap.add_argument("--api-key", default=None)
    args = ap.parse_args()
    client = InferenceClient(model=args.url, token=args.api_key)
    queries = ["I still have not received my new card, it has been two weeks",
               "How do I top up my account with Apple Pay?",
               "What is the weather like in Paris tomorrow?"]
    for q in queries:
        result = client.text_classification(q)
        # The same text through /predict with urllib, for comparison.
        req = urllib.request.Request(args.url + "/predict", data=json.dumps({"inputs": q}).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": "Bearer " + args.api_key} if args.api_key else {})})
        with urllib.request.urlopen(req) as r:
            direct = json.load(r)
        # huggingface_hub 2.x returns the top element alone from a TEI endpoint, a list otherwise.
        top = result[0] if isinstance(result, list) else result
        assert top.label == direct[0]["label"] and abs(top.score - direct[0]["score"]) < 1e-6, (top, direct[0])
        print(f"{top.label:30s} {top.score:.4f}  ({len(result) if isinstance(result, list) else 1} returned)  {q}")
    print("huggingface_hub InferenceClient: OK")


if __name__ == "__main__":
    main()
