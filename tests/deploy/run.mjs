// tests/deploy: offline verification of deploy/ and .github/workflows/,
// printed as TAP (tests/run-all runs it). No cluster is needed:
//  - `kubectl kustomize` renders every overlay, every part an Argo CD
//    Application points at, and the Argo CD tree;
//  - every rendered object validates strictly against its schema
//    (lib/schema.mjs) and the render passes the policy with zero findings
//    (lib/policy.mjs)
//    and CloudNativePG's webhook rules (lib/cnpg.mjs);
//  - the NetworkPolicies open exactly the intended paths (lib/netpol.mjs);
//  - the Argo CD objects hang together (waves, project limits, health check);
//  - the routes ConfigMap lists exactly routes/*.lua, a route change rolls
//    nothing, and `glasgow check` accepts routes/;
//  - the Secrets the workloads reference are the ones the KSOPS generators
//    list, with the keys the workloads read, and for dev (decrypted with the
//    committed dev key) values that agree with the manifests;
//  - the CI workflow parses, pins every action to a commit, and runs the
//    make targets .ci/run runs; deploy/set-image rewrites an overlay;
//  - every check above is also fed deliberately bad input and must fail.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { makeValidator } from "./lib/schema.mjs";
import { checkPolicy, pinnedImage, selects, validPortName } from "./lib/policy.mjs";
import { checkCnpg } from "./lib/cnpg.mjs";
import { allowed } from "./lib/netpol.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const rel = (p) => path.relative(repo, p) || ".";
const ENVS = ["dev", "prod"];
const PARTS = ["platform", "database", "store", "api"];

// ---- TAP ----
let n = 0;
let failures = 0;
const lines = [];
function ok(cond, name, diag = []) {
    n++;
    lines.push(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
    if (!cond) {
        failures++;
        for (const d of diag.slice(0, 40)) lines.push(`#   ${d}`);
        if (diag.length > 40) lines.push(`#   ... and ${diag.length - 40} more`);
    }
    return cond;
}
function skip(name, why) {
    n++;
    lines.push(`ok ${n} - ${name} # SKIP ${why}`);
}
function flush() {
    process.stdout.write(`1..${n}\n${lines.join("\n")}\n`);
}
// A crash (say, a render that lost an object a later check reads) still
// ends in a TAP plan, with the failure and its stack.
function crashed(e) {
    ok(false, `tests/deploy itself failed: ${e && e.message}`, String(e && e.stack).split("\n"));
    flush();
    process.exit(1);
}
process.on("uncaughtException", crashed);
process.on("unhandledRejection", crashed);

const nsOf = (o) => (o.metadata && o.metadata.namespace) || "default";

// ---- rendering ----
// kubectl from PATH, else the one .ci/deps installs from npm.
const onPath = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;
const KUBECTL = process.env.KUBECTL || (onPath ? "kubectl" : path.join(here, ".bin", "kubectl"));
const renders = new Map();
function render(dir) {
    if (renders.has(dir)) return renders.get(dir);
    let r;
    try {
        const out = execFileSync(KUBECTL, ["kustomize", "--load-restrictor", "LoadRestrictionsNone", dir], {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
            maxBuffer: 64 << 20,
        });
        const docs = YAML.parseAllDocuments(out);
        const errs = docs.flatMap((d) => d.errors.map((e) => e.message));
        r = errs.length ? { error: errs.join("; ") } : { objects: docs.map((d) => d.toJS()).filter(Boolean) };
    } catch (e) {
        r = { error: String((e.stderr && e.stderr.toString()) || e.message).trim() };
    }
    renders.set(dir, r);
    return r;
}

const D = (...p) => path.join(repo, "deploy", ...p);
const overlayDirs = ENVS.map((e) => D("overlays", e));
const partDirs = ENVS.flatMap((e) => PARTS.map((p) => D("overlays", e, p)));
const argoDirs = ENVS.map((e) => D("argocd", e));

const kubectlOk = spawnSync(KUBECTL, ["version", "--client"], { stdio: "ignore" }).status === 0;
if (!kubectlOk) {
    ok(false, `kubectl is available (${KUBECTL}); .ci/deps installs it where the machine has none`);
    flush();
    process.exit(1);
}

const all = [];
for (const dir of [...overlayDirs, ...partDirs, ...argoDirs]) {
    const r = render(dir);
    ok(!r.error, `kubectl kustomize ${rel(dir)} renders`, r.error ? r.error.split("\n") : []);
    if (r.objects) all.push(...r.objects);
}

// Secrets too: the KSOPS part below validates what the generator makes.
const validate = await makeValidator([...all, { apiVersion: "v1", kind: "Secret" }]);
for (const dir of [...overlayDirs, ...argoDirs]) {
    const r = render(dir);
    if (!r.objects) continue;
    const errs = r.objects.flatMap((o) => validate(o));
    ok(errs.length === 0, `${rel(dir)}: ${r.objects.length} objects validate strictly against their schemas`, errs);
}
for (const dir of overlayDirs) {
    const r = render(dir);
    if (!r.objects) continue;
    const findings = checkPolicy(r.objects);
    ok(findings.length === 0, `${rel(dir)}: policy has zero findings`, findings);
    const webhook = checkCnpg(r.objects);
    ok(webhook.length === 0, `${rel(dir)}: nothing CloudNativePG's webhooks refuse (fixed PostgreSQL parameters, PgBouncer allow-list)`, webhook);
}
// The bootstrap patch for Argo CD's repo server is a partial Deployment:
// only unknown fields count there (required ones are the install's).
{
    const f = D("argocd", "bootstrap", "repo-server-patch.yaml");
    const patch = YAML.parse(fs.readFileSync(f, "utf8"));
    const errs = validate(patch).filter((e) => /unknown field|must be/.test(e) && !/required/.test(e));
    ok(errs.length === 0, `${rel(f)}: no unknown or mistyped field`, errs);
}

// ---- the parts as Argo CD sees them ----
const byKind = (objs, kind) => objs.filter((o) => o.kind === kind);
for (const env of ENVS) {
    const whole = render(D("overlays", env)).objects || [];
    const parts = PARTS.map((p) => render(D("overlays", env, p)).objects || []);
    const key = (o) => `${o.apiVersion} ${o.kind} ${o.metadata.namespace || ""} ${o.metadata.name}`;
    const seen = new Map();
    const dup = [];
    for (const o of parts.flat()) {
        if (seen.has(key(o))) dup.push(key(o));
        seen.set(key(o), true);
    }
    const wholeKeys = new Set(whole.map(key));
    ok(
        dup.length === 0 && seen.size === wholeKeys.size && [...seen.keys()].every((k) => wholeKeys.has(k)),
        `deploy/overlays/${env}: the Argo CD parts (${PARTS.join(", ")}) together are exactly the whole, no object in two`,
        dup.map((d) => `in two parts: ${d}`),
    );
}

// ---- Argo CD ----
function checkArgo(env) {
    const objs = render(D("argocd", env)).objects || [];
    const apps = byKind(objs, "Application");
    const projects = new Map(byKind(objs, "AppProject").map((p) => [p.metadata.name, p]));
    const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === "argocd-cm");
    const out = [];
    const root = apps.find((a) => a.metadata.name === "glasgow-root");
    if (!root) out.push("no glasgow-root Application");
    else if (root.spec.source.path !== `deploy/argocd/${env}`) out.push(`glasgow-root points at ${root.spec.source.path}`);
    const children = apps.filter((a) => a !== root);
    const want = ["platform", "secrets", "database", "store", "api"];
    const names = children.map((a) => a.metadata.name).sort();
    if (JSON.stringify(names) !== JSON.stringify(want.map((w) => `glasgow-${w}`).sort()))
        out.push(`child Applications are ${names.join(", ")}`);
    const wave = (a) => Number((a.metadata.annotations || {})["argocd.argoproj.io/sync-wave"]);
    const w = Object.fromEntries(children.map((a) => [a.metadata.name.replace("glasgow-", ""), wave(a)]));
    if (!(w.platform < w.secrets && w.secrets < w.database && w.database === w.store && w.store < w.api))
        out.push(`sync waves out of order: ${JSON.stringify(w)}`);
    for (const a of apps) {
        const sp = a.spec.syncPolicy || {};
        const auto = sp.automated || {};
        if (auto.prune !== true || auto.selfHeal !== true) out.push(`${a.metadata.name}: automated sync without prune and selfHeal`);
        const proj = projects.get(a.spec.project);
        if (!proj) {
            out.push(`${a.metadata.name}: project ${a.spec.project} is not defined here`);
            continue;
        }
        if (!(proj.spec.sourceRepos || []).includes(a.spec.source.repoURL))
            out.push(`${a.metadata.name}: repo ${a.spec.source.repoURL} not allowed by ${proj.metadata.name}`);
        if ((proj.spec.sourceRepos || []).includes("*")) out.push(`${proj.metadata.name}: allows every repository`);
        const dir = path.join(repo, a.spec.source.path);
        if (!fs.existsSync(dir)) {
            out.push(`${a.metadata.name}: path ${a.spec.source.path} does not exist`);
            continue;
        }
        if (a === root) continue;
        if (a.spec.project === "glasgow-bootstrap") out.push(`${a.metadata.name}: a child in the bootstrap project`);
        // The project must let the child deploy what its path renders, and
        // only into its destinations. The secrets part is rendered by KSOPS:
        // what it makes is Secrets in glasgow.
        const rendered = a.spec.source.path.endsWith("/secrets")
            ? [{ apiVersion: "v1", kind: "Secret", metadata: { name: "x", namespace: "glasgow" } }]
            : render(dir).objects || [];
        for (const o of rendered) {
            const group = o.apiVersion.includes("/") ? o.apiVersion.split("/")[0] : "";
            const clusterScoped = ["Namespace", "ClusterIssuer"].includes(o.kind);
            const list = clusterScoped ? proj.spec.clusterResourceWhitelist : proj.spec.namespaceResourceWhitelist;
            if (!(list || []).some((e) => e.group === group && e.kind === o.kind))
                out.push(`${a.metadata.name}: ${proj.metadata.name} does not allow ${group || "core"}/${o.kind}`);
            const ns = clusterScoped ? null : o.metadata.namespace || a.spec.destination.namespace;
            if (ns && !(proj.spec.destinations || []).some((d) => d.namespace === ns && d.server === a.spec.destination.server))
                out.push(`${a.metadata.name}: ${o.kind}/${o.metadata.name} goes to namespace ${ns}, not a destination of ${proj.metadata.name}`);
        }
    }
    for (const o of [...projects.values(), cm].filter(Boolean))
        if (!(wave(o) < Math.min(...Object.values(w)))) out.push(`${o.kind}/${o.metadata.name} does not sync before the child Applications`);
    if (!cm) out.push("no argocd-cm");
    else {
        const d = cm.data || {};
        for (const flag of ["--enable-alpha-plugins", "--enable-exec", "--load-restrictor LoadRestrictionsNone"])
            if (!(d["kustomize.buildOptions"] || "").includes(flag)) out.push(`argocd-cm kustomize.buildOptions lacks ${flag}`);
        const hc = d["resource.customizations.health.argoproj.io_Application"] || "";
        if (!/obj\.status\.health/.test(hc) || !/return hs/.test(hc)) out.push("argocd-cm has no health check for Applications");
    }
    return out;
}
for (const env of ENVS) {
    const out = checkArgo(env);
    ok(out.length === 0, `deploy/argocd/${env}: root app, child apps in waves, project limits and health check hang together`, out);
}

