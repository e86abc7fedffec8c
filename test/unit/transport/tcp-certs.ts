import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A node's TLS material, PEM. */
export interface TestTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Certificates for the TLS tests, made with the system's `openssl`. */
export interface TestPki {
  /** A node certificate of the cluster CA, for 127.0.0.1 and localhost. */
  readonly node: TestTls;
  /** Another node certificate of the same CA. */
  readonly node2: TestTls;
  /** A certificate of the cluster CA that names another host only (127.0.0.2 / elsewhere.test). */
  readonly wrongHost: TestTls;
  /** A node certificate signed by another CA (its `ca` is that other CA). */
  readonly rogue: TestTls;
  /** A self-signed certificate whose `ca` is itself. */
  readonly selfSigned: TestTls;
  /** Trusts the cluster CA but presents a certificate of another CA. */
  readonly impostor: TestTls;
}

const OPENSSL = process.env.OPENSSL ?? 'openssl';

function openssl(cwd: string, args: string[]): void {
  try {
    execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') {
      throw new Error(
        `The TLS tests need the \`openssl\` command to make their certificates, and it was not found (apt-get install openssl, or set OPENSSL=/path/to/openssl)`,
      );
    }
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

/**
 * Makes a throw-away PKI synchronously (the compliance suite's `setup` is
 * synchronous and runs at registration): a cluster CA, node certificates
 * for 127.0.0.1, and wrong ones. Nothing stays on disk.
 */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-pki-'));
  try {
    const ca = (name: string, subject: string): void =>
      openssl(dir, [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', subject,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ]);
    const leaf = (name: string, caName: string, san: string): TestTls => {
      writeFileSync(
        join(dir, `${name}.ext`),
        `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`,
      );
      openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
      openssl(dir, [
        'x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`,
        '-set_serial', String(Math.floor(Math.random() * 2 ** 31)), '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
      ]);
      return { ca: readFileSync(join(dir, `${caName}.crt`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
    };
    ca('ca', '/CN=quorumkv test cluster CA');
    ca('otherca', '/CN=someone else CA');
    ca('self', '/CN=self-signed node');
    const self = readFileSync(join(dir, 'self.crt'), 'utf8');
    const rogue = leaf('rogue', 'otherca', 'IP:127.0.0.1,DNS:localhost');
    const node = leaf('node1', 'ca', 'IP:127.0.0.1,DNS:localhost');
    return {
      node,
      node2: leaf('node2', 'ca', 'IP:127.0.0.1,DNS:localhost'),
      wrongHost: leaf('wronghost', 'ca', 'IP:127.0.0.2,DNS:elsewhere.test'),
      rogue,
      impostor: { ca: node.ca, cert: rogue.cert, key: rogue.key },
      selfSigned: { ca: self, cert: self, key: readFileSync(join(dir, 'self.key'), 'utf8') },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
