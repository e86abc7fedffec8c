import { describe, expect, it } from 'vitest';
import { TcpTransport, TCP_DEFAULTS } from '../../../src/transport/index.js';
import { formatAddress, parseAddress } from '../../../src/transport/tcp/address.js';
import { resolveTcpOptions } from '../../../src/transport/tcp/options.js';

describe('TcpTransport options', () => {
  it('defaults: 127.0.0.1, port 0, 16 MiB frames, documented bounds', () => {
    const o = resolveTcpOptions({});
    expect(o).toMatchObject({
      host: '127.0.0.1',
      port: 0,
      advertiseHost: '127.0.0.1',
      maxFrameBytes: 16 * 1024 * 1024,
      maxPendingPerPeer: TCP_DEFAULTS.maxPendingPerPeer,
      maxBufferedBytesPerPeer: TCP_DEFAULTS.maxBufferedBytesPerPeer,
      maxConnections: TCP_DEFAULTS.maxConnections,
      defaultTimeout: 5000,
      reconnect: { initialDelay: 100, maxDelay: 5000, jitter: 0.5 },
      protocolVersions: [1, 1],
    });
    const t = new TcpTransport();
    expect(t.capabilities).toEqual({ encodes: true, faultInjection: false, maxFrameBytes: 16 * 1024 * 1024, batchesRequests: true });
    expect(t.address).toBe('127.0.0.1:0');
    expect(t.started).toBe(false);
  });

  const bad: [string, unknown, RegExp, 'TypeError' | 'RangeError'][] = [
    ['options', 42, /Expected `options` to be an object, got 42/, 'TypeError'],
    ['host', { host: '' }, /Expected `host` to be a host name or IP address, got ""/, 'TypeError'],
    ['host', { host: 'a b' }, /Expected `host`/, 'TypeError'],
    ['port', { port: -1 }, /Expected `port` to be an integer from 0 to 65535, got -1/, 'RangeError'],
    ['port', { port: 70000 }, /Expected `port`/, 'RangeError'],
    ['port', { port: 1.5 }, /Expected `port`/, 'RangeError'],
    ['wildcard', { host: '0.0.0.0' }, /Expected `advertiseHost`.*when `host` is the wildcard "0.0.0.0"/, 'TypeError'],
    ['wildcard v6', { host: '::' }, /Expected `advertiseHost`/, 'TypeError'],
    ['advertiseHost', { host: '0.0.0.0', advertiseHost: '0.0.0.0' }, /got the wildcard/, 'TypeError'],
    ['advertisePort', { advertisePort: 0 }, /Expected `advertisePort` to be an integer from 1 to 65535/, 'RangeError'],
    ['secret type', { secret: 12 }, /Expected `secret` to be a string or Uint8Array, got 12/, 'TypeError'],
    ['secret length', { secret: 'short' }, /Expected `secret` to be at least 16 bytes.*got 5/, 'RangeError'],
    ['defaultTimeout', { defaultTimeout: 0 }, /Expected `defaultTimeout` to be a positive finite number of milliseconds, got 0/, 'RangeError'],
    ['connectTimeout', { connectTimeout: Infinity }, /Expected `connectTimeout`/, 'RangeError'],
    ['handshakeTimeout', { handshakeTimeout: -5 }, /Expected `handshakeTimeout`/, 'RangeError'],
    ['frameTimeout', { frameTimeout: '1s' }, /Expected `frameTimeout`.*got "1s"/, 'RangeError'],
    ['closeTimeout', { closeTimeout: NaN }, /Expected `closeTimeout`/, 'RangeError'],
    ['maxFrameBytes', { maxFrameBytes: 100 }, /Expected `maxFrameBytes` to be an integer >= 1024, got 100/, 'RangeError'],
    ['maxFrameBytes', { maxFrameBytes: 2 ** 33 }, /fit the 4-byte length prefix/, 'RangeError'],
    ['maxPendingPerPeer', { maxPendingPerPeer: Infinity }, /Expected `maxPendingPerPeer` to be an integer >= 1, got Infinity/, 'RangeError'],
    ['maxBufferedBytesPerPeer', { maxBufferedBytesPerPeer: 1000 }, /Expected `maxBufferedBytesPerPeer` to be an integer >= 65536, got 1000/, 'RangeError'],
    ['maxConnections', { maxConnections: 2.5 }, /Expected `maxConnections`/, 'RangeError'],
    ['reconnect', { reconnect: 5 }, /Expected `reconnect` to be an object/, 'TypeError'],
    ['reconnect.maxDelay', { reconnect: { initialDelay: 500, maxDelay: 100 } }, /`reconnect.maxDelay` \(100\) to be >= `reconnect.initialDelay` \(500\)/, 'RangeError'],
    ['reconnect.jitter', { reconnect: { jitter: 2 } }, /Expected `reconnect.jitter` to be a number from 0 to 1, got 2/, 'RangeError'],
    ['clock', { clock: {} }, /Expected `clock` to be a Clock/, 'TypeError'],
    ['tls', { tls: 'yes' }, /Expected `tls` to be an object \{ ca, cert, key \}/, 'TypeError'],
    ['tls.ca', { tls: { cert: 'x', key: 'y' } }, /Expected `tls.ca` to be a non-empty PEM string or Uint8Array, got undefined/, 'TypeError'],
    ['tls.cert', { tls: { ca: 'x', key: 'y' } }, /Expected `tls.cert`/, 'TypeError'],
    ['tls.key', { tls: { ca: 'x', cert: 'y' } }, /Expected `tls.key`/, 'TypeError'],
    ['tls.ca[]', { tls: { ca: [], cert: 'x', key: 'y' } }, /Expected `tls.ca` to hold at least one CA certificate/, 'TypeError'],
    ['tls.verifyHostname', { tls: { ca: 'x', cert: 'y', key: 'z', verifyHostname: 'no' } }, /Expected `tls.verifyHostname` to be a boolean/, 'TypeError'],
    ['tls.minVersion', { tls: { ca: 'x', cert: 'y', key: 'z', minVersion: 'SSLv3' } }, /Expected `tls.minVersion`/, 'TypeError'],
  ];
  for (const [what, options, message, type] of bad) {
    it(`refuses a bad ${what} with a precise ${type}`, () => {
      let err: unknown;
      try {
        new TcpTransport(options as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(type === 'TypeError' ? TypeError : RangeError);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('refuses PEM that cannot be loaded at construction, not at the first connection', () => {
    expect(() => new TcpTransport({ tls: { ca: 'not pem', cert: 'not pem', key: 'not pem' } })).toThrow(
      /Expected `tls` to hold a loadable CA, certificate and key/,
    );
  });

  it('a wildcard host with advertiseHost (and advertisePort) gives that address', () => {
    expect(new TcpTransport({ host: '0.0.0.0', port: 7000, advertiseHost: 'node-1.internal' }).address).toBe('node-1.internal:7000');
    expect(new TcpTransport({ host: '0.0.0.0', port: 7000, advertiseHost: '10.0.0.5', advertisePort: 17000 }).address).toBe('10.0.0.5:17000');
    expect(new TcpTransport({ host: '::', port: 7000, advertiseHost: 'fd00::5' }).address).toBe('[fd00::5]:7000');
  });

  it('a secret may be bytes; a copy is kept', () => {
    const secret = new Uint8Array(32).fill(7);
    const o = resolveTcpOptions({ secret });
    secret.fill(0);
    expect([...o.secret!]).toEqual(new Array(32).fill(7));
  });
});

describe('addresses', () => {
  it('formats and parses host:port and [v6]:port', () => {
    expect(formatAddress('127.0.0.1', 80)).toBe('127.0.0.1:80');
    expect(formatAddress('::1', 80)).toBe('[::1]:80');
    expect(formatAddress('db.local', 9000)).toBe('db.local:9000');
    expect(parseAddress('127.0.0.1:80')).toEqual({ host: '127.0.0.1', port: 80 });
    expect(parseAddress('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseAddress('db.local:9000')).toEqual({ host: 'db.local', port: 9000 });
  });

  it('refuses anything else (addresses come from the network)', () => {
    for (const a of ['', 'x', 'x:', ':80', 'x:0', 'x:65536', 'x:80:1', '::1:80', '[x]:80', 'a b:1', 'x:1e3', `${'h'.repeat(400)}:1`]) {
      expect(parseAddress(a), a).toBeUndefined();
    }
  });

  it('a request to something that is not host:port fails with KV_UNREACHABLE', async () => {
    const t = new TcpTransport();
    await t.start(() => ({ type: 'x' }));
    try {
      await expect(t.request('not-an-address', { type: 'x' })).rejects.toMatchObject({ code: 'KV_UNREACHABLE' });
      await expect(t.request('', { type: 'x' })).rejects.toThrow(TypeError);
      await expect(t.request('127.0.0.1:1', { type: 'x' }, { timeout: -1 })).rejects.toThrow(RangeError);
    } finally {
      await t.stop();
    }
  });
});
