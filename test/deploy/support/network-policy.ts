import { ofKind, selects, type K8sDoc } from './manifests';

type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
interface NetworkPeer {
  podSelector?: Selector;
  namespaceSelector?: Selector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface NetworkPolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}
interface Rule {
  from?: NetworkPeer[];
  to?: NetworkPeer[];
  ports?: NetworkPolicyPort[];
}
interface NetworkPolicySpec {
  podSelector: Selector;
  policyTypes?: ('Ingress' | 'Egress')[];
  ingress?: Rule[];
  egress?: Rule[];
}

/** One end of a connection: a pod (its namespace and labels) or an address outside the cluster. */
export type Endpoint = { namespace: string; labels: Record<string, string> } | { ip: string };

function ipv4(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(base) / size);
}

function peerMatches(peer: NetworkPeer, other: Endpoint, policyNamespace: string): boolean {
  if (peer.ipBlock) return 'ip' in other && inCidr(other.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c) => inCidr(other.ip, c));
  if ('ip' in other) return false;
  // A peer with only a podSelector means pods of the policy's own namespace.
  const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, { 'kubernetes.io/metadata.name': other.namespace }) : other.namespace === policyNamespace;
  const podOk = peer.podSelector ? selects(peer.podSelector, other.labels) : true;
  return nsOk && podOk;
}

function portMatches(ports: NetworkPolicyPort[] | undefined, port: number, protocol: string): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => (p.protocol ?? 'TCP') === protocol && (p.port === undefined || p.port === port || (typeof p.port === 'number' && p.endPort !== undefined && port >= p.port && port <= p.endPort)));
}

function policyTypes(spec: NetworkPolicySpec): string[] {
  // Kubernetes' default: Ingress always, Egress when egress rules are given.
  return spec.policyTypes ?? ['Ingress', ...(spec.egress ? ['Egress'] : [])];
}

/**
 * Whether the NetworkPolicies let `from` open a connection to `to` on a port, as
 * the NetworkPolicy API defines it: a pod selected by no policy of a direction
 * is open in that direction; otherwise some rule of a policy selecting it must
 * allow the peer and the port. Both directions must allow the connection.
 */
export function allows(docs: readonly K8sDoc[], from: Endpoint, to: Endpoint, port: number, protocol = 'TCP'): boolean {
  const policies = ofKind<{ spec: NetworkPolicySpec }>(docs, 'NetworkPolicy');
  const direction = (pod: Endpoint, type: 'Ingress' | 'Egress', other: Endpoint): boolean => {
    if ('ip' in pod) return true;
    const selecting = policies.filter((p) => p.metadata.namespace === pod.namespace && policyTypes(p.spec).includes(type) && selects(p.spec.podSelector, pod.labels));
    if (selecting.length === 0) return true;
    return selecting.some((p) =>
      (type === 'Ingress' ? (p.spec.ingress ?? []) : (p.spec.egress ?? [])).some((rule) => {
        const peers = type === 'Ingress' ? rule.from : rule.to;
        return portMatches(rule.ports, port, protocol) && (!peers || peers.length === 0 || peers.some((peer) => peerMatches(peer, other, p.metadata.namespace ?? '')));
      }),
    );
  };
  return direction(from, 'Egress', to) && direction(to, 'Ingress', from);
}
