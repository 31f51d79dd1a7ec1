/**
 * Allocator-lite on the stream runtime (DESIGN §6.3, docs/allocation.md). It
 * runs in the blob stage's application, as the child of the blob processor:
 * every new gates blob reaches it in the task that built it, so a decision
 * and the blob it rests on commit in one transaction.
 *
 * **Its clock is the blobs' time.** The blob stage's stream time is the
 * newest partial seen, and which partial comes first depends on how the
 * signal tasks' outputs interleave on gates.partial.v1 — not the same in a
 * replay. The time up to which every partition has reported is: it is the
 * newest blob's `ts`. So decisions are made at blob times only, and a replay
 * makes the same decisions as the live run and the offline driver:
 *
 * - on each new blob at T: a decision at T;
 * - before it, when the previous decision was more than ALLOC_INTERVAL_SEC
 *   earlier (blobs rarer than the interval, or missing): the interval
 *   decisions in between, on the previous blob — so the ramp moves every
 *   interval and a gap of blobs shows as `stale` decisions once the previous
 *   blob is older than GATES_BLOB_MAX_AGE_SEC. After the first stale one the
 *   rest of the gap is skipped (they would only repeat it).
 *
 * Live, while no blob arrives nothing is decided; the mirror's wall-clock
 * `sep_gates_blob_age_seconds` and its alert cover that (docs/allocation.md).
 *
 * State: one entry per portfolio in `allocator-state` — the allocator's state
 * and the latest blob — logged with the outputs.
 *
 * The kill switch (`ops:kill_switch`) and the margin utilisation
 * (`ops:account`) from Redis are live input: the pipeline reads them
 * (`killSwitch()`, `marginUtilisation()`), each decision records the kill
 * switch it saw and its reasons say `margin_pause`; a replay uses KILL_SWITCH
 * only and no margin.
 */
import type { Processor, ProcessorContext, StreamRecord } from '../runtime/processor.ts';
import type { KeyValueStore } from '../runtime/stores.ts';
import type { GatesBlob } from '../gates/blob.ts';
import type { PartialCalibration } from '../gates/processor.ts';
import { overlayCaps, type AllocationOverlay } from './overlay.ts';
import * as metrics from '../runtime/metrics.ts';
import { allocate, initialAllocatorState, type AllocationStep, type AllocatorBlob, type AllocatorState } from './allocator.ts';
import type { AllocatorConfig } from './config.ts';

export const ALLOCATOR_STORE = 'allocator-state';

export interface AllocatorEntry {
  state: AllocatorState;
  blob: AllocatorBlob | null;
  /** The latest blob's instruments' ewma_vol and cost calibrations, from the gates partials (absent in state from before). */
  vols?: Record<string, number>;
  calibrations?: Record<string, PartialCalibration>;
  /** The latest alloc.overlay.v1 record (HRP scales, CVaR caps); absent before the first. */
  overlay?: AllocationOverlay | null;
}

/** What the blob stage hands the allocator per blob. */
export interface AllocatorBlobInput {
  blob: GatesBlob;
  vols: Record<string, number>;
  calibrations: Record<string, PartialCalibration>;
}

export interface AllocatorProcessorOptions {
  config: AllocatorConfig;
  /** The live kill switch (Redis ops:kill_switch); absent in replays and tests. */
  killSwitch?: () => boolean;
  /** The live margin utilisation (Redis ops:account); null/absent keeps the margin latch as it is. */
  marginUtilisation?: () => number | null;
}

export class AllocatorProcessor implements Processor<AllocatorBlobInput | AllocationOverlay> {
  private ctx!: ProcessorContext;
  private store!: KeyValueStore<AllocatorEntry>;

  constructor(private readonly opts: AllocatorProcessorOptions) {}

  init(ctx: ProcessorContext): void {
    this.ctx = ctx;
    this.store = ctx.getStateStore(ALLOCATOR_STORE);
  }

  process({ value }: StreamRecord<AllocatorBlobInput | AllocationOverlay>): void {
    if (!('blob' in value)) {
      // A new overlay (merged by timestamp with the partials): it applies from the next decision on.
      this.store.put(this.opts.config.portfolio, { ...this.entry(), overlay: value });
      return;
    }
    const { blob, vols, calibrations } = value;
    const intervalMs = this.opts.config.intervalSec * 1000;
    const before = this.entry();
    if (before.blob !== null && before.state.lastTs !== null) {
      for (let t = before.state.lastTs + intervalMs; t < blob.ts; t += intervalMs) {
        if (this.decide(t).decision.stale) break;
      }
    }
    const { ts, gates, cooldowns, calmar, hazard } = blob;
    this.store.put(this.opts.config.portfolio, { ...this.entry(), blob: { ts, gates, cooldowns, calmar, hazard }, vols, calibrations });
    this.decide(ts);
  }

  private entry(): AllocatorEntry {
    return this.store.get(this.opts.config.portfolio) ?? { state: initialAllocatorState(), blob: null };
  }

  private decide(now: number): AllocationStep {
    const e = this.entry();
    const step = allocate(e.state, { now, blob: e.blob, vols: e.vols, calibrations: e.calibrations, overlayCaps: overlayCaps(e.overlay), killSwitch: this.opts.killSwitch?.() ?? false, marginUtilisation: this.opts.marginUtilisation?.() ?? null }, this.opts.config);
    this.store.put(this.opts.config.portfolio, { ...e, state: step.state });
    this.ctx.forward({ key: step.decision.portfolio, value: step.decision, timestamp: now });
    publishMetrics(step);
    return step;
  }
}

function publishMetrics({ decision, details }: AllocationStep): void {
  metrics.allocatorSeq.set(decision.seq);
  metrics.allocatorStale.set(decision.stale ? 1 : 0);
  metrics.allocatorStaleAge.set(details.blobAgeSec ?? -1);
  metrics.allocatorKillSwitch.set(decision.kill_switch ? 1 : 0);
  for (const w of decision.weights) {
    metrics.allocatorWeight.set({ instrument: w.instrument }, w.weight);
    metrics.allocatorSelected.set({ instrument: w.instrument }, details.selected.includes(w.instrument) ? 1 : 0);
  }
  for (const i of details.selected) metrics.allocatorSelected.set({ instrument: i }, 1);
  metrics.allocatorCooldown.reset();
  for (const i of details.cooldown) metrics.allocatorCooldown.set({ instrument: i }, 1);
  for (const [symbol, c] of Object.entries(details.cost)) {
    const g = metrics.allocatorCost;
    g.estimatedCostBps.set({ symbol }, c.costBps);
    g.costAttenuation.set({ symbol }, c.costAttenuation);
    g.slippageBps.set({ symbol }, c.slippageBps);
    if (c.spreadBps !== null) g.spreadBps.set({ symbol }, c.spreadBps);
    if (c.volumeUsd !== null) g.volumeUsd.set({ symbol }, c.volumeUsd);
    g.fillRateAttenuation.set({ symbol }, c.fillRateAttenuation);
    g.liquidityFactor.set({ symbol }, c.liquidityFactor);
    g.turnoverFactor.set({ symbol }, c.turnoverFactor);
  }
}
