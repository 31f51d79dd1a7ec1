/**
 * The instrument catalog: records for instruments outside it are rejected
 * (`unknown_instrument`). OANDA-style names, as the seeds use. Override with
 * SEP_INSTRUMENTS="EUR_USD,USD_JPY,..." (names must look like AAA_BBB).
 */
import { ConfigError } from '../runtime/errors.ts';

export const DEFAULT_INSTRUMENTS = [
  'EUR_USD', 'GBP_USD', 'USD_JPY', 'AUD_USD', 'USD_CAD',
  'USD_CHF', 'NZD_USD', 'EUR_GBP', 'EUR_JPY', 'GBP_JPY',
] as const;

/** An instrument name as the catalog spells it: BASE_QUOTE, e.g. EUR_USD. */
export const INSTRUMENT_NAME = /^[A-Z0-9]{2,10}_[A-Z0-9]{2,10}$/;

export class InstrumentCatalog {
  private readonly names: ReadonlySet<string>;
  constructor(names: Iterable<string>) {
    this.names = new Set(names);
  }
  has(name: string): boolean {
    return this.names.has(name);
  }
  list(): string[] {
    return [...this.names].sort();
  }
  static fromEnv(env: NodeJS.ProcessEnv = process.env): InstrumentCatalog {
    const raw = env.SEP_INSTRUMENTS?.trim();
    if (!raw) return new InstrumentCatalog(DEFAULT_INSTRUMENTS);
    const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = names.filter((n) => !INSTRUMENT_NAME.test(n));
    if (bad.length > 0 || names.length === 0) {
      throw new ConfigError([{ key: 'SEP_INSTRUMENTS', message: `=${JSON.stringify(raw)}: ${bad.length ? `bad names ${bad.join(', ')}` : 'empty list'}; give a comma-separated list like EUR_USD,USD_JPY` }]);
    }
    return new InstrumentCatalog(names);
  }
}
