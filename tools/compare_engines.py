#!/usr/bin/env python3
"""Compare triage with the CPU engines a user might pick, on the same DistilBERT model and inputs.

One run measures, side by side and interleaved per sequence length (so that a noisy
machine hits every engine alike):

  FP32
  * PyTorch (eager, `torch.inference_mode()`, `torch.set_num_threads(T)`, SDPA attention),
  * ONNX Runtime, "ORT" (the model exported with `torch.onnx.export`),
  * ONNX Runtime after its transformer optimizer, "ORT-opt"
    (`onnxruntime.transformers.optimizer.optimize_model(model_type="bert")` of that export;
    the fused operators it produced are printed),
  * OpenVINO (the ONNX export read by `openvino.convert_model`, saved as FP32 IR, compiled for
    CPU with INFERENCE_PRECISION_HINT=f32),
  * CTranslate2, "CT2" (`ctranslate2.converters.TransformersConverter`, which converts the
    DistilBertModel encoder; the classification head — pre_classifier, ReLU, classifier — is
    not part of a CT2 encoder, so it runs in NumPy on the [CLS] row, inside the timed call),
  * triage FP32 (`triage bench --json`, one subprocess per length): its default FP32 product
    (the AVX2 kernel where the CPU has AVX2), and through OpenBLAS as an extra column;
  INT8
  * ORT and ORT-opt with `onnxruntime.quantization.quantize_dynamic` (default settings:
    per-tensor QInt8 weights, dynamic activation scales),
  * OpenVINO "OV INT8-WC": `nncf.compress_weights` (INT8_ASYM weights) with the CPU plugin's
    dynamic activation quantization (DYNAMIC_QUANTIZATION_GROUP_SIZE=32, its default),
  * OpenVINO "OV INT8-static": `nncf.quantize` (ModelType.TRANSFORMER) calibrated on
    --calibration-size queries of --calibration (the training split; never the valid one),
  * CT2 INT8 (converted with quantization="int8", loaded with compute_type="int8"),
  * triage INT8 (the best INT8 kernel of this CPU; --aux-kernels adds the others).
  bf16 rows are measured only where the CPU has AVX-512 BF16 (not on an AVX2-only machine;
  the output says which).

Models: the shipped classifier (`weights/banking77`) and, with --with-base, a
DistilBERT-base-sized random model (dim 768, 6 layers), which the script writes with
`tools/make_random_model.py` when it is missing. For each model and thread count it prints
an FP32 and an INT8 latency table (rows: sequence lengths; columns: p50 of every engine, the
fastest peer and triage's ratio to it, marked against the target), throughput at batch
32 × 128, the parity of every engine with PyTorch, file sizes and the targets:

  * triage FP32 p50 <= the fastest FP32 peer's p50 at every length 16..256, 1 and 2 threads
  * triage INT8 p50 <= 0.7 x the fastest INT8 peer's p50 at the same points
  (plus one row per peer, so that a miss names the engine), and, as before,
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
(`time.perf_counter_ns`). Only the forward pass is timed (token ids in, logits out)
everywhere. Threads: ORT sessions use `intra_op_num_threads=T`, `inter_op_num_threads=1`,
`ORT_ENABLE_ALL`, `ORT_SEQUENTIAL`; OpenVINO INFERENCE_NUM_THREADS=T, NUM_STREAMS=1,
PERFORMANCE_HINT=LATENCY (other properties at their defaults); CT2 `intra_threads=T`,
`inter_threads=1`; triage `--threads T`. Engines take turns at each length, with a short
pause between them; --rounds N repeats that block N times (rotating the order) and reports
the median of the per-round p50s. Throughput: batch 32 × 128, 1 warm-up (triage: 3), then
--throughput-runs batches. The load average is printed with every table: on a shared
machine, read the numbers with it.

Parity, the same check for every engine: max |Δlogit| against PyTorch FP32 on the bench ids
of every length plus a padded batch of two rows (the run stops if ORT FP32 differs by more
than 2e-3; any other FP32 engine over 2e-3 is flagged), `triage tokenize` of SEED_TEXT vs
the Python ids, `triage classify` logits vs PyTorch on three texts, and, on --data (the
valid split), every engine's argmax label agreement with PyTorch FP32, its max |Δlogit|,
and its in-scope accuracy (models whose labels the data uses; in-scope = gold label is
not "oos" and is one of the model's labels); triage's own `bench --parts accuracy` adds
its FP32-vs-INT8 numbers with its calibrated out-of-scope rule (the target).

Files: everything is written under --work-dir (default /tmp/triage-compare), per model
`<name>/` (a copy of the model with FP32 safetensors: the "FP32 file"; triage runs on it),
`<name>-int8/` (`triage quantize` of the model as stored, i.e. what would ship),
`<name>-onnx/` (model.onnx, model.int8.onnx) and `<name>-peers/` (ORT-opt, OpenVINO IR,
CT2 models). --reuse skips rebuilding them when the source model, the triage binary and
the package versions are unchanged. An engine that cannot be prepared (package missing,
converter refusing the model) is left out with the reason printed in the output.

Setup (a venv of its own, because of the extra engines; tools/.venv-compare is gitignored):

    tools/setup_venv.sh --compare     # tools/requirements.txt + tools/requirements-compare.txt
    make build                        # or pass --triage /path/to/release/triage

Run:

    tools/.venv-compare/bin/python tools/compare_engines.py --markdown
    tools/.venv-compare/bin/python tools/compare_engines.py --threads 1 --lengths 16,128 --skip-throughput
    tools/.venv-compare/bin/python tools/compare_engines.py --with-base --json /tmp/compare.json

A default run (shipped model, 1 and 2 threads, six lengths, 2 rounds, throughput, valid-set
parity) took 25.7 minutes on this 2-core machine with the load average at 8-10 from other
work (less on an idle one), most of it in the interleaved latency blocks (twelve engines) and
the valid-set parity; --with-base roughly triples that. Progress goes to stderr, the
tables to stdout.
"""
import argparse
import contextlib
import gc
import json
import logging
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import warnings

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

# The extra engines come from tools/requirements-compare.txt; without them their rows are
# left out with the reason in the output.
try:
    import openvino as ov  # noqa: E402
except ImportError as e:
    ov, OV_MISSING = None, f"openvino not installed ({e}); run tools/setup_venv.sh --compare"
try:
    import nncf  # noqa: E402
    for handler in logging.getLogger("nncf").handlers:   # its logger writes to stdout
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
except ImportError as e:
    nncf, NNCF_MISSING = None, f"nncf not installed ({e}); run tools/setup_venv.sh --compare"
try:
    import ctranslate2  # noqa: E402
