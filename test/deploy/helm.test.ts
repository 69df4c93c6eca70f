/**
 * The Helm chart deploy/helm/coresight, rendered by a real helm (v3.17.3,
 * fetched by scripts/fetch-helm.sh into $HELM_DIR, default .tools/helm):
 * `helm lint --strict` for the defaults and every ci/*-values.yaml; `helm
 * template` of the defaults, of KEDA + ServiceMonitor + PrometheusRule + API
 * and of the HPA variant, where every rendered object is validated against its
 * schema (the ajv validators of kubernetes-models for core/apps/policy/
 * autoscaling, @kubernetes-models/keda for the ScaledObject,
 * @kubernetes-models/prometheus-operator for ServiceMonitor and
 * PrometheusRule); the values the chart refuses, with their messages; and
 * values.schema.json itself, compiled by ajv in strict mode.
 *
 * Those schemas (Kubernetes' OpenAPI) allow unknown fields, so a misspelt
 * field would pass them. The same packages' TypeScript interfaces do not:
 * every rendered object is also type-checked, as an object literal of its
 * interface, by the TypeScript compiler, whose excess-property check names
 * any field the API does not have.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "@jest/globals";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { Ajv } from "ajv";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { Job } from "kubernetes-models/batch/v1/Job";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import ts from "typescript";
import { parse, parseAllDocuments } from "yaml";
import { parseGroupingRules } from "../../lib/gdb/groupingRules.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CHART = path.join(ROOT, "deploy/helm/coresight");
const HELM_DIR = process.env.HELM_DIR || path.join(ROOT, ".tools/helm");
let helm = "";

/** A Kubernetes object as rendered; the fields the tests read are typed loosely on purpose. */
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any; // each test reads the fields of its kind
  data?: Record<string, string>;
  automountServiceAccountToken?: boolean;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

