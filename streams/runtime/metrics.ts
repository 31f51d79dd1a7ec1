/**
 * Observability names live here and only here. Metric names are the seeds'
 * own where the seeds give them (operations-reference.md, mm-bot README).
 */
import client from 'prom-client';

export const METRIC = {
  markoutUp: 'markout_up_total',
  markoutDown: 'markout_down_total',
  markoutAvgBps: 'markout_avg_bps',
  markoutUnresolved: 'markout_unresolved_total',
  markoutDuplicates: 'markout_duplicate_fills_total',
  markoutAdverseRate: 'markout_adverse_fill_rate',
  markoutCanaryDelta: 'markout_canary_delta_bps',
  markoutGate: 'markout_gate',
  costCalibSamples: 'cost_calib_samples_total',
  costCalibFills: 'cost_calib_fills_total',
  costCalibSkipped: 'cost_calib_skipped_total',
  costCalibSpread: 'cost_calib_spread_ewma_bps',
  costCalibVolume: 'cost_calib_volume_ewma_usd',
  costCalibSlippage: 'cost_calib_slippage_ewma_bps',
  costCalibKEff: 'cost_calib_k_eff',
  costCalibCapEff: 'cost_calib_cap_eff_bps',
  costFillRate: 'cost_fillrate_ewma',
  turnoverUsd: 'turnover_usd',
  bufferedRecords: 'sep_input_buffered_records',
  inputPauses: 'sep_input_pauses_total',
  recordsIn: 'sep_records_in_total',
  recordsOut: 'sep_records_out_total',
  deadLetters: 'sep_dead_letters_total',
  importRecords: 'sep_import_records_total',
  sinkRows: 'sep_sink_rows_total',
  sinkBatchSeconds: 'sep_sink_batch_seconds',
  sinkPaused: 'sep_sink_paused',
  sinkDatabaseOutages: 'sep_sink_database_outages_total',
  processingSeconds: 'sep_processing_seconds',
  consumerLag: 'sep_consumer_lag',
  restoreSeconds: 'sep_state_restore_seconds',
  transactionAborts: 'sep_transaction_aborts_total',
  // The rolling gates as the gates blob mirror exports them (docs/gates.md, "Operations").
  rollingGate: 'sep_rolling_gate',
  rollingEligibleCount: 'sep_rolling_eligible_count',
  rollingCooldown: 'sep_rolling_cooldown',
  rollingSessionOpen: 'sep_rolling_session_open',
  spanIntegrityOk: 'sep_span_integrity_ok',
  gatesBlobAge: 'sep_gates_blob_age_seconds',
  gatesBlobMaxAge: 'sep_gates_blob_max_age_seconds',
  allocatorSelected: 'sep_allocator_selected',
  allocatorCooldown: 'sep_allocator_cooldown',
  allocatorWeight: 'sep_allocator_weight',
  allocatorStaleAge: 'sep_allocator_stale_age_seconds',
  allocatorStale: 'sep_allocator_stale',
  allocatorKillSwitch: 'sep_allocator_kill_switch',
  allocatorSeq: 'sep_allocator_seq',
  allocatorEstimatedCost: 'allocator_estimated_cost_bps',
  allocatorCostAttenuation: 'allocator_cost_attenuation',
  allocatorCostSpread: 'allocator_cost_inputs_spread_bps',
  allocatorCostVolume: 'allocator_cost_inputs_volume_usd',
  allocatorCostSlippage: 'allocator_cost_slippage_bps',
  allocatorFillRateAttenuation: 'allocator_fillrate_attenuation',
  allocatorLiquidityFactor: 'allocator_liquidity_factor',
  allocatorTurnoverFactor: 'allocator_turnover_factor',
} as const;

export const registry = new client.Registry();

export const deadLetters = new client.Counter({
  name: METRIC.deadLetters,
  help: 'Records routed to dlq.v1, by reason and source topic',
  labelNames: ['reason', 'topic'] as const,
  registers: [registry],
});

export const recordsIn = new client.Counter({
  name: METRIC.recordsIn,
  help: 'Records consumed, by topic and processor',
  labelNames: ['topic', 'processor'] as const,
  registers: [registry],
});

export const recordsOut = new client.Counter({
  name: METRIC.recordsOut,
  help: 'Records produced, by topic',
  labelNames: ['topic'] as const,
  registers: [registry],
});

export const importRecords = new client.Counter({
  name: METRIC.importRecords,
  help: 'Lines read by `sep import`, by kind and outcome (imported or the reject reason)',
  labelNames: ['kind', 'outcome'] as const,
  registers: [registry],
});

