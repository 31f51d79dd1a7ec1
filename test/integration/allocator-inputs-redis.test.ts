/**
 * The allocator's live inputs from Redis on the real server: the kill switch
 * (`ops:kill_switch`) and the account's margin (`ops:account`, written by the
 * executor), as the pipeline polls them. Keys under the test's prefix.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createNamespace, urls } from './helpers.ts';
import { AccountWatcher, KillSwitchWatcher } from '../../connectors/redis/allocator-inputs.ts';

const ns = createNamespace('alloc-inputs');
const redis = new Redis(urls.REDIS_URL!);
after(async () => {
  await redis.del(`${ns.prefix}ops:kill_switch`, `${ns.prefix}ops:account`);
  redis.disconnect();
});
const settle = () => new Promise((r) => setTimeout(r, 120));

test('the kill switch follows ops:kill_switch ("1", "true", "on"; anything else or absent is off) and logs each change', async () => {
  const key = `${ns.prefix}ops:kill_switch`;
  const lines: string[] = [];
  const w = new KillSwitchWatcher(redis, key, (l) => lines.push(l), 50);
  await w.start();
  try {
    assert.equal(w.on, false);
    for (const [value, on] of [['1', true], ['off', false], ['TRUE', true], ['0', false], [' on ', true]] as const) {
      await redis.set(key, value);
      await settle();
      assert.equal(w.on, on, `${JSON.stringify(value)}`);
    }
    await redis.del(key);
    await settle();
    assert.equal(w.on, false);
    assert.ok(lines.some((l) => /ON: allocation increases blocked/.test(l)) && lines.some((l) => / is off$/.test(l)), lines.join('\n'));
  } finally {
    w.stop();
  }
});

test('the margin utilisation is marginUsed / (marginUsed + marginAvailable) from ops:account; a malformed value is absent and says what is expected', async () => {
  const key = `${ns.prefix}ops:account`;
  const lines: string[] = [];
  const w = new AccountWatcher(redis, key, (l) => lines.push(l), 50);
  await w.start();
  try {
    assert.equal(w.utilisation(), null);
    await redis.set(key, JSON.stringify({ marginUsed: 3000, marginAvailable: 7000 }));
    await settle();
    assert.equal(w.utilisation(), 0.3);
    await redis.set(key, '{"marginUsed":"lots"}');
    await settle();
    assert.equal(w.utilisation(), null);
    assert.equal(lines.filter((l) => /expected JSON \{"marginUsed": number ≥ 0, "marginAvailable": number ≥ 0\}/.test(l)).length, 1, 'logged once, not at every poll');
  } finally {
    w.stop();
  }
});
