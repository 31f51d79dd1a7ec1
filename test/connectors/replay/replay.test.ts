import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replayNamespace } from '../../../connectors/replay/replay.ts';
import { defaultReplayRunId } from '../../../src/cli/replay.ts';

test('a replay\'s default run id is its start time in UTC and 4 hex digits; its topics live under replay.<id>.', () => {
  assert.equal(defaultReplayRunId(Date.UTC(2026, 10, 22, 9, 5, 7), 0.5), 'replay-20261122-090507-8000');
  assert.equal(replayNamespace('r1'), 'replay.r1.');
});
