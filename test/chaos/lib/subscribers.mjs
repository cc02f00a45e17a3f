/**
 * Subscribers that behave like the browser SDK: one subscription kept alive across every disconnect, resumed
 * by cursor on whichever gateway answers (the next one in turn first). They record, exactly as received:
 * every delivery (seq, event id, subject), every gap notice, every session and every stretch of time they
 * were not live. They never drop duplicates themselves, so what they record is what the gateways sent.
 *
 * Dead-peer detection. Socket.IO's own heartbeat (server pingInterval 25 s + pingTimeout 20 s) would notice
 * a frozen (SIGSTOPped) gateway only after ~45 s, and the gateway does not expose its ping settings. So, as
 * many real-time clients do, a client that hears NOTHING for `silenceMs` (no delivery, no engine.io packet
 * — pings included — and for SSE no frame and no keep-alive comment) while events are being produced treats
 * the connection as dead: it closes it and resumes elsewhere from its cursor. A false alarm only costs a
 * resume, which must be exact anyway.
 */
import { request as httpRequest } from 'node:http';
import { io } from 'socket.io-client';
import { cursorSeq, natsMatch } from './judge.mjs';

class BaseSubscriber {
  /**
   * @param {{name: string, urls: () => string[], first: number, token: string, patterns: string[],
   *          start: {from?: string, cursor?: string}, silenceMs: number, connectTimeoutMs?: number,
   *          producing?: () => boolean}} opts
   */
  constructor(opts) {
    this.opts = { connectTimeoutMs: 5_000, producing: () => true, ...opts };
    this.name = opts.name;
    this.patterns = opts.patterns;
    this.cursor = opts.start.cursor;
    this.from = opts.start.from;
    /** Where the subscription started (its first ack / ready cursor). */
    this.startCursor = undefined;
    this.seqs = [];
    /** Arrival time of each delivery (ms). */
    this.arrivals = [];
    this.ids = [];
    this.subjectMismatches = 0;
    this.gaps = [];
    this.closings = [];
    this.sessions = [];
    this.refusals = [];
    this.errors = 0;
    /** Periods without a live subscription: {from, to, why}. */
    this.outages = [];
    this.turn = opts.first;
    this.live = false;
    this.stopped = false;
    this.lastHeard = Date.now();
    this.downSince = Date.now();
    this.downWhy = 'start';
    this.watch = setInterval(() => this.checkSilence(), 250);
  }

  nextUrl() {
    const urls = this.opts.urls();
    return urls[this.turn++ % urls.length];
  }

  heard() {
    this.lastHeard = Date.now();
  }

  onDelivery(d) {
    this.heard();
    this.seqs.push(d.seq);
    this.arrivals.push(Date.now());
    this.ids.push(d.event?.id);
    if (!this.patterns.some((p) => natsMatch(p, d.subject))) this.subjectMismatches++;
    this.cursor = d.cursor;
    this.lastDeliveryAt = Date.now();
  }

  onGap(g) {
    this.heard();
    this.gaps.push({ ...g, at: Date.now() });
    this.cursor = g.resumeCursor;
  }

  becameLive(url, sentCursor, startCursor) {
    if (this.startCursor === undefined) this.startCursor = startCursor;
    if (this.cursor === undefined) this.cursor = startCursor;
    this.from = undefined;
    this.sessions.push({ url, at: Date.now(), cursor: sentCursor });
    this.outages.push({ from: this.downSince, to: Date.now(), why: this.downWhy });
    this.live = true;
    this.heard();
  }

  /** Connection lost (or declared dead): record when, then resume. */
  lost(why, at = Date.now()) {
    if (!this.live) return;
    this.live = false;
    // A frozen peer was dead from the last thing heard, not from when the silence was noticed.
    this.downSince = why === 'silence' ? this.lastHeard : at;
    this.downWhy = why;
    this.teardown();
    if (!this.stopped) this.resume();
  }

  checkSilence() {
    if (this.stopped || !this.started) return;
    if (!this.live) {
      // Belt and braces: a client that is neither live nor resuming resumes now.
      if (!this.resuming) this.resume();
      return;
    }
    // Silence only means something while events are being produced.
    if (!this.opts.producing()) return this.heard();
    if (Date.now() - this.lastHeard > this.opts.silenceMs) this.lost('silence');
  }

  resume() {
    if (this.resuming) return;
    this.resuming = (async () => {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          await this.connectOnce(this.nextUrl());
          return;
        } catch (err) {
          this.errors++;
          this.lastError = err?.message ?? String(err);
          this.teardown();
          const ceiling = Math.min(2_000, 100 * 2 ** attempt);
          await new Promise((r) => setTimeout(r, ceiling / 2 + (Math.random() * ceiling) / 2));
        }
      }
    })().finally(() => (this.resuming = null));
  }

  start() {
    this.started = true;
    this.resume();
  }

  async stop() {
    this.stopped = true;
    clearInterval(this.watch);
    if (this.live) this.outages.push({ from: Date.now(), to: Date.now(), why: 'stop' });
    this.live = false;
    this.teardown();
    await this.resuming?.catch(() => undefined);
  }

  startSeq() {
    return cursorSeq(this.startCursor);
  }
}

