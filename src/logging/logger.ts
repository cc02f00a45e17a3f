/** Structured JSON logs (pino), and an adapter so Nest's own messages go through the same logger. */
import type { LoggerService } from '@nestjs/common';
import { pino, type Logger } from 'pino';

export type AppLogger = Logger;

export function createLogger(level: string): AppLogger {
  // Synchronous writes: logs are low-volume (no per-request lines) and none is lost on exit.
  return pino(
    { level, base: { service: 'hookstream' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: true }),
  );
}

export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: AppLogger) {}
  private write(level: 'info' | 'warn' | 'error' | 'debug' | 'trace' | 'fatal', message: unknown, params: unknown[]) {
    const context = typeof params[params.length - 1] === 'string' ? (params[params.length - 1] as string) : undefined;
    if (message instanceof Error) this.logger[level]({ err: message, context }, message.message);
    else if (typeof message === 'object') this.logger[level]({ ...(message as object), context });
    else this.logger[level]({ context }, String(message));
  }
  log(message: unknown, ...params: unknown[]) {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]) {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]) {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]) {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]) {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]) {
    this.write('fatal', message, params);
  }
}

export const APP_LOGGER = Symbol('APP_LOGGER');
