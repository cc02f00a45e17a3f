import { describe, expect, it } from '@jest/globals';
import { Semaphore, SharedCall } from './async-tools.js';
import type { Delivery } from './fanout.types.js';
import { HandoffBuffer } from './handoff-buffer.js';
import { RingBuffer } from './ring-buffer.js';

const d = (seq: number): Delivery => ({ cursor: `e_${seq}`, seq, subject: 'events.a', event: {}, json: '{}' });

describe('HandoffBuffer', () => {
  const sized = (seq: number, bytes: number): Delivery => ({ ...d(seq), json: `{"p":"${'x'.repeat(bytes - 8)}"}` });

  it('holds live events in order up to its event bound, then forgets them all and stops holding', () => {
    const buf = new HandoffBuffer(3, Infinity, 4);
    expect(buf.from).toBe(4);
    for (let s = 5; s <= 7; s++) buf.hold(d(s));
    expect(buf.length).toBe(3);
    buf.hold(d(8));
    expect(buf.active).toBe(false);
    expect(buf.length).toBe(0);
    buf.hold(d(9));
    expect(buf.length).toBe(0);
  });

  it("counts the envelopes' JSON against its byte budget", () => {
    const buf = new HandoffBuffer(100, 250, 0);
    buf.hold(sized(1, 100));
    buf.hold(sized(2, 100));
    expect(buf.length).toBe(2);
    buf.hold(sized(3, 100));
    expect(buf.active).toBe(false);
  });

  it('restarts empty from a new head, and take() hands over the held events and drops the buffer', () => {
    const buf = new HandoffBuffer(2, 250, 0);
    buf.hold(sized(1, 200));
    buf.hold(sized(2, 100));
    expect(buf.active).toBe(false);
    buf.restart(10);
    expect([buf.active, buf.from, buf.length]).toEqual([true, 10, 0]);
    buf.hold(sized(11, 200));
    expect(buf.take().map((x) => x.seq)).toEqual([11]);
    expect([buf.active, buf.length]).toEqual([false, 0]);
  });
});

describe('RingBuffer', () => {
  it('keeps the newest events and finds them by seq', () => {
    const ring = new RingBuffer(3);
    expect(ring.covers(0)).toBe(false);
    for (let s = 5; s <= 9; s++) ring.push(d(s));
    expect(ring.size).toBe(3);
    expect(ring.minSeq).toBe(7);
    expect([6, 7, 8, 9, 10].map((s) => ring.get(s)?.seq)).toEqual([undefined, 7, 8, 9, undefined]);
    expect(ring.covers(6)).toBe(true);
    expect(ring.covers(5)).toBe(false);
  });

  it('refuses a seq that does not follow the newest (the hub clears it on a jump)', () => {
    const ring = new RingBuffer(3);
    ring.push(d(1));
    expect(() => ring.push(d(3))).toThrow(/contiguous/);
    ring.clear();
    ring.push(d(3));
    expect(ring.minSeq).toBe(3);
  });

  it('prepends older events from a warm-up read, keeping the newest', () => {
    const ring = new RingBuffer(4);
    ring.push(d(10));
    ring.push(d(11));
    ring.prependOlder([d(6), d(7), d(8), d(9)]);
    expect(ring.minSeq).toBe(8);
    expect([8, 9, 10, 11].map((s) => ring.get(s)?.seq)).toEqual([8, 9, 10, 11]);
    ring.push(d(12));
    expect(ring.minSeq).toBe(9);
    expect(() => ring.prependOlder([d(3)])).toThrow();
  });

  describe('matching (the held events of some subjects, without testing every entry)', () => {
    const on = (seq: number, subject: string): Delivery => ({ ...d(seq), subject });
    /** What matching() must equal: every held entry in (after, until] tested one by one. */
    const scan = (ring: RingBuffer, after: number, until: number, m: (s: string) => boolean) => {
      const out: number[] = [];
      for (let s = after + 1; s <= until; s++) {
        const x = ring.get(s);
        if (x && m(x.subject)) out.push(s);
      }
      return out;
    };
    const seqs = (l: Delivery[] | null) => l?.map((x) => x.seq) ?? null;

    it('equals a scan of the entries while the ring fills, evicts, is cleared and warmed again', () => {
      let seed = 7;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const subjects = ['t.a', 't.b', 't.c', 't.d.x', 't.d.y', 'u.a'];
      const tests: [string, (s: string) => boolean][] = [
        ['t.a', (s) => s === 't.a'],
        ['t.d.>', (s) => s.startsWith('t.d.')],
        ['t.a or u.a', (s) => s === 't.a' || s === 'u.a'],
        ['none', () => false],
        ['all', () => true],
      ];
      const ring = new RingBuffer(60);
      let next = 1;
      let answered = 0;
      for (let round = 0; round < 400; round++) {
        const burst = Math.floor(random() * 7);
        for (let i = 0; i < burst; i++) ring.push(on(next++, subjects[Math.floor(random() * subjects.length)]));
        if (round === 150) {
          ring.clear();
          ring.push(on(next++, 't.a'));
        }
        if (round === 151) {
          ring.prependOlder(Array.from({ length: 30 }, (_, i) => on(next - 31 + i, subjects[i % subjects.length])));
        }
        const min = ring.minSeq ?? next;
        const after = min - 1 + Math.floor(random() * 10);
        const until = next - 1 - Math.floor(random() * 5);
        for (const [, m] of tests) {
          const got = seqs(ring.matching(after, until, m));
          if (got === null) continue;
          answered++;
          expect([after, until, got]).toEqual([after, until, scan(ring, after, until, m)]);
        }
      }
      // Most questions were answered from the lists, so the comparison is not vacuous.
      expect(answered).toBeGreaterThan(800);
    });

    it('says null when it does not hold the range, and when scanning is as cheap', () => {
      const ring = new RingBuffer(100);
      for (let s = 1; s <= 200; s++) ring.push(on(s, `t.${s % 2}`));
      const zero = (x: string) => x === 't.0';
      expect(ring.matching(99, 200, zero)).toBeNull(); // 100 is gone
      expect(ring.matching(150, 201, zero)).toBeNull(); // 201 not there yet
      expect(seqs(ring.matching(190, 200, zero))).toEqual([192, 194, 196, 198, 200]);
      expect(ring.matching(200, 200, zero)).toEqual([]);
      // Nine subjects each matched: more lists than it merges.
      const many = new RingBuffer(100);
      for (let s = 1; s <= 100; s++) many.push(on(s, `t.${s % 10}`));
      expect(many.matching(0, 100, (x) => x !== 't.0')).toBeNull();
      expect(seqs(many.matching(0, 100, (x) => x === 't.3'))).toEqual([3, 13, 23, 33, 43, 53, 63, 73, 83, 93]);
      // As many distinct subjects as entries: the lists would cost more than the scan.
      const distinct = new RingBuffer(100);
      for (let s = 1; s <= 100; s++) distinct.push(on(s, `t.${s}`));
      expect(distinct.matching(0, 100, (x) => x === 't.7')).toBeNull();
    });

    it('keeps finding events of a subject long after its list was compacted', () => {
      const ring = new RingBuffer(1500);
      for (let s = 1; s <= 10_000; s++) ring.push(on(s, s % 1000 === 0 ? 'rare' : 'common'));
      expect(seqs(ring.matching(8500, 10_000, (x) => x === 'rare'))).toEqual([9000, 10_000]);
      expect(ring.matching(8500, 10_000, (x) => x === 'common')?.length).toBe(1498);
    });
  });

  it('a zero-capacity ring holds nothing', () => {
    const ring = new RingBuffer(0);
    ring.push(d(1));
    expect(ring.size).toBe(0);
    expect(ring.covers(1)).toBe(false);
  });
});

