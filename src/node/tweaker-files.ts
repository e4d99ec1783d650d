/** Tweaker state files (`--init`, `--save-tweaker`, `merge --checkpoint`): adapter/state.ts on disk. */
import type { AdapterMeta, AdapterParam } from '../adapter/adapter-meta.ts';
import { stateFromTensors, stateToTensors, tweakerFileMetadata, type StateFromTensorsOptions, type TweakerState } from '../adapter/state.ts';
import { readSafetensors, writeSafetensors } from './safetensors-files.ts';

/** Reads adapter parameters from a safetensors file (see `stateFromTensors`). */
export function readTweakerState(path: string, params: readonly AdapterParam[], opts: StateFromTensorsOptions = {}): TweakerState {
  return stateFromTensors(readSafetensors(path).tensors, params, { what: path, ...opts });
}

/** Writes a tweaker state file atomically. */
export function writeTweakerState(path: string, meta: AdapterMeta, state: TweakerState): void {
  const params = meta.targets.flatMap((t) => t.params);
  writeSafetensors(path, stateToTensors(state, params), tweakerFileMetadata(meta));
}
