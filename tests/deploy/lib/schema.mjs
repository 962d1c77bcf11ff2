// Strict schema validation of rendered Kubernetes objects.
//
// Two layers for every kind the kubernetes-models packages know (the core
// API, Argo CD, cert-manager, Traefik):
//  - the package's own validator (ajv, compiled from the OpenAPI schema):
//    types, enums, formats, required fields;
//  - unknown fields, which those validators let through (the OpenAPI
//    schemas of Kubernetes do not close their objects): the value is walked
//    against the package's TypeScript declaration of the kind, through the
//    TypeScript compiler's type checker, and every property the declaration
//    does not have is an error, as `kubectl apply --validate=strict` would
//    say.
// CloudNativePG has no kubernetes-models package: its CRDs' OpenAPI v3
// schemas are vendored in schemas/ (see schemas/README.md) and walked by
// a small structural validator that is strict the same way.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");

const PACKAGES = {
    "argoproj.io": "@kubernetes-models/argo-cd/argoproj.io",
    "cert-manager.io": "@kubernetes-models/cert-manager/cert-manager.io",
    "traefik.io": "@kubernetes-models/traefik/traefik.io",
};
const VENDORED = new Set(["postgresql.cnpg.io"]);

function splitApiVersion(apiVersion) {
    const i = apiVersion.indexOf("/");
    return i < 0 ? ["", apiVersion] : [apiVersion.slice(0, i), apiVersion.slice(i + 1)];
}

