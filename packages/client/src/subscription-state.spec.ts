import { describe, expect, it, jest } from '@jest/globals';
import { SubscriptionState } from './subscription-state.js';
import { streamUrl } from './sse-transport.js';
import type { Delivery, GapNotice, StorageLike, SubscribeOptions } from './types.js';

class MemoryStorage implements StorageLike {
  readonly map = new Map<string, string>();
  getItem(key: string): string | null {
    return this.map.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.map.set(key, value);
  }
  removeItem(key: string): void {
    this.map.delete(key);
  }
}

const delivery = (seq: number, epoch = 'e1'): Delivery => ({
  cursor: `${epoch}_${seq}`,
  seq,
  subject: 'events.acme.x',
  event: { specversion: '1.0', id: `id-${epoch}-${seq}`, source: '/webhooks/acme', type: 'x' },
});

function make(options: SubscribeOptions = {}, storage: StorageLike | null = new MemoryStorage()) {
  const got: Delivery[] = [];
  const errors: unknown[] = [];
  const state = new SubscriptionState(
    ['events.acme.>'],
    { onDelivery: (d) => got.push(d), onCallbackError: (e) => errors.push(e) },
    options,
    storage,
  );
  return { state, got, errors };
}

describe('SubscriptionState: start position', () => {
  it('an explicit cursor wins over the persisted one and over from', () => {
    const storage = new MemoryStorage();
    storage.setItem('k', 'e1_5');
    const { state } = make({ cursor: 'e1_9', persistKey: 'k', from: 'earliest' }, storage);
    expect(state.startRequest()).toEqual({ cursor: 'e1_9' });
  });

  it('the persisted cursor wins over from', () => {
    const storage = new MemoryStorage();
    storage.setItem('k', 'e1_5');
    expect(make({ persistKey: 'k', from: 'earliest' }, storage).state.startRequest()).toEqual({ cursor: 'e1_5' });
  });

  it('from, when no cursor is known; nothing (the gateway default, latest) without from', () => {
    expect(make({ persistKey: 'k', from: 'earliest' }).state.startRequest()).toEqual({ from: 'earliest' });
    expect(make().state.startRequest()).toEqual({});
  });

  it('resumes from the acknowledged start position before any delivery, and persists it', () => {
    const storage = new MemoryStorage();
    const { state } = make({ persistKey: 'k' }, storage);
    state.accepted('e1_41');
    expect(state.startRequest()).toEqual({ cursor: 'e1_41' });
    expect(storage.getItem('k')).toBe('e1_41');
  });

  it('survives a storage that throws', () => {
    const broken: StorageLike = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
      removeItem: () => undefined,
    };
    const { state, got } = make({ persistKey: 'k', from: 'earliest' }, broken);
    expect(state.startRequest()).toEqual({ from: 'earliest' });
    state.deliver(delivery(1));
    expect(got).toHaveLength(1);
  });
});

