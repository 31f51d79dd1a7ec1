/**
 * HRP overlay run time (issue 5; seed ticket 17 acceptance: < 2 s for ≤ 200
 * symbols): 200 symbols over 90 days of hourly returns (2 160 rows).
 *
 *   npm run bench:hrp -- [--symbols 200] [--rows 2160] [--runs 9]
 *   (= node --import tsx bench/hrp.ts)
 *
 * Input: seeded synthetic log returns from a factor model (a market factor,
 * 8 sector factors, idiosyncratic noise, a few fat-tailed shocks), so the tree
 * has real clusters. Two inputs: complete, and with 2 % of the values missing
 * at random (pairwise covariance, the slow path). Stages timed separately:
 * the covariance (winsorised columns), hrpWeights from the covariance, and the
 * whole hrpOverlay (winsorise → covariance → HRP → cluster budgets → scales).
 * First the cold time: one hrpOverlay call on the complete input in a fresh
 * process (what a once-a-day job pays: nothing compiled yet). Then per input
 * one warm-up run and --runs runs; medians. Table on stdout (Markdown),
 * progress on stderr.
 */
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { covarianceOfColumns, hrpOverlay, hrpWeights, winsorize, type HrpOverlayParams } from '../streams/allocation/hrp.ts';
import { Rng } from '../src/generate/random.ts';
import { argInt } from './args.ts';

const SYMBOLS = argInt('symbols', 200);
const ROWS = argInt('rows', 2160);
const RUNS = argInt('runs', 9);
const SECTORS = 8;

const instruments = Array.from({ length: SYMBOLS }, (_, i) => `S${String(i).padStart(3, '0')}_USD`);

function returns(missingShare: number): number[][] {
  const rng = new Rng(5);
  const sectorOf = instruments.map((_, i) => i % SECTORS);
  const beta = instruments.map(() => 0.5 + rng.next());
  const out: number[][] = [];
  for (let t = 0; t < ROWS; t++) {
    const market = 0.004 * rng.normal();
    const sector = Array.from({ length: SECTORS }, () => 0.003 * rng.normal());
    out.push(instruments.map((_, i) => {
      if (rng.next() < missingShare) return NaN;
      const shock = rng.next() < 0.002 ? 0.05 * rng.normal() : 0;
      return beta[i]! * market + sector[sectorOf[i]!]! + 0.006 * rng.normal() + shock;
    }));
  }
  return out;
}

const params: HrpOverlayParams = {
  clusterMap: Object.fromEntries(instruments.map((s, i) => [s, `c${i % SECTORS}`])),
  targetRiskBudget: 0.1,
  minScale: 0.5,
  winsorSigma: 3,
  minObs: 100,
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function time(fn: () => unknown): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

const inputs = [['complete', returns(0)], ['2 % missing (pairwise)', returns(0.02)]] as const;
const cold = time(() => hrpOverlay({ instruments, returns: inputs[0][1] }, params));
process.stderr.write(`cold hrpOverlay (complete): ${cold.toFixed(1)} ms\n`);

const rows: string[] = [];
for (const [label, r] of inputs) {
  const columns = instruments.map((_, j) => winsorize(r.map((row) => row[j]!), params.winsorSigma));
  const cov = covarianceOfColumns(columns, params.minObs);
  const stages = { cov: [] as number[], hrp: [] as number[], overlay: [] as number[] };
  for (let run = 0; run <= RUNS; run++) {
    const c = time(() => covarianceOfColumns(columns, params.minObs));
    const h = time(() => hrpWeights(cov, instruments));
    const o = time(() => hrpOverlay({ instruments, returns: r }, params));
    if (run === 0) continue; // warm-up
    stages.cov.push(c);
    stages.hrp.push(h);
    stages.overlay.push(o);
    process.stderr.write(`${label} run ${run}/${RUNS}: cov ${c.toFixed(1)} ms, hrp ${h.toFixed(1)} ms, overlay ${o.toFixed(1)} ms\n`);
  }
  const f = (xs: number[]) => `${median(xs).toFixed(1)} ms`;
  rows.push(`| ${label} | ${f(stages.cov)} | ${f(stages.hrp)} | ${f(stages.overlay)} | ${Math.min(...stages.overlay).toFixed(1)}–${Math.max(...stages.overlay).toFixed(1)} ms |`);
}

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
process.stdout.write([
  `HRP overlay, ${SYMBOLS} symbols × ${ROWS} hourly returns, median of ${RUNS} runs after a warm-up (${os.cpus().length} × ${cpu}, Node ${process.version})`,
  '',
  '```sh',
  `npm run bench:hrp -- --symbols ${SYMBOLS} --rows ${ROWS} --runs ${RUNS}     # = node --import tsx bench/hrp.ts`,
  '```',
  '',
  '| input | covariance | hrpWeights (from covariance) | hrpOverlay end to end | overlay min–max |',
  '|---|---:|---:|---:|---:|',
  ...rows,
  '',
  `Cold (first hrpOverlay call of the process, complete input): ${cold.toFixed(1)} ms.`,
  '',
].join('\n'));
