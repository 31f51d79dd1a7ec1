/**
 * `sep sink`: the TimescaleDB sink alone — the pipeline's output topics into
 * their hypertables, exactly-once (rows and offsets in one transaction),
 * pausing while the database is away. For backfilling a database, for a sink
 * on another machine than the processors, and for the fault tests.
 */
import { UsageError } from '../../streams/runtime/errors.ts';
import { createProducer, endOffsets } from '../../streams/runtime/kafka.ts';
import { TimescaleSink } from '../../connectors/sink/timescale-sink.ts';
import { SinkDatabase } from '../../connectors/sink/database.ts';
import { TABLES } from '../../connectors/sink/tables.ts';
import { sleep } from '../../ops/stack/process.ts';
import { connectDatabase, connectServices } from '../pipeline/services.ts';
import { SINK_TOPICS, sinkGroupId } from '../pipeline/run.ts';
import { runIdFlag, type Command } from './command.ts';

const log = (line: string) => console.log(line);
/** How often progress is printed while rows are being written (ms). */
const PROGRESS_MS = 1000;

export const sinkCmd: Command = {
  usage: `usage: sep sink [--run-id ID] [--topics T,...] [--until-caught-up]
  Runs only the TimescaleDB sink: topics → hypertables, rows and consumed
  offsets in one transaction (exactly-once; restarts resume from the offsets
  in the database). While the database is unavailable every partition is
  paused and the sink reconnects; SIGTERM/SIGINT stop it cleanly.
  --run-id ID        run_id stamped on the rows and the consumer group's suffix (default live)
  --topics T,...     topics to sink (default: the pipeline's: ${SINK_TOPICS.join(', ')})
  --until-caught-up  exit 0 once every topic is written up to its end offset at start`,
  options: { 'run-id': { type: 'string' }, topics: { type: 'string' }, 'until-caught-up': { type: 'boolean' } },
  async run(v) {
    const runId = runIdFlag(v['run-id'], 'live');
    const topics = v.topics === undefined ? SINK_TOPICS : String(v.topics).split(',').map((t) => t.trim()).filter(Boolean);
    const unknown = topics.filter((t) => !TABLES[t]);
    if (topics.length === 0 || unknown.length > 0) {
      throw new UsageError(`--topics ${JSON.stringify(v.topics)}: ${unknown.length ? `no table mapping for ${unknown.join(', ')}` : 'give at least one topic'}; topics with a table: ${Object.keys(TABLES).join(', ')}`);
    }
    const services = await connectServices({ clientId: 'sep-sink', log });
    const database = new SinkDatabase(() => connectDatabase(services.urls.DATABASE_URL));
    const producer = await createProducer(services.kafka);
    const sink = new TimescaleSink({ kafka: services.kafka, serde: services.serde, database, producer, topics, groupId: sinkGroupId(runId), runId, log });
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    const t0 = Date.now();
    let printed = 0;
    const progress = setInterval(() => {
      if (sink.rowsWritten === printed) return;
      const dt = (Date.now() - t0) / 1000;
      log(`sink: ${sink.rowsWritten} rows written (${Math.round(sink.rowsWritten / dt)} rows/s)${sink.state === 'paused' ? ', paused for the database' : ''}`);
      printed = sink.rowsWritten;
    }, PROGRESS_MS);
    try {
      await database.client();
      await sink.start();
      log(`sink running (run ${runId}, group ${sinkGroupId(runId)}): ${topics.join(', ')} → ${topics.map((t) => TABLES[t]!.table).join(', ')}`);
      if (v['until-caught-up']) {
        const ends = new Map(await Promise.all(topics.map(async (t) => [t, await endOffsets(services.admin, t)] as const)));
        let done = false;
        void stopped.then(() => { done = true; });
        while (!sink.caughtUp(ends)) {
          if (done) throw new Error('stopped by a signal before the sink caught up');
          if (sink.state === 'failed') throw new Error('the sink failed; see the lines above');
          await sleep(100);
        }
      } else {
        await stopped;
      }
    } finally {
      clearInterval(progress);
      await sink.stop();
      await producer.disconnect();
      await database.close();
      await services.close();
    }
    log(`sink: ${sink.rowsWritten} rows written in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${sink.outages} database outage(s) ridden out`);
    return 0;
  },
};
