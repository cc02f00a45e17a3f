/**
 * The HTTP/1.1 chunk (`<size in hex>\r\n<bytes>\r\n`) an SSE stream's turn of text frames goes out as, built
 * once and shared by every stream sent the same frames: at a live event, all of them. Written straight to the
 * socket (sse-outbox.ts), one write of one shared buffer per stream, where `res.write` would encode the text
 * again for each stream and write the chunk's size line, the text and the line end as three buffers.
 * The framing is Node's own (what `res.write` sends on a chunked response); sse-chunk.spec.ts reads it with
 * Node's HTTP client.
 */

let lastFrames: readonly string[] = [];
let lastChunk: Buffer | null = null;

/** The chunk holding these frames back to back; the same buffer again for the same frames. Never empty. */
export function sseChunk(frames: readonly string[]): Buffer {
  if (lastChunk !== null && sameFrames(frames, lastFrames)) return lastChunk;
  const body = frames.length === 1 ? frames[0] : frames.join('');
  const size = Buffer.byteLength(body);
  if (size === 0) throw new RangeError('an empty chunk would end the response');
  const head = `${size.toString(16)}\r\n`;
  const chunk = Buffer.allocUnsafe(head.length + size + 2);
  let o = chunk.write(head, 0, 'latin1');
  o += chunk.write(body, o);
  chunk.write('\r\n', o, 'latin1');
  lastFrames = frames;
  lastChunk = chunk;
  return chunk;
}

/** Same frames in the same order (the frame strings are shared, so this is mostly a reference check). */
function sameFrames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