except ImportError as e:
    ctranslate2, CT2_MISSING = None, f"ctranslate2 not installed ({e}); run tools/setup_venv.sh --compare"

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED_TEXT = "I was charged twice for the same card payment yesterday, can you refund one of them?"
VOCAB_SIZE = 30522
WARMUP = 5
BATCH, BATCH_TOKENS = 32, 128
TARGET_RANGE = (16, 256)        # lengths the latency targets apply to
FP32_TARGET = 1.0               # triage FP32 p50 / fastest FP32 peer p50
INT8_TARGET = 0.7               # triage INT8 p50 / fastest INT8 peer p50
INT8_SPEEDUP_TARGET = 2.5       # triage FP32 / triage INT8 at 128 tokens, base-sized model
INT8_SIZE_TARGET = 0.26         # triage INT8 file / FP32 file
AGREEMENT_TARGET = 0.99
ACCURACY_DROP_TARGET = 0.5      # points
FP32_PARITY_LIMIT = 2e-3        # max |Δlogit| of an FP32 engine vs PyTorch
OV_DYNAMIC_QUANTIZATION_GROUP_SIZE = 32

# Every engine but triage: key, column label, precision. Order = column order.
PEERS = [
    ("torch_fp32", "PyTorch FP32", "fp32"),
    ("ort_fp32", "ORT FP32", "fp32"),
    ("ortopt_fp32", "ORT-opt FP32", "fp32"),
    ("ov_fp32", "OpenVINO FP32", "fp32"),
    ("ct2_fp32", "CT2 FP32", "fp32"),
    ("ort_int8", "ORT INT8", "int8"),
    ("ortopt_int8", "ORT-opt INT8", "int8"),
    ("ov_int8_wc", "OV INT8-WC", "int8"),
    ("ov_int8_static", "OV INT8-static", "int8"),
    ("ct2_int8", "CT2 INT8", "int8"),
]
PEER_LABEL = {k: label for k, label, _ in PEERS}
PEER_PRECISION = {k: p for k, _, p in PEERS}
ENGINE_LABEL = dict(PEER_LABEL, triage_fp32="triage FP32", triage_int8="triage INT8")


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
    """Let spinning worker threads (ORT, OpenMP, TBB) go to sleep before the next engine starts."""
    time.sleep(0.3)


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


# ---------------------------------------------------------------------------------------
# The other engines: ORT-opt, OpenVINO, CTranslate2

def package_versions():
    return {"torch": torch.__version__, "onnxruntime": ort.__version__, "onnx": onnx.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__,
            "openvino": ov.__version__ if ov else None, "nncf": nncf.__version__ if nncf else None,
            "ctranslate2": ctranslate2.__version__ if ctranslate2 else None}


def calibration_queries(path, size):
    """size texts spread evenly over the file (deterministic), for NNCF's static INT8."""
    texts = [t.replace("\n", " ") for t, _ in load_queries(path)]
    if not texts:
        raise ValueError(f"{path}: no queries")
    step = max(1, len(texts) // size)
    return texts[::step][:size]


def dir_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def prepare_peers(info, tokenizer, args, reuse):
    """Builds the files of ORT-opt, OpenVINO and CT2; an engine that fails gets a reason instead."""
    # NNCF logs and draws progress bars on stdout, which holds the tables: send them to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        return _prepare_peers(info, tokenizer, args, reuse)


def _prepare_peers(info, tokenizer, args, reuse):
    name = info["name"]
    peer_dir = os.path.join(args.work_dir, name + "-peers")
    paths = {
        "ortopt_fp32": os.path.join(peer_dir, "ortopt.onnx"),
        "ortopt_int8": os.path.join(peer_dir, "ortopt.int8.onnx"),
        "ov_fp32": os.path.join(peer_dir, "openvino-fp32.xml"),
        "ov_int8_wc": os.path.join(peer_dir, "openvino-int8-wc.xml"),
        "ov_int8_static": os.path.join(peer_dir, "openvino-int8-static.xml"),
        "ct2_fp32": os.path.join(peer_dir, "ct2-fp32"),
        "ct2_int8": os.path.join(peer_dir, "ct2-int8"),
    }
    stamp = {"onnx_fp32_mtime": os.path.getmtime(info["onnx_fp32"]), "versions": package_versions(),
             "calibration": [os.path.abspath(args.calibration), args.calibration_size]}
    marker = os.path.join(peer_dir, "done.json")
    if reuse and os.path.isfile(marker):
        with open(marker) as f:
            saved = json.load(f)
        if saved.get("stamp") == stamp:
            log(f"[{name}] reusing {peer_dir}")
            return saved["peers"]
    shutil.rmtree(peer_dir, ignore_errors=True)
    os.makedirs(peer_dir)
    peers = {"paths": paths, "unavailable": {}, "notes": {}, "prepare_s": {}}

    def step(keys, what, fn):
        t0 = time.time()
        try:
            fn()
            for k in keys:
                peers["prepare_s"][k] = time.time() - t0
            log(f"[{name}] {what} in {time.time() - t0:.1f} s")
        except Exception as e:  # noqa: BLE001 - any failure of a peer's tool becomes its reason
            reason = f"{what} failed: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            for k in keys:
                peers["unavailable"][k] = reason
            log(f"[{name}] {reason}")

    # ORT's transformer optimizer, then quantize_dynamic of the optimized graph.
    def ortopt():
        from onnxruntime.transformers.optimizer import optimize_model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("onnxruntime").setLevel(logging.ERROR)
            opt = optimize_model(info["onnx_fp32"], model_type="bert", num_heads=info["heads"],
                                 hidden_size=info["dim"])
        fused = {k: v for k, v in (opt.get_fused_operator_statistics() or {}).items() if v}
        opt.save_model_to_file(paths["ortopt_fp32"])
        peers["notes"]["ortopt_fused"] = fused
        onnx.checker.check_model(paths["ortopt_fp32"])

    def ortopt_int8():
        # ONNX shape inference knows no types for the com.microsoft fused operators' outputs;
        # the quantizer's error message names this option as the way out (they are all FP32).
        logging.getLogger().setLevel(logging.ERROR)
        ortq.quantize_dynamic(paths["ortopt_fp32"], paths["ortopt_int8"],
                              extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})

    step(["ortopt_fp32", "ortopt_int8"], "ORT transformer optimizer (model_type bert)", ortopt)
    if "ortopt_fp32" not in peers["unavailable"]:
        step(["ortopt_int8"], "quantize_dynamic of the optimized graph", ortopt_int8)

    # OpenVINO: FP32 IR from the ONNX export; NNCF weight compression; NNCF static INT8.
    if ov is None:
        for k in ("ov_fp32", "ov_int8_wc", "ov_int8_static"):
            peers["unavailable"][k] = OV_MISSING
    else:
        def ov_fp32():
            model = ov.convert_model(info["onnx_fp32"])
            ov.save_model(model, paths["ov_fp32"], compress_to_fp16=False)

        step(["ov_fp32", "ov_int8_wc", "ov_int8_static"], "OpenVINO convert_model of the ONNX export", ov_fp32)
        if "ov_fp32" not in peers["unavailable"]:
            if nncf is None:
                for k in ("ov_int8_wc", "ov_int8_static"):
                    peers["unavailable"][k] = NNCF_MISSING
            else:
                core = ov.Core()

                def ov_wc():
                    model = nncf.compress_weights(core.read_model(paths["ov_fp32"]),
                                                  mode=nncf.CompressWeightsMode.INT8_ASYM)
                    ov.save_model(model, paths["ov_int8_wc"], compress_to_fp16=False)

                def ov_static():
                    texts = calibration_queries(args.calibration, args.calibration_size)
                    items = []
                    for t in texts:
                        enc = tokenizer(t, truncation=True, max_length=info["max_positions"], return_tensors="np")
                        items.append({"input_ids": enc["input_ids"].astype(np.int64),
                                      "attention_mask": enc["attention_mask"].astype(np.int64)})
                    model = nncf.quantize(core.read_model(paths["ov_fp32"]), nncf.Dataset(items),
                                          model_type=nncf.ModelType.TRANSFORMER, subset_size=len(items))
                    ov.save_model(model, paths["ov_int8_static"], compress_to_fp16=False)
                    peers["notes"]["calibration_queries"] = len(items)

                step(["ov_int8_wc"], "NNCF compress_weights (INT8_ASYM)", ov_wc)
                step(["ov_int8_static"], f"NNCF quantize (static INT8, {args.calibration_size} calibration queries)",
                     ov_static)

    # CTranslate2: its converter takes the DistilBertModel encoder; the head stays in NumPy.
    if ctranslate2 is None:
        for k in ("ct2_fp32", "ct2_int8"):
            peers["unavailable"][k] = CT2_MISSING
    else:
        from ctranslate2.converters import TransformersConverter

        def ct2(quantization, key):
            def run():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    TransformersConverter(info["fp32_dir"]).convert(paths[key], quantization=quantization, force=True)
            return run

        step(["ct2_fp32"], "CTranslate2 TransformersConverter (float32)", ct2(None, "ct2_fp32"))
        step(["ct2_int8"], "CTranslate2 TransformersConverter (int8)", ct2("int8", "ct2_int8"))
        for key in ("ct2_fp32", "ct2_int8"):
            if key not in peers["unavailable"]:
                reason = ct2_head_problem(info)
                if reason:
                    peers["unavailable"][key] = reason
    peers["sizes"] = {}
    for key, path in paths.items():
        if key in peers["unavailable"]:
            continue
        if key.startswith("ov_"):
            peers["sizes"][key] = dir_bytes(path) + dir_bytes(path[:-4] + ".bin")
        elif key.startswith("ct2_"):
            peers["sizes"][key] = dir_bytes(os.path.join(path, "model.bin"))
        else:
            peers["sizes"][key] = dir_bytes(path)
    with open(marker, "w") as f:
        json.dump({"stamp": stamp, "peers": peers}, f)
    return peers


