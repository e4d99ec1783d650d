/**
 * Half-precision and multi-file external-data variants of a float32 model, made in the tests
 * (no fixture bytes): what an fp16 GPU export and a sharded external-data export look like.
 */
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel, graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { create, DataLocation, StringStringEntryProtoSchema } from '../../src/onnx/proto.ts';
import { externalRef, isExternal } from '../../src/onnx/tensor.ts';

export { toHalfPrecision } from '../../tools/lib/half.ts';

/**
 * Saves `model` with external data spread over two files: the `<file>_data` saveModel writes,
 * then every other external tensor moved to `<file>.weights-2.bin` (as sharded exports do).
 */
export function saveTwoDataFiles(model: OnnxModel, path: string): void {
  saveModel(model, path, { externalData: true });
  const saved = loadModel(path);
  const second = `${path.split('/').pop()!}.weights-2.bin`;
  const out = openSync(join(saved.baseDir, second), 'w');
  let offset = 0;
  let i = 0;
  try {
    for (const t of graphOf(saved).initializer) {
      if (!isExternal(t) || i++ % 2 === 0) continue;
      const ref = externalRef(t);
      const src = openSync(join(saved.baseDir, ref.location), 'r');
      const buf = new Uint8Array(ref.length);
      readSync(src, buf, 0, ref.length, ref.offset);
      closeSync(src);
      writeSync(out, buf);
      t.externalData = [
        create(StringStringEntryProtoSchema, { key: 'location', value: second }),
        create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
        create(StringStringEntryProtoSchema, { key: 'length', value: String(ref.length) }),
      ];
      t.dataLocation = DataLocation.EXTERNAL;
      offset += ref.length;
    }
  } finally {
    closeSync(out);
  }
  writeFileSync(path, encodeModel(saved.proto));
}
