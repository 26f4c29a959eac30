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

/** Codes of {@link CaptureError}. */
export type CaptureErrorCode = 'RECORDER_ALREADY_SET' | 'CLOSED' | 'RECORDS_LOST' | 'TIMEOUT' | 'AMBIGUOUS_KEY';

/**
 * What `captureMetrics()` and its capture throw (`metrics-exporter-tcp/testing`):
 * - `RECORDER_ALREADY_SET`: a global recorder is installed already (an earlier capture not closed,
 *   or `TcpBuilder.install()`).
 * - `CLOSED`: the capture was used after `close()`.
 * - `RECORDS_LOST`: records were dropped since the capture started or was last reset (a ring was
 *   full: a burst of gauge changes, histogram observations or bigint increments larger than a ring holds), so
 *   the totals would be short.
 * - `TIMEOUT`: the capture's worker did not answer in time (it is gone or stuck).
 * - `AMBIGUOUS_KEY`: `value(key)` without a kind, for a key recorded as more than one kind.
 */
export class CaptureError extends CodedError<CaptureErrorCode> {
  override readonly name = 'CaptureError';
}
