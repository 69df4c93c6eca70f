/**
 * What the query API answers: rows of the query layer turned into the JSON
 * the routes document (docs/api.md). The queued event (with its presigned
 * URL) is never part of a view.
 */
import type { AnalysisWithDump, GroupDetail, GroupFacts } from "./db/queries.js";
import type * as z from "zod";
import { groupState } from "./groups.js";
import type { AnalysisDetailSchema, AnalysisSummarySchema, GroupDetailSchema, GroupSchema } from "./schemas.js";

export function analysisSummary(a: AnalysisWithDump): z.infer<typeof AnalysisSummarySchema> {
  return {
    analysis_id: a.analysis_id,
    coredump_id: a.coredump_id,
    status: a.status,
    created_at: a.created_at,
    updated_at: a.updated_at,
    started_at: a.started_at,
    completed_at: a.completed_at,
    signature: a.signature_hash === null ? null : { hash: a.signature_hash, text: a.signature_text },
    quality: a.quality,
    error_code: a.error_code,
    attempt: a.attempt,
    worker_id: a.worker_id,
    reprocess_count: a.reprocess_count,
    coredump: {
      coredump_id: a.dump.id,
      received_at: a.dump.received_at,
      event_id: a.dump.event_id,
      event_source: a.dump.event_source,
      file_url: a.dump.file_url,
      file_name: a.dump.file_name,
      executable_path: a.dump.executable_path,
      file_size: a.dump.file_size,
      md5: a.dump.md5,
      image: a.dump.image,
      pod: a.dump.pod,
      namespace: a.dump.namespace,
      node: a.dump.node,
      timestamp: a.dump.timestamp,
    },
  };
}

/** The summary plus the stored result document (null until the worker stored one). */
export function analysisDetail(a: AnalysisWithDump): z.infer<typeof AnalysisDetailSchema> {
  return { ...analysisSummary(a), result: a.result_json === null ? null : (JSON.parse(a.result_json) as unknown) };
}

export function groupView(g: GroupFacts): z.infer<typeof GroupSchema> {
  const state = groupState(g);
  return {
    signature_hash: g.signature_hash,
    signature_text: g.signature_text,
    frames: g.frames,
    state,
    new: state === "new",
    regressed: state === "regressed",
    count: g.count,
    first_seen: g.first_seen,
    last_seen: g.last_seen,
    distinct: { pods: g.pods, namespaces: g.namespaces, images: g.images, nodes: g.nodes },
    resolved_at: g.resolved_at,
    latest_analysis_id: g.latest_analysis_id,
    best_analysis_id: g.best_analysis_id,
    best_quality: g.best_quality,
  };
}

export function groupDetailView(g: GroupDetail): z.infer<typeof GroupDetailSchema> {
  return { ...groupView(g), pods: g.pod_names, namespaces: g.namespace_names, images: g.image_names, nodes: g.node_names };
}
