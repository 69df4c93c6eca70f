import { z } from "zod";
import { ResultSchema } from "../../lib/result.js";
import type { Command } from "../command.js";

const schema: Command = {
  name: "schema",
  summary: "print the result schema v1 as JSON Schema",
  help: `Usage: coresight-worker schema

Prints the JSON Schema of the result document (schema_version 1), the
document that analyze --json prints and the worker stores. The same text is
committed as docs/result.schema.json (make schema regenerates it).`,
  async run() {
    const json = z.toJSONSchema(ResultSchema, { io: "output" });
    process.stdout.write(JSON.stringify({ $id: "https://coresight.dev/schemas/result-v1.json", title: "CoreSight analysis result v1", ...json }, null, 2) + "\n");
    return 0;
  },
};
export default schema;
