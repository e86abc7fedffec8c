export { TcpTransport } from './tcp-transport.js';
export type { TcpTransportEvents, TcpConnectionEvent } from './tcp-transport.js';
export { TCP_DEFAULTS, PROTOCOL_VERSIONS } from './options.js';
export type { TcpTransportOptions, TcpTlsOptions, TcpReconnectOptions } from './options.js';
export type { TcpTransportStats } from './stats.js';
export type { Direction as TcpConnectionDirection } from './connection.js';
export { FrameReader, FrameTooLargeError, LENGTH_PREFIX_BYTES } from './frame-reader.js';
export { formatAddress, parseAddress, type HostPort } from './address.js';
