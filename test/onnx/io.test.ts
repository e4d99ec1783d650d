import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { loadModel, encodeModel } from '../../src/onnx/io.ts';
import { FIXTURE_NAMES, loadFixture } from '../helpers/fixtures.ts';

describe('ONNX model I/O', () => {
  for (const name of FIXTURE_NAMES) {
    it(`round-trips ${name} byte for byte`, () => {
      const f = loadFixture(name);
      const model = loadModel(f.modelPath);
      expect(Buffer.compare(Buffer.from(encodeModel(model.proto)), readFileSync(f.modelPath))).toBe(0);
    });
  }
});
