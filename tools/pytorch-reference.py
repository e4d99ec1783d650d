#!/usr/bin/python3
"""PyTorch reference for `npm run bench` (tools/bench.ts drives it; torch 1.13, Debian python3-torch).

    /usr/bin/python3 tools/pytorch-reference.py --model bench/work/bert-base.onnx --heads 12 \
        --batch-file bench/work/batch-base.json [--threads 2] [--rank 8] [--alpha 16] \
        [--targets query,value] [--jobs forward,peanut,lora]

The model is the bench's own export: the script reads its initializers with the `onnx` package and
builds the same BertForSequenceClassification in plain PyTorch (frozen weights copied into torch's
nn.Linear layout [out, in], the classifier head's Gemm weights as they are), the way transformers'
BertModel computes it: embeddings + LayerNorm, 12 × (self-attention with the additive padding mask,
output dense + residual + LayerNorm, exact-erf GELU MLP + residual + LayerNorm), pooler (token 0,
dense, tanh), classifier; loss = cross-entropy. No dropout (the export has none).

Jobs, each one call (the batch of --batch-file, labels from it):

  forward   frozen forward under torch.no_grad();
  peanut    one PEANuT step at depth 0 on the targets (PEFT semantics in torch layout:
            W = W0 + scaling · B · relu(A · W0), A [r, out], B [out, r]; scaling 1): forward with
            the adapted weights, cross-entropy, backward, AdamW on θ only (lr 1e-4, betas 0.9/0.999,
            eps 1e-8, weight decay 0.01), as `peanut-onnx train` steps;
  lora      one LoRA step (PEFT: y = x W0ᵀ + b + (alpha / r) · (x Aᵀ) Bᵀ, A [r, in], B [out, r]),
            same loss and optimizer.

θ is initialised as PEFT does (A Kaiming-uniform a = √5, B zeros), seeded.

Line protocol: after loading, one JSON line {"ready": true, ...} on stdout. Then one command a line
on stdin, one JSON line back for each:

  forward | peanut | lora   → {"job": ..., "ms": <wall time of the call>, "loss": ...}
  logits                    → {"logits": [[...], ...]} (frozen forward, for the bench's check)
  stats                     → {"peakRssMiB": ..., "rssMiB": ...}  (this process: VmHWM / VmRSS)
  quit                      → {"bye": true}, then exit

A job not named in --jobs is not built (its θ and optimizer never exist), so a process started with
one job measures that job's peak memory alone. Errors go to stderr as one line, exit status 1.
"""
import argparse
import gc
import json
import math
import os
import sys
import time


def fail(msg):
    sys.stderr.write(f"pytorch-reference: {msg}\n")
    sys.exit(1)


