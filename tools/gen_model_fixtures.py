#!/usr/bin/env python3
"""Reference logits of the shipped classifier, for the Swift engine's parity tests.

    tools/.venv/bin/python tools/gen_model_fixtures.py \
        --model weights/banking77 --out Tests/Fixtures/banking77/logits.json

Loads the exported model directory with transformers in float32 (eager attention), tokenizes
with the tokenizer loaded from that same directory, and writes

    {"meta": {...},
     "singles": [{"text", "ids", "logits"}, ...],
     "batch": {"texts", "input_ids", "attention_mask", "logits"}}

- singles: a seeded sample of real valid.jsonl queries (in-scope and out-of-scope, both
  sources), the valid queries longer than 64 tokens, queries longer than 64 tokens built by
  joining several real valid queries with spaces, and one over 512 tokens, which the
  tokenizer truncates to 512 (truncation=True, max_length=512). Each one is run alone, at
  its own length (no padding).
- batch: 8 of those queries of different lengths, padded to the longest (attention mask).
- logits: the raw network logits (no temperature), float32 values.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, DistilBertForSequenceClassification  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_LEN = 512


def default_data_dir() -> Path:
    env = os.environ.get("TRIAGE_DATA")
    if env:
        return Path(env)
    for cand in (REPO_ROOT / "data" / "banking77-oos", Path("/work/shared/data/banking77-oos")):
        if (cand / "valid.jsonl").exists():
            return cand
    return REPO_ROOT / "data" / "banking77-oos"


def load_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def f32list(t: torch.Tensor) -> list[float]:
    # float32 values written as the shortest decimal that round-trips the float64 of them
    return [float(x) for x in t.detach().to(torch.float32).tolist()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO_ROOT / "weights" / "banking77")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "Tests" / "Fixtures" / "banking77" / "logits.json")
    ap.add_argument("--data", type=Path, default=default_data_dir(),
                    help="directory with valid.jsonl (default: $TRIAGE_DATA, data/banking77-oos, "
                         "/work/shared/data/banking77-oos)")
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--n-in-scope", type=int, default=40)
    ap.add_argument("--n-oos", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)

    tok = AutoTokenizer.from_pretrained(str(args.model))
    if tok.vocab_size != 30522:
        raise SystemExit(f"tokenizer vocab size {tok.vocab_size} != 30522")
    model = DistilBertForSequenceClassification.from_pretrained(
        str(args.model), dtype=torch.float32, attn_implementation="eager").eval()

    valid = load_jsonl(args.data / "valid.jsonl")

    def ntok(text: str) -> int:  # untruncated length
        return len(tok(text)["input_ids"])

    # --- real queries: seeded sample, in-scope and out-of-scope (both oos sources)
    ins = [r for r in valid if r["label"] != "oos"]
    oos_in = [r for r in valid if r["label"] == "oos" and r.get("source") == "oos_in_domain"]
    oos_out = [r for r in valid if r["label"] == "oos" and r.get("source") != "oos_in_domain"]
    picked = rng.sample(ins, args.n_in_scope)
    picked += rng.sample(oos_in, args.n_oos // 2) + rng.sample(oos_out, args.n_oos - args.n_oos // 2)
    texts = [r["text"] for r in picked]
    # the real valid queries that are longer than 64 tokens
    natural_long = [r["text"] for r in valid if ntok(r["text"]) > 64]
    texts += [t for t in natural_long if t not in texts]

    # --- longer queries made by joining real valid queries with spaces
    pool = [r["text"] for r in valid]
    targets = [65, 80, 100, 128, 160, 200, 256, 320, 400, 511]
    for target in targets:
        parts: list[str] = []
        while True:
            parts.append(rng.choice(pool))
            n = ntok(" ".join(parts))
            if n > target:
                break
        # keep under the 512 cap for these (the last one is the over-512 case below)
        while ntok(" ".join(parts)) > MAX_LEN:
            parts.pop()
        texts.append(" ".join(parts))
    parts = []
    while True:
        parts.append(rng.choice(pool))
        if ntok(" ".join(parts)) > 600:
            break
    over = " ".join(parts)
    texts.append(over)

    singles = []
    with torch.no_grad():
        for t in texts:
            enc = tok(t, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0]
            singles.append({"text": t, "ids": enc["input_ids"][0].tolist(), "logits": f32list(logits)})

    n_long = sum(len(s["ids"]) > 64 for s in singles)
    n_trunc = sum(ntok(s["text"]) > MAX_LEN for s in singles)
    assert len(singles) >= 60, len(singles)
    assert n_long >= 8, n_long
    assert n_trunc >= 1 and all(len(s["ids"]) <= MAX_LEN for s in singles)
    trunc = [s for s in singles if len(s["ids"]) == MAX_LEN]
    assert trunc and trunc[-1]["ids"][-1] == tok.sep_token_id

    # --- one padded batch of 8 queries of different lengths
    by_len: dict[int, dict] = {}
    for s in singles:
        by_len.setdefault(len(s["ids"]), s)
    lengths = sorted(by_len)
    # spread: short, medium and long members (distinct lengths), longest <= 160 tokens
    cand = [n for n in lengths if n <= 160]
    step = max(1, (len(cand) - 1) / 7)
    chosen_lengths = sorted({cand[min(len(cand) - 1, round(i * step))] for i in range(8)})
    i = 0
    while len(chosen_lengths) < 8:  # fill if rounding collided
        if cand[i] not in chosen_lengths:
            chosen_lengths.append(cand[i])
        i += 1
    batch_members = [by_len[n]["text"] for n in chosen_lengths]
    rng.shuffle(batch_members)  # not sorted by length
    enc = tok(batch_members, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
    with torch.no_grad():
        blogits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    batch = {
        "texts": batch_members,
        "input_ids": enc["input_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
        "logits": [f32list(row) for row in blogits],
    }
    # the batched logits agree with the single runs (sanity, not a fixture value)
    single_by_text = {s["text"]: s for s in singles}
    worst = 0.0
    for t, row in zip(batch_members, batch["logits"]):
        worst = max(worst, max(abs(a - b) for a, b in zip(row, single_by_text[t]["logits"])))
    assert worst < 1e-4, worst

    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    out = {
        "meta": {
            "model": str(args.model),
            "generator": "tools/gen_model_fixtures.py",
            "seed": args.seed,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "dtype": "float32 (weights stored float16, upcast on load)",
            "attn_implementation": "eager",
            "max_length": MAX_LEN,
            "logits": "raw, no temperature",
            "labels": labels,
            "batch_vs_singles_max_abs_delta": worst,
        },
        "singles": singles,
        "batch": batch,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    lens = [len(s["ids"]) for s in singles]
    print(f"wrote {args.out}: {len(singles)} singles (token lengths {min(lens)}–{max(lens)}, "
          f"{n_long} longer than 64, {n_trunc} truncated to {MAX_LEN}), batch of {len(batch_members)} "
          f"(lengths {sorted(int(x) for x in enc['attention_mask'].sum(1))}, padded to "
          f"{enc['input_ids'].shape[1]}); batch vs singles max |Δlogit| {worst:.2e}")


if __name__ == "__main__":
    sys.exit(main())
