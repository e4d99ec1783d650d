/**
 * Error taxonomy. A `PeanutError` is a user error: the CLI prints its message as one line and
 * exits 1. Anything else is a bug and is printed in full.
 */

/** Machine-readable reasons, so tests and library users can branch without parsing messages. */
export type PeanutErrorCode =
  | 'E_FILE_NOT_FOUND'
  | 'E_NOT_ONNX'
  | 'E_BAD_SAFETENSORS'
  | 'E_NO_TARGETS'
  | 'E_BAD_CONFIG'
  | 'E_ALREADY_ADAPTED'
  | 'E_NOT_ADAPTED'
  | 'E_SHAPE_MISMATCH'
  | 'E_DTYPE'
  | 'E_NON_FINITE'
  | 'E_UNSUPPORTED_OP'
  | 'E_GRAPH'
  | 'E_DATA'
  | 'E_EP_UNAVAILABLE'
  | 'E_OUTPUT_EXISTS'
  | 'E_INTERRUPTED'
  | 'E_SOURCE_CHANGED'
  | 'E_NO_FILE_ACCESS'
  | 'E_BUSY'
  | 'E_PROBE'
  | 'E_IO'
  | 'E_BASE_MISMATCH';

export class PeanutError extends Error {
  override name = 'PeanutError';
  constructor(
    readonly code: PeanutErrorCode,
    message: string,
  ) {
    super(message);
  }
}
