#!/usr/bin/env python3
"""Compare triage with ONNX Runtime and PyTorch on the same DistilBERT model and inputs.

One run measures, side by side and interleaved per sequence length (so that a noisy
machine hits every engine alike):

  * PyTorch FP32 (eager, `torch.inference_mode()`, `torch.set_num_threads(T)`),
  * ONNX Runtime FP32 (the model exported with `torch.onnx.export`),
  * ONNX Runtime INT8 (`onnxruntime.quantization.quantize_dynamic` with its default
    settings: per-tensor, QInt8 weights, no pre-processing),
  * triage FP32 and triage INT8 (`triage bench --json`, one subprocess per length; the
    best INT8 kernel of this CPU is the one compared with ONNX Runtime, the others get
    a column with a smaller run budget),

for two models: the shipped classifier (`weights/banking77`) and a DistilBERT-base-sized
random model (dim 768, 6 layers), which the script writes with
`tools/make_random_model.py` when it is missing. For each model and thread count it
prints one table (rows: sequence lengths; columns: p50 latency of every engine and the
ratios triage FP32 / ORT FP32, triage INT8 / ORT INT8 and triage FP32 / triage INT8, each
marked against the target), then model sizes on disk, throughput at batch 32 × 128,
FP32-vs-INT8 agreement on labelled queries, and a summary of the targets:

  * triage FP32 p50 <= ORT FP32 p50 at every length 16..256, both models, 1 and 2 threads
  * triage INT8 p50 <= ORT INT8 p50 at the same points
  * triage INT8 >= 2.5x faster than triage FP32 at 128 tokens on the base-sized model
  * triage INT8 model file <= 26 % of the FP32 file (int8 embeddings included)
  * triage INT8 vs FP32: label agreement >= 99 % on the valid set, in-scope accuracy
    drop <= 0.5 points (triage's own numbers, with its calibrated out-of-scope rule)

Inputs (the same ids as `triage bench` builds): batch 1, `[CLS] + ids + [SEP]`, where ids
are the WordPiece ids of SEED_TEXT (no specials) from the model's own tokenizer, repeated
cyclically to fill length - 2 positions; attention mask all ones. The script checks that
`triage tokenize` gives the same ids. Each point: 5 warm-up runs, then runs until at
least --min-time seconds and --min-runs runs have passed; p50/p95 are nearest-rank
percentiles of the run times, measured around the run call only
(`time.perf_counter_ns`). ONNX Runtime sessions use `intra_op_num_threads=T`,
`inter_op_num_threads=1`, `ORT_ENABLE_ALL` and `ORT_SEQUENTIAL`; triage gets
`--threads T`. Only the forward pass is timed (token ids in, logits out) everywhere.
Engines take turns at each length (PyTorch, ORT FP32, ORT INT8, triage), with a short
pause between them; --rounds N repeats that block N times (rotating the order) and reports
the median of the per-round p50s. Throughput: batch 32 × 128, 1 warm-up (triage: 3), then
--throughput-runs batches (default 3). The load average is printed with every table:
on a shared machine, read the numbers with it (PyTorch with 2 threads suffers most from
other load: libgomp barriers).

Checks before timing: ORT FP32 logits vs PyTorch on every length and on a padded batch
(the run stops if max |Δlogit| > 2e-3), ORT INT8 vs PyTorch (printed), `triage tokenize`
of SEED_TEXT vs the Python ids, and `triage classify` (FP32 and --int8) logits vs PyTorch.
The ONNX export uses eager attention (a plain MatMul/Softmax graph that ORT fuses) and a
padded example batch so that the attention-mask path is traced; the TorchScript exporter
(dynamo=False) leaves the module in training mode, so the exported instance is discarded.
PyTorch is timed with its default attention (SDPA).

Accuracy (models whose label names are used by --data, i.e. the shipped classifier, not
the random one): ORT FP32 vs ORT INT8 and triage FP32 vs INT8 (`triage classify --json`)
by plain argmax of the logits, no out-of-scope rule; and triage's own
`bench --parts accuracy`, which applies its calibrated out-of-scope rule (the target).
In-scope = gold label is not "oos" and is one of the model's labels.

Files: everything is written under --work-dir (default /tmp/triage-compare), per model
`<name>/` (a copy of the model with FP32 safetensors: the "FP32 file"; triage runs on it),
`<name>-int8/` (`triage quantize` of the model as stored, i.e. what would ship),
`<name>-onnx/model.onnx` and `model.int8.onnx`. --reuse skips rebuilding them when the
source model and the triage binary are unchanged.

Run (after `tools/setup_venv.sh` and `make build`):

    tools/.venv/bin/python tools/compare_engines.py
    tools/.venv/bin/python tools/compare_engines.py --models /tmp/proto/m1 --threads 1 --lengths 16,128
    tools/.venv/bin/python tools/compare_engines.py --rounds 3 --json /tmp/compare.json  # steadier, ~25 min
    tools/.venv/bin/python tools/compare_engines.py --markdown   # tables for a README

A full default run (two models, 1 and 2 threads, six lengths, throughput, accuracy) takes
about 10-15 minutes on a 2-core machine. Progress goes to stderr, the tables to stdout.
"""
import argparse
import gc
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import onnxruntime.quantization as ortq  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED_TEXT = "I was charged twice for the same card payment yesterday, can you refund one of them?"
VOCAB_SIZE = 30522
WARMUP = 5
BATCH, BATCH_TOKENS = 32, 128
TARGET_RANGE = (16, 256)        # lengths the latency targets apply to
INT8_SPEEDUP_TARGET = 2.5       # triage FP32 / triage INT8 at 128 tokens, base-sized model
INT8_SIZE_TARGET = 0.26         # triage INT8 file / FP32 file
AGREEMENT_TARGET = 0.99
ACCURACY_DROP_TARGET = 0.5      # points


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Timing

def percentile(sorted_samples, p):
    """Nearest-rank percentile (the same definition as triage bench)."""
    n = len(sorted_samples)
    return sorted_samples[min(n - 1, max(0, math.ceil(n * p) - 1))]


def measure(fn, min_time, min_runs, warmup=WARMUP):
    """Warm-up calls, then calls until min_time seconds and min_runs runs; stats in ms."""
    for _ in range(warmup):
        fn()
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        while len(samples) < min_runs or (time.perf_counter_ns() - start) < min_time * 1e9:
            t0 = time.perf_counter_ns()
            fn()
            samples.append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    samples.sort()
    return {"p50_ms": percentile(samples, 0.5), "p95_ms": percentile(samples, 0.95), "runs": len(samples)}


