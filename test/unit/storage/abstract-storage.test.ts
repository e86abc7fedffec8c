import { describe, expect, it } from 'vitest';
import { ErrorCodes, KvError } from '../../../src/errors/index.js';
import {
  AbstractStorage,
  WHOLE_RING,
  type MaybePromise,
  type StorageCallOptions,
  type StorageCapabilities,
  type StorageIterable,
  type StoredEntry,
  type StoredHint,
  type TokenRangeQuery,
} from '../../../src/storage/index.js';

const enc = new TextEncoder();
const bytes = (s: string): Uint8Array => enc.encode(s);

/** A promise with its resolve/reject, to hold a hook in flight. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

type Hook = 'open' | 'close' | 'get' | 'put' | 'delete' | 'scan' | 'putHint' | 'hints' | 'deleteHint' | 'getMeta' | 'setMeta';

/**
 * A storage whose hooks do what the test says: by default they log their
 * call and succeed synchronously; `behave[hook]` overrides one.
 */
class ScriptedStorage extends AbstractStorage {
  readonly capabilities: StorageCapabilities = { durable: false, orderedScan: false };
  readonly log: string[] = [];
  readonly seen: { range?: TokenRangeQuery; options?: StorageCallOptions; target?: string | undefined } = {};
  behave: Partial<Record<Hook, (...args: unknown[]) => unknown>> = {};
  entries: StorageIterable<StoredEntry> = [];

  #run(hook: Hook, args: unknown[], fallback: unknown): never | unknown {
    this.log.push(hook);
    const f = this.behave[hook];
    return f === undefined ? fallback : f(...args);
  }
  protected override _open(): MaybePromise<void> {
    return this.#run('open', [], undefined) as MaybePromise<void>;
  }
  protected override _close(): MaybePromise<void> {
    return this.#run('close', [], undefined) as MaybePromise<void>;
  }
  protected _get(key: Uint8Array, options: StorageCallOptions): MaybePromise<Uint8Array | undefined> {
    this.seen.options = options;
    return this.#run('get', [key, options], undefined) as MaybePromise<Uint8Array | undefined>;
  }
  protected _put(key: Uint8Array, token: number, record: Uint8Array): MaybePromise<void> {
    return this.#run('put', [key, token, record], undefined) as MaybePromise<void>;
  }
  protected _delete(key: Uint8Array): MaybePromise<void> {
    return this.#run('delete', [key], undefined) as MaybePromise<void>;
  }
  protected _scan(range: TokenRangeQuery, options: StorageCallOptions): MaybePromise<StorageIterable<StoredEntry>> {
    this.seen.range = range;
    this.seen.options = options;
    return this.#run('scan', [range], this.entries) as MaybePromise<StorageIterable<StoredEntry>>;
  }
  protected _putHint(hint: StoredHint): MaybePromise<void> {
    return this.#run('putHint', [hint], undefined) as MaybePromise<void>;
  }
  protected _hints(target: string | undefined): MaybePromise<StorageIterable<StoredHint>> {
    this.seen.target = target;
    return this.#run('hints', [target], []) as MaybePromise<StorageIterable<StoredHint>>;
  }
  protected _deleteHint(id: string): MaybePromise<void> {
    return this.#run('deleteHint', [id], undefined) as MaybePromise<void>;
  }
  protected _getMeta(name: string): MaybePromise<Uint8Array | undefined> {
    return this.#run('getMeta', [name], undefined) as MaybePromise<Uint8Array | undefined>;
  }
  protected _setMeta(name: string, value: Uint8Array): MaybePromise<void> {
    return this.#run('setMeta', [name, value], undefined) as MaybePromise<void>;
  }
}

async function opened(): Promise<ScriptedStorage> {
  const s = new ScriptedStorage();
  await s.open();
  s.log.length = 0;
  return s;
}

const entry = (t: number): StoredEntry => ({ key: bytes(`k${t}`), token: t, record: bytes(`r${t}`) });
const hint: StoredHint = { id: 'h1', target: 'n', key: bytes('k'), token: 1, record: bytes('r'), createdAt: 1 };

