import { CodedError } from '../errors.js';

/** Codes of {@link ClientError}. */
export type ClientErrorCode = 'FRAME_TOO_LARGE' | 'BAD_LENGTH' | 'DECODE' | 'CONNECT' | 'TLS';

/**
 * The one error class the client throws, rejects with and emits.
 * - `FRAME_TOO_LARGE`: a length prefix announced a frame over `maxFrameBytes`.
 * - `BAD_LENGTH`: a length prefix was not a varint of at most 10 bytes.
 * - `DECODE`: a frame is not a valid `Event` of the chosen protocol (the protobuf error, if
 *   any, is in `cause`). A string field that is not valid UTF-8 is one: it is never replaced
 *   with U+FFFD.
 * - `CONNECT`: the connection could not be made, failed, or ended in the middle of a frame
 *   (the OS error, if any, is in `cause`).
 * - `TLS`: the TLS handshake failed (the message says why: the exporter's certificate could not
 *   be verified, or does not name the host; the exporter refused this client's certificate; no
 *   handshake in time). With `reconnect`, it is tried again, as a failed connection is.
 *
 * The first three mean the stream is malformed: the client closes the connection for good.
 */
export class ClientError extends CodedError<ClientErrorCode> {
  override readonly name = 'ClientError';
}
