import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadPackageDefinition, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

/** KEDA's contract; the build copies it next to the bundle (dist/apps/scaler/), the sources keep it in apps/scaler/proto/. */
export const PROTO_FILE = 'externalscaler.proto';

/**
 * How the .proto is read, by the server and by clients in tests alike: field names as KEDA spells them
 * (camelCase in the .proto itself), int64 as JS numbers (replica counts are small), absent fields as
 * their defaults.
 */
export const PROTO_LOADER_OPTIONS: Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

/** Where the .proto is: next to the running bundle, or in the source tree when run from sources. */
export function protoPath(): string {
  const candidates = [join(import.meta.dirname, PROTO_FILE), join(import.meta.dirname, '..', '..', 'proto', PROTO_FILE)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`${PROTO_FILE} not found (looked in ${candidates.join(', ')}); the build copies it next to main.js`);
  return found;
}

/** The `externalscaler.ExternalScaler` service: its definition (for a server) and its client class. */
export function loadExternalScaler(path = protoPath()): { service: ServiceDefinition; Client: ServiceClientConstructor } {
  const pkg = loadPackageDefinition(loadSync(path, PROTO_LOADER_OPTIONS)) as unknown as {
    externalscaler: { ExternalScaler: ServiceClientConstructor };
  };
  const Client = pkg.externalscaler.ExternalScaler;
  return { service: Client.service, Client };
}