def ct2_head_problem(info):
    """A CT2 encoder stops at the last hidden state; the DistilBERT head is computed here."""
    with open(os.path.join(info["fp32_dir"], "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type") != "distilbert":
        return f"the CT2 classification head is written for DistilBERT, not {cfg.get('model_type')}"
    return None


def ct2_head(info):
    with safe_open(os.path.join(info["fp32_dir"], "model.safetensors"), framework="np") as f:
        w = {k: f.get_tensor(k).astype(np.float32) for k in
             ("pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias")}
    w1, b1 = np.ascontiguousarray(w["pre_classifier.weight"].T), w["pre_classifier.bias"]
    w2, b2 = np.ascontiguousarray(w["classifier.weight"].T), w["classifier.bias"]

    def head(cls):   # DistilBertForSequenceClassification: pre_classifier, ReLU, classifier
        return np.maximum(cls @ w1 + b1, 0.0) @ w2 + b2
    return head


def ov_config(key, threads):
    cfg = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
           "PERFORMANCE_HINT": "LATENCY"}
    if key == "ov_int8_wc":
        cfg["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = OV_DYNAMIC_QUANTIZATION_GROUP_SIZE
    return cfg


def make_runners(info, torch_model, threads, keys=None):
    """key -> bind(ids, mask) -> a call returning logits; errors: key -> reason."""
    runners, errors = {}, {}
    peers = info["peers"]
    paths = peers["paths"]
    core = ov.Core() if ov else None
    for key, _, _ in PEERS:
        if keys is not None and key not in keys:
            continue
        if key == "torch_fp32" and torch_model is None:
            continue
        if key in peers["unavailable"]:
            continue
        try:
            if key == "torch_fp32":
                def bind(ids, mask):
                    t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)

                    def call():
                        with torch.inference_mode():
                            return torch_model(input_ids=t_ids, attention_mask=t_mask).logits.numpy()
                    return call
            elif key in ("ort_fp32", "ort_int8", "ortopt_fp32", "ortopt_int8"):
                path = {"ort_fp32": info["onnx_fp32"], "ort_int8": info["onnx_int8"]}.get(key) or paths[key]
                sess = ort_session(path, threads)

                def bind(ids, mask, sess=sess):
                    feed = {"input_ids": ids, "attention_mask": mask}
                    return lambda: sess.run(None, feed)[0]
            elif key.startswith("ov_"):
                compiled = core.compile_model(paths[key], "CPU", ov_config(key, threads))
                request = compiled.create_infer_request()
                out0 = compiled.output(0)

                def bind(ids, mask, request=request, out0=out0):
                    feed = {"input_ids": ids, "attention_mask": mask}
                    return lambda: request.infer(feed)[out0]
            elif key.startswith("ct2_"):
                encoder = ctranslate2.Encoder(paths[key], device="cpu",
                                              compute_type="float32" if key == "ct2_fp32" else "int8",
                                              intra_threads=threads, inter_threads=1)
                head = ct2_head(info)

                def bind(ids, mask, encoder=encoder, head=head):
                    rows = [ids[i, :int(mask[i].sum())].tolist() for i in range(ids.shape[0])]

                    def call():
                        hidden = np.asarray(encoder.forward_batch(rows).last_hidden_state)
                        return head(hidden[:, 0, :])
                    return call
            else:
                raise AssertionError(key)
            runners[key] = bind
        except Exception as e:  # noqa: BLE001 - an engine that does not load becomes a reason
            errors[key] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            log(f"[{info['name']}] {PEER_LABEL[key]} does not load with {threads} thread(s): {errors[key]}")
    return runners, errors


