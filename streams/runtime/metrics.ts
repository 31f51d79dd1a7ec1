/**
 * Observability names live here and only here. Metric names are the seeds'
 * own where the seeds give them (operations-reference.md, mm-bot README).
 */
import client from 'prom-client';

export const METRIC = {
  bufferedRecords: 'sep_input_buffered_records',
  inputPauses: 'sep_input_pauses_total',
  recordsIn: 'sep_records_in_total',
  recordsOut: 'sep_records_out_total',
  deadLetters: 'sep_dead_letters_total',
  importRecords: 'sep_import_records_total',
  sinkRows: 'sep_sink_rows_total',
  sinkBatchSeconds: 'sep_sink_batch_seconds',
  processingSeconds: 'sep_processing_seconds',
  consumerLag: 'sep_consumer_lag',
  restoreSeconds: 'sep_state_restore_seconds',
  transactionAborts: 'sep_transaction_aborts_total',
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