/** The schema of each kind the chart may render; a kind missing here fails the test. */
type Validated = new (data: never) => { validate(): void };
const MODELS: Record<string, Validated> = {
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "v1/ServiceAccount": ServiceAccount,
  "v1/Service": Service,
  "v1/ConfigMap": ConfigMap,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

/** The TypeScript interface of each kind, from the same packages. */
const INTERFACES: Record<string, [module: string, name: string]> = {
  "apps/v1/Deployment": ["kubernetes-models/apps/v1/Deployment", "IDeployment"],
  "batch/v1/Job": ["kubernetes-models/batch/v1/Job", "IJob"],
  "policy/v1/PodDisruptionBudget": ["kubernetes-models/policy/v1/PodDisruptionBudget", "IPodDisruptionBudget"],
  "autoscaling/v2/HorizontalPodAutoscaler": ["kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler", "IHorizontalPodAutoscaler"],
  "v1/ServiceAccount": ["kubernetes-models/v1/ServiceAccount", "IServiceAccount"],
  "v1/Service": ["kubernetes-models/v1/Service", "IService"],
  "v1/ConfigMap": ["kubernetes-models/v1/ConfigMap", "IConfigMap"],
  "keda.sh/v1alpha1/ScaledObject": ["@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject", "IScaledObject"],
  "monitoring.coreos.com/v1/ServiceMonitor": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor", "IServiceMonitor"],
  "monitoring.coreos.com/v1/PrometheusRule": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule", "IPrometheusRule"],
};

/**
 * Type-checks each object as `const o: I<Kind> = <the object>` in one
 * in-memory module beside this file (so node_modules resolves); returns the
 * compiler's messages, each naming the object and the field.
 */
function typeErrors(objects: K8sObject[]): string[] {
  const file = path.join(ROOT, "test/deploy/__rendered__.ts");
  const lines: string[] = [];
  const imports = new Set<string>();
  objects.forEach((o, i) => {
    const iface = INTERFACES[`${o.apiVersion}/${o.kind}`];
    if (!iface) throw new Error(`no interface for ${o.apiVersion}/${o.kind}: add it to INTERFACES`);
    imports.add(`import type { ${iface[1]} } from "${iface[0]}";`);
    lines.push(`// ${o.kind}/${o.metadata.name}`, `export const o${i}: ${iface[1]} = ${JSON.stringify(o, null, 1)};`);
  });
  const text = [...imports, ...lines].join("\n");
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const src = program.getSourceFile(file)!;
  return ts.getPreEmitDiagnostics(program, src).map((d) => {
    const at = d.start === undefined ? "" : text.slice(0, d.start).split("\n").reverse().find((l) => l.startsWith("// ")) ?? "";
    return `${at.slice(3)}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
}

function runHelm(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(helm, args, { encoding: "utf8", env: { ...process.env, HELM_CACHE_HOME: path.join(HELM_DIR, "cache"), HELM_CONFIG_HOME: path.join(HELM_DIR, "config"), HELM_DATA_HOME: path.join(HELM_DIR, "data") } });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` with these flags; fails the test with helm's message when it does not render. */
function render(...flags: string[]): K8sObject[] {
  const r = runHelm(["template", "coresight", CHART, "--namespace", "coresight", ...flags]);
  if (r.status !== 0) throw new Error(`helm template ${flags.join(" ")} failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** helm's refusal message for these flags (the render must fail). */
function refusal(...flags: string[]): string {
  const r = runHelm(["template", "coresight", CHART, ...flags]);
  expect(r.status).not.toBe(0);
  return r.stderr;
}

function validateAll(objects: K8sObject[]): void {
  expect(typeErrors(objects)).toEqual([]);
  for (const o of objects) {
    const id = `${o.apiVersion}/${o.kind}`;
    const Model = MODELS[id];
    if (!Model) throw new Error(`no schema for ${id} (${o.metadata.name}): add its model to MODELS`);
    try {
      new Model(o as never).validate();
    } catch (e) {
      throw new Error(`${id} ${o.metadata.name} does not match its schema: ${(e as Error).message}`);
    }
  }
}

function one(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([`${kind}/${name}`]);
  return found[0]!;
}

function kinds(objects: K8sObject[]): string[] {
  return objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

function envOf(container: { env: EnvVar[] }): Map<string, EnvVar> {
  const names = container.env.map((e) => e.name);
  expect(new Set(names).size).toBe(names.length); // no variable set twice
  return new Map(container.env.map((e) => [e.name, e]));
}

const MiB = 1024 * 1024;
/** "36992Mi" -> bytes (the chart prints its computed sizes in Mi). */
function mi(q: string): number {
  const m = /^(\d+)Mi$/.exec(q);
  if (!m) throw new Error(`not a Mi quantity: ${q}`);
  return Number(m[1]) * MiB;
}

beforeAll(() => {
  // Idempotent: a second run finds the pinned binary and fetches nothing.
  const r = spawnSync("bash", [path.join(ROOT, "scripts/fetch-helm.sh"), HELM_DIR], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`scripts/fetch-helm.sh failed: ${r.stderr}`);
  helm = r.stdout.trim().split("\n").pop()!;
  expect(runHelm(["version", "--short"]).stdout).toMatch(/^v3\.17\.3/);
}, 300_000);

const CI_VALUES = fs.readdirSync(path.join(CHART, "ci")).filter((f) => f.endsWith("-values.yaml"));

describe("helm lint", () => {
  it("has ci values files for KEDA + monitoring + API and for the HPA", () => {
    expect(CI_VALUES.sort()).toEqual(["hpa-values.yaml", "keda-monitoring-api-values.yaml"]);
  });

  it.each([["(defaults)"], ...CI_VALUES.map((f) => [f])])("is clean with %s", (file) => {
    const flags = file === "(defaults)" ? [] : ["-f", path.join(CHART, "ci", file)];
    const r = runHelm(["lint", CHART, "--strict", ...flags]);
    expect(r.stderr + r.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
    expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    // lint reports a template's `fail` (also in NOTES.txt) as INFO only.
    expect(r.stdout + r.stderr).not.toContain("Fail:");
    expect(r.status).toBe(0);
  });
});

describe("helm template with the default values", () => {
  let objects: K8sObject[] = [];
  beforeAll(() => {
    objects = render();
  });

  it("renders the worker Deployment, its PodDisruptionBudget and a ServiceAccount, each valid against its schema", () => {
    expect(kinds(objects)).toEqual(["Deployment/coresight-worker", "Job/coresight-worker-queue-apply", "PodDisruptionBudget/coresight-worker", "ServiceAccount/coresight"]);
    validateAll(objects);
  });

  it("runs `queue apply` as a pre-install/pre-upgrade hook Job with the workers' NATS settings", () => {
    const job = one(objects, "Job", "coresight-worker-queue-apply");
    expect(job.metadata.annotations).toMatchObject({ "helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded" });
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).toBe("Never");
    // Before install the chart's ServiceAccount does not exist yet: none named, no token.
    expect(pod.serviceAccountName).toBeUndefined();
    expect(pod.automountServiceAccountToken).toBe(false);
    const [c] = pod.containers;
    expect(c.args).toEqual(["queue", "apply", "--wait", "60"]);
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    const worker = envOf(one(objects, "Deployment", "coresight-worker").spec.template.spec.containers[0]);
    const env = envOf(c);
    for (const name of ["NATS_URL", "NATS_STREAM", "NATS_SUBJECT", "NATS_CONSUMER", "NATS_ACK_WAIT_MS", "NATS_MAX_DELIVER", "RESULT_SINKS"]) {
      expect([name, env.get(name)?.value]).toEqual([name, worker.get(name)?.value]);
    }
  });

  it("queueApply.enabled=false renders no hook Job", () => {
    expect(kinds(render("--set", "queueApply.enabled=false"))).not.toContain("Job/coresight-worker-queue-apply");
  });

  it("runs the worker under Pod Security 'restricted' with a read-only root", () => {
    const pod = one(objects, "Deployment", "coresight-worker").spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(one(objects, "ServiceAccount", "coresight").automountServiceAccountToken).toBe(false);
    const [c, ...more] = pod.containers;
    expect(more).toEqual([]);
    expect(c.args).toEqual(["run"]);
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 10001,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.volumeMounts).toEqual([
      { name: "work", mountPath: "/var/lib/coresight/work" },
      { name: "tmp", mountPath: "/tmp" },
    ]);
    expect(pod.volumes.map((v: { name: string }) => v.name)).toEqual(["work", "tmp"]);
  });

  it("sets the configuration explicitly: concurrency from values, results to the API, logs to stdout", () => {
    const c = one(objects, "Deployment", "coresight-worker").spec.template.spec.containers[0];
    const env = envOf(c);
    expect(env.get("WORKER_CONCURRENCY")?.value).toBe("2");
    expect(env.get("WORK_DIR")?.value).toBe("/var/lib/coresight/work");
    expect(env.get("MAX_DUMP_BYTES")?.value).toBe(String(16 * 1024 * MiB));
    expect(env.get("RESULT_SINKS")?.value).toBe("http");
    expect(env.get("CORESIGHT_API_URL")?.value).toBe("http://coresight-api:8000");
    expect(env.get("LOG_FILE")?.value).toBe("");
    expect(env.get("METRICS_PORT")?.value).toBe("9464");
    // No secret is referenced until one is named, and none is ever a literal.
    for (const name of ["CORESIGHT_API_TOKEN", "NATS_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]) expect(env.has(name)).toBe(false);
  });

  it("sizes the work dir and ephemeral storage from concurrency x MAX_DUMP_BYTES", () => {
    const pod = one(objects, "Deployment", "coresight-worker").spec.template.spec;
    const c = pod.containers[0];
    const work = pod.volumes.find((v: { name: string }) => v.name === "work").emptyDir.sizeLimit as string;
    const tmp = pod.volumes.find((v: { name: string }) => v.name === "tmp").emptyDir.sizeLimit as string;
    // 2 x 16 GiB dumps + 2 GiB symbol cache + 2 GiB image cache + 512 MiB gdb index cache + 1 GiB headroom; 2 x 64 MiB gdb output + 512 MiB.
    expect(mi(work)).toBe((2 * 16 + 2 + 2 + 1) * 1024 * MiB + 512 * MiB);
    expect(mi(tmp)).toBe((2 * 64 + 512) * MiB);
    const eph = c.resources.requests["ephemeral-storage"] as string;
    expect(c.resources.limits["ephemeral-storage"]).toBe(eph);
    expect(mi(eph)).toBe(mi(work) + mi(tmp) + 512 * MiB);
    expect(mi(eph)).toBeLessThanOrEqual(50 * 1024 * MiB); // worker.ephemeralStorageLimit
  });

  it("gives the pod more grace than SHUTDOWN_GRACE_MS, and probes on the metrics port", () => {
    const pod = one(objects, "Deployment", "coresight-worker").spec.template.spec;
    const c = pod.containers[0];
    const graceMs = Number(envOf(c).get("SHUTDOWN_GRACE_MS")?.value);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(graceMs / 1000);
    expect(pod.terminationGracePeriodSeconds).toBe(330);
    expect(c.ports).toEqual([{ name: "metrics", containerPort: 9464, protocol: "TCP" }]);
    expect(c.startupProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "metrics" });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
  });

  it("has a fixed replica count and a PDB that lets one worker go at a time", () => {
    expect(one(objects, "Deployment", "coresight-worker").spec.replicas).toBe(2);
    expect(one(objects, "PodDisruptionBudget", "coresight-worker").spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: { "app.kubernetes.io/name": "coresight", "app.kubernetes.io/instance": "coresight", "app.kubernetes.io/component": "worker" } },
    });
  });

  it("follows other sizes: 3 x 4 GiB dumps", () => {
    const pod = one(render("--set", "worker.concurrency=3", "--set", "worker.maxDumpSize=4Gi"), "Deployment", "coresight-worker").spec.template.spec;
    expect(envOf(pod.containers[0]).get("WORKER_CONCURRENCY")?.value).toBe("3");
    expect(envOf(pod.containers[0]).get("MAX_DUMP_BYTES")?.value).toBe(String(4 * 1024 * MiB));
    expect(mi(pod.volumes[0].emptyDir.sizeLimit)).toBe((3 * 4 + 2 + 2 + 1) * 1024 * MiB + 512 * MiB);
  });

  it("the gdb index cache: on, bounded and counted in the work dir; 0 turns it off", () => {
    const dflt = envOf(one(objects, "Deployment", "coresight-worker").spec.template.spec.containers[0]);
    expect(dflt.get("GDB_INDEX_CACHE")?.value).toBe("true");
    expect(dflt.get("GDB_INDEX_CACHE_MAX_BYTES")?.value).toBe(String(512 * MiB));
    const off = one(render("--set", "gdb.indexCacheMaxSize=0"), "Deployment", "coresight-worker").spec.template.spec;
    expect(envOf(off.containers[0]).get("GDB_INDEX_CACHE")?.value).toBe("false");
    expect(envOf(off.containers[0]).has("GDB_INDEX_CACHE_MAX_BYTES")).toBe(false);
    expect(mi(off.volumes[0].emptyDir.sizeLimit)).toBe((2 * 16 + 2 + 2 + 1) * 1024 * MiB);
  });

  it("the image source: on with its cache counted in the work dir; registry settings and a dockerconfigjson Secret as REGISTRY_AUTH_FILE", () => {
    const dflt = one(objects, "Deployment", "coresight-worker").spec.template.spec;
    expect(envOf(dflt.containers[0]).get("IMAGE_SYMBOLS")?.value).toBe("true");
    expect(envOf(dflt.containers[0]).get("IMAGE_CACHE_MAX_BYTES")?.value).toBe(String(2 * 1024 * MiB));
    const off = one(render("--set", "symbols.image.enabled=false"), "Deployment", "coresight-worker").spec.template.spec;
    expect(envOf(off.containers[0]).get("IMAGE_SYMBOLS")?.value).toBe("false");
    expect(envOf(off.containers[0]).has("IMAGE_CACHE_MAX_BYTES")).toBe(false);
    expect(mi(off.volumes[0].emptyDir.sizeLimit)).toBe((2 * 16 + 2 + 1) * 1024 * MiB + 512 * MiB);
    const pod = one(
      render(
        "--set", "symbols.image.pullSecret.name=regcred",
        "--set", "symbols.image.mirrors.docker\\.io[0]=m1.local:5000",
        "--set", "symbols.image.mirrors.docker\\.io[1]=m2.local",
        "--set", "symbols.image.allowedRegistryHosts[0]=*.registry.example",
        "--set", "symbols.image.insecureRegistries[0]=m1.local:5000",
      ),
      "Deployment",
      "coresight-worker",
    ).spec.template.spec;
    const env = envOf(pod.containers[0]);
    expect(env.get("REGISTRY_MIRRORS")?.value).toBe("docker.io=m1.local:5000,docker.io=m2.local");
    expect(env.get("ALLOWED_REGISTRY_HOSTS")?.value).toBe("*.registry.example");
    expect(env.get("REGISTRY_INSECURE")?.value).toBe("m1.local:5000");
    expect(env.get("REGISTRY_AUTH_FILE")?.value).toBe("/var/run/secrets/coresight/registry/config.json");
    const vol = pod.volumes.find((v: { name: string }) => v.name === "registry-auth");
    expect(vol.secret).toMatchObject({ secretName: "regcred", items: [{ key: ".dockerconfigjson", path: "config.json" }] });
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: "registry-auth", mountPath: "/var/run/secrets/coresight/registry", readOnly: true });
  });
});

/**
 * deploy/worker.yaml is the chart rendered with its defaults, without
 * namespaces (so `kubectl apply -n NS -f deploy/worker.yaml` works), for
 * those who deploy without helm. UPDATE_GOLDEN=1 rewrites it; a mismatch
 * writes deploy/worker.yaml.actual beside it.
 */
describe("deploy/worker.yaml", () => {
  it("is the chart's default rendering", () => {
    const r = runHelm(["template", "coresight", CHART]);
    expect(r.status).toBe(0);
    const body = r.stdout
      .split("\n")
      .filter((l) => !/^  namespace: /.test(l))
      .join("\n");
    const text =
      "# Generated: the chart deploy/helm/coresight rendered with its default values (release\n" +
      "# \"coresight\", namespaces left out). Do not edit; change the chart and run\n" +
      "#   UPDATE_GOLDEN=1 node --experimental-vm-modules node_modules/jest/bin/jest.js test/deploy\n" +
      "# Apply with `kubectl apply -n <namespace> -f deploy/worker.yaml`; for anything but the\n" +
      "# defaults, install the chart (docs/operations.md, \"Deploying with the Helm chart\").\n" +
      body;
    const file = path.join(ROOT, "deploy/worker.yaml");
    if (process.env.UPDATE_GOLDEN === "1") {
      fs.writeFileSync(file, text);
      fs.rmSync(`${file}.actual`, { force: true });
      return;
    }
    const expected = fs.readFileSync(file, "utf8");
    if (expected !== text) fs.writeFileSync(`${file}.actual`, text);
    else fs.rmSync(`${file}.actual`, { force: true });
    expect(text).toBe(expected);
    expect(parseAllDocuments(expected).map((d) => (d.toJS() as K8sObject).kind)).toEqual(["PodDisruptionBudget", "ServiceAccount", "Deployment", "Job"]);
  });
});

describe("helm template with KEDA, ServiceMonitor, PrometheusRule, dashboard and the API", () => {
  let objects: K8sObject[] = [];
  beforeAll(() => {
    objects = render("-f", path.join(CHART, "ci/keda-monitoring-api-values.yaml"));
  });

  it("renders every object valid against its schema", () => {
    expect(kinds(objects)).toEqual([
      "ConfigMap/coresight-dashboard",
      "Deployment/coresight-api",
      "Deployment/coresight-worker",
      "Job/coresight-worker-queue-apply",
      "PodDisruptionBudget/coresight-worker",
      "PrometheusRule/coresight-worker",
      "ScaledObject/coresight-worker",
      "Service/coresight-api",
      "Service/coresight-worker-metrics",
      "ServiceAccount/coresight",
      "ServiceMonitor/coresight-worker",
    ]);
    validateAll(objects);
  });

  it("scales the worker Deployment on the consumer's lag, one pod per `concurrency` messages", () => {
    const so = one(objects, "ScaledObject", "coresight-worker");
    expect(so.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "coresight-worker" });
    expect(so.spec).toMatchObject({ minReplicaCount: 1, maxReplicaCount: 20 });
    expect(so.spec.triggers).toEqual([
      {
        type: "nats-jetstream",
        metadata: {
          natsServerMonitoringEndpoint: "nats.messaging.svc:8222",
          account: "$G",
          stream: "COREDOG",
          consumer: "coresight-worker",
          lagThreshold: "4",
          activationLagThreshold: "0",
          useHttps: "false",
        },
      },
    ]);
    // KEDA owns the replica count.
    expect(one(objects, "Deployment", "coresight-worker").spec.replicas).toBeUndefined();
  });

  it("takes secrets by reference: env from secretKeyRef, NATS credentials and TLS as mounted files", () => {
    const pod = one(objects, "Deployment", "coresight-worker").spec.template.spec;
    const env = envOf(pod.containers[0]);
    expect(env.get("CORESIGHT_API_TOKEN")?.valueFrom).toEqual({ secretKeyRef: { name: "coresight-worker", key: "api-token" } });
    expect(env.get("AWS_ACCESS_KEY_ID")?.valueFrom).toEqual({ secretKeyRef: { name: "coresight-s3", key: "AWS_ACCESS_KEY_ID" } });
    expect(env.get("AWS_SECRET_ACCESS_KEY")?.valueFrom).toEqual({ secretKeyRef: { name: "coresight-s3", key: "AWS_SECRET_ACCESS_KEY" } });
    expect(env.get("NATS_CREDS")?.value).toBe("/var/run/secrets/coresight/nats/nats.creds");
    expect(env.get("NATS_TLS_CA")?.value).toBe("/var/run/secrets/coresight/nats-tls/ca.crt");
    expect(env.get("RESULT_SINKS")?.value).toBe("http,nats");
    // results.apiUrl left empty: the release's own API Service.
    expect(env.get("CORESIGHT_API_URL")?.value).toBe("http://coresight-api.coresight.svc:8000");
    expect(env.get("ALLOWED_FILE_ROOTS")?.value).toBe("/mnt/cfs");
    const secretVolumes = pod.volumes.filter((v: { secret?: unknown }) => v.secret).map((v: { secret: { secretName: string } }) => v.secret.secretName);
    expect(secretVolumes).toEqual(["coresight-nats", "coresight-nats-tls"]);
    for (const m of pod.containers[0].volumeMounts.filter((m: { name: string }) => m.name.startsWith("nats"))) expect(m.readOnly).toBe(true);
  });

  it("runs the API as `api` on port 8000 with DATABASE_URL and the token lists from Secrets", () => {
    const pod = one(objects, "Deployment", "coresight-api").spec.template.spec;
    const c = pod.containers[0];
    expect(c.image).toBe(one(objects, "Deployment", "coresight-worker").spec.template.spec.containers[0].image);
    expect(c.args).toEqual(["api"]);
    expect(c.ports).toEqual([{ name: "http", containerPort: 8000, protocol: "TCP" }]);
    const env = envOf(c);
    expect(env.get("API_LISTEN")?.value).toBe("0.0.0.0:8000");
    expect(env.get("DATABASE_URL")?.valueFrom).toEqual({ secretKeyRef: { name: "coresight-postgres", key: "database-url" } });
    expect(env.get("CORESIGHT_AGENT_TOKENS")?.valueFrom).toEqual({ secretKeyRef: { name: "coresight-api", key: "agent-tokens" } });
    expect(env.get("CORESIGHT_WORKER_TOKENS")?.valueFrom).toEqual({ secretKeyRef: { name: "coresight-api", key: "worker-tokens" } });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(one(objects, "Service", "coresight-api").spec.ports).toEqual([{ name: "http", port: 8000, targetPort: "http", protocol: "TCP" }]);
  });

  it("scrapes the workers through a headless Service the ServiceMonitor selects", () => {
    const svc = one(objects, "Service", "coresight-worker-metrics");
    const sm = one(objects, "ServiceMonitor", "coresight-worker");
    expect(svc.spec.clusterIP).toBe("None");
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>)) expect(svc.metadata.labels?.[k]).toBe(v);
    expect(sm.spec.endpoints).toEqual([{ port: "metrics", path: "/metrics", interval: "30s", scrapeTimeout: "10s" }]);
    expect(sm.metadata.labels?.release).toBe("kube-prometheus-stack");
  });

  it("alerts on lag growing, failure ratio, retries_exhausted and no ready workers", () => {
    const rules = one(objects, "PrometheusRule", "coresight-worker").spec.groups.flatMap((g: { rules: unknown[] }) => g.rules) as Array<{
      alert: string;
      expr: string;
      labels: { severity: string };
    }>;
    expect(rules.map((r) => r.alert)).toEqual(["CoreSightQueueLagGrowing", "CoreSightFailureRatioHigh", "CoreSightRetriesExhausted", "CoreSightNoReadyWorkers"]);
    const by = Object.fromEntries(rules.map((r) => [r.alert, r]));
    expect(by.CoreSightQueueLagGrowing!.expr).toContain('jetstream_consumer_num_pending{stream_name="COREDOG",consumer_name="coresight-worker"}');
    expect(by.CoreSightFailureRatioHigh!.expr).toContain('coresight_worker_results_total{job="coresight-worker-metrics",namespace="coresight",status="failed"}');
    expect(by.CoreSightRetriesExhausted!.expr).toContain('error_code="retries_exhausted"');
    expect(by.CoreSightNoReadyWorkers!.expr).toContain('kube_deployment_status_replicas_available{namespace="coresight",deployment="coresight-worker"} == 0');
    expect(by.CoreSightNoReadyWorkers!.labels.severity).toBe("critical");
    // Every alert points to its section of docs/operations.md, which exists.
    const ops = fs.readFileSync(path.join(ROOT, "docs/operations.md"), "utf8");
    for (const r of rules) expect(ops).toContain(`### ${r.alert}`);
  });

  it("ships the Grafana dashboard as JSON in a ConfigMap the grafana sidecar picks up", () => {
    const cm = one(objects, "ConfigMap", "coresight-dashboard");
    expect(cm.metadata.labels?.grafana_dashboard).toBe("1");
    const dash = JSON.parse(cm.data!["coresight-worker.json"]!) as { uid: string; panels: Array<{ targets: Array<{ expr: string }> }> };
    expect(dash.uid).toBe("coresight-worker");
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr)).join("\n");
    for (const metric of ["coresight_worker_results_total", "coresight_worker_jobs_in_flight", "coresight_worker_concurrency", "coresight_worker_stage_duration_seconds_bucket"]) {
      expect(exprs).toContain(metric);
    }
  });
});