describe('AbstractStorage: hook failures', () => {
  const calls: [Hook, (s: ScriptedStorage) => Promise<unknown>][] = [
    ['get', (s) => s.get(bytes('user:1'))],
    ['put', (s) => s.put(bytes('user:1'), 1, bytes('r'))],
    ['delete', (s) => s.delete(bytes('user:1'))],
    ['putHint', (s) => s.putHint(hint)],
    ['deleteHint', (s) => s.deleteHint('h1')],
    ['getMeta', (s) => s.getMeta('tokens')],
    ['setMeta', (s) => s.setMeta('tokens', bytes('1'))],
  ];

  for (const [hook, call] of calls) {
    it(`${hook}: a thrown Error becomes KV_STORAGE_FAILURE with cause, naming the operation`, async () => {
      const s = await opened();
      const boom = new Error('disk on fire');
      s.behave[hook] = () => {
        throw boom;
      };
      const err = (await rejection(call(s))) as KvError;
      expect(err).toBeInstanceOf(KvError);
      expect(err.code).toBe(ErrorCodes.STORAGE_FAILURE);
      expect(err.cause).toBe(boom);
      expect(err.message).toContain(`ScriptedStorage: ${hook}`);
      expect(err.message).toContain('disk on fire');
    });

    it(`${hook}: a rejected promise becomes KV_STORAGE_FAILURE with cause`, async () => {
      const s = await opened();
      const boom = new RangeError('engine says no');
      s.behave[hook] = () => Promise.reject(boom);
      const err = (await rejection(call(s))) as KvError;
      expect(err.code).toBe(ErrorCodes.STORAGE_FAILURE);
      expect(err.cause).toBe(boom);
    });
  }

  it('names the key as UTF-8 text when printable, else as hex, and the hint or meta name', async () => {
    const s = await opened();
    s.behave.get = () => {
      throw new Error('x');
    };
    expect(((await rejection(s.get(bytes('user:1')))) as Error).message).toBe(
      'ScriptedStorage: get of key "user:1" failed: x',
    );
    expect(((await rejection(s.get(Uint8Array.of(0, 0xff, 0x10)))) as Error).message).toContain('key 0x00ff10');
    const long = ((await rejection(s.get(new Uint8Array(100).fill(0x61)))) as Error).message;
    expect(long).toContain(`"${'a'.repeat(64)}"… (100 bytes)`);
    s.behave.getMeta = () => {
      throw 'a string'; // eslint-disable-line @typescript-eslint/only-throw-error
    };
    const meta = (await rejection(s.getMeta('tokens'))) as KvError;
    expect(meta.message).toBe('ScriptedStorage: getMeta of meta "tokens" failed: string "a string"');
    expect(meta.cause).toBe('a string');
    s.behave.deleteHint = () => {
      throw new Error('y');
    };
    expect(((await rejection(s.deleteHint('h9'))) as Error).message).toBe(
      'ScriptedStorage: deleteHint of hint "h9" failed: y',
    );
  });

  it('passes a KvError thrown by a hook through unchanged', async () => {
    const s = await opened();
    const own = new KvError(ErrorCodes.OVERLOADED, 'busy');
    s.behave.put = () => Promise.reject(own);
    expect(await rejection(s.put(bytes('k'), 1, bytes('v')))).toBe(own);
  });

  it('scan: a failing step, a failing hook and a non-iterable all become KV_STORAGE_FAILURE', async () => {
    const s = await opened();
    let released = false;
    s.entries = (async function* () {
      try {
        yield entry(1);
        throw new Error('corrupt block');
      } finally {
        released = true;
      }
    })();
    const it = s.scan();
    expect((await it.next()).value).toEqual(entry(1));
    const err = (await rejection(it.next())) as KvError;
    expect(err.code).toBe(ErrorCodes.STORAGE_FAILURE);
    expect(err.message).toBe('ScriptedStorage: scan failed: corrupt block');
    expect(released).toBe(true);
    expect((await it.next()).done).toBe(true);

    s.behave.scan = () => {
      throw new Error('no cursor');
    };
    expect(((await rejection(s.scan().next())) as KvError).code).toBe(ErrorCodes.STORAGE_FAILURE);
    s.behave.scan = () => 42;
    const bad = (await rejection(s.scan().next())) as KvError;
    expect(bad.code).toBe(ErrorCodes.STORAGE_FAILURE);
    expect(bad.message).toContain('Expected the _scan hook to return an iterable, got number 42');
  });

  it('open: a KvError from the hook (KV_ENGINE_MISSING) passes, the storage stays closed and can open later', async () => {
    const s = new ScriptedStorage();
    const missing = new KvError(ErrorCodes.ENGINE_MISSING, 'install classic-level');
    s.behave.open = () => Promise.reject(missing);
    expect(await rejection(s.open())).toBe(missing);
    expect(s.status).toBe('closed');
    s.behave.open = () => {
      throw new Error('locked');
    };
    const err = (await rejection(s.open())) as KvError;
    expect(err.code).toBe(ErrorCodes.STORAGE_FAILURE);
    expect(err.message).toBe('ScriptedStorage: open failed: locked');
    delete s.behave.open;
    await s.open();
    expect(s.status).toBe('open');
  });

  it('close: a failing hook leaves the storage open, so close() can be retried', async () => {
    const s = await opened();
    s.behave.close = () => Promise.reject(new Error('flush failed'));
    const err = (await rejection(s.close())) as KvError;
    expect(err.code).toBe(ErrorCodes.STORAGE_FAILURE);
    expect(err.message).toBe('ScriptedStorage: close failed: flush failed');
    expect(s.status).toBe('open');
    await s.put(bytes('k'), 1, bytes('v'));
    delete s.behave.close;
    await s.close();
    expect(s.status).toBe('closed');
    expect(s.log).toEqual(['close', 'put', 'close']);
  });
});

