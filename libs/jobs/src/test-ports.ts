import net from 'node:net';

/**
 * Ports handed out for a process to bind later come from below Linux's ephemeral range (32768–60999 by
 * default), where the kernel never picks a port by itself: a port it chose for some other test's
 * `listen(0)` or outgoing connection cannot take this one in the seconds before its process binds it.
 */
const LOW = 20_000;
const HIGH = 32_767;

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago), outside the kernel's ephemeral range. */
export async function freeTcpPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (await tryListen(port)) return port;
  }
  throw new Error(`no free port between ${LOW} and ${HIGH}`);
}
