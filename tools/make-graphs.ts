/**
 * Rebuilds the shipped demo graphs (see graphs/README.md):
 *
 *   npx tsx tools/make-graphs.ts [outDir]      (default: graphs/)
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel, saveModel } from '../src/onnx/io.ts';
import { DEMO_GRAPHS } from './lib/demo-graphs.ts';

const outDir = process.argv[2] ?? 'graphs';
mkdirSync(outDir, { recursive: true });
for (const g of DEMO_GRAPHS) {
  const model = g.build();
  const path = join(outDir, g.file);
  saveModel(model, path, { externalData: false });
  console.log(`${path}: ${encodeModel(model.proto).byteLength} bytes, ${model.proto.graph!.node.length} nodes — ${g.description}`);
}