describe("helm template with signatureRules", () => {
  const example = fs.readFileSync(path.join(ROOT, "docs/signature-rules.example.json"), "utf8");
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render("--set-json", `signatureRules=${JSON.stringify(JSON.parse(example))}`);
  });

  it("mounts the rules from a ConfigMap for SIGNATURE_RULES, and a change rolls the workers", () => {
    validateAll(objects);
    const cm = one(objects, "ConfigMap", "coresight-worker-signature-rules");
    // The worker's own parser takes what the chart wrote.
    expect(parseGroupingRules(cm.data!["signature-rules.json"]!)).toEqual(parseGroupingRules(example));
    const pod = one(objects, "Deployment", "coresight-worker").spec.template;
    const c = pod.spec.containers[0];
    expect(envOf(c).get("SIGNATURE_RULES")?.value).toBe("/etc/coresight/signature-rules/signature-rules.json");
    expect(c.volumeMounts).toContainEqual({ name: "signature-rules", mountPath: "/etc/coresight/signature-rules", readOnly: true });
    expect(pod.spec.volumes).toContainEqual({ name: "signature-rules", configMap: { name: "coresight-worker-signature-rules" } });
    expect(pod.metadata.annotations["checksum/signature-rules"]).toMatch(/^[0-9a-f]{64}$/);
  });

  it("the defaults render none of it", () => {
    const d = render();
    expect(d.some((o) => o.metadata.name.endsWith("signature-rules"))).toBe(false);
    expect(envOf(one(d, "Deployment", "coresight-worker").spec.template.spec.containers[0]).has("SIGNATURE_RULES")).toBe(false);
  });

  it("values.schema.json refuses what the worker would (an unknown key, max_frames out of range, an empty matcher)", () => {
    expect(refusal("--set-json", 'signatureRules={"skips":[]}')).toContain("Additional property skips is not allowed");
    expect(refusal("--set-json", 'signatureRules={"max_frames":65}')).toContain("max_frames");
    expect(refusal("--set-json", 'signatureRules={"skip":[{}]}')).toContain("skip.0");
  });
});