export const sinkRows = new client.Counter({
  name: METRIC.sinkRows,
  help: 'Rows written to TimescaleDB by the sink, by table',
  labelNames: ['table'] as const,
  registers: [registry],
});

export const sinkBatchSeconds = new client.Histogram({
  name: METRIC.sinkBatchSeconds,
  help: 'Time to write one sink batch (rows + offsets in one transaction), seconds',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const sinkPaused = new client.Gauge({
  name: METRIC.sinkPaused,
  help: 'The TimescaleDB sink has paused every partition because the database is unavailable (1) or runs (0)',
  registers: [registry],
});

export const sinkDatabaseOutages = new client.Counter({
  name: METRIC.sinkDatabaseOutages,
  help: 'Times the TimescaleDB sink lost the database and paused until it came back',
  registers: [registry],
});

export const processingSeconds = new client.Histogram({
  name: METRIC.processingSeconds,
  help: 'Time to process one input record (decode, validate, processors), seconds',
  labelNames: ['application'] as const,
  buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
  registers: [registry],
});

export const consumerLag = new client.Gauge({
  name: METRIC.consumerLag,
  help: 'Records between the last consumed offset and the partition end',
  labelNames: ['group', 'topic', 'partition'] as const,
  registers: [registry],
});

export const restoreSeconds = new client.Histogram({
  name: METRIC.restoreSeconds,
  help: 'Time to restore a task\'s state stores from their changelogs, seconds',
  labelNames: ['application'] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30],
  registers: [registry],
});

export const transactionAborts = new client.Counter({
  name: METRIC.transactionAborts,
  help: 'Transactions aborted after a failed batch',
  labelNames: ['application'] as const,
  registers: [registry],
});

export const bufferedRecords = new client.Gauge({
  name: METRIC.bufferedRecords,
  help: 'Records fetched but not yet processed (waiting for the timestamp merge or the task), by topic and partition',
  labelNames: ['application', 'topic', 'partition'] as const,
  registers: [registry],
});

export const inputPauses = new client.Counter({
  name: METRIC.inputPauses,
  help: 'Times an input partition was paused because too many of its records waited (backpressure)',
  labelNames: ['application', 'topic'] as const,
  registers: [registry],
});

// ---- Rolling gates (connectors/redis/gates-blob.ts keeps them; docs/gates.md, "Operations").
// Each describes the newest gates blob the mirror has read; until the first
// blob they have no sample at all, so an alert sees "absent", never a false 0.

export const rollingGate = new client.Gauge({
  name: METRIC.rollingGate,
  help: 'Rolling gate per instrument in the newest gates blob: 1 on the instrument\'s current {eligible, buf} combination only, so count(sep_rolling_gate{eligible="1"}) is the eligible count',
  labelNames: ['instrument', 'eligible', 'buf'] as const,
  registers: [registry],
});

export const rollingEligibleCount = new client.Gauge({
  name: METRIC.rollingEligibleCount,
  help: 'Instruments eligible in the newest gates blob',
  registers: [registry],
});
rollingEligibleCount.remove(); // an unlabelled gauge starts at 0: no sample until the first blob

export const rollingCooldown = new client.Gauge({
  name: METRIC.rollingCooldown,
  help: 'Rolling-gate cooldown per instrument in the newest gates blob: 1 while in cooldown (4 misses in a row → 2 h), else 0',
  labelNames: ['instrument'] as const,
  registers: [registry],
});

export const spanIntegrityOk = new client.Gauge({
  name: METRIC.spanIntegrityOk,
  help: 'Strict span integrity per instrument in the newest gates blob: 1 ok, 0 broken (the instrument cannot pass)',
  labelNames: ['instrument'] as const,
  registers: [registry],
});

export const gatesBlobMaxAge = new client.Gauge({
  name: METRIC.gatesBlobMaxAge,
  help: 'GATES_BLOB_MAX_AGE_SEC, seconds: the blob age beyond which allocator-lite keeps its previous weights (the freshness alert compares against it)',
  registers: [registry],
});
gatesBlobMaxAge.remove();

/** A gauge whose value is computed at each scrape by a sampler; no sample while the sampler is unset or returns undefined. */
export interface ScrapedGauge {
  readonly gauge: client.Gauge;
  /** Installs (or with undefined removes) the function called at each scrape. */
  sampleWith(sampler: (() => number | undefined) | undefined): void;
}

function scrapedGauge(name: string, help: string): ScrapedGauge {
  let sampler: (() => number | undefined) | undefined;
  const gauge = new client.Gauge({
    name, help, registers: [registry],
    collect() {
      const v = sampler?.();
      if (v === undefined) this.remove();
      else this.set(v);
    },
  });
  gauge.remove();
  return { gauge, sampleWith: (s) => { sampler = s; } };
}

export const gatesBlobAge = scrapedGauge(METRIC.gatesBlobAge,
  'Wall-clock now minus the ts of the newest gates blob, seconds, computed at scrape; no sample before the first blob');

export const rollingSessionOpen = scrapedGauge(METRIC.rollingSessionOpen,
  'Whether the gates can pass now (wall clock, the gates\' session calendar): 1 when a session is open and the close is more than SESSION_EXIT_MINUTES away, else 0');

const markoutLabels = ['horizon_ms', 'color', 'symbol'] as const;

export const markoutUp = new client.Counter({ name: METRIC.markoutUp, help: 'Markouts above 0 bps (the fill was followed by a favourable mid), by horizon, colour and symbol', labelNames: markoutLabels, registers: [registry] });
export const markoutDown = new client.Counter({ name: METRIC.markoutDown, help: 'Markouts below 0 bps (adverse), by horizon, colour and symbol', labelNames: markoutLabels, registers: [registry] });
export const markoutAvgBps = new client.Gauge({ name: METRIC.markoutAvgBps, help: 'Mean markout in bps since start, by horizon, colour and symbol (exact from the fixed-point sum)', labelNames: markoutLabels, registers: [registry] });
export const markoutUnresolved = new client.Counter({ name: METRIC.markoutUnresolved, help: '(fill, horizon) pairs that resolved without a markout, by reason (no_tick: no tick at or before t0 + h)', labelNames: ['reason', 'symbol'] as const, registers: [registry] });
export const markoutDuplicates = new client.Counter({ name: METRIC.markoutDuplicates, help: 'Fills whose cid was already accepted (counted once, skipped)', labelNames: ['symbol'] as const, registers: [registry] });
export const markoutAdverseRate = new client.Gauge({ name: METRIC.markoutAdverseRate, help: 'Share of fills whose markout at MARKOUT_ADVERSE_HORIZON_MS (5 s) is below 0, by colour and symbol', labelNames: ['color', 'symbol'] as const, registers: [registry] });
export const markoutCanaryDelta = new client.Gauge({ name: METRIC.markoutCanaryDelta, help: 'Canary delta: mean markout green − blue, bps (6 dp), by horizon and symbol', labelNames: ['horizon_ms', 'symbol'] as const, registers: [registry] });
export const markoutGate = new client.Gauge({ name: METRIC.markoutGate, help: 'Markout canary gate (seed M1.1) per symbol: 1 on the current status (pass, breach, insufficient_sample)', labelNames: ['symbol', 'status'] as const, registers: [registry] });

const symbol = ['symbol'] as const;
export const costCalibFills = new client.Counter({ name: METRIC.costCalibFills, help: 'Fills seen by cost calibration, by outcome (sampled, duplicate, no_tick, stale_quote, liquidity_excluded)', labelNames: ['symbol', 'outcome'] as const, registers: [registry] });
export const costCalibSkipped = new client.Counter({ name: METRIC.costCalibSkipped, help: 'Records cost calibration skipped, by reason (out_of_order: before its EWMA\'s last time)', labelNames: ['symbol', 'reason'] as const, registers: [registry] });
export const costCalibSamples = new client.Gauge({ name: METRIC.costCalibSamples, help: 'Slippage samples behind the calibration', labelNames: symbol, registers: [registry] });
const costCalibSpread = new client.Gauge({ name: METRIC.costCalibSpread, help: 'EWMA of the spread, bps', labelNames: symbol, registers: [registry] });
const costCalibVolume = new client.Gauge({ name: METRIC.costCalibVolume, help: 'EWMA of the bar volume, USD', labelNames: symbol, registers: [registry] });
const costCalibSlippage = new client.Gauge({ name: METRIC.costCalibSlippage, help: 'EWMA of observed slippage, bps', labelNames: symbol, registers: [registry] });
const costCalibKEff = new client.Gauge({ name: METRIC.costCalibKEff, help: 'k_eff: slippage above half the spread per $1k notional, bps', labelNames: symbol, registers: [registry] });
const costCalibCapEff = new client.Gauge({ name: METRIC.costCalibCapEff, help: 'cap_eff_bps: EW mean + k·EW std of slippage, capped', labelNames: symbol, registers: [registry] });
const costFillRate = new client.Gauge({ name: METRIC.costFillRate, help: 'Half-life EWMA of the fill rate (filled vs cancelled/rejected orders)', labelNames: symbol, registers: [registry] });
const turnoverUsd = new client.Gauge({ name: METRIC.turnoverUsd, help: 'Half-life EWMA of fill notional, USD', labelNames: symbol, registers: [registry] });

/** Sets the calibration gauges of one instrument from its published record (null fields are left unset). */
export function publishCalibration(instrument: string, c: { spread_bps_ewma: number | null; volume_usd_ewma: number | null; slippage_bps_ewma: number | null; fill_rate_ewma: number | null; turnover_usd_ewma: number | null; k_eff: number | null; cap_eff_bps: number | null; samples: number }): void {
  const set = (g: client.Gauge<'symbol'>, v: number | null) => { if (v !== null) g.set({ symbol: instrument }, v); };
  set(costCalibSpread, c.spread_bps_ewma);
  set(costCalibVolume, c.volume_usd_ewma);
  set(costCalibSlippage, c.slippage_bps_ewma);
  set(costFillRate, c.fill_rate_ewma);
  set(turnoverUsd, c.turnover_usd_ewma);
  set(costCalibKEff, c.k_eff);
  set(costCalibCapEff, c.cap_eff_bps);
  costCalibSamples.set({ symbol: instrument }, c.samples);
}

// Allocator-lite (docs/allocation.md "Operations"): set on each decision.
const instrument = ['instrument'] as const;
export const allocatorSelected = new client.Gauge({ name: METRIC.allocatorSelected, help: 'Allocator-lite: 1 when the instrument is in the Top-K of the latest decision, else 0', labelNames: instrument, registers: [registry] });
export const allocatorCooldown = new client.Gauge({ name: METRIC.allocatorCooldown, help: 'Allocator-lite: 1 when the instrument\'s cooldown runs at the latest decision\'s blob, else 0', labelNames: instrument, registers: [registry] });
export const allocatorWeight = new client.Gauge({ name: METRIC.allocatorWeight, help: 'Allocator-lite: published weight per instrument, fraction of margin', labelNames: instrument, registers: [registry] });
export const allocatorStaleAge = new client.Gauge({ name: METRIC.allocatorStaleAge, help: 'Allocator-lite: age of the gates blob behind the latest decision, seconds of stream time (-1 before any blob)', registers: [registry] });
export const allocatorStale = new client.Gauge({ name: METRIC.allocatorStale, help: 'Allocator-lite: 1 when the latest decision held its weights because the blob was stale or missing', registers: [registry] });
export const allocatorKillSwitch = new client.Gauge({ name: METRIC.allocatorKillSwitch, help: 'Allocator-lite: 1 when the kill switch blocked increases at the latest decision', registers: [registry] });
export const allocatorSeq = new client.Gauge({ name: METRIC.allocatorSeq, help: 'Allocator-lite: seq of the latest decision published on alloc.weights.v1', registers: [registry] });
// The cost chain's gauges under the mm-bot README's names (L6–L7), per selected instrument at the latest decision.
const costGauge = (name: string, help: string) => new client.Gauge({ name, help, labelNames: symbol, registers: [registry] });
export const allocatorCost = {
  estimatedCostBps: costGauge(METRIC.allocatorEstimatedCost, 'Allocator cost chain: fee + slippage, bps (L6)'),
  costAttenuation: costGauge(METRIC.allocatorCostAttenuation, 'Allocator cost chain: cost/slippage attenuation, 0..1 (L6)'),
  spreadBps: costGauge(METRIC.allocatorCostSpread, 'Allocator cost chain: calibrated spread used, bps (L6.1; absent without a calibration)'),
  volumeUsd: costGauge(METRIC.allocatorCostVolume, 'Allocator cost chain: calibrated volume used, USD (L6.1; absent without a calibration)'),
  slippageBps: costGauge(METRIC.allocatorCostSlippage, 'Allocator cost chain: estimated slippage, bps (L6, L6.2)'),
  fillRateAttenuation: costGauge(METRIC.allocatorFillRateAttenuation, 'Allocator cost chain: fill-rate attenuation, 0..1 (L6.3)'),
  liquidityFactor: costGauge(METRIC.allocatorLiquidityFactor, 'Allocator cost chain: liquidity factor, floor..1 (L6.4)'),
  turnoverFactor: costGauge(METRIC.allocatorTurnoverFactor, 'Allocator cost chain: turnover factor, floor..1 (L7)'),
};