def settle():
    """Let spinning worker threads (ORT, OpenMP) go to sleep before the next engine starts."""
    time.sleep(0.2)


# ---------------------------------------------------------------------------------------
# triage subprocess

class TriageError(RuntimeError):
    pass


def run_process(cmd, timeout, stdin_text=None):
    """Run cmd in its own process group; on timeout kill that group. Returns (rc, stdout, stderr)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(stdin_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise TriageError(f"timed out after {timeout:.0f} s (killed): {' '.join(cmd)}\nstderr tail:\n{err[-2000:]}")
    return p.returncode, out, err


def run_triage(args, timeout, parse_json=True, want_stderr=False):
    cmd = [TRIAGE] + [str(a) for a in args]
    t0 = time.time()
    rc, out, err = run_process(cmd, timeout)
    p = subprocess.CompletedProcess(cmd, rc, out, err)
    if p.returncode != 0:
        raise TriageError(f"exit status {p.returncode} after {time.time() - t0:.1f} s: {' '.join(cmd)}\n"
                          f"stderr:\n{p.stderr[-3000:]}\nstdout:\n{p.stdout[-1000:]}")
    if not parse_json:
        return p.stdout + (p.stderr if want_stderr else "")
    text = p.stdout
    start = text.find("{")
    try:
        return json.loads(text[start:])
    except (ValueError, IndexError) as e:
        raise TriageError(f"unparseable JSON from {' '.join(cmd)}: {e}\nstdout head:\n{text[:1000]}") from None


# ---------------------------------------------------------------------------------------
# Model preparation

def safetensors_dtypes(path):
    with safe_open(path, framework="pt") as f:
        return sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()})


def prepare_model(src, work_dir, name, reuse):
    """FP32 copy, triage INT8, ONNX FP32 and ONNX INT8; returns a dict of paths, sizes, times."""
    info = {"name": name, "source": src}
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    info.update(dim=config["dim"], layers=config["n_layers"], heads=config["n_heads"],
                hidden=config["hidden_dim"], max_positions=config["max_position_embeddings"],
                labels=len(config.get("id2label", {})))
    src_weights = os.path.join(src, "model.safetensors")
    info["stored_dtypes"] = safetensors_dtypes(src_weights)
    info["stored_bytes"] = os.path.getsize(src_weights)

    fp32_dir = os.path.join(work_dir, name)
    int8_dir = fp32_dir + "-int8"
    onnx_dir = fp32_dir + "-onnx"
    onnx_fp32 = os.path.join(onnx_dir, "model.onnx")
    onnx_int8 = os.path.join(onnx_dir, "model.int8.onnx")
    info.update(fp32_dir=fp32_dir, int8_dir=int8_dir, onnx_fp32=onnx_fp32, onnx_int8=onnx_int8)
    fp32_weights = os.path.join(fp32_dir, "model.safetensors")
    done_marker = os.path.join(onnx_dir, "done.json")
    source_stamp = {"source": os.path.abspath(src), "size": info["stored_bytes"],
                    "mtime": os.path.getmtime(src_weights), "triage_mtime": os.path.getmtime(TRIAGE)}
    reusable = False
    if reuse and os.path.isfile(done_marker):
        with open(done_marker) as f:
            reusable = json.load(f).get("stamp") == source_stamp

    if reusable:
        log(f"[{name}] reusing {fp32_dir}, {int8_dir}, {onnx_dir}")
        with open(done_marker) as f:
            info.update(json.load(f)["info"])
    else:
        # (1) FP32 copy: F16/BF16 tensors widened, so the FP32 file size is the real one.
        for d in (fp32_dir, int8_dir, onnx_dir):
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(fp32_dir)
        os.makedirs(onnx_dir)
        for entry in sorted(os.listdir(src)):
            p = os.path.join(src, entry)
            if os.path.isfile(p) and entry != "model.safetensors":
                shutil.copyfile(p, os.path.join(fp32_dir, entry))
        if info["stored_dtypes"] == ["torch.float32"]:
            shutil.copyfile(src_weights, fp32_weights)
            info["fp32_converted"] = False
        else:
            tensors = load_file(src_weights)
            tensors = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
            save_file(tensors, fp32_weights, metadata={"format": "pt"})
            cfg_path = os.path.join(fp32_dir, "config.json")
            with open(cfg_path) as f:
                cfg = json.load(f)
            for key in ("dtype", "torch_dtype"):
                if key in cfg:
                    cfg[key] = "float32"
            with open(cfg_path, "w") as f:
                json.dump(cfg, f, indent=2)
            info["fp32_converted"] = True
            log(f"[{name}] wrote FP32 copy of {info['stored_dtypes']} weights: {fp32_weights}")

        # (4) triage INT8 (int8 weights and embeddings), quantized from the model as stored
        # (what would ship), written beside the FP32 copy, where triage bench looks for it.
        t0 = time.time()
        out = run_triage(["quantize", "--model", src, "--out", int8_dir], timeout=600, parse_json=False,
                         want_stderr=True)
        info["triage_quantize_s"] = time.time() - t0
        log(f"[{name}] {out.strip()}")

        # (2) ONNX FP32. Eager attention exports a plain MatMul/Softmax graph; the example
        # batch has a padded row so that the attention-mask path is traced.
        t0 = time.time()
        model = AutoModelForSequenceClassification.from_pretrained(
            fp32_dir, dtype=torch.float32, attn_implementation="eager").eval()
        wrapper = LogitsOnly(model).eval()
        ids = torch.full((2, 16), 1000, dtype=torch.long)
        mask = torch.ones_like(ids)
        mask[1, 10:] = 0
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (ids, mask), onnx_fp32, input_names=["input_ids", "attention_mask"],
                output_names=["logits"], opset_version=17, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                              "attention_mask": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}})
        # The TorchScript exporter leaves the module in training mode; this instance is
        # dropped here and never used as a reference.
        del model, wrapper
        onnx.checker.check_model(onnx_fp32)
        info["onnx_export_s"] = time.time() - t0

        # (3) ONNX Runtime dynamic quantization, default settings.
        t0 = time.time()
        import logging
        logging.getLogger().setLevel(logging.ERROR)
        ortq.quantize_dynamic(onnx_fp32, onnx_int8)
        info["ort_quantize_s"] = time.time() - t0
        log(f"[{name}] exported ONNX in {info['onnx_export_s']:.1f} s, quantize_dynamic in {info['ort_quantize_s']:.1f} s")
        with open(done_marker, "w") as f:
            json.dump({"stamp": source_stamp, "info": {k: info[k] for k in
                       ("fp32_converted", "triage_quantize_s", "onnx_export_s", "ort_quantize_s")}}, f)

    info["sizes"] = {
        "stored_bytes": info["stored_bytes"],
        "fp32_bytes": os.path.getsize(fp32_weights),
        "onnx_fp32_bytes": os.path.getsize(onnx_fp32),
        "ort_int8_bytes": os.path.getsize(onnx_int8),
        "triage_int8_bytes": os.path.getsize(os.path.join(int8_dir, "model.safetensors")),
    }
    s = info["sizes"]
    s["ort_int8_ratio"] = s["ort_int8_bytes"] / s["fp32_bytes"]
    s["triage_int8_ratio"] = s["triage_int8_bytes"] / s["fp32_bytes"]
    return info


class LogitsOnly(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def bench_ids(tokenizer, length):
    seed = tokenizer(SEED_TEXT, add_special_tokens=False)["input_ids"]
    body = [seed[i % len(seed)] for i in range(length - 2)]
    return [tokenizer.cls_token_id] + body + [tokenizer.sep_token_id]


def ort_session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def check_parity(info, tokenizer, torch_model, lengths):
    """ORT FP32/INT8 vs PyTorch, triage tokenizer and FP32/INT8 logits vs PyTorch."""
    name = info["name"]
    parity = {}
    fp32 = ort_session(info["onnx_fp32"], 2)
    int8 = ort_session(info["onnx_int8"], 2)
    d_fp32 = d_int8 = 0.0
    feeds = []
    for n in lengths:
        ids = np.array([bench_ids(tokenizer, n)], dtype=np.int64)
        feeds.append((ids, np.ones_like(ids)))
    # plus a padded batch of two rows, to check the mask
    a = bench_ids(tokenizer, 40)
    b = bench_ids(tokenizer, 23) + [tokenizer.pad_token_id] * 17
    feeds.append((np.array([a, b], dtype=np.int64), np.array([[1] * 40, [1] * 23 + [0] * 17], dtype=np.int64)))
    with torch.inference_mode():
        for ids, mask in feeds:
            ref = torch_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
            feed = {"input_ids": ids, "attention_mask": mask}
            d_fp32 = max(d_fp32, float(np.abs(fp32.run(None, feed)[0] - ref).max()))
            d_int8 = max(d_int8, float(np.abs(int8.run(None, feed)[0] - ref).max()))
    parity["ort_fp32_vs_torch_max_abs_dlogit"] = d_fp32
    parity["ort_int8_vs_torch_max_abs_dlogit"] = d_int8
    log(f"[{name}] max |Δlogit| vs PyTorch FP32: ORT FP32 {d_fp32:.2e}, ORT INT8 {d_int8:.3f}")
    if d_fp32 > 2e-3:
        raise SystemExit(f"[{name}] ONNX FP32 export disagrees with PyTorch (max |Δlogit| {d_fp32:.3g}); aborting")
    del fp32, int8

    # triage: same ids for the seed text, and logits on texts of ~20, ~60 and ~190 tokens.
    want = [tokenizer.cls_token_id] + tokenizer(SEED_TEXT, add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
    try:
        got = [int(x) for x in run_triage(["tokenize", "--model", info["fp32_dir"], SEED_TEXT],
                                          timeout=120, parse_json=False).split()]
        parity["triage_seed_ids_match"] = got == want
        if got != want:
            log(f"[{name}] WARNING: triage tokenize gives {got}, Python {want}: bench inputs differ")
        texts = [" ".join([SEED_TEXT] * k) for k in (1, 3, 9)]
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.inference_mode():
            ref = torch_model(**{k: enc[k] for k in ("input_ids", "attention_mask")}).logits.numpy()
        for engine, extra in (("fp32", []), ("int8", ["--int8"])):
            out = run_triage(["classify", "--model", info["fp32_dir"], "--json", "--threads", "1"] + extra + texts,
                             timeout=300, parse_json=False)
            rows = [json.loads(line) for line in out.splitlines() if line.strip()]
            logits = np.array([r["logits"] for r in rows], dtype=np.float64)
            tokens = [r.get("tokens") for r in rows]
            parity[f"triage_{engine}_vs_torch_max_abs_dlogit"] = float(np.abs(logits - ref).max())
            parity["triage_classify_tokens"] = tokens
        parity["torch_tokens"] = [int(x) for x in enc["attention_mask"].sum(1)]
        log(f"[{name}] triage tokenize ids {'match' if parity['triage_seed_ids_match'] else 'DIFFER'}; "
            f"max |Δlogit| vs PyTorch FP32 ({parity['torch_tokens']} tokens): "
            f"triage FP32 {parity['triage_fp32_vs_torch_max_abs_dlogit']:.2e}, "
            f"triage INT8 {parity['triage_int8_vs_torch_max_abs_dlogit']:.3f}")
    except TriageError as e:
        parity["triage_error"] = str(e)
        log(f"[{name}] triage parity check failed: {e}")
    return parity


# ---------------------------------------------------------------------------------------
# Benchmarks for one model at one thread count

def bench_model_threads(info, tokenizer, torch_model, threads, lengths, args, best_kernel, aux_kernels):
    name = info["name"]
    rows = []   # {"engine", "kernel", "tokens", "p50_ms", "p95_ms", "runs"}
    errors = []
    fp32 = ort_session(info["onnx_fp32"], threads)
    int8 = ort_session(info["onnx_int8"], threads)
    if torch_model is not None:
        torch.set_num_threads(threads)
    lengths = [n for n in lengths if n <= info["max_positions"]]

    def triage_bench(extra, what):
        if "--min-runs" not in extra:
            extra = extra + ["--min-runs", args.min_runs]
        try:
            return run_triage(["bench", "--model", info["fp32_dir"], "--threads", threads, "--json",
                               "--min-time", args.min_time] + extra,
                              timeout=args.triage_timeout)
        except TriageError as e:
            errors.append(f"{name}, {threads} thread(s), {what}: {e}")
            log(f"[{name}] triage bench failed ({what}): {e}")
            return None

    t_phase = time.time()
    load_before = os.getloadavg()[0]
    for n in lengths:
        ids = np.array([bench_ids(tokenizer, n)], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        t_ids, t_mask = torch.from_numpy(ids), torch.ones((1, n), dtype=torch.long)

        def run_torch():
            with torch.inference_mode():
                return measure(lambda: torch_model(input_ids=t_ids, attention_mask=t_mask), args.min_time, args.min_runs)

        def run_triage_point():
            r = triage_bench(["--parts", "latency", "--engines", "fp32,int8", "--kernels", best_kernel,
                              "--lengths", n], f"latency at {n} tokens")
            if r is None:
                return {}
            return {("triage_" + x["engine"], x.get("kernel")): x for x in r.get("latency", [])}

        steps = ([("torch", run_torch)] if torch_model is not None else []) + [
            ("ort_fp32", lambda: measure(lambda: fp32.run(None, feed), args.min_time, args.min_runs)),
            ("ort_int8", lambda: measure(lambda: int8.run(None, feed), args.min_time, args.min_runs)),
            ("triage", run_triage_point)]
        per_round = {}   # (engine, kernel) -> [stats per round]
        for rnd in range(args.rounds):
            # rotate the order from round to round so no engine always follows the same one
            for label, step in steps[rnd % len(steps):] + steps[:rnd % len(steps)]:
                got = step()
                if label == "triage":
                    for key, x in got.items():
                        per_round.setdefault(key, []).append(x)
                else:
                    per_round.setdefault((label if label != "torch" else "torch_fp32", None), []).append(got)
                settle()
        for (engine, kernel), stats in per_round.items():
            # one round: its p50/p95; several: the median of the per-round p50s (and p95s)
            rows.append(dict(engine=engine, kernel=kernel, tokens=n,
                             p50_ms=float(np.median([x["p50_ms"] for x in stats])),
                             p95_ms=float(np.median([x["p95_ms"] for x in stats])),
                             runs=sum(x["runs"] for x in stats), rounds=len(stats),
                             round_p50_ms=[x["p50_ms"] for x in stats]))
        got = {(x["engine"], x["kernel"]): x for x in rows if x["tokens"] == n}

        def ms(key):
            return f"{got[key]['p50_ms']:.2f}" if key in got else "-"
        log(f"[{name}] T={threads} {n:>3} tokens p50 ms: torch {ms(('torch_fp32', None))}, "
            f"ORT {ms(('ort_fp32', None))}/{ms(('ort_int8', None))}, "
            f"triage {ms(('triage_fp32', None))}/{ms(('triage_int8', best_kernel))}")

    log(f"[{name}] T={threads} latency in {time.time() - t_phase:.0f} s")
    # Other INT8 kernels: one call for all lengths, a small run budget.
    aux_lengths = [n for n in lengths if n <= args.aux_max_length]
    if aux_kernels and aux_lengths:
        t0 = time.time()
        try:
            r = run_triage(["bench", "--model", info["fp32_dir"], "--threads", threads, "--json",
                            "--parts", "latency", "--engines", "int8", "--kernels", ",".join(aux_kernels),
                            "--lengths", ",".join(map(str, aux_lengths)),
                            "--min-time", 0, "--min-runs", args.aux_min_runs], timeout=args.triage_timeout)
            for x in r.get("latency", []):
                rows.append(dict(engine="triage_int8", kernel=x.get("kernel"), tokens=x["tokens"],
                                 p50_ms=x["p50_ms"], p95_ms=x["p95_ms"], runs=x["runs"]))
            log(f"[{name}] T={threads} other INT8 kernels {','.join(aux_kernels)} in {time.time() - t0:.0f} s")
        except TriageError as e:
            errors.append(f"{name}, {threads} thread(s), other INT8 kernels: {e}")
            log(f"[{name}] triage bench failed (other kernels): {e}")
        settle()

    t_phase = time.time()
    throughput = []
    if not args.skip_throughput and BATCH_TOKENS <= info["max_positions"]:
        one = bench_ids(tokenizer, BATCH_TOKENS)
        ids = np.array([one] * BATCH, dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        runs = args.throughput_runs

        def add(engine, kernel, s):
            throughput.append(dict(engine=engine, kernel=kernel, batch=BATCH, tokens=BATCH_TOKENS,
                                   sequences_per_s=BATCH / (s["p50_ms"] / 1e3), p50_ms=s["p50_ms"], runs=s["runs"]))
        if torch_model is not None:
            t_ids, t_mask = torch.from_numpy(ids), torch.ones(ids.shape, dtype=torch.long)
            with torch.inference_mode():
                add("torch_fp32", None, measure(lambda: torch_model(input_ids=t_ids, attention_mask=t_mask),
                                                args.min_time, runs, warmup=1))
            settle()
        add("ort_fp32", None, measure(lambda: fp32.run(None, feed), args.min_time, runs, warmup=1))
        settle()
        add("ort_int8", None, measure(lambda: int8.run(None, feed), args.min_time, runs, warmup=1))
        settle()
        # triage bench runs max(3, min-runs / 4) batches after 3 warm-ups
        r = triage_bench(["--parts", "throughput", "--engines", "fp32,int8", "--kernels", best_kernel,
                          "--lengths", BATCH_TOKENS, "--min-runs", 4 * args.throughput_runs], "throughput")
        if r is not None:
            for x in r.get("throughput", []):
                throughput.append(dict(engine="triage_" + x["engine"], kernel=x.get("kernel"), batch=x["batch"],
                                       tokens=x["tokens"], sequences_per_s=x["sequences_per_s"],
                                       p50_ms=x["p50_ms"], runs=x["runs"]))
        log(f"[{name}] T={threads} throughput in {time.time() - t_phase:.0f} s (seq/s): " +
            ", ".join(f"{x['engine']}{'/' + x['kernel'] if x['kernel'] else ''} {x['sequences_per_s']:.1f}"
                      for x in throughput))
    del fp32, int8
    return {"threads": threads, "latency": rows, "throughput": throughput, "errors": errors,
            "load_average": [load_before, os.getloadavg()[0]]}


# ---------------------------------------------------------------------------------------
# Accuracy: FP32 vs INT8 on labelled queries

def load_queries(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                out.append((q["text"], q["label"]))
    return out


def agreement_stats(labels_a, labels_b, probs_a, probs_b, gold, label_set, oos="oos"):
    n = len(gold)
    agree = sum(a == b for a, b in zip(labels_a, labels_b))
    in_scope = [i for i, g in enumerate(gold) if g != oos and g in label_set]
    acc_a = sum(labels_a[i] == gold[i] for i in in_scope) / max(1, len(in_scope))
    acc_b = sum(labels_b[i] == gold[i] for i in in_scope) / max(1, len(in_scope))
    out = {"queries": n, "in_scope_queries": len(in_scope), "label_agreement": agree / n,
           "fp32_in_scope_accuracy": acc_a, "int8_in_scope_accuracy": acc_b}
    if probs_a is not None:
        out["max_abs_dprob"] = float(np.abs(probs_a - probs_b).max())
    return out


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def accuracy(info, tokenizer, data, threads, best_kernel, timeout):
    """Argmax (no out-of-scope rule) for ORT and triage, plus triage's calibrated numbers."""
    name = info["name"]
    queries = load_queries(data)
    texts = [t.replace("\n", " ") for t, _ in queries]
    gold = [g for _, g in queries]
    with open(os.path.join(info["fp32_dir"], "config.json")) as f:
        id2label = {int(k): v for k, v in json.load(f)["id2label"].items()}
    labels = [id2label[i] for i in range(len(id2label))]
    label_set = set(labels)
    result = {"data": data}

    logits = {}
    for engine, path in (("fp32", info["onnx_fp32"]), ("int8", info["onnx_int8"])):
        sess = ort_session(path, threads)
        out = np.zeros((len(texts), len(labels)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), 32):
            idx = order[start:start + 32]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                            max_length=info["max_positions"], return_tensors="np")
            out[idx] = sess.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                       "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
        logits[engine] = out
        del sess
    result["ort_argmax"] = agreement_stats(
        [labels[i] for i in logits["fp32"].argmax(1)], [labels[i] for i in logits["int8"].argmax(1)],
        softmax(logits["fp32"]), softmax(logits["int8"]), gold, label_set)

    try:
        raw = {}
        for engine, extra in (("fp32", []), ("int8", ["--int8"])):
            rc, out, err = run_process([TRIAGE, "classify", "--model", info["fp32_dir"], "--json", "--threads",
                                        str(threads)] + extra, timeout, stdin_text="\n".join(texts) + "\n")
            if rc != 0:
                raise TriageError(f"triage classify {engine}: exit status {rc}\n{err[-2000:]}")
            rows = [json.loads(line) for line in out.splitlines() if line.strip()]
            if len(rows) != len(texts):
                raise TriageError(f"triage classify {engine}: {len(rows)} results for {len(texts)} texts")
            raw[engine] = np.array([r["logits"] for r in rows], dtype=np.float32)
        result["triage_argmax"] = agreement_stats(
            [labels[i] for i in raw["fp32"].argmax(1)], [labels[i] for i in raw["int8"].argmax(1)],
            softmax(raw["fp32"]), softmax(raw["int8"]), gold, label_set)
        result["triage_fp32_vs_ort_fp32_argmax_agreement"] = float(
            (raw["fp32"].argmax(1) == logits["fp32"].argmax(1)).mean())
    except (TriageError, ValueError, KeyError) as e:
        result["triage_argmax_error"] = str(e)
        log(f"[{name}] triage classify failed: {e}")
    try:
        r = run_triage(["bench", "--model", info["fp32_dir"], "--threads", threads, "--json", "--parts", "accuracy",
                        "--kernels", best_kernel, "--data", data], timeout=timeout)
        result["triage_calibrated"] = r["accuracy"]
    except (TriageError, KeyError) as e:
        result["triage_calibrated_error"] = str(e)
        log(f"[{name}] triage bench --parts accuracy failed: {e}")
    return result


