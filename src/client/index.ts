// The client: reads what an exporter sends and yields typed events. The package subpath
// `metrics-exporter-tcp/client`.
export { ClientError, type ClientErrorCode } from './errors.js';
export { toClientEvent, type ClientEvent, type MetadataEvent, type MetricEvent, type MetricKind, type MetricOp } from './events.js';
export { FrameDecoder, DEFAULT_MAX_FRAME_BYTES } from './frames.js';
export { MetricReader, DEFAULT_MAX_KEYS, type FrameKind, type MetricKey, type MetricReaderOptions } from './metric-reader.js';
export { Series, SeriesModel, seriesKind, type HistogramState, type SeriesMetadata, type SeriesModelOptions } from './series.js';
export { SeriesFeed } from './series-feed.js';
export { KeyBindings } from './key-bindings.js';
export { DEFAULT_MAX_KEY_BYTES, MAX_DESCRIPTION_LENGTH, MAX_LABELS, MAX_NAME_LENGTH, keyBytes, keyTooLarge, metadataBytes, metadataTooLarge } from './limits.js';
export { sampleStream } from './sample-stream.js';
export { TextChunks, defaultBuckets, escapeHelp, escapeLabelValue, familyName, formatValue, labelPairs, labelText, sampleNames, sanitizeLabel, sanitizeName } from './prometheus.js';
export { BUFFER_SIZE_METRIC, DROPPED_METRIC, LOSS_REASONS, QUEUE_PEAK_METRIC, RING_PEAK_METRIC } from '../shared/protocol.js';
export { MIN_RECOMMENDED_BUFFER, recommendBufferSize } from './buffer-size.js';
export { HistogramAggregate, NATIVE_SCHEMA, NATIVE_ZERO_THRESHOLD, sparse, type NativeBuckets } from './native-histogram.js';
export { CONTENT_TYPES, negotiate, protobufChunks, type FamilyData, type FamilyMember, type Format, type HistogramData } from './exposition-format.js';
export { CLIENT_PROTOCOLS, detectProtocol, parseProtocol, type ClientProtocol } from './protocol.js';
export { formatAddress, parseListenAddress } from '../shared/address.js';
export { TcpClient, type ClientAddress, type ClientEmitterEvents, type ClientOptions, type ClientTlsOptions, type ReconnectOptions } from './tcp-client.js';
export type { Pem } from '../shared/pem.js';
