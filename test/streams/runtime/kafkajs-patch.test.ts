import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
type Group = (args: { topic: string; partitionMetadata: { partitionId: number }[]; messages: { key: string }[]; partitioner: (a: { message: { key: string } }) => number }) => Record<string, { key: string }[]>;

test('the installed kafkajs groups producer messages with the O(n) patch (npm postinstall), with the same result as before', () => {
  const file = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  assert.match(readFileSync(file, 'utf8'), /sep: O\(n\) grouping/, 'run `npm ci` (postinstall: scripts/patch-kafkajs.mjs)');
  const group = require(file) as Group;
  const messages = Array.from({ length: 20_000 }, (_, i) => ({ key: `k${i % 7}` }));
  const partitioner = ({ message }: { message: { key: string } }) => Number(message.key.slice(1)) % 3;
  const got = group({ topic: 't', partitionMetadata: [0, 1, 2].map((partitionId) => ({ partitionId })), messages, partitioner });
  const expected: Record<string, { key: string }[]> = {};
  for (const m of messages) (expected[partitioner({ message: m })] ??= []).push(m);
  assert.deepEqual(got, expected, 'same partitions, same order within each');
  assert.deepEqual(group({ topic: 't', partitionMetadata: [], messages, partitioner }), {}, 'no metadata: nothing, as before');
});
