#!/usr/bin/env python3
"""Write a seeded sample of real labelled queries from banking77-oos valid.jsonl to
Tests/Fixtures/banking77/queries.jsonl, so the router tests run on real queries without
the dataset folder (which CI may not have). The data is BANKING77 (Casanueva et al., 2020)
with the out-of-scope split of Zhang et al. (2021), CC BY 4.0; the licence note is written
beside the sample.

Run: tools/.venv/bin/python tools/sample_queries.py [--data ../shared/data/banking77-oos/valid.jsonl]
"""
import argparse
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/banking77-oos/valid.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "Tests/Fixtures/banking77/queries.jsonl"))
    ap.add_argument("--in-scope", type=int, default=300)
    ap.add_argument("--out-of-scope", type=int, default=150)
    args = ap.parse_args()
    rows = [json.loads(l) for l in open(args.data)]
    rng = random.Random(20261123)
    ins = [r for r in rows if r["label"] != "oos"]
    oos = [r for r in rows if r["label"] == "oos"]
    assert len(ins) >= args.in_scope and len(oos) >= args.out_of_scope
    sample = rng.sample(ins, args.in_scope) + rng.sample(oos, args.out_of_scope)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        for r in sample:
            f.write(json.dumps({"text": r["text"], "label": r["label"], "source": r["source"]}) + "\n")
    (out.parent / "DATA-LICENSE.md").write_text(
        "queries.jsonl and the texts in logits.json are a sample of the validation split of\n"
        "BANKING77 (Casanueva et al., 2020, PolyAI) with the out-of-scope split of Zhang et al.\n"
        "(2021, \"Are Pretrained Transformers Robust in Intent Classification?\"), licensed\n"
        "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). Unchanged apart from the\n"
        "selection.\n")
    print(f"wrote {len(sample)} queries ({args.in_scope} in scope, {args.out_of_scope} out of scope) to {out}")


if __name__ == "__main__":
    main()
