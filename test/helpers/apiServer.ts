export { startApiServer, type DevApiServer, type DevApiHandler, type RecordedRequest } from "../../worker/devApi.js";
