/**
 * A study as Kubernetes Jobs (batch/v1), for `kubectl apply`: the training
 * Job, the certification as an Indexed Job (`completionMode: Indexed`, the
 * shard from `JOB_COMPLETION_INDEX`), and the merge Job. Kubernetes has no
 * dependencies between Jobs: each is applied once the one before it is
 * complete (`kubectl wait --for=condition=complete`). The run directory lives
 * on a PersistentVolumeClaim that every pod mounts.
 *
 * @module
 */
import { INDEX, jobsOf, shellQuote, type StudyPlan } from "./plan.ts";

/** Where the pods run (the image holds the repository and Deno). */
export interface K8sOptions {
  /** The container image. */
  image: string;
  /** The PersistentVolumeClaim holding the run directory. */
  claim: string;
  /** Where the claim is mounted in the pods (the run directory is inside it). */
  mount: string;
  /** GPUs per pod (`nvidia.com/gpu`; not for the merge Job). */
  gpus?: number;
  /** Shards running at once (default: all). */
  parallelism?: number;
  namespace?: string;
}

/** One manifest: a Job, and the file it is written to. */
export interface K8sManifest {
  file: string;
  name: string;
  doc: Record<string, unknown>;
}

/** A name Kubernetes accepts (RFC 1123 label: lowercase, digits, '-', at most 63). */
export function k8sName(s: string): string {
  const n = s.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return (n || "macer").slice(0, 63).replace(/-+$/, "");
}

/** The Jobs of `plan`, in the order they are applied. */
export function k8sManifests(plan: StudyPlan, o: K8sOptions): K8sManifest[] {
  return jobsOf(plan).map((job) => {
    const name = k8sName(`${plan.name}`.slice(0, 55) + `-${job.role}`);
    const indexed = job.argv.some((a) => a.includes(INDEX));
    const gpus = o.gpus !== undefined && job.role !== "merge" ? o.gpus : undefined;
    const container: Record<string, unknown> = {
      name: job.role,
      image: o.image,
      workingDir: plan.root,
      // $(VAR) in args is expanded by Kubernetes from the container's env, where the index is
      // declared below as the Job controller would (it leaves a declared one alone).
      args: job.argv.slice(1).map((a) => a.replace(INDEX, "$(JOB_COMPLETION_INDEX)")),
      command: [job.argv[0]],
      volumeMounts: [{ name: "runs", mountPath: o.mount }],
      ...(indexed
        ? {
          env: [{
            name: "JOB_COMPLETION_INDEX",
            valueFrom: {
              fieldRef: {
                fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']",
              },
            },
          }],
        }
        : {}),
      ...(gpus !== undefined ? { resources: { limits: { "nvidia.com/gpu": gpus } } } : {}),
    };
    const spec: Record<string, unknown> = {
      ...(indexed
        ? {
          completionMode: "Indexed",
          completions: job.count,
          parallelism: Math.min(job.count, o.parallelism ?? job.count),
        }
        : {}),
      // A failed shard is run again by hand (its part is kept or redone; nothing else is lost).
      backoffLimit: 0,
      template: {
        metadata: {
          labels: { app: "macer", "macer/run": k8sName(plan.name), "macer/role": job.role },
        },
        spec: {
          restartPolicy: "Never",
          containers: [container],
          volumes: [{ name: "runs", persistentVolumeClaim: { claimName: o.claim } }],
        },
      },
    };
    return {
      file: `${job.role}.yaml`,
      name,
      doc: {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name, ...(o.namespace !== undefined ? { namespace: o.namespace } : {}) },
        spec,
      },
    };
  });
}

/** The kubectl commands that apply `manifests` from `dir`, one after the other. */
export function kubectlLines(manifests: K8sManifest[], dir: string, namespace?: string): string[] {
  const ns = namespace === undefined ? "" : ` -n ${shellQuote(namespace)}`;
  return manifests.flatMap((m, i) => [
    `kubectl apply${ns} -f ${shellQuote(`${dir}/${m.file}`)}`,
    ...(i < manifests.length - 1
      ? [`kubectl wait${ns} --for=condition=complete --timeout=-1s job/${m.name}`]
      : []),
  ]);
}

/**
 * A YAML document for plain data (objects, arrays, strings, numbers, booleans): strings are
 * double-quoted, so nothing in them is read as YAML syntax.
 */
export function toYaml(value: unknown, indent = ""): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return value.map((v) => {
      const inner = toYaml(v, indent + "  ");
      return `\n${indent}- ${isBlock(v) ? inner.replace(/^\n\s*/, "") : inner}`;
    }).join("");
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    return entries.map(([k, v]) => {
      const key = /^[A-Za-z_][A-Za-z0-9_./-]*$/.test(k) ? k : JSON.stringify(k);
      const inner = toYaml(v, indent + "  ");
      return `\n${indent}${key}:${isBlock(v) ? inner : ` ${inner}`}`;
    }).join("");
  }
  return JSON.stringify(value);
}

function isBlock(v: unknown): boolean {
  return v !== null && typeof v === "object" &&
    (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
}

/** A manifest's text. */
export function manifestText(m: K8sManifest): string {
  return toYaml(m.doc).replace(/^\n/, "") + "\n";
}
