/**
 * The gates blob (schemas/avro/gates-blob.avsc): the one snapshot
 * allocator-lite trusts, `{ts, gates, cooldowns, bufs, repetition, hazard,
 * calmar, span_ok}`, every map keyed by instrument in sorted order so the same
 * decisions always serialise to the same bytes (replay must be bit-identical).
 */
import type { GateDecision } from './evaluate.ts';

export interface GatesBlob {
  /** Evaluation time the blob describes, epoch ms. */
  ts: number;
  gates: Record<string, boolean>;
  /** Cooldown end per instrument whose cooldown runs at `ts`; others are absent. */
  cooldowns: Record<string, number>;
  bufs: Record<string, number>;
  repetition: Record<string, number>;
  hazard: Record<string, number>;
  calmar: Record<string, number>;
  /** Strict span integrity per instrument (what `sep_span_integrity_ok` reports). */
  span_ok: Record<string, boolean>;
}

/**
 * Builds the blob at `ts` from one decision per instrument. Should an
 * instrument appear twice, its decision with the later `ts` wins (the later
 * one in the list on a tie), so the result never depends on input order
 * beyond that.
 */
export function buildGatesBlob(ts: number, decisions: readonly GateDecision[]): GatesBlob {
  const latest = new Map<string, GateDecision>();
  for (const d of decisions) {
    const seen = latest.get(d.instrument);
    if (!seen || d.ts >= seen.ts) latest.set(d.instrument, d);
  }
  // Code-unit order, not localeCompare: the order must not depend on the host's locale.
  const instruments = [...latest.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const blob: GatesBlob = { ts, gates: {}, cooldowns: {}, bufs: {}, repetition: {}, hazard: {}, calmar: {}, span_ok: {} };
  for (const instrument of instruments) {
    const d = latest.get(instrument)!;
    blob.gates[instrument] = d.eligible;
    if (d.cooldown_until !== null && d.cooldown_until > ts) blob.cooldowns[instrument] = d.cooldown_until;
    blob.bufs[instrument] = d.buf;
    blob.repetition[instrument] = d.repetition;
    blob.hazard[instrument] = d.hazard;
    blob.calmar[instrument] = d.calmar;
    blob.span_ok[instrument] = d.span_ok;
  }
  return blob;
}
