/**
 * `npm run dashboards:render`: a PNG of every TimescaleDB panel of
 * ops/grafana/dashboards/*.json for the bundled recorded day, and
 * docs/dashboards/README.md listing each panel, its SQL and what it shows —
 * so a reader sees the dashboards without Grafana.
 *
 *   node --import tsx scripts/render-dashboards.ts [KNOB=VALUE ...]
 *
 * Nothing here touches the shared stack (its embedded database serves one
 * connection and other people use it). Instead, in-process:
 * 1. the offline path of the pipeline: TopologyTestDriver over
 *    pipelineTopology with resolvePipelineConfig({}) (defaults, no
 *    environment; KNOB=VALUE arguments override single knobs) on
 *    data/recorded/2026-11-13, then the gates blob stage with allocator-lite
 *    over its partials — as test/integration/execution.test.ts,
 *    gates.test.ts and allocation.test.ts do;
 * 2. an in-memory PGlite + TimescaleDB migrated with sql/timescale, loaded
 *    with the inputs and outputs through the sink's own mappings (TABLES,
 *    rowsOf, upsertSql) under run id RUN_ID, continuous aggregates refreshed;
 * 3. each panel's SQL with Grafana's variables (run_id = RUN_ID, every
 *    instrument) and macros (time range = the day's manifest range);
 * 4. the rows drawn as hand-built SVG (time series, candlesticks, state
 *    timeline, bar chart, table) rasterised by @resvg/resvg-js.
 * Output: docs/dashboards/<dashboard>-<panel>.png and README.md.
 */
