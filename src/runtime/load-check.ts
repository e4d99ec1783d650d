/**
 * The check behind "every model a command writes loads in ONNX Runtime": a light copy of the
 * model (weights as fills, see light-copy.ts) is loaded in a session with graph optimisations
 * off, which runs ONNX Runtime's own graph resolution: every node input defined, every op known at
 * its opset, every type and shape consistent. Cost: one session over the graph without its
 * weights (see docs/reliability.md for measurements).
 */
import { PeanutError } from '../errors.ts';
import { encodeModel, type OnnxModel } from '../onnx/model.ts';
import { withWeightsAsFills } from './light-copy.ts';
import type { Runtime } from './session.ts';

/**
 * Refuses a model ONNX Runtime would not load.
 *
 * @param what - how the message names it (e.g. `the adapted model`)
 * @throws PeanutError E_GRAPH quoting ONNX Runtime's first line
 */
export async function checkModelLoads(runtime: Runtime, model: OnnxModel, what: string): Promise<void> {
  const light = withWeightsAsFills(model);
  let session;
  try {
    session = await runtime.createSession(encodeModel(light.proto), {
      ep: runtime.cpuEp,
      graphOptimizationLevel: 'disabled',
      ...(light.externalData.length ? { externalData: light.externalData } : {}),
    });
  } catch (err) {
    if (err instanceof PeanutError && err.code !== 'E_GRAPH') throw err;
    const why = (err as Error).message.replace(/^[^:]*cannot load the model: /, '');
    throw new PeanutError('E_GRAPH', `${what} would not load in ONNX Runtime (${why}); the input model is not a valid ONNX graph: check that it loads in ONNX Runtime as it is`);
  }
  await session.release();
}
