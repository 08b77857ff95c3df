// Validates a .glb or .gltf file with the Khronos glTF Validator and prints its JSON report.
// Usage: node tools/gltf/validate.js FILE
// Exit status: 0 when the report has no errors, 1 when it has some, 3 when gltf-validator is not installed
// (npm install --prefix tools/gltf, or anywhere NODE_PATH points).
"use strict";
const fs = require("fs");

let validator;
try {
  validator = require("gltf-validator");
} catch (err) {
  console.error("gltf-validator is not installed: npm install --prefix tools/gltf");
  process.exit(3);
}

const file = process.argv[2];
if (!file) {
  console.error("usage: node tools/gltf/validate.js FILE");
  process.exit(2);
}
validator.validateBytes(new Uint8Array(fs.readFileSync(file)), { uri: file, maxIssues: 100 })
  .then((report) => {
    console.log(JSON.stringify(report, null, 1));
    process.exit(report.issues.numErrors > 0 ? 1 : 0);
  })
  .catch((err) => {
    console.error(`validation failed: ${err}`);
    process.exit(1);
  });
