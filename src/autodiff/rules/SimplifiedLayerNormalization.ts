/**
 * SimplifiedLayerNormalization, ONNX Runtime's RMS normalisation in the default domain (what its
 * transformer optimizer and the genai model builder emit for LLaMA-style RMSNorm): attributes
 * axis (−1), epsilon (1e-5), stash_type (1); inputs X, scale; outputs Y and an optional float32
 * inv_std_var = 1/√(mean(X²) + ε), whose gradient adds dX −= dinv·inv³·X/n. Y takes scale's
 * element type, which may differ from X's; each gradient is cast to its input's type. Same
 * computation as RMSNormalization (see RMSNormalization.ts, `rmsNormGrad`).
 */
import type { GradRule } from '../rule.ts';
import { rmsNormGrad } from './RMSNormalization.ts';

export const simplifiedLayerNormalizationGrad: GradRule = { opType: 'SimplifiedLayerNormalization', grad: rmsNormGrad };