// ---- structure the policy does not cover ----
for (const env of ENVS) {
    const objs = render(D("overlays", env)).objects || [];
    const out = [];
    const find = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
    const mig = find("Job", "glasgow-migrate");
    const ann = (mig && mig.metadata.annotations) || {};
    if (!mig) out.push("no migration Job");
    else {
        if (ann["argocd.argoproj.io/hook"] !== "PreSync") out.push("migration Job is not a PreSync hook");
        if (!ann["argocd.argoproj.io/hook-delete-policy"]) out.push("migration Job has no hook-delete-policy");
        const c = mig.spec.template.spec.containers[0];
        if (JSON.stringify(c.args) !== '["migrate"]') out.push(`migration Job runs ${JSON.stringify(c.args)}`);
        if ((c.envFrom || []).length) out.push("migration Job reads a ConfigMap a PreSync hook may not find");
    }
    const gc = find("CronJob", "glasgow-gc");
    if (!gc) out.push("no gc CronJob");
    else {
        if (gc.spec.concurrencyPolicy !== "Forbid") out.push("gc CronJob does not forbid overlapping runs");
        if (JSON.stringify(gc.spec.jobTemplate.spec.template.spec.containers[0].args) !== '["gc"]') out.push("gc CronJob does not run gc");
    }
    const setup = find("Job", "minio-setup");
    if (!setup || ((setup.metadata.annotations || {})["argocd.argoproj.io/hook"] || "") !== "PostSync")
        out.push("no MinIO setup Job as a PostSync hook");
    const minio = find("Deployment", "minio");
    const mimg = minio && minio.spec.template.spec.containers[0].image;
    if (!/@sha256:[0-9a-f]{64}$/.test(mimg || "")) out.push(`MinIO image not pinned by digest: ${mimg}`);
    const api = find("Deployment", "glasgow-api");
    const routesVol = api && (api.spec.template.spec.volumes || []).find((v) => v.configMap && v.configMap.name === "glasgow-routes");
    const routesMount = routesVol && api.spec.template.spec.containers[0].volumeMounts.find((m) => m.name === routesVol.name);
    if (!routesMount || routesMount.mountPath !== "/srv/glasgow/routes") out.push("the routes ConfigMap is not mounted at /srv/glasgow/routes");
    const routes = find("ConfigMap", "glasgow-routes");
    if (!routes) out.push("no ConfigMap named exactly glasgow-routes (disableNameSuffixHash)");
    const cfg = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("glasgow-config"));
    const tp = cfg && cfg.data.GLASGOW_TRUSTED_PROXIES;
    if (!tp || !/^\d+\.\d+\.\d+\.\d+\/\d+(,\s*\d+\.\d+\.\d+\.\d+\/\d+)*$/.test(tp)) out.push(`GLASGOW_TRUSTED_PROXIES is ${tp}`);
    if (cfg && cfg.data.DATABASE_URL) out.push("DATABASE_URL in a ConfigMap");
    const svc = find("Service", "glasgow-api");
    const svcPorts = new Map(((svc && svc.spec.ports) || []).map((p) => [p.name, p]));
    const host = env === "dev" ? "api.glasgow.local" : "api.glasgow.example";
    if (!cfg || cfg.data.GLASGOW_PUBLIC_URL !== `https://${host}`) out.push(`GLASGOW_PUBLIC_URL is ${cfg && cfg.data.GLASGOW_PUBLIC_URL}, not https://${host}`);
    const irs = byKind(objs, "IngressRoute");
    const eps = irs.flatMap((r) => r.spec.entryPoints || []).sort();
    if (JSON.stringify(eps) !== '["web","websecure"]') out.push(`IngressRoute entry points: ${eps.join(", ")}`);
    for (const r of irs) {
        for (const rt of r.spec.routes) {
            if (rt.match !== `Host(\`${host}\`)`) out.push(`${r.metadata.name}: matches ${rt.match}, not the API host only`);
            for (const s of rt.services || []) {
                if (s.kind === "TraefikService" && s.name === "noop@internal") continue;
                if (s.name !== "glasgow-api") out.push(`${r.metadata.name}: routes to ${s.name}`);
                const sp = svcPorts.get(s.port) || [...svcPorts.values()].find((p) => p.port === s.port);
                if (!sp || sp.targetPort !== "http") out.push(`${r.metadata.name}: routes to port ${s.port}, which is not the API port`);
            }
        }
        const mw = (r.spec.routes[0].middlewares || []).map((m) => m.name).sort();
        if (r.spec.entryPoints.includes("web") && JSON.stringify(mw) !== '["redirect-https"]') out.push(`${r.metadata.name}: port 80 does not only redirect`);
        if (r.spec.entryPoints.includes("websecure") && JSON.stringify(mw) !== '["rate-limit","security-headers"]')
            out.push(`${r.metadata.name}: middlewares ${mw.join(", ")}`);
        if (r.spec.entryPoints.includes("websecure") && !(r.spec.tls && r.spec.tls.secretName)) out.push(`${r.metadata.name}: no TLS`);
    }
    const cert = find("Certificate", "glasgow-api");
    if (!cert || JSON.stringify(cert.spec.dnsNames) !== JSON.stringify([host])) out.push(`Certificate dnsNames: ${cert && cert.spec.dnsNames}`);
    const issuers = byKind(objs, "ClusterIssuer").map((i) => i.metadata.name);
    if (cert && !issuers.includes(cert.spec.issuerRef.name)) out.push(`Certificate uses issuer ${cert.spec.issuerRef.name}, not defined in ${env}`);
    if (env === "prod") {
        for (const i of ["letsencrypt-staging", "letsencrypt-prod"]) if (!issuers.includes(i)) out.push(`no ClusterIssuer ${i}`);
        for (const i of byKind(objs, "ClusterIssuer")) {
            const solvers = (i.spec.acme && i.spec.acme.solvers) || [];
            if (!solvers.some((s) => s.http01 && s.http01.ingress && s.http01.ingress.ingressClassName === "traefik"))
                out.push(`${i.metadata.name}: no HTTP-01 solver through Traefik`);
        }
        const cl = find("Cluster", "glasgow-pg");
        const b = cl && cl.spec.backup && cl.spec.backup.barmanObjectStore;
        if (!b || !/^s3:\/\//.test(b.destinationPath)) out.push("prod PostgreSQL has no S3 backup");
        if (!find("Pooler", "glasgow-pg-pooler-rw")) out.push("prod has no PgBouncer Pooler");
    } else {
        const ca = issuers.includes("glasgow-dev-ca") && issuers.includes("glasgow-dev-selfsigned");
        const caCert = objs.find((o) => o.kind === "Certificate" && o.spec.isCA === true);
        if (!ca || !caCert) out.push("dev has no self-signed CA chain (selfSigned -> CA Certificate -> CA ClusterIssuer)");
    }
    for (const c of byKind(objs, "Cluster")) {
        const a = (c.metadata.annotations || {})["argocd.argoproj.io/sync-options"] || "";
        if (!/Prune=false/.test(a) || !/Delete=false/.test(a)) out.push(`Cluster/${c.metadata.name} not protected from prune and delete`);
    }
    ok(out.length === 0, `deploy/overlays/${env}: hooks, routes mount, host-only routing, TLS issuers, database and store as specified`, out);
}

