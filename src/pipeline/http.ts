/**
 * The operations endpoint of a running pipeline: GET /health and GET /metrics
 * (prom-client), on SEP_HTTP_PORT (default 8000; 0 disables it).
 */
import http from 'node:http';
import { registry } from '../../streams/runtime/metrics.ts';

export function startHttp(port: number, health: () => { status: string; [k: string]: unknown }): Promise<http.Server | undefined> {
  if (port === 0) return Promise.resolve(undefined);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/metrics') {
      registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      }, (err: Error) => {
        res.writeHead(500).end(err.message);
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/health') {
      const h = health();
      res.writeHead(h.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify(h));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `no route ${req.method} ${url.pathname}; try GET /health or GET /metrics` }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} is in use; set SEP_HTTP_PORT to a free port (0 disables the endpoint)`) : err));
    server.listen(port, '0.0.0.0', () => resolve(server));
  });
}