# ---------------------------------------------------------------------------------------
# Output

def render(headers, rows, markdown, right=None):
    """A table as aligned plain text or as Markdown."""
    cells = [[str(c) for c in r] for r in rows]
    right = right if right is not None else [i > 0 for i in range(len(headers))]
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join("---:" if right[i] else ":---" for i in range(len(headers))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(out)
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(r):
        return "  ".join(c.rjust(widths[i]) if right[i] else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 100 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def fmt_mb(b):
    return f"{b / 1e6:.1f} MB"


def mark(ok):
    return "✓" if ok else "✗"


def latency_table(model, run, kernels, markdown, show_torch):
    best_kernel = kernels[0]
    by = {(x["engine"], x["kernel"], x["tokens"]): x for x in run["latency"]}
    aux = sorted({x["kernel"] for x in run["latency"] if x["engine"] == "triage_int8" and x["kernel"] != best_kernel},
                 key=lambda k: kernels.index(k) if k in kernels else len(kernels))
    base = model["dim"] == 768
    headers = ["tokens"] + (["PyTorch FP32"] if show_torch else []) + \
        ["ORT FP32", "ORT INT8", "triage FP32", f"triage INT8 {best_kernel}"] + \
        [f"triage INT8 {k}" for k in aux] + \
        ["tFP32/ORT FP32", "tINT8/ORT INT8", "tFP32/tINT8"]
    rows = []
    for n in sorted({x["tokens"] for x in run["latency"]}):
        def p50(e, k=None):
            x = by.get((e, k, n))
            return x["p50_ms"] if x else None
        tf, ti, of, oi = p50("triage_fp32"), p50("triage_int8", best_kernel), p50("ort_fp32"), p50("ort_int8")
        in_range = TARGET_RANGE[0] <= n <= TARGET_RANGE[1]

        def ratio(a, b, ok=None):
            if a is None or b is None:
                return "-"
            r = a / b
            return f"{r:.2f}" + (f" {mark(ok(r))}" if ok else "")
        row = [str(n)] + ([fmt_ms(p50("torch_fp32"))] if show_torch else []) + \
            [fmt_ms(of), fmt_ms(oi), fmt_ms(tf), fmt_ms(ti)] + [fmt_ms(p50("triage_int8", k)) for k in aux] + \
            [ratio(tf, of, (lambda r: r <= 1.0) if in_range else None),
             ratio(ti, oi, (lambda r: r <= 1.0) if in_range else None),
             ratio(tf, ti, (lambda r: r >= INT8_SPEEDUP_TARGET) if (base and n == 128) else None)]
        rows.append(row)
    return render(headers, rows, markdown)


def throughput_table(model, run, markdown, show_torch):
    names = {"torch_fp32": "PyTorch FP32", "ort_fp32": "ORT FP32", "ort_int8": "ORT INT8",
             "triage_fp32": "triage FP32", "triage_int8": "triage INT8"}
    ort_by = {x["engine"]: x for x in run["throughput"]}
    rows = []
    for x in run["throughput"]:
        if x["engine"] == "torch_fp32" and not show_torch:
            continue
        vs = ""
        if x["engine"].startswith("triage_"):
            o = ort_by.get("ort_" + x["engine"].split("_")[1])
            vs = f"{x['sequences_per_s'] / o['sequences_per_s']:.2f}" if o else "-"
        label = names[x["engine"]] + (f" {x['kernel']}" if x["kernel"] else "")
        rows.append([label, f"{x['sequences_per_s']:.1f}", fmt_ms(x["p50_ms"]), str(x["runs"]), vs])
    return render(["engine", "sequences/s", "p50 ms", "runs", "triage/ORT (seq/s)"], rows, markdown)


def sizes_table(models, markdown):
    rows = []
    for m in models:
        s = m["sizes"]
        rows.append([m["name"], f"{fmt_mb(s['stored_bytes'])} ({'/'.join(d.replace('torch.', '') for d in m['stored_dtypes'])})",
                     fmt_mb(s["fp32_bytes"]), fmt_mb(s["onnx_fp32_bytes"]),
                     f"{fmt_mb(s['ort_int8_bytes'])} ({s['ort_int8_ratio'] * 100:.1f} %)",
                     f"{fmt_mb(s['triage_int8_bytes'])} ({s['triage_int8_ratio'] * 100:.1f} %) "
                     f"{mark(s['triage_int8_ratio'] <= INT8_SIZE_TARGET)}"])
    return render(["model", "as stored", "FP32 safetensors", "ONNX FP32", "ORT INT8 (÷ FP32)",
                   "triage INT8 (÷ FP32, ≤ 26 %)"], rows, markdown) + \
        "\n(triage INT8 is quantized from the model as stored; ORT INT8 from the FP32 ONNX export.)"


def accuracy_table(acc, markdown):
    rows = []

    def add(label, a):
        drop = (a["fp32_in_scope_accuracy"] - a["int8_in_scope_accuracy"]) * 100
        rows.append([label, str(a["queries"]), f"{a['label_agreement'] * 100:.2f} %",
                     f"{a['fp32_in_scope_accuracy'] * 100:.2f} %", f"{a['int8_in_scope_accuracy'] * 100:.2f} %",
                     f"{drop:+.2f}", f"{a['max_abs_dprob']:.4f}" if "max_abs_dprob" in a else "-"])
    if "ort_argmax" in acc:
        add("ORT FP32 vs ORT INT8 (argmax, no OOS rule)", acc["ort_argmax"])
    if "triage_argmax" in acc:
        add("triage FP32 vs INT8 (argmax, no OOS rule)", acc["triage_argmax"])
    if "triage_calibrated" in acc:
        add("triage FP32 vs INT8 (calibrated, with OOS rule; bench --parts accuracy)", acc["triage_calibrated"])
    return render(["comparison", "queries", "label agreement", "FP32 in-scope acc", "INT8 in-scope acc",
                   "drop (points)", "max |Δprob|"], rows, markdown, right=[False] + [True] * 6)


def evaluate_targets(models, best_kernel):
    targets = []
    fp32_pts, int8_pts = [], []
    for m in models:
        for run in m["runs"]:
            by = {(x["engine"], x["kernel"], x["tokens"]): x["p50_ms"] for x in run["latency"]}
            for n in sorted({x["tokens"] for x in run["latency"]}):
                if not TARGET_RANGE[0] <= n <= TARGET_RANGE[1]:
                    continue
                where = f"{m['name']} T={run['threads']} L={n}"
                for pts, t, o in ((fp32_pts, ("triage_fp32", None), ("ort_fp32", None)),
                                  (int8_pts, ("triage_int8", best_kernel), ("ort_int8", None))):
                    if (t + (n,)) in by and (o + (n,)) in by:
                        pts.append((where, by[t + (n,)] / by[o + (n,)]))
                    else:
                        pts.append((where, None))
    for label, pts in ((f"triage FP32 p50 ≤ ORT FP32 p50, lengths {TARGET_RANGE[0]}–{TARGET_RANGE[1]}", fp32_pts),
                       (f"triage INT8 ({best_kernel}) p50 ≤ ORT INT8 p50, lengths {TARGET_RANGE[0]}–{TARGET_RANGE[1]}",
                        int8_pts)):
        ok = [p for p in pts if p[1] is not None and p[1] <= 1.0]
        missed = [p for p in pts if p[1] is None or p[1] > 1.0]
        detail = f"{len(ok)}/{len(pts)} points"
        if missed:
            detail += "; missed: " + ", ".join(f"{w} ({r:.2f}×)" if r is not None else f"{w} (no data)"
                                               for w, r in missed)
        targets.append({"target": label, "met": bool(pts) and not missed, "detail": detail,
                        "points": [{"where": w, "ratio": r} for w, r in pts]})
    speed = []
    for m in models:
        if m["dim"] != 768:
            continue
        for run in m["runs"]:
            by = {(x["engine"], x["kernel"], x["tokens"]): x["p50_ms"] for x in run["latency"]}
            f, i = by.get(("triage_fp32", None, 128)), by.get(("triage_int8", best_kernel, 128))
            speed.append((f"{m['name']} T={run['threads']}", f / i if f and i else None))
    if speed:
        targets.append({"target": f"triage INT8 ≥ {INT8_SPEEDUP_TARGET}× faster than triage FP32 at 128 tokens, base-sized model",
                        "met": all(r is not None and r >= INT8_SPEEDUP_TARGET for _, r in speed),
                        "detail": ", ".join(f"{w}: {r:.2f}×" if r else f"{w}: no data" for w, r in speed)})
    sizes = [(m["name"], m["sizes"]["triage_int8_ratio"]) for m in models]
    targets.append({"target": "triage INT8 file ≤ 26 % of the FP32 file",
                    "met": all(r <= INT8_SIZE_TARGET for _, r in sizes),
                    "detail": ", ".join(f"{n}: {r * 100:.1f} %" for n, r in sizes)})
    for m in models:
        acc = m.get("accuracy") or {}
        a = acc.get("triage_calibrated")
        if not a:
            continue
        drop = (a["fp32_in_scope_accuracy"] - a["int8_in_scope_accuracy"]) * 100
        targets.append({"target": f"triage INT8 vs FP32 label agreement ≥ 99 % ({m['name']}, calibrated OOS rule)",
                        "met": a["label_agreement"] >= AGREEMENT_TARGET,
                        "detail": f"{a['label_agreement'] * 100:.2f} % of {a['queries']} queries"})
        targets.append({"target": f"triage INT8 in-scope accuracy drop ≤ 0.5 points ({m['name']}, calibrated OOS rule)",
                        "met": drop <= ACCURACY_DROP_TARGET,
                        "detail": f"FP32 {a['fp32_in_scope_accuracy'] * 100:.2f} %, INT8 "
                                  f"{a['int8_in_scope_accuracy'] * 100:.2f} %, drop {drop:+.2f} points"})
    return targets


def machine_info(threads):
    cpu, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu is None:
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    cpu = cpu or platform.processor() or "?"
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
           if f in flags]
    git = None
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        git = head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": cpu, "isa_flags": isa, "logical_cpus": os.cpu_count(), "threads_measured": threads,
        "load_average_start": list(os.getloadavg()),
        "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": ort.__version__,
        "onnx": onnx.__version__, "transformers": transformers.__version__, "numpy": np.__version__,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "triage": TRIAGE, "triage_mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(TRIAGE))),
        "git": git,
    }


