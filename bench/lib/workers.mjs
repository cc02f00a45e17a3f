// Forked bench workers (`bench/workers/*.mjs`) and the tiny request/response protocol they speak over IPC.
// Every worker is tracked by test/lib/procs.mjs and killed when the orchestrator exits, whatever the reason.
import { fork } from 'node:child_process';
import { track } from '../../test/lib/procs.mjs';

/**
 * A forked worker (`bench/workers/*.mjs`): `call(cmd, args)` resolves with the worker's answer;
 * `on(event, fn)` receives unsolicited messages.
 */
export class Worker {
  constructor(script, args = [], { env, execArgv = [] } = {}) {
    this.child = track(
      fork(script, args, {
        env: { ...process.env, ...env },
        execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    this.pending = new Map();
    this.listeners = new Map();
    this.seq = 0;
    this.exited = new Promise((resolve) => this.child.once('exit', (code, sig) => resolve({ code, sig })));
    this.child.on('message', (m) => {
      if (m && m.re !== undefined) {
        const p = this.pending.get(m.re);
        if (!p) return;
        this.pending.delete(m.re);
        if (m.error) p.reject(new Error(`${script}: ${m.error}`));
        else p.resolve(m.result);
      } else if (m && m.event) {
        for (const fn of this.listeners.get(m.event) ?? []) fn(m.data);
      }
    });
    void this.exited.then(({ code, sig }) => {
      for (const p of this.pending.values()) p.reject(new Error(`${script} exited (${code ?? sig})`));
      this.pending.clear();
    });
  }

  get pid() {
    return this.child.pid;
  }

  call(cmd, args = {}, timeoutMs = 600_000) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker call ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, args });
    });
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      this.child.send({ id: 0, cmd: 'exit', args: {} });
    } catch {
      // channel closed
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Worker side: serves `handlers[cmd](args)`; `exit` ends the process. Returns `emit(event, data)`. */
export function serve(handlers) {
  process.on('message', async (m) => {
    if (!m || typeof m.cmd !== 'string') return;
    if (m.cmd === 'exit') {
      try {
        await handlers.exit?.();
      } finally {
        process.exit(0);
      }
    }
    const fn = handlers[m.cmd];
    if (!fn) {
      process.send({ re: m.id, error: `unknown command ${m.cmd}` });
      return;
    }
    try {
      const result = await fn(m.args ?? {});
      process.send({ re: m.id, result: result ?? null });
    } catch (err) {
      process.send({ re: m.id, error: err?.stack ?? String(err) });
    }
  });
  // The orchestrator died: do not linger.
  process.on('disconnect', () => process.exit(0));
  return (event, data) => process.send?.({ event, data });
}
