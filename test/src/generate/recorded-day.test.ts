import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateRecordedDay, marketOpen, PROFILES } from '../../../src/generate/recorded-day.ts';
import { validateRecord } from '../../../streams/model/records.ts';
import { InstrumentCatalog } from '../../../streams/model/instruments.ts';

// Friday 2026-11-13 00:00 UTC → Monday 00:00: the bundled day's range.
const opts = { seed: 7, from: Date.UTC(2026, 10, 13), to: Date.UTC(2026, 10, 16) };
const day = generateRecordedDay(opts);

test('the same seed gives the same data; another seed does not', () => {
  const again = generateRecordedDay(opts);
  assert.deepEqual(again.candles.slice(-50), day.candles.slice(-50));
  assert.deepEqual(again.fills, day.fills);
  assert.notDeepEqual(generateRecordedDay({ ...opts, seed: 8 }).candles.slice(0, 10), day.candles.slice(0, 10));
});

test('nothing is quoted over the weekend; Friday closes at 22:00 and Sunday opens at 22:00 UTC', () => {
  assert.equal(marketOpen(Date.UTC(2026, 10, 13, 21, 59)), true);
  assert.equal(marketOpen(Date.UTC(2026, 10, 13, 22, 0)), false);
  assert.equal(marketOpen(Date.UTC(2026, 10, 15, 21, 59)), false);
  assert.equal(marketOpen(Date.UTC(2026, 10, 15, 22, 0)), true);
  for (const t of day.ticks) assert.ok(marketOpen(t.ts), `tick at ${new Date(t.ts).toISOString()}`);
  const weekend = day.candles.filter((c) => c.ts > Date.UTC(2026, 10, 13, 22) && c.ts <= Date.UTC(2026, 10, 15, 22));
  assert.equal(weekend.length, 0);
});

test('every generated record passes the import validation', () => {
  const catalog = new InstrumentCatalog(PROFILES.map((p) => p.name));
  for (const c of day.candles) validateRecord('candles', { ...c }, catalog);
  for (const t of day.ticks.slice(0, 20_000)) validateRecord('ticks', { ...t }, catalog);
  for (const o of day.orders) validateRecord('orders', { ...o }, catalog);
  for (const f of day.fills) validateRecord('fills', { ...f }, catalog);
});

test('there are gaps: the NZD_USD outage at 14:00 leaves 20 minutes without candles', () => {
  const nzd = day.candles.filter((c) => c.instrument === 'NZD_USD' && c.ts > Date.UTC(2026, 10, 13, 14) && c.ts <= Date.UTC(2026, 10, 13, 14, 20));
  assert.equal(nzd.length, 0);
  const eur = day.candles.filter((c) => c.instrument === 'EUR_USD');
  assert.ok(eur.length > 1400 && eur.length <= 1440, `EUR_USD has ${eur.length} candles`);
});

test('fills reference placed orders, and every order ends exactly once', () => {
  const placed = new Set(day.orders.filter((o) => o.kind === 'placed').map((o) => o.cid));
  const ends = day.orders.filter((o) => o.kind !== 'placed');
  assert.equal(ends.length, placed.size);
  assert.equal(new Set(ends.map((o) => o.cid)).size, placed.size);
  for (const f of day.fills) assert.ok(placed.has(f.cid));
  assert.ok(day.fills.some((f) => f.color === 'green') && day.fills.some((f) => f.color === 'blue'));
});