describe('AbstractStorage: lifecycle', () => {
  it('runs _open and _close once per transition, in call order, sharing equal consecutive requests', async () => {
    const s = new ScriptedStorage();
    const gate = deferred();
    s.behave.open = () => gate.promise;
    const a = s.open();
    const b = s.open();
    expect(b).toBe(a);
    expect(s.status).toBe('opening');
    const c = s.close(); // queued behind the open
    const d = s.close();
    expect(d).toBe(c);
    const e = s.open(); // queued behind the close
    expect(s.status).toBe('opening');
    gate.resolve();
    await Promise.all([a, b, c, d, e]);
    expect(s.log).toEqual(['open', 'close', 'open']);
    expect(s.status).toBe('open');
    expect(await s.open().then(() => s.log.length)).toBe(3); // already open: no hook
  });

  it('refuses calls while opening and while closing (nothing is queued)', async () => {
    const s = new ScriptedStorage();
    const gate = deferred();
    s.behave.open = () => gate.promise;
    const opening = s.open();
    const err = (await rejection(s.get(bytes('k')))) as KvError;
    expect(err.code).toBe(ErrorCodes.NOT_STARTED);
    expect(err.message).toBe('ScriptedStorage: cannot get, the storage is not open (status: opening)');
    gate.resolve();
    await opening;
    const closeGate = deferred();
    s.behave.close = () => closeGate.promise;
    const closing = s.close();
    expect(((await rejection(s.put(bytes('k'), 1, bytes('v')))) as KvError).code).toBe(ErrorCodes.NOT_STARTED);
    closeGate.resolve();
    await closing;
    expect(s.log).toEqual(['open', 'close']);
  });

  it('close() waits for hook calls in flight, which complete normally, then calls _close', async () => {
    const s = await opened();
    const gate = deferred<Uint8Array>();
    s.behave.get = () => gate.promise;
    const reading = s.get(bytes('k'));
    let closed = false;
    const closing = s.close().then(() => {
      closed = true;
    });
    await Promise.resolve();
    await Promise.resolve();
    expect(s.status).toBe('closing');
    expect(closed).toBe(false);
    expect(s.log).toEqual(['get']);
    gate.resolve(bytes('v'));
    expect(await reading).toEqual(bytes('v'));
    await closing;
    expect(s.log).toEqual(['get', 'close']);
    expect(s.status).toBe('closed');
  });

  it('close() ends an iterator: a step in flight completes, the engine iterator is released, later steps reject', async () => {
    const s = await opened();
    const step = deferred();
    let released = false;
    s.entries = (async function* () {
      try {
        yield entry(1);
        await step.promise;
        yield entry(2);
        yield entry(3);
      } finally {
        released = true;
      }
    })();
    const it = s.scan();
    await it.next();
    const pending = it.next(); // waits on `step`
    const closing = s.close();
    await Promise.resolve();
    expect(s.status).toBe('closing');
    step.resolve();
    expect((await pending).value).toEqual(entry(2));
    await closing;
    expect(released).toBe(true);
    const err = (await rejection(it.next())) as KvError;
    expect(err.code).toBe(ErrorCodes.NOT_STARTED);
    expect(err.message).toBe('ScriptedStorage: the scan iterator ended because the storage closed');
    await s.open();
    expect(((await rejection(it.next())) as KvError).code).toBe(ErrorCodes.NOT_STARTED);
    expect((await it.return?.())?.done).toBe(true);
  });

  it('break in for await calls the engine iterator return()', async () => {
    const s = await opened();
    let released = false;
    s.entries = (function* () {
      try {
        for (let t = 0; t < 10; t++) yield entry(t);
      } finally {
        released = true;
      }
    })();
    for await (const e of s.scan()) {
      if (e.token === 2) break;
    }
    expect(released).toBe(true);
  });

  it('queues concurrent next() calls on one iterator', async () => {
    const s = await opened();
    s.entries = (async function* () {
      for (let t = 0; t < 3; t++) {
        await new Promise((r) => setImmediate(r));
        yield entry(t);
      }
    })();
    const it = s.scan();
    const results = await Promise.all([it.next(), it.next(), it.next(), it.next()]);
    expect(results.map((r) => (r.done ? 'done' : (r.value as StoredEntry).token))).toEqual([0, 1, 2, 'done']);
  });

  it('Symbol.asyncDispose closes', async () => {
    const s = await opened();
    await s[Symbol.asyncDispose]();
    expect(s.status).toBe('closed');
  });
});

