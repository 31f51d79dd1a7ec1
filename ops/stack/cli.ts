/**
 * `npm run stack:up | stack:down | stack:status`: the local services without Docker.
 * Exit codes: 0 ok, 1 a service could not start (the message says the fix), 2 usage.
 */
import { redact, stackDown, stackStatus, stackUp, StackError } from './index.ts';

const log = (line: string) => console.log(`[stack] ${line}`);

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'up': {
      const t0 = Date.now();
      const urls = await stackUp(log);
      log(`all services ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      for (const [k, v] of Object.entries(urls)) console.log(`export ${k}=${redact(v)}`);
      return 0;
    }
    case 'down':
      await stackDown(log);
      return 0;
    case 'status': {
      const states = await stackStatus();
      for (const s of states) {
        log(`${s.name.padEnd(16)} ${s.healthy ? 'up  ' : 'DOWN'} ${s.source.padEnd(5)} ${redact(s.url)}${s.pid ? ` pid ${s.pid}` : ''}`);
      }
      return states.every((s) => s.healthy) ? 0 : 1;
    }
    default:
      console.error('usage: stack.ts up | down | status');
      return 2;
  }
}

main(process.argv[2]).then((code) => process.exit(code), (err: unknown) => {
  if (err instanceof StackError) console.error(`[stack] ${err.message}`);
  else console.error(err);
  process.exit(1);
});