// ---- who may talk to whom: the NetworkPolicies as a connectivity matrix ----
// Pods as the render and the operators make them; every pair below is
// checked both ways it could go wrong (allowed when it must not be, and
// refused when it must be allowed), and every pair not listed as allowed
// among these pods on these ports must be refused.
for (const env of ENVS) {
    const objs = render(D("overlays", env)).objects || [];
    const policies = byKind(objs, "NetworkPolicy");
    const tplOf = (kind, name) => {
        const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
        const t = o && (kind === "CronJob" ? o.spec.jobTemplate.spec.template : o.spec.template);
        if (!t) return { ns: "glasgow", labels: {}, ports: {} };
        const ports = Object.fromEntries(t.spec.containers.flatMap((c) => c.ports || []).filter((p) => p.name).map((p) => [p.name, p.containerPort]));
        return { ns: nsOf(o), labels: t.metadata.labels, ports };
    };
    const pods = {
        api: tplOf("Deployment", "glasgow-api"),
        migrate: tplOf("Job", "glasgow-migrate"),
        gc: tplOf("CronJob", "glasgow-gc"),
        minio: tplOf("Deployment", "minio"),
        "minio-setup": tplOf("Job", "minio-setup"),
        postgres: { ns: "glasgow", labels: { "cnpg.io/cluster": "glasgow-pg", "cnpg.io/podRole": "instance" }, ports: {} },
        pooler: { ns: "glasgow", labels: { "cnpg.io/poolerName": "glasgow-pg-pooler-rw" }, ports: {} },
        "acme-solver": { ns: "glasgow", labels: { "acme.cert-manager.io/http01-solver": "true" }, ports: {} },
        intruder: { ns: "glasgow", labels: { app: "debug-shell" }, ports: {} },
        traefik: { ns: "traefik", labels: { "app.kubernetes.io/name": "traefik" }, ports: {} },
        monitoring: { ns: "monitoring", labels: { "app.kubernetes.io/name": "prometheus" }, ports: {} },
        operator: { ns: "cnpg-system", labels: { "app.kubernetes.io/name": "cloudnative-pg" }, ports: {} },
        dns: { ns: "kube-system", labels: { "k8s-app": "kube-dns" }, ports: {} },
        outsider: { ns: "default", labels: { app: "web" }, ports: {} },
    };
    const must = new Set([
        "traefik>api:8080", "traefik>acme-solver:8089", "monitoring>api:9090",
        "api>postgres:5432", "api>pooler:5432", "api>minio:9000",
        "migrate>postgres:5432", "gc>postgres:5432", "gc>minio:9000", "minio-setup>minio:9000",
        "pooler>postgres:5432", "postgres>postgres:5432", "postgres>postgres:8000",
        "operator>postgres:5432", "operator>postgres:8000", "operator>pooler:5432",
    ]);
    const ports = [53, 5432, 8000, 8080, 8089, 9000, 9090];
    const out = [];
    for (const [sn, src] of Object.entries(pods)) {
        for (const [dn, dst] of Object.entries(pods)) {
            for (const port of ports) {
                const key = `${sn}>${dn}:${port}`;
                const got = allowed(policies, src, dst, port);
                // DNS: every pod of glasgow reaches kube-dns on 53; pods
                // outside glasgow are not ours to restrict.
                const ours = src.ns === "glasgow" || dst.ns === "glasgow";
                const want = must.has(key) || (dn === "dns" && port === 53) || !ours;
                if (got !== want) out.push(`${key} ${got ? "allowed" : "refused"}, should be ${want ? "allowed" : "refused"}`);
            }
        }
        if (src.ns === "glasgow" && !allowed(policies, src, pods.dns, 53, "UDP")) out.push(`${sn} cannot resolve names (UDP 53)`);
    }
    ok(out.length === 0, `deploy/overlays/${env}: the NetworkPolicies allow exactly the intended paths among ${Object.keys(pods).length} pods on ${ports.length} ports`, out);
}

