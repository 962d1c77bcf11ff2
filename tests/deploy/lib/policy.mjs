// Policy over a rendered environment (DESIGN.md section 7): returns a list
// of findings, "Kind/name: what is wrong"; an empty list passes.
//
// Workloads (Deployment, StatefulSet, DaemonSet, Job, CronJob):
//   - long-running ones have startup, readiness and liveness probes, and
//     readiness and liveness on distinct endpoints; probe ports exist;
//   - every container has CPU and memory requests and a memory limit;
//   - Pod Security "restricted": non-root, no privilege escalation, every
//     capability dropped, seccomp RuntimeDefault, and also a read-only root
//     filesystem, no host namespaces or hostPath, no service-account token;
//   - images pinned by a tag other than latest, or by digest;
//   - a PodDisruptionBudget when more than one replica (or an HPA minimum
//     above one), no replica count where an HPA scales, topology spread
//     for Deployments and StatefulSets;
//   - a NetworkPolicy with a non-empty pod selector selects it, and its
//     namespace has a default deny for ingress and egress.
// Services: no NodePort or LoadBalancer, valid port names, never the admin
// port. No Secret in the render (they come from KSOPS), no literal value in
// an env var named like a credential. Namespaces enforce "restricted". The
// routes ConfigMap is mounted as a directory (no subPath).

const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"]);
const LONG_RUNNING = new Set(["Deployment", "StatefulSet", "DaemonSet"]);
const ADMIN_PORT = 9090;
const ROUTES_CONFIGMAP = "glasgow-routes";
const CREDENTIAL_NAME = /(PASSWORD|SECRET|TOKEN|PRIVATE_KEY|ACCESS_KEY|SIGNING_KEY|DATABASE_URL)$/;

const nameOf = (o) => `${o.kind}/${(o.metadata && o.metadata.name) || "?"}`;
const nsOf = (o) => (o.metadata && o.metadata.namespace) || "default";

// IANA_SVC_NAME, as Kubernetes validates port names.
export function validPortName(n) {
    return (
        typeof n === "string" &&
        n.length >= 1 &&
        n.length <= 15 &&
        /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(n) &&
        /[a-z]/.test(n) &&
        !n.includes("--")
    );
}

// A pinned image: a tag that is not "latest", or a digest.
export function pinnedImage(image) {
    if (typeof image !== "string" || image === "") return false;
    if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
    const last = image.slice(image.lastIndexOf("/") + 1);
    const i = last.indexOf(":");
    if (i < 0) return false;
    const tag = last.slice(i + 1);
    return tag !== "" && tag !== "latest";
}

function matchExpr(labels, e) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
        case "In":
            return has && (e.values || []).includes(labels[e.key]);
        case "NotIn":
            return !has || !(e.values || []).includes(labels[e.key]);
        case "Exists":
            return has;
        case "DoesNotExist":
            return !has;
        default:
            return false;
    }
}

// Does a LabelSelector select these labels? An empty selector selects all.
export function selects(sel, labels) {
    if (!sel) return false;
    labels = labels || {};
    for (const [k, v] of Object.entries(sel.matchLabels || {})) if (labels[k] !== v) return false;
    for (const e of sel.matchExpressions || []) if (!matchExpr(labels, e)) return false;
    return true;
}

const emptySelector = (sel) =>
    !sel || (Object.keys(sel.matchLabels || {}).length === 0 && (sel.matchExpressions || []).length === 0);

function podTemplate(o) {
    if (!o.spec) return null;
    if (o.kind === "CronJob") return o.spec.jobTemplate && o.spec.jobTemplate.spec && o.spec.jobTemplate.spec.template;
    return o.spec.template;
}

function probeKey(p) {
    if (!p) return null;
    if (p.httpGet) return `http ${p.httpGet.port} ${p.httpGet.path || "/"}`;
    if (p.grpc) return `grpc ${p.grpc.port} ${p.grpc.service || ""}`;
    if (p.tcpSocket) return `tcp ${p.tcpSocket.port}`;
    if (p.exec) return `exec ${JSON.stringify(p.exec.command)}`;
    return JSON.stringify(p);
}

function probePort(p) {
    if (!p) return undefined;
    return (p.httpGet || p.tcpSocket || p.grpc || {}).port;
}

