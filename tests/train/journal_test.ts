import assert from "node:assert/strict";
import { appendJournal, readJournal } from "../../src/train/journal.ts";

const entry = (index: number, radius: number) => ({
  index,
  label: index % 10,
  certificates: { hard: { prediction: index % 10, radius } },
  seconds: 0.5,
});

Deno.test("readJournal() keeps whole lines that follow the run's images, drops a cut line", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/c.journal.jsonl`;
  try {
    assert.deepEqual(await readJournal(path, [5, 6, 7]), []);
    await appendJournal(path, entry(5, 0.1234567890123456));
    await appendJournal(path, entry(6, 1 / 3));
    await Deno.writeTextFile(path, '{"index":7,"label":7,"certif', { append: true });
    const got = await readJournal(path, [5, 6, 7]);
    assert.deepEqual(got, [entry(5, 0.1234567890123456), entry(6, 1 / 3)]);
    // The file now holds exactly the whole lines, so appending continues cleanly.
    await appendJournal(path, entry(7, 2));
    assert.deepEqual((await readJournal(path, [5, 6, 7])).map((e) => e.index), [5, 6, 7]);
    await assert.rejects(
      readJournal(path, [5, 7, 6]),
      /holds image 6 where this run certifies image 7/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
