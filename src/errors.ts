/** Codes of {@link ExporterError}, mirroring the seed's `Error::Io` and `Error::Recorder`. */
export type ExporterErrorCode = 'IO' | 'RECORDER_ALREADY_SET';

/** An error with a stable `code` to branch on; the base of the package's error classes. */
export class CodedError<C extends string> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The one error class the exporter throws or rejects with.
 * - `IO`: the listener could not be created (the OS error is in `cause`, e.g. EADDRINUSE).
 * - `RECORDER_ALREADY_SET`: `install()` was called while a global recorder is installed.
 */
export class ExporterError extends CodedError<ExporterErrorCode> {
  override readonly name = 'ExporterError';
}
