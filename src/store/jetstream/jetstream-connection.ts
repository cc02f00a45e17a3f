/**
 * The JetStream store's one NATS connection: the first-connect loop, the status watch, credentials and TLS, the
 * max_payload check and the drain at shutdown.
 *
 * - start() never hangs on a NATS that is down: the loop keeps dialling in the background until stop(). After the
 *   first connection the client reconnects by itself, forever; every status change is logged.
 * - Credentials and TLS come parsed from src/config; only credential-free server URLs are ever logged.
 * - At every (re)connect the server's max_payload is compared with the largest message ingest can produce: a server
 *   that cannot take it makes the connection unusable, saying why (a publish would fail for every retry).
 * - The other parts of the store learn of connection changes through listeners (listen()), and read the current
 *   handles (`nc`, `js`, `requester`) from here.
 */
import { hostname } from 'node:os';
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { AppConfig, NatsConnectionConfig } from '../../config/app-config.js';
import { maxStoredEventBytes, STORED_EVENT_OVERHEAD_BYTES } from '../../events/envelope.js';
import { JsRequester } from './js-requester.js';
import { backoffMs, cancellableDelay, describeError, withTimeout, type StoreLogger } from './jetstream-util.js';

const DRAIN_TIMEOUT_MS = 5_000;
/** The NATS header block around a Nats-Msg-Id (`NATS/1.0`, the name, line ends), counted by max_payload. */
const HEADER_FRAMING_BYTES = 64;

/**
 * The largest message the ingest path publishes: the stored-event bound plus its header framing. The server's
 * max_payload must hold it, and the stream's max_msg_size is set to it.
 */
export function largestMessageBytes(config: AppConfig): number {
  return maxStoredEventBytes(config.ingest.maxBodyBytes) + HEADER_FRAMING_BYTES;
}

/** Why a server's max_payload cannot take this gateway's events, with both numbers and the fix; or undefined. */
export function maxPayloadProblem(config: AppConfig, maxPayload: number | undefined): string | undefined {
  const needed = largestMessageBytes(config);
  if (maxPayload === undefined || maxPayload >= needed) return undefined;
  const maxBody = config.ingest.maxBodyBytes;
  const fits = Math.max(0, Math.floor((maxPayload - HEADER_FRAMING_BYTES - STORED_EVENT_OVERHEAD_BYTES) / 4) * 3);
  const suggestion = `${Math.ceil(needed / 1024 ** 2)}MB`;
  return (
    `the NATS server's max_payload is ${maxPayload} bytes, but ingest.maxBodyBytes (${maxBody} bytes) can produce ` +
    `messages of up to ${needed} bytes (a body that is not JSON is stored as base64): set max_payload: ${suggestion} ` +
    `(at least ${needed}) in the nats-server config, or lower ingest.maxBodyBytes to at most ${fits} bytes`
  );
}

/** The client's options for the configured servers, credentials and TLS. */
export function connectOptionsFor(nats: NatsConnectionConfig): Partial<ConnectionOptions> {
  const opts: Partial<ConnectionOptions> = { servers: nats.servers };
  const auth = nats.auth;
  if (auth.kind === 'user') Object.assign(opts, { user: auth.user, pass: auth.pass });
  else if (auth.kind === 'token') opts.token = auth.token;
  else if (auth.kind === 'creds') opts.authenticator = credsAuthenticator(auth.creds);
  else if (auth.kind === 'nkey') opts.authenticator = nkeyAuthenticator(auth.seed);
  if (nats.tls) opts.tls = { ...nats.tls };
  return opts;
}

function isAuthError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AuthorizationError' || /authorization violation/i.test(err.message));
}

/** What the other parts of the store are told; every method is optional. */
export interface ConnectionListener {
  /** Connected (first time or again) to a server whose max_payload holds this gateway's events. */
  usable?(): void;
  /** The connection dropped; the client is reconnecting. */
  disconnected?(): void;
  /** The client reconnected by itself after an outage (told after `usable`). */
  reconnected?(): void;
}

export class JetStreamConnection {
  private _nc?: NatsConnection;
  private _js?: JetStreamClient;
  /** Request–reply for the append path (js-requester.ts); one per connection. */
  private _requester?: JsRequester;
  private _connected = false;
  /** Set while the connected server's max_payload cannot hold this gateway's largest event. */
  private _payloadProblem?: string;
  private _stopping = false;
  private connecting?: Promise<void>;
  private connectSleep?: { cancel: () => void };
  private readonly listeners: ConnectionListener[] = [];

  constructor(
    private readonly config: AppConfig,
    private readonly logger: StoreLogger,
  ) {}

  get nc(): NatsConnection | undefined {
    return this._nc;
  }

  get js(): JetStreamClient | undefined {
    return this._js;
  }

  get requester(): JsRequester | undefined {
    return this._requester;
  }

  /** Up now, as far as the client knows (a publish sent while false would only sit in the reconnect buffer). */
  get connected(): boolean {
    return this._connected;
  }

