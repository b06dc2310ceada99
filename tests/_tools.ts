/**
 * Tools some tests need beyond Deno (a Python with SciPy, PyTorch or safetensors, Octave,
 * Debian's Fashion-MNIST). Where one is missing, the tests that need it are registered as
 * ignored, the tool named in the test's name; in CI (`CI=true`), where `.ci/run` installs every
 * one of them, a missing tool fails those tests instead.
 */

/** True in CI, where every tool the tests use must be present. */
export const inCI = Deno.env.get("CI") === "true";

/** The Python virtual environment `.ci/run` creates (git-ignored). */
const VENV_PYTHON = new URL("../.tools/venv/bin/python3", import.meta.url).pathname;

/**
 * The Python the tests run: `$MACER_PYTHON` where set, else the virtual environment of
 * `.ci/run` (made with `--system-site-packages`, so Debian's SciPy, NumPy and PyTorch are
 * visible in it, plus `safetensors` from PyPI), else Debian's `/usr/bin/python3`.
 */
export const python: string = Deno.env.get("MACER_PYTHON") ??
  (await Deno.stat(VENV_PYTHON).then(() => VENV_PYTHON, () => "/usr/bin/python3"));

/** True when `python` runs and imports every module named. */
export async function pythonHas(...modules: string[]): Promise<boolean> {
  return await succeeds(python, ["-c", `import ${["sys", ...modules].join(", ")}`]);
}

/** True when `cmd args` runs and exits with status 0. */
export async function succeeds(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Runs a Python snippet with arguments and returns its stdout; throws with stderr on failure. */
export async function runPython(
  code: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command(python, { args: ["-c", code, ...args], env }).output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`${python} failed: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

/** A tool a test needs, and whether this machine has it. */
export interface Need {
  /** What is missing, as a person would install it (e.g. "Octave (octave-cli)"). */
  tool: string;
  available: boolean;
}

/**
 * Registers a test that needs `needs`. With all of them present it is an ordinary test. With
 * one missing it is ignored, its name saying which tool it needs; with `CI=true` it fails
 * instead, naming the tool.
 */
export function testNeeding(
  needs: Need[],
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
): void {
  const missing = needs.filter((n) => !n.available).map((n) => n.tool);
  if (missing.length === 0) {
    Deno.test(name, fn);
    return;
  }
  const what = missing.join(" and ");
  if (inCI) {
    Deno.test(`${name} (needs ${what})`, () => {
      throw new Error(`${what} missing: CI=true, where .ci/run installs every tool the tests use`);
    });
    return;
  }
  Deno.test({ name: `${name} (needs ${what}, missing here)`, ignore: true, fn });
}
