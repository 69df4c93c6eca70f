import type { Command } from "../command.js";

// Placeholder until the command lands; replaced by its implementation.
const command: Command = {
  name: "run",
  summary: "(not implemented yet)",
  help: "Usage: coresight-worker run (not implemented yet)",
  async run() {
    process.stderr.write("coresight-worker run: not implemented yet\n");
    return 1;
  },
};
export default command;