import { createReadStream, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { Resvg } from '@resvg/resvg-js';
import { TopologyTestDriver } from '../streams/runtime/test-driver.ts';
import { TOPICS } from '../streams/runtime/topics.ts';
import { partitionForKey } from '../streams/runtime/kafka.ts';
import { validateRecord, type RecordKind } from '../streams/model/records.ts';
import { pipelineTopology } from '../streams/execution/topology.ts';
import { gatesBlobTopology } from '../streams/gates/blob-processor.ts';
import { resolvePipelineConfig } from '../src/pipeline/run.ts';
import { migrate } from '../connectors/sink/migrate.ts';
import { TABLES, rowsOf, upsertSql } from '../connectors/sink/tables.ts';
import {
  datasourceOf, interpolateSql, interpolateVariables, isPostgres, isPrometheus, loadDashboards, openEmbeddedTimescale, panelsOf, quotedVariable,
  variableSql, type Dashboard, type DashboardFile, type EmbeddedTimescale, type Panel, type TimeRange, type VariableValue,
} from '../ops/grafana/dashboards.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const DAY_DIR = path.join(ROOT, 'data', 'recorded', '2026-11-13');
const OUT_DIR = path.join(ROOT, 'docs', 'dashboards');
/** The run id the bundled day is loaded under (the dashboards' $run_id). */
const RUN_ID = 'offline-2026-11-13';
const INPUTS: { kind: RecordKind; topic: string; file: string }[] = [
  { kind: 'candles', topic: TOPICS.candles.name, file: 'candles.ndjson' },
  { kind: 'ticks', topic: TOPICS.ticks.name, file: 'ticks.ndjson.gz' },
  { kind: 'fills', topic: TOPICS.fills.name, file: 'fills.ndjson' },
  { kind: 'orders', topic: TOPICS.orders.name, file: 'orders.ndjson' },
];
/** Bind parameters per statement: PGlite reads the count as a signed 16-bit integer (PostgreSQL allows 65,535). */
const MAX_PARAMS = 30_000;

const t0 = Date.now();
const log = (line: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}`);

// ---------------------------------------------------------------- 1. the offline pipeline

async function readNdjson(file: string): Promise<Record<string, unknown>[]> {
  const input = file.endsWith('.gz') ? createReadStream(file).pipe(createGunzip()) : createReadStream(file);
  const out: Record<string, unknown>[] = [];
  for await (const line of createInterface({ input, crlfDelay: Infinity })) if (line.trim()) out.push(JSON.parse(line) as Record<string, unknown>);
  return out;
}

/** Every record the sink would write for the day, by topic: the inputs (validated as the sink receives them) and the pipeline's outputs. */
async function runOffline(knobs: NodeJS.ProcessEnv): Promise<Map<string, unknown[]>> {
  const config = resolvePipelineConfig(knobs);
  for (const w of config.warnings) log(`warning: ${w}`);
  const partitions = 3; // SEP_PARTITIONS' default: the same tasks (and stream times) as `sep run`
  const driver = new TopologyTestDriver(pipelineTopology(config.catalog, config), { partitions });
  const records = new Map<string, unknown[]>();
  for (const { kind, topic, file } of INPUTS) {
    const raw = await readNdjson(path.join(DAY_DIR, file));
    for (const r of raw) driver.pipeInput(topic, r.instrument as string, r, Date.parse(r.ts as string));
    records.set(topic, raw.map((r) => validateRecord(kind, r, config.catalog)));
  }
  if (driver.rejections.length > 0) log(`${driver.rejections.length} input records dead-lettered (first: ${driver.rejections[0]!.error.message})`);
  for (const topic of [TOPICS.features.name, TOPICS.gates.name, TOPICS.markouts.name, TOPICS.costCalibration.name]) {
    records.set(topic, driver.readOutput(topic).map((o) => o.value));
  }
  const expectedPartitions = [...new Set(config.catalog.list().map((i) => partitionForKey(i, partitions)))];
  // The blob stage with allocator-lite on each blob, as `sep run` runs it (no kill switch offline).
  const blobs = new TopologyTestDriver(gatesBlobTopology({ expectedPartitions, allocator: { config: config.allocator } }));
  for (const o of driver.readOutput(TOPICS.gatesPartial.name)) blobs.pipeInput(TOPICS.gatesPartial.name, o.key, o.value, o.timestamp);
  records.set(TOPICS.gatesBlob.name, blobs.readOutput(TOPICS.gatesBlob.name).map((o) => o.value));
  records.set(TOPICS.allocations.name, blobs.readOutput(TOPICS.allocations.name).map((o) => o.value));
  return records;
}

// ---------------------------------------------------------------- 2. the database

/**
 * Writes records as the sink does: rowsOf each, one row per conflict key (the
 * later record wins, as in the sink's batches: two ticks in one millisecond),
 * multi-row upserts. Returns rows per table.
 */
async function load(db: EmbeddedTimescale, records: Map<string, unknown[]>): Promise<Map<string, number>> {
  const written = new Map<string, number>();
  for (const [topic, values] of records) {
    const mapping = TABLES[topic];
    if (!mapping) throw new Error(`no sink mapping for ${topic} in connectors/sink/tables.ts`);
    const keyIdx = mapping.conflictKey.map((k) => mapping.columns.indexOf(k));
    const byKey = new Map<string, unknown[]>();
    for (const v of values) for (const row of rowsOf(mapping, v, RUN_ID)) byKey.set(keyIdx.map((i) => String(row[i])).join('\u0000'), row);
    const rows = [...byKey.values()];
    const per = Math.floor(MAX_PARAMS / mapping.columns.length);
    for (let i = 0; i < rows.length; i += per) {
      const chunk = rows.slice(i, i + per);
      await db.client.query(upsertSql(mapping, chunk.length), chunk.flat().map((x) => (x === undefined ? null : x)));
    }
    written.set(mapping.table, (written.get(mapping.table) ?? 0) + rows.length);
  }
  return written;
}

// ---------------------------------------------------------------- 3. queries

interface QueryResult { refId: string; format: 'time_series' | 'table'; fields: string[]; /** PostgreSQL type oid per field. */ types: number[]; rows: Record<string, unknown>[] }

/** int2, int4, int8, oid, float4, float8, numeric: right-aligned in tables, as Grafana does. */
const NUMERIC_TYPES = new Set([20, 21, 23, 26, 700, 701, 1700]);

interface Rendered {
  dashboard: DashboardFile;
  panel: Panel;
  title: string;
  png: string;
  /** One entry per repetition (a repeated panel) or one for a plain panel. */
  runs: { label: string; results: QueryResult[] }[];
}

/** Values of the dashboard's variables as Grafana would set them for the day: run_id = RUN_ID, "All" = every option of the query. */
async function resolveVariables(db: EmbeddedTimescale, d: Dashboard, range: TimeRange): Promise<Record<string, VariableValue>> {
  const vars: Record<string, VariableValue> = {};
  for (const v of d.templating.list) {
    const current = [v.current?.value ?? []].flat();
    let options: string[] = current.filter((x) => x !== '$__all');
    const sql = variableSql(v);
    if (sql) {
      options = (await db.db.query<Record<string, unknown>>(interpolateSql(sql, range, vars))).rows.map((r) => String(Object.values(r)[0]));
    }
    let values = current.includes('$__all') ? options : current.filter((x) => options.includes(x));
    if (v.name === 'run_id') {
      if (!options.includes(RUN_ID)) throw new Error(`variable run_id does not offer ${RUN_ID} (options: ${options.join(', ')})`);
      values = [RUN_ID];
    }
    if (values.length === 0) values = options.slice(0, 1);
    vars[v.name] = { values, quoted: quotedVariable(v) };
  }
  return vars;
}

async function runTargets(db: EmbeddedTimescale, panel: Panel, range: TimeRange, vars: Record<string, VariableValue>): Promise<QueryResult[]> {
  const out: QueryResult[] = [];
  for (const t of panel.targets ?? []) {
    if (!isPostgres(datasourceOf(panel, t)) || !t.rawSql) continue;
    const sql = interpolateSql(t.rawSql, range, vars);
    const r = await db.db.query<Record<string, unknown>>(sql);
    out.push({ refId: t.refId, format: t.format ?? 'time_series', fields: r.fields.map((f) => f.name), types: r.fields.map((f) => f.dataTypeID), rows: r.rows });
  }
  return out;
}

function toNumber(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) return v.getTime();
  const n = Number(v);
  return typeof v === 'string' && v.trim() !== '' && Number.isFinite(n) ? n : null;
}

interface Series { name: string; refId: string; points: [number, number | null][] }

/**
 * A time-series result as Grafana's SQL data sources frame it: column "time",
 * an optional string column "metric" naming the series, every other column a
 * value (named "<metric> <column>" when there are several).
 */
function toSeries(r: QueryResult): Series[] {
  const valueCols = r.fields.filter((f) => f !== 'time' && f !== 'metric');
  const byName = new Map<string, Series>();
  for (const row of r.rows) {
    const time = toNumber(row.time);
    if (time === null) continue;
    for (const c of valueCols) {
      const metric = row.metric === undefined ? undefined : String(row.metric);
      const name = metric === undefined ? c : valueCols.length === 1 ? metric : `${metric} ${c}`;
      let s = byName.get(name);
      if (!s) byName.set(name, (s = { name, refId: r.refId, points: [] }));
      s.points.push([time, toNumber(row[c])]);
    }
  }
  return [...byName.values()];
}

// ---------------------------------------------------------------- 4. drawing

const THEME = { bg: '#181b1f', border: '#2c3235', text: '#ccccdc', muted: '#8e8e9a', grid: '#2c3235', font: 'DejaVu Sans' };
const NAMED: Record<string, string> = { green: '#73BF69', red: '#F2495C', blue: '#5794F2', orange: '#FF9830', yellow: '#FADE2A', purple: '#B877D9', 'dark-red': '#C4162A' };
/** Grafana's classic palette, in its order. */
const PALETTE = ['#7EB26D', '#EAB839', '#6ED0E0', '#EF843C', '#E24D42', '#1F78C1', '#BA43A9', '#705DA0', '#508642', '#CCA300', '#447EBC', '#C15C17'];
const color = (c: string | undefined, i: number) => (c ? NAMED[c] ?? c : PALETTE[i % PALETTE.length]!);
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** Rough width of text in DejaVu Sans at `size` px (for layout only). */
const textWidth = (s: string, size: number) => s.length * size * 0.6;
const text = (x: number, y: number, s: string, o: { size?: number; fill?: string; anchor?: 'start' | 'middle' | 'end'; weight?: number; rotate?: number } = {}) =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${THEME.font}" font-size="${o.size ?? 11}" fill="${o.fill ?? THEME.muted}" text-anchor="${o.anchor ?? 'start'}"${o.weight ? ` font-weight="${o.weight}"` : ''}${o.rotate ? ` transform="rotate(${o.rotate} ${x.toFixed(1)} ${y.toFixed(1)})"` : ''}>${esc(s)}</text>`;

interface Box { x: number; y: number; w: number; h: number }

function frame(w: number, h: number, title: string, body: string, range: TimeRange): string {
  const sub = `${fmtDate(range.from)} → ${fmtDate(range.to)} UTC · run ${RUN_ID}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">`
    + `<rect x="0" y="0" width="${w}" height="${h}" fill="${THEME.bg}"/>`
    + `<rect x="0.5" y="0.5" width="${w - 1}" height="${h - 1}" fill="none" stroke="${THEME.border}"/>`
    + text(12, 22, title, { size: 14, fill: THEME.text, weight: 600 })
    + text(w - 12, 22, sub, { size: 10, anchor: 'end' })
    + body + '</svg>';
}

const noData = (b: Box, why = 'No data') => text(b.x + b.w / 2, b.y + b.h / 2, why, { size: 16, fill: THEME.muted, anchor: 'middle' });

function fmtDate(d: Date): string {
  return d.toISOString().slice(0, 16).replace('T', ' ');
}

/** Round numbers for an axis: about `count` ticks covering [min, max]. */
function niceTicks(min: number, max: number, count = 5, integer = false): { ticks: number[]; step: number; lo: number; hi: number } {
  if (!(max > min)) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(integer ? 1 : 0, [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw && (!integer || Number.isInteger(s)))!);
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
  return { ticks, step, lo, hi };
}

/** Decimals that print every multiple of `step` exactly (0.0025 → 4). */
function decimalsFor(step: number): number {
  for (let d = 0; d < 10; d++) if (Math.abs(step * 10 ** d - Math.round(step * 10 ** d)) < 1e-6) return d;
  return 10;
}

/** A value as a panel's unit shows it. */
function fmtValue(v: number | null, unit = 'short', decimals?: number): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const d = (x: number, dd?: number) => (dd !== undefined ? x.toFixed(dd) : Number(x.toPrecision(4)).toString());
  switch (unit) {
    case 'percent': return `${d(v, decimals ?? 1)}%`;
    case 'percentunit': return `${d(v * 100, decimals ?? 1)}%`;
    case 's': return `${d(v, decimals)} s`;
    case 'short': {
      const a = Math.abs(v);
      if (a >= 1e9) return `${d(v / 1e9)} B`;
      if (a >= 1e6) return `${d(v / 1e6)} M`;
      if (a >= 1e4) return `${d(v / 1e3)} K`;
      return d(v, decimals);
    }
    default: return d(v, decimals);
  }
}

