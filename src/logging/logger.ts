/**
 * Logs (pino): JSON lines for machines, readable lines (pino-pretty) when a person watches a terminal; and an
 * adapter so Nest's own messages go through the same logger.
 */
import type { LoggerService } from '@nestjs/common';
import { pino, type DestinationStream, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';

export type AppLogger = Logger;

export interface LoggerOptions {
  /** Readable lines instead of JSON. Default: when stdout is a terminal (pipes, files and containers get JSON). */
  pretty?: boolean;
  /** Where lines go. Default: stdout (fd 1). */
  destination?: number | NodeJS.WritableStream;
}

export function createLogger(level: string, options: LoggerOptions = {}): AppLogger {
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  const dest = options.destination ?? 1;
  // Synchronous writes: logs are low-volume (no per-request lines) and none is lost on exit.
  const stream: DestinationStream = pretty
    ? pinoPretty({
        destination: dest,
        sync: true,
        colorize: dest === 1 && process.stdout.isTTY === true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,service',
      })
    : typeof dest === 'number'
      ? pino.destination({ dest, sync: true })
      : (dest as DestinationStream);
  return pino({ level, base: { service: 'hookstream' }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
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
