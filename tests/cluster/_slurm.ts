/**
 * A one-node Slurm cluster on loopback for a test: its own MUNGE daemon (a key
 * and socket of its own), slurmctld and slurmd in the foreground with a
 * generated slurm.conf (ports that were free, a state and spool directory in a
 * temporary folder), all stopped and removed when disposed. Commands reach it
 * through `SLURM_CONF`, so nothing of a Slurm installed on the machine is used
 * or touched.
 *
 * @module
 */
import { succeeds } from "../_tools.ts";

/** The programs the cluster needs, and whether each is here. */
export async function slurmNeeds(): Promise<{ tool: string; available: boolean }[]> {
  const has = async (cmd: string, args: string[]) => await succeeds(cmd, args);
  return [
    {
      tool: "Slurm (Debian's slurmctld, slurmd, slurm-client)",
      // The client commands need a configuration to run at all: found on the PATH instead.
      available: await has("slurmctld", ["-V"]) && await has("slurmd", ["-V"]) &&
        await has("sh", ["-c", "command -v sbatch squeue sinfo scontrol scancel"]),
    },
    { tool: "MUNGE (Debian's munge)", available: await has("mungekey", ["--help"]) },
    { tool: "root (slurmd starts jobs as their user)", available: Deno.uid() === 0 },
  ];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ports free now on loopback. */
function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

/** A running cluster. */
export interface Cluster extends AsyncDisposable {
  dir: string;
  /** Environment for Slurm's commands (and the jobs they submit). */
  env: Record<string, string>;
  node: string;
  /** Runs a Slurm command; throws with its output when it fails. */
  run(cmd: string, ...args: string[]): Promise<string>;
  /** The daemons' logs, for a failure message. */
  logs(): Promise<string>;
}

/** Polls `holds` every 100 ms until it is true; throws naming `what` after `ms`. */
export async function until(
  what: string,
  holds: () => Promise<boolean>,
  ms: number,
  explain: () => Promise<string> = () => Promise.resolve(""),
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await holds())) {
    if (Date.now() > deadline) {
      throw new Error(`no ${what} within ${ms / 1000} s\n${await explain()}`);
    }
    await sleep(100);
  }
}

/**
 * Starts MUNGE, slurmctld and slurmd, and waits until the node is idle.
 *
 * @param cpus CPUs of the node (jobs take one each)
 */
export async function startCluster(cpus = 2): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ prefix: "macer-slurm-" });
  const children: Deno.ChildProcess[] = [];
  const node = "macer0";
  const conf = `${dir}/slurm.conf`;
  const env = { SLURM_CONF: conf };
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const run = async (cmd: string, ...args: string[]) => {
    const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${text(out.stderr)}`);
    return text(out.stdout);
  };
  const logs = async () => {
    const parts = [];
    for (const f of ["slurmctld.log", "slurmd.log", "munged.log"]) {
      const t = await Deno.readTextFile(`${dir}/log/${f}`).catch(() => "(none)");
      parts.push(`--- ${f}\n${t.split("\n").slice(-30).join("\n")}`);
    }
    return parts.join("\n");
  };
  const stop = async () => {
    // Jobs first (their slurmstepd would outlive slurmd), then the daemons, newest first.
    await run("scancel", "--full", "--user", "root").catch(() => {});
    await until(
      "empty queue",
      async () => (await run("squeue", "-h").catch(() => "")).trim() === "",
      15_000,
    ).catch(() => {});
    for (const child of children.reverse()) {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const done = await Promise.race([child.status.then(() => true), sleep(10_000)]);
      if (!done) {
        child.kill("SIGKILL");
        await child.status;
      }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const spawn = (cmd: string, args: string[]) => {
    children.push(
      new Deno.Command(cmd, { args, env, stdin: "null", stdout: "null", stderr: "piped" }).spawn(),
    );
    // Unread stderr would block the daemon once the pipe fills: drain it.
    children.at(-1)!.stderr.pipeTo(new WritableStream()).catch(() => {});
  };
  try {
    for (const d of ["munge", "state", "spool", "log"]) await Deno.mkdir(`${dir}/${d}`);
    await Deno.chmod(dir, 0o711);
    await Deno.chmod(`${dir}/munge`, 0o711); // MUNGE wants its socket's folder searchable
    const key = `${dir}/munge/munge.key`;
    await run("mungekey", "--create", `--keyfile=${key}`);
    await Deno.chmod(key, 0o400);
    const socket = `${dir}/munge/munge.sock`;
    spawn("munged", [
      "--foreground",
      "--force",
      `--socket=${socket}`,
      `--key-file=${key}`,
      `--pid-file=${dir}/munge/munged.pid`,
      `--log-file=${dir}/log/munged.log`,
      `--seed-file=${dir}/munge/munged.seed`,
    ]);
    await until(
      "MUNGE socket",
      () => Deno.stat(socket).then(() => true, () => false),
      10_000,
      logs,
    );
    const [ctlPort, dPort] = freePorts(2);
    const host = Deno.hostname().split(".")[0];
    await Deno.writeTextFile(
      conf,
      [
        "ClusterName=macertest",
        `SlurmctldHost=${host}(127.0.0.1)`,
        `SlurmctldPort=${ctlPort}`,
        `SlurmdPort=${dPort}`,
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        `AuthInfo=socket=${socket}`,
        `StateSaveLocation=${dir}/state`,
        `SlurmdSpoolDir=${dir}/spool`,
        `SlurmctldPidFile=${dir}/slurmctld.pid`,
        `SlurmdPidFile=${dir}/slurmd.pid`,
        `SlurmctldLogFile=${dir}/log/slurmctld.log`,
        `SlurmdLogFile=${dir}/log/slurmd.log`,
        "MailProg=/bin/true",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "MpiDefault=none",
        "SchedulerType=sched/builtin",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "InactiveLimit=0",
        "KillWait=2",
        "MinJobAge=600",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        `NodeName=${node} NodeHostname=${host} NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN`,
        `PartitionName=macer Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
        "",
      ].join("\n"),
    );
    spawn("slurmctld", ["-D", "-f", conf]);
    spawn("slurmd", ["-D", "-f", conf, "-N", node]);
    await until(
      "idle node",
      async () => {
        const state = await run("sinfo", "-h", "-n", node, "-o", "%T").catch(() => "");
        return state.trim() === "idle";
      },
      30_000,
      logs,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, env, node, run, logs, [Symbol.asyncDispose]: stop };
}
