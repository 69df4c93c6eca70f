import * as z from "zod";
import { ResultSchema } from "../../lib/result.js";
import { ResultDocumentSchema } from "../../lib/results/document.js";
import { parseArgs, type Command } from "../command.js";

/** JSON Schema of the v1 result, or of the stored document (result + event context). */
export function schemaJson(which: "result" | "document"): string {
  const json =
    which === "result"
      ? { $id: "https://coresight.dev/schemas/result-v1.json", title: "CoreSight analysis result v1", ...z.toJSONSchema(ResultSchema, { io: "output" }) }
      : { $id: "https://coresight.dev/schemas/result-document-v1.json", title: "CoreSight stored result document v1", ...z.toJSONSchema(ResultDocumentSchema, { io: "output" }) };
  return JSON.stringify(json, null, 2) + "\n";
}

const schema: Command = {
  name: "schema",
  help: `Usage: coresight-worker schema [--document | --openapi]

Prints the JSON Schema of the result (schema_version 1): the document that
\`analyze --json\` prints. With --document, the schema of what the worker
stores (PUT body / file / NATS event data): the result plus analysis_id,
attempt, worker_id and the event context. With --openapi, the CoreSight
API's OpenAPI 3.1 document (docs/openapi.json, /api/v1/openapi.json).

The same texts are committed as docs/result.schema.json and
docs/result-document.schema.json (\`make schema\` regenerates them; a test
fails when they drift from the code).`,
  async run(argv) {
    const args = parseArgs(argv, { flags: ["document", "openapi"] });
    if (args.flags.has("openapi")) {
      // Loaded only here: the API's schemas are not needed for the result schemas.
      process.stdout.write((await import("../../api/openapi.js")).openApiJson());
      return 0;
    }
    process.stdout.write(schemaJson(args.flags.has("document") ? "document" : "result"));
    return 0;
  },
};
export default schema;
