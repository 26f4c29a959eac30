import type { Meter, MeterOptions, MeterProvider } from '@opentelemetry/api';
import type { Recording } from '../app/recording.js';
import { TcpMeter } from './meter.js';
import { Collection } from './observables.js';

/** Options of {@link TcpMeterProvider}. */
export interface TcpMeterProviderOptions {
  /**
   * How often the callbacks of observable instruments run, in milliseconds (an integer, 1 …
   * 2^31 − 1). Default 5000.
   */
  collectIntervalMs?: number;
}

const MAX_INTERVAL_MS = 2 ** 31 - 1;

/**
 * An `@opentelemetry/api` MeterProvider that records into a metrics-exporter-tcp recorder, at
 * the cost of a handle call: code instrumented with the OpenTelemetry API records through the
 * exporter's ring. Make one per thread, over what `build()` returns on the main thread or what
 * `attach()` returns in another thread, and set it as the global provider
 * (`metrics.setGlobalMeterProvider`) or hand it to the code that takes one.
 */
export class TcpMeterProvider implements MeterProvider {
  private readonly collection: Collection;
  private readonly meter: TcpMeter;
  private shut: Promise<void> | undefined;

  /**
   * @param recording the recorder from `TcpBuilder.build()`, or what `attach()` returned in
   *   this thread
   * @throws TypeError / RangeError for a recording that is not one, or an invalid interval
   */
  constructor(
    private readonly recording: Recording,
    options: TcpMeterProviderOptions = {},
  ) {
    if (typeof recording !== 'object' || recording === null || typeof recording.counter !== 'function' || typeof recording.flush !== 'function') {
      throw new TypeError('TcpMeterProvider takes the recorder from TcpBuilder.build() or what attach() returned');
    }
    const interval = options.collectIntervalMs ?? 5000;
    if (!Number.isInteger(interval)) throw new TypeError(`collectIntervalMs must be an integer, got ${String(interval)}`);
    if (interval < 1 || interval > MAX_INTERVAL_MS) throw new RangeError(`collectIntervalMs must be between 1 and ${MAX_INTERVAL_MS}, got ${interval}`);
    this.collection = new Collection(interval);
    this.meter = new TcpMeter(recording, this.collection);
  }

  /**
   * The meter. Its name, version and schema URL are not used: the wire format carries no
   * instrumentation scope, so every meter of a provider is the same one, and an instrument is
   * its name and kind whichever meter made it.
   */
  getMeter(name: string, version?: string, options?: MeterOptions): Meter {
    void [name, version, options]; // not used: see above
    return this.meter;
  }

  /**
   * Runs every observable callback now, waits for those that return a promise, then publishes
   * what this thread has recorded (`recording.flush()`). After `shutdown()`, only publishes.
   */
  async forceFlush(): Promise<void> {
    if (this.shut === undefined) await this.collection.collect();
    this.recording.flush();
  }

  /**
   * Runs the observable callbacks a last time, stops their timer and publishes. It does not
   * close the recorder (that is the app's `recorder.close()`), so synchronous instruments keep
   * recording into it; observable callbacks no longer run. Calling it again does nothing more.
   */
  shutdown(): Promise<void> {
    this.shut ??= (async () => {
      this.collection.stop();
      await this.collection.collect();
      this.recording.flush();
    })();
    return this.shut;
  }
}
