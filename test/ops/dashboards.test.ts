/**
 * The Grafana dashboards (ops/grafana/dashboards/*.json) against the code:
 * every dashboard parses; every panel and query variable names a data source
 * that provisioning defines; every SQL panel's query, with Grafana's
 * variables and macros substituted, runs against an in-process TimescaleDB
 * migrated with sql/timescale (empty tables: the schema is what is checked);
 * every metric a Prometheus panel reads is one the pipeline exports
 * (streams/runtime/metrics.ts METRIC) or a recording rule; docker-compose
 * mounts what the provisioning reads. Never touches the shared stack.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { migrate } from '../../connectors/sink/migrate.ts';
import { METRIC, registry } from '../../streams/runtime/metrics.ts';
import {
  DASHBOARDS_DIR, GRAFANA_DIR, POSTGRES_TYPES, PROVISIONING_DIR, datasourceOf, interpolateMacros, interpolateSql, isPostgres, isPrometheus,
  loadDashboards, openEmbeddedTimescale, panelsOf, provisionedDatasources, quotedVariable, variablePromQL, variableSql, type Dashboard,
  type VariableValue,
} from '../../ops/grafana/dashboards.ts';

const ROOT = path.resolve(GRAFANA_DIR, '..', '..');
const dashboards = loadDashboards();
const provisioned = provisionedDatasources();
/** The bundled recorded day (data/recorded/2026-11-13/manifest.json). */
const RANGE = { from: new Date('2026-11-13T00:00:00Z'), to: new Date('2026-11-16T00:00:00Z') };

