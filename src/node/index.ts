/**
 * The composition root: one node's components, their life cycle, its
 * identity (everything kept in the storage's metadata slot) and the message
 * router.
 *
 * @module
 */
export { Node, type NodeComponents, type NodeEventSink } from './node.js';
export { Lifecycle, type Startable } from './lifecycle.js';
export { MessageRouter, type Admission, type MessageHandler, type MessageRouterOptions } from './router.js';
export { loadIdentity, MetadataWriter, type NodeIdentity, type IdentityInit } from './identity.js';
export { MetaNames, encodePeers, decodePeers } from './metadata.js';
export type { NodeConfig, NodeEvents } from './types.js';
export {
  AntiEntropy,
  AntiEntropyDefaults,
  antiEntropyReplica,
  type AntiEntropyConfig,
  type AntiEntropyComponentOptions,
  type HintDelivery,
} from './anti-entropy.js';