function timeTicks(range: TimeRange, width: number): number[] {
  const span = range.to.getTime() - range.from.getTime();
  const H = 3_600_000;
  const steps = [60_000, 300_000, 900_000, 1_800_000, H, 3 * H, 6 * H, 12 * H, 24 * H, 48 * H, 168 * H];
  const step = steps.find((s) => span / s <= width / 60) ?? steps.at(-1)!;
  const out: number[] = [];
  for (let t = Math.ceil(range.from.getTime() / step) * step; t <= range.to.getTime(); t += step) out.push(t);
  return out;
}

function fmtTick(t: number): string {
  const iso = new Date(t).toISOString();
  return iso.slice(11, 16) === '00:00' ? `${iso.slice(5, 10)}` : iso.slice(11, 16);
}

function timeAxis(b: Box, range: TimeRange, xOf: (t: number) => number): string {
  let s = '';
  for (const t of timeTicks(range, b.w)) {
    const x = xOf(t);
    const midnight = new Date(t).toISOString().slice(11, 16) === '00:00';
    s += `<line x1="${x.toFixed(1)}" y1="${b.y}" x2="${x.toFixed(1)}" y2="${b.y + b.h}" stroke="${THEME.grid}" stroke-width="${midnight ? 1 : 0.5}"/>`;
    s += text(x, b.y + b.h + 14, fmtTick(t), { anchor: 'middle', fill: midnight ? THEME.text : THEME.muted });
  }
  return s;
}

interface Legend { name: string; color: string; dashed?: boolean }

/** Legend rows under the plot; returns the SVG and the height it takes. */
function legend(items: Legend[], x: number, y: number, w: number, maxRows = 4): { svg: string; height: number } {
  let cx = x;
  let row = 0;
  let svg = '';
  for (const it of items) {
    const iw = 18 + textWidth(it.name, 11) + 14;
    if (cx + iw > x + w && cx > x) {
      row++;
      cx = x;
    }
    if (row >= maxRows) {
      svg += text(cx, y + row * 16 + 4, `… ${items.length - items.indexOf(it)} more`, {});
      row++;
      break;
    }
    const ly = y + row * 16;
    svg += it.dashed
      ? `<line x1="${cx}" y1="${ly}" x2="${cx + 14}" y2="${ly}" stroke="${it.color}" stroke-width="2" stroke-dasharray="4 3"/>`
      : `<rect x="${cx}" y="${ly - 2}" width="14" height="4" rx="1" fill="${it.color}"/>`;
    svg += text(cx + 18, ly + 4, it.name, { fill: THEME.text });
    cx += iw;
  }
  return { svg, height: items.length === 0 ? 0 : (Math.min(row, maxRows) + 1) * 16 };
}

/** Fixed colours set by overrides (byName), as Grafana applies them. */
function overrideColors(panel: Panel): Map<string, string> {
  const m = new Map<string, string>();
  for (const o of panel.fieldConfig?.overrides ?? []) {
    if (o.matcher?.id !== 'byName') continue;
    for (const p of o.properties ?? []) if (p.id === 'color' && p.value?.fixedColor) m.set(o.matcher.options, color(p.value.fixedColor, 0));
  }
  return m;
}

/** Refs whose series go on the right axis (custom.axisPlacement overrides byFrameRefID). */
function rightAxisRefs(panel: Panel): Set<string> {
  return new Set((panel.fieldConfig?.overrides ?? [])
    .filter((o) => o.matcher?.id === 'byFrameRefID' && (o.properties ?? []).some((p: any) => p.id === 'custom.axisPlacement' && p.value === 'right'))
    .map((o) => o.matcher.options as string));
}

function thresholdLines(panel: Panel): { value: number; color: string }[] {
  const d = panel.fieldConfig?.defaults;
  if (!d?.custom?.thresholdsStyle || d.custom.thresholdsStyle.mode === 'off') return [];
  return (d.thresholds?.steps ?? []).filter((s: any) => s.value !== null && s.value !== undefined).map((s: any) => ({ value: s.value as number, color: color(s.color, 0) }));
}

