import type { Command } from "../command.js";

// Placeholder until the command lands; replaced by its implementation.
const command: Command = {
  name: "analyze",
  summary: "(not implemented yet)",
  help: "Usage: coresight-worker analyze (not implemented yet)",
  async run() {
    process.stderr.write("coresight-worker analyze: not implemented yet\n");
    return 1;
  },
};
export default command;