// ---- connection arithmetic (README) ----
{
    const objs = render(D("overlays", "prod")).objects || [];
    const hpa = objs.find((o) => o.kind === "HorizontalPodAutoscaler" && o.metadata.name === "glasgow-api");
    const cfg = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("glasgow-config"));
    const cl = objs.find((o) => o.kind === "Cluster");
    const pooler = objs.find((o) => o.kind === "Pooler");
    const maxConn = Number(cl.spec.postgresql.parameters.max_connections);
    const clients = hpa.spec.maxReplicas * Number(cfg.data.GLASGOW_WORKERS) * Number(cfg.data.GLASGOW_DB_POOL_SIZE);
    const pp = pooler.spec.pgbouncer.parameters;
    const server = pooler.spec.instances * Number(pp.max_db_connections);
    const jobs = 2 * Number(cfg.data.GLASGOW_DB_POOL_SIZE); // migrate + gc, direct, at most one pool each
    const reserved = 3 + 10; // superuser_reserved_connections, operator and monitoring
    const listeners = hpa.spec.maxReplicas * Number(cfg.data.GLASGOW_WORKERS); // token cache LISTEN, direct
    ok(
        clients + jobs + listeners + reserved < maxConn && server + jobs + listeners + reserved < maxConn &&
            clients <= Number(pp.max_client_conn) &&
            Number(pp.default_pool_size) + Number(pp.reserve_pool_size) <= Number(pp.max_db_connections),
        `prod connections: ${hpa.spec.maxReplicas} pods x ${cfg.data.GLASGOW_WORKERS} workers x ${cfg.data.GLASGOW_DB_POOL_SIZE} = ${clients}, ` +
            `+ jobs ${jobs} + listeners ${listeners} + reserved ${reserved} < max_connections ${maxConn} even without the pooler; through it ` +
            `${pooler.spec.instances} x ${pp.max_db_connections} = ${server} server connections; one PgBouncer takes all ${clients} (max_client_conn ${pp.max_client_conn})`,
    );
}

