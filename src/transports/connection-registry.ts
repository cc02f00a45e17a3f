/**
 * Counts subscriber connections of every transport against the connection limits: the process as a whole
 * (`limits.connectionsPerProcess`), clients without credentials (`limits.anonymousConnections`) and each client
 * address (`limits.connectionsPerIp`), so neither anonymous clients nor one address can take every slot.
 */
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';

export type TransportName = 'socketio' | 'sse';

/** The `limits` key a refused connection ran into. */
export type ConnectionCap = 'connectionsPerProcess' | 'anonymousConnections' | 'connectionsPerIp';

export interface ConnectionClaim {
  anonymous: boolean;
  /** The client's address (client-address.ts). */
  ip: string;
}

export type Release = () => void;

@Injectable()
export class ConnectionRegistry {
  private count = 0;
  private anonymous = 0;
  private readonly perIp = new Map<string, number>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  /** Claims a slot; returns the release function (idempotent), or the cap that is full. */
  acquire(transport: TransportName, claim: ConnectionClaim): Release | ConnectionCap {
    const limits = this.config.limits;
    if (this.count >= limits.connectionsPerProcess) return 'connectionsPerProcess';
    if (claim.anonymous && this.anonymous >= limits.anonymousConnections) return 'anonymousConnections';
    const fromIp = this.perIp.get(claim.ip) ?? 0;
    if (fromIp >= limits.connectionsPerIp) return 'connectionsPerIp';
    this.count++;
    if (claim.anonymous) this.anonymous++;
    this.perIp.set(claim.ip, fromIp + 1);
    this.metrics.clients.inc({ transport });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.count--;
      if (claim.anonymous) this.anonymous--;
      const left = (this.perIp.get(claim.ip) ?? 1) - 1;
      if (left > 0) this.perIp.set(claim.ip, left);
      else this.perIp.delete(claim.ip);
      this.metrics.clients.dec({ transport });
    };
  }
}
