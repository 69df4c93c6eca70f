export { startNatsServer, type DevNatsServer } from "../../dev/nats.js";
