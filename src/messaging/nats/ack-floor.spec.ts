import { describe, expect, it } from 'vitest';
import { AckFloor } from './ack-floor.js';

/** Messages are stood in for by their names; `seq` is the stream sequence. */
function floorOf(...seqs: number[]): AckFloor<string> {
  const f = new AckFloor<string>();
  for (const s of seqs) f.take(s, `m${s}`);
  return f;
}

describe('AckFloor', () => {
  it('acks only the highest sequence below which everything finished, whatever order they finish in', () => {
    const f = floorOf(10, 11, 12, 13);
    f.finish(12, 'm12');
    f.finish(13, 'm13');
    expect(f.advance()).toBeUndefined();
    f.finish(10, 'm10');
    expect(f.advance()).toBe('m10');
    expect(f.advance()).toBeUndefined();
    f.finish(11, 'm11');
    // One ack (AckAll) for 11, 12 and 13.
    expect(f.advance()).toBe('m13');
    expect(f.size).toBe(0);
  });

  it('is held back by a message still retrying; its finished successors stay held, and are kept alive', () => {
    const f = new AckFloor<string>();
    f.take(1, 'retrying', 100);
    for (let s = 2; s <= 5; s++) {
      f.take(s, `m${s}`, 100 + s);
      f.finish(s, `m${s}`);
    }
    expect(f.advance()).toBeUndefined();
    expect(f.size).toBe(5);
    // The beat extends every message not acked yet (taken before its cut-off), finished or not.
    expect([...f.held(104)]).toEqual(['retrying', 'm2', 'm3']);
    expect([...f.held()]).toEqual(['retrying', 'm2', 'm3', 'm4', 'm5']);
    f.finish(1, 'retrying');
    expect(f.advance()).toBe('m5');
    expect([...f.held()]).toEqual([]);
  });

  it('counts a dead-lettered message as finished: the floor passes it like any other', () => {
    const f = floorOf(7, 8, 9);
    f.finish(8, 'm8');
    f.finish(9, 'm9');
    // m7 exhausted its deliveries and went to the dead-letter stream: finished, not acked alone.
    f.finish(7, 'm7');
    expect(f.advance()).toBe('m9');
  });

  it('never passes a message left unfinished (stopped before its turn): the next owner replays from it', () => {
    const f = floorOf(1, 2, 3, 4);
    f.finish(1, 'm1');
    f.finish(3, 'm3');
    f.finish(4, 'm4');
    // The stop's flush acks what is finished below the first unfinished message, nothing past it.
    expect(f.advance()).toBe('m1');
    expect(f.advance()).toBeUndefined();
    expect(f.size).toBe(3);
  });

  it('waits for the newest copy of a redelivered message; an older copy finishing does not count', () => {
    const f = floorOf(1, 2);
    f.take(1, 'm1-again');
    f.finish(1, 'm1');
    f.finish(2, 'm2');
    expect(f.advance()).toBeUndefined();
    f.finish(1, 'm1-again');
    expect(f.advance()).toBe('m2');
  });

  it('keeps a redelivery of a sequence the floor already passed in order (an ack that was lost)', () => {
    const f = floorOf(5, 6);
    f.finish(5, 'm5');
    expect(f.advance()).toBe('m5');
    f.take(7, 'm7');
    f.take(5, 'm5-again');
    f.finish(7, 'm7');
    expect(f.advance()).toBeUndefined();
    f.finish(6, 'm6');
    expect(f.advance()).toBeUndefined();
    f.finish(5, 'm5-again');
    expect(f.advance()).toBe('m7');
  });

  it('ignores finishes of copies it forgot (the consumer was re-created) and stays usable after many', () => {
    const f = floorOf(1, 2);
    f.clear();
    f.finish(1, 'm1');
    expect(f.advance()).toBeUndefined();
    for (let s = 1; s <= 5000; s++) {
      f.take(s, `m${s}`);
      f.finish(s, `m${s}`);
      if (s % 100 === 0) expect(f.advance()).toBe(`m${s}`);
    }
    expect(f.size).toBe(0);
  });
});