def check_parity(info, tokenizer, torch_model, lengths):
    """Every engine vs PyTorch on the bench ids and a padded batch; triage tokenizer and logits."""
    name = info["name"]
    parity = {"peers": {}}
    runners, errors = make_runners(info, None, 2)
    parity["load_errors"] = errors
    feeds = []
    for n in lengths:
        ids = np.array([bench_ids(tokenizer, n)], dtype=np.int64)
        feeds.append((ids, np.ones_like(ids)))
    # plus a padded batch of two rows, to check the mask
    a = bench_ids(tokenizer, 40)
    b = bench_ids(tokenizer, 23) + [tokenizer.pad_token_id] * 17
    feeds.append((np.array([a, b], dtype=np.int64), np.array([[1] * 40, [1] * 23 + [0] * 17], dtype=np.int64)))
    worst = {k: 0.0 for k in runners}
    for ids, mask in feeds:
        with torch.inference_mode():
            ref = torch_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
        for key, bind in runners.items():
            got = np.asarray(bind(ids, mask)(), dtype=np.float64)
            worst[key] = max(worst[key], float(np.abs(got - ref).max()))
    parity["peers"] = worst
    log(f"[{name}] max |Δlogit| vs PyTorch FP32: " + ", ".join(f"{PEER_LABEL[k]} {v:.2e}" for k, v in worst.items()))
    if worst.get("ort_fp32", 0.0) > FP32_PARITY_LIMIT:
        raise SystemExit(f"[{name}] ONNX FP32 export disagrees with PyTorch (max |Δlogit| {worst['ort_fp32']:.3g}); "
                         "aborting")
    for key, v in worst.items():
        if PEER_PRECISION[key] == "fp32" and v > FP32_PARITY_LIMIT:
            log(f"[{name}] WARNING: {PEER_LABEL[key]} differs from PyTorch by {v:.3g} (> {FP32_PARITY_LIMIT})")
    del runners
    gc.collect()

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
            parity[f"triage_{engine}_vs_torch_max_abs_dlogit"] = float(np.abs(logits - ref).max())
            parity["triage_classify_tokens"] = [r.get("tokens") for r in rows]
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

def primary_fp32(rows):
    """triage bench runs FP32 once per kernel set with its own FP32 product (AVX2) and once
    through OpenBLAS. The first is what triage runs by default: it becomes the "triage FP32"
    row (kernel None); the OpenBLAS one stays as an extra column, kernel "openblas". Without a
    native product the OpenBLAS row is the default."""
    fp32 = [x for x in rows if x["engine"] == "fp32"]
    native = [x for x in fp32 if x.get("kernel") not in (None, "openblas")]
    for x in fp32:
        if x in native or not native:
            x["kernel"] = None
    return rows