describe('AbstractStorage: checks and clean input', () => {
  it('never throws synchronously: every refusal is a rejection', async () => {
    const s = new ScriptedStorage();
    const p = s.get('k' as never);
    expect(p).toBeInstanceOf(Promise);
    expect(((await rejection(p)) as KvError).code).toBe(ErrorCodes.NOT_STARTED);
    await s.open();
    const q = s.put(bytes('k'), -1, bytes('v'));
    expect(await rejection(q)).toBeInstanceOf(RangeError);
    expect(() => s.scan(5 as never)).not.toThrow();
  });

  it('checks options, then status, then arguments', async () => {
    const s = new ScriptedStorage();
    const aborted = AbortSignal.abort('why');
    const err = (await rejection(s.get('bad' as never, { signal: aborted }))) as KvError;
    expect(err.code).toBe(ErrorCodes.ABORTED);
    expect(err.cause).toBe('why');
    expect(((await rejection(s.get('bad' as never))) as KvError).code).toBe(ErrorCodes.NOT_STARTED);
    await s.open();
    s.log.length = 0;
    const type = (await rejection(s.get('bad' as never))) as TypeError;
    expect(type).toBeInstanceOf(TypeError);
    expect(type.message).toBe('Expected `key` to be a non-empty Uint8Array, got string "bad"');
    expect(((await rejection(s.get(new Uint8Array(0)))) as Error).message).toBe(
      'Expected `key` to be a non-empty Uint8Array, got an empty Uint8Array',
    );
    expect(((await rejection(s.put(bytes('k'), 2 ** 32, bytes('v')))) as Error).message).toBe(
      'Expected `token` to be an unsigned 32-bit integer, got number 4294967296',
    );
    expect(((await rejection(s.get(bytes('k'), 'fast' as never))) as Error).message).toBe(
      'Expected `options` to be an object, got string "fast"',
    );
    expect(((await rejection(s.get(bytes('k'), { signal: {} as AbortSignal }))) as Error).message).toBe(
      'Expected `options.signal` to be an AbortSignal, got an object',
    );
    expect(((await rejection(s.putHint({ ...hint, createdAt: '1' as never }))) as Error).message).toBe(
      'Expected `hint.createdAt` to be a finite number, got string "1"',
    );
    expect(s.log).toEqual([]); // no hook saw any of it
  });

  it('gives hooks a copy of the checked range, the whole ring for no range, and {} for no options', async () => {
    const s = await opened();
    const range = { start: 5, end: 9 };
    await s.scan(range).next();
    expect(s.seen.range).toEqual(range);
    expect(s.seen.range).not.toBe(range);
    expect(s.seen.options).toEqual({});
    await s.scan().next();
    expect(s.seen.range).toBe(WHOLE_RING);
    const { signal } = new AbortController();
    await s.get(bytes('k'), { signal });
    expect(s.seen.options?.signal).toBe(signal);
    await s.hints().next();
    expect(s.seen.target).toBeUndefined();
    await s.hints('n1').next();
    expect(s.seen.target).toBe('n1');
  });

  it('returns what synchronous hooks return, and awaits asynchronous ones', async () => {
    const s = await opened();
    s.behave.get = () => bytes('sync');
    expect(await s.get(bytes('k'))).toEqual(bytes('sync'));
    s.behave.get = async () => bytes('async');
    expect(await s.get(bytes('k'))).toEqual(bytes('async'));
    s.behave.getMeta = () => bytes('m');
    expect(await s.getMeta('m')).toEqual(bytes('m'));
    s.entries = (async function* () {
      yield entry(4);
    })();
    s.behave.scan = async () => s.entries; // a promise of an iterable
    const got: number[] = [];
    for await (const e of s.scan()) got.push(e.token);
    expect(got).toEqual([4]);
  });
});

