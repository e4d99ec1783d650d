/**
 * Every gradient rule, as one plain list of imports. `registry.ts` builds its table from this
 * list (a duplicate throws). Add a rule by importing its config and appending it here.
 */
import type { GradRule } from '../rule.ts';
import { addGrad } from './Add.ts';
import { castGrad } from './Cast.ts';
import { clipGrad } from './Clip.ts';
import { divGrad } from './Div.ts';
import { dropoutGrad } from './Dropout.ts';
import { erfGrad } from './Erf.ts';
import { expGrad } from './Exp.ts';
import { geluGrad } from './Gelu.ts';
import { gemmGrad } from './Gemm.ts';
import { identityGrad } from './Identity.ts';
import { logGrad } from './Log.ts';
import { logSoftmaxGrad } from './LogSoftmax.ts';
import { matMulGrad } from './MatMul.ts';
import { maxGrad } from './Max.ts';
import { minGrad } from './Min.ts';
import { mulGrad } from './Mul.ts';
import { negGrad } from './Neg.ts';
import { powGrad } from './Pow.ts';
import { reciprocalGrad } from './Reciprocal.ts';
import { reluGrad } from './Relu.ts';
import { sigmoidGrad } from './Sigmoid.ts';
import { softmaxGrad } from './Softmax.ts';
import { sqrtGrad } from './Sqrt.ts';
import { subGrad } from './Sub.ts';
import { tanhGrad } from './Tanh.ts';
import { whereGrad } from './Where.ts';
import { biasGeluGrad, fastGeluGrad, gemmFastGeluGrad, msGeluGrad, quickGeluGrad } from './com.microsoft/Gelu.ts';
import { biasAddGrad } from './com.microsoft/BiasAdd.ts';
import { embedLayerNormalizationGrad } from './com.microsoft/EmbedLayerNormalization.ts';
import { skipLayerNormalizationGrad, skipSimplifiedLayerNormalizationGrad } from './com.microsoft/SkipLayerNormalization.ts';
import { fusedMatMulGrad } from './com.microsoft/FusedMatMul.ts';
import { celuGrad } from './Celu.ts';
import { eluGrad } from './Elu.ts';
import { hardSigmoidGrad } from './HardSigmoid.ts';
import { hardSwishGrad } from './HardSwish.ts';
import { mishGrad } from './Mish.ts';
import { preluGrad } from './PRelu.ts';
import { seluGrad } from './Selu.ts';
import { softplusGrad } from './Softplus.ts';
import { softsignGrad } from './Softsign.ts';
import { thresholdedReluGrad } from './ThresholdedRelu.ts';

// Shape, reduction, normalisation and indexing rules.
import { reduceSumGrad } from './ReduceSum.ts';
import { reduceMeanGrad } from './ReduceMean.ts';
import { reduceMaxGrad } from './ReduceMax.ts';
import { reduceMinGrad } from './ReduceMin.ts';
import { layerNormalizationGrad } from './LayerNormalization.ts';
import { reshapeGrad } from './Reshape.ts';
import { transposeGrad } from './Transpose.ts';
import { squeezeGrad } from './Squeeze.ts';
import { unsqueezeGrad } from './Unsqueeze.ts';
import { flattenGrad } from './Flatten.ts';
import { concatGrad } from './Concat.ts';
import { splitGrad } from './Split.ts';
import { sliceGrad } from './Slice.ts';
import { gatherGrad } from './Gather.ts';
import { gatherElementsGrad } from './GatherElements.ts';
import { expandGrad } from './Expand.ts';
import { tileGrad } from './Tile.ts';
import { padGrad } from './Pad.ts';
import { convGrad } from './Conv.ts';
import { sinGrad } from './Sin.ts';
import { cosGrad } from './Cos.ts';
import { absGrad } from './Abs.ts';
import { sumGrad } from './Sum.ts';
import { meanGrad } from './Mean.ts';
import { leakyReluGrad } from './LeakyRelu.ts';
import { triluGrad } from './Trilu.ts';
import { einsumGrad } from './Einsum.ts';
import { reduceSumSquareGrad } from './ReduceSumSquare.ts';
import { reduceL2Grad } from './ReduceL2.ts';
import { reduceL1Grad } from './ReduceL1.ts';
import { reduceLogSumExpGrad } from './ReduceLogSumExp.ts';
import { cumSumGrad } from './CumSum.ts';
import { scatterNDGrad } from './ScatterND.ts';
import { scatterElementsGrad } from './ScatterElements.ts';
import { gatherNDGrad } from './GatherND.ts';
import { globalAveragePoolGrad } from './GlobalAveragePool.ts';
import { globalMaxPoolGrad } from './GlobalMaxPool.ts';
import { batchNormalizationGrad } from './BatchNormalization.ts';
import { instanceNormalizationGrad } from './InstanceNormalization.ts';
import { averagePoolGrad } from './AveragePool.ts';
import { maxPoolGrad } from './MaxPool.ts';
import { reduceLogSumGrad } from './ReduceLogSum.ts';
import { reduceProdGrad } from './ReduceProd.ts';
import { topKGrad } from './TopK.ts';
import { depthToSpaceGrad } from './DepthToSpace.ts';
import { spaceToDepthGrad } from './SpaceToDepth.ts';
import { convTransposeGrad } from './ConvTranspose.ts';
import { groupNormalizationGrad } from './GroupNormalization.ts';
import { rmsNormalizationGrad } from './RMSNormalization.ts';
import { simplifiedLayerNormalizationGrad } from './SimplifiedLayerNormalization.ts';

