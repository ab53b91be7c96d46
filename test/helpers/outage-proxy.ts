import net from 'node:net';

/**
 * A TCP proxy in front of one real store, for outage tests that must not stop the shared server: the
 * code under test talks to the proxy; `cut()` drops every open connection and refuses new ones (as a
 * stopped server would), `restore()` lets traffic through again.
 */
export interface OutageProxy {
  /** host:port to give the client under test. */
  readonly address: string;
  readonly port: number;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function outageProxy(target: { host: string; port: number }): Promise<OutageProxy> {
  let down = false;
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    open.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    cut() {
      down = true;
      for (const s of open) s.destroy();
      open.clear();
    },
    restore() {
      down = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
