/** Codes of {@link ExporterError}, mirroring the seed's `Error::Io` and `Error::Recorder`. */
export type ExporterErrorCode = 'IO' | 'RECORDER_ALREADY_SET';

/**
 * The one error class the exporter throws or rejects with.
 * - `IO`: the listener could not be created (the OS error is in `cause`, e.g. EADDRINUSE).
 * - `RECORDER_ALREADY_SET`: `install()` was called while a global recorder is installed.
 */
export class ExporterError extends Error {
  override readonly name = 'ExporterError';
  readonly code: ExporterErrorCode;

  constructor(code: ExporterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
