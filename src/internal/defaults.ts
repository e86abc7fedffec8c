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
  maxKeyBytes: 1024,
  /** Largest encoded value, bytes (the seed's 10 KB). */
  maxValueBytes: 10_240,
  /** Most versions (siblings and tombstones) a write may leave on one key (Riak's `max_siblings`). */
  maxSiblings: 100,
  /** Versions of one key above which `siblings:exceeded` is emitted. */
  siblingWarning: 25,
  /** Vector clock entries kept in a version's past (Dynamo prunes at about 10). */
  maxClockEntries: 10,
  /**
   * Milliseconds between gossip rounds. 250 ms lets the phi detector declare
   * a crashed member down in about 2 s (news of every member then arrives
   * about every 250 ms) for four small exchanges a second per node.
   */
  gossipInterval: 250,
  /** The failure detector a Store uses unless `gossip.detector` (or a round count) says otherwise. */
  failureDetector: 'phi',
  /** Phi at which the phi detector declares a member down (Cassandra's `phi_convict_threshold`). */
  phiThreshold: 8,
  /** Phi at which the phi detector suspects a member, as a share of `phiThreshold`. */
  phiSuspectShare: 0.5,
  /** Inter-arrival times the phi detector keeps per member. */
  phiMaxSampleSize: 200,
  /**
   * Floor of the standard deviation of news inter-arrival times, ms. At
   * phi 8, `5.2 × 200` ms of the detection time; it also keeps suspicion
   * (phi 4) more than one gossip interval before down.
   */
  phiMinStdDeviation: 200,
  /** Silence beyond the usual the phi detector accepts before its suspicion rises, ms (event loop stalls, GC). */
  phiAcceptableHeartbeatPause: 500,
  /** Timeout detector: gossip rounds without a heartbeat increase before a member is suspected. */
  suspectAfterRounds: 5,
  /** Timeout detector: gossip rounds without a heartbeat increase before a member is declared down. */
  downAfterRounds: 10,
  /** Timeout of one gossip exchange, ms. */
  gossipTimeout: 1_000,
  /** Bound on the shutdown announcement `stop()` sends to the peers, ms. */
  shutdownTimeout: 500,
  /** Virtual nodes per unit of weight. */
  tokensPerWeight: 256,
} as const;
