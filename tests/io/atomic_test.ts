import assert from "node:assert/strict";
import { writeFileAtomic, writeFileAtomicSync } from "../../src/io/atomic.ts";

Deno.test("writeFileAtomic() replaces a file and leaves no temporary behind", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ckpt.bin`;
  await Deno.writeTextFile(path, "old contents that are longer");
  await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
  assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
  writeFileAtomicSync(path, new Uint8Array([4]));
  assert.deepEqual(await Deno.readFile(path), new Uint8Array([4]));
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  assert.deepEqual(names, ["ckpt.bin"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFileAtomic() fails cleanly when the directory is missing", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    () => writeFileAtomic(`${dir}/no/such/file`, new Uint8Array(1)),
    Deno.errors.NotFound,
  );
  assert.throws(
    () => writeFileAtomicSync(`${dir}/no/such/file`, new Uint8Array(1)),
    Deno.errors.NotFound,
  );
  await Deno.remove(dir, { recursive: true });
});
