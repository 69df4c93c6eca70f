/** A coredog.coredump.uploaded CloudEvent as the agent sends it, for the queue tests. */
import path from "node:path";

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
      image: "registry/app:1.0",
      timestamp: "2025-12-12T15:30:05Z",
      pod_name: "app-7d9f-abc",
      pod_namespace: "prod",
      node_ip: "10.0.0.7",
      ...data,
    },
  };
}
