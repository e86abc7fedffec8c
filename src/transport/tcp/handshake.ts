import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, KvError } from '../../errors/index.js';
import type { CodecLimits } from '../codec.js';
import type { WireMessage } from '../types.js';
import { parseAddress } from './address.js';

/*
 * The connection handshake. Its messages travel as ordinary frames of the
 * wire codec with id 0, under tight limits, before anything else:
 *
 *   dialer   -> acceptor  req  0  quorumkv.hello   { versions: [min, max], cluster, node, address, nonce }
 *   acceptor -> dialer    res  0  quorumkv.welcome { version, cluster, node, address, nonce, auth, proof? }
 *   (with a secret)
 *   dialer   -> acceptor  req  0  quorumkv.auth    { proof }
 *   acceptor -> dialer    res  0  quorumkv.ready   {}
 *
 * or, at any step, the side that refuses sends `err 0 <code> <message>` and
 * closes. The hello's layout is frozen for all versions (a later release
 * must be able to read an earlier one's hello to refuse it with a code);
 * unknown fields are ignored, so later versions may add some.
 */

/** Limits of handshake frames: small, shallow, few fields. */
export const HANDSHAKE_LIMITS: Readonly<Required<CodecLimits>> = Object.freeze({
  maxFrameBytes: 4096,
  maxDepth: 3,
  maxCollectionLength: 16,
  maxHeaderStringBytes: 1024,
});

/** Message types of the handshake. */
export const HandshakeTypes = Object.freeze({
  hello: 'quorumkv.hello',
  welcome: 'quorumkv.welcome',
  auth: 'quorumkv.auth',
  ready: 'quorumkv.ready',
} as const);

/** Bytes of each side's random challenge. */
export const NONCE_BYTES = 32;
/** Bytes of an HMAC-SHA256 proof. */
export const PROOF_BYTES = 32;

/** How a side authenticates, announced in the welcome. */
export type AuthScheme = 'none' | 'hmac-sha256';

/** What a side says about itself. */
export interface HandshakeIdentity {
  /** The cluster name ('' when the transport was started without a context). */
  readonly cluster: string;
  /** The node id (the address when the transport was started without a context). */
  readonly node: string;
  /** The address peers dial to reach it. */
  readonly address: string;
}

/** A dialer's hello. */
export interface Hello extends HandshakeIdentity {
  readonly versions: readonly [number, number];
  readonly nonce: Uint8Array;
}

/** An acceptor's welcome. */
export interface Welcome extends HandshakeIdentity {
  readonly version: number;
  readonly nonce: Uint8Array;
  readonly auth: AuthScheme;
  readonly proof: Uint8Array | undefined;
}

/** A fresh random challenge. */
export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

/**
 * The version two sides use: the highest both speak, or undefined when
 * their ranges do not overlap (the connection is refused with
 * `KV_PROTOCOL_MISMATCH`).
 */
export function negotiateVersion(ours: readonly [number, number], theirs: readonly [number, number]): number | undefined {
  const low = Math.max(ours[0], theirs[0]);
  const high = Math.min(ours[1], theirs[1]);
  return high >= low ? high : undefined;
}

function invalid(message: string): KvError {
  return new KvError(ErrorCodes.INVALID_MESSAGE, `handshake: ${message}`);
}

function str(body: WireMessage, field: string, allowEmpty: boolean): string {
  const v = body[field];
  if (typeof v !== 'string' || (!allowEmpty && v.length === 0)) throw invalid(`${body.type}.${field} must be a ${allowEmpty ? '' : 'non-empty '}string`);
  return v;
}

function bytes(body: WireMessage, field: string, length: number): Uint8Array {
  const v = body[field];
  if (!(v instanceof Uint8Array) || v.byteLength !== length) throw invalid(`${body.type}.${field} must be ${length} bytes`);
  return v;
}

function version(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw invalid(`${what} must be a positive integer`);
  return v;
}

function identity(body: WireMessage): HandshakeIdentity {
  const address = str(body, 'address', false);
  if (!parseAddress(address)) throw invalid(`${body.type}.address must be host:port, got ${JSON.stringify(address.slice(0, 64))}`);
  return { cluster: str(body, 'cluster', true), node: str(body, 'node', false), address };
}

function expectType(body: WireMessage, type: string): void {
  if (body.type !== type) throw invalid(`expected ${type}, got ${JSON.stringify(body.type.slice(0, 64))}`);
}

/** The dialer's first frame body. */
export function helloMessage(self: HandshakeIdentity, versions: readonly [number, number], nonce: Uint8Array): WireMessage {
  return { type: HandshakeTypes.hello, versions: [versions[0], versions[1]], cluster: self.cluster, node: self.node, address: self.address, nonce };
}

