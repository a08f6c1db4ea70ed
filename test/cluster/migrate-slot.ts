import type { RedisClusterGroup } from '../support/redis-cluster';

/**
 * Moves one hash slot, with its keys, from primary `from` to primary `to`
 * while clients keep using it: the resharding steps of `redis-cli --cluster
 * reshard`, for one chosen slot (IMPORTING / MIGRATING, MIGRATE in batches,
 * then SETSLOT NODE everywhere). Clients meet ASK and TRYAGAIN during the
 * move and MOVED after it. Returns how many keys moved.
 */
export async function migrateSlot(cluster: RedisClusterGroup, slot: number, from: number, to: number): Promise<number> {
  const [fromId, toId] = await Promise.all([cluster.idOf(from), cluster.idOf(to)]);
  await cluster.onNode(to, (c) => c.cluster('SETSLOT', slot, 'IMPORTING', fromId));
  await cluster.onNode(from, (c) => c.cluster('SETSLOT', slot, 'MIGRATING', toId));
  let moved = 0;
  for (;;) {
    const batch = await cluster.onNode(from, (c) => c.cluster('GETKEYSINSLOT', slot, 10));
    if (batch.length === 0) break;
    await cluster.onNode(from, (c) => c.migrate('127.0.0.1', to, '', 0, 5000, 'KEYS', ...batch));
    moved += batch.length;
  }
  // The new owner first, as redis-cli does, so that no node points clients at one that refuses.
  await cluster.onNode(to, (c) => c.cluster('SETSLOT', slot, 'NODE', toId));
  await cluster.onNode(from, (c) => c.cluster('SETSLOT', slot, 'NODE', toId));
  for (const p of cluster.ports.filter((q) => q !== from && q !== to)) await cluster.onNode(p, (c) => c.cluster('SETSLOT', slot, 'NODE', toId));
  return moved;
}