// ---- routes ----
{
    const kz = YAML.parse(fs.readFileSync(D("base", "api", "kustomization.yaml"), "utf8"));
    const gen = (kz.configMapGenerator || []).find((g) => g.name === "glasgow-routes");
    const listed = ((gen && gen.files) || []).map((f) => path.resolve(D("base", "api"), f)).sort();
    const actual = fs.readdirSync(path.join(repo, "routes")).filter((f) => f.endsWith(".lua")).map((f) => path.join(repo, "routes", f)).sort();
    const missing = actual.filter((f) => !listed.includes(f)).map((f) => `not listed: ${rel(f)}`);
    const extra = listed.filter((f) => !actual.includes(f)).map((f) => `listed but not in routes/: ${rel(f)}`);
    ok(missing.length + extra.length === 0 && listed.length > 0, `the routes ConfigMap generator lists exactly routes/*.lua (${actual.length} files)`, [...missing, ...extra]);
    const cm = (render(D("overlays", "dev")).objects || []).find((o) => o.kind === "ConfigMap" && o.metadata.name === "glasgow-routes");
    const same = cm && actual.every((f) => cm.data[path.basename(f)] === fs.readFileSync(f, "utf8"));
    ok(!!same, "the rendered routes ConfigMap holds routes/*.lua byte for byte");
    // A route change must reach the pods through the mounted ConfigMap
    // alone: the Deployment renders the same, so a sync rolls nothing.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "glasgow-routes."));
    try {
        fs.cpSync(D("base"), path.join(tmp, "deploy", "base"), { recursive: true });
        fs.cpSync(D("overlays"), path.join(tmp, "deploy", "overlays"), { recursive: true });
        fs.cpSync(path.join(repo, "routes"), path.join(tmp, "routes"), { recursive: true });
        const pick = (objs, kind, name) => JSON.stringify(objs.find((o) => o.kind === kind && o.metadata.name === name));
        const dir = path.join(tmp, "deploy", "overlays", "dev", "api");
        const before = render(D("overlays", "dev", "api")).objects || [];
        fs.appendFileSync(path.join(tmp, "routes", path.basename(actual[0])), "\n-- changed\n");
        const after = render(dir).objects || [];
        ok(
            after.length > 0 &&
                pick(before, "Deployment", "glasgow-api") === pick(after, "Deployment", "glasgow-api") &&
                pick(before, "ConfigMap", "glasgow-routes") !== pick(after, "ConfigMap", "glasgow-routes"),
            "a route change alters the routes ConfigMap and not the Deployment (no rollout)",
        );
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    const bin = process.env.GLASGOW_BIN || path.join(repo, process.env.BUILD || "build", "glasgow");
    if (!fs.existsSync(bin)) skip("glasgow check routes/ passes", `no ${rel(bin)} (make builds it first)`);
    else {
        const r = spawnSync(bin, ["check", path.join(repo, "routes")], { encoding: "utf8", cwd: repo, timeout: 60000 });
        ok(r.status === 0, "glasgow check routes/ passes", `${r.stdout || ""}${r.stderr || ""}`.split("\n"));
    }
}

// ---- Secrets: what the workloads read is what the KSOPS generators make ----
function secretRefs(objs) {
    const refs = []; // {secret, key, who}
    for (const o of objs) {
        const tpl = o.kind === "CronJob" ? o.spec.jobTemplate.spec.template : o.spec && o.spec.template;
        if (!tpl || !tpl.spec || !tpl.spec.containers) continue;
        const who = `${o.kind}/${o.metadata.name}`;
        const pod = tpl.spec;
        for (const v of pod.volumes || []) {
            if (v.secret) refs.push(...(v.secret.items || [{}]).map((i) => ({ secret: v.secret.secretName, key: i.key, who })));
            for (const s of (v.projected && v.projected.sources) || [])
                if (s.secret) refs.push(...(s.secret.items || [{}]).map((i) => ({ secret: s.secret.name, key: i.key, who })));
        }
        for (const c of [...pod.containers, ...(pod.initContainers || [])])
            for (const e of c.env || [])
                if (e.valueFrom && e.valueFrom.secretKeyRef) refs.push({ secret: e.valueFrom.secretKeyRef.name, key: e.valueFrom.secretKeyRef.key, who });
    }
    for (const o of objs.filter((x) => x.kind === "Cluster")) {
        const who = `Cluster/${o.metadata.name}`;
        const init = o.spec.bootstrap && o.spec.bootstrap.initdb;
        if (init && init.secret) refs.push({ secret: init.secret.name, key: "username", who }, { secret: init.secret.name, key: "password", who });
        const s3 = o.spec.backup && o.spec.backup.barmanObjectStore && o.spec.backup.barmanObjectStore.s3Credentials;
        if (s3) for (const k of ["accessKeyId", "secretAccessKey"]) if (s3[k]) refs.push({ secret: s3[k].name, key: s3[k].key, who });
    }
    return refs;
}
// Decrypted values against the manifests: the URLs name the services the
// manifests define, with the owner CloudNativePG creates; MinIO's minimum
// lengths; a signing key long enough for HMAC-SHA-256.
function checkSecretValues(objs, vals) {
    const out = [];
    const cluster = objs.find((o) => o.kind === "Cluster");
    const pooler = objs.find((o) => o.kind === "Pooler");
    const ns = cluster.metadata.namespace;
    const db = vals("glasgow-db");
    const init = cluster.spec.bootstrap.initdb;
    const direct = `${cluster.metadata.name}-rw.${ns}.svc`;
    const viaApi = pooler ? `${pooler.metadata.name}.${ns}.svc` : direct;
    if (db.username !== init.owner) out.push(`glasgow-db username is not the owner ${init.owner}`);
    for (const [key, host] of [["DATABASE_URL", viaApi], ["DATABASE_URL_DIRECT", direct]]) {
        let u;
        try {
            u = new URL(db[key]);
        } catch {
            out.push(`glasgow-db ${key} is not a URL`);
            continue;
        }
        if (!/^postgres(ql)?:$/.test(u.protocol)) out.push(`glasgow-db ${key}: scheme ${u.protocol}`);
        if (u.hostname !== host) out.push(`glasgow-db ${key}: host ${u.hostname}, expected ${host}`);
        if (decodeURIComponent(u.username) !== db.username) out.push(`glasgow-db ${key}: user is not the username key`);
        if (decodeURIComponent(u.password) !== db.password) out.push(`glasgow-db ${key}: password is not the password key`);
        if (u.pathname !== `/${init.database}`) out.push(`glasgow-db ${key}: database ${u.pathname}, expected /${init.database}`);
    }
    const s3 = vals("glasgow-s3");
    if ((s3.S3_ACCESS_KEY_ID || "").length < 3 || (s3.S3_SECRET_ACCESS_KEY || "").length < 8) out.push("glasgow-s3 keys shorter than MinIO accepts (3 and 8)");
    const root = vals("minio-root");
    if ((root.MINIO_ROOT_USER || "").length < 3 || (root.MINIO_ROOT_PASSWORD || "").length < 8) out.push("minio-root shorter than MinIO accepts (3 and 8)");
    if (root.MINIO_ROOT_USER === s3.S3_ACCESS_KEY_ID) out.push("the API's S3 user is MinIO's root user");
    if ((vals("glasgow-url-signing").GLASGOW_URL_SIGNING_KEY || "").length < 32) out.push("GLASGOW_URL_SIGNING_KEY shorter than 32 bytes");
    if ((vals("glasgow-bootstrap-admin").password || "").length < 12) out.push("the bootstrap admin password is shorter than 12");
    return out;
}

for (const env of ENVS) {
    const objs = render(D("overlays", env)).objects || [];
    const genDir = D("overlays", env, "secrets");
    const gen = YAML.parse(fs.readFileSync(path.join(genDir, "ksops.yaml"), "utf8"));
    const files = gen.files || [];
    const names = new Set(files.map((f) => path.basename(f, ".yaml")));
    const refs = secretRefs(objs);
    const unlisted = [...new Set(refs.filter((r) => !names.has(r.secret)).map((r) => `${r.who} reads Secret ${r.secret}, which ${rel(path.join(genDir, "ksops.yaml"))} does not list`))];
    const wrongDir = files.filter((f) => path.resolve(genDir, f) !== path.join(repo, "secrets", env, path.basename(f))).map((f) => `${f} is not in secrets/${env}/`);
    ok(refs.length > 0 && unlisted.length + wrongDir.length === 0, `${env}: every Secret the workloads read is generated by KSOPS from secrets/${env}/`, [...unlisted, ...wrongDir]);

    const present = files.filter((f) => fs.existsSync(path.resolve(genDir, f)));
    if (present.length === 0) {
        skip(`${env}: the KSOPS generator yields Secrets with every key the workloads read`, `no secrets/${env}/ in this tree`);
        continue;
    }
    // The ksops exec plugin's contract, run the way kustomize runs it.
    // With the committed dev key and the repository's SOPS tool, the dev
    // Secrets are really decrypted (MACs checked) and their values checked
    // against the manifests; otherwise only names and keys.
    const stub = path.join(here, "ksops-stub", "ksops");
    const devKey = path.join(repo, "secrets", env, "age-dev.key");
    const decrypt = fs.existsSync(devKey) && fs.existsSync(path.join(repo, ".ci", "sops_tool.py"));
    const stubEnv = { ...process.env };
    delete stubEnv.SOPS_AGE_KEY_FILE;
    delete stubEnv.SOPS_AGE_KEY;
    if (decrypt) stubEnv.SOPS_AGE_KEY_FILE = devKey;
    const r = spawnSync(process.execPath, [stub], {
        cwd: genDir,
        env: stubEnv,
        input: YAML.stringify({ apiVersion: "config.kubernetes.io/v1", kind: "ResourceList", items: [], functionConfig: gen }),
        encoding: "utf8",
    });
    const out = [];
    if (r.status !== 0) out.push(...String(r.stderr).split("\n"));
    else {
        const secrets = (YAML.parse(r.stdout).items || []).filter((i) => i.kind === "Secret");
        const byName = new Map(secrets.map((s) => [s.metadata.name, s]));
        for (const ref of refs) {
            const s = byName.get(ref.secret);
            if (!s) out.push(`${ref.who}: Secret ${ref.secret} not generated`);
            else if (ref.key && !((s.data && ref.key in s.data) || (s.stringData && ref.key in s.stringData)))
                out.push(`${ref.who}: Secret ${ref.secret} has no key ${ref.key}`);
            else if (s.metadata.namespace && s.metadata.namespace !== "glasgow") out.push(`Secret ${ref.secret} is in namespace ${s.metadata.namespace}`);
        }
        // CloudNativePG takes the owner's credentials from a basic-auth Secret
        for (const c of byKind(objs, "Cluster")) {
            const init = c.spec.bootstrap && c.spec.bootstrap.initdb;
            const sec = init && init.secret && byName.get(init.secret.name);
            if (sec && sec.type !== "kubernetes.io/basic-auth") out.push(`Secret ${init.secret.name} is of type ${sec.type}, not kubernetes.io/basic-auth`);
        }
        for (const s of secrets) out.push(...validate(s));
        if (decrypt && out.length === 0) {
            const vals = (name) => {
                const s = byName.get(name) || {};
                const v = { ...(s.stringData || {}) };
                for (const [k, x] of Object.entries(s.data || {})) v[k] = Buffer.from(x, "base64").toString("utf8");
                return v;
            };
            out.push(...checkSecretValues(objs, vals));
        }
    }
    ok(out.length === 0, `${env}: the KSOPS generator ${decrypt ? "decrypts (dev key, MACs verified) to" : "yields"} Secrets with every key the workloads read${decrypt ? ", values consistent with the manifests" : ""}`, out);
}

// ---- negative tests: the checks must be able to fail ----
{
    const dev = render(D("overlays", "dev")).objects || [];
    const base = dev.find((o) => o.kind === "Deployment" && o.metadata.name === "glasgow-api");
    const others = dev.filter((o) => o !== base);
    const mutate = (f) => {
        const d = structuredClone(base);
        f(d, d.spec.template.spec.containers[0], d.spec.template.spec);
        return d;
    };
    const cases = [
        ["missing readiness probe", (d, c) => delete c.readinessProbe, /no readinessProbe/],
        ["missing startup probe", (d, c) => delete c.startupProbe, /no startupProbe/],
        ["liveness on the readiness endpoint", (d, c) => (c.livenessProbe = structuredClone(c.readinessProbe)), /same endpoint/],
        ["probe on a port the container lacks", (d, c) => (c.livenessProbe.httpGet.port = "metrics"), /names port metrics/],
        ["no memory limit", (d, c) => delete c.resources.limits, /no memory limit/],
        ["no cpu request", (d, c) => delete c.resources.requests.cpu, /no cpu request/],
        ["privilege escalation", (d, c) => (c.securityContext.allowPrivilegeEscalation = true), /allowPrivilegeEscalation/],
        ["root", (d, c, p) => { delete c.securityContext.runAsNonRoot; delete p.securityContext.runAsNonRoot; }, /runAsNonRoot/],
        ["capabilities kept", (d, c) => (c.securityContext.capabilities = { add: ["NET_ADMIN"] }), /drop ALL/],
        ["no seccomp", (d, c, p) => { delete c.securityContext.seccompProfile; delete p.securityContext.seccompProfile; }, /seccompProfile/],
        ["writable root filesystem", (d, c) => (c.securityContext.readOnlyRootFilesystem = false), /read-only/],
        ["service-account token", (d, c, p) => { p.automountServiceAccountToken = true; }, /service-account token/],
        ["image :latest", (d, c) => (c.image = "ghcr.io/glasgow-api/glasgow:latest"), /not pinned/],
        ["image without tag", (d, c) => (c.image = "ghcr.io/glasgow-api/glasgow"), /not pinned/],
        ["invalid port name", (d, c) => (c.ports[0].name = "Http_Port"), /invalid port name/],
        ["routes mounted with subPath", (d, c) => (c.volumeMounts.find((m) => m.name === "routes").subPath = "hello.lua"), /subPath/],
        ["credential as a literal", (d, c) => c.env.push({ name: "DATABASE_URL", value: "postgresql://u:p@h/db" }), /literal value/],
        ["no topology spread", (d, c, p) => delete p.topologySpreadConstraints, /topologySpreadConstraints/],
        ["hostPath volume", (d, c, p) => p.volumes.push({ name: "h", hostPath: { path: "/" } }), /hostPath/],
        ["replicas fixed under an HPA", (d) => (d.spec.replicas = 2), /sets replicas while HorizontalPodAutoscaler/],
    ];
    for (const [what, f, want] of cases) {
        const findings = checkPolicy([...others, mutate(f)]);
        ok(findings.some((x) => want.test(x)), `policy catches: ${what}`, findings.length ? findings : ["no finding"]);
    }
    const pdbless = structuredClone(base);
    pdbless.spec.replicas = 3;
    pdbless.spec.template.metadata.labels = { "app.kubernetes.io/name": "other" };
    pdbless.spec.selector.matchLabels = { "app.kubernetes.io/name": "other" };
    pdbless.metadata.name = "other";
    let f = checkPolicy([...dev, pdbless]);
    ok(f.some((x) => /other: 3 replicas and no PodDisruptionBudget/.test(x)), "policy catches: 3 replicas without a PDB", f);
    ok(f.some((x) => /other: no NetworkPolicy selects/.test(x)), "policy catches: pods no NetworkPolicy selects", f);
    f = checkPolicy(dev.filter((o) => !(o.kind === "NetworkPolicy" && o.metadata.name === "default-deny")));
    ok(f.some((x) => /no default-deny/.test(x)), "policy catches: no default-deny NetworkPolicy", f);
    const svc = structuredClone(dev.find((o) => o.kind === "Service" && o.metadata.name === "glasgow-api"));
    svc.spec.type = "LoadBalancer";
    f = checkPolicy([svc]);
    ok(f.some((x) => /type LoadBalancer/.test(x)), "policy catches: a LoadBalancer Service", f);
    svc.spec.type = "NodePort";
    svc.spec.ports.push({ name: "admin", port: 9090, targetPort: "admin" });
    f = checkPolicy([svc]);
    ok(f.some((x) => /type NodePort/.test(x)) && f.some((x) => /admin port/.test(x)), "policy catches: a NodePort Service exposing the admin port", f);
    f = checkPolicy([{ apiVersion: "v1", kind: "Secret", metadata: { name: "plain", namespace: "glasgow" }, stringData: { password: "hunter2" } }]);
    ok(f.some((x) => /Secret\/plain: a Secret in plaintext/.test(x)), "policy catches: a plaintext Secret", f);
    f = checkPolicy([{ apiVersion: "v1", kind: "Namespace", metadata: { name: "loose", labels: {} } }]);
    ok(f.some((x) => /loose: does not enforce/.test(x)), "policy catches: a namespace without Pod Security restricted", f);
    const pvc = structuredClone(dev.find((o) => o.kind === "PersistentVolumeClaim"));
    delete pvc.metadata.annotations;
    f = checkPolicy([pvc]);
    ok(f.some((x) => /not protected from pruning/.test(x)), "policy catches: a PVC Argo CD may prune", f);
    const job = structuredClone(dev.find((o) => o.kind === "Job" && o.metadata.name === "glasgow-migrate"));
    delete job.spec.template.spec.containers[0].resources;
    f = checkPolicy([...others, job]);
    ok(f.some((x) => /Job\/glasgow-migrate container migrate: no cpu request/.test(x)), "policy catches: a Job without resources", f);

    const prodObjs = render(D("overlays", "prod")).objects || [];
    const cl = structuredClone(prodObjs.find((o) => o.kind === "Cluster"));
    cl.spec.postgresql.parameters.listen_addresses = "*";
    const po = structuredClone(prodObjs.find((o) => o.kind === "Pooler"));
    po.spec.pgbouncer.parameters.listen_port = "6432";
    f = checkCnpg([cl, po]);
    ok(f.some((x) => /listen_addresses is fixed/.test(x)) && f.some((x) => /listen_port is not allowed/.test(x)), "CloudNativePG checks catch: a fixed parameter, a PgBouncer parameter off the allow-list", f);

    // The NetworkPolicy evaluator behind the connectivity matrix.
    const pols = byKind(dev, "NetworkPolicy");
    const apiPod = { ns: "glasgow", labels: base.spec.template.metadata.labels, ports: { http: 8080, admin: 9090 } };
    const traefikPod = { ns: "traefik", labels: { "app.kubernetes.io/name": "traefik" }, ports: {} };
    const pgPod = { ns: "glasgow", labels: { "cnpg.io/cluster": "glasgow-pg" }, ports: {} };
    const outsider = { ns: "default", labels: {}, ports: {} };
    ok(allowed(pols, traefikPod, apiPod, 8080) && !allowed(pols, traefikPod, apiPod, 9090), "NetworkPolicy evaluation: a named port admits its number only");
    ok(!allowed(pols.filter((x) => x.metadata.name !== "glasgow-api"), traefikPod, apiPod, 8080), "NetworkPolicy evaluation: without the API's policy the default deny refuses Traefik");
    const openAll = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "open", namespace: "glasgow" }, spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [{}] } };
    ok(!allowed(pols, outsider, pgPod, 5432) && allowed([...pols, openAll], outsider, pgPod, 5432), "NetworkPolicy evaluation: an allow-all ingress policy opens PostgreSQL to any namespace");

    // The value checks on decrypted Secrets.
    const good = {
        "glasgow-db": {
            username: "glasgow",
            password: "pw-1234",
            DATABASE_URL: "postgresql://glasgow:pw-1234@glasgow-pg-pooler-rw.glasgow.svc:5432/glasgow?sslmode=require",
            DATABASE_URL_DIRECT: "postgresql://glasgow:pw-1234@glasgow-pg-rw.glasgow.svc:5432/glasgow?sslmode=require",
        },
        "glasgow-s3": { S3_ACCESS_KEY_ID: "glasgow-api", S3_SECRET_ACCESS_KEY: "0123456789abcdef" },
        "minio-root": { MINIO_ROOT_USER: "root", MINIO_ROOT_PASSWORD: "0123456789abcdef" },
        "glasgow-url-signing": { GLASGOW_URL_SIGNING_KEY: "k".repeat(43) },
        "glasgow-bootstrap-admin": { password: "correct horse battery" },
    };
    const valueCase = (what, edit, want) => {
        const v = structuredClone(good);
        edit(v);
        const got = checkSecretValues(prodObjs, (n) => v[n] || {});
        ok(want ? got.some((x) => want.test(x)) : got.length === 0, `secret values: ${what}`, got.length ? got : ["no finding"]);
    };
    valueCase("consistent values pass", () => {}, null);
    valueCase("the API URL bypassing the pooler is caught", (v) => (v["glasgow-db"].DATABASE_URL = v["glasgow-db"].DATABASE_URL_DIRECT), /DATABASE_URL: host glasgow-pg-rw/);
    valueCase("a URL password other than the role's is caught", (v) => (v["glasgow-db"].password = "other-password"), /password is not the password key/);
    valueCase("a short MinIO secret is caught", (v) => (v["glasgow-s3"].S3_SECRET_ACCESS_KEY = "short"), /shorter than MinIO accepts/);
    valueCase("the API using MinIO's root user is caught", (v) => (v["glasgow-s3"].S3_ACCESS_KEY_ID = "root"), /root user/);

    // The validator: unknown fields and wrong types, core and CRDs alike.
    const bad = [
        ["an unknown field in a container", mutate((d, c) => (c.imagePullPolicyy = "Always")), /containers\[0\]\.imagePullPolicyy: unknown field/],
        ["an unknown field in the Deployment spec", mutate((d) => (d.spec.replica = 2)), /\.spec\.replica: unknown field/],
        ["a string where an integer belongs", mutate((d, c) => (c.ports[0].containerPort = "8080")), /containerPort: must be integer/],
        ["a value outside an enum", mutate((d, c) => (c.imagePullPolicy = "Sometimes")), /allowed values/],
    ];
    const crd = (kind, name, f) => {
        const o = structuredClone(all.find((x) => x.kind === kind && (!name || x.metadata.name === name)));
        f(o);
        return o;
    };
    bad.push(
        ["an unknown field in an IngressRoute", crd("IngressRoute", null, (o) => (o.spec.routes[0].midlewares = [])), /midlewares: unknown field/],
        ["an unknown field in a Middleware", crd("Middleware", "security-headers", (o) => (o.spec.headers.stsSecond = 1)), /stsSecond: unknown field/],
        ["an unknown field in a Certificate", crd("Certificate", "glasgow-api", (o) => (o.spec.dnsName = ["x"])), /dnsName: unknown field/],
        ["an unknown field in an Application", crd("Application", "glasgow-api", (o) => (o.spec.syncPolicy.automated.selfheal = true)), /selfheal: unknown field/],
        ["an unknown field in an AppProject", crd("AppProject", "glasgow", (o) => (o.spec.sourceRepo = [])), /sourceRepo: unknown field/],
        ["an unknown field in a CloudNativePG Cluster", crd("Cluster", null, (o) => (o.spec.instance = 3)), /\.spec\.instance: unknown field/],
        ["a wrong type in a CloudNativePG Cluster", crd("Cluster", null, (o) => (o.spec.instances = "3")), /\.spec\.instances: must be an integer/],
        ["an unknown field in a Pooler", crd("Pooler", null, (o) => (o.spec.pgbouncer.pool_mode = "session")), /pool_mode: unknown field/],
        ["a kind nobody declares", { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }, /no schema/],
    );
    const v2 = await makeValidator([...all, ...bad.map((b) => b[1])]);
    for (const [what, o, want] of bad) {
        const errs = v2(o);
        ok(errs.some((e) => want.test(e)), `validator catches: ${what}`, errs.length ? errs : ["no error"]);
    }
    ok(validPortName("http") && !validPortName("a-very-long-port-name") && !validPortName("8080") && !validPortName("a--b"), "port names follow IANA_SVC_NAME");
    ok(pinnedImage("a/b:1.2") && pinnedImage("a/b@sha256:" + "0".repeat(64)) && !pinnedImage("a/b") && !pinnedImage("localhost:5000/b"), "pinned images: tag or digest, a registry port is no tag");
    ok(selects({ matchExpressions: [{ key: "a", operator: "In", values: ["x"] }] }, { a: "x" }) && !selects({ matchLabels: { a: "y" } }, { a: "x" }), "label selectors match like Kubernetes");
}

