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

/**
 * A claimed slot, given back once by `release()` (later calls do nothing). An object with a shared method rather
 * than a closure: one is held per open connection.
 */
export class ConnectionSlot {
  private released = false;

  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly transport: TransportName,
    private readonly anonymous: boolean,
    private readonly ip: string,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.registry.give(this.transport, this.anonymous, this.ip);
  }
}

@Injectable()
export class ConnectionRegistry {
  private count = 0;
  private anonymous = 0;
  private readonly perIp = new Map<string, number>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  /** Claims a slot; returns it (give it back with `release()`), or the cap that is full. */
  acquire(transport: TransportName, claim: ConnectionClaim): ConnectionSlot | ConnectionCap {
    const limits = this.config.limits;
    if (this.count >= limits.connectionsPerProcess) return 'connectionsPerProcess';
    if (claim.anonymous && this.anonymous >= limits.anonymousConnections) return 'anonymousConnections';
    const fromIp = this.perIp.get(claim.ip) ?? 0;
    if (fromIp >= limits.connectionsPerIp) return 'connectionsPerIp';
    this.count++;
    if (claim.anonymous) this.anonymous++;
    this.perIp.set(claim.ip, fromIp + 1);
    this.metrics.clients.inc({ transport });
    return new ConnectionSlot(this, transport, claim.anonymous, claim.ip);
  }

  /** A slot given back (ConnectionSlot.release, once per slot). */
  give(transport: TransportName, anonymous: boolean, ip: string): void {
    this.count--;
    if (anonymous) this.anonymous--;
    const left = (this.perIp.get(ip) ?? 1) - 1;
    if (left > 0) this.perIp.set(ip, left);
    else this.perIp.delete(ip);
    this.metrics.clients.dec({ transport });
  }
}