def mib_from_status(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def trim_heap():
    """Hands freed heap pages back to the OS (glibc), so loading leaves no garbage resident."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except Exception:
        pass


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch reference for tools/bench.ts")
    p.add_argument("--model", required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--batch-file", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--scaling", type=float, default=1.0)
    p.add_argument("--targets", default="query,value")
    p.add_argument("--jobs", default="forward,peanut,lora")
    p.add_argument("--eps", type=float, default=1e-12)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def load_weights(path, torch):
    """The export's parameters as torch tensors, keyed by module (`<module>.weight` in [out, in])."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    # Linear weights are `onnx::MatMul_<n>` [in, out] feeding `<scope>/MatMul`; name them by scope.
    matmul_module = {}
    for n in g.node:
        if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in inits and n.name.endswith("/MatMul"):
            matmul_module[n.input[1]] = n.name[1 : -len("/MatMul")].replace("/", ".") + ".weight"
    weights = {}
    for name in list(inits):
        t = inits.pop(name)
        if t.data_type != onnx.TensorProto.FLOAT:
            continue
        a = numpy_helper.to_array(t)
        if name in matmul_module:
            weights[matmul_module[name]] = torch.from_numpy(a.T.copy())
        else:
            weights[name] = torch.from_numpy(a.copy())
        del a
        t.ClearField("raw_data")
        t.ClearField("float_data")
    del inits, g, model
    gc.collect()
    trim_heap()
    return weights


def main(argv):
    args = parse_args(argv)
    t0 = time.perf_counter()
    try:
        import numpy as np
        import onnx
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        fail(f"needs torch, numpy and onnx ({e})")
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)

    jobs = [j for j in args.jobs.split(",") if j]
    for j in jobs:
        if j not in ("forward", "peanut", "lora"):
            fail(f"--jobs: unknown job '{j}'; valid: forward, peanut, lora")
    if not os.path.isfile(args.model):
        fail(f"{args.model}: no such file")
    W = load_weights(args.model, torch)
    load_ms = (time.perf_counter() - t0) * 1000
    for t in W.values():
        t.requires_grad_(False)

    with open(args.batch_file) as f:
        batch = json.load(f)
    ids = torch.tensor(batch["input_ids"], dtype=torch.long)
    B, T = ids.shape
    mask = torch.tensor(batch.get("attention_mask") or [[1] * T] * B, dtype=torch.long)
    types = torch.tensor(batch.get("token_type_ids") or [[0] * T] * B, dtype=torch.long)
    labels = torch.tensor(batch["labels"], dtype=torch.long)

    H = W["bert.embeddings.word_embeddings.weight"].shape[1]
    nh = args.heads
    if H % nh:
        fail(f"hidden size {H} is not a multiple of --heads {nh}")
    d = H // nh
    layers = 0
    while f"bert.encoder.layer.{layers}.attention.self.query.weight" in W:
        layers += 1
    target_names = [t for t in args.targets.split(",") if t]
    targets = [f"bert.encoder.layer.{i}.attention.self.{n}" for i in range(layers) for n in target_names]
    for m in targets:
        if f"{m}.weight" not in W:
            fail(f"target module '{m}' not in the model")

    def kaiming_uniform(shape):
        t = torch.empty(*shape)
        torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5))
        return t

    r = args.rank
    adapters = {}
    for method in ("peanut", "lora"):
        if method not in jobs:
            continue
        theta = {}
        for m in targets:
            out_f, in_f = W[f"{m}.weight"].shape
            if method == "peanut":
                a = kaiming_uniform((r, out_f))  # peanut_A: Linear(out -> r)
            else:
                a = kaiming_uniform((r, in_f))  # lora_A: Linear(in -> r)
            b = torch.zeros(out_f, r)
            theta[m] = (a.requires_grad_(True), b.requires_grad_(True))
        params = [p for pair in theta.values() for p in pair]
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        adapters[method] = (theta, opt)

    lora_scale = args.alpha / r
    ext = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
    pos = torch.arange(T)

    def forward(method):
        theta = adapters[method][0] if method else {}

        def linear(m, x):
            w, bias = W[f"{m}.weight"], W[f"{m}.bias"]
            if m in theta:
                a, b = theta[m]
                if method == "peanut":
                    return F.linear(x, w + args.scaling * (b @ torch.relu(a @ w)), bias)
                return F.linear(x, w, bias) + lora_scale * F.linear(F.linear(x, a), b)
            return F.linear(x, w, bias)

        def ln(m, x):
            return F.layer_norm(x, (H,), W[f"{m}.weight"], W[f"{m}.bias"], args.eps)

        x = W["bert.embeddings.word_embeddings.weight"][ids] + W["bert.embeddings.token_type_embeddings.weight"][types] + W["bert.embeddings.position_embeddings.weight"][pos]
        x = ln("bert.embeddings.LayerNorm", x)
        for i in range(layers):
            p = f"bert.encoder.layer.{i}"
            heads = lambda t: t.view(B, T, nh, d).transpose(1, 2)
            q, k, v = (heads(linear(f"{p}.attention.self.{n}", x)) for n in ("query", "key", "value"))
            scores = q @ k.transpose(-1, -2) / math.sqrt(d) + ext
            ctx = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, H)
            x = ln(f"{p}.attention.output.LayerNorm", linear(f"{p}.attention.output.dense", ctx) + x)
            x = ln(f"{p}.output.LayerNorm", linear(f"{p}.output.dense", F.gelu(linear(f"{p}.intermediate.dense", x))) + x)
        pooled = torch.tanh(linear("bert.pooler.dense", x[:, 0]))
        return linear("classifier", pooled)

    def run(job):
        s = time.perf_counter()
        if job == "forward":
            with torch.no_grad():
                logits = forward(None)
            loss = F.cross_entropy(logits, labels)
        else:
            opt = adapters[job][1]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(forward(job), labels)
            loss.backward()
            opt.step()
        ms = (time.perf_counter() - s) * 1000
        return {"job": job, "ms": round(ms, 3), "loss": float(loss.detach())}

    gc.collect()
    trim_heap()
    ready = {
        "ready": True,
        "jobs": jobs,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "interopThreads": torch.get_num_interop_threads(),
        "blas": next((l.strip() for l in torch.__config__.show().splitlines() if "BLAS_INFO" in l), "unknown"),
        "parallel": torch.__config__.parallel_info().splitlines()[0:3],
        "layers": layers,
        "hidden": H,
        "heads": nh,
        "batch": [B, T],
        "targets": len(targets),
        "trainableParams": {m: sum(p.numel() for pair in a[0].values() for p in pair) for m, a in adapters.items()},
        "loadMs": round(load_ms),
        "rssAfterLoadMiB": mib_from_status("VmRSS"),
    }
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if not cmd:
            continue
        if cmd in ("forward", "peanut", "lora"):
            if cmd != "forward" and cmd not in adapters:
                fail(f"job '{cmd}' was not built (--jobs {args.jobs})")
            reply = run(cmd)
        elif cmd == "logits":
            with torch.no_grad():
                reply = {"logits": forward(None).tolist()}
        elif cmd == "stats":
            reply = {"peakRssMiB": mib_from_status("VmHWM"), "rssMiB": mib_from_status("VmRSS")}
        elif cmd == "quit":
            print(json.dumps({"bye": True}), flush=True)
            return 0
        else:
            fail(f"unknown command '{cmd}'; valid: forward, peanut, lora, logits, stats, quit")
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
