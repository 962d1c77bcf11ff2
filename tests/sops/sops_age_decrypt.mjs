// Decrypts a SOPS file with npm sops-age, an implementation independent of
// .ci/sops_tool.py, and prints the plaintext as JSON. sops-age does not
// check the MAC; tests/sops/test_sops_tool.py compares values only.
//
//   node tests/sops/sops_age_decrypt.mjs FILE KEYFILE
import { readFileSync } from "node:fs";
import { decryptSops } from "sops-age";

const [file, keyFile] = process.argv.slice(2);
if (!file || !keyFile) {
    process.stderr.write("usage: sops_age_decrypt.mjs FILE KEYFILE\n");
    process.exit(2);
}
const secretKey = readFileSync(keyFile, "utf8")
    .split("\n")
    .find((line) => line.startsWith("AGE-SECRET-KEY-"));
try {
    const out = await decryptSops({ path: file, secretKey, fileType: "yaml" });
    process.stdout.write(JSON.stringify(out) + "\n");
} catch (e) {
    process.stderr.write(`sops-age: ${e.message}\n`);
    process.exit(1);
}
