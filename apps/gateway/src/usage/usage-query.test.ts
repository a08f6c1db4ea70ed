import { describe, expect, it } from 'vitest';
import { MAX_RANGE_HOURS, parseUsageQuery } from './usage-query';

const NOW = Date.UTC(2025, 0, 31, 12, 30);
const own = (q: Record<string, string>) => parseUsageQuery(q, { admin: false, now: NOW });
const admin = (q: Record<string, string>) => parseUsageQuery(q, { admin: true, now: NOW });
const s = (iso: string): number => Date.parse(iso) / 1000;

describe('usage query', () => {
  it('defaults to the hours overlapping the last day, by day', () => {
    expect(own({})).toMatchObject({ fromHour: s('2025-01-30T12:00:00Z'), toHour: s('2025-01-31T13:00:00Z'), groupBy: ['day'], grouping: { bucket: 'day', model: false, workClass: false } });
  });

  it('takes unix seconds or ISO-8601 under either name, and widens the range to whole hours', () => {
    const expected = { fromHour: s('2025-01-01T00:00:00Z'), toHour: s('2025-01-02T01:00:00Z') };
    expect(own({ start_time: String(s('2025-01-01T00:59:59Z')), end_time: String(s('2025-01-02T00:00:01Z')) })).toMatchObject(expected);
    expect(own({ from: '2025-01-01T01:59:59+01:00', to: '2025-01-02T00:00:01Z' })).toMatchObject(expected);
    expect(own({ from: '2025-01-01', to: '2025-01-02T00:30Z', group_by: 'hour,model,class' })).toMatchObject({
      ...expected,
      groupBy: ['hour', 'model', 'class'],
      grouping: { bucket: 'hour', model: true, workClass: true },
    });
    expect(own({ from: '2025-01-01', to: '2025-01-02', group_by: 'model' }).grouping).toEqual({ bucket: null, model: true, workClass: false });
  });

  it('refuses bad ranges and groupings with a 400 naming the parameter', () => {
    const refused = (f: () => unknown, param: string, message: RegExp) => expect(f).toThrow(expect.objectContaining({ code: 'invalid_request', param, message: expect.stringMatching(message) as unknown }));
    refused(() => own({ from: '2025-01-02', to: '2025-01-01' }), 'to', /to must be after from/);
    refused(() => own({ start_time: '100', end_time: '100' }), 'end_time', /end_time must be after start_time/);
    refused(() => own({ from: 'yesterday' }), 'from', /unix seconds or an ISO-8601/);
    // A local time without a zone would mean different hours on different servers.
    refused(() => own({ from: '2025-01-01T00:00:00' }), 'from', /with a zone/);
    refused(() => own({ from: '1', start_time: '2' }), 'from', /not both/);
    refused(() => own({ from: '2025-01-01', to: '2025-02-01T00:00:01Z' }), 'to', new RegExp(`covers ${MAX_RANGE_HOURS + 1} hours`));
    refused(() => own({ group_by: 'hour,day' }), 'group_by', /pick one/);
    refused(() => own({ group_by: 'tenant' }), 'group_by', /comma-separated list/);
    refused(() => own({ tenant: 'globex' }), 'tenant', /own tenant/);
  });

  it('lets an admin name a tenant, or none for every tenant', () => {
    expect(admin({ tenant: 'globex' }).tenant).toBe('globex');
    expect(admin({}).tenant).toBeUndefined();
  });
});
