import { type BeforeApplicationShutdown, Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { OUTBOUND_SERVICE } from './endpoints.controller.js';
import type { OutboundService } from './outbound.service.js';

/** Starts delivering once the app is up (the worker waits for the store itself); stops before the store drains. */
@Injectable()
export class OutboundLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(@Inject(OUTBOUND_SERVICE) private readonly outbound: OutboundService | null) {}

  onApplicationBootstrap(): void {
    this.outbound?.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.outbound?.stop();
  }
}