// Attention family (fused forward kept; backward recomputes the probabilities, rules/shared/attention.ts).
import { rotaryEmbeddingGradOnnx } from './RotaryEmbedding.ts';
import { msRotaryEmbeddingGrad } from './com.microsoft/RotaryEmbedding.ts';
import { tensorScatterGrad } from './TensorScatter.ts';
import { attentionGrad } from './Attention.ts';
import { msAttentionGrad } from './com.microsoft/Attention.ts';
import { msMultiHeadAttentionGrad } from './com.microsoft/MultiHeadAttention.ts';
import { msGroupQueryAttentionGrad } from './com.microsoft/GroupQueryAttention.ts';
export const RULES: readonly GradRule[] = [
  addGrad,
  castGrad,
  clipGrad,
  divGrad,
  dropoutGrad,
  erfGrad,
  expGrad,
  geluGrad,
  gemmGrad,
  identityGrad,
  logGrad,
  logSoftmaxGrad,
  matMulGrad,
  maxGrad,
  minGrad,
  mulGrad,
  negGrad,
  powGrad,
  reciprocalGrad,
  reluGrad,
  sigmoidGrad,
  softmaxGrad,
  sqrtGrad,
  subGrad,
  tanhGrad,
  whereGrad,
  // Shape, reduction, normalisation and indexing rules.
  reduceSumGrad,
  reduceMeanGrad,
  reduceMaxGrad,
  reduceMinGrad,
  layerNormalizationGrad,
  reshapeGrad,
  transposeGrad,
  squeezeGrad,
  unsqueezeGrad,
  flattenGrad,
  concatGrad,
  splitGrad,
  sliceGrad,
  gatherGrad,
  gatherElementsGrad,
  expandGrad,
  tileGrad,
  padGrad,
  convGrad,
  sinGrad,
  cosGrad,
  absGrad,
  sumGrad,
  meanGrad,
  leakyReluGrad,
  triluGrad,
  einsumGrad,
  reduceSumSquareGrad,
  reduceL2Grad,
  reduceL1Grad,
  reduceLogSumExpGrad,
  cumSumGrad,
  scatterNDGrad,
  scatterElementsGrad,
  gatherNDGrad,
  globalAveragePoolGrad,
  globalMaxPoolGrad,
  batchNormalizationGrad,
  instanceNormalizationGrad,
  averagePoolGrad,
  maxPoolGrad,
  reduceLogSumGrad,
  reduceProdGrad,
  topKGrad,
  depthToSpaceGrad,
  spaceToDepthGrad,
  convTransposeGrad,
  groupNormalizationGrad,
  rmsNormalizationGrad,
  // ONNX Runtime's RMSNorm in the default domain (transformer optimizer, genai model builder).
  simplifiedLayerNormalizationGrad,
  // com.microsoft GELU family (ORT-optimized exports), differentiated in standard ops.
  msGeluGrad,
  biasGeluGrad,
  fastGeluGrad,
  quickGeluGrad,
  fusedMatMulGrad,
  gemmFastGeluGrad,
  // com.microsoft fused normalisations and residual adds.
  skipLayerNormalizationGrad,
  skipSimplifiedLayerNormalizationGrad,
  embedLayerNormalizationGrad,
  biasAddGrad,
  // More activations.
  eluGrad,
  seluGrad,
  celuGrad,
  softplusGrad,
  softsignGrad,
  hardSigmoidGrad,
  hardSwishGrad,
  mishGrad,
  preluGrad,
  thresholdedReluGrad,
  // Attention family.
  rotaryEmbeddingGradOnnx,
  msRotaryEmbeddingGrad,
  tensorScatterGrad,
  attentionGrad,
  msAttentionGrad,
  msMultiHeadAttentionGrad,
  msGroupQueryAttentionGrad,
];
