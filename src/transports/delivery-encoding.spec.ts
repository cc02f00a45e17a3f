import { describe, expect, it } from '@jest/globals';
import { Decoder, Encoder, type Packet, PacketType } from 'socket.io-parser';
import type { Delivery } from '../fanout/fanout.types.js';
import { socketEventPacket, sseDeliveryFrame } from './delivery-encoding.js';

const delivery: Delivery = {
  cursor: 'abc_7',
  seq: 7,
  subject: 'events.acme.x',
  event: { specversion: '1.0', id: 'e"\n\u2028', data: { nested: [1, 'two', null], text: 'line\r\nbreak' } },
};

describe('socketEventPacket', () => {
  it('is exactly what socket.io-parser encodes for emit("event", {subscription, ...delivery})', () => {
    const [expected] = new Encoder().encode({
      type: PacketType.EVENT,
      nsp: '/',
      data: ['event', { subscription: 's"1', ...delivery }],
    });
    expect(socketEventPacket('s"1', delivery)).toBe(expected);
  });

  it('decodes on the client side to the same message', () => {
    const decoder = new Decoder();
    let packet: Packet | undefined;
    decoder.on('decoded', (p: Packet) => {
      packet = p;
    });
    decoder.add(socketEventPacket('s12', delivery));
    expect(packet?.type).toBe(PacketType.EVENT);
    expect(packet?.data).toEqual(['event', { subscription: 's12', ...delivery }]);
  });

  it('serialises a delivery once, whatever the number of clients', () => {
    const d = { ...delivery };
    const spy = JSON.stringify;
    let calls = 0;
    JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => {
      if (args[0] === d) calls++;
      return spy(...args);
    }) as typeof JSON.stringify;
    try {
      for (let i = 0; i < 100; i++) socketEventPacket(`s${i}`, d);
      for (let i = 0; i < 100; i++) sseDeliveryFrame(d);
    } finally {
      JSON.stringify = spy;
    }
    expect(calls).toBe(2);
  });
});

describe('sseDeliveryFrame', () => {
  it('is one id line and one data line holding the delivery JSON', () => {
    const frame = sseDeliveryFrame(delivery);
    expect(frame).toBe(`id: abc_7\ndata: ${JSON.stringify(delivery)}\n\n`);
    expect(frame.split('\n')).toHaveLength(4);
  });
});