function checkContainer(c, pod, who, long, out) {
    const cs = c.securityContext || {};
    const ps = pod.securityContext || {};
    const w = `${who} container ${c.name}`;
    if (long) {
        for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"])
            if (!c[probe]) out.push(`${w}: no ${probe}`);
        if (c.readinessProbe && c.livenessProbe && probeKey(c.readinessProbe) === probeKey(c.livenessProbe))
            out.push(`${w}: readinessProbe and livenessProbe use the same endpoint`);
        const names = new Set((c.ports || []).map((p) => p.name).filter(Boolean));
        for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
            const port = probePort(c[probe]);
            if (typeof port === "string" && !names.has(port)) out.push(`${w}: ${probe} names port ${port}, which the container does not have`);
        }
    }
    const r = c.resources || {};
    for (const k of ["cpu", "memory"])
        if (!r.requests || r.requests[k] === undefined) out.push(`${w}: no ${k} request`);
    if (!r.limits || r.limits.memory === undefined) out.push(`${w}: no memory limit`);
    const nonRoot = cs.runAsNonRoot !== undefined ? cs.runAsNonRoot : ps.runAsNonRoot;
    if (nonRoot !== true) out.push(`${w}: runAsNonRoot is not true`);
    const uid = cs.runAsUser !== undefined ? cs.runAsUser : ps.runAsUser;
    if (uid === 0) out.push(`${w}: runs as UID 0`);
    if (cs.allowPrivilegeEscalation !== false) out.push(`${w}: allowPrivilegeEscalation is not false`);
    if (cs.privileged === true) out.push(`${w}: privileged`);
    const caps = cs.capabilities || {};
    if (!(caps.drop || []).includes("ALL")) out.push(`${w}: capabilities do not drop ALL`);
    for (const a of caps.add || []) if (a !== "NET_BIND_SERVICE") out.push(`${w}: adds capability ${a}`);
    const sec = (cs.seccompProfile || ps.seccompProfile || {}).type;
    if (sec !== "RuntimeDefault" && sec !== "Localhost") out.push(`${w}: seccompProfile is not RuntimeDefault`);
    if (cs.readOnlyRootFilesystem !== true) out.push(`${w}: root filesystem is not read-only`);
    if (!pinnedImage(c.image)) out.push(`${w}: image ${c.image} is not pinned by tag or digest`);
    for (const p of c.ports || []) {
        if (p.name !== undefined && !validPortName(p.name)) out.push(`${w}: invalid port name ${JSON.stringify(p.name)}`);
        if (p.hostPort) out.push(`${w}: hostPort ${p.hostPort}`);
    }
    for (const e of c.env || [])
        if (CREDENTIAL_NAME.test(e.name) && e.value !== undefined)
            out.push(`${w}: credential ${e.name} as a literal value (use a file: ${e.name}_FILE)`);
    const vols = new Map((pod.volumes || []).map((v) => [v.name, v]));
    for (const m of c.volumeMounts || []) {
        const v = vols.get(m.name);
        if (v && v.configMap && v.configMap.name === ROUTES_CONFIGMAP && m.subPath !== undefined)
            out.push(`${w}: mounts ${ROUTES_CONFIGMAP} with subPath (updates would never reach the pod)`);
        if (v && v.configMap && v.configMap.name === ROUTES_CONFIGMAP && m.subPathExpr !== undefined)
            out.push(`${w}: mounts ${ROUTES_CONFIGMAP} with subPathExpr`);
    }
}

