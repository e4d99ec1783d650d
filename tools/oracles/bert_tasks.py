#!/usr/bin/python3
"""PyTorch oracle for the token-cls, qa and masked-lm loss heads (run by tools/make-task-oracles.ts).

Usage: /usr/bin/python3 tools/oracles/bert_tasks.py <fixture dir>

Reads <dir>/model.onnx (a BERT from tools/lib/bert.ts, parameters named by module, linear weights
stored [in, out]), <dir>/tweaker.safetensors (PEANuT parameters under PEFT keys), <dir>/config.json
and <dir>/batch.jsonl; re-implements the model in PyTorch the way transformers' BertModel and the
BertFor{TokenClassification,QuestionAnswering,MaskedLM} heads compute it, with PEANuT applied to the
targets in the ONNX layout

    h = act(W0 @ A^T);  dW = scaling * (h @ B^T);  y = x @ (W0 + dW) + bias      (depth 0)

and writes <dir>/expected.safetensors (loss, the head outputs, every parameter's gradient as
`<key>.grad`) and <dir>/expected.json (loss, gradient norms, a float64 rerun as a noise estimate,
versions). Losses are transformers' own: CrossEntropyLoss (ignore_index -100) over every token for
token classification and masked LM; for QA the positions are clamped to [0, T] and T is ignored,
total = (start + end) / 2.
"""
import json
import math
import struct
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

torch.set_num_threads(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    out = {}
    dtypes = {"F32": np.float32, "I64": np.int64}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[8 + n + b : 8 + n + e], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k].astype(np.float32))
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def collate(rows):
    """Right padding to the longest example, as the project (and HF's collators) pad."""
    T = max(len(r["input_ids"]) for r in rows)
    B = len(rows)
    ids = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[b, :n] = torch.tensor(r["input_ids"])
        mask[b, :n] = 1
        if "token_type_ids" in r:
            types[b, :n] = torch.tensor(r["token_type_ids"])
        if isinstance(r.get("labels"), list):
            labels[b, :n] = torch.tensor(r["labels"])
    starts = torch.tensor([r.get("start_positions", 0) for r in rows], dtype=torch.long)
    ends = torch.tensor([r.get("end_positions", 0) for r in rows], dtype=torch.long)
    return ids, mask, types, labels, starts, ends