// The module that declares apiVersion/kind in kubernetes-models, or null.
export function modelModule(apiVersion, kind) {
    if (typeof apiVersion !== "string" || typeof kind !== "string" || !/^[A-Za-z0-9]+$/.test(kind))
        return null;
    const [group, version] = splitApiVersion(apiVersion);
    if (!/^[a-z0-9]+$/.test(version)) return null;
    if (PACKAGES[group]) return `${PACKAGES[group]}/${version}/${kind}`;
    if (VENDORED.has(group)) return null;
    if (group && !/^[a-z0-9.-]+$/.test(group)) return null;
    return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

function vendoredSchemaPath(apiVersion, kind) {
    const [group, version] = splitApiVersion(apiVersion);
    if (!VENDORED.has(group)) return null;
    return path.join(root, "schemas", `${group}_${version}_${kind}.json`);
}

// ---- unknown fields through the TypeScript declarations ----

let tsState = null;

// Builds one program that declares every kind in `specs` (module
// specifiers) and returns {typeOf(spec) -> ts.Type, checker}.
function typeProgram(specs) {
    const file = path.join(root, "__kinds__.mts");
    const list = [...specs];
    const text = list
        .map((s, i) => {
            const kind = s.slice(s.lastIndexOf("/") + 1);
            return `import type { I${kind} as T${i} } from "${s}";\nexport type K${i} = T${i};\n`;
        })
        .join("");
    const options = {
        module: ts.ModuleKind.ESNext,
        moduleResolution: ts.ModuleResolutionKind.Bundler,
        target: ts.ScriptTarget.ES2022,
        noEmit: true,
        skipLibCheck: true,
        strict: true,
        types: [],
    };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (name, lang, ...rest) =>
        path.resolve(name) === file
            ? ts.createSourceFile(name, text, lang, true)
            : getSourceFile(name, lang, ...rest);
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
    const readFile = host.readFile.bind(host);
    host.readFile = (name) => (path.resolve(name) === file ? text : readFile(name));
    const program = ts.createProgram([file], options, host);
    const checker = program.getTypeChecker();
    const sf = program.getSourceFile(file);
    const unresolved = program
        .getSemanticDiagnostics(sf)
        .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    const moduleSym = checker.getSymbolAtLocation(sf);
    const exports = moduleSym ? checker.getExportsOfModule(moduleSym) : [];
    const types = new Map();
    for (const sym of exports) {
        const i = Number(sym.name.slice(1));
        types.set(list[i], checker.getDeclaredTypeOfSymbol(sym));
    }
    return { checker, types, unresolved };
}

const F = ts.TypeFlags;

function walkType(checker, v, t, p, errs) {
    if (v === null || typeof v !== "object") return;
    t = checker.getNonNullableType(t);
    if (t.flags & (F.Any | F.Unknown)) return;
    if (t.isUnion()) {
        const cands = t.types.filter((u) => {
            if (u.flags & (F.Undefined | F.Null | F.StringLike | F.NumberLike | F.BooleanLike)) return false;
            const arr = checker.isArrayType(u) || checker.isTupleType(u);
            return Array.isArray(v) ? arr : !arr;
        });
        if (cands.length === 0) return; // a primitive where an object is: ajv says so
        let best = null;
        for (const u of cands) {
            const e = [];
            walkType(checker, v, u, p, e);
            if (e.length === 0) return;
            if (!best || e.length < best.length) best = e;
        }
        errs.push(...best);
        return;
    }
    if (Array.isArray(v)) {
        if (checker.isArrayType(t) || checker.isTupleType(t)) {
            const el = checker.getTypeArguments(t)[0];
            if (el) v.forEach((x, i) => walkType(checker, x, el, `${p}[${i}]`, errs));
        }
        return;
    }
    const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
    const props = checker.getPropertiesOfType(t);
    if (props.length === 0 && !index) return; // {} or object: anything goes
    for (const [k, x] of Object.entries(v)) {
        const prop = checker.getPropertyOfType(t, k);
        if (prop) {
            walkType(checker, x, checker.getTypeOfSymbol(prop), `${p}.${k}`, errs);
        } else if (index) {
            walkType(checker, x, index.type, `${p}.${k}`, errs);
        } else {
            errs.push(`${p}.${k}: unknown field`);
        }
    }
}

// ---- vendored OpenAPI v3 schemas (CRDs) ----

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// Checks value v against the structural OpenAPI v3 schema s of a CRD,
// appending "path: problem" to errs: types, enums, patterns, minimums,
// required fields, and every field the schema does not declare (unless
// it preserves unknown fields or declares additionalProperties). The
// object's metadata is the API server's and is not walked.
export function walkOpenAPI(v, s, p, errs) {
    if (!s) return;
    if (v === null && s.nullable) return;
    if (s["x-kubernetes-int-or-string"]) {
        if (typeof v !== "string" && !Number.isInteger(v)) errs.push(`${p}: must be an integer or a string`);
        return;
    }
    if (s.enum && !s.enum.some((e) => e === v)) {
        errs.push(`${p}: must be one of ${s.enum.join(", ")}`);
    }
    switch (s.type) {
        case "object": {
            if (!isObj(v)) {
                errs.push(`${p}: must be an object`);
                return;
            }
            if (p === ".metadata") return; // ObjectMeta: the API server's own, not the CRD's
            for (const r of s.required || [])
                if (!(r in v)) errs.push(`${p}.${r}: required field missing`);
            for (const [k, x] of Object.entries(v)) {
                if (s.properties && k in s.properties) walkOpenAPI(x, s.properties[k], `${p}.${k}`, errs);
                else if (isObj(s.additionalProperties)) walkOpenAPI(x, s.additionalProperties, `${p}.${k}`, errs);
                else if (s.additionalProperties === true || s["x-kubernetes-preserve-unknown-fields"]) continue;
                else errs.push(`${p}.${k}: unknown field`);
            }
            return;
        }
        case "array":
            if (!Array.isArray(v)) {
                errs.push(`${p}: must be an array`);
                return;
            }
            v.forEach((x, i) => walkOpenAPI(x, s.items, `${p}[${i}]`, errs));
            return;
        case "string":
            if (typeof v !== "string") errs.push(`${p}: must be a string`);
            else if (s.pattern && !new RegExp(s.pattern, "u").test(v)) errs.push(`${p}: must match ${s.pattern}`);
            return;
        case "integer":
            if (!Number.isInteger(v)) errs.push(`${p}: must be an integer`);
            else if (s.minimum !== undefined && v < s.minimum) errs.push(`${p}: must be >= ${s.minimum}`);
            return;
        case "number":
            if (typeof v !== "number") errs.push(`${p}: must be a number`);
            return;
        case "boolean":
            if (typeof v !== "boolean") errs.push(`${p}: must be a boolean`);
            return;
        default:
            return;
    }
}

// ---- the validator ----

// Loads what validating `objects` needs; returns validate(obj) -> [errors].
// Objects of a kind nobody declares are an error ("no schema"), never a pass.
export async function makeValidator(objects) {
    const specs = new Set();
    for (const o of objects) {
        const m = o && modelModule(o.apiVersion, o.kind);
        if (m) specs.add(m);
    }
    const models = new Map();
    for (const s of specs) {
        try {
            const mod = await import(s);
            const cls = mod[s.slice(s.lastIndexOf("/") + 1)];
            if (typeof cls === "function") models.set(s, cls);
        } catch {
            /* not a kind the packages declare: reported per object */
        }
    }
    const known = [...specs].filter((s) => models.has(s));
    const key = known.sort().join("\n");
    if (!tsState || tsState.key !== key) tsState = { key, ...typeProgram(known) };
    const { checker, types } = tsState;
    const schemas = new Map();

    return function validate(o) {
        const errs = [];
        if (!isObj(o)) return ["not an object"];
        const where = `${o.kind}/${o.metadata && o.metadata.name}`;
        const vendored = vendoredSchemaPath(o.apiVersion, o.kind);
        if (vendored) {
            if (!schemas.has(vendored)) {
                schemas.set(vendored, fs.existsSync(vendored) ? JSON.parse(fs.readFileSync(vendored, "utf8")) : null);
            }
            const s = schemas.get(vendored);
            if (!s) return [`${where}: no schema for ${o.apiVersion} ${o.kind}`];
            walkOpenAPI(o, s, "", errs);
            return errs.map((e) => `${where}: ${e || "(root)"}`);
        }
        const spec = modelModule(o.apiVersion, o.kind);
        const cls = spec && models.get(spec);
        const type = spec && types.get(spec);
        if (!cls || !type) return [`${where}: no schema for ${o.apiVersion} ${o.kind}`];
        try {
            new cls(o).validate();
        } catch (e) {
            const list = e && Array.isArray(e.errors) ? e.errors : null;
            if (list) for (const x of list) errs.push(`${x.instancePath || "/"}: ${x.message}`);
            else errs.push(String(e && e.message));
        }
        walkType(checker, o, type, "", errs);
        return errs.map((e) => `${where}: ${e}`);
    };
}
