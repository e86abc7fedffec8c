import { ErrorCodes, KvError } from '../errors/index.js';
import type { RequestHandler, WireMessage } from '../transport/index.js';

/** Handles one message type (the router has already admitted the message). */
export type MessageHandler = (message: WireMessage, from: string) => WireMessage | Promise<WireMessage>;

/** Who may send a message type. */
export type Admission =
  /** Anyone: the handler does its own checks (gossip: cluster, N, duplicates). */
  | 'open'
  /** Only a known member of this cluster: `cluster` must match and the sender must be known. */
  | 'member';

/** Options of {@link MessageRouter}. */
export interface MessageRouterOptions {
  /** This node's id (for messages). */
  readonly self: string;
  readonly cluster: string;
  /** Whether `address` belongs to a known member. */
  readonly knows: (address: string) => boolean;
}

/**
 * The node's message router: message type → handler, with the admission
 * checks in one place. A new feature registers its message types here
 * (`router.register('hint.deliver', 'member', handler)`) instead of growing
 * a switch in the Store.
 */
export class MessageRouter {
  readonly #o: MessageRouterOptions;
  readonly #routes = new Map<string, { admission: Admission; handler: MessageHandler }>();
  #open = false;

  constructor(options: MessageRouterOptions) {
    this.#o = options;
  }

  /** Adds the handler of `type`. @throws Error if `type` already has one. */
  register(type: string, admission: Admission, handler: MessageHandler): void {
    if (this.#routes.has(type)) throw new Error(`MessageRouter: ${type} already has a handler`);
    this.#routes.set(type, { admission, handler });
  }

  /** Messages are answered between `open()` and `close()`; otherwise `KV_NOT_STARTED`. */
  open(): void {
    this.#open = true;
  }

  close(): void {
    this.#open = false;
  }

  /** The transport's request handler. */
  readonly handle: RequestHandler = (message, from) => {
    if (!this.#open) throw new KvError(ErrorCodes.NOT_STARTED, `node ${this.#o.self} is not started`);
    const route = this.#routes.get(message.type);
    if (!route) throw new KvError(ErrorCodes.INVALID_MESSAGE, `node ${this.#o.self} has no handler for message type ${JSON.stringify(message.type)}`);
    if (route.admission === 'member') {
      if (message['cluster'] !== this.#o.cluster) {
        throw new KvError(
          ErrorCodes.CLUSTER_MISMATCH,
          `request for cluster ${JSON.stringify(message['cluster'])} reached cluster ${JSON.stringify(this.#o.cluster)}`,
        );
      }
      if (!this.#o.knows(from)) throw new KvError(ErrorCodes.UNKNOWN_PEER, `${from} is not a member known to ${this.#o.self}`);
    }
    return route.handler(message, from);
  };
}
