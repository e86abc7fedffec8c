export { encodeFrame, decodeFrame, validateWireMessage, DEFAULT_CODEC_LIMITS } from './codec.js';
export type { Frame, CodecLimits } from './codec.js';
export { MemoryNetwork, MemoryTransport, DEFAULT_MEMORY_TIMEOUT, HANDLER_FAILURE_CODE } from './memory-network.js';
export type { MemoryNetworkOptions, MemoryTransportOptions, MemoryNetworkStats, MemoryLatency } from './memory-network.js';
export { PendingRequests, DEFAULT_MAX_PENDING } from './pending-requests.js';
export { TcpTransport, TCP_DEFAULTS, PROTOCOL_VERSIONS } from './tcp/index.js';
export type {
  TcpTransportOptions,
  TcpTlsOptions,
  TcpReconnectOptions,
  TcpTransportStats,
  TcpTransportEvents,
  TcpConnectionEvent,
  TcpConnectionDirection,
} from './tcp/index.js';
export type { PendingRequestsOptions, OpenRequestOptions, OpenedRequest } from './pending-requests.js';
export type {
  Transport,
  TransportCapabilities,
  RequestHandler,
  AnswerReceiver,
  RequestOptions,
  TransportContext,
  WireMessage,
  WireValue,
} from './types.js';
