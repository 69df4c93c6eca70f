export { startApiServer, type DevApiServer, type DevApiHandler, type RecordedRequest } from "../../dev/api.js";
