/**
 * Child process of the atomic-pair test: saves two different models with external data to one
 * path, alternately, until it is killed, printing `saved <n>` after each save.
 *
 *   node --import tsx save-loop.ts <a.onnx> <b.onnx> <out.onnx>
 */
import { loadModel, saveModel } from '../../src/node/model-files.ts';

const [a, b, out] = process.argv.slice(2) as [string, string, string];
const models = [loadModel(a), loadModel(b)];
for (let n = 0; ; n++) {
  saveModel(models[n % 2]!, out, { externalData: true });
  process.stdout.write(`saved ${n}\n`);
}
