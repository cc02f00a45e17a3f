/**
 * Socket.IO server options: WebSocket only unless long-polling is configured (polling needs sticky
 * sessions behind a load balancer), no per-message compression (CPU and memory per socket).
 */
import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';

export class HookstreamIoAdapter extends IoAdapter {
  constructor(
    app: INestApplicationContext,
    private readonly polling: boolean,
  ) {
    super(app);
  }

  override createIOServer(port: number, options?: Partial<ServerOptions>): Server {
    return super.createIOServer(port, {
      ...(options as ServerOptions),
      path: '/socket.io',
      transports: this.polling ? ['polling', 'websocket'] : ['websocket'],
      perMessageDeflate: false,
      serveClient: false,
      cors: { origin: true, credentials: true },
    }) as Server;
  }
}
