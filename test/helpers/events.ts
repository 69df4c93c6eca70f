/** A coredog.coredump.uploaded CloudEvent as the agent sends it, for the queue tests. */
import path from "node:path";

/** The image every test event names. */
export const TEST_EVENT_IMAGE = "registry.invalid/team/app:1.0";

export function coredumpEvent(id: string, fileUrl: string, data: Record<string, unknown> = {}) {
  return {
    specversion: "1.0",
    type: "coredog.coredump.uploaded",
    source: "coredog-agent",
    id,
    time: "2025-12-12T15:30:05Z",
    datacontenttype: "application/json",
    token: "agent-secret-token",
    data: {
      coredump_id: 0,
      file_url: fileUrl,
      file_name: path.basename(new URL(fileUrl).pathname),
      executable_path: "/app/crash",
      file_size: 0,
      md5: "",
      // .invalid never resolves (RFC 2606): the image source runs and warns, and no test reaches a real registry.
      image: TEST_EVENT_IMAGE,
      timestamp: "2025-12-12T15:30:05Z",
      pod_name: "app-7d9f-abc",
      pod_namespace: "prod",
      node_ip: "10.0.0.7",
      ...data,
    },
  };
}
