/**
 * How the ONNX layer reads bytes that live in files: external-data tensors and the tensors of a
 * lazily loaded model. The graph and tensor code never touches a file system itself; it asks the
 * installed `FileReader`. The Node entry installs one over `node:fs` (src/node/files.ts); where
 * none is installed (a browser), such a tensor fails with one clear error, and every model held in
 * memory works as usual.
 */
import { PeanutError } from '../errors.ts';

/** Enough of a file's status to notice that it was replaced or rewritten since it was read. */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

/**
 * Where a lazily loaded tensor's bytes live: `length` bytes at `offset` of the model file `path`
 * (the payload of its raw_data field). `identity` is the file as it was when loaded.
 */
export interface SourceRange {
  path: string;
  offset: number;
  length: number;
  identity: FileIdentity;
}

export interface FileReader {
  /**
   * `length` bytes at `offset` of the external data file `location` of a model whose folder is
   * `baseDir`. Refuses a location outside that folder.
   */
  readExternal(baseDir: string, location: string, offset: number, length: number): Uint8Array;
  /** Fills `out` from a lazily loaded tensor's file range, checking the file is unchanged. */
  readSource(src: SourceRange, out: Uint8Array): void;
}

let installed: FileReader | undefined;

/** Installs the file reader the ONNX layer uses (the Node entry does this once). */
export function setFileReader(reader: FileReader): void {
  installed = reader;
}

/** The installed file reader. @throws PeanutError E_NO_FILE_ACCESS when there is none. */
export function fileReader(): FileReader {
  if (!installed) {
    throw new PeanutError('E_NO_FILE_ACCESS', 'this model keeps tensor bytes in files (external data), and this runtime has no file access; pass a model whose tensors are inline');
  }
  return installed;
}
