# Starts and stops the processes of a Redis pod (components/redis-sentinel):
#
#   sh redis-ha.sh redis      the data node: the primary, or a replica of it
#   sh redis-ha.sh sentinel   the pod's Sentinel, watching the primary
#   sh redis-ha.sh prestop    the redis container's preStop hook: a primary
#                             hands its role to a replica before it stops
#
# `redis` and `sentinel` first ask the running Sentinels which node is the
# primary, so that a restarted pod rejoins as a replica of whichever node a
# failover promoted. They ask through the redis-sentinel Service, which routes
# only to ready pods (never to this one while it starts). When no Sentinel
# answers, on a fresh start, the primary is the host of the `sentinel monitor`
# line of sentinel.conf: pod 0.
#
# Environment: REDIS_HA_HOST, this pod's DNS name (what the other pods reach
# and what this one announces); REDIS_HA_SENTINELS, the Sentinel Service's
# host name; REDIS_MEMORY_LIMIT, the redis container's memory limit in bytes.
set -eu

here=$(dirname "$0")

# The first value of a directive in a config file.
directive() {
  awk -v key="$1" '$1 == key { print $2; exit }' "$2"
}

# `sentinel monitor <name> <host> <port> <quorum>`: the group and its first primary.
read -r name first_host first_port quorum <<EOF
$(awk '$1 == "sentinel" && $2 == "monitor" { print $3, $4, $5, $6; exit }' "$here/sentinel.conf")
EOF
sentinel_port=$(directive port "$here/sentinel.conf")
redis_port=$(directive port "$here/redis.conf")

# The primary as a running Sentinel reports it ("host port"), or nothing.
reported_primary() {
  for attempt in 1 2 3; do
    answer=$(timeout 3 redis-cli -h "$REDIS_HA_SENTINELS" -p "$sentinel_port" --raw sentinel get-master-addr-by-name "$name" 2>/dev/null || true)
    host=$(printf '%s\n' "$answer" | sed -n 1p)
    port=$(printf '%s\n' "$answer" | sed -n 2p)
    case $port in
      '' | *[!0-9]*) ;;
      *)
        echo "$host $port"
        return
        ;;
    esac
    [ "$attempt" = 3 ] || sleep 1
  done
}

primary() {
  found=$(reported_primary)
  if [ -n "$found" ]; then
    echo "redis-ha: the Sentinels report the primary at $found" >&2
    echo "$found"
  else
    echo "redis-ha: no Sentinel answered; the primary is $first_host (a fresh start)" >&2
    echo "$first_host $first_port"
  fi
}

case ${1:-} in
  redis)
    read -r primary_host primary_port <<EOF
$(primary)
EOF
    if [ "$primary_host" = "$REDIS_HA_HOST" ]; then
      set --
    else
      set -- --replicaof "$primary_host" "$primary_port"
    fi
    # A writable copy: Sentinel has a node rewrite its config file (CONFIG REWRITE) when it
    # changes the node's role. Each start begins again from the ConfigMap's.
    cp "$here/redis.conf" /run/redis/redis.conf
    # maxmemory is 80% of the memory limit: the rest is for the AOF rewrite's copy-on-write
    # pages, the replication buffers and the client buffers.
    exec redis-server /run/redis/redis.conf \
      --maxmemory "$((REDIS_MEMORY_LIMIT / 5 * 4))" \
      --replica-announce-ip "$REDIS_HA_HOST" \
      "$@"
    ;;
  sentinel)
    read -r primary_host primary_port <<EOF
$(primary)
EOF
    # Sentinel refuses a monitor line whose host does not resolve yet (a pod's DNS
    # name appears once the pod has an address): wait for it, a minute at most.
    tries=0
    until getent ahosts "$primary_host" >/dev/null || [ "$tries" -ge 60 ]; do
      tries=$((tries + 1))
      sleep 1
    done
    sed "s/^sentinel monitor .*/sentinel monitor $name $primary_host $primary_port $quorum/" "$here/sentinel.conf" >/etc/sentinel/sentinel.conf
    echo "sentinel announce-ip $REDIS_HA_HOST" >>/etc/sentinel/sentinel.conf
    exec redis-server /etc/sentinel/sentinel.conf --sentinel
    ;;
  prestop)
    # A primary that stops leaves the apps waiting for down-after-milliseconds and an
    # election. A planned stop (rollout, drain) has the Sentinels promote a replica
    # first, and waits (up to 20 s) for them to name it: the apps follow at once.
    role=$(redis-cli -h "$REDIS_HA_HOST" -p "$redis_port" role 2>/dev/null | sed -n 1p || true)
    [ "$role" = master ] || exit 0
    answer=$(timeout 5 redis-cli -h "$REDIS_HA_SENTINELS" -p "$sentinel_port" sentinel failover "$name" 2>&1 || true)
    echo "redis-ha: asked the Sentinels for a failover: $answer" >&2
    [ "$answer" = OK ] || exit 0
    tries=0
    while [ "$tries" -lt 20 ]; do
      sleep 1
      tries=$((tries + 1))
      found=$(reported_primary)
      case $found in
        '' | "$REDIS_HA_HOST "*) ;;
        *)
          echo "redis-ha: the primary is now $found" >&2
          exit 0
          ;;
      esac
    done
    ;;
  *)
    echo "usage: redis-ha.sh redis|sentinel|prestop" >&2
    exit 2
    ;;
esac
