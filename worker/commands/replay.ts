import type { Command } from "../command.js";

// Placeholder until the command lands; replaced by its implementation.
const command: Command = {
  name: "replay",
  summary: "(not implemented yet)",
  help: "Usage: coresight-worker replay (not implemented yet)",
  async run() {
    process.stderr.write("coresight-worker replay: not implemented yet\n");
    return 1;
  },
};
export default command;
