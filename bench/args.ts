/** Command-line flags of the benchmark scripts: `--name N`, a positive integer; exit 2 with the flag named otherwise. */
export function argInt(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) {
    process.stderr.write(`--${name} needs a positive integer, got ${JSON.stringify(process.argv[i + 1])}\n`);
    process.exit(2);
  }
  return v;
}