def bench_model_threads(info, tokenizer, torch_model, threads, lengths, args, best_kernel, aux_kernels):
    name = info["name"]
    rows = []   # {"engine", "kernel", "tokens", "p50_ms", "p95_ms", "runs"}
    errors = []
    if torch_model is not None:
        torch.set_num_threads(threads)
    runners, load_errors = make_runners(info, torch_model, threads)
    for key, reason in load_errors.items():
        errors.append(f"{name}, {threads} thread(s), {PEER_LABEL[key]} did not load: {reason}")
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
        mask = np.ones_like(ids)

        def peer_step(bind):
            call = bind(ids, mask)
            return lambda: measure(call, args.min_time, args.min_runs)

        def run_triage_point():
            r = triage_bench(["--parts", "latency", "--engines", "fp32,int8", "--kernels", best_kernel,
                              "--lengths", n], f"latency at {n} tokens")
            if r is None:
                return {}
            return {("triage_" + x["engine"], x.get("kernel")): x for x in primary_fp32(r.get("latency", []))}

        steps = [(key, peer_step(bind)) for key, bind in runners.items()] + [("triage", run_triage_point)]
        per_round = {}   # (engine, kernel) -> [stats per round]
        for rnd in range(args.rounds):
            # rotate the order from round to round so no engine always follows the same one
            shift = rnd * max(1, len(steps) // args.rounds) % len(steps)
            for label, step in steps[shift:] + steps[:shift]:
                got = step()
                if label == "triage":
                    for key, x in got.items():
                        per_round.setdefault(key, []).append(x)
                else:
                    per_round.setdefault((label, None), []).append(got)
                settle()
        for (engine, kernel), stats in per_round.items():
            # one round: its p50/p95; several: the median of the per-round p50s (and p95s)
            rows.append(dict(engine=engine, kernel=kernel, tokens=n,
                             p50_ms=float(np.median([x["p50_ms"] for x in stats])),
                             p95_ms=float(np.median([x["p95_ms"] for x in stats])),
                             runs=sum(x["runs"] for x in stats), rounds=len(stats),
                             round_p50_ms=[x["p50_ms"] for x in stats]))
        got = {(x["engine"], x["kernel"]): x for x in rows if x["tokens"] == n}
        log(f"[{name}] T={threads} {n:>3} tokens p50 ms: " + ", ".join(
            f"{ENGINE_LABEL[e]}{' ' + k if k else ''} {x['p50_ms']:.2f}" for (e, k), x in got.items()))

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
        mask = np.ones_like(ids)
        for key, bind in runners.items():
            s = measure(bind(ids, mask), args.min_time, args.throughput_runs, warmup=1)
            throughput.append(dict(engine=key, kernel=None, batch=BATCH, tokens=BATCH_TOKENS,
                                   sequences_per_s=BATCH / (s["p50_ms"] / 1e3), p50_ms=s["p50_ms"], runs=s["runs"]))
            settle()
        # triage bench runs max(3, min-runs / 4) batches after 3 warm-ups
        r = triage_bench(["--parts", "throughput", "--engines", "fp32,int8", "--kernels", best_kernel,
                          "--lengths", BATCH_TOKENS, "--min-runs", 4 * args.throughput_runs], "throughput")
        if r is not None:
            for x in primary_fp32(r.get("throughput", [])):
                throughput.append(dict(engine="triage_" + x["engine"], kernel=x.get("kernel"), batch=x["batch"],
                                       tokens=x["tokens"], sequences_per_s=x["sequences_per_s"],
                                       p50_ms=x["p50_ms"], runs=x["runs"]))
        log(f"[{name}] T={threads} throughput in {time.time() - t_phase:.0f} s (seq/s): " +
            ", ".join(f"{ENGINE_LABEL[x['engine']]}{' ' + x['kernel'] if x['kernel'] else ''} "
                      f"{x['sequences_per_s']:.1f}" for x in throughput))
    del runners
    gc.collect()
    return {"threads": threads, "latency": rows, "throughput": throughput, "errors": errors,
            "load_average": [load_before, os.getloadavg()[0]]}


# ---------------------------------------------------------------------------------------
# Parity on labelled queries: every engine vs PyTorch FP32

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


def valid_parity(info, tokenizer, torch_model, data, threads, best_kernel, timeout):
    """Every engine's logits on the labelled queries against PyTorch FP32 (argmax, no out-of-scope
    rule), plus triage's own calibrated FP32-vs-INT8 numbers."""
    name = info["name"]
    queries = load_queries(data)
    texts = [t.replace("\n", " ") for t, _ in queries]
    gold = [g for _, g in queries]
    with open(os.path.join(info["fp32_dir"], "config.json")) as f:
        id2label = {int(k): v for k, v in json.load(f)["id2label"].items()}
    labels = [id2label[i] for i in range(len(id2label))]
    label_set = set(labels)
    labelled = len(label_set & set(gold)) >= 0.5 * len(label_set)
    in_scope = [i for i, g in enumerate(gold) if g != "oos" and g in label_set]
    result = {"data": data, "queries": len(texts), "in_scope_queries": len(in_scope) if labelled else None,
              "engines": {}, "errors": {}}

    # batches of 32 of similar length, padded (the same batches for every Python engine)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = []
    for start in range(0, len(order), 32):
        idx = order[start:start + 32]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                        max_length=info["max_positions"], return_tensors="np")
        batches.append((idx, enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)))
    torch.set_num_threads(threads)
    runners, errors = make_runners(info, torch_model, threads)
    result["errors"].update({k: f"did not load: {v}" for k, v in errors.items()})
    logits = {}
    for key, bind in runners.items():
        t0 = time.time()
        out = np.zeros((len(texts), len(labels)), dtype=np.float64)
        try:
            for idx, ids, mask in batches:
                out[idx] = np.asarray(bind(ids, mask)(), dtype=np.float64)
            logits[key] = out
        except Exception as e:  # noqa: BLE001
            result["errors"][key] = f"{type(e).__name__}: {e}"
        log(f"[{name}] valid set: {PEER_LABEL[key]} in {time.time() - t0:.1f} s")
    del runners
    gc.collect()
    try:
        for engine, extra in (("fp32", []), ("int8", ["--int8"])):
            rc, out, err = run_process([TRIAGE, "classify", "--model", info["fp32_dir"], "--json", "--threads",
                                        str(threads)] + extra, timeout, stdin_text="\n".join(texts) + "\n")
            if rc != 0:
                raise TriageError(f"triage classify {engine}: exit status {rc}\n{err[-2000:]}")
            rows = [json.loads(line) for line in out.splitlines() if line.strip()]
            if len(rows) != len(texts):
                raise TriageError(f"triage classify {engine}: {len(rows)} results for {len(texts)} texts")
            logits["triage_" + engine] = np.array([r["logits"] for r in rows], dtype=np.float64)
    except (TriageError, ValueError, KeyError) as e:
        result["errors"]["triage"] = str(e)
        log(f"[{name}] triage classify failed: {e}")

    ref = logits.get("torch_fp32")
    if ref is None:
        result["errors"]["torch_fp32"] = "no PyTorch logits: nothing to compare with"
    else:
        ref_arg = ref.argmax(1)
        for key, lg in logits.items():
            arg = lg.argmax(1)
            row = {"label_agreement_with_torch": float((arg == ref_arg).mean()),
                   "max_abs_dlogit": float(np.abs(lg - ref).max())}
            if labelled:
                row["in_scope_accuracy"] = float(np.mean([labels[arg[i]] == gold[i] for i in in_scope]))
            result["engines"][key] = row
    try:
        if labelled:
            r = run_triage(["bench", "--model", info["fp32_dir"], "--threads", threads, "--json", "--parts",
                            "accuracy", "--kernels", best_kernel, "--data", data], timeout=timeout)
            result["triage_calibrated"] = r["accuracy"]
    except (TriageError, KeyError) as e:
        result["errors"]["triage_calibrated"] = str(e)
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


def run_p50(run):
    return {(x["engine"], x["kernel"], x["tokens"]): x["p50_ms"] for x in run["latency"]}


def fastest_peer(by, precision, n):
    """(key, p50) of the fastest peer of that precision at n tokens, or (None, None)."""
    got = [(by[(k, None, n)], k) for k, _, p in PEERS if p == precision and (k, None, n) in by]
    if not got:
        return None, None
    p50, key = min(got)
    return key, p50


def latency_tables(model, run, kernels, markdown):
    """An FP32 table and an INT8 table: every engine's p50, the fastest peer, triage's ratio to it."""
    best_kernel = kernels[0]
    by = run_p50(run)
    lengths = sorted({x["tokens"] for x in run["latency"]})
    present = {x["engine"] for x in run["latency"]}
    aux = sorted({x["kernel"] for x in run["latency"] if x["engine"] == "triage_int8" and x["kernel"] != best_kernel},
                 key=lambda k: kernels.index(k) if k in kernels else len(kernels))
    # FP32 through OpenBLAS beside the CPU's own FP32 product (see primary_fp32)
    aux_fp32 = sorted({x["kernel"] for x in run["latency"] if x["engine"] == "triage_fp32" and x["kernel"]})
    base = model["dim"] == 768
    tables = []
    for precision, limit in (("fp32", FP32_TARGET), ("int8", INT8_TARGET)):
        peers = [k for k, _, p in PEERS if p == precision and k in present]
        triage_key = ("triage_" + precision, best_kernel if precision == "int8" else None)
        headers = ["tokens"] + [PEER_LABEL[k] for k in peers] + \
            [f"triage {precision.upper()}" + (f" {best_kernel}" if precision == "int8" else "")] + \
            ([f"triage INT8 {k}" for k in aux] if precision == "int8" else [f"triage FP32 {k}" for k in aux_fp32]) + \
            ["fastest peer", f"triage ÷ fastest (≤ {limit:g})"] + (["tFP32/tINT8"] if precision == "int8" else [])
        rows = []
        for n in lengths:
            t = by.get(triage_key + (n,))
            fk, fp = fastest_peer(by, precision, n)
            in_range = TARGET_RANGE[0] <= n <= TARGET_RANGE[1]
            ratio = "-"
            if t is not None and fp is not None:
                ratio = f"{t / fp:.2f}" + (f" {mark(t / fp <= limit)}" if in_range else "")
            row = [str(n)] + [fmt_ms(by.get((k, None, n))) for k in peers] + [fmt_ms(t)]
            if precision == "int8":
                row += [fmt_ms(by.get(("triage_int8", k, n))) for k in aux]
            else:
                row += [fmt_ms(by.get(("triage_fp32", k, n))) for k in aux_fp32]
            row += [f"{PEER_LABEL[fk]} {fmt_ms(fp)}" if fk else "-", ratio]
            if precision == "int8":
                tf = by.get(("triage_fp32", None, n))
                sp = "-"
                if tf is not None and t is not None:
                    sp = f"{tf / t:.2f}" + (f" {mark(tf / t >= INT8_SPEEDUP_TARGET)}" if base and n == 128 else "")
                row.append(sp)
            rows.append(row)
        right = [True] * len(headers)
        right[headers.index("fastest peer")] = False
        tables.append((precision, render(headers, rows, markdown, right=right)))
    return tables


