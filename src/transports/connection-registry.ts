/** Counts subscriber connections of every transport against `limits.connectionsPerProcess`. */
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';

export type TransportName = 'socketio' | 'sse';

@Injectable()
export class ConnectionRegistry {
  private count = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  /** Claims a slot; returns the release function, or null when the process is full. */
  acquire(transport: TransportName): (() => void) | null {
    if (this.count >= this.config.limits.connectionsPerProcess) return null;
    this.count++;
    this.metrics.clients.inc({ transport });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.count--;
      this.metrics.clients.dec({ transport });
    };
  }
}