function renderTimeseries(panel: Panel, heading: string, results: QueryResult[], range: TimeRange, w: number, h: number): string {
  const defaults = panel.fieldConfig?.defaults ?? {};
  const custom = defaults.custom ?? {};
  const unit: string = defaults.unit ?? 'short';
  const series = results.flatMap(toSeries);
  const colors = overrideColors(panel);
  const right = rightAxisRefs(panel);
  const items = series.map((s, i) => ({ ...s, color: colors.get(s.name) ?? color(undefined, i), right: right.has(s.refId) }));
  const lg = legend(items.map((s) => ({ name: s.name, color: s.color, dashed: s.right })), 14, 0, w - 28);
  const plot: Box = { x: 64, y: 40, w: w - 64 - (items.some((s) => s.right) ? 64 : 20), h: h - 40 - 26 - (lg.height ? lg.height + 10 : 0) };
  const x0 = range.from.getTime();
  const x1 = range.to.getTime();
  const xOf = (t: number) => plot.x + ((t - x0) / (x1 - x0)) * plot.w;
  let body = timeAxis(plot, range, xOf);
  if (series.every((s) => s.points.every(([, v]) => v === null))) {
    return frame(w, h, heading, body + noData(plot), range);
  }
  // Stacking (normal), as Grafana stacks aligned frames: at each time of any series, a series without a
  // point there counts 0 (for allocation_history: an instrument the decision does not list has weight 0);
  // each series is drawn as the band between the sum of the ones before it and that sum plus itself.
  const bases = new Map<string, Map<number, number>>();
  if (custom.stacking?.mode === 'normal') {
    const times = [...new Set(items.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b);
    const acc = new Map<number, number>(times.map((t) => [t, 0]));
    for (const s of items) {
      const own = new Map(s.points);
      bases.set(s.name, new Map(acc));
      s.points = times.map((t) => {
        const top = acc.get(t)! + (own.get(t) ?? 0);
        acc.set(t, top);
        return [t, top];
      });
    }
  }
  const axes: { right: boolean; box: ReturnType<typeof niceTicks>; yOf: (v: number) => number }[] = [];
  for (const side of [false, true]) {
    const vals = items.filter((s) => s.right === side).flatMap((s) => s.points.map(([, v]) => v)).filter((v): v is number => v !== null);
    if (vals.length === 0) continue;
    const lines = side ? [] : thresholdLines(panel).map((t) => t.value);
    let lo = Math.min(...vals, ...lines);
    let hi = Math.max(...vals, ...lines);
    if (!side && defaults.min !== undefined) lo = Math.min(lo, defaults.min);
    if (!side && defaults.max !== undefined) hi = Math.max(hi, defaults.max);
    if (custom.drawStyle === 'bars') lo = Math.min(lo, 0);
    const box = niceTicks(lo, hi, Math.max(3, Math.floor(plot.h / 50)), !side && defaults.decimals === 0);
    if (!side && defaults.min !== undefined) box.lo = Math.max(box.lo, defaults.min);
    const yOf = (v: number) => plot.y + plot.h - ((v - box.lo) / (box.hi - box.lo)) * plot.h;
    axes.push({ right: side, box, yOf });
    const dec = decimalsFor(box.step);
    for (const v of box.ticks.filter((v) => v >= box.lo - 1e-12 && v <= box.hi + 1e-12)) {
      const y = yOf(v);
      if (!side) body += `<line x1="${plot.x}" y1="${y.toFixed(1)}" x2="${plot.x + plot.w}" y2="${y.toFixed(1)}" stroke="${THEME.grid}" stroke-width="0.5"/>`;
      body += text(side ? plot.x + plot.w + 6 : plot.x - 6, y + 4, fmtValue(v, unit, dec), { anchor: side ? 'start' : 'end' });
    }
  }
  if (custom.axisLabel) body += text(14, plot.y + plot.h / 2, custom.axisLabel, { anchor: 'middle', rotate: -90 });
  const left = axes.find((a) => !a.right) ?? axes[0]!;
  for (const t of thresholdLines(panel)) {
    const y = left.yOf(t.value);
    body += `<line x1="${plot.x}" y1="${y.toFixed(1)}" x2="${plot.x + plot.w}" y2="${y.toFixed(1)}" stroke="${t.color}" stroke-width="1" stroke-dasharray="6 4" opacity="0.8"/>`;
  }
  const step = custom.lineInterpolation === 'stepAfter';
  for (const s of items) {
    const yOf = (axes.find((a) => a.right === s.right) ?? left).yOf;
    const pts = s.points.filter(([t]) => t >= x0 && t <= x1);
    if (custom.drawStyle === 'bars') {
      const times = [...new Set(pts.map(([t]) => t))].sort((a, b) => a - b);
      const gap = times.length > 1 ? Math.min(...times.slice(1).map((t, i) => t - times[i]!)) : (x1 - x0) / 50;
      const bw = Math.max(1, (gap / (x1 - x0)) * plot.w * 0.8);
      for (const [t, v] of pts) {
        if (v === null) continue;
        const y = yOf(v);
        const y0 = yOf(Math.max(0, left.box.lo));
        body += `<rect x="${(xOf(t) - bw / 2).toFixed(1)}" y="${Math.min(y, y0).toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.abs(y0 - y).toFixed(1)}" fill="${s.color}" opacity="0.8"/>`;
      }
      continue;
    }
    // custom.insertNulls ("Disconnect values"): a gap longer than the threshold breaks the line.
    const disconnect: number = typeof custom.insertNulls === 'number' ? custom.insertNulls : Infinity;
    const base = bases.get(s.name);
    const floor = yOf(Math.max(0, left.box.lo));
    const segments: [number, number, number][][] = []; // x, y, y of the band's lower edge
    let prevT: number | null = null;
    for (const [t, v] of pts) {
      if (v === null) {
        prevT = null;
        continue;
      }
      if (prevT === null || t - prevT > disconnect) segments.push([]);
      segments.at(-1)!.push([xOf(t), yOf(v), base ? yOf(base.get(t) ?? 0) : floor]);
      prevT = t;
    }
    const f = (n: number) => n.toFixed(1);
    const pathOf = (seg: [number, number, number][]) => seg.map(([x, y], i) => (i === 0 ? `M${f(x)},${f(y)}` : step ? `H${f(x)}V${f(y)}` : `L${f(x)},${f(y)}`)).join('');
    /** The lower edge walked back from the segment's last point to its first. */
    const backOf = (seg: [number, number, number][]) => seg.map((_, k) => seg[seg.length - 1 - k]!)
      .map(([x, , yb], i) => (i === 0 ? `V${f(yb)}` : step ? `V${f(yb)}H${f(x)}` : `L${f(x)},${f(yb)}`)).join('');
    const dash = s.right ? ' stroke-dasharray="6 4"' : '';
    if ((custom.fillOpacity ?? 0) > 0) {
      for (const seg of segments) body += `<path d="${pathOf(seg)}${backOf(seg)}Z" fill="${s.color}" opacity="${((custom.fillOpacity / 100) * 0.6).toFixed(2)}"/>`;
    }
    body += `<path d="${segments.map(pathOf).join('')}" fill="none" stroke="${s.color}" stroke-width="1.5"${dash}/>`;
    // Points where the panel shows them, and wherever a point stands alone (a line needs two).
    const points = custom.showPoints === 'always' ? segments.flat() : segments.filter((seg) => seg.length === 1).flat();
    for (const [x, y] of points) body += `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2.5" fill="${s.color}"/>`;
  }
  body += `<g transform="translate(0 ${plot.y + plot.h + 30})">${lg.svg}</g>`;
  return frame(w, h, heading, body, range);
}

function renderCandles(heading: string, runs: Rendered['runs'], range: TimeRange, w: number, h: number): string {
  const cols = Math.min(5, runs.length || 1);
  const rowsN = Math.ceil(runs.length / cols) || 1;
  const cellW = (w - 24) / cols;
  const cellH = (h - 40) / rowsN;
  const x0 = range.from.getTime();
  const x1 = range.to.getTime();
  let body = '';
  runs.forEach((run, i) => {
    const cell: Box = { x: 12 + (i % cols) * cellW, y: 36 + Math.floor(i / cols) * cellH, w: cellW - 8, h: cellH - 6 };
    body += `<rect x="${cell.x}" y="${cell.y}" width="${cell.w}" height="${cell.h}" fill="none" stroke="${THEME.border}"/>`;
    body += text(cell.x + 8, cell.y + 16, run.label, { size: 12, fill: THEME.text, weight: 600 });
    const rows = run.results[0]?.rows ?? [];
    const plot: Box = { x: cell.x + 56, y: cell.y + 26, w: cell.w - 64, h: cell.h - 26 - 22 };
    const xOf = (t: number) => plot.x + ((t - x0) / (x1 - x0)) * plot.w;
    body += timeAxis(plot, range, xOf);
    if (rows.length === 0) {
      body += noData(plot);
      return;
    }
    const c = rows.map((r) => ({ t: toNumber(r.time)!, o: toNumber(r.open)!, h: toNumber(r.high)!, l: toNumber(r.low)!, c: toNumber(r.close)!, v: toNumber(r.volume) ?? 0 }));
    const lo = Math.min(...c.map((k) => k.l));
    const hi = Math.max(...c.map((k) => k.h));
    const ticks = niceTicks(lo, hi, 4);
    const yOf = (v: number) => plot.y + plot.h - ((v - ticks.lo) / (ticks.hi - ticks.lo)) * plot.h;
    for (const v of ticks.ticks) {
      body += `<line x1="${plot.x}" y1="${yOf(v).toFixed(1)}" x2="${plot.x + plot.w}" y2="${yOf(v).toFixed(1)}" stroke="${THEME.grid}" stroke-width="0.5"/>`;
      body += text(plot.x - 4, yOf(v) + 4, v.toFixed(decimalsFor(ticks.step)), { anchor: 'end', size: 9 });
    }
    const vmax = Math.max(...c.map((k) => k.v)) || 1;
    const bw = Math.max(1, (3_600_000 / (x1 - x0)) * plot.w * 0.7);
    for (const k of c) {
      const x = xOf(k.t + 1_800_000);
      const vh = (k.v / vmax) * plot.h * 0.18;
      body += `<rect x="${(x - bw / 2).toFixed(1)}" y="${(plot.y + plot.h - vh).toFixed(1)}" width="${bw.toFixed(1)}" height="${vh.toFixed(1)}" fill="${THEME.muted}" opacity="0.25"/>`;
      const col = k.c >= k.o ? NAMED.green : NAMED.red;
      body += `<line x1="${x.toFixed(1)}" y1="${yOf(k.h).toFixed(1)}" x2="${x.toFixed(1)}" y2="${yOf(k.l).toFixed(1)}" stroke="${col}" stroke-width="1"/>`;
      const top = yOf(Math.max(k.o, k.c));
      body += `<rect x="${(x - bw / 2).toFixed(1)}" y="${top.toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(1, yOf(Math.min(k.o, k.c)) - top).toFixed(1)}" fill="${col}"/>`;
    }
  });
  if (runs.length === 0) body += noData({ x: 0, y: 36, w, h: h - 36 });
  return frame(w, h, heading, body, range);
}

function valueMappings(panel: Panel): Map<string, { text: string; color: string }> {
  const m = new Map<string, { text: string; color: string }>();
  for (const vm of panel.fieldConfig?.defaults?.mappings ?? []) {
    if (vm.type !== 'value') continue;
    for (const [k, v] of Object.entries(vm.options as Record<string, { text: string; color: string }>)) m.set(k, { text: v.text, color: color(v.color, 0) });
  }
  return m;
}

/** State intervals of one series: each point's value holds until the next point, the last until the range's end (Grafana's state timeline). */
function stateIntervals(s: Series, range: TimeRange): { from: number; to: number; value: number | null }[] {
  const pts = [...s.points].sort((a, b) => a[0] - b[0]);
  return pts.map(([t, v], i) => ({ from: Math.max(t, range.from.getTime()), to: Math.min(pts[i + 1]?.[0] ?? range.to.getTime(), range.to.getTime()), value: v }))
    .filter((iv) => iv.to > iv.from);
}

function renderStateTimeline(panel: Panel, heading: string, results: QueryResult[], range: TimeRange, w: number, h: number): string {
  const series = results.flatMap(toSeries).sort((a, b) => (a.name < b.name ? -1 : 1));
  const maps = valueMappings(panel);
  const lg = legend([...maps.values()].map((m) => ({ name: m.text, color: m.color })), 14, 0, w - 28);
  const labelW = Math.max(60, ...series.map((s) => textWidth(s.name, 11))) + 20;
  const plot: Box = { x: labelW, y: 40, w: w - labelW - 20, h: h - 40 - 26 - lg.height - 10 };
  const x0 = range.from.getTime();
  const x1 = range.to.getTime();
  const xOf = (t: number) => plot.x + ((t - x0) / (x1 - x0)) * plot.w;
  let body = timeAxis(plot, range, xOf);
  if (series.length === 0) return frame(w, h, heading, body + noData(plot), range);
  const rowH = plot.h / series.length;
  series.forEach((s, i) => {
    const y = plot.y + i * rowH;
    body += text(plot.x - 8, y + rowH / 2 + 4, s.name, { anchor: 'end', fill: THEME.text });
    for (const iv of stateIntervals(s, range)) {
      const m = maps.get(String(iv.value));
      body += `<rect x="${xOf(iv.from).toFixed(1)}" y="${(y + rowH * 0.1).toFixed(1)}" width="${Math.max(0.5, xOf(iv.to) - xOf(iv.from)).toFixed(1)}" height="${(rowH * 0.8).toFixed(1)}" fill="${m?.color ?? THEME.muted}" opacity="0.85"/>`;
    }
  });
  body += `<g transform="translate(0 ${plot.y + plot.h + 30})">${lg.svg}</g>`;
  return frame(w, h, heading, body, range);
}

function renderBarchart(panel: Panel, heading: string, results: QueryResult[], range: TimeRange, w: number, h: number): string {
  const r = results[0];
  const xField: string = panel.options?.xField ?? r?.fields[0] ?? '';
  const valueFields = (r?.fields ?? []).filter((f) => f !== xField);
  const colors = overrideColors(panel);
  const items = valueFields.map((f, i) => ({ name: f, color: colors.get(f) ?? color(undefined, i) }));
  const lg = legend(items, 14, 0, w - 28);
  const plot: Box = { x: 64, y: 40, w: w - 84, h: h - 40 - 26 - lg.height - 10 };
  const rows = r?.rows ?? [];
  if (rows.length === 0) return frame(w, h, heading, noData(plot), range);
  const vals = rows.flatMap((row) => valueFields.map((f) => toNumber(row[f]))).filter((v): v is number => v !== null);
  const ticks = niceTicks(Math.min(0, ...vals), Math.max(0, ...vals), Math.max(3, Math.floor(plot.h / 50)));
  const yOf = (v: number) => plot.y + plot.h - ((v - ticks.lo) / (ticks.hi - ticks.lo)) * plot.h;
  let body = '';
  for (const v of ticks.ticks) {
    body += `<line x1="${plot.x}" y1="${yOf(v).toFixed(1)}" x2="${plot.x + plot.w}" y2="${yOf(v).toFixed(1)}" stroke="${v === 0 ? THEME.muted : THEME.grid}" stroke-width="${v === 0 ? 1 : 0.5}"/>`;
    body += text(plot.x - 6, yOf(v) + 4, fmtValue(v, 'none', decimalsFor(ticks.step)), { anchor: 'end' });
  }
  const axisLabel = panel.fieldConfig?.defaults?.custom?.axisLabel;
  if (axisLabel) body += text(14, plot.y + plot.h / 2, axisLabel, { anchor: 'middle', rotate: -90 });
  const groupW = plot.w / rows.length;
  const barW = (groupW * 0.7) / Math.max(1, valueFields.length);
  const decimals = panel.fieldConfig?.defaults?.decimals;
  rows.forEach((row, gi) => {
    const gx = plot.x + gi * groupW + groupW * 0.15;
    body += text(plot.x + gi * groupW + groupW / 2, plot.y + plot.h + 16, String(row[xField]), { anchor: 'middle', fill: THEME.text });
    valueFields.forEach((f, si) => {
      const v = toNumber(row[f]);
      if (v === null) return;
      const y = yOf(v);
      const y0 = yOf(0);
      const x = gx + si * barW;
      body += `<rect x="${x.toFixed(1)}" y="${Math.min(y, y0).toFixed(1)}" width="${(barW * 0.92).toFixed(1)}" height="${Math.max(0.5, Math.abs(y0 - y)).toFixed(1)}" fill="${items[si]!.color}" opacity="0.85"/>`;
      body += text(x + barW * 0.46, v >= 0 ? y - 4 : y + 12, fmtValue(v, 'none', decimals), { anchor: 'middle', size: 10, fill: THEME.text });
    });
  });
  body += `<g transform="translate(0 ${plot.y + plot.h + 34})">${lg.svg}</g>`;
  return frame(w, h, heading, body, range);
}

/** A cell as a table panel shows it: timestamps in UTC, numbers with their column's unit. */
function fmtCell(v: unknown, unit: string | undefined, numeric: boolean): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString().slice(0, 19).replace('T', ' ');
  if (Array.isArray(v)) return v.join(', ');
  if (numeric && unit === 'percent') return `${String(v)}%`;
  return String(v);
}

