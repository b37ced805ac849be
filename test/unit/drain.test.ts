import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { drainStream } from '../../src/smtp/drain.js';

// A DATA stream is drained after a failure; however it ends, the drain must end too.
test('drainStream resolves when the stream ends, is destroyed (before or during the drain), or fails', async () => {
  const ended = new PassThrough();
  const a = drainStream(ended);
  ended.end('rest of the message');
  await a;

  const destroyedBefore = new PassThrough();
  destroyedBefore.destroy();
  await drainStream(destroyedBefore);

  // What smtp-server does when the client drops mid-DATA: no 'end' ever comes.
  const dropped = new PassThrough();
  dropped.write('partial');
  const b = drainStream(dropped);
  dropped.destroy(new Error('Connection closed before the message was received in full'));
  await b;

  const alreadyEnded = new PassThrough();
  alreadyEnded.resume();
  alreadyEnded.end();
  await new Promise((r) => alreadyEnded.once('end', r));
  await drainStream(alreadyEnded);
  assert.ok(true);
});
