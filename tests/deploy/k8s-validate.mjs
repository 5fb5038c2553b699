// Validates every document of a Kubernetes manifest file against the API
// schemas of the npm package kubernetes-models (JSON schemas generated
// from the Kubernetes OpenAPI specification), by apiVersion and kind.
//   node k8s-validate.mjs FILE.yml
// Prints "ok - ..." or "not ok - ..." per document and "N passed, M failed".
import yaml from 'js-yaml';
import fs from 'node:fs';

const docs = yaml.loadAll(fs.readFileSync(process.argv[2], 'utf8')).filter(Boolean);
let bad = 0;
for (const d of docs) {
  const what = `${d.apiVersion} ${d.kind} ${d.metadata && d.metadata.name}`;
  let Kind;
  try {
    Kind = (await import(`kubernetes-models/${d.apiVersion}`))[d.kind];
  } catch (e) {
    Kind = undefined;
  }
  if (!Kind) {
    console.log(`not ok - ${what}: no schema for this apiVersion and kind`);
    bad++;
    continue;
  }
  try {
    new Kind(d).validate();
    console.log(`ok - ${what} validates`);
  } catch (e) {
    console.log(`not ok - ${what}: ${String(e.message).split('\n').slice(0, 3).join(' ')}`);
    bad++;
  }
}
console.log(`${docs.length - bad} passed, ${bad} failed`);
process.exit(bad || !docs.length ? 1 : 0);