describe('Semaphore', () => {
  it('grants at most its limit and hands slots to waiters in order; aborted waiters leave the queue', async () => {
    const sem = new Semaphore(1);
    const a = await sem.acquire(new AbortController().signal);
    const gone = new AbortController();
    const order: string[] = [];
    const b = sem.acquire(gone.signal).then((r) => order.push(r ? 'b' : 'b-aborted'));
    const c = sem.acquire(new AbortController().signal).then((r) => {
      order.push('c');
      return r;
    });
    expect(sem.waiting).toBe(2);
    gone.abort();
    await b;
    expect(sem.waiting).toBe(1);
    a?.();
    const releaseC = await c;
    expect(order).toEqual(['b-aborted', 'c']);
    expect(sem.inUse).toBe(1);
    releaseC?.();
    releaseC?.();
    expect(sem.inUse).toBe(0);
  });
});

describe('Semaphore shared by owners', () => {
  it('caps the slots of one owner and serves waiting owners round-robin', async () => {
    const sem = new Semaphore(2, 1);
    const signal = new AbortController().signal;
    const a = {};
    const b = {};
    const c = {};
    const order: string[] = [];
    const take = (owner: object, name: string) =>
      sem.acquire(signal, owner).then((release) => {
        order.push(name);
        return release;
      });
    const a1 = await take(a, 'a1');
    // a is at its cap: its second read waits although a slot is free; b takes that slot.
    const a2 = take(a, 'a2');
    const a3 = take(a, 'a3');
    const b1 = await take(b, 'b1');
    const b2 = take(b, 'b2');
    const c1 = take(c, 'c1');
    expect(sem.inUse).toBe(2);
    expect(sem.waiting).toBe(4);
    // A freed slot goes to the next owner in turn that is under its cap, not to whoever queued first:
    // a2's release passes over a3 (a was just served) and b2 (b is at its cap) to c1.
    a1?.();
    (await a2)?.();
    b1?.();
    (await b2)?.();
    (await c1)?.();
    (await a3)?.();
    expect(order).toEqual(['a1', 'b1', 'a2', 'c1', 'b2', 'a3']);
    expect(sem.inUse).toBe(0);
    expect(sem.waiting).toBe(0);
  });
});

describe('SharedCall', () => {
  it('joins callers to the next call issued after they asked, never to one already in flight', async () => {
    let value = 0;
    const pending: (() => void)[] = [];
    const shared = new SharedCall(
      () =>
        new Promise<number>((resolve) => {
          const v = ++value;
          pending.push(() => resolve(v));
        }),
    );
    const first = shared.get();
    const second = shared.get(); // asked while call 1 is in flight: waits for call 2
    const third = shared.get();
    expect(pending).toHaveLength(1);
    pending[0]();
    expect(await first).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(pending).toHaveLength(2);
    pending[1]();
    expect([await second, await third]).toEqual([2, 2]);
  });

  it('passes a failure to every caller of that call, and the next call is fresh', async () => {
    let fail = true;
    const shared = new SharedCall(async () => {
      if (fail) throw new Error('down');
      return 'up';
    });
    const results = await Promise.allSettled([shared.get(), shared.get()]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    expect(await shared.get()).toBe('up');
  });
});
