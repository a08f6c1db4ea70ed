import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';

/** Streams still open this long after shutdown began are cut. */
const SHUTDOWN_GRACE_MS = 2_000;

export interface GrpcServer {
  /** `host:port`, with the port actually bound (SCALER_GRPC_PORT=0 picks a free one). */
  address: string;
  /** Whether the server is bound and serving (readiness). */
  readonly serving: boolean;
  close(): Promise<void>;
}

/** Serves KEDA's external-scaler service, without TLS (KEDA reaches it inside the cluster). */
export async function startGrpcServer(opts: {
  host: string;
  port: number;
  service: ServiceDefinition;
  handlers: UntypedServiceImplementation;
}): Promise<GrpcServer> {
  const server = new Server();
  server.addService(opts.service, opts.handlers);
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${opts.port}`, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
  let serving = true;
  return {
    address: `${host}:${port}`,
    get serving() {
      return serving;
    },
    close: () =>
      new Promise<void>((resolve) => {
        serving = false;
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
