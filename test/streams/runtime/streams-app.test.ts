import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkBySize } from '../../../streams/runtime/streams-app.ts';

test('a send is cut into requests of at most the byte limit, in order, a message larger than the limit alone (no record batch over message.max.bytes)', () => {
  const msg = (n: number, key = 'k') => ({ key, value: Buffer.alloc(n) });
  const chunks = chunkBySize([['out', [msg(300), msg(300)]], ['changelog', [msg(500), msg(2000), msg(10)]]], 1000);
  assert.deepEqual(chunks.map((c) => c.map((t) => [t.topic, t.messages.map((m) => (m.value as Buffer).length)])), [
    [['out', [300, 300]]],
    [['changelog', [500]]],
    [['changelog', [2000]]],
    [['changelog', [10]]],
  ]);
  assert.deepEqual(chunkBySize([], 1000), []);
});