describe('SubscriptionState: dedupe by seq', () => {
  it('drops a delivery whose seq is not above the last one seen, and resumes from the last cursor', () => {
    const storage = new MemoryStorage();
    const { state, got } = make({ persistKey: 'k' }, storage);
    for (const seq of [1, 2, 3, 2, 3, 4, 4, 1, 5]) state.deliver(delivery(seq));
    expect(got.map((d) => d.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(state.duplicatesDropped).toBe(4);
    expect(state.cursor).toBe('e1_5');
    expect(state.startRequest()).toEqual({ cursor: 'e1_5' });
    expect(storage.getItem('k')).toBe('e1_5');
  });

  it('an ack after deliveries keeps the seq mark (a resume must not replay what was seen)', () => {
    const { state, got } = make();
    state.deliver(delivery(7));
    state.accepted('e1_7');
    state.deliver(delivery(7));
    state.deliver(delivery(8));
    expect(got.map((d) => d.seq)).toEqual([7, 8]);
  });

  it('persists only after the callback ran, and a throwing callback neither stops the stream nor skips the cursor', () => {
    const storage = new MemoryStorage();
    const seen: (string | null)[] = [];
    const errors: unknown[] = [];
    const state = new SubscriptionState(
      ['events.>'],
      {
        onDelivery: (d) => {
          seen.push(storage.getItem('k'));
          if (d.seq === 2) throw new Error('boom');
        },
        onCallbackError: (e) => errors.push(e),
      },
      { persistKey: 'k' },
      storage,
    );
    state.deliver(delivery(1));
    state.deliver(delivery(2));
    state.deliver(delivery(3));
    expect(seen).toEqual([null, 'e1_1', 'e1_2']);
    expect(errors).toHaveLength(1);
    expect(storage.getItem('k')).toBe('e1_3');
  });
});

describe('SubscriptionState: gap notices', () => {
  it('resets the seq mark (a new epoch restarts sequences), moves to resumeCursor and calls onGap', () => {
    const onGap = jest.fn<(n: GapNotice) => void>();
    const storage = new MemoryStorage();
    const { state, got } = make({ onGap, persistKey: 'k' }, storage);
    state.deliver(delivery(100, 'old'));
    state.gap({ from: 'old_100', resumeCursor: 'new_0' });
    expect(onGap).toHaveBeenCalledWith({ from: 'old_100', resumeCursor: 'new_0' });
    expect(storage.getItem('k')).toBe('new_0');
    state.deliver(delivery(1, 'new'));
    state.deliver(delivery(2, 'new'));
    expect(got.map((d) => d.cursor)).toEqual(['old_100', 'new_1', 'new_2']);
  });
});

describe('SubscriptionState: refusals', () => {
  it('forgets a refused cursor that came from storage and falls back to from', () => {
    const storage = new MemoryStorage();
    storage.setItem('k', 'garbage');
    const { state } = make({ persistKey: 'k', from: 'earliest' }, storage);
    expect(state.startRequest()).toEqual({ cursor: 'garbage' });
    expect(state.forgetStoredCursor()).toBe(true);
    expect(state.startRequest()).toEqual({ from: 'earliest' });
    expect(storage.getItem('k')).toBeNull();
  });

  it('does not forget an explicit cursor', () => {
    expect(make({ cursor: 'garbage' }).state.forgetStoredCursor()).toBe(false);
  });

  it('fail() rejects ready, calls onError once and stops deliveries', async () => {
    const onError = jest.fn();
    const { state, got } = make({ onError });
    const { HookstreamError } = await import('./types.js');
    state.fail(new HookstreamError('forbidden', 'no'));
    state.fail(new HookstreamError('forbidden', 'again'));
    await expect(state.ready).rejects.toMatchObject({ code: 'forbidden' });
    expect(onError).toHaveBeenCalledTimes(1);
    state.deliver(delivery(1));
    expect(got).toHaveLength(0);
  });

  it('accepted() resolves ready', async () => {
    const { state } = make();
    state.accepted('e1_0');
    await expect(state.ready).resolves.toBeUndefined();
  });
});

describe('streamUrl', () => {
  it('puts every pattern, the start and the token in the query, under a base path', () => {
    const url = new URL(streamUrl('https://h.example/hs', ['events.a.>', 'events.b.*'], { cursor: 'e_1' }, 'tok en'));
    expect(url.pathname).toBe('/hs/v1/stream');
    expect(url.searchParams.getAll('subject')).toEqual(['events.a.>', 'events.b.*']);
    expect(url.searchParams.get('cursor')).toBe('e_1');
    expect(url.searchParams.get('from')).toBeNull();
    expect(url.searchParams.get('access_token')).toBe('tok en');
    const anon = new URL(streamUrl('http://127.0.0.1:1', ['events.>'], { from: 'earliest' }));
    expect(anon.searchParams.get('from')).toBe('earliest');
    expect(anon.searchParams.has('access_token')).toBe(false);
  });
});
