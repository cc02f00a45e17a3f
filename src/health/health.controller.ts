import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { EVENT_STORE, type EventStore } from '../store/event-store.port.js';
import { FanoutHub } from '../fanout/fanout-hub.js';
import { Lifecycle } from '../lifecycle.js';

@Controller()
export class HealthController {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly lifecycle: Lifecycle,
    private readonly hub: FanoutHub,
  ) {}

  /** Liveness: the process runs. */
  @Get('healthz')
  healthz() {
    return { status: 'ok' };
  }

  /** Readiness: the store is reachable, the stream exists, the live tap runs, and the process is not draining. */
  @Get('readyz')
  async readyz(@Res() res: Response): Promise<void> {
    const draining = this.lifecycle.draining;
    const store = await this.store.isReady().catch(() => false);
    const live = this.hub.isLive();
    const ready = !draining && store && live;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', store: this.store.kind, storeReady: store, live, draining });
  }
}
