import { status as Status, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation, type sendUnaryData } from '@grpc/grpc-js';
import type { ScalerMetrics } from '@fastvlm/observability';
import type { Logger } from 'pino';
import type { ScalerService } from '../scaling/scaler-service';
import type { GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, ScaledObjectRef } from './messages';
import { codeName, toGrpcStatus, type GrpcFailure } from './status';

const NO_REF: ScaledObjectRef = { name: '', namespace: '', scalerMetadata: {} };

/**
 * KEDA's four calls onto the scaler's use cases: one line of mapping each. A
 * failure of any kind becomes a gRPC status (`status.ts`), never a crash.
 */
export function externalScalerHandlers(service: ScalerService, metrics: ScalerMetrics, log: Logger): UntypedServiceImplementation {
  const failed = (method: string, f: GrpcFailure): void => {
    metrics.grpcRequest(method, codeName(f.code));
    if (f.callerFault) log.debug({ method, details: f.details }, 'refused a call');
    else log.warn({ method, code: codeName(f.code), details: f.details }, 'call failed');
  };

  const unary =
    <Req, Res>(method: string, handle: (req: Req) => Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      Promise.resolve()
        .then(() => handle(call.request))
        .then(
          (res) => {
            metrics.grpcRequest(method, 'OK');
            callback(null, res);
          },
          (e: unknown) => {
            const f = toGrpcStatus(e);
            failed(method, f);
            callback({ code: f.code, details: f.details });
          },
        );
    };

  return {
    IsActive: unary<ScaledObjectRef, IsActiveResponse>('IsActive', async (ref) => ({ result: (await service.decide(ref)).active })),

    GetMetricSpec: unary<ScaledObjectRef, GetMetricSpecResponse>('GetMetricSpec', async (ref) => {
      const spec = await service.metricSpec(ref);
      // KEDA reads targetSizeFloat when it is above 0, else targetSize: both say the same.
      return { metricSpecs: [{ metricName: spec.metricName, targetSize: spec.target, targetSizeFloat: spec.target }] };
    }),

    GetMetrics: unary<GetMetricsRequest, GetMetricsResponse>('GetMetrics', async (req) => {
      const desired = (await service.decide(req.scaledObjectRef ?? NO_REF, req.metricName)).decision.desired;
      return { metricValues: [{ metricName: req.metricName, metricValue: desired, metricValueFloat: desired }] };
    }),

    StreamIsActive: (call: ServerWritableStream<ScaledObjectRef, IsActiveResponse>): void => {
      let ended = false;
      let unsubscribe = (): void => undefined;
      const finish = (code: string): void => {
        if (ended) return;
        ended = true;
        unsubscribe();
        metrics.grpcRequest('StreamIsActive', code);
      };
      const fail = (e: unknown): void => {
        if (ended) return;
        const f = toGrpcStatus(e);
        failed('StreamIsActive', f);
        ended = true;
        unsubscribe();
        call.emit('error', { code: f.code, details: f.details });
      };
      call.on('cancelled', () => finish(codeName(Status.CANCELLED)));
      try {
        const sub = service.subscribe(call.request, {
          push: (active) => {
            if (!ended) call.write({ result: active } satisfies IsActiveResponse);
          },
          end: () => {
            if (ended) return;
            finish(codeName(Status.OK));
            call.end();
          },
        });
        unsubscribe = sub.unsubscribe;
        sub.ready.catch(fail);
      } catch (e) {
        fail(e);
      }
    },
  };
}
