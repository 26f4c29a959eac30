// The wall clock frames are stamped with: precise, and never far from Date.now().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANCHOR_EVERY_MS, WallClock } from '../src/worker/clock.js';

test('follows the monotonic clock between checks, and the wall clock after a step', () => {
  let wall = 1_700_000_000_000;
  let mono = 5000.25;
  const clock = new WallClock(
    () => wall,
    () => mono,
  );
  assert.equal(clock.now(), 1_700_000_000_000);
  mono += 10.5;
  wall += 10; // Date.now() is whole milliseconds: its rounding does not move the clock
  assert.equal(clock.now(), 1_700_000_000_010.5);
  wall += 60_000; // the system clock was stepped (NTP, or a suspend the monotonic clock missed)
  mono += 0.5;
  assert.equal(clock.now(), 1_700_000_000_011, 'not before the next check');
  mono += ANCHOR_EVERY_MS;
  assert.equal(clock.now(), wall, 'a check moves it to the wall clock');
  wall += ANCHOR_EVERY_MS;
  mono += ANCHOR_EVERY_MS + 0.75; // 0.75 ms apart: within Date.now()'s rounding, not moved
  assert.equal(clock.now() - wall, 0.75);
});

test('the real clock is within a few ms of Date.now()', () => {
  const clock = new WallClock();
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(clock.now() - Date.now()) < 5);
});
