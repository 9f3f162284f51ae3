#!/usr/bin/env python3
"""Generate random-weight DistilBERT parity fixtures for triage's Swift model tests.

For each configuration below this writes Tests/Fixtures/parity/<name>/ with
  config.json, model.safetensors   as transformers' save_pretrained(safe_serialization=True) writes them
                                   (noprefix: tensor names without "distilbert."; f16: float16 tensors)
  expected.json                    {"config_name", ..., "cases": [{"name", "input_ids", "attention_mask",
                                    "logits", "last_hidden_state_cls"}]}

Expected values are computed by PyTorch transformers in float32 under no_grad with
attn_implementation="eager", from the weights as saved on disk (the f16 fixture's
expected values are the float32 computation on the float16-rounded weights).
The script asserts: a reload from disk reproduces the outputs bit for bit,
"sdpa" attention agrees with "eager" (reports the max difference), each row of
the padded batch agrees with the same sequence run alone, and the fixture
directory stays small.

Deterministic: torch.manual_seed per configuration, single-threaded torch.
Run:  tools/.venv/bin/python tools/gen_parity_fixtures.py [--out DIR]
"""
import argparse
import json
import math
import os
import shutil
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import DistilBertConfig, DistilBertForSequenceClassification  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "Tests", "Fixtures", "parity")
MAX_DIR_BYTES = 1_500_000

TINY72 = dict(vocab_size=1000, dim=72, n_layers=3, n_heads=6, hidden_dim=200, max_position_embeddings=64,
              activation="gelu", num_labels=5)
TINY52 = dict(vocab_size=700, dim=52, n_layers=2, n_heads=4, hidden_dim=100, max_position_embeddings=40,
              activation="relu", num_labels=3)

CONFIGS = [
    dict(name="tiny72", seed=7201, shape=TINY72, id2label={i: f"label_{c}" for i, c in enumerate("abcde")}),
    dict(name="tiny52relu", seed=5201, shape=TINY52),
    dict(name="noprefix", seed=7202, shape=TINY72, id2label={i: f"label_{c}" for i, c in enumerate("abcde")},
         strip_prefix=True),
    dict(name="f16", seed=5202, shape=TINY52, float16=True),
]

PREFIX = "distilbert."


