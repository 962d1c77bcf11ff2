// Signs each request of a JSON-lines file (see tests/integration/test_sigv4_diff.py)
// with AWS's own signer, @smithy/signature-v4, and prints one JSON line per
// request: {id, signature, authorization} for a header-signed request,
// {id, signature, params} for a presigned one, plus the chunk signatures of
// an aws-chunked body. Configured for S3: uriEscapePath false (the path
// arrives encoded and is signed as is), no checksum header added.
"use strict";

const fs = require("fs");
const { Readable } = require("stream");
const { SignatureV4 } = require("@smithy/signature-v4");
const { Sha256 } = require("@aws-crypto/sha256-js");

function signingDate(t) {
    const n = (a, b) => Number(t.slice(a, b));
    return new Date(Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(9, 11), n(11, 13), n(13, 15)));
}

// Repeated query names become arrays; smithy sorts their values itself.
function queryObject(pairs) {
    const q = {};
    for (const [name, value] of pairs) {
        if (Object.prototype.hasOwnProperty.call(q, name)) {
            q[name] = [].concat(q[name], value);
        } else {
            q[name] = value;
        }
    }
    return q;
}

// smithy takes one value per header name: a name given several times (in
// any case) is passed once, its values canonicalised and joined with ","
// in request order, which is what SigV4 signs for repeated headers.
function headerObject(pairs) {
    const canon = (v) => v.replace(/[ \t]+/g, " ").replace(/^ | $/g, "");
    const count = {};
    for (const [name] of pairs) {
        count[name.toLowerCase()] = (count[name.toLowerCase()] || 0) + 1;
    }
    const h = {};
    const first = {};
    for (const [name, value] of pairs) {
        const l = name.toLowerCase();
        if (count[l] === 1) {
            h[name] = value;
        } else if (first[l] === undefined) {
            first[l] = name;
            h[name] = canon(value);
        } else {
            h[first[l]] += "," + canon(value);
        }
    }
    return h;
}

function chunkData(spec) {
    return Buffer.from(spec[1].repeat(spec[0]));
}

async function signOne(c) {
    const signer = new SignatureV4({
        credentials: {
            accessKeyId: c.access_key,
            secretAccessKey: c.secret_key,
            sessionToken: c.session_token || undefined,
        },
        region: c.region,
        service: c.service,
        sha256: Sha256,
        uriEscapePath: false,
        applyChecksum: false,
    });
    const date = signingDate(c.time);
    const request = {
        method: c.method,
        protocol: "https:",
        hostname: "example",
        path: c.path,
        query: queryObject(c.query),
        headers: headerObject(c.headers),
    };
    if (c.kind === "presign") {
        // A body of unknown content is what smithy signs as UNSIGNED-PAYLOAD.
        request.body = Readable.from([]);
        const out = await signer.presign(request, { signingDate: date, expiresIn: c.expires });
        const params = [];
        for (const [name, value] of Object.entries(out.query)) {
            for (const v of [].concat(value)) {
                params.push([name, v]);
            }
        }
        return { id: c.id, signature: out.query["X-Amz-Signature"], params };
    }
    const out = await signer.sign(request, { signingDate: date });
    const sig = /Signature=([0-9a-f]{64})$/.exec(out.headers.authorization)[1];
    const result = { id: c.id, signature: sig, authorization: out.headers.authorization };
    if (c.chunks) {
        let prior = sig;
        result.chunks = [];
        for (const spec of c.chunks) {
            prior = await signer.sign(
                { headers: new Uint8Array(0), payload: chunkData(spec) },
                { signingDate: date, priorSignature: prior },
            );
            result.chunks.push(prior);
        }
    }
    return result;
}

async function main() {
    const lines = fs.readFileSync(process.argv[2], "utf8").split("\n").filter((l) => l);
    const out = [];
    for (const line of lines) {
        out.push(JSON.stringify(await signOne(JSON.parse(line))));
    }
    process.stdout.write(out.join("\n") + "\n");
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