export class SocketSubscriber extends BaseSubscriber {
  kind = 'socket.io';

  connectOnce(url) {
    return new Promise((resolve, reject) => {
      const socket = io(url, {
        transports: ['websocket'],
        auth: { token: this.opts.token },
        reconnection: false,
        forceNew: true,
        timeout: this.opts.connectTimeoutMs,
      });
      this.socket = socket;
      let settled = false;
      const fail = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error('subscribe timed out')), this.opts.connectTimeoutMs * 2);
      socket.once('connect_error', (err) => fail(err));
      socket.on('event', (d) => this.onDelivery(d));
      socket.on('gap', (g) => this.onGap(g));
      socket.on('closing', (c) => this.closings.push({ ...c, at: Date.now() }));
      socket.on('disconnect', (reason) => {
        if (!settled) fail(new Error(`disconnected before the ack: ${reason}`));
        else this.lost(`disconnect:${reason}`);
      });
      socket.once('connect', () => {
        socket.io.engine.on('packet', () => this.heard());
        const req = { subjects: this.patterns };
        if (this.cursor !== undefined) req.cursor = this.cursor;
        else if (this.from !== undefined) req.from = this.from;
        socket
          .timeout(this.opts.connectTimeoutMs)
          .emitWithAck('subscribe', req)
          .then((ack) => {
            clearTimeout(timer);
            if (settled) return;
            if (!ack?.ok) {
              this.refusals.push(ack?.error);
              return fail(new Error(`subscribe refused: ${ack?.error}`));
            }
            settled = true;
            this.becameLive(url, req.cursor, ack.cursor);
            resolve();
          }, fail);
      });
    });
  }

  teardown() {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    // Nothing that arrives on an abandoned connection counts: the resume starts from the cursor held now.
    socket.removeAllListeners();
    socket.io.engine?.removeAllListeners?.('packet');
    socket.on('connect_error', () => undefined);
    socket.disconnect();
  }
}

/** Incremental text/event-stream parser: calls onFrame({event, id, data}) and onComment(). */
class SseParser {
  constructor(onFrame, onComment) {
    Object.assign(this, { onFrame, onComment, buffer: '', frame: {} });
  }

  feed(chunk) {
    this.buffer += chunk;
    let i;
    while ((i = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, i).replace(/\r$/, '');
      this.buffer = this.buffer.slice(i + 1);
      if (line === '') {
        if (Object.keys(this.frame).length) this.onFrame(this.frame);
        this.frame = {};
      } else if (line.startsWith(':')) {
        this.onComment(line);
      } else {
        const c = line.indexOf(':');
        const name = c < 0 ? line : line.slice(0, c);
        const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        this.frame[name] = name === 'data' && this.frame.data !== undefined ? `${this.frame.data}\n${value}` : value;
      }
    }
  }
}

export class SseSubscriber extends BaseSubscriber {
  kind = 'sse';

  connectOnce(base) {
    return new Promise((resolve, reject) => {
      const u = new URL('/v1/stream', base);
      for (const p of this.patterns) u.searchParams.append('subject', p);
      const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${this.opts.token}` };
      const sentCursor = this.cursor;
      if (sentCursor !== undefined) headers['Last-Event-ID'] = sentCursor;
      else if (this.from !== undefined) u.searchParams.set('from', this.from);
      let settled = false;
      const fail = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      };
      const req = httpRequest(u, { method: 'GET', headers, agent: false });
      this.req = req;
      const timer = setTimeout(() => {
        fail(new Error('no ready frame in time'));
        req.destroy();
      }, this.opts.connectTimeoutMs);
      req.once('error', (err) => (settled ? this.lost(`error:${err.code ?? err.message}`) : fail(err)));
      req.once('response', (res) => {
        this.res = res;
        if (res.statusCode !== 200) {
          let body = '';
          res.on('data', (d) => (body += d));
          res.once('end', () => {
            this.refusals.push(`${res.statusCode} ${body.slice(0, 120)}`);
            fail(new Error(`SSE answered ${res.statusCode}`));
          });
          return;
        }
        const decoder = new TextDecoder();
        const parser = new SseParser(
          (f) => {
            this.heard();
            if (f.event === 'ready') {
              if (settled) return;
              settled = true;
              clearTimeout(timer);
              this.becameLive(base, sentCursor, JSON.parse(f.data).cursor);
              resolve();
            } else if (f.event === 'gap') this.onGap(JSON.parse(f.data));
            else if (f.event === 'closing') this.closings.push({ ...JSON.parse(f.data), at: Date.now() });
            else if (f.event === undefined && f.data !== undefined) this.onDelivery(JSON.parse(f.data));
          },
          () => this.heard(),
        );
        res.on('data', (c) => parser.feed(decoder.decode(c, { stream: true })));
        res.once('error', () => undefined);
        res.once('close', () => (settled ? this.lost('end') : fail(new Error('SSE ended before ready'))));
      });
      req.end();
    });
  }

  teardown() {
    const { req, res } = this;
    this.req = null;
    this.res = null;
    res?.removeAllListeners('data');
    res?.removeAllListeners('close');
    res?.on('error', () => undefined);
    req?.removeAllListeners('error');
    req?.on('error', () => undefined);
    req?.destroy();
    res?.destroy();
  }
}
