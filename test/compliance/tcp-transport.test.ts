import * as vitest from 'vitest';
import { TcpTransport, type TcpTransportOptions } from '../../src/transport/index.js';
import { transportCompliance } from '../../src/testing/transport-compliance.js';
import type { Transport } from '../../src/transport/types.js';
import { makeTestPki } from '../unit/transport/tcp-certs.js';

/**
 * A pair of TcpTransports on 127.0.0.1, port 0. `reopen` starts a new
 * transport on the port the stopped one listened on (a restart at the same
 * address).
 */
function tcpPair(options: TcpTransportOptions = {}) {
  return () => ({
    a: new TcpTransport({ host: '127.0.0.1', port: 0, ...options }),
    b: new TcpTransport({ host: '127.0.0.1', port: 0, ...options }),
    reopen: (stopped: Transport) => {
      const port = Number(stopped.address.slice(stopped.address.lastIndexOf(':') + 1));
      return new TcpTransport({ host: '127.0.0.1', ...options, port });
    },
  });
}

transportCompliance({ name: 'TcpTransport (plain)', setup: tcpPair(), test: vitest });

transportCompliance({
  name: 'TcpTransport (secret)',
  setup: tcpPair({ secret: 'a shared cluster secret of 32 bytes' }),
  test: vitest,
});

// Certificates are made synchronously at load: `setup` runs while the cases are registered.
const pki = makeTestPki();
transportCompliance({
  name: 'TcpTransport (mutual TLS)',
  setup: tcpPair({ tls: pki.node }),
  test: vitest,
});

transportCompliance({
  name: 'TcpTransport (mutual TLS + secret)',
  setup: tcpPair({ tls: pki.node2, secret: 'a shared cluster secret of 32 bytes' }),
  test: vitest,
});
