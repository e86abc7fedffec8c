/** Every default in one place. Each option's TSDoc repeats its default. */
export const Defaults = {
  /** Cluster name; nodes of other clusters are refused. */
  cluster: 'quorumkv',
  /** Replication factor N. */
  n: 3,
  /** Read quorum R. */
  r: 2,
  /** Write quorum W. */
  w: 2,
  /** Whole-call deadline of a store operation, ms. */
  timeout: 5_000,
  /** Largest key, UTF-8 bytes. */
  maxKeyBytes: 1_024,
  /** Largest encoded value, bytes (the seed's 10 KB). */
  maxValueBytes: 10_240,
  /** Vector clock entries kept in a version's past (Dynamo prunes at about 10). */
  maxClockEntries: 10,
  /** Milliseconds between gossip rounds. */
  gossipInterval: 1_000,
  /** Gossip rounds without a heartbeat increase before a member is suspected. */
  suspectAfterRounds: 5,
  /** Gossip rounds without a heartbeat increase before a member is declared down. */
  downAfterRounds: 10,
  /** Timeout of one gossip exchange, ms. */
  gossipTimeout: 1_000,
  /** Virtual nodes per unit of weight. */
  tokensPerWeight: 256,
} as const;