function columnUnit(panel: Panel, field: string): string | undefined {
  for (const o of panel.fieldConfig?.overrides ?? []) {
    if (o.matcher?.id === 'byName' && o.matcher.options === field) {
      const u = (o.properties ?? []).find((p: any) => p.id === 'unit');
      if (u) return u.value;
    }
  }
  return panel.fieldConfig?.defaults?.unit;
}

function renderTable(panel: Panel, heading: string, results: QueryResult[], range: TimeRange, w: number, h: number): string {
  const r = results[0];
  const plot: Box = { x: 12, y: 36, w: w - 24, h: h - 48 };
  if (!r || r.rows.length === 0) {
    const header = (r?.fields ?? []).map((f, i, all) => text(plot.x + 6 + (i * plot.w) / all.length, plot.y + 16, f, { fill: THEME.text, weight: 600, size: 11 })).join('');
    return frame(w, h, heading, header + noData(plot), range);
  }
  const cells = r.rows.map((row) => r.fields.map((f, i) => fmtCell(row[f], columnUnit(panel, f), NUMERIC_TYPES.has(r.types[i]!))));
  const widths = r.fields.map((f, i) => Math.max(textWidth(f, 11), ...cells.map((c) => textWidth(c[i]!, 11))) + 16);
  const scale = Math.min(1, plot.w / widths.reduce((a, b) => a + b, 0));
  const size = Math.max(8, 11 * scale);
  const xs = widths.reduce<number[]>((acc, wd, i) => [...acc, acc[i]! + wd * scale], [plot.x]);
  const rowH = Math.max(14, size + 9);
  const fit = Math.floor((plot.h - rowH) / rowH);
  const shown = cells.length > fit ? cells.slice(0, fit - 1) : cells;
  let body = `<rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${rowH}" fill="${THEME.border}"/>`;
  const numeric = r.types.map((t) => NUMERIC_TYPES.has(t));
  r.fields.forEach((f, i) => {
    body += text(numeric[i] ? xs[i + 1]! - 8 : xs[i]! + 6, plot.y + rowH - 6, f, { fill: THEME.text, weight: 600, size, anchor: numeric[i] ? 'end' : 'start' });
  });
  shown.forEach((c, ri) => {
    const y = plot.y + (ri + 1) * rowH;
    if (ri % 2 === 1) body += `<rect x="${plot.x}" y="${y}" width="${plot.w}" height="${rowH}" fill="#22252b"/>`;
    c.forEach((cell, i) => {
      body += text(numeric[i] ? xs[i + 1]! - 8 : xs[i]! + 6, y + rowH - 6, cell, { fill: THEME.text, size, anchor: numeric[i] ? 'end' : 'start' });
    });
  });
  if (shown.length < cells.length) body += text(plot.x + 6, plot.y + (shown.length + 2) * rowH - 6, `… ${cells.length - shown.length} more rows`, { size });
  return frame(w, h, heading, body, range);
}

