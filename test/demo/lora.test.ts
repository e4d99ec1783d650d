/**
 * The LoRA baseline runs through the very same inject → train → merge code as PEANuT; its merged
 * weights must equal W0 + ΔW with ΔW computed by hand from the trained checkpoint (PEFT layout):
 *
 *   lora_A [r, in], lora_B [out, r];  ΔW_torch = (α/r)·(B·A) [out, in];  ONNX [in, out]: ΔWᵀ
 */
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/cli/demo/run-demo.ts';
import { graphOf } from '../../src/onnx/model.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { tensorDims, tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { readAdapterMeta } from '../../src/adapter/adapter-meta.ts';
import { readSafetensors } from '../../src/node/safetensors-files.ts';
import { tempDir } from '../helpers/cli.ts';

describe('LoRA baseline through the demo pipeline', () => {
  it('merged W = W0 + (α/r)·(B·A)ᵀ from the trained checkpoint; merged = adapted within 1e-5', async () => {
    const r = 4;
    const alpha = 8;
    const res = await runDemo({ outDir: tempDir('peanut-lora-'), method: 'lora', rank: r, alpha, steps: 8, lr: 5e-3, timingRuns: 1, threads: 1 });
    expect(res.method).toEqual({ method: 'lora', r, alpha });
    // lora_A r·in + lora_B out·r per layer, in = out = 64
    expect(res.trainableParams).toBe(4 * (r * 64 + 64 * r));
    expect(res.mergedVsAdaptedMaxDiff).toBeLessThanOrEqual(1e-5);

    const adapted = loadModel(res.files.adapted);
    const meta = readAdapterMeta(adapted)!;
    const inits = new Map(graphOf(adapted).initializer.map((t) => [t.name, t]));
    const merged = new Map(graphOf(loadModel(res.files.merged)).initializer.map((t) => [t.name, t]));
    const ckpt = readSafetensors(res.files.checkpoint).tensors;
    expect(meta.targets).toHaveLength(4);
    for (const t of meta.targets) {
      const A = ckpt.get(`${t.module}.lora_A.weight`)!;
      const B = ckpt.get(`${t.module}.lora_B.weight`)!;
      expect(A.shape).toEqual([r, t.in]);
      expect(B.shape).toEqual([t.out, r]);
      const a = A.data as Float32Array;
      const b = B.data as Float32Array;
      expect(b.some((v) => v !== 0)).toBe(true); // training moved B away from its zero init
      const w0Tensor = inits.get(t.weight)!;
      expect(tensorDims(w0Tensor)).toEqual([t.in, t.out]);
      const w0 = tensorToFloat32(w0Tensor, adapted.baseDir);
      const got = tensorToFloat32(merged.get(t.weight)!, '.');
      let maxW = 0;
      let maxErr = 0;
      for (let i = 0; i < t.in; i++) {
        for (let o = 0; o < t.out; o++) {
          // ΔW[i, o] = (α/r)·Σ_k B[o, k]·A[k, i]
          let d = 0;
          for (let k = 0; k < r; k++) d += b[o * r + k]! * a[k * t.in + i]!;
          const want = w0[i * t.out + o]! + (alpha / r) * d;
          maxW = Math.max(maxW, Math.abs(want));
          maxErr = Math.max(maxErr, Math.abs(got[i * t.out + o]! - want));
        }
      }
      expect(maxErr / maxW).toBeLessThan(1e-6);
    }
  }, 60_000);
});
