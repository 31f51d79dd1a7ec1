/**
 * The blob stage: combines the gates partials of every source partition into
 * the one gates blob allocator-lite trusts (DESIGN §6.2), on gates.blob.v1.
 *
 * It runs as its own application over the single-partition internal topic
 * gates.partial.v1. Partials of one evaluation time arrive from the features
 * tasks in any order; the blob for time T is published once every expected
 * partition has reported T — so its content never depends on arrival order,
 * and a replay publishes the same blobs. Each partition reports its times in
 * increasing order, so blobs come out in time order too.
 *
 * Expected partitions are those the instrument catalog hashes to (Kafka's
 * murmur2 partitioner): a partition that carries catalog instruments but
 * receives no data holds the blob back — set SEP_INSTRUMENTS to what you
 * trade. A wait longer than a few evaluations is logged with the partition
 * and its instruments.
 */
import type { Processor, ProcessorContext, StreamRecord } from '../runtime/processor.ts';
import { KeyValueStore } from '../runtime/stores.ts';
import { Topology } from '../runtime/topology.ts';
import { TOPICS } from '../runtime/topics.ts';
import { buildGatesBlob, type GatesBlob } from './blob.ts';
import type { GateDecision } from './evaluate.ts';
import type { GatesPartial } from './processor.ts';
import { validateOverlay } from '../allocation/overlay.ts';
import { ALLOCATOR_STORE, AllocatorProcessor, type AllocatorBlobInput, type AllocatorEntry, type AllocatorProcessorOptions } from '../allocation/processor.ts';

export const BLOB_PARTIALS_STORE = 'gates-partials';
/** Evaluations a partition may lag behind the newest report before the wait is logged. */
const LAG_WARNING_EVALUATIONS = 10;

export interface BlobStageOptions {
  /**
   * With the allocator: the blob goes to `blob` (the sink) and the allocator's input — the blob
   * with the partials' vols and calibrations — to `allocator`. gatesBlobTopology sets it.
   */
  children?: { blob: string; allocator: string };
  /** Source partitions that must report before a blob is published. */
  expectedPartitions: readonly number[];
  /** Instruments per partition, for the lag warning. */
  instrumentsOf?: (partition: number) => string[];
  log?: (line: string) => void;
}

export class GatesBlobProcessor implements Processor<GatesPartial> {
  private ctx!: ProcessorContext;
  private partials!: KeyValueStore<GatesPartial>;
  private readonly expected: number[];
  private warnedAt = -Infinity;

  constructor(private readonly opts: BlobStageOptions) {
    this.expected = [...opts.expectedPartitions].sort((a, b) => a - b);
  }

  init(ctx: ProcessorContext): void {
    this.ctx = ctx;
    this.partials = ctx.getStateStore(BLOB_PARTIALS_STORE);
  }

  process({ value: partial }: StreamRecord<GatesPartial>): void {
    if (!this.expected.includes(partial.partition)) return;
    this.partials.put(keyOf(partial.ts, partial.partition), partial);
    const ready = this.expected.map((p) => this.partials.get(keyOf(partial.ts, p)));
    if (ready.every((x) => x !== undefined)) {
      const decisions = ready.flatMap((x) => x!.decisions.map((d) => ({ ...d, ts: partial.ts }) as GateDecision));
      const blob = buildGatesBlob(partial.ts, decisions);
      if (!this.opts.children) {
        this.ctx.forward({ key: 'blob', value: blob, timestamp: partial.ts });
      } else {
        this.ctx.forward({ key: 'blob', value: blob, timestamp: partial.ts }, this.opts.children.blob);
        this.ctx.forward({ key: 'blob', value: allocatorInputOf(blob, ready.flatMap((x) => x!.decisions)), timestamp: partial.ts }, this.opts.children.allocator);
      }
      for (const p of this.expected) this.partials.delete(keyOf(partial.ts, p));
      return;
    }
    this.warnIfHeldBack(partial.ts);
  }

  private warnIfHeldBack(newest: number): void {
    const waiting = this.partials.all().map(([, v]) => v.ts);
    const oldest = Math.min(...waiting);
    const behind = [...new Set(waiting)].length;
    if (behind < LAG_WARNING_EVALUATIONS || newest - this.warnedAt < 6 * 3_600_000) return;
    this.warnedAt = newest;
    const missing = this.expected.filter((p) => this.partials.get(keyOf(oldest, p)) === undefined);
    this.opts.log?.(`gates blob for ${new Date(oldest).toISOString()} still waits for partition(s) ${missing.map((p) => `${p} (${this.opts.instrumentsOf?.(p).join(', ') ?? '?'})`).join('; ')}, ${behind} evaluations behind the newest: normal while a replay catches up (tasks run at their own pace); if it lasts at the live edge, those partitions receive no data`);
  }
}

/** What the allocator gets per blob: the blob, and each instrument's vol and calibration from the partials (when known). */
function allocatorInputOf(blob: GatesBlob, decisions: GatesPartial['decisions']): AllocatorBlobInput {
  const vols: Record<string, number> = {};
  const calibrations: AllocatorBlobInput['calibrations'] = {};
  for (const d of [...decisions].sort((a, b) => (a.instrument < b.instrument ? -1 : a.instrument > b.instrument ? 1 : 0))) {
    if (typeof d.vol === 'number' && Number.isFinite(d.vol)) vols[d.instrument] = d.vol;
    if (d.calibration) calibrations[d.instrument] = d.calibration;
  }
  return { blob, vols, calibrations };
}

function keyOf(ts: number, partition: number): string {
  return `${String(ts).padStart(15, '0')}/${partition}`;
}

export interface BlobTopologyOptions extends BlobStageOptions {
  partialTopic?: string;
  blobTopic?: string;
  /** Allocator-lite on each blob (streams/allocation/processor.ts); absent: the blob stage alone. */
  allocator?: AllocatorProcessorOptions;
  allocationTopic?: string;
  overlayTopic?: string;
}

/** gates.partial.v1 → blob stage → gates.blob.v1 (→ allocator-lite → alloc.weights.v1). */
export function gatesBlobTopology(opts: BlobTopologyOptions): Topology {
  const t = new Topology()
    // Never late: the features tasks write their partials at their own pace, far apart in time during a replay.
    .addSource('partials', opts.partialTopic ?? TOPICS.gatesPartial.name, (v) => v, { graceMs: Infinity })
    .addProcessor('blob', () => new GatesBlobProcessor(opts.allocator ? { ...opts, children: { blob: 'blob-out', allocator: 'allocator' } } : opts), 'partials')
    .addStateStore(BLOB_PARTIALS_STORE, () => new KeyValueStore<GatesPartial>(BLOB_PARTIALS_STORE), 'blob')
    .addSink('blob-out', opts.blobTopic ?? TOPICS.gatesBlob.name, 'blob');
  const allocator = opts.allocator;
  if (!allocator) return t;
  // The overlay topic has one partition, like gates.partial.v1: the one task reads both, merged by timestamp.
  return t.addSource('overlay', opts.overlayTopic ?? TOPICS.allocationOverlay.name, validateOverlay, { graceMs: Infinity })
    .addProcessor('allocator', () => new AllocatorProcessor(allocator), 'blob', 'overlay')
    .addStateStore(ALLOCATOR_STORE, () => new KeyValueStore<AllocatorEntry>(ALLOCATOR_STORE), 'allocator')
    .addSink('allocation-out', opts.allocationTopic ?? TOPICS.allocations.name, 'allocator');
}