/** A panel title with its variables' values, as Grafana shows it ($instrument of a repeated panel is left out: each cell names it). */
function titleOf(panel: Panel, vars: Record<string, VariableValue>): string {
  const shown = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, { values: [v.values.join(', ')], quoted: false }]));
  return interpolateVariables(panel.title.replace(/\s*·\s*\$instrument\b/, ''), shown);
}

/** resvg draws no text without a font and says nothing: warn when the system has none. */
function checkFonts(): void {
  const dirs = ['/usr/share/fonts', '/usr/local/share/fonts', path.join(process.env.HOME ?? '/', '.fonts')];
  const found = dirs.some((d) => {
    try {
      return readdirSync(d, { recursive: true }).some((f) => /\.(ttf|otf|ttc)$/i.test(String(f)));
    } catch {
      return false;
    }
  });
  if (!found) log(`warning: no fonts under ${dirs.join(', ')}: the PNGs will have no text (Debian: apt-get install fonts-dejavu-core)`);
}

function toPng(svg: string): Buffer {
  return new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: THEME.font }, background: THEME.bg }).render().asPng();
}

function panelSize(panel: Panel): { w: number; h: number } {
  if (panel.repeat) return { w: 1500, h: 660 };
  return { w: panel.gridPos.w >= 24 ? 1500 : 820, h: Math.max(420, panel.gridPos.h * 50) };
}

