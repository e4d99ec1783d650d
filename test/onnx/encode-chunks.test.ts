import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../src/onnx/model.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { encodeModelChunks } from '../../src/onnx/encode-chunks.ts';
import { inject } from '../../src/adapter/inject.ts';
import { FIXTURE_NAMES, loadFixture } from '../helpers/fixtures.ts';
import { floatTensor } from '../../src/onnx/tensor.ts';
import { graphOf } from '../../src/onnx/model.ts';

describe('encodeModelChunks', () => {
  for (const name of FIXTURE_NAMES) {
    it(`equals toBinary for ${name} (with a large tensor spliced)`, () => {
      const model = loadModel(loadFixture(name).modelPath);
      // the fixtures' tensors are small: add a large one (and an adapter) so splicing happens
      graphOf(model).initializer.splice(1, 0, floatTensor('big', [300, 300], new Float32Array(90_000).map((_, i) => i)));
      const adapted = inject(model, { r: 2, targets: 'all-linear' }).model;
      for (const m of [model, adapted]) {
        const chunks = encodeModelChunks(m.proto);
        expect(chunks.length).toBeGreaterThan(1);
        expect(Buffer.compare(Buffer.concat(chunks), Buffer.from(encodeModel(m.proto)))).toBe(0);
      }
      // the proto is unchanged afterwards
      expect(graphOf(model).initializer[1]!.rawData.byteLength).toBe(360_000);
    });
  }
});