  get payloadProblem(): string | undefined {
    return this._payloadProblem;
  }

  get stopping(): boolean {
    return this._stopping;
  }

  listen(listener: ConnectionListener): void {
    this.listeners.push(listener);
  }

  /** Starts the connect loop (once); it runs in the background until connected or stopped. */
  open(): void {
    this.connecting ??= this.connectLoop();
  }

  /** Ends the connect loop (an outage at boot included); the connection itself stays until drain(). */
  async stop(): Promise<void> {
    this._stopping = true;
    this.connectSleep?.cancel();
    await this.connecting?.catch(() => undefined);
  }

  /** Closes the requester, then drains the connection (or closes it when it is down). */
  async drain(): Promise<void> {
    this._requester?.close();
    const nc = this._nc;
    if (!nc || nc.isClosed()) return;
    try {
      if (this._connected) await withTimeout(nc.drain(), DRAIN_TIMEOUT_MS, 'NATS drain');
      else await nc.close();
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'NATS drain failed; closing');
      await nc.close().catch(() => undefined);
    }
    this._connected = false;
  }

  /**
   * Own first-connect loop instead of the client's `waitOnFirstConnect`: that one cannot be cancelled,
   * so stop() during an outage at boot would leave it dialling forever. After the first connection the
   * client reconnects by itself, forever (`maxReconnectAttempts: -1`): with the client's default of 10 attempts,
   * an outage of about 20 s would close the connection for good and leave the gateway silently dead.
   */
  private async connectLoop(): Promise<void> {
    // User info is not part of these: they are safe to log.
    const servers = this.config.natsUrl;
    for (let attempt = 0; !this._stopping; attempt++) {
      try {
        const nc = await connect({
          ...connectOptionsFor(this.config.nats!),
          name: `hookstream-${hostname()}-${process.pid}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1_000,
          reconnectJitter: 500,
          pingInterval: 15_000,
          maxPingOut: 2,
          timeout: 5_000,
          // The client otherwise builds two Error objects (stack traces) per request "for context": the
          // ingest profile showed 22 % of the gateway's CPU in RequestError/TimeoutError constructors.
          noAsyncTraces: true,
        });
        if (this._stopping) {
          await nc.close();
          return;
        }
        this.attach(nc);
        return;
      } catch (err) {
        if (attempt === 0 || attempt % 30 === 0) {
          if (isAuthError(err)) {
            this.logger.error(
              { servers, attempt, auth: this.config.nats!.auth.kind, err: describeError(err) },
              'NATS refused the credentials (user info in NATS_URL, NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CREDS or NATS_NKEY); retrying',
            );
          } else {
            this.logger.warn({ servers, attempt, err: describeError(err) }, 'cannot connect to NATS; retrying');
          }
        }
        const sleep = cancellableDelay(backoffMs(attempt, 250, 2_000));
        this.connectSleep = sleep;
        await sleep.promise;
      }
    }
  }

  private attach(nc: NatsConnection): void {
    this._nc = nc;
    this._connected = true;
    this._js = jetstream(nc, { timeout: this.config.ingest.publishTimeoutMs });
    this._requester = new JsRequester(nc);
    this.logger.info({ server: nc.getServer(), version: nc.info?.version }, 'connected to NATS');
    void this.watchStatus(nc);
    void nc.closed().then((err) => {
      this._connected = false;
      if (!this._stopping) this.logger.error({ err: err ? describeError(err) : undefined }, 'NATS connection closed');
    });
    if (this.payloadFits(nc)) this.tell('usable');
  }

  /** Checked on every (re)connect: another server of a cluster may have another max_payload. */
  private payloadFits(nc: NatsConnection): boolean {
    const problem = maxPayloadProblem(this.config, nc.info?.max_payload);
    if (problem && problem !== this._payloadProblem) {
      this.logger.error({ server: nc.getServer() }, `not ready: ${problem}`);
    }
    this._payloadProblem = problem;
    return !problem;
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    let reconnecting = false;
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'ping':
          break;
        case 'disconnect':
          this._connected = false;
          this.tell('disconnected');
          this.logger.warn({ status: s }, 'NATS disconnected');
          break;
        case 'reconnecting':
          // Once per outage: the client tries every reconnectTimeWait.
          if (!reconnecting) this.logger.info({ status: s }, 'NATS reconnecting');
          reconnecting = true;
          break;
        case 'reconnect':
          reconnecting = false;
          this._connected = true;
          this.logger.info({ status: s }, 'NATS reconnected');
          if (this.payloadFits(nc)) this.tell('usable');
          this.tell('reconnected');
          break;
        case 'close':
        case 'error':
        case 'staleConnection':
        case 'slowConsumer':
          this.logger.warn({ status: s }, `NATS ${s.type}`);
          break;
        default:
          this.logger.info({ status: s }, `NATS ${s.type}`);
      }
    }
  }

  private tell(event: keyof ConnectionListener): void {
    for (const listener of this.listeners) listener[event]?.();
  }
}
