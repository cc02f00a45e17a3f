import { describe, expect, it } from '@jest/globals';
import { givePageBuffer, takePageBuffer } from './page-buffers.js';

describe('page buffers', () => {
  it('hands out exactly the size asked, and reuses the memory of one given back', () => {
    const a = takePageBuffer(200_000);
    expect(a.length).toBe(200_000);
    const b = takePageBuffer(200_000);
    expect(b.buffer).not.toBe(a.buffer); // a is still lent out
    givePageBuffer(a);
    const c = takePageBuffer(150_000);
    expect(c.length).toBe(150_000);
    expect(c.buffer).toBe(a.buffer);
    givePageBuffer(b);
    givePageBuffer(c);
  });

  it('keeps nothing it did not hand out, nothing given twice, and nothing small or huge', () => {
    const foreign = Buffer.allocUnsafeSlow(200_000);
    givePageBuffer(foreign);
    expect(takePageBuffer(200_000).buffer).not.toBe(foreign.buffer);

    const once = takePageBuffer(100_000);
    givePageBuffer(once);
    givePageBuffer(once);
    const x = takePageBuffer(100_000);
    const y = takePageBuffer(100_000);
    expect(x.buffer === once.buffer && y.buffer === once.buffer).toBe(false);

    const small = takePageBuffer(1_000);
    givePageBuffer(small);
    expect(takePageBuffer(100_000).buffer).not.toBe(small.buffer);
    const huge = takePageBuffer(2_000_000);
    givePageBuffer(huge);
    expect(takePageBuffer(2_000_000).buffer).not.toBe(huge.buffer);
  });
});