describe('AbstractStorage: getNow / putNow, the synchronous fast path', () => {
  it('a hook that answers synchronously is answered synchronously, with the hook getting clean input', async () => {
    const s = await opened();
    const record = bytes('r1');
    s.behave.get = () => record;
    expect(s.getNow(bytes('k'))).toBe(record);
    s.behave.get = () => undefined;
    expect(s.getNow(bytes('k'))).toBeUndefined();
    expect(s.putNow(bytes('k'), 7, bytes('r'))).toBeUndefined();
    expect(s.log).toEqual(['get', 'get', 'put']);
    expect(s.seen.options).toEqual({});
  });

  it('a hook that returns a promise gets its promise back, settled as get/put settle (failures mapped)', async () => {
    const s = await opened();
    s.behave.get = () => Promise.resolve(bytes('later'));
    const got = s.getNow(bytes('k'));
    expect(got).toBeInstanceOf(Promise);
    expect(new TextDecoder().decode((await got)!)).toBe('later');
    s.behave.put = () => Promise.reject(new Error('disk full'));
    const put = s.putNow(bytes('user:1'), 1, bytes('r'));
    expect(put).toBeInstanceOf(Promise);
    const err = await rejection(put as Promise<void>);
    expect(err).toMatchObject({ code: ErrorCodes.STORAGE_FAILURE });
    expect((err as Error).message).toContain('put');
    expect((err as Error).message).toContain('"user:1"');
  });

  it('refusals and failures are thrown, not returned, with the codes get/put reject with', async () => {
    const s = await opened();
    expect(() => s.getNow(new Uint8Array(0))).toThrow(TypeError);
    expect(() => s.putNow(bytes('k'), -1, bytes('r'))).toThrow(RangeError);
    expect(() => s.putNow(bytes('k'), 1, 'r' as unknown as Uint8Array)).toThrow(TypeError);
    s.behave.get = () => {
      throw new Error('engine broke');
    };
    expect(() => s.getNow(bytes('k'))).toThrow(expect.objectContaining({ code: ErrorCodes.STORAGE_FAILURE }));
    const known = new KvError(ErrorCodes.NOT_STARTED, 'mine');
    s.behave.put = () => {
      throw known;
    };
    expect(() => s.putNow(bytes('k'), 1, bytes('r'))).toThrow(known);
    await s.close();
    s.log.length = 0;
    expect(() => s.getNow(bytes('k'))).toThrow(expect.objectContaining({ code: ErrorCodes.NOT_STARTED }));
    expect(() => s.putNow(bytes('k'), 1, bytes('r'))).toThrow(expect.objectContaining({ code: ErrorCodes.NOT_STARTED }));
    expect(s.log).toEqual([]);
  });

  it('never skips a subclass that overrides get or put (they are called instead)', async () => {
    class Counting extends ScriptedStorage {
      gets = 0;
      puts = 0;
      override get(key: Uint8Array, options?: StorageCallOptions): Promise<Uint8Array | undefined> {
        this.gets++;
        return super.get(key, options);
      }
      override put(key: Uint8Array, token: number, record: Uint8Array, options?: StorageCallOptions): Promise<void> {
        this.puts++;
        return super.put(key, token, record, options);
      }
    }
    const s = new Counting();
    await s.open();
    const got = s.getNow(bytes('k'));
    const put = s.putNow(bytes('k'), 1, bytes('r'));
    expect(got).toBeInstanceOf(Promise);
    expect(put).toBeInstanceOf(Promise);
    await Promise.all([got, put]);
    expect([s.gets, s.puts]).toEqual([1, 1]);
  });
});