def randomize(model, dim):
    """Random weights that make every part of the network matter: attention scores
    of order 1-2 (not uniform), LayerNorm gammas/betas away from 1/0, non-zero biases.
    Uses the global torch RNG (seeded by the caller)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("LayerNorm.bias") or name.endswith("layer_norm.bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif name.endswith("word_embeddings.weight"):
                p.copy_(0.5 * torch.randn_like(p))
            elif name.endswith("position_embeddings.weight"):
                p.copy_(0.3 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif name.endswith(".weight"):
                assert p.dim() == 2, name
                fan_in = p.shape[1]
                gain = 1.0
                if "q_lin" in name or "k_lin" in name:
                    gain = 1.4  # score std ~ gain^4 ~ 2
                elif "lin1" in name or "pre_classifier" in name:
                    gain = 1.5
                elif name.startswith("classifier"):
                    gain = 2.0
                p.copy_(gain / math.sqrt(fan_in) * torch.randn_like(p))
            else:
                raise AssertionError(f"unexpected parameter {name}")
    # nothing is left at its trivial default
    for name, p in model.named_parameters():
        assert not torch.all(p == 0) and not torch.all(p == 1), name


def make_inputs(shape, gen):
    vocab, max_pos = shape["vocab_size"], shape["max_position_embeddings"]
    cases = []
    for n in (1, 2, 7, 16, 33, max_pos):
        assert n <= max_pos
        ids = torch.randint(0, vocab, (1, n), generator=gen)
        cases.append((f"single_len{n}", ids, torch.ones(1, n, dtype=torch.long)))
    lengths = [max_pos // 2 + 3, 3, 1, max_pos - 5, 17]
    longest = max(lengths)
    ids = torch.zeros(len(lengths), longest, dtype=torch.long)  # pad id 0, right padding
    mask = torch.zeros(len(lengths), longest, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(0, vocab, (n,), generator=gen)
        mask[row, :n] = 1
    cases.append(("padded_batch5", ids, mask))
    return cases


def run(model, ids, mask):
    with torch.no_grad():
        base = model.distilbert(input_ids=ids, attention_mask=mask)
        hidden = base.last_hidden_state
        logits = model(input_ids=ids, attention_mask=mask).logits
    assert logits.dtype == torch.float32 and hidden.dtype == torch.float32
    return logits, hidden[:, 0, :]


def load_fp32_from_disk(d, strip_prefix):
    """Loads the saved safetensors into a fresh float32 model (upcasting F16), strictly."""
    config = DistilBertConfig.from_pretrained(d)
    model = DistilBertForSequenceClassification(config)
    model.set_attn_implementation("eager")
    sd = load_file(os.path.join(d, "model.safetensors"))
    if strip_prefix:
        sd = {(k if k.startswith(("pre_classifier.", "classifier.")) else PREFIX + k): v for k, v in sd.items()}
    sd = {k: v.to(torch.float32) for k, v in sd.items()}
    model.load_state_dict(sd, strict=True)
    model.eval()
    return model


def build(cfg, out_root):
    name, shape = cfg["name"], cfg["shape"]
    d = os.path.join(out_root, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    torch.manual_seed(cfg["seed"])
    kw = dict(shape)
    if "id2label" in cfg:
        kw["id2label"] = cfg["id2label"]
        kw["label2id"] = {v: k for k, v in cfg["id2label"].items()}
    config = DistilBertConfig(**kw)
    model = DistilBertForSequenceClassification(config)
    model.set_attn_implementation("eager")
    randomize(model, shape["dim"])
    model.eval()
    assert shape["dim"] % shape["n_heads"] == 0

    if cfg.get("float16"):
        model.to(torch.float16).save_pretrained(d, safe_serialization=True)
        model.to(torch.float32)
    else:
        model.save_pretrained(d, safe_serialization=True)
    st_path = os.path.join(d, "model.safetensors")

    if cfg.get("strip_prefix"):
        sd = load_file(st_path)
        stripped = {}
        for k, v in sd.items():
            nk = k if k.startswith(("pre_classifier.", "classifier.")) else k[len(PREFIX):]
            assert k.startswith(PREFIX) or k.startswith(("pre_classifier.", "classifier.")), k
            stripped[nk] = v.contiguous()
        save_file(stripped, st_path, metadata={"format": "pt"})

    # what is on disk
    with safe_open(st_path, "pt") as f:
        keys = list(f.keys())
        meta = f.metadata()
        dtypes = {str(f.get_slice(k).get_dtype()) for k in keys}
    has_prefix = any(k.startswith(PREFIX) for k in keys)
    assert has_prefix == (not cfg.get("strip_prefix")), keys
    assert dtypes == ({"F16"} if cfg.get("float16") else {"F32"}), dtypes
    assert meta == {"format": "pt"}, meta

    # Reference model = the weights as read back from disk, in float32.
    ref = load_fp32_from_disk(d, cfg.get("strip_prefix", False))
    if not cfg.get("float16"):
        for (k1, p1), (k2, p2) in zip(model.state_dict().items(), ref.state_dict().items()):
            assert k1 == k2 and torch.equal(p1, p2), k1
    # transformers' own loader reads the directory to the same float32 weights
    # (for noprefix too: it adds the missing base-model prefix itself).
    hf, info = DistilBertForSequenceClassification.from_pretrained(
        d, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    hf.eval()
    for (k1, p1), (k2, p2) in zip(ref.state_dict().items(), hf.state_dict().items()):
        assert k1 == k2 and p2.dtype == torch.float32 and torch.equal(p1, p2), k1

    gen = torch.Generator().manual_seed(cfg["seed"] + 1)
    cases = []
    max_logit = 0.0
    sdpa_diff = 0.0
    for case_name, ids, mask in make_inputs(shape, gen):
        logits, cls = run(ref, ids, mask)
        if not cfg.get("float16"):  # in-memory model gives the same bits
            l2, c2 = run(model, ids, mask)
            assert torch.equal(l2, logits) and torch.equal(c2, cls), case_name
        ref.set_attn_implementation("sdpa")
        ls, cs = run(ref, ids, mask)
        ref.set_attn_implementation("eager")
        sdpa_diff = max(sdpa_diff, (ls - logits).abs().max().item(), (cs - cls).abs().max().item())
        if case_name == "padded_batch5":
            for row in range(ids.shape[0]):
                n = int(mask[row].sum())
                lr, cr = run(ref, ids[row:row + 1, :n], mask[row:row + 1, :n])
                dl = (lr[0] - logits[row]).abs().max().item()
                dc = (cr[0] - cls[row]).abs().max().item()
                assert dl < 1e-5 and dc < 1e-4, (case_name, row, dl, dc)
        assert torch.isfinite(logits).all() and torch.isfinite(cls).all()
        max_logit = max(max_logit, logits.abs().max().item())
        cases.append({
            "name": case_name,
            "input_ids": ids.tolist(),
            "attention_mask": mask.tolist(),
            "logits": logits.tolist(),
            "last_hidden_state_cls": cls.tolist(),
        })
    assert sdpa_diff <= 1e-4, sdpa_diff

    expected = {
        "config_name": name,
        "generated_by": "tools/gen_parity_fixtures.py",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "seed": cfg["seed"],
        "weights_dtype": "float16" if cfg.get("float16") else "float32",
        "tensor_names": "no distilbert. prefix" if cfg.get("strip_prefix") else "distilbert. prefix",
        "compute": "float32, torch.no_grad, attn_implementation=eager",
        "cases": cases,
    }
    with open(os.path.join(d, "expected.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(expected, f, separators=(",", ":"))
        f.write("\n")

    size = sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))
    assert size <= MAX_DIR_BYTES, (name, size)
    files = sorted(os.listdir(d))
    return dict(name=name, size=size, max_logit=max_logit, sdpa_diff=sdpa_diff, files=files,
                n_cases=len(cases), n_tensors=len(keys))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    results = [build(cfg, args.out) for cfg in CONFIGS]
    print(f"{'fixture':12s} {'bytes':>9s} {'cases':>5s} {'tensors':>7s} {'max|logit|':>10s} {'max|sdpa-eager|':>15s}")
    for r in results:
        flag = "" if r["sdpa_diff"] <= 1e-6 else "  (> 1e-6)"
        print(f"{r['name']:12s} {r['size']:9d} {r['n_cases']:5d} {r['n_tensors']:7d} {r['max_logit']:10.4f} "
              f"{r['sdpa_diff']:15.3e}{flag}")
    print("files per fixture:", results[0]["files"])


if __name__ == "__main__":
    sys.exit(main())
