// NetworkPolicy semantics, as the API defines them, for checking a render's
// connectivity matrix offline. A pod is {ns, labels, ports: {name: number}};
// a namespace's labels are taken to be kubernetes.io/metadata.name only.
import { selects } from "./policy.mjs";

const nsLabels = (ns) => ({ "kubernetes.io/metadata.name": ns });
const nsOf = (o) => o.metadata.namespace || "default";

// Does a NetworkPolicyPeer (of a policy in namespace policyNs) match pod?
// podSelector alone: pods of the policy's namespace; namespaceSelector
// alone: every pod of the matching namespaces; both: their intersection.
// ipBlocks are never pods here.
function peerMatches(peer, policyNs, pod) {
    if (peer.ipBlock) return false;
    const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, nsLabels(pod.ns)) : pod.ns === policyNs;
    const podOk = peer.podSelector ? selects(peer.podSelector, pod.labels) : true;
    return nsOk && podOk;
}

// Does a rule's port list admit port (a number) on the destination pod?
// Named ports resolve through the destination's container ports.
function portMatches(ports, port, proto, dst) {
    if (!ports || ports.length === 0) return true;
    return ports.some((p) => {
        if ((p.protocol || "TCP") !== proto) return false;
        if (p.port === undefined) return true;
        const n = typeof p.port === "string" ? dst.ports[p.port] : p.port;
        if (n === undefined) return false;
        return p.endPort ? port >= n && port <= p.endPort : port === n;
    });
}

// The policies of pod's namespace that select it and restrict direction
// type; without policyTypes, Ingress always and Egress when it has rules.
function direction(policies, pod, type) {
    const types = (n) => n.spec.policyTypes || (n.spec.egress ? ["Ingress", "Egress"] : ["Ingress"]);
    return policies.filter((n) => nsOf(n) === pod.ns && selects(n.spec.podSelector, pod.labels) && types(n).includes(type));
}

// Is a connection from src to dst:port/proto allowed? Both the source's
// egress and the destination's ingress must allow it; a pod no policy of
// that direction selects is unrestricted in it.
export function allowed(policies, src, dst, port, proto = "TCP") {
    const eg = direction(policies, src, "Egress");
    const egOk = eg.length === 0 || eg.some((n) => (n.spec.egress || []).some((r) =>
        (!r.to || r.to.length === 0 || r.to.some((peer) => peerMatches(peer, nsOf(n), dst))) && portMatches(r.ports, port, proto, dst)));
    if (!egOk) return false;
    const ing = direction(policies, dst, "Ingress");
    return ing.length === 0 || ing.some((n) => (n.spec.ingress || []).some((r) =>
        (!r.from || r.from.length === 0 || r.from.some((peer) => peerMatches(peer, nsOf(n), src))) && portMatches(r.ports, port, proto, dst)));
}