describe("helm template with the HPA", () => {
  it("renders a CPU HorizontalPodAutoscaler (autoscaling/v2) instead of a ScaledObject", () => {
    const objects = render("-f", path.join(CHART, "ci/hpa-values.yaml"));
    validateAll(objects);
    expect(kinds(objects)).toEqual([
      "Deployment/coresight-worker",
      "HorizontalPodAutoscaler/coresight-worker",
      "Job/coresight-worker-queue-apply",
      "PodDisruptionBudget/coresight-worker",
      "ServiceAccount/coresight",
    ]);
    const hpa = one(objects, "HorizontalPodAutoscaler", "coresight-worker");
    expect(hpa.spec).toMatchObject({ minReplicas: 2, maxReplicas: 8, scaleTargetRef: { kind: "Deployment", name: "coresight-worker" } });
    expect(hpa.spec.metrics).toEqual([{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }]);
    expect(one(objects, "Deployment", "coresight-worker").spec.replicas).toBeUndefined();
  });
});

describe("the strict field check", () => {
  it("names a field the Kubernetes API does not have, which the ajv schemas let pass", () => {
    const [deployment] = render().filter((o) => o.kind === "Deployment");
    const bad = structuredClone(deployment!);
    bad.spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem = true;
    new Deployment(bad as never).validate(); // the OpenAPI schema allows unknown fields
    const errors = typeErrors([bad]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^Deployment\/coresight-worker: .*readOnlyRootFilesytem"?' does not exist in type 'ISecurityContext'/);
  });
});

describe("values the chart refuses", () => {
  it("both autoscalers on", () => {
    expect(refusal("--set", "autoscaling.keda.enabled=true", "--set", "autoscaling.hpa.enabled=true")).toContain(
      "autoscaling.keda.enabled and autoscaling.hpa.enabled are both true: enable at most one autoscaler",
    );
  });

  it("dumps x concurrency over the ephemeral storage limit", () => {
    const msg = refusal("--set", "worker.concurrency=4", "--set", "worker.maxDumpSize=16Gi", "--set", "worker.ephemeralStorageLimit=50Gi");
    expect(msg).toContain("worker storage does not fit worker.ephemeralStorageLimit (50Gi): worker.concurrency 4 x worker.maxDumpSize 16Gi");
    expect(msg).toContain("needs 72448Mi"); // 4 x 16 GiB + 2 GiB symbol cache + 2 GiB image cache + 512 MiB gdb index cache + headroom
  });

  it("the http sink without an API URL", () => {
    expect(refusal("--set", "results.apiUrl=")).toContain("results.apiUrl (CORESIGHT_API_URL) is required when results.sinks includes http");
  });

  it("the pod-local file sink", () => {
    expect(refusal("--set", "results.sinks={file}")).toContain("results.sinks includes file: results would be written inside the pod and lost with it");
  });

  it("a variable in worker.env that the chart sets itself", () => {
    expect(refusal("--set", "worker.env.WORKER_CONCURRENCY=8")).toContain("worker.env.WORKER_CONCURRENCY: the chart sets WORKER_CONCURRENCY from its own values");
  });

  it("the API without its database Secret", () => {
    expect(refusal("--set", "api.enabled=true")).toContain("api.enabled needs api.databaseUrl.secretKeyRef.name");
  });

  it("a value of the wrong type, an unknown key and a malformed size (values.schema.json)", () => {
    expect(refusal("--set", "worker.concurrency=two")).toMatch(/worker\.concurrency: Invalid type\. Expected: integer, given: string/);
    expect(refusal("--set", "worker.concurency=2")).toContain("Additional property concurency is not allowed");
    expect(refusal("--set", "worker.maxDumpSize=16GB")).toContain("worker.maxDumpSize");
  });
});

/** helm's merge of a values file over the defaults: maps merge key by key, anything else replaces. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isMap(b) && isMap(v) ? merge(b, v) : v;
  }
  return out;
}

describe("values.schema.json", () => {
  it("is a strict draft-07 schema that the defaults and every ci values file satisfy", () => {
    const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
    const validate = ajv.compile(JSON.parse(fs.readFileSync(path.join(CHART, "values.schema.json"), "utf8")) as object);
    const defaults = parse(fs.readFileSync(path.join(CHART, "values.yaml"), "utf8")) as Record<string, unknown>;
    expect(validate(defaults) ? null : validate.errors).toBeNull();
    for (const f of CI_VALUES) {
      const values = merge(defaults, parse(fs.readFileSync(path.join(CHART, "ci", f), "utf8")) as Record<string, unknown>);
      expect([f, validate(values) ? null : validate.errors]).toEqual([f, null]);
    }
  });
});