# ---------------------------------------------------------------------------------------

def main():
    global TRIAGE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None,
                    help="comma-separated model directories (default: weights/banking77 and --base-dir)")
    ap.add_argument("--base-dir", default="/tmp/triage-distilbert-base",
                    help="the DistilBERT-base-sized random model; written with make_random_model.py if missing")
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--lengths", default="8,16,32,64,128,256", help="sequence lengths, batch 1")
    ap.add_argument("--min-time", type=float, default=1.0, help="minimum seconds per point (default 1.0)")
    ap.add_argument("--min-runs", type=int, default=20, help="minimum runs per point (default 20)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat each length's interleaved block of engines this many times and report the "
                         "median of the per-round p50s (default 1; more is steadier on a noisy machine)")
    ap.add_argument("--skip-torch", action="store_true", help="leave PyTorch out")
    ap.add_argument("--skip-throughput", action="store_true", help="leave the batch 32 × 128 throughput out")
    ap.add_argument("--throughput-runs", type=int, default=3,
                    help="timed batch-32 runs per engine, after warm-up (default 3; each also lasts ≥ --min-time)")
    ap.add_argument("--aux-kernels", default="auto",
                    help="other triage INT8 kernels to show (comma-separated), 'auto' (every other kernel "
                         "this CPU runs) or 'none'")
    ap.add_argument("--aux-min-runs", type=int, default=3, help="runs per point for the other kernels (default 3)")
    ap.add_argument("--aux-max-length", type=int, default=128,
                    help="longest length measured for the other kernels (default 128; the portable kernel is slow)")
    ap.add_argument("--data", default="/work/shared/data/banking77-oos/valid.jsonl",
                    help="labelled JSONL for FP32-vs-INT8 agreement on models whose labels it uses ('' to skip)")
    ap.add_argument("--work-dir", default="/tmp/triage-compare", help="where copies, ONNX files and INT8 models go")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the work-dir files of an earlier run (same source model and triage binary)")
    ap.add_argument("--triage", default=os.path.join(REPO, ".build", "release", "triage"), help="triage binary")
    ap.add_argument("--triage-timeout", type=float, default=900, help="seconds before a triage call is killed")
    ap.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = ap.parse_args()

    TRIAGE = os.path.abspath(args.triage)
    if not os.access(TRIAGE, os.X_OK):
        ap.error(f"no triage binary at {TRIAGE}: run `make build` first (or pass --triage)")
    threads_list = [int(t) for t in args.threads.split(",") if t.strip()]
    lengths = [int(n) for n in args.lengths.split(",") if n.strip()]
    if not threads_list or min(threads_list) < 1 or not lengths or min(lengths) < 2:
        ap.error("--threads needs integers ≥ 1 and --lengths integers ≥ 2")
    if args.rounds < 1 or args.min_runs < 1 or args.throughput_runs < 1 or args.aux_min_runs < 1:
        ap.error("--rounds, --min-runs, --throughput-runs and --aux-min-runs need to be at least 1")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_interop_threads(1)
    t_start = time.time()

    # Models
    if args.models:
        model_dirs = [os.path.abspath(d) for d in args.models.split(",") if d.strip()]
    else:
        model_dirs = []
        shipped = os.path.join(REPO, "weights", "banking77")
        if os.path.isfile(os.path.join(shipped, "model.safetensors")):
            model_dirs.append(shipped)
        else:
            log(f"note: {shipped} has no model.safetensors yet; skipping it (pass --models to choose)")
        model_dirs.append(os.path.abspath(args.base_dir))
    base_dir = os.path.abspath(args.base_dir)
    for d in model_dirs:
        if d == base_dir and not os.path.isfile(os.path.join(d, "model.safetensors")):
            log(f"writing the base-sized random model to {d}")
            subprocess.run([sys.executable, os.path.join(REPO, "tools", "make_random_model.py"), "--out", d],
                           check=True, stdout=sys.stderr)
        if not os.path.isfile(os.path.join(d, "model.safetensors")):
            ap.error(f"{d}: no model.safetensors")

    machine = machine_info(threads_list)
    log(f"machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, load {machine['load_average_start']}, "
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, triage {TRIAGE} ({machine['triage_mtime']})")

    # triage's kernel list: the first is the best for this CPU.
    try:
        probe = run_triage(["bench", "--model", model_dirs[0], "--json", "--parts", "latency", "--engines", "fp32",
                            "--lengths", "2", "--min-time", "0", "--min-runs", "1", "--threads", "1"], timeout=300)
        kernels = probe["machine"]["int8_kernels"]
    except (TriageError, KeyError, TypeError) as e:
        raise SystemExit(f"triage bench does not work: {e}")
    best_kernel = kernels[0]
    machine["triage_isa"] = probe["machine"].get("isa")
    machine["triage_blas"] = probe["machine"].get("blas")
    machine["triage_int8_kernels"] = kernels
    if args.aux_kernels == "auto":
        aux_kernels = kernels[1:]
    elif args.aux_kernels in ("none", ""):
        aux_kernels = []
    else:
        aux_kernels = [k for k in args.aux_kernels.split(",") if k and k != best_kernel]

    os.makedirs(args.work_dir, exist_ok=True)
    models = []
    names = set()
    for d in model_dirs:
        name = os.path.basename(d.rstrip("/")) or "model"
        while name in names:
            name += "_"
        names.add(name)
        info = prepare_model(d, args.work_dir, name, args.reuse)
        tokenizer = AutoTokenizer.from_pretrained(info["fp32_dir"])
        assert len(tokenizer) == VOCAB_SIZE and tokenizer.vocab_size == VOCAB_SIZE, (len(tokenizer), tokenizer.vocab_size)
        torch_model = AutoModelForSequenceClassification.from_pretrained(info["fp32_dir"], dtype=torch.float32).eval()
        assert not torch_model.training and next(torch_model.parameters()).dtype == torch.float32
        info["torch_attention"] = torch_model.config._attn_implementation
        torch.set_num_threads(max(threads_list))
        info["parity"] = check_parity(info, tokenizer, torch_model, [n for n in lengths if n <= info["max_positions"]])
        info["runs"] = []
        for t in threads_list:
            log(f"[{name}] measuring with {t} thread(s)")
            info["runs"].append(bench_model_threads(info, tokenizer, None if args.skip_torch else torch_model, t,
                                                    lengths, args, best_kernel, aux_kernels))
        if args.data and os.path.isfile(args.data):
            data_labels = {g for _, g in load_queries(args.data)}
            with open(os.path.join(info["fp32_dir"], "config.json")) as f:
                model_labels = set(json.load(f)["id2label"].values())
            if len(model_labels & data_labels) >= 0.5 * len(model_labels):
                log(f"[{name}] accuracy on {args.data}")
                t0 = time.time()
                info["accuracy"] = accuracy(info, tokenizer, args.data, max(threads_list), best_kernel,
                                            args.triage_timeout)
                log(f"[{name}] accuracy in {time.time() - t0:.0f} s")
            else:
                log(f"[{name}] labels not in {args.data}: no accuracy part (random model)")
        elif args.data:
            log(f"note: {args.data} not found; no accuracy part")
        del torch_model
        gc.collect()
        models.append(info)

    machine["load_average_end"] = list(os.getloadavg())
    elapsed = time.time() - t_start
    targets = evaluate_targets(models, best_kernel)

    # Print
    md = args.markdown
    out = []
    h = "### " if md else "== "
    out.append(f"{h}triage vs ONNX Runtime vs PyTorch")
    out.append("")
    out.append(f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
               f"({', '.join(machine['isa_flags'])}); triage INT8 kernels {', '.join(kernels)} "
               f"(compared: {best_kernel}); BLAS {machine['triage_blas']}.")
    out.append(f"Versions: torch {machine['torch']}, onnxruntime {machine['onnxruntime']}, onnx {machine['onnx']}, "
               f"transformers {machine['transformers']}, Python {machine['python']}; triage {machine['git'] or ''} "
               f"built {machine['triage_mtime']}.")
    out.append(f"Threads: {', '.join(map(str, threads_list))} (ORT intra-op T, inter-op 1; torch.set_num_threads(T); "
               f"triage --threads T). Load average at start {machine['load_average_start'][0]:.2f}, "
               f"at end {machine['load_average_end'][0]:.2f}. Run took {elapsed / 60:.1f} min.")
    out.append(f"Latency: batch 1, p50 in ms, {WARMUP} warm-ups (triage: 3), then ≥ {args.min_time} s and "
               f"≥ {args.min_runs} runs" + (f", {args.rounds} rounds (median of the round p50s)" if args.rounds > 1 else "")
               + f", engines interleaved per length; other triage INT8 kernels: {args.aux_min_runs} runs, ≤ {args.aux_max_length} "
               f"tokens. Throughput: 1 warm-up (triage: 3), {args.throughput_runs} timed batches. "
               f"Ratios < 1 mean triage is faster; ✓/✗ mark the targets (lengths "
               f"{TARGET_RANGE[0]}–{TARGET_RANGE[1]}; tFP32/tINT8 ≥ {INT8_SPEEDUP_TARGET} at 128 tokens on the "
               f"base-sized model).")
    for m in models:
        p = m["parity"]
        out.append("")
        out.append(f"{h}{m['name']}: dim {m['dim']}, {m['layers']} layers, {m['heads']} heads, hidden {m['hidden']} "
                   f"({m['source']})")
        par = [f"ORT FP32 vs PyTorch max |Δlogit| {p['ort_fp32_vs_torch_max_abs_dlogit']:.1e}",
               f"ORT INT8 vs PyTorch {p['ort_int8_vs_torch_max_abs_dlogit']:.3f}"]
        if "triage_fp32_vs_torch_max_abs_dlogit" in p:
            par += [f"triage FP32 vs PyTorch {p['triage_fp32_vs_torch_max_abs_dlogit']:.1e}",
                    f"triage INT8 vs PyTorch {p['triage_int8_vs_torch_max_abs_dlogit']:.3f}",
                    "triage bench ids = Python ids" if p.get("triage_seed_ids_match") else "triage ids DIFFER"]
        out.append("Parity: " + "; ".join(par) + f". PyTorch attention: {m['torch_attention']}.")
        for run in m["runs"]:
            out.append("")
            out.append(f"{m['name']}, {run['threads']} thread(s): p50 latency (ms), batch 1 "
                       f"(load average {run['load_average'][0]:.1f} → {run['load_average'][1]:.1f})")
            out.append("")
            out.append(latency_table(m, run, kernels, md, not args.skip_torch))
            if run["throughput"]:
                out.append("")
                out.append(f"{m['name']}, {run['threads']} thread(s): throughput, batch {BATCH} × {BATCH_TOKENS} tokens")
                out.append("")
                out.append(throughput_table(m, run, md, not args.skip_torch))
            for e in run["errors"]:
                out.append(f"ERROR: {e}")
        if m.get("accuracy"):
            acc = m["accuracy"]
            out.append("")
            out.append(f"{m['name']}: FP32 vs INT8 on {acc['data']}")
            out.append("")
            out.append(accuracy_table(acc, md))
            if "triage_fp32_vs_ort_fp32_argmax_agreement" in acc:
                out.append(f"(triage FP32 vs ORT FP32 argmax agreement: "
                           f"{acc['triage_fp32_vs_ort_fp32_argmax_agreement'] * 100:.2f} %)")
            for k in ("triage_argmax_error", "triage_calibrated_error"):
                if k in acc:
                    out.append(f"ERROR ({k}): {acc[k]}")
    out.append("")
    out.append(f"{h}Model files")
    out.append("")
    out.append(sizes_table(models, md))
    out.append("")
    out.append(f"{h}Targets")
    out.append("")
    out.append(render(["", "target", "result"],
                      [["met" if t["met"] else "MISSED", t["target"], t["detail"]] for t in targets],
                      md, right=[False, False, False]))
    print("\n".join(out), flush=True)

    if args.json:
        doc = {"machine": machine, "settings": {k: v for k, v in vars(args).items()},
               "seed_text": SEED_TEXT, "best_kernel": best_kernel, "elapsed_s": elapsed,
               "models": models, "targets": targets}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        log(f"wrote {args.json}")
    return 0


TRIAGE = None

if __name__ == "__main__":
    sys.exit(main())
