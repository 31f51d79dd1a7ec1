/**
 * The first vertical slice on the real stack: `sep import` (with bad lines)
 * → md.candles.v1 → `sep run` (features) → features.v1 → TimescaleDB, and the
 * rejected lines in dlq.v1, the latest features in Redis.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import avro from 'avsc';
import { createNamespace, readTopic, sep, urls } from './helpers.ts';
import { generateRecordedDay } from '../../src/generate/recorded-day.ts';
import { initialFeatureState, nextFeature, type Feature } from '../../streams/features/features.ts';
import type { Candle } from '../../streams/model/records.ts';

const ns = createNamespace('slice');
const dir = mkdtempSync(path.join(os.tmpdir(), 'sep-slice-'));
// Two hours of one instrument pair, from the generator, plus one bad line of each kind.
const day = generateRecordedDay({ seed: 99, from: Date.UTC(2026, 10, 13, 8), to: Date.UTC(2026, 10, 13, 10) });
const good = day.candles.filter((c) => c.instrument === 'EUR_USD' || c.instrument === 'USD_JPY');
const iso = (c: Candle) => JSON.stringify({ ...c, ts: new Date(c.ts).toISOString() });
const lines = good.map(iso);
const bad = [
  { at: 5, text: '{"instrument": "EUR_USD", "ts": ', reason: 'malformed' },
  { at: 10, text: JSON.stringify({ ...good[0], ts: '2026-11-13T11:00:00Z', close: -1.2 }), reason: 'invalid_value' },
  { at: 15, text: JSON.stringify({ ...good[0], ts: '2026-11-13T11:00:00Z', open: 'NaN' }), reason: 'invalid_value' },
  { at: 20, text: JSON.stringify({ ...good[0], ts: '2026-11-13T11:00:00Z', high: 1.0, low: 1.2 }), reason: 'invalid_value' },
  { at: 25, text: JSON.stringify({ ...good[0], ts: '2026-11-13T11:00:00Z', venue: 'lmax' }), reason: 'unknown_field' },
  { at: 30, text: JSON.stringify({ ...good[0], ts: '2026-11-13T11:00:00Z', instrument: 'XAU_EUR' }), reason: 'unknown_instrument' },
];
for (const b of [...bad].reverse()) lines.splice(b.at, 0, b.text);
const file = path.join(dir, 'candles.ndjson');
writeFileSync(file, lines.join('\n') + '\n');
const badLineNumbers = bad.map((b) => lines.indexOf(b.text) + 1);

test('sep import reports each bad line with file and line, imports the rest, dead-letters the bad ones', async () => {
  const r = await sep(['import', file], ns.env);
  assert.equal(r.code, 3, `exit 3 when lines were rejected\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, new RegExp(`${good.length} imported, ${bad.length} rejected of ${lines.length} lines`));
  for (const [i, b] of bad.entries()) assert.match(r.stdout, new RegExp(`candles\\.ndjson:${badLineNumbers[i]}: ${b.reason}`));
  const candles = await readTopic(`${ns.prefix}md.candles.v1`);
  assert.equal(candles.length, good.length);
  for (const m of candles) assert.ok(['EUR_USD', 'USD_JPY'].includes(m.key!));
  const dead = await readTopic(`${ns.prefix}dlq.v1`);
  assert.equal(dead.length, bad.length);
  const dlqType = avro.Type.forSchema(JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(path.join(import.meta.dirname, '../../schemas/avro/dead-letter.avsc'), 'utf8'))));
  const letters = dead.map((m) => dlqType.fromBuffer(m.value!.subarray(5)) as { reason: string; source_line: number; value: Buffer; source_file: string });
  assert.deepEqual(letters.map((l) => l.source_line).sort((a, b) => a - b), badLineNumbers);
  for (const l of letters) {
    const b = bad[badLineNumbers.indexOf(l.source_line)]!;
    assert.equal(l.reason, b.reason);
    assert.equal(l.value.toString(), b.text, 'the original bytes are kept');
    assert.equal(l.source_file, file);
  }
});

test('sep run computes features into features.v1, TimescaleDB and Redis', async () => {
  const r = await sep(['run', '--run-id', ns.runId, '--until-caught-up'], ns.env);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);

  // Independent recomputation of what each row must hold.
  const expected = new Map<string, Feature>();
  for (const inst of ['EUR_USD', 'USD_JPY']) {
    let state = initialFeatureState();
    for (const c of good.filter((x) => x.instrument === inst)) {
      const step = nextFeature(state, c);
      state = step.state;
      expected.set(`${inst}/${c.ts}`, step.feature);
    }
  }
  const features = await readTopic(`${ns.prefix}features.v1`);
  assert.equal(features.length, good.length);

  const db = new pg.Client({ connectionString: urls.DATABASE_URL });
  await db.connect();
  try {
    const { rows } = await db.query<{ instrument: string; ts: Date; bar_index: string; log_return: number | null; ewma_vol: number | null; atr14: number | null; volume_usd: number }>(
      'SELECT instrument, ts, bar_index, log_return, ewma_vol, atr14, volume_usd FROM features WHERE run_id = $1 ORDER BY instrument, ts', [ns.runId]);
    assert.equal(rows.length, good.length);
    for (const row of rows) {
      const e = expected.get(`${row.instrument}/${row.ts.getTime()}`);
      assert.ok(e, `unexpected row ${row.instrument} ${row.ts.toISOString()}`);
      assert.equal(Number(row.bar_index), e.bar_index);
      assert.equal(row.log_return, e.log_return);
      assert.equal(row.ewma_vol, e.ewma_vol);
      assert.equal(row.atr14, e.atr14);
      assert.equal(row.volume_usd, e.volume_usd);
    }
    const { rows: hyper } = await db.query(`SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'features'`);
    assert.equal(hyper.length, 1, 'features is a hypertable');
    const { rows: candleRows } = await db.query('SELECT count(*)::int AS n FROM candles WHERE run_id = $1', [ns.runId]);
    assert.equal(candleRows[0].n, good.length);
  } finally {
    await db.end();
  }

  const redis = new Redis(urls.REDIS_URL);
  try {
    const latest = await redis.hgetall(`${ns.prefix}features:latest`);
    const lastEur = good.filter((c) => c.instrument === 'EUR_USD').at(-1)!;
    assert.equal(JSON.parse(latest.EUR_USD!).ts, new Date(lastEur.ts).toISOString());
  } finally {
    redis.disconnect();
  }
});

test('a second sep run with the same run id writes nothing new (offsets stored with the rows)', async () => {
  const r = await sep(['run', '--run-id', ns.runId, '--until-caught-up'], ns.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /: 0 rows written/);
  assert.equal((await readTopic(`${ns.prefix}features.v1`)).length, good.length, 'no feature produced twice');
});

test('CSV import: a short row is rejected with its line, a file with an unknown column is refused at line 1, the other files still import', async () => {
  const csvNs = createNamespace('slice-csv');
  const rows = good.filter((c) => c.instrument === 'EUR_USD').slice(0, 5);
  const header = 'instrument,granularity,ts,open,high,low,close,volume,complete';
  const body = rows.map((c) => [c.instrument, c.granularity, new Date(c.ts).toISOString(), c.open, c.high, c.low, c.close, c.volume, c.complete].join(','));
  body.splice(2, 0, 'EUR_USD,M1,2026-11-13T12:00:00Z,1.1');
  const okFile = path.join(dir, 'candles-a.csv');
  writeFileSync(okFile, [header, ...body].join('\n') + '\n');
  const badFile = path.join(dir, 'candles-b.csv');
  writeFileSync(badFile, `${header},venue\n${body[0]},lmax\n`);
  const r = await sep(['import', okFile, badFile], csvNs.env);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /candles-a\.csv: candles → .*: 5 imported, 1 rejected of 6 lines/);
  assert.match(r.stdout, /candles-a\.csv:4: malformed: expected 9 columns, got 4/);
  assert.match(r.stdout, /file not imported: .*candles-b\.csv:1: unknown column venue/);
  assert.equal((await readTopic(`${csvNs.prefix}md.candles.v1`)).length, 5);
});