// ---- the CI workflow ----
// The inputs and outputs of each pinned action, read from the action's own
// action.yml at that commit (tests/deploy/actions.json): every `with:` key
// must be an input, every steps.ID.outputs.NAME and needs.JOB.outputs.NAME
// must name something that exists.
const ACTIONS = JSON.parse(fs.readFileSync(path.join(here, "actions.json"), "utf8"));
function checkWorkflowRefs(doc, text) {
    const out = [];
    for (const [jn, job] of Object.entries(doc.jobs || {})) {
        const ids = new Map();
        for (const st of job.steps || []) {
            const where = `${jn}/${st.id || st.name || st.uses || "step"}`;
            const all = JSON.stringify(st);
            for (const m of all.matchAll(/steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/g)) {
                const src = ids.get(m[1]);
                if (!src) out.push(`${where}: steps.${m[1]} is no earlier step of ${jn}`);
                else if (!src.has(m[2])) out.push(`${where}: steps.${m[1]} has no output ${m[2]}`);
            }
            for (const m of all.matchAll(/needs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/g)) {
                const needs = [].concat(job.needs || []);
                const other = doc.jobs[m[1]];
                if (!needs.includes(m[1])) out.push(`${where}: needs.${m[1]} but ${jn} does not need it`);
                else if (!other || !other.outputs || !(m[2] in other.outputs)) out.push(`${where}: job ${m[1]} has no output ${m[2]}`);
            }
            let outputs = new Set();
            if (st.uses) {
                const meta = ACTIONS[st.uses];
                if (!meta) out.push(`${where}: ${st.uses} is not in tests/deploy/actions.json (record its inputs and outputs at that commit)`);
                else {
                    for (const k of Object.keys(st.with || {})) if (!meta.inputs.includes(k)) out.push(`${where}: ${k} is not an input of ${st.uses.split("@")[0]}`);
                    const line = text.split("\n").find((l) => l.includes(st.uses));
                    if (!line || !line.includes(`# ${meta.tag}`)) out.push(`${where}: the comment does not name ${meta.tag}, the tag of that commit`);
                    outputs = new Set(meta.outputs);
                }
            } else if (st.run) {
                for (const m of st.run.matchAll(/echo "([A-Za-z0-9_-]+)=.*>> "\$GITHUB_OUTPUT"/g)) outputs.add(m[1]);
            }
            if (st.id) ids.set(st.id, outputs);
        }
        for (const [k, v] of Object.entries(job.outputs || {})) {
            const m = /steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/.exec(String(v));
            if (m && !(ids.get(m[1]) || new Set()).has(m[2])) out.push(`${jn}: output ${k} reads steps.${m[1]}.outputs.${m[2]}, which no step sets`);
        }
    }
    return out;
}
{
    const wf = path.join(repo, ".github", "workflows", "ci.yml");
    let doc = null;
    let err = null;
    try {
        const d = YAML.parseDocument(fs.readFileSync(wf, "utf8"), { uniqueKeys: true });
        if (d.errors.length) err = d.errors.map((e) => e.message).join("; ");
        else doc = d.toJS();
    } catch (e) {
        err = e.message;
    }
    ok(!!doc && !err && doc.jobs && Object.keys(doc.jobs).length > 0 && (doc.on || doc[true]), `${rel(wf)} parses as a workflow with jobs`, [String(err)]);
    if (doc) {
        const steps = Object.entries(doc.jobs).flatMap(([j, job]) => (job.steps || []).map((s) => ({ j, s })));
        const uses = steps.filter((x) => x.s.uses).map((x) => x.s.uses);
        const unpinned = uses.filter((u) => !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_./-]+@[0-9a-f]{40}$/.test(u));
        ok(uses.length > 0 && unpinned.length === 0, `every uses: is pinned to a full commit SHA (${uses.length} uses)`, unpinned);
        const text = fs.readFileSync(wf, "utf8");
        const noComment = text.split("\n").filter((l) => /^\s*-?\s*uses:/.test(l) && !/#\s*v\d/.test(l));
        ok(noComment.length === 0, "every pinned action names its release tag in a comment", noComment);
        const makeTargets = (s) => [...s.matchAll(/(?:^|[;&|\s])make\s+([^\n;&|#]*)/g)].map((m) => m[1].trim().replace(/\s+/g, " ")).filter(Boolean);
        const ciRun = fs.readFileSync(path.join(repo, ".ci", "run"), "utf8").split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
        const want = [...new Set(makeTargets(ciRun))];
        const have = new Set(steps.filter((x) => x.s.run).flatMap((x) => makeTargets(x.s.run)));
        const missing = want.filter((t) => !have.has(t));
        ok(want.length > 0 && missing.length === 0, `the workflow runs the make targets of .ci/run (${want.map((t) => `make ${t}`).join(", ")})`, missing.map((t) => `missing: make ${t}`));
        const deps = steps.some((x) => x.s.run && /\.ci\/deps --lint/.test(x.s.run));
        ok(deps, "the workflow installs dependencies with .ci/deps --lint, as .ci/run does");
        const trivy = steps.find((x) => /aquasecurity\/trivy-action@/.test(x.s.uses || ""));
        const tw = (trivy && trivy.s.with) || {};
        ok(!!trivy && String(tw["exit-code"]) === "1" && /CRITICAL/.test(tw.severity || "") && tw["ignore-unfixed"] === true, "Trivy fails the build on fixable critical vulnerabilities");
        const order = steps.filter((x) => x.j === "image").map((x) => x.s.uses || x.s.run || "");
        const scanAt = order.findIndex((u) => /trivy-action/.test(u));
        const pushAt = order.findIndex((u, i) => /build-push-action/.test(u) && steps.filter((x) => x.j === "image")[i].s.with.push === true);
        ok(scanAt >= 0 && pushAt > scanAt, "the image is scanned before it is pushed");
        const deploy = doc.jobs.deploy;
        const runs = deploy ? deploy.steps.map((s) => s.run || "").join("\n") : "";
        ok(!!deploy && /deploy\/set-image/.test(runs) && /git push/.test(runs) && (deploy.needs === "image" || (deploy.needs || []).includes("image")),
            "the deploy job hands tag@digest to deploy/set-image and commits it for Argo CD");
        const refs = checkWorkflowRefs(doc, text);
        ok(refs.length === 0, "every with: key is an input of its action at the pinned commit, every steps/needs output exists", refs);
        const bad = structuredClone(doc);
        const trivyStep = bad.jobs.image.steps.find((x) => /trivy-action/.test(x.uses || ""));
        trivyStep.with.ignore_unfixed = true;
        bad.jobs.deploy.steps.push({ run: "echo ${{ steps.nope.outputs.x }} ${{ needs.test.outputs.y }}" });
        bad.jobs.image.steps.push({ uses: "actions/checkout@" + "0".repeat(40) });
        const badRefs = checkWorkflowRefs(bad, text);
        ok(
            badRefs.some((x) => /ignore_unfixed is not an input/.test(x)) && badRefs.some((x) => /steps\.nope is no earlier step/.test(x)) &&
                badRefs.some((x) => /needs\.test but deploy does not need it/.test(x)) && badRefs.some((x) => /not in tests\/deploy\/actions\.json/.test(x)),
            "the workflow checks catch a misspelt input, an output of no step, a job not needed, an unrecorded pin",
            badRefs,
        );
        const perms = doc.permissions || {};
        ok(perms.contents === "read" && Object.keys(perms).length === 1, "the workflow's default token permission is contents: read");
    }
}

// ---- deploy/set-image ----
{
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "glasgow-set-image."));
    try {
        fs.cpSync(D("base"), path.join(tmp, "deploy", "base"), { recursive: true });
        fs.cpSync(D("overlays"), path.join(tmp, "deploy", "overlays"), { recursive: true });
        fs.cpSync(path.join(repo, "routes"), path.join(tmp, "routes"), { recursive: true });
        const digest = "sha256:" + "ab".repeat(32);
        const run = (...args) => spawnSync("bash", [D("set-image"), ...args], { env: { ...process.env, DEPLOY_DIR: path.join(tmp, "deploy") }, encoding: "utf8" });
        const r1 = run("dev", "sha-0123456789ab", digest);
        const r2 = run("dev", "sha-0123456789ab", digest); // idempotent
        const out = execFileSync(KUBECTL, ["kustomize", "--load-restrictor", "LoadRestrictionsNone", path.join(tmp, "deploy", "overlays", "dev", "api")], { encoding: "utf8" });
        const imgs = YAML.parseAllDocuments(out).map((d) => d.toJS()).flatMap((o) => {
            const t = o.kind === "CronJob" ? o.spec.jobTemplate.spec.template : o.spec && o.spec.template;
            return t && t.spec ? t.spec.containers.map((c) => c.image) : [];
        });
        const want = `ghcr.io/glasgow-api/glasgow:sha-0123456789ab@${digest}`;
        ok(r1.status === 0 && r2.status === 0 && imgs.length === 3 && imgs.every((i) => i === want), `deploy/set-image points the dev API, migration and gc at tag@digest`, [r1.stderr, ...imgs]);
        const prodBefore = fs.readFileSync(path.join(tmp, "deploy", "overlays", "prod", "api", "kustomization.yaml"), "utf8");
        ok(prodBefore === fs.readFileSync(D("overlays", "prod", "api", "kustomization.yaml"), "utf8"), "deploy/set-image dev leaves prod alone");
        const bad = [run("dev", "x y", digest), run("dev", "1.0", "sha256:zz"), run("stage", "1.0", digest), run("dev", "1.0")];
        ok(bad.every((r) => r.status === 2), "deploy/set-image refuses a bad tag, digest, environment or argument count");
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
}

flush();
process.exit(failures ? 1 : 0);