def throughput_table(run, markdown):
    best = {}
    for x in run["throughput"]:
        if x["engine"] in PEER_PRECISION:
            p = PEER_PRECISION[x["engine"]]
            if p not in best or x["sequences_per_s"] > best[p]["sequences_per_s"]:
                best[p] = x
    rows = []
    for x in run["throughput"]:
        label = ENGINE_LABEL[x["engine"]] + (f" {x['kernel']}" if x["kernel"] else "")
        vs = ""
        if x["engine"].startswith("triage_"):
            b = best.get(x["engine"].split("_")[1])
            vs = f"{x['sequences_per_s'] / b['sequences_per_s']:.2f} (vs {ENGINE_LABEL[b['engine']]})" if b else "-"
        rows.append([label, f"{x['sequences_per_s']:.1f}", fmt_ms(x["p50_ms"]), str(x["runs"]), vs])
    return render(["engine", "sequences/s", "p50 ms", "runs", "triage ÷ fastest peer (seq/s)"], rows, markdown,
                  right=[False, True, True, True, True])


def parity_table(m, markdown):
    """Every engine: max |Δlogit| vs PyTorch on the bench ids, and on the valid set."""
    p = m["parity"]
    vp = m.get("valid_parity") or {}
    engines = vp.get("engines", {})
    labelled = vp.get("in_scope_queries") is not None
    rows = []
    keys = [k for k, _, _ in PEERS if k in p["peers"] or k in engines or k == "torch_fp32"] + ["triage_fp32", "triage_int8"]
    for key in keys:
        if key == "torch_fp32":
            bench_d = "(reference)"
        elif key.startswith("triage_"):
            v = p.get(f"{key}_vs_torch_max_abs_dlogit")
            bench_d = f"{v:.1e}" if v is not None else "-"
        else:
            v = p["peers"].get(key)
            bench_d = "-" if v is None else f"{v:.1e}" + (" ✗ > 2e-3" if PEER_PRECISION[key] == "fp32" and
                                                           v > FP32_PARITY_LIMIT else "")
        e = engines.get(key)
        row = [ENGINE_LABEL[key], bench_d]
        if not vp:
            pass
        elif e:
            row += [f"{e['label_agreement_with_torch'] * 100:.2f} %", f"{e['max_abs_dlogit']:.1e}"]
            if labelled:
                row.append(f"{e['in_scope_accuracy'] * 100:.2f} %")
        else:
            row += ["-", "-"] + (["-"] if labelled else [])
        rows.append(row)
    headers = ["engine", "bench ids: max |Δlogit|"]
    if vp:
        headers += [f"valid ({vp['queries']} queries): label agreement with PyTorch", "valid: max |Δlogit|"] + \
            ([f"in-scope accuracy ({vp['in_scope_queries']} queries, argmax)"] if labelled else [])
    return render(headers, rows, markdown, right=[False] + [True] * (len(headers) - 1))


def sizes_table(models, markdown):
    rows = []
    for m in models:
        s = m["sizes"]
        fp32 = s["fp32_bytes"]

        def add(label, b, extra=""):
            rows.append([m["name"], label, fmt_mb(b), f"{b / fp32 * 100:.1f} %" + extra])
        rows.append([m["name"], "as stored (" + "/".join(d.replace("torch.", "") for d in m["stored_dtypes"]) + ")",
                     fmt_mb(s["stored_bytes"]), f"{s['stored_bytes'] / fp32 * 100:.1f} %"])
        add("FP32 safetensors (triage FP32)", fp32)
        add("ONNX FP32 (ORT FP32)", s["onnx_fp32_bytes"])
        add("ONNX quantize_dynamic (ORT INT8)", s["ort_int8_bytes"])
        for key in ("ortopt_fp32", "ortopt_int8", "ov_fp32", "ov_int8_wc", "ov_int8_static", "ct2_fp32", "ct2_int8"):
            if key in m["peers"]["sizes"]:
                add(PEER_LABEL[key], m["peers"]["sizes"][key])
        add("triage INT8", s["triage_int8_bytes"],
            f" {mark(s['triage_int8_ratio'] <= INT8_SIZE_TARGET)} (≤ {INT8_SIZE_TARGET * 100:.0f} %)")
    return render(["model", "file", "size", "÷ FP32 safetensors"], rows, markdown,
                  right=[False, False, True, True]) + \
        "\n(triage INT8 is quantized from the model as stored; the others from the FP32 copy or its ONNX export. " \
        "OpenVINO: .xml + .bin; CT2: model.bin.)"


def evaluate_targets(models, best_kernel):
    targets = []
    for precision, limit in (("fp32", FP32_TARGET), ("int8", INT8_TARGET)):
        triage = ("triage_" + precision, best_kernel if precision == "int8" else None)
        name = f"triage {precision.upper()}" + (f" ({best_kernel})" if precision == "int8" else "")
        factor = "" if limit == 1.0 else f"{limit:g} × "
        fastest, per_peer = [], {}
        for m in models:
            for run in m["runs"]:
                by = run_p50(run)
                for n in sorted({x["tokens"] for x in run["latency"]}):
                    if not TARGET_RANGE[0] <= n <= TARGET_RANGE[1]:
                        continue
                    where = f"{m['name']} T={run['threads']} L={n}"
                    t = by.get(triage + (n,))
                    fk, fp = fastest_peer(by, precision, n)
                    fastest.append((where, t / fp if t is not None and fp else None,
                                    PEER_LABEL[fk] if fk else None))
                    for k, _, p in PEERS:
                        if p == precision and (k, None, n) in by:
                            per_peer.setdefault(k, []).append((where, t / by[(k, None, n)] if t is not None else None,
                                                               None))
        span = f"lengths {TARGET_RANGE[0]}–{TARGET_RANGE[1]}"
        for label, pts in [(f"{name} p50 ≤ {factor}the fastest {precision.upper()} peer's p50, {span}", fastest)] + \
                [(f"{name} p50 ≤ {factor}{PEER_LABEL[k]} p50, {span}", v) for k, v in per_peer.items()]:
            ok = [x for x in pts if x[1] is not None and x[1] <= limit]
            missed = [x for x in pts if x[1] is None or x[1] > limit]
            worst = max((x[1] for x in pts if x[1] is not None), default=None)
            detail = f"{len(ok)}/{len(pts)} points" + (f", worst ratio {worst:.2f}" if worst is not None else "")
            if missed:
                detail += "; missed: " + ", ".join(
                    (f"{w} ({r:.2f}" + (f" vs {who}" if who else "") + ")") if r is not None else f"{w} (no data)"
                    for w, r, who in missed)
            targets.append({"target": label, "met": bool(pts) and not missed, "detail": detail,
                            "points": [{"where": w, "ratio": r, "fastest": who} for w, r, who in pts]})
    speed = []
    for m in models:
        if m["dim"] != 768:
            continue
        for run in m["runs"]:
            by = run_p50(run)
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
        a = (m.get("valid_parity") or {}).get("triage_calibrated")
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


