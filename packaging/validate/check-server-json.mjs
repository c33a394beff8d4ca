// Validates MCP Registry server.json files against the registry's own JSON Schema,
// the copy in this folder (server.schema.json; source and version in README.md here).
// Usage: node check-server-json.mjs FILE...   Exit 0 when every file is valid, else 1.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";
import addFormats from "ajv-formats";

const here = dirname(fileURLToPath(import.meta.url));
const schema = JSON.parse(readFileSync(join(here, "server.schema.json"), "utf8"));
// Strict mode stays on; the schema's documentation-only "example" keyword is declared.
const ajv = new Ajv({ allErrors: true });
ajv.addKeyword("example");
addFormats(ajv);
const validate = ajv.compile(schema);

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node check-server-json.mjs FILE...");
  process.exit(2);
}
let ok = true;
for (const file of files) {
  let doc;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    console.error(`${file}: ${e.message}`);
    ok = false;
    continue;
  }
  if (doc.$schema !== schema.$id) {
    console.error(`${file}: $schema is ${JSON.stringify(doc.$schema)}, the schema checked here is ${schema.$id}`);
    ok = false;
  }
  if (validate(doc)) {
    console.log(`${file}: valid against ${schema.$id}`);
  } else {
    ok = false;
    for (const err of validate.errors) {
      console.error(`${file}: ${err.instancePath || "/"} ${err.message} ${JSON.stringify(err.params)}`);
    }
  }
}
process.exit(ok ? 0 : 1);
