/**
 * Progress for long operations (import, replay, canary): events/s and ETA,
 * redrawn in place on a terminal, silent when stderr is not a TTY or CI is set
 * (CI logs get only the final summary the caller prints).
 */
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private lastDraw = 0;
  private readonly live: boolean;

  constructor(private readonly label: string, private total: number | undefined, stream: NodeJS.WriteStream = process.stderr) {
    this.live = Boolean(stream.isTTY) && !process.env.CI;
    this.stream = stream;
  }
  private readonly stream: NodeJS.WriteStream;

  add(n: number): void {
    this.done += n;
    const now = Date.now();
    if (this.live && now - this.lastDraw > 250) {
      this.lastDraw = now;
      this.stream.write(`\r${this.line(now)}\x1b[K`);
    }
  }

  /** Events per second so far. */
  rate(now = Date.now()): number {
    return this.done / Math.max(0.001, (now - this.started) / 1000);
  }

  elapsedMs(): number {
    return Date.now() - this.started;
  }

  finish(): void {
    if (this.live) this.stream.write(`\r${this.line(Date.now())}\x1b[K\n`);
  }

  private line(now: number): string {
    const rate = this.rate(now);
    const pct = this.total ? ` ${((100 * this.done) / this.total).toFixed(1)}%` : '';
    const eta = this.total && rate > 0 ? ` ETA ${formatSeconds((this.total - this.done) / rate)}` : '';
    return `${this.label}: ${this.done.toLocaleString('en-US')}${this.total ? `/${this.total.toLocaleString('en-US')}` : ''}${pct} ${Math.round(rate).toLocaleString('en-US')} ev/s${eta}`;
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
}
