import { jest } from '@jest/globals';
import { SharedTicker } from './keepalive.js';

class Member {
  pings = 0;
  ping(): void {
    this.pings++;
  }
}

describe('SharedTicker', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('pings every member from one timer, only while someone is enrolled', () => {
    const ticker = new SharedTicker<Member>(1_000);
    const a = new Member();
    const b = new Member();
    expect(jest.getTimerCount()).toBe(0);
    ticker.add(a);
    ticker.add(b);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(2_000);
    expect([a.pings, b.pings]).toEqual([2, 2]);
    ticker.delete(a);
    jest.advanceTimersByTime(1_000);
    expect([a.pings, b.pings]).toEqual([2, 3]);
    ticker.delete(b);
    expect(jest.getTimerCount()).toBe(0);
    expect(ticker.size).toBe(0);
  });

  it('lets a member leave while it is pinged', () => {
    const ticker = new SharedTicker<Member>(1_000);
    const leaver = { pings: 0, ping: () => ticker.delete(leaver) };
    const stays = new Member();
    ticker.add(leaver as unknown as Member);
    ticker.add(stays);
    jest.advanceTimersByTime(1_000);
    expect(stays.pings).toBe(1);
    expect(ticker.list()).toEqual([stays]);
  });

  it('spreads the pings over the period: each member once per period, never all in one tick', () => {
    const ticker = new SharedTicker<Member>(15_000);
    const members = Array.from({ length: 150 }, () => new Member());
    for (const m of members) ticker.add(m);
    const pinged = () => members.reduce((n, m) => n + m.pings, 0);
    let most = 0;
    for (let elapsed = 0; elapsed < 15_000; elapsed += 100) {
      const before = pinged();
      jest.advanceTimersByTime(100);
      most = Math.max(most, pinged() - before);
    }
    expect(members.every((m) => m.pings === 1)).toBe(true);
    expect(most).toBeLessThanOrEqual(20);
    ticker.add(members[0]);
    expect(ticker.size).toBe(150);
  });
});
