// Validate a GraphQL document against GitHub's published schema
// (@octokit/graphql-schema), rejecting deprecated fields/args/enum values too.
//
//   node validate.mjs FILE.graphql [FILE2.graphql ...]
//
// Exit 0 when every document is valid and uses nothing deprecated;
// exit 1 on any error (printed to stderr); exit 2 on usage errors.
import { readFileSync } from "node:fs";
import { schema as octokitSchema } from "@octokit/graphql-schema";
import {
  buildClientSchema,
  parse,
  validate,
  specifiedRules,
  NoDeprecatedCustomRule,
  GraphQLError,
} from "graphql";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE.graphql [...]");
  process.exit(2);
}

const schema = buildClientSchema(octokitSchema.json);
const rules = [...specifiedRules, NoDeprecatedCustomRule];

let failed = false;
for (const file of files) {
  let source;
  try {
    source = readFileSync(file, "utf8");
  } catch (e) {
    console.error(`${file}: cannot read: ${e.message}`);
    failed = true;
    continue;
  }
  let doc;
  try {
    doc = parse(source);
  } catch (e) {
    const loc = e instanceof GraphQLError && e.locations?.[0];
    console.error(`${file}${loc ? `:${loc.line}:${loc.column}` : ""}: syntax error: ${e.message}`);
    failed = true;
    continue;
  }
  const errors = validate(schema, doc, rules);
  if (errors.length === 0) {
    console.log(`${file}: OK`);
    continue;
  }
  failed = true;
  for (const err of errors) {
    const locs = (err.locations ?? []).map((l) => `${l.line}:${l.column}`).join(",");
    console.error(`${file}${locs ? `:${locs}` : ""}: ${err.message}`);
  }
}
process.exit(failed ? 1 : 0);