def run(dtype, weights, theta_np, cfg, batch):
    m = cfg["model"]
    H, nh, eps = m["hiddenSize"], m["numHeads"], m["layerNormEps"]
    d = H // nh
    W = {k: torch.tensor(v, dtype=dtype) for k, v in weights.items()}
    theta = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in theta_np.items()}
    pe = cfg["peanut"]
    targets = {t["module"]: t for t in pe["keys"]}
    act = {"relu": torch.relu, "gelu": torch.nn.functional.gelu}[pe["act"]]

    def weight(module):
        w0 = W[f"{module}.weight"]  # [in, out]
        if module not in targets:
            return w0
        a = theta[f"{module}.peanut_A.weight"]  # [r, out]
        b = theta[f"{module}.peanut_B.weight"]  # [out, r]
        h = act(w0 @ a.T)
        return w0 + pe["scaling"] * (h @ b.T)

    def linear(module, x):
        return x @ weight(module) + W[f"{module}.bias"]

    def layer_norm(module, x):
        return torch.nn.functional.layer_norm(x, (H,), W[f"{module}.weight"], W[f"{module}.bias"], eps)

    gelu = lambda x: torch.nn.functional.gelu(x)  # exact erf form, HF ACT2FN["gelu"]
    ids, mask, types, labels, starts, ends = batch
    B, T = ids.shape
    pos = torch.arange(T)
    x = W["bert.embeddings.word_embeddings.weight"][ids] + W["bert.embeddings.token_type_embeddings.weight"][types] + W["bert.embeddings.position_embeddings.weight"][pos]
    x = layer_norm("bert.embeddings.LayerNorm", x)
    ext = (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(torch.float32).min
    for i in range(m["numLayers"]):
        p = f"bert.encoder.layer.{i}"
        heads = lambda t: t.view(B, T, nh, d).transpose(1, 2)
        q, k, v = (heads(linear(f"{p}.attention.self.{n}", x)) for n in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + ext
        ctx = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, H)
        x = layer_norm(f"{p}.attention.output.LayerNorm", linear(f"{p}.attention.output.dense", ctx) + x)
        inter = gelu(linear(f"{p}.intermediate.dense", x))
        x = layer_norm(f"{p}.output.LayerNorm", linear(f"{p}.output.dense", inter) + x)

    task = cfg["task"]
    ce = torch.nn.CrossEntropyLoss()
    outputs = {}
    if task == "token-cls":
        logits = linear("classifier", x)
        loss = ce(logits.view(-1, logits.shape[-1]), labels.view(-1))
        outputs["logits"] = logits
    elif task == "masked-lm":
        h = layer_norm("cls.predictions.transform.LayerNorm", gelu(linear("cls.predictions.transform.dense", x)))
        logits = h @ W["cls.predictions.decoder.weight"] + W["cls.predictions.bias"]
        loss = ce(logits.view(-1, logits.shape[-1]), labels.view(-1))
        outputs["logits"] = logits
    elif task == "qa":
        logits = linear("qa_outputs", x)
        start_logits, end_logits = (t.squeeze(-1) for t in logits.split(1, dim=-1))
        ignored_index = start_logits.size(1)
        s = starts.clamp(0, ignored_index)
        e = ends.clamp(0, ignored_index)
        qa_ce = torch.nn.CrossEntropyLoss(ignore_index=ignored_index)
        loss = (qa_ce(start_logits, s) + qa_ce(end_logits, e)) / 2
        outputs["start_logits"] = start_logits
        outputs["end_logits"] = end_logits
    else:
        raise SystemExit(f"unknown task {task}")
    loss.backward()
    grads = {f"{k}.grad": t.grad.detach().numpy().astype(np.float64) for k, t in theta.items()}
    return loss.item(), {k: v.detach().numpy() for k, v in outputs.items()}, grads


def main():
    d = sys.argv[1]
    cfg = json.load(open(f"{d}/config.json"))
    model = onnx.load(f"{d}/model.onnx")
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    theta = read_safetensors(f"{d}/tweaker.safetensors")
    rows = [json.loads(l) for l in open(f"{d}/batch.jsonl") if l.strip()]
    batch = collate(rows)
    loss, outputs, grads = run(torch.float32, weights, theta, cfg, batch)
    loss64, _, grads64 = run(torch.float64, weights, theta, cfg, batch)
    fp64_rel = max(float(np.abs(grads[k] - grads64[k]).max() / max(np.abs(grads64[k]).max(), 1e-30)) for k in grads)
    tensors = {"loss": np.array(loss, dtype=np.float32), **outputs, **{k: v.astype(np.float32) for k, v in grads.items()}}
    write_safetensors(f"{d}/expected.safetensors", tensors, {"format": "peanut-onnx oracle", "task": cfg["task"]})
    record = {
        "task": cfg["task"],
        "loss": loss,
        "loss_float64": loss64,
        "grad_l2_norm": {k: float(np.linalg.norm(v)) for k, v in grads.items()},
        "grad_max_abs": {k: float(np.abs(v).max()) for k, v in grads.items()},
        "checks": {"float64_vs_float32_max_grad_rel": fp64_rel, "float64_vs_float32_loss_abs": abs(loss - loss64)},
        "suggested_tolerances": {"loss_rel": 1e-5, "grad_rel_to_tensor_max": 1e-3},
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
    }
    with open(f"{d}/expected.json", "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(f"{d}: loss {loss:.6f} (float64 {loss64:.6f}); grad fp64/fp32 rel {fp64_rel:.2e}")


if __name__ == "__main__":
    main()