/** Reads a hello. @throws KvError `KV_INVALID_MESSAGE` if it is not one. */
export function parseHello(body: WireMessage): Hello {
  expectType(body, HandshakeTypes.hello);
  const v = body['versions'];
  if (!Array.isArray(v) || v.length !== 2) throw invalid('hello.versions must be [min, max]');
  const min = version(v[0], 'hello.versions[0]');
  const max = version(v[1], 'hello.versions[1]');
  if (max < min) throw invalid('hello.versions must be [min, max] with min <= max');
  return { ...identity(body), versions: [min, max], nonce: bytes(body, 'nonce', NONCE_BYTES) };
}

/** The acceptor's answer to a hello. */
export function welcomeMessage(self: HandshakeIdentity, w: Pick<Welcome, 'version' | 'nonce' | 'auth' | 'proof'>): WireMessage {
  return {
    type: HandshakeTypes.welcome,
    version: w.version,
    cluster: self.cluster,
    node: self.node,
    address: self.address,
    nonce: w.nonce,
    auth: w.auth,
    ...(w.proof ? { proof: w.proof } : {}),
  };
}

/** Reads a welcome. @throws KvError `KV_INVALID_MESSAGE` if it is not one. */
export function parseWelcome(body: WireMessage): Welcome {
  expectType(body, HandshakeTypes.welcome);
  const auth = body['auth'];
  if (auth !== 'none' && auth !== 'hmac-sha256') throw invalid(`welcome.auth must be "none" or "hmac-sha256"`);
  return {
    ...identity(body),
    version: version(body['version'], 'welcome.version'),
    nonce: bytes(body, 'nonce', NONCE_BYTES),
    auth,
    proof: auth === 'hmac-sha256' ? bytes(body, 'proof', PROOF_BYTES) : undefined,
  };
}

/** The dialer's proof. */
export function authMessage(proof: Uint8Array): WireMessage {
  return { type: HandshakeTypes.auth, proof };
}

/** Reads the dialer's proof. @throws KvError `KV_AUTH_FAILED` if the frame is anything else. */
export function parseAuth(body: WireMessage): Uint8Array {
  if (body.type !== HandshakeTypes.auth) {
    throw new KvError(ErrorCodes.AUTH_FAILED, `handshake: expected ${HandshakeTypes.auth} (this node requires the cluster secret), got ${JSON.stringify(body.type.slice(0, 64))}`);
  }
  const proof = body['proof'];
  if (!(proof instanceof Uint8Array) || proof.byteLength !== PROOF_BYTES) {
    throw new KvError(ErrorCodes.AUTH_FAILED, `handshake: auth.proof must be ${PROOF_BYTES} bytes`);
  }
  return proof;
}

/** The acceptor's last handshake frame (after a good proof). */
export function readyMessage(): WireMessage {
  return { type: HandshakeTypes.ready };
}

/** Everything both sides said, which each proof covers. */
export interface Transcript {
  readonly version: number;
  readonly cluster: string;
  readonly dialer: HandshakeIdentity & { readonly nonce: Uint8Array };
  readonly acceptor: HandshakeIdentity & { readonly nonce: Uint8Array };
}

const DOMAIN = Buffer.from('quorumkv/handshake/hmac-sha256/v1\u0000', 'utf8');

/**
 * HMAC-SHA256(secret, domain ‖ role ‖ each field length-prefixed): the
 * proof that the side playing `role` knows the secret. Both nonces make it
 * fresh (no replay); the role makes the two proofs of one connection
 * different (no reflection); the identities and version bind what each side
 * claimed.
 */
export function computeProof(secret: Uint8Array, role: 'dialer' | 'acceptor', t: Transcript): Uint8Array {
  const hmac = createHmac('sha256', secret);
  hmac.update(DOMAIN);
  const field = (v: string | Uint8Array): void => {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(b.byteLength, 0);
    hmac.update(len);
    hmac.update(b);
  };
  field(role);
  field(String(t.version));
  field(t.cluster);
  for (const side of [t.dialer, t.acceptor]) {
    field(side.node);
    field(side.address);
    field(side.nonce);
  }
  return new Uint8Array(hmac.digest());
}

/** Checks a proof in constant time (`crypto.timingSafeEqual`). */
export function verifyProof(secret: Uint8Array, role: 'dialer' | 'acceptor', t: Transcript, proof: Uint8Array): boolean {
  const expected = computeProof(secret, role, t);
  return proof.byteLength === expected.byteLength && timingSafeEqual(expected, proof);
}
