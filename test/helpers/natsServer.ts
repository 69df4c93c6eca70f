export { startNatsServer, type DevNatsServer } from "../../worker/devNats.js";