function renderPanel(r: Rendered, range: TimeRange): string {
  const { w, h } = panelSize(r.panel);
  const results = r.runs[0]?.results ?? [];
  switch (r.panel.type) {
    case 'candlestick': return renderCandles(r.title, r.runs, range, w, h);
    case 'state-timeline': return renderStateTimeline(r.panel, r.title, results, range, w, h);
    case 'barchart': return renderBarchart(r.panel, r.title, results, range, w, h);
    case 'table': return renderTable(r.panel, r.title, results, range, w, h);
    case 'timeseries': return renderTimeseries(r.panel, r.title, results, range, w, h);
    default: throw new Error(`panel "${r.panel.title}": type ${r.panel.type} has no renderer in scripts/render-dashboards.ts`);
  }
}

// ---------------------------------------------------------------- 5. the README

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
function mdTable(header: string[], rows: string[][]): string {
  return [`| ${header.map(mdCell).join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n');
}
const fmtNum = (v: number | null, digits = 4) => (v === null ? '–' : Number(v.toPrecision(digits)).toString());

/** What the panel shows for the day, from the rows it drew. */
function summary(r: Rendered, range: TimeRange): string {
  const results = r.runs[0]?.results ?? [];
  const noRows = r.runs.every((run) => run.results.every((q) => q.rows.length === 0));
  if (noRows) return '**No rows for the bundled day** (the panel shows "No data").';
  switch (r.panel.type) {
    case 'candlestick': {
      const rows = r.runs.map((run) => {
        const c = (run.results[0]?.rows ?? []).map((x) => ({ o: toNumber(x.open)!, h: toNumber(x.high)!, l: toNumber(x.low)!, c: toNumber(x.close)! }));
        if (c.length === 0) return [run.label, '0', '', '', '', '', ''];
        const first = c[0]!.o;
        const last = c.at(-1)!.c;
        return [run.label, String(c.length), fmtNum(first, 6), fmtNum(Math.max(...c.map((k) => k.h)), 6), fmtNum(Math.min(...c.map((k) => k.l)), 6), fmtNum(last, 6), `${((last / first - 1) * 100).toFixed(2)}%`];
      });
      return mdTable(['instrument', 'hourly candles', 'first open', 'high', 'low', 'last close', 'change'], rows);
    }
    case 'state-timeline': {
      const maps = valueMappings(r.panel);
      const states = [...maps.entries()];
      const span = range.to.getTime() - range.from.getTime();
      const series = results.flatMap(toSeries).sort((a, b) => (a.name < b.name ? -1 : 1));
      const shares = series.map((s) => {
        const ivs = stateIntervals(s, range);
        return new Map(states.map(([k]) => [k, ivs.filter((iv) => String(iv.value) === k).reduce((a, iv) => a + iv.to - iv.from, 0) / span]));
      });
      // One line per state: which series were ever in it.
      const lines = states.map(([k, m]) => {
        const inState = series.filter((_, i) => shares[i]!.get(k)! > 0).map((s) => s.name);
        return `${m.text}: ${inState.length === 0 ? `none of the ${series.length}` : inState.length === series.length ? `all ${series.length}` : `${inState.length} of ${series.length} (${inState.join(', ')})`}`;
      });
      const rows = series.map((s, i) => [s.name, String(s.points.length), ...states.map(([k]) => `${(shares[i]!.get(k)! * 100).toFixed(1)}%`)]);
      return `${lines.join('; ')}.\n\n${mdTable(['instrument', 'intervals', ...states.map(([, m]) => `time ${m.text}`)], rows)}`;
    }
    case 'timeseries': {
      const series = results.flatMap(toSeries);
      const rows = series.slice(0, 12).map((s) => {
        const vals = s.points.map(([, v]) => v).filter((v): v is number => v !== null);
        return [s.name, String(s.points.length), fmtNum(vals.length ? Math.min(...vals) : null), fmtNum(vals.length ? Math.max(...vals) : null), fmtNum(vals.at(-1) ?? null)];
      });
      const more = series.length > 12 ? `\n\n… and ${series.length - 12} more series.` : '';
      const values = new Set(series.flatMap((s) => s.points.map(([, v]) => v)));
      const constant = values.size === 1 ? `Every value is ${fmtNum([...values][0]!)}.\n\n` : '';
      return constant + mdTable(['series', 'points', 'min', 'max', 'last'], rows) + more;
    }
    default: {
      const q = results[0]!;
      const rows = q.rows.slice(0, 12).map((row) => q.fields.map((f, i) => fmtCell(row[f], columnUnit(r.panel, f), NUMERIC_TYPES.has(q.types[i]!))));
      const more = q.rows.length > 12 ? `\n\n… ${q.rows.length - 12} more rows (${q.rows.length} in all).` : '';
      return mdTable(q.fields, rows) + more;
    }
  }
}

interface LoadSummary { rows: Map<string, number>; decisions: number; decisionsWithoutWeights: number }

function readme(rendered: Rendered[], range: TimeRange, knobs: NodeJS.ProcessEnv, loaded: LoadSummary, prometheus: DashboardFile[]): string {
  const knobText = Object.keys(knobs).length === 0 ? 'the defaults (`resolvePipelineConfig({})`: no environment)' : `the defaults with ${Object.entries(knobs).map(([k, v]) => `\`${k}=${v}\``).join(', ')}`;
  const out: string[] = [
    '# Dashboards for the bundled recorded day',
    '',
    '<!-- Generated by `npm run dashboards:render` (scripts/render-dashboards.ts); edit the dashboards or the script, then re-run. -->',
    '',
    'The Grafana dashboards live in `ops/grafana/dashboards/*.json`; docker-compose provisions them (folder **SEP**)',
    'with the data sources `sep-prometheus` and `sep-timescaledb` (`ops/grafana/provisioning/`).',
    'This page shows every TimescaleDB panel of them as Grafana would for the bundled day',
    `\`data/recorded/2026-11-13\` (time range ${rfc(range.from)} → ${rfc(range.to)}, the day's manifest), without Grafana and`,
    'without the shared stack: `npm run dashboards:render` runs the pipeline\'s offline path in-process',
    `(TopologyTestDriver over \`pipelineTopology\`, then the gates blob stage) with ${knobText},`,
    `loads inputs and outputs through the sink's mappings into an in-memory PGlite + TimescaleDB migrated with`,
    `\`sql/timescale\` as run \`${RUN_ID}\`, refreshes the continuous aggregates, runs each panel's SQL with`,
    `\`$run_id = '${RUN_ID}'\`, every instrument, and \`$__timeFilter\` / \`$__timeFrom()\` / \`$__timeTo()\` set to the day,`,
    'and draws the rows as SVG rasterised by `@resvg/resvg-js`.',
    '',
    `Rows loaded: ${[...loaded.rows].map(([t, n]) => `${t} ${n.toLocaleString('en-US')}`).join(', ')}`
      + ` (allocations: ${loaded.decisions.toLocaleString('en-US')} allocator decisions, ${loaded.decisionsWithoutWeights.toLocaleString('en-US')} of them without weights).`,
    '',
    'Knobs can be overridden for a render, e.g. spans short enough for one recorded day to pass the gates',
    '(the knobs of test/integration/gates.test.ts):',
    '',
    '```',
    'npm run dashboards:render -- EVAL_INTERVAL_SEC=300 GATES_BLOB_MAX_AGE_SEC=900 GATES_SPAN_DAYS=0.25 SPAN_MIN_BARS=120 \\',
    '  SPAN_MAX_MISSING_BARS=30 GUARD_MIN_COHERENCE=0.05 GATES_MIN_TRADES=2 ECHO_MIN_REPETITIONS=1 ECHO_HAZARD_MAX=1',
    '```',
    '',
  ];
  let current = '';
  for (const r of rendered) {
    if (r.dashboard.slug !== current) {
      current = r.dashboard.slug;
      out.push(`## ${r.dashboard.dashboard.title} (\`ops/grafana/dashboards/${path.basename(r.dashboard.file)}\`)`, '', r.dashboard.dashboard.description ?? '', '');
    }
    out.push(`### ${r.title}`, '', `![${r.title}](${r.png})`, '', r.panel.description ?? '', '');
    for (const t of r.panel.targets ?? []) {
      if (t.rawSql) out.push(`Query ${t.refId} (${t.format ?? 'time_series'}):`, '', '```sql', t.rawSql, '```', '');
    }
    out.push('For the bundled day:', '', summary(r, range), '');
  }
  for (const p of prometheus) {
    out.push(`## ${p.dashboard.title} (\`ops/grafana/dashboards/${path.basename(p.file)}\`)`, '', p.dashboard.description ?? '', '',
      'Prometheus panels: they read the running pipeline\'s `/metrics`, which an offline render does not have, so there is no PNG.',
      'Each metric is checked against `streams/runtime/metrics.ts` by `test/ops/dashboards.test.ts`.', '');
    out.push(mdTable(['panel', 'PromQL'], panelsOf(p.dashboard).map((panel) => [panel.title, (panel.targets ?? []).map((t) => `\`${t.expr}\``).join('<br>')])), '');
  }
  return out.join('\n');
}

const rfc = (d: Date) => d.toISOString().replace('.000Z', 'Z');

// ---------------------------------------------------------------- main

function parseKnobs(args: string[]): NodeJS.ProcessEnv {
  const knobs: NodeJS.ProcessEnv = {};
  for (const a of args) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(a);
    if (!m) {
      console.error(`render-dashboards: ${JSON.stringify(a)} is not KNOB=VALUE (e.g. GATES_SPAN_DAYS=0.25); knobs: docs/gates.md, docs/regime.md, docs/markout.md, docs/calibration.md`);
      process.exit(2);
    }
    knobs[m[1]!] = m[2]!;
  }
  return knobs;
}

const slugOf = (s: string) => s.replace(/\$\w+/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

async function main(): Promise<void> {
  const knobs = parseKnobs(process.argv.slice(2));
  checkFonts();
  const manifest = JSON.parse(readFileSync(path.join(DAY_DIR, 'manifest.json'), 'utf8')) as { from: string; to: string };
  const range: TimeRange = { from: new Date(manifest.from), to: new Date(manifest.to) };

  const records = await runOffline(knobs);
  log(`offline pipeline: ${[...records].map(([t, v]) => `${t} ${v.length}`).join(', ')}`);

  const db = await openEmbeddedTimescale();
  try {
    await migrate(db.client);
    const rows = await load(db, records);
    await db.db.exec('CALL refresh_aggregates()');
    log(`loaded into PGlite + TimescaleDB and refreshed the continuous aggregates: ${[...rows].map(([t, n]) => `${t} ${n}`).join(', ')}`);
    const d = (await db.db.query<{ decisions: number; empty: number }>(
      "SELECT count(DISTINCT (portfolio, seq))::int AS decisions, count(DISTINCT (portfolio, seq)) FILTER (WHERE instrument = '')::int AS empty FROM allocations")).rows[0]!;
    const loaded: LoadSummary = { rows, decisions: d.decisions, decisionsWithoutWeights: d.empty };

    mkdirSync(OUT_DIR, { recursive: true });
    for (const f of readdirSync(OUT_DIR)) if (f.endsWith('.png')) rmSync(path.join(OUT_DIR, f));
    const all = loadDashboards();
    const rendered: Rendered[] = [];
    for (const dashboard of all) {
      const panels = panelsOf(dashboard.dashboard).filter((p) => (p.targets ?? []).some((t) => isPostgres(datasourceOf(p, t))));
      if (panels.length === 0) continue;
      const vars = await resolveVariables(db, dashboard.dashboard, range);
      for (const panel of panels) {
        const repeat = panel.repeat ? vars[panel.repeat] : undefined;
        const runs = repeat
          ? await Promise.all(repeat.values.map(async (value) => ({ label: value, results: await runTargets(db, panel, range, { ...vars, [panel.repeat!]: { values: [value], quoted: repeat.quoted } }) })))
          : [{ label: '', results: await runTargets(db, panel, range, vars) }];
        const png = `${dashboard.slug}-${slugOf(panel.title)}.png`;
        const r: Rendered = { dashboard, panel, title: titleOf(panel, vars), png, runs };
        writeFileSync(path.join(OUT_DIR, png), toPng(renderPanel(r, range)));
        rendered.push(r);
        log(`${png}: ${runs.reduce((a, run) => a + run.results.reduce((b, q) => b + q.rows.length, 0), 0)} rows`);
      }
    }
    const prometheus = all.filter((d) => panelsOf(d.dashboard).some((p) => isPrometheus(p.datasource)));
    writeFileSync(path.join(OUT_DIR, 'README.md'), readme(rendered, range, knobs, loaded, prometheus));
    log(`wrote ${rendered.length} PNGs and README.md to ${path.relative(ROOT, OUT_DIR)}/`);
  } finally {
    await db.close();
  }
}

await main();
