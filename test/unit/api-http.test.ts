import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../lib/config';
import { bearer, testApp, tokenFor, withTempIssuer } from '../helpers/api';

/**
 * The API on a real socket, as a rude client meets it: what Node and Fastify answer before any route
 * runs is problem+json too, and a client that sends slowly, or not at all, loses its connection.
 */
interface Exchange {
  /** Everything the server sent before it closed the connection (or before we gave up). */
  text: string;
  status: number;
  closed: boolean;
  ms: number;
}

describe('the API on a socket', () => {
  let cfg: Config;
  let app: FastifyInstance;
  let port: number;
  beforeAll(async () => {
    cfg = withTempIssuer(
      loadConfig({
        CADENZA_TEMPORAL_ADDRESS: '127.0.0.1:1',
        CADENZA_API_HEADERS_TIMEOUT_MS: '1000',
        CADENZA_API_REQUEST_TIMEOUT_MS: '2000',
        CADENZA_API_BODY_LIMIT: '2048',
      }),
    );
    app = await testApp(cfg);
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as net.AddressInfo).port;
  });
  afterAll(() => app.close());

  /** Writes the chunks (a number waits that many ms), then reads until the server closes or `waitMs`. */
  function exchange(chunks: (string | number)[], waitMs = 6000): Promise<Exchange> {
    return new Promise((resolve) => {
      const started = Date.now();
      const socket = net.connect(port, '127.0.0.1');
      let text = '';
      let closed = false;
      const done = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve({
          text,
          status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
          closed,
          ms: Date.now() - started,
        });
      };
      const timer = setTimeout(done, waitMs);
      socket.on('data', (b) => (text += b.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        closed = true;
        done();
      });
      void (async () => {
        for (const c of chunks) {
          if (typeof c === 'number') await new Promise((r) => setTimeout(r, c));
          else if (!socket.destroyed) socket.write(c);
        }
      })();
    });
  }
  const problem = (e: Exchange) => {
    expect(e.text).toMatch(/content-type: application\/problem\+json/i);
    return JSON.parse(e.text.slice(e.text.indexOf('\r\n\r\n') + 4)) as { type: string; status: number };
  };

  it('answers a path parameter over the limit 414 problem+json', async () => {
    const id = 'x'.repeat(cfg.api.maxParamLength + 1);
    const e = await exchange([`GET /v1/workflows/${id} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`]);
    expect(e.status).toBe(414);
    expect(problem(e).type).toBe('urn:cadenza:problem:uri-too-long');
  });

  it('answers a URL that does not decode 400 problem+json', async () => {
    const e = await exchange([`GET /v1/workflows/%E0%A4%A HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`]);
    expect(e.status).toBe(400);
    expect(problem(e).type).toBe('urn:cadenza:problem:bad-request');
  });

  it('answers headers over the limit 431 problem+json and closes', async () => {
    const big = 'a'.repeat(cfg.api.maxHeaderBytes + 100);
    const e = await exchange([`GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\n\r\n`]);
    expect(e.status).toBe(431);
    expect(problem(e).type).toBe('urn:cadenza:problem:headers-too-large');
    expect(e.closed).toBe(true);
  });

  it('answers broken framing (two Content-Lengths that disagree) 400 problem+json and closes', async () => {
    const e = await exchange([
      'POST /v1/ping HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello',
    ]);
    expect(e.status).toBe(400);
    expect(problem(e).type).toBe('urn:cadenza:problem:bad-request');
    expect(e.closed).toBe(true);
  });

  it('closes a connection whose headers never finish (slowloris) with 408', async () => {
    const e = await exchange(
      ['GET /healthz HTTP/1.1\r\nHost: a\r\n', 400, 'X-A: 1\r\n', 400, 'X-B: 1\r\n'],
      8000,
    );
    expect(e.closed).toBe(true);
    expect(e.status).toBe(408);
    expect(problem(e).type).toBe('urn:cadenza:problem:request-timeout');
    expect(e.ms).toBeLessThan(cfg.api.headersTimeoutMs + 2500);
  });

  it('closes a connection whose body trickles past the request timeout, token or not', async () => {
    const token = await tokenFor(cfg, 'svc', ['service']);
    const head = (auth: string) =>
      `POST /v1/play-ticks HTTP/1.1\r\nHost: a\r\n${auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`;
    for (const auth of [`Authorization: Bearer ${token}\r\n`, '']) {
      const trickle: (string | number)[] = [head(auth)];
      for (let i = 0; i < 20; i++) trickle.push(300, ' ');
      const e = await exchange(trickle, 9000);
      expect([auth.length > 0, e.closed]).toEqual([auth.length > 0, true]);
      expect(e.ms).toBeLessThan(cfg.api.requestTimeoutMs + 2500);
      // Without a token the 401 comes at once, and the connection closes without waiting for the body.
      if (!auth) {
        expect(e.status).toBe(401);
        expect(e.text).toMatch(/connection: close/i);
        expect(e.ms).toBeLessThan(1500);
      }
    }
  });

  it('closes the connection after a 413 sent before the body was read', async () => {
    const token = await tokenFor(cfg, 'svc', ['service']);
    const e = await exchange(
      [
        `POST /v1/play-ticks HTTP/1.1\r\nHost: a\r\n${Object.entries(bearer(token))
          .map(([k, v]) => `${k}: ${v}`)
          .join('')}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"ticks":[`,
      ],
      4000,
    );
    expect(e.status).toBe(413);
    expect(problem(e).type).toBe('urn:cadenza:problem:payload-too-large');
    expect(e.closed).toBe(true);
    expect(e.ms).toBeLessThan(1500);
  });

  it('answers TRACE 405 with Allow, and keeps serving health on the same connection', async () => {
    const e = await exchange([
      'TRACE /v1/play-ticks HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    ]);
    expect(e.status).toBe(405);
    expect(e.text).toMatch(/allow: POST/i);
    expect(e.text).toMatch(/"status":"ok"/);
  });
});
