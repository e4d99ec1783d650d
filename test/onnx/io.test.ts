import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { encodeModel, graphOf } from '../../src/onnx/model.ts';
import { isDeferred } from '../../src/onnx/tensor.ts';
import { FIXTURE_NAMES, loadFixture } from '../helpers/fixtures.ts';
import { tempDir } from '../helpers/cli.ts';

describe('ONNX model I/O', () => {
  for (const name of FIXTURE_NAMES) {
    it(`round-trips ${name} byte for byte`, () => {
      const f = loadFixture(name);
      const model = loadModel(f.modelPath);
      expect(Buffer.compare(Buffer.from(encodeModel(model.proto)), readFileSync(f.modelPath))).toBe(0);
    });

    it(`round-trips ${name} byte for byte when loaded lazily (every raw_data left in the file)`, () => {
      const f = loadFixture(name);
      const model = loadModel(f.modelPath, { lazyThreshold: 0, deferBytes: 1 });
      expect(graphOf(model).initializer.filter(isDeferred).length).toBeGreaterThan(0);
      expect(Buffer.compare(Buffer.from(encodeModel(model.proto)), readFileSync(f.modelPath))).toBe(0);
      const out = join(tempDir('peanut-io-'), 'model.onnx');
      saveModel(model, out);
      expect(Buffer.compare(readFileSync(out), readFileSync(f.modelPath))).toBe(0);
    });
  }
});
