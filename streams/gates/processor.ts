/**
 * The rolling evaluator on the stream runtime (DESIGN §6.2, docs/gates.md).
 * It runs in the features task, after the features processor, so it sees each
 * instrument's features in event-time order within its partition:
 *
 * - each feature adds a bar (close, signal, spread) to the `gates-span` window
 *   store (GATES_SPAN_DAYS of stream time) and refreshes the instrument's latest
 *   repetition and hazard in `gates-state`;
 * - every EVAL_INTERVAL_SEC of stream time (a stream-time punctuation, stamped
 *   with the interval boundary) every instrument of the task is evaluated:
 *   its decision goes to gates.v1, and the task's decisions together go to the
 *   internal gates.partial.v1 topic, from which the blob stage builds the
 *   global gates blob once every source partition has reported.
 *
 * Everything depends on the records and stream time only, so a replay gives
 * the same decisions as the live run.
 */
import type { Processor, ProcessorContext, StreamRecord } from '../runtime/processor.ts';
import { KeyValueStore, WindowStore } from '../runtime/stores.ts';
import type { Feature } from '../features/features.ts';
import type { GatesConfig } from './config.ts';
import { evaluateGate, type GateDecision, type GateState } from './evaluate.ts';
import type { SimBar } from './simulate.ts';

export const GATES_SPAN_STORE = 'gates-span';
export const GATES_STATE_STORE = 'gates-state';
const DAY_MS = 86_400_000;


export interface InstrumentGateState {
  gate: GateState | undefined;
  repetition: number | null;
  hazard: number | null;
}

/** The internal record the blob stage combines (schemas/avro/gates-partial.avsc). */
export interface GatesPartial {
  ts: number;
  partition: number;
  decisions: Pick<GateDecision, 'instrument' | 'eligible' | 'buf' | 'repetition' | 'hazard' | 'calmar' | 'span_ok' | 'cooldown_until'>[];
}

/** The fields the evaluator reads from a feature; the regime fields may be absent on old records. */
type GateFeature = Feature & { signal?: number | null; repetition?: number | null; hazard?: number | null };

export class GatesProcessor implements Processor<GateFeature> {
  private ctx!: ProcessorContext;
  private span!: WindowStore<SimBar>;
  private state!: KeyValueStore<InstrumentGateState>;

  constructor(private readonly config: GatesConfig, private readonly children: { decisions: string; partial: string }) {}

  init(ctx: ProcessorContext): void {
    this.ctx = ctx;
    this.span = ctx.getStateStore(GATES_SPAN_STORE);
    this.state = ctx.getStateStore(GATES_STATE_STORE);
    ctx.schedule(this.config.evalIntervalSec * 1000, 'stream-time', (at) => this.evaluate(at));
  }

  process({ value: f }: StreamRecord<GateFeature>): void {
    // Stored in the simulator's own shape: an evaluation reads whole spans without converting them.
    this.span.put(f.instrument, f.ts, { ts: f.ts, close: f.close, signal: f.signal ?? 0, spread_bps: f.spread_bps ?? null });
    const prev = this.state.get(f.instrument);
    this.state.put(f.instrument, { gate: prev?.gate, repetition: f.repetition ?? null, hazard: f.hazard ?? null });
  }

  private evaluate(at: number): void {
    this.span.evict(at);
    const decisions: GatesPartial['decisions'] = [];
    for (const [instrument, s] of this.state.all()) {
      const bars = this.span.fetchValues(instrument, at - this.config.spanDays * DAY_MS, at);
      const { decision, state } = evaluateGate({ instrument, now: at, bars, repetition: s.repetition, hazard: s.hazard }, s.gate, this.config);
      this.state.put(instrument, { ...s, gate: state });
      this.ctx.forward({ key: instrument, value: decision, timestamp: at }, this.children.decisions);
      const { instrument: i, eligible, buf, repetition, hazard, calmar, span_ok, cooldown_until } = decision;
      decisions.push({ instrument: i, eligible, buf, repetition, hazard, calmar, span_ok, cooldown_until });
    }
    const partial: GatesPartial = { ts: at, partition: this.ctx.partition, decisions };
    this.ctx.forward({ key: String(this.ctx.partition), value: partial, timestamp: at }, this.children.partial);
  }
}