test('every dashboard JSON parses, with a unique uid, schemaVersion 39, unique panel ids and panels inside the 24-column grid', () => {
  const files = readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 2, `dashboards: ${files.join(', ')}`);
  assert.equal(dashboards.length, files.length);
  assert.equal(new Set(dashboards.map((d) => d.dashboard.uid)).size, dashboards.length, 'uids are unique');
  for (const { slug, dashboard: d } of dashboards) {
    assert.ok(d.uid && d.title, `${slug}: uid and title`);
    assert.equal(d.schemaVersion, 39, `${slug}: schemaVersion`);
    const all = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    assert.equal(new Set(all.map((p) => p.id)).size, all.length, `${slug}: panel ids are unique`);
    for (const p of all) assert.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${slug} "${p.title}": gridPos ${JSON.stringify(p.gridPos)}`);
  }
});

test('the two dashboards of issue 7: pipeline analytics on TimescaleDB, operations on Prometheus', () => {
  const titles = (d: Dashboard) => panelsOf(d).map((p) => p.title.toLowerCase()).join(' | ');
  const analytics = dashboards.find((d) => d.dashboard.uid === 'sep-pipeline-analytics')?.dashboard;
  const operations = dashboards.find((d) => d.dashboard.uid === 'sep-operations')?.dashboard;
  assert.ok(analytics && operations);
  for (const word of ['candles 1h', 'eligibility', 'markout', 'k_eff', 'cap_eff_bps', 'spread', 'allocation']) assert.ok(titles(analytics).includes(word), `analytics has a "${word}" panel: ${titles(analytics)}`);
  const exprs = panelsOf(operations).flatMap((p) => p.targets ?? []).map((t) => t.expr ?? '').join('\n');
  for (const m of [METRIC.gatesBlobAge, METRIC.rollingEligibleCount, METRIC.rollingCooldown, METRIC.consumerLag, METRIC.sinkRows, METRIC.sinkPaused, METRIC.deadLetters, METRIC.markoutAvgBps]) {
    assert.ok(exprs.includes(m), `operations reads ${m}`);
  }
  assert.ok(panelsOf(analytics).every((p) => isPostgres(p.datasource)), 'analytics: TimescaleDB only');
  assert.ok(panelsOf(operations).every((p) => isPrometheus(p.datasource)), 'operations: Prometheus only');
});

test('every panel, query and variable names a data source uid that provisioning defines, with its type', () => {
  assert.deepEqual(provisioned.map((d) => d.uid).sort(), ['sep-prometheus', 'sep-timescaledb']);
  const byUid = new Map(provisioned.map((d) => [d.uid, d]));
  const sameType = (a: string | undefined, b: string) => a === b || (POSTGRES_TYPES.includes(a ?? '') && POSTGRES_TYPES.includes(b));
  for (const { slug, dashboard: d } of dashboards) {
    const refs = [
      ...panelsOf(d).flatMap((p) => [{ at: `panel "${p.title}"`, ref: p.datasource }, ...(p.targets ?? []).map((t) => ({ at: `panel "${p.title}" query ${t.refId}`, ref: datasourceOf(p, t) }))]),
      ...d.templating.list.filter((v) => v.type === 'query').map((v) => ({ at: `variable ${v.name}`, ref: v.datasource })),
    ];
    for (const { at, ref } of refs) {
      const ds = ref?.uid ? byUid.get(ref.uid) : undefined;
      assert.ok(ds, `${slug} ${at}: data source ${JSON.stringify(ref)} is not provisioned (uids: ${[...byUid.keys()].join(', ')})`);
      assert.ok(sameType(ref!.type, ds.type), `${slug} ${at}: type ${ref!.type} but ${ds.uid} is ${ds.type}`);
    }
  }
});

test('macros: $__timeFilter / $__timeFrom / $__timeTo as Grafana writes them; another macro is refused', () => {
  assert.equal(interpolateMacros('WHERE $__timeFilter(coalesce(a, b)) AND x < $__timeTo() AND y > $__timeFrom()', RANGE),
    "WHERE coalesce(a, b) BETWEEN '2026-11-13T00:00:00Z' AND '2026-11-16T00:00:00Z' AND x < '2026-11-16T00:00:00Z' AND y > '2026-11-13T00:00:00Z'");
  assert.throws(() => interpolateMacros('SELECT $__timeGroup(ts, 5m)', RANGE), /\$__timeGroup is not supported/);
  const vars: Record<string, VariableValue> = { run: { values: ["o'brien"], quoted: false }, i: { values: ['EUR_USD', 'USD_JPY'], quoted: true } };
  assert.equal(interpolateSql("run_id = '$run' AND instrument IN (${i})", RANGE, vars), "run_id = 'o''brien' AND instrument IN ('EUR_USD','USD_JPY')");
});

const db = await openEmbeddedTimescale();
after(() => db.close());
await migrate(db.client);

/** Values a variable gets in the test: its current value, or for an instrument list two real instruments. */
function testVariables(d: Dashboard): Record<string, VariableValue> {
  return Object.fromEntries(d.templating.list.map((v) => {
    const current = [v.current?.value ?? []].flat().filter((x) => x !== '$__all');
    const values = current.length > 0 ? current : ['EUR_USD', 'USD_JPY'];
    return [v.name, { values, quoted: quotedVariable(v) }];
  }));
}

for (const { slug, dashboard: d } of dashboards) {
  const sqlPanels = panelsOf(d).filter((p) => (p.targets ?? []).some((t) => isPostgres(datasourceOf(p, t))));
  if (sqlPanels.length === 0) continue;
  test(`${slug}: every SQL query (variables and macros substituted) runs against sql/timescale; time series have a "time" column`, async () => {
    const vars = testVariables(d);
    const queries = [
      ...d.templating.list.flatMap((v) => (variableSql(v) ? [{ at: `variable ${v.name}`, sql: variableSql(v)!, format: 'table' }] : [])),
      ...sqlPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ at: `panel "${p.title}" ${t.refId}`, sql: t.rawSql ?? '', format: t.format ?? 'time_series' }))),
    ];
    assert.ok(queries.length >= 10, `${queries.length} SQL queries`);
    for (const q of queries) {
      assert.ok(q.sql.trim(), `${q.at}: rawSql`);
      const sql = interpolateSql(q.sql, RANGE, vars);
      assert.doesNotMatch(sql, /\$\{?\w/, `${q.at}: an unknown variable or macro is left in\n${sql}`);
      let fields: string[];
      try {
        fields = (await db.db.query(sql)).fields.map((f) => f.name);
      } catch (err) {
        assert.fail(`${q.at}: ${(err as Error).message}\n${sql}`);
      }
      if (q.format === 'time_series') assert.ok(fields.includes('time'), `${q.at}: a time series query needs a column "time", got ${fields.join(', ')}`);
    }
  });
}

// ---------------------------------------------------------------- Prometheus

/** Identifiers of a PromQL expression that are metric names: not functions, keywords, labels, durations or strings. */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);
  const names: string[] = [];
  for (const m of s.matchAll(/(?<![\w.])[A-Za-z_:][\w:]*/g)) {
    if (s.slice(m.index + m[0].length).trimStart().startsWith('(')) continue; // a function
    if (!keywords.has(m[0].toLowerCase())) names.push(m[0]);
  }
  return names;
}

test('metricNames reads PromQL the way the dashboards write it', () => {
  assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le, application) (rate(sep_processing_seconds_bucket[$__rate_interval])))'), ['sep_processing_seconds_bucket']);
  assert.deepEqual(metricNames('(a_total > b_seconds) and on() (c == 1) offset 5m'), ['a_total', 'b_seconds', 'c']);
  assert.deepEqual(metricNames('markout_avg_bps{symbol=~"$symbol", horizon_ms=~"a|b"} * 1e4'), ['markout_avg_bps']);
});

test('every metric a Prometheus panel or variable reads is exported by streams/runtime/metrics.ts or is a recording rule', async () => {
  const exported = new Set<string>(Object.values(METRIC));
  const histograms = new Set((await registry.getMetricsAsJSON()).filter((m) => String(m.type) === 'histogram').map((m) => m.name));
  const promDir = path.join(ROOT, 'ops', 'prometheus');
  const recorded = new Set(readdirSync(promDir).filter((f) => f.endsWith('.rules.yml'))
    .flatMap((f) => [...readFileSync(path.join(promDir, f), 'utf8').matchAll(/^\s*-?\s*record:\s*(\S+)/gm)].map((m) => m[1]!)));
  const builtIn = new Set(['up']); // Prometheus' own series per scrape target
  const known = (name: string) => exported.has(name) || recorded.has(name) || builtIn.has(name)
    || histograms.has(name.replace(/_(?:bucket|sum|count)$/, ''));
  let checked = 0;
  for (const { slug, dashboard: d } of dashboards) {
    const exprs = [
      ...panelsOf(d).flatMap((p) => (p.targets ?? []).filter((t) => isPrometheus(datasourceOf(p, t))).map((t) => ({ at: `panel "${p.title}" ${t.refId}`, expr: t.expr ?? '' }))),
      ...d.templating.list.flatMap((v) => {
        const q = variablePromQL(v);
        const selector = q?.match(/^\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*$/)?.[1];
        return q ? [{ at: `variable ${v.name}`, expr: selector ?? q }] : [];
      }),
    ];
    for (const { at, expr } of exprs) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${slug} ${at}: no metric in ${expr}`);
      for (const n of names) {
        assert.ok(known(n), `${slug} ${at}: ${n} is not in METRIC (streams/runtime/metrics.ts) nor a recording rule`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 20, `checked ${checked} metric references`);
});

// ---------------------------------------------------------------- wiring

test('docker-compose mounts the provisioning and the dashboards where the dashboards provider reads them', () => {
  const compose = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
  const provider = readFileSync(path.join(PROVISIONING_DIR, 'dashboards', 'dashboards.yml'), 'utf8');
  const target = provider.match(/^\s+path:\s*(\S+)\s*$/m)?.[1];
  assert.equal(target, '/etc/grafana/dashboards');
  assert.match(compose, /- \.\/ops\/grafana\/provisioning:\/etc\/grafana\/provisioning:ro/);
  assert.match(compose, new RegExp(`- \\./ops/grafana/dashboards:${target}:ro`));
  const home = compose.match(/GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH:\s*(\S+)/)?.[1];
  assert.ok(home?.startsWith(`${target}/`) && dashboards.some((d) => path.basename(d.file) === path.basename(home)), `home dashboard ${home}`);
});
