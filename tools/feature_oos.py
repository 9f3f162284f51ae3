#!/usr/bin/env python3
"""Issue 13, lever 5: does a feature-distance out-of-scope score beat the softmax rule?

Loads the shipped classifier (weights/banking77, float16 safetensors read in float32 by
transformers' DistilBertForSequenceClassification, eager attention), runs it on
banking77-oos train.jsonl (the fit set), the CLINC150 out_of_domain rows the model was trained
on (selected exactly as tools/build_model.py selects them) and valid.jsonl (the evaluation set),
and keeps three pooled features of the last layer per query:

  cls   the [CLS] vector (what the head reads),
  pre   ReLU(pre_classifier(cls)), the classifier's own input,
  mean  mean pooling over the sequence's tokens (what all-MiniLM was pretrained with).

Out-of-scope scores (higher = more out of scope), each fitted on train only:

  softmax        the current rule: summed calibrated probability of the 28 out-of-scope labels
                 (temperature from triage.json); decision = the coarse argmax.
  energy         -T·logsumexp(in-scope logits / T) (logit-based, for reference).
  maha50         squared Mahalanobis distance to the nearest in-scope class mean; tied
                 covariance of the 50 in-scope classes.
  maha77         the same with the covariance fitted on all 77 fine BANKING77 classes.
  maha78         the same with 78 classes (+ the CLINC150 out_of_domain rows).
  rel77 / rel78  d(nearest in-scope mean) − d(nearest out-of-scope class mean), 77 / 78 classes
                 (a generative "which side is nearer" score).
  rmd50          relative Mahalanobis (Ren et al. 2021): min_k d_k − d_0, d_0 a background
                 Gaussian over all 50-class fit rows.
  cos50          1 − max cosine to an in-scope class centroid.

Measured on valid.jsonl for each (score, feature):

  AUROC of the score for out-of-scope vs in-scope queries (all, in-domain, out-of-domain);
  the decision "softmax rule OR score > τ" (and "score > τ" alone for the distance scores,
  intent = softmax argmax over the in-scope intents), τ chosen (i) on train, maximising the
  coarse accuracy of the 77-class train rows, (ii) by 5-fold cross-validation over valid
  (τ maximising coarse accuracy on the other four folds): in-scope accuracy, out-of-scope
  precision / recall, in-domain and out-of-domain recall;
  the edge: the routing fit of `triage tune` (most in-scope kept with ≤ 2 % of the edge's
  answers wrong and ≤ 2 % of out-of-scope queries answered; the router's complexity rule
  applied), fitted on all of valid and 5-fold cross-validated with tune's folds, with the
  cuts (confidence, softmax oos score) — today's — or (confidence, distance) or
  (confidence, oos score, distance).

Run (from the repository root; about 5 minutes of CPU on one thread):

    tools/.venv/bin/python tools/feature_oos.py [--model weights/banking77]
        [--data ../shared/data/banking77-oos] [--clinc ../shared/data/clinc150/train.jsonl]
        [--cache /tmp/feature_oos.npz]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, DistilBertForSequenceClassification  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_model import OOS, OUT_OF_DOMAIN, load_jsonl, normalise_text, select_out_of_domain, sha256_file  # noqa: E402

transformers.logging.set_verbosity_error()
REPO_ROOT = Path(__file__).resolve().parent.parent
FEATURES = ("cls", "pre", "mean")
FOLDS = 5
MAX_EDGE_ERROR = 0.02
MAX_UNDER_ROUTING = 0.02
# The router's complexity rule (Sources/TriageCascade/Router.swift, seed defaults): the edge
# never answers a query whose complexity is above 0.75.
ESCALATION_KEYWORDS = {"frustrated", "angry", "unacceptable", "manager", "supervisor", "complaint",
                       "terrible", "awful", "disgusted", "furious"}


def log(msg: str = "") -> None:
    print(msg, flush=True)


def complexity(text: str, p: float) -> float:
    length = min(len(text) / 200.0, 1.0)
    sentences = words = 0
    in_word = has_words = False
    for ch in text:
        if ch.isspace():
            in_word = False
        elif ch in ".!?":
            in_word = False
            if has_words:
                sentences += 1
                has_words = False
        elif not in_word:
            in_word = True
            words += 1
            has_words = True
    if has_words:
        sentences += 1
    syntax = min(words / max(1, sentences) / 15.0, 1.0)
    uncertainty = 1 - abs(2 * p - 1)
    toks = set("".join(c if c.isalpha() else " " for c in text.lower()).split())
    emotion = min(len(ESCALATION_KEYWORDS & toks) / 3.0, 1.0)
    return 0.3 * length + 0.3 * syntax + 0.2 * uncertainty + 0.2 * emotion


# --------------------------------------------------------------------------- features


@torch.no_grad()
def extract(model, tokenizer, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Logits and the three pooled features of every text (length-bucketed batches)."""
    ids = tokenizer(texts, truncation=True, max_length=512, padding=False)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    d = model.config.dim
    out = {k: np.zeros((len(ids), d), np.float32) for k in FEATURES}
    out["logits"] = np.zeros((len(ids), model.config.num_labels), np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        L = max(len(ids[i]) for i in idx)
        x = torch.zeros((len(idx), L), dtype=torch.long)
        m = torch.zeros((len(idx), L), dtype=torch.long)
        for j, i in enumerate(idx):
            x[j, :len(ids[i])] = torch.tensor(ids[i])
            m[j, :len(ids[i])] = 1
        h = model.distilbert(input_ids=x, attention_mask=m).last_hidden_state
        cls = h[:, 0]
        pre = torch.relu(model.pre_classifier(cls))
        mf = m.unsqueeze(-1).float()
        mean = (h * mf).sum(1) / mf.sum(1)
        out["cls"][idx] = cls.numpy()
        out["pre"][idx] = pre.numpy()
        out["mean"][idx] = mean.numpy()
        out["logits"][idx] = model.classifier(pre).numpy()
    return out


# --------------------------------------------------------------------------- scores


class Gaussians:
    """Class means and a shared (tied) covariance's inverse, fitted on labelled features."""

    def __init__(self, x: np.ndarray, y: np.ndarray, classes: list[str]):
        self.classes = list(classes)
        self.means = np.stack([x[y == c].mean(0) for c in classes]).astype(np.float64)
        index = {c: i for i, c in enumerate(self.classes)}
        centred = x.astype(np.float64) - self.means[[index[c] for c in y]]
        cov = centred.T @ centred / len(x)
        self.precision = np.linalg.pinv(cov, hermitian=True)

    def distances(self, x: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of every row to every class mean: [n, classes]."""
        x = x.astype(np.float64)
        xp = x @ self.precision
        mp = self.means @ self.precision
        return ((xp * x).sum(1)[:, None] - 2 * xp @ self.means.T + (mp * self.means).sum(1)[None, :])


def softmax(z: np.ndarray, T: float = 1.0) -> np.ndarray:
    z = z / T
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (ties counted half) via ranks."""
    from scipy.stats import rankdata
    r = rankdata(score)
    n1 = positive.sum()
    n0 = len(score) - n1
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# --------------------------------------------------------------------------- decisions


def coarse_metrics(pred_intent, oos_flag, gold, sources) -> dict:
    """In-scope accuracy and out-of-scope precision / recall of a decision."""
    gold_oos = gold == OOS
    pred = np.where(oos_flag, OOS, pred_intent)
    ins = ~gold_oos
    tp = (oos_flag & gold_oos).sum()
    prec = tp / max(1, oos_flag.sum())
    rec = tp / max(1, gold_oos.sum())
    idm = sources == "oos_in_domain"
    odm = sources == "oos_out_of_domain"
    return {"in_acc": float((pred[ins] == gold[ins]).mean()), "oos_p": float(prec), "oos_r": float(rec),
            "id_r": float(oos_flag[idm].mean()), "ood_r": float(oos_flag[odm].mean()),
            "acc": float((pred == gold).mean())}


def best_tau(score, base_flag, pred_intent, gold, candidates) -> float:
    """τ maximising coarse accuracy of (base_flag OR score > τ) (ties: the larger τ)."""
    gold_oos = gold == OOS
    right_in = (pred_intent == gold) & ~gold_oos
    best, best_acc = np.inf, -1.0
    for t in candidates:
        flag = base_flag | (score > t)
        acc = ((flag & gold_oos).sum() + (~flag & right_in).sum()) / len(gold)
        if acc > best_acc + 1e-12 or (abs(acc - best_acc) <= 1e-12 and t > best):
            best, best_acc = t, acc
    return float(best)


def tau_candidates(score: np.ndarray, n: int = 400) -> np.ndarray:
    return np.unique(np.quantile(score, np.linspace(0, 1, n + 1)))


def folds_of(strata: np.ndarray, k: int = FOLDS) -> np.ndarray:
    """tune's folds: within each stratum, rows in input order go to folds 0, 1, …, k−1 in turn."""
    seen: dict[str, int] = {}
    out = np.zeros(len(strata), int)
    for i, s in enumerate(strata):
        j = seen.get(s, 0)
        seen[s] = j + 1
        out[i] = j % k
    return out


# --------------------------------------------------------------------------- edge fit

CONF_GRID = np.arange(201) / 200.0
SCORE_GRID = np.arange(1, 201) / 200.0


def conf_cells(conf: np.ndarray) -> np.ndarray:
    """Index of the largest grid confidence ≤ conf (tune's gridIndex)."""
    k = np.clip(np.floor(conf * 200).astype(int), -1, 200)
    k = np.where((k >= 0) & (CONF_GRID[np.clip(k, 0, 200)] > conf), k - 1, k)
    k = np.where((k + 1 <= 200) & (CONF_GRID[np.clip(k + 1, 0, 200)] <= conf), k + 1, k)
    return k


def edge_fit(P: dict, cuts: list[tuple[np.ndarray, np.ndarray]]):
    """tune's fit over the confidence grid and the product of `cuts` (each: score array and its
    grid; the edge answers when every score ≤ its cut). Returns (cut tuple, counts) or None."""
    cells = conf_cells(P["conf"])
    base = ~P["dec_oos"] & P["eligible"] & (cells >= 0)
    n_oos = int(P["gold_oos"].sum())
    n_in = len(P["gold_oos"]) - n_oos
    best = None
    grids = np.meshgrid(*[g for _, g in cuts], indexing="ij")
    combos = np.stack([g.ravel() for g in grids], 1)
    for combo in combos:
        ans = base.copy()
        for (s, _), c in zip(cuts, combo):
            ans &= s <= c
        kept = np.bincount(cells[ans & ~P["gold_oos"]], minlength=201)[::-1].cumsum()[::-1]
        wrong = np.bincount(cells[ans & ~P["correct"]], minlength=201)[::-1].cumsum()[::-1]
        oos = np.bincount(cells[ans & P["gold_oos"]], minlength=201)[::-1].cumsum()[::-1]
        ok = (wrong <= MAX_EDGE_ERROR * (kept + oos) + 1e-9) & (oos <= MAX_UNDER_ROUTING * n_oos + 1e-9)
        for k in np.nonzero(ok)[0]:
            key = (kept[k], -wrong[k], -oos[k], CONF_GRID[k], *(-combo))
            if best is None or key > best[0]:
                best = (key, (CONF_GRID[k], *combo), (int(kept[k]), int(wrong[k]), int(oos[k]), n_in, n_oos))
    return None if best is None else (best[1], best[2])


def edge_outcome(P: dict, idx: np.ndarray, cut, cut_scores: list[np.ndarray]):
    if cut is None:
        n_oos = int(P["gold_oos"][idx].sum())
        return (0, 0, 0, len(idx) - n_oos, n_oos)
    ans = ~P["dec_oos"][idx] & P["eligible"][idx] & (P["conf"][idx] >= cut[0])
    for s, c in zip(cut_scores, cut[1:]):
        ans &= s[idx] <= c
    g = P["gold_oos"][idx]
    return (int((ans & ~g).sum()), int((ans & ~P["correct"][idx]).sum()), int((ans & g).sum()),
            int((~g).sum()), int(g.sum()))


def edge_figures(P: dict, cuts: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Fitted on all rows, and 5-fold cross-validated: the cut fitted on four folds applied to
    the fifth, summed. Grids are fixed up front (a distance grid is made of the score's quantiles
    over all rows, which uses no label)."""
    fitted = edge_fit(P, cuts)
    fold = folds_of(P["strata"])
    held = np.zeros(5, int)
    for f in range(FOLDS):
        tr, te = np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]
        r = edge_fit({k: v[tr] for k, v in P.items()}, [(s[tr], g) for s, g in cuts])
        held += np.array(edge_outcome(P, te, None if r is None else r[0], [s for s, _ in cuts]))
    return {"fitted": fitted, "cv": tuple(int(v) for v in held)}


def quantile_grid(s: np.ndarray, n: int = 100) -> np.ndarray:
    """Distance cuts: the score's quantiles from 50 % up (lower cuts keep too little), and +inf."""
    q = np.quantile(s, np.concatenate([np.linspace(0.5, 0.99, n), [0.995, 0.999]]))
    return np.unique(np.concatenate([q, [np.inf]]))


def whitening(x: np.ndarray, y: np.ndarray, classes: list[str]):
    """The engine's form of the tied-covariance Mahalanobis distance: W with WᵀW = Σ⁺ (Σ the
    within-class covariance, eigenvalues below 1e-9 of the largest dropped, rows padded with zeros
    to dim × dim) and the whitened class means W·μ_c, both float32. Then
    d(x) = min_c ‖W·x − W·μ_c‖² — no cancellation, one matrix-vector product per query."""
    x = x.astype(np.float64)
    index = {c: i for i, c in enumerate(classes)}
    means = np.stack([x[y == c].mean(0) for c in classes])
    centred = x - means[[index[c] for c in y]]
    cov = centred.T @ centred / len(x)
    lam, vec = np.linalg.eigh(cov)
    keep = lam > 1e-9 * lam.max()
    W = np.zeros((x.shape[1], x.shape[1]))
    W[:keep.sum()] = (vec[:, keep] / np.sqrt(lam[keep])).T
    return W.astype(np.float32), (means @ W.T).astype(np.float32)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """A float32 safetensors file with its header's keys sorted (safetensors' own writer orders the
    metadata as a hash map does, so its bytes differ from run to run)."""
    header: dict = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h)
        for name in sorted(tensors):
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


def engine_distance(x: np.ndarray, W: np.ndarray, M: np.ndarray) -> np.ndarray:
    """min_c ‖W·x − m_c‖² in float64 from the float32 statistics (the reference for Swift)."""
    z = x.astype(np.float64) @ W.astype(np.float64).T
    Md = M.astype(np.float64)
    return ((z[:, None, :] - Md[None, :, :]) ** 2).sum(2).min(1)


def chosen(args, feats, train, valid, t_gold, t_fine, intents, v_pred, v_dec, v_gold, v_src, P, oos_sub,
           ref_score, model_sha) -> None:
    log("## 4. The engine's variant: maha50 on the classifier's input (ReLU(pre_classifier(cls)))")
    log()
    tr_in = t_gold != OOS
    W, M = whitening(feats["train_pre"][tr_in], t_fine[tr_in], intents)
    d = engine_distance(feats["valid_pre"], W, M)
    rel = np.abs(d - ref_score) / np.maximum(ref_score, 1e-9)
    log(f"Whitened float32 statistics (W {W.shape}, means {M.shape}, {W.nbytes + M.nbytes} bytes): max relative "
        f"difference from the float64 pinv score on valid {rel.max():.2e}.")
    tau = best_tau(d, v_dec, v_pred, v_gold, tau_candidates(d))
    m = coarse_metrics(v_pred, v_dec | (d > tau), v_gold, v_src)
    log(f"Decision threshold fitted on all of valid (best coarse accuracy of `softmax rule OR distance > τ`): "
        f"τ = {tau:.4f}: in-scope accuracy {pct(m['in_acc'])}, oos P/R {pct(m['oos_p'])} / {pct(m['oos_r'])}, "
        f"in-domain R {pct(m['id_r'])}, out-of-domain R {pct(m['ood_r'])} (in-sample; the CV row of table 2 is "
        f"the honest figure).")
    P2 = dict(P)
    P2["dec_oos"] = v_dec | (d > tau)
    P2["correct"] = P["correct"] & ~P2["dec_oos"]
    e = edge_figures(P2, [(d, quantile_grid(d))])
    log(f"Edge with that decision and cuts (confidence, distance): fitted {edge_cell(e['fitted'][1])}, cut "
        f"confidence ≥ {e['fitted'][0][0]}, distance ≤ {e['fitted'][0][1]:.4f}; 5-fold CV {edge_cell(e['cv'])}.")
    log()
    if args.write_stats:
        out = args.write_stats
        write_safetensors(out, {"means": M, "whitening": W}, {
            "kind": "mahalanobis", "feature": "pre_classifier", "classes": json.dumps(intents),
            "model_sha256": model_sha, "fit": "banking77-oos train.jsonl, in-scope rows, tied covariance"})
        log(f"Wrote {out.name}: {out.stat().st_size} bytes; decision threshold {tau:.4f}.")
    if args.fixture:
        # a seeded handful of valid queries of each kind, every valid query whose decision the
        # distance changes (the eval-level check), and two written ones
        rng = np.random.default_rng(7)
        picks = []
        for src in ("in_scope", "oos_in_domain", "oos_out_of_domain"):
            idx = np.nonzero(v_src == src)[0]
            picks += sorted(rng.choice(idx, 4, replace=False).tolist())
        flips = np.nonzero(~v_dec & (d > tau))[0].tolist()
        picks += [i for i in flips if i not in picks]
        rows = [{"text": valid[i]["text"], "label": valid[i]["label"], "source": valid[i]["source"]} for i in picks]
        rows += [{"text": "what's the capital of France"}, {"text": "my card payment was declined"}]
        model = DistilBertForSequenceClassification.from_pretrained(args.model, dtype=torch.float32,
                                                                    attn_implementation="eager").eval()
        tok = AutoTokenizer.from_pretrained(args.model)
        ex = extract(model, tok, [r["text"] for r in rows])
        dd = engine_distance(ex["pre"], W, M)
        triage = json.loads((args.model / "triage.json").read_text())
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        oos_mask = np.array([l in set(triage["out_of_scope_labels"]) for l in labels])
        p = softmax(ex["logits"], triage["temperature"])
        soft_oos = p[:, oos_mask].sum(1) > p[:, ~oos_mask].max(1)
        for r, v, so in zip(rows, dd, soft_oos):
            r.update(distance=float(v), softmax_out_of_scope=bool(so), out_of_scope=bool(so or v > tau))
        fixture = {
            "generator": "tools/feature_oos.py --fixture: transformers float32 features of weights/banking77, "
                         "float64 distance from the float32 statistics it writes",
            "threshold": tau, "cases": rows,
        }
        args.fixture.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
        log(f"Wrote {args.fixture.name}: {len(rows)} queries, {len(flips)} of them valid queries the distance "
            f"sends out of scope ({sum(valid[i]['label'] == OOS for i in flips)} truly out of scope).")


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def edge_cell(t) -> str:
    kept, wrong, oos, n_in, n_oos = t
    ans = kept + oos
    right = 1 - wrong / ans if ans else 0.0
    return f"{pct(kept / n_in)} | {pct(right)} | {pct(oos / n_oos)}"


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO_ROOT / "weights" / "banking77")
    ap.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "banking77-oos")
    ap.add_argument("--clinc", type=Path, default=None, help="default: clinc150/train.jsonl beside --data")
    ap.add_argument("--cache", type=Path, default=None, help="keep the extracted features in this .npz")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write-stats", type=Path, default=None, metavar="FILE",
                    help="write the engine's statistics (whitening, means; float32 safetensors) here")
    ap.add_argument("--engine-only", action="store_true",
                    help="skip the comparison tables (sections 1-3): only section 4, the stats and the fixture")
    ap.add_argument("--fixture", type=Path, default=None, metavar="FILE",
                    help="write the Swift tests' fixture (distances of real queries) here")
    args = ap.parse_args()
    if not args.data.exists():
        args.data = Path("/work/shared/data/banking77-oos")
    if args.clinc is None:
        args.clinc = args.data.parent / "clinc150" / "train.jsonl"
    torch.set_num_threads(args.threads)
    t0 = time.time()

    triage = json.loads((args.model / "triage.json").read_text())
    T = float(triage.get("temperature", 1.0))
    record = json.loads((args.model / "build_record.json").read_text())
    seed, per_intent = record["args"]["seed"], record["args"]["ood_per_intent"]

    train = load_jsonl(args.data / "train.jsonl")
    valid = load_jsonl(args.data / "valid.jsonl")
    banking_texts = set()
    for f in sorted(args.data.glob("*.jsonl")):
        banking_texts.update(normalise_text(r["text"]) for r in load_jsonl(f))
    ood_texts, ood_report = select_out_of_domain(load_jsonl(args.clinc), banking_texts, per_intent, seed)

    model_sha = sha256_file(args.model / "model.safetensors")
    key = hashlib.sha256((model_sha + json.dumps([r["text"] for r in train + valid] + ood_texts)).encode()).hexdigest()
    feats = None
    if args.cache and args.cache.exists():
        z = np.load(args.cache, allow_pickle=False)
        if str(z["key"]) == key:
            feats = {k: z[k] for k in z.files if k != "key"}
    if feats is None:
        model = DistilBertForSequenceClassification.from_pretrained(args.model, dtype=torch.float32,
                                                                    attn_implementation="eager").eval()
        tok = AutoTokenizer.from_pretrained(args.model)
        feats = {}
        for name, texts in (("train", [r["text"] for r in train]), ("ood", ood_texts),
                            ("valid", [r["text"] for r in valid])):
            for k, v in extract(model, tok, texts).items():
                feats[f"{name}_{k}"] = v
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        feats["labels"] = np.array(labels)
        if args.cache:
            np.savez(args.cache, key=np.array(key), **feats)
    labels = [str(l) for l in feats["labels"]]
    oos_labels = set(triage["out_of_scope_labels"])
    in_idx = np.array([i for i, l in enumerate(labels) if l not in oos_labels])
    oos_idx = np.array([i for i, l in enumerate(labels) if l in oos_labels])
    intents = [labels[i] for i in in_idx]
    held_out = sorted(l for l in oos_labels if l != OUT_OF_DOMAIN)

    log(f"# Lever 5: feature-distance out-of-scope scores against the softmax rule")
    log()
    log(f"tools/feature_oos.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__}, "
        f"transformers {transformers.__version__}; model {args.model.name} (model.safetensors SHA-256 "
        f"{model_sha[:16]}…, {len(labels)} labels, {len(oos_labels)} out of scope, temperature {T}).")
    log(f"Fit: train.jsonl ({len(train)} rows: "
        f"{sum(r['source'] == 'in_scope' for r in train)} in-scope, "
        f"{sum(r['source'] != 'in_scope' for r in train)} held-out intents) + {len(ood_texts)} CLINC150 out_of_domain "
        f"rows (build_model's selection, seed {seed}, {per_intent} per intent). Evaluate: valid.jsonl ({len(valid)} "
        f"rows). Note: the network itself was trained on every fit row, so fit-set features are in-sample.")
    log()

    # ---- the decision the engine makes today (softmax rule), on train and valid
    def softmax_side(lg):
        p = softmax(lg, T)
        oos_score = p[:, oos_idx].sum(1)
        best_in = in_idx[p[:, in_idx].argmax(1)]
        conf_in = p[np.arange(len(p)), best_in]
        dec_oos = oos_score > conf_in
        pred = np.array([labels[i] for i in best_in])
        # energy over the in-scope logits (higher = more out of scope)
        z = lg[:, in_idx] / T
        energy = -T * (z.max(1) + np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)))
        return oos_score, conf_in, dec_oos, pred, energy

    v_gold = np.array([r["label"] for r in valid])
    v_src = np.array([r["source"] for r in valid])
    t_gold = np.array([r["label"] for r in train])
    t_fine = np.array([r["label"] if r["label"] != OOS else r["label_original"] for r in train])
    v_oos_score, v_conf, v_dec, v_pred, v_energy = softmax_side(feats["valid_logits"])
    t_oos_score, t_conf, t_dec, t_pred, t_energy = softmax_side(feats["train_logits"])
    base = coarse_metrics(v_pred, v_dec, v_gold, v_src)
    log(f"Softmax rule on valid (reproduces `triage eval`): in-scope accuracy {pct(base['in_acc'])}, out-of-scope "
        f"P/R {pct(base['oos_p'])} / {pct(base['oos_r'])}, in-domain R {pct(base['id_r'])}, out-of-domain R "
        f"{pct(base['ood_r'])}.")
    log()

    # ---- scores
    scores_v: dict[tuple[str, str], np.ndarray] = {("softmax", "logits"): v_oos_score, ("energy", "logits"): v_energy}
    scores_t: dict[tuple[str, str], np.ndarray] = {("softmax", "logits"): t_oos_score, ("energy", "logits"): t_energy}
    tr_in = t_gold != OOS
    for feat in FEATURES:
        xt, xv, xo = feats[f"train_{feat}"], feats[f"valid_{feat}"], feats[f"ood_{feat}"]
        g50 = Gaussians(xt[tr_in], t_fine[tr_in], intents)
        g77 = Gaussians(xt, t_fine, intents + held_out)
        x78 = np.concatenate([xt, xo])
        y78 = np.concatenate([t_fine, np.array([OUT_OF_DOMAIN] * len(xo))])
        g78 = Gaussians(x78, y78, intents + held_out + [OUT_OF_DOMAIN])
        n_in = len(intents)
        # background Gaussian for the relative Mahalanobis distance
        bg = Gaussians(xt[tr_in], np.array(["all"] * int(tr_in.sum())), ["all"])
        mu = {c: xt[tr_in][t_fine[tr_in] == c].mean(0) for c in intents}
        cent = np.stack([mu[c] / np.linalg.norm(mu[c]) for c in intents])

        def dist_scores(x):
            d50 = g50.distances(x)
            d77 = g77.distances(x)
            d78 = g78.distances(x)
            xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            return {
                "maha50": d50.min(1),
                "maha77": d77[:, :n_in].min(1),
                "maha78": d78[:, :n_in].min(1),
                "rel77": d77[:, :n_in].min(1) - d77[:, n_in:].min(1),
                "rel78": d78[:, :n_in].min(1) - d78[:, n_in:].min(1),
                "rmd50": d50.min(1) - bg.distances(x)[:, 0],
                "cos50": 1 - (xn @ cent.T).max(1),
            }
        for name, s in dist_scores(xv).items():
            scores_v[(name, feat)] = s
        for name, s in dist_scores(xt).items():
            scores_t[(name, feat)] = s

    v_oos = v_gold == OOS
    eligible = np.array([complexity(r["text"], float(c)) <= 0.75 for r, c in zip(valid, v_conf)])
    P = {"conf": v_conf, "dec_oos": v_dec, "eligible": eligible, "gold_oos": v_oos,
         "correct": ~v_dec & (v_pred == v_gold) & ~v_oos, "strata": v_gold}
    oos_sub = None
    if not args.engine_only:
        # ---- 1. detection, threshold-free
        v_oos = v_gold == OOS
        ins = ~v_oos
        idm, odm = v_src == "oos_in_domain", v_src == "oos_out_of_domain"
        log("## 1. Detection on valid, threshold-free (AUROC of the score, out-of-scope vs in-scope)")
        log()
        log("| score | feature | all out-of-scope | in-domain (held-out intents) | out-of-domain |")
        log("|---|---|---|---|---|")
        ranking = []
        for (name, feat), s in scores_v.items():
            a_all = auroc(s, v_oos)
            a_id = auroc(s[ins | idm], v_oos[ins | idm])
            a_od = auroc(s[ins | odm], v_oos[ins | odm])
            ranking.append(((name, feat), a_all, a_od))
            log(f"| {name} | {feat} | {a_all:.4f} | {a_id:.4f} | {a_od:.4f} |")
        log()

        # ---- 2. decisions
        fold = folds_of(np.array([g if g != OOS else OOS for g in v_gold]))
        log("## 2. Decisions on valid: in-scope accuracy and out-of-scope precision / recall")
        log()
        log("`OR`: out of scope when the softmax rule says so or the score is above τ; `alone`: only the score "
            "(the intent is the softmax argmax over the 50 intents). τ from train (best coarse accuracy on the "
            "77-class train rows, in-sample for the network) or from 5-fold CV over valid (best coarse accuracy on the "
            "other folds).")
        log()
        log("| rule | score | feature | τ from | in-scope acc | oos P | oos R | in-domain R | out-of-domain R | coarse acc |")
        log("|---|---|---|---|---|---|---|---|---|---|")

        def row(rule, name, feat, src, m):
            log(f"| {rule} | {name} | {feat} | {src} | {pct(m['in_acc'])} | {pct(m['oos_p'])} | {pct(m['oos_r'])} | "
                f"{pct(m['id_r'])} | {pct(m['ood_r'])} | {pct(m['acc'])} |")

        row("softmax (today)", "softmax", "logits", "—", base)
        decision_rows = {}
        for (name, feat), s in scores_v.items():
            st = scores_t[(name, feat)]
            for rule, vb, tb in (("OR", v_dec, t_dec), ("alone", np.zeros_like(v_dec), np.zeros_like(t_dec))):
                if name == "softmax" and rule == "OR":
                    continue
                tau = best_tau(st, tb, t_pred, t_gold, tau_candidates(st))
                m_tr = coarse_metrics(v_pred, vb | (s > tau), v_gold, v_src)
                flag = np.zeros_like(v_dec)
                for f in range(FOLDS):
                    tr_, te_ = fold != f, fold == f
                    tau_f = best_tau(s[tr_], vb[tr_], v_pred[tr_], v_gold[tr_], tau_candidates(s[tr_]))
                    flag[te_] = vb[te_] | (s[te_] > tau_f)
                m_cv = coarse_metrics(v_pred, flag, v_gold, v_src)
                decision_rows[(rule, name, feat)] = m_cv
                row(rule, name, feat, "train", m_tr)
                row(rule, name, feat, "valid CV", m_cv)
        log()

        # ---- 3. the edge
        log("## 3. The edge on valid: `triage tune`'s fit (≤ 2 % of the edge's answers wrong, ≤ 2 % of out-of-scope "
            "queries answered), fitted on all of valid / 5-fold CV")
        log()
        log("Cuts: `conf+oos` = today's (confidence, summed out-of-scope probability, grid 0.005); `conf+dist` = "
            "(confidence, the score; grid: the score's quantiles 50–99.9 %); `conf+oos+dist` = all three (oos grid "
            "0.005–0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1). Each cell: in-scope kept | edge answers right "
            "| out-of-scope answered.")
        log()
        log("| cuts | score | feature | kept (fitted) | right (fitted) | oos answered (fitted) | kept (CV) | right (CV) "
            "| oos answered (CV) |")
        log("|---|---|---|---|---|---|---|---|---|")
        oos_sub = np.array([0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2,
                            0.3, 0.5, 1.0])
        e = edge_figures(P, [(v_oos_score, SCORE_GRID)])
        log(f"| conf+oos (today) | softmax | logits | {edge_cell(e['fitted'][1])} | {edge_cell(e['cv'])} |")
        base_edge = e
        today_cut = e["fitted"][0]
        edge_rows = {}
        for (name, feat), s in scores_v.items():
            if name == "softmax":
                continue
            g = quantile_grid(s)
            e2 = edge_figures(P, [(s, g)])
            e3 = edge_figures(P, [(v_oos_score, oos_sub), (s, g)])
            edge_rows[(name, feat)] = (e2, e3)
            for cuts, ee in (("conf+dist", e2), ("conf+oos+dist", e3)):
                fit = edge_cell(ee["fitted"][1]) if ee["fitted"] else "nothing meets the budgets | | "
                log(f"| {cuts} | {name} | {feat} | {fit} | {edge_cell(ee['cv'])} |")
        log()

        # ---- summary
        log("## Summary")
        log()
        best_ood = max(ranking, key=lambda r: r[2])
        log(f"- Best out-of-domain AUROC: {best_ood[0][0]}/{best_ood[0][1]} {best_ood[2]:.4f} "
            f"(softmax {dict((k, a) for k, _, a in ranking)[('softmax', 'logits')]:.4f}).")
        bd = max(decision_rows.items(), key=lambda kv: kv[1]["acc"])
        log(f"- Best decision by coarse accuracy (valid CV): {bd[0][0]} {bd[0][1]}/{bd[0][2]}: in-scope "
            f"{pct(bd[1]['in_acc'])}, oos P/R {pct(bd[1]['oos_p'])} / {pct(bd[1]['oos_r'])}, out-of-domain R "
            f"{pct(bd[1]['ood_r'])} (softmax: {pct(base['in_acc'])}, {pct(base['oos_p'])} / {pct(base['oos_r'])}, "
            f"{pct(base['ood_r'])}).")
        def right(t):
            return 1 - t[1] / max(1, t[0] + t[2])
        today = base_edge["cv"]
        ok = [(k, ee) for k, pair in edge_rows.items() for ee in pair
              if right(ee["cv"]) >= right(today) and ee["cv"][2] <= today[2]]
        for k, ee in sorted(ok, key=lambda kv: -kv[1]["cv"][0])[:3]:
            log(f"- Large CV edge share with CV edge accuracy and out-of-scope answers no worse than today's: "
                f"{k[0]}/{k[1]}: {edge_cell(ee['cv'])} (today's cuts: {edge_cell(today)}).")
        log(f"- Today's cut refitted here: confidence ≥ {today_cut[0]}, oos score ≤ {today_cut[1]} (triage.json: "
            f"{triage['routing']['min_confidence']} / {triage['routing']['max_oos_score']}).")
        log()

    # ---- 4. the engine's variant: maha50 on the classifier's input, as float32 whitening
    chosen(args, feats, train, valid, t_gold, t_fine, intents, v_pred, v_dec, v_gold, v_src, P, oos_sub,
           scores_v[("maha50", "pre")], model_sha)
    log(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