def git_describe(repo):
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (head + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


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
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16",
                       "amx_int8") if f in flags]
    # the checkout the triage binary was built in (its .build/ lives inside it)
    triage_repo = os.path.dirname(TRIAGE)
    while triage_repo != "/" and not os.path.exists(os.path.join(triage_repo, ".git")):
        triage_repo = os.path.dirname(triage_repo)
    info = {
        "cpu": cpu, "isa_flags": isa, "logical_cpus": os.cpu_count(), "threads_measured": threads,
        "bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
        "load_average_start": list(os.getloadavg()),
        "python": platform.python_version(), "torch_interop_threads": torch.get_num_interop_threads(),
        "triage": TRIAGE, "triage_mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(TRIAGE))),
        "triage_checkout": triage_repo if triage_repo != "/" else None,
        "triage_git": git_describe(triage_repo) if triage_repo != "/" else None,
        "script_git": git_describe(REPO),
    }
    info.update(package_versions())
    return info


# ---------------------------------------------------------------------------------------

def main():
    global TRIAGE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None,
                    help="comma-separated model directories (default: weights/banking77, plus --base-dir "
                         "with --with-base)")
    ap.add_argument("--with-base", action="store_true",
                    help="also measure the DistilBERT-base-sized random model (about triples the run time)")
    ap.add_argument("--base-dir", default="/tmp/triage-distilbert-base",
                    help="the DistilBERT-base-sized random model; written with make_random_model.py if missing")
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--lengths", default="8,16,32,64,128,256", help="sequence lengths, batch 1")
    ap.add_argument("--min-time", type=float, default=0.5, help="minimum seconds per point (default 0.5)")
    ap.add_argument("--min-runs", type=int, default=20, help="minimum runs per point (default 20)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="repeat each length's interleaved block of engines this many times and report the "
                         "median of the per-round p50s (default 2; more is steadier on a noisy machine)")
    ap.add_argument("--skip-torch", action="store_true", help="leave PyTorch out of the timings (parity keeps it)")
    ap.add_argument("--skip-throughput", action="store_true", help="leave the batch 32 × 128 throughput out")
    ap.add_argument("--throughput-runs", type=int, default=3,
                    help="timed batch-32 runs per engine, after warm-up (default 3; each also lasts ≥ --min-time)")
    ap.add_argument("--aux-kernels", default="none",
                    help="other triage INT8 kernels to show (comma-separated), 'auto' (every other kernel "
                         "this CPU runs) or 'none' (default)")
    ap.add_argument("--aux-min-runs", type=int, default=3, help="runs per point for the other kernels (default 3)")
    ap.add_argument("--aux-max-length", type=int, default=128,
                    help="longest length measured for the other kernels (default 128; the portable kernel is slow)")
    ap.add_argument("--data", default="/work/shared/data/banking77-oos/valid.jsonl",
                    help="labelled JSONL for the valid-set parity of every engine ('' to skip)")
    ap.add_argument("--calibration", default="/work/shared/data/banking77-oos/train.jsonl",
                    help="JSONL whose texts calibrate NNCF's static INT8 (the training split, never the valid one)")
    ap.add_argument("--calibration-size", type=int, default=300, help="calibration queries (default 300)")
    ap.add_argument("--work-dir", default="/tmp/triage-compare", help="where copies, ONNX files and INT8 models go")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the work-dir files of an earlier run (same source model, triage binary, packages)")
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
    if args.rounds < 1 or args.min_runs < 1 or args.throughput_runs < 1 or args.aux_min_runs < 1 \
            or args.calibration_size < 1:
        ap.error("--rounds, --min-runs, --throughput-runs, --aux-min-runs and --calibration-size need to be at least 1")
    if not os.path.isfile(args.calibration):
        ap.error(f"--calibration {args.calibration}: no such file")
    if args.data and os.path.abspath(args.data) == os.path.abspath(args.calibration):
        ap.error("--calibration must not be the --data file (calibrating on the evaluation split)")
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
    if args.with_base:
        model_dirs.append(os.path.abspath(args.base_dir))
    if not model_dirs:
        ap.error("no model to measure (pass --models or --with-base)")
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
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, openvino {machine['openvino']}, "
        f"ctranslate2 {machine['ctranslate2']}, triage {TRIAGE} ({machine['triage_git']}, {machine['triage_mtime']})")

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
        t0 = time.time()
        info["peers"] = prepare_peers(info, tokenizer, args, args.reuse)
        log(f"[{name}] other engines prepared in {time.time() - t0:.0f} s; unavailable: "
            f"{info['peers']['unavailable'] or 'none'}")
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
            log(f"[{name}] every engine on {args.data}")
            t0 = time.time()
            info["valid_parity"] = valid_parity(info, tokenizer, torch_model, args.data, max(threads_list),
                                                best_kernel, args.triage_timeout)
            log(f"[{name}] valid-set parity in {time.time() - t0:.0f} s")
        elif args.data:
            log(f"note: {args.data} not found; no valid-set parity")
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
    out.append(f"{h}triage vs PyTorch, ONNX Runtime, OpenVINO and CTranslate2")
    out.append("")
    out.append(f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
               f"({', '.join(machine['isa_flags'])}); triage ISA {machine['triage_isa']}, INT8 kernels "
               f"{', '.join(kernels)} (compared: {best_kernel}); BLAS {machine['triage_blas']}.")
    out.append(f"Versions: torch {machine['torch']}, onnxruntime {machine['onnxruntime']}, openvino "
               f"{machine['openvino']}, nncf {machine['nncf']}, ctranslate2 {machine['ctranslate2']}, onnx "
               f"{machine['onnx']}, transformers {machine['transformers']}, numpy {machine['numpy']}, Python "
               f"{machine['python']}; triage binary {TRIAGE} (checkout {machine['triage_checkout']} at "
               f"{machine['triage_git']}, built {machine['triage_mtime']}); script at {machine['script_git']}.")
    out.append(f"Threads: {', '.join(map(str, threads_list))} (ORT intra-op T, inter-op 1; OpenVINO "
               f"INFERENCE_NUM_THREADS=T, NUM_STREAMS=1, PERFORMANCE_HINT=LATENCY; CT2 intra_threads=T, "
               f"inter_threads=1; torch.set_num_threads(T); triage --threads T). Load average at start "
               f"{machine['load_average_start'][0]:.2f}, at end {machine['load_average_end'][0]:.2f}. "
               f"Run took {elapsed / 60:.1f} min.")
    out.append(f"Latency: batch 1, p50 in ms, {WARMUP} warm-ups (triage: 3), then ≥ {args.min_time} s and "
               f"≥ {args.min_runs} runs" + (f", {args.rounds} rounds (median of the round p50s)" if args.rounds > 1 else "")
               + ", engines interleaved per length" +
               (f"; other triage INT8 kernels: {args.aux_min_runs} runs, ≤ {args.aux_max_length} tokens"
                if aux_kernels else "") +
               f". Throughput: 1 warm-up (triage: 3), {args.throughput_runs} timed batches. "
               f"Ratios < 1 mean triage is faster; ✓/✗ mark the targets (lengths {TARGET_RANGE[0]}–{TARGET_RANGE[1]}: "
               f"triage FP32 ≤ {FP32_TARGET:g} × and triage INT8 ≤ {INT8_TARGET:g} × the fastest peer of the "
               f"same precision; tFP32/tINT8 ≥ {INT8_SPEEDUP_TARGET} at 128 tokens on the base-sized model).")
    out.append("Engines: ORT = the `torch.onnx.export` graph; ORT-opt = that graph after "
               "`onnxruntime.transformers.optimizer.optimize_model(model_type=\"bert\")`; ORT INT8 / ORT-opt INT8 = "
               "`quantize_dynamic` (defaults) of each; OpenVINO FP32 = the ONNX graph as FP32 IR, "
               "INFERENCE_PRECISION_HINT=f32; OV INT8-WC = `nncf.compress_weights` (INT8_ASYM) + the CPU plugin's "
               f"dynamic activation quantization (DYNAMIC_QUANTIZATION_GROUP_SIZE={OV_DYNAMIC_QUANTIZATION_GROUP_SIZE}); "
               f"OV INT8-static = `nncf.quantize` (ModelType.TRANSFORMER) calibrated on {args.calibration_size} queries "
               f"of {args.calibration}; CT2 = `TransformersConverter` (encoder; head in NumPy inside the timed call), "
               "compute_type float32 / int8.")
    if "ov_int8_wc" in PEER_LABEL and not ({"avx_vnni", "avx512_vnni"} & set(machine["isa_flags"])):
        out.append("OV INT8-WC on this CPU: OpenVINO's CPU plugin applies dynamic activation quantization only "
                   "where it has AVX-VNNI or AVX-512 VNNI (its FullyConnected executors check avx2_vnni / "
                   "avx512_core_vnni), which this CPU lacks; its fully connected layers therefore decompress "
                   "the int8 weights and multiply in FP32.")
    if machine["bf16"]:
        out.append("bf16: this CPU has BF16 instructions, but this script does not measure a bf16 row yet.")
    else:
        out.append("bf16: not measured — this CPU has no AVX-512 BF16 (nor AMX), so OpenVINO's bf16 "
                   "inference precision (and a triage BF16 path) cannot run here; every row is FP32 or INT8.")
    for m in models:
        p = m["parity"]
        out.append("")
        out.append(f"{h}{m['name']}: dim {m['dim']}, {m['layers']} layers, {m['heads']} heads, hidden {m['hidden']} "
                   f"({m['source']})")
        peers = m["peers"]
        notes = []
        if peers["notes"].get("ortopt_fused") is not None:
            fused = peers["notes"]["ortopt_fused"]
            notes.append("ORT transformer optimizer fused: " +
                         (", ".join(f"{k} {v}" for k, v in sorted(fused.items())) if fused else "nothing"))
        for key, reason in peers["unavailable"].items():
            notes.append(f"{PEER_LABEL[key]} not measured: {reason}")
        for key, reason in p.get("load_errors", {}).items():
            notes.append(f"{PEER_LABEL[key]} did not load: {reason}")
        if "triage_error" in p:
            notes.append(f"triage parity check failed: {p['triage_error']}")
        notes.append(("triage bench ids = Python ids" if p.get("triage_seed_ids_match") else
                      "triage bench ids DIFFER from the Python ids") + f"; PyTorch attention: {m['torch_attention']}")
        out.append(". ".join(n.rstrip(". ") for n in notes) + ".")
        for run in m["runs"]:
            for precision, table in latency_tables(m, run, kernels, md):
                out.append("")
                out.append(f"{m['name']}, {run['threads']} thread(s): {precision.upper()} p50 latency (ms), batch 1 "
                           f"(load average {run['load_average'][0]:.1f} → {run['load_average'][1]:.1f})")
                out.append("")
                out.append(table)
            if run["throughput"]:
                out.append("")
                out.append(f"{m['name']}, {run['threads']} thread(s): throughput, batch {BATCH} × {BATCH_TOKENS} tokens")
                out.append("")
                out.append(throughput_table(run, md))
            for e in run["errors"]:
                out.append(f"ERROR: {e}")
        vp = m.get("valid_parity")
        out.append("")
        out.append(f"{m['name']}: parity with PyTorch FP32 (bench ids of every length and a padded batch"
                   + (f"; argmax on {vp['data']}" if vp else "") + ")")
        out.append("")
        out.append(parity_table(m, md))
        if vp:
            for k, e in vp.get("errors", {}).items():
                out.append(f"ERROR (valid set, {ENGINE_LABEL.get(k, k)}): {e}")
            a = vp.get("triage_calibrated")
            if a:
                drop = (a["fp32_in_scope_accuracy"] - a["int8_in_scope_accuracy"]) * 100
                out.append(f"(triage's own `bench --parts accuracy`, calibrated out-of-scope rule: INT8 agrees with "
                           f"FP32 on {a['label_agreement'] * 100:.2f} % of {a['queries']} labels, in-scope accuracy "
                           f"{a['fp32_in_scope_accuracy'] * 100:.2f} % → {a['int8_in_scope_accuracy'] * 100:.2f} % "
                           f"({drop:+.2f} points), max |Δprob| {a.get('max_abs_dprob', float('nan')):.4f}.)")
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
            json.dump(doc, f, indent=1, default=str)
        log(f"wrote {args.json}")
    return 0


TRIAGE = None

if __name__ == "__main__":
    sys.exit(main())