export function checkPolicy(objects) {
    const out = [];
    const of = (kind) => objects.filter((o) => o && o.kind === kind);
    const netpols = of("NetworkPolicy");
    const pdbs = of("PodDisruptionBudget");
    const hpas = of("HorizontalPodAutoscaler");
    const sas = new Map(of("ServiceAccount").map((s) => [`${nsOf(s)}/${s.metadata.name}`, s]));
    const workloadNamespaces = new Set();

    for (const o of objects) {
        if (!o || !WORKLOADS.has(o.kind)) continue;
        const who = nameOf(o);
        const tpl = podTemplate(o);
        if (!tpl || !tpl.spec) {
            out.push(`${who}: no pod template`);
            continue;
        }
        const pod = tpl.spec;
        const labels = (tpl.metadata && tpl.metadata.labels) || {};
        const long = LONG_RUNNING.has(o.kind);
        const ns = nsOf(o);
        workloadNamespaces.add(ns);
        for (const c of pod.containers || []) checkContainer(c, pod, who, long, out);
        for (const c of pod.initContainers || []) checkContainer(c, pod, who, false, out);
        if (pod.hostNetwork || pod.hostPID || pod.hostIPC) out.push(`${who}: uses a host namespace`);
        for (const v of pod.volumes || []) if (v.hostPath) out.push(`${who}: hostPath volume ${v.name}`);
        const sa = sas.get(`${ns}/${pod.serviceAccountName || "default"}`);
        const automount = pod.automountServiceAccountToken !== undefined
            ? pod.automountServiceAccountToken
            : sa && sa.automountServiceAccountToken;
        if (automount !== false) out.push(`${who}: mounts a service-account token`);

        if (long) {
            let replicas = o.spec.replicas === undefined ? 1 : o.spec.replicas;
            for (const h of hpas) {
                const ref = h.spec && h.spec.scaleTargetRef;
                if (nsOf(h) === ns && ref && ref.kind === o.kind && ref.name === o.metadata.name) {
                    replicas = Math.max(replicas, h.spec.minReplicas === undefined ? 1 : h.spec.minReplicas);
                    // Argo CD's self-heal would reset what the HPA scales to
                    if (o.spec.replicas !== undefined) out.push(`${who}: sets replicas while ${nameOf(h)} scales it`);
                }
            }
            if (replicas > 1 && !pdbs.some((p) => nsOf(p) === ns && p.spec && selects(p.spec.selector, labels)))
                out.push(`${who}: ${replicas} replicas and no PodDisruptionBudget`);
            if (o.kind !== "DaemonSet" && !(pod.topologySpreadConstraints || []).length)
                out.push(`${who}: no topologySpreadConstraints`);
        }
        if (!netpols.some((n) => nsOf(n) === ns && n.spec && !emptySelector(n.spec.podSelector) && selects(n.spec.podSelector, labels)))
            out.push(`${who}: no NetworkPolicy selects its pods`);
    }

    for (const ns of workloadNamespaces) {
        const deny = netpols.some((n) => {
            if (nsOf(n) !== ns || !n.spec || !emptySelector(n.spec.podSelector)) return false;
            const types = n.spec.policyTypes || [];
            return types.includes("Ingress") && types.includes("Egress") && !(n.spec.ingress || []).length && !(n.spec.egress || []).length;
        });
        if (!deny) out.push(`Namespace/${ns}: no default-deny NetworkPolicy for ingress and egress`);
    }

    for (const s of of("Service")) {
        const who = nameOf(s);
        const type = (s.spec && s.spec.type) || "ClusterIP";
        if (type === "NodePort" || type === "LoadBalancer") out.push(`${who}: type ${type}`);
        for (const p of (s.spec && s.spec.ports) || []) {
            if (p.nodePort) out.push(`${who}: nodePort ${p.nodePort}`);
            if (p.name !== undefined && !validPortName(p.name)) out.push(`${who}: invalid port name ${JSON.stringify(p.name)}`);
            if (p.targetPort === "admin" || p.targetPort === ADMIN_PORT || p.port === ADMIN_PORT)
                out.push(`${who}: exposes the admin port`);
        }
    }
    for (const s of of("Secret")) out.push(`${nameOf(s)}: a Secret in plaintext in the manifests`);
    for (const n of of("Namespace")) {
        const l = (n.metadata && n.metadata.labels) || {};
        if (l["pod-security.kubernetes.io/enforce"] !== "restricted")
            out.push(`${nameOf(n)}: does not enforce Pod Security "restricted"`);
    }
    for (const p of of("PersistentVolumeClaim")) {
        const a = (p.metadata && p.metadata.annotations) || {};
        if (!/\bPrune=false\b/.test(a["argocd.argoproj.io/sync-options"] || ""))
            out.push(`${nameOf(p)}: not protected from pruning (argocd.argoproj.io/sync-options: Prune=false)`);
    }
    return out;
}
