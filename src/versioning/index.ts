export { VectorClock, MAX_DECODED_CLOCK_ENTRIES, type Dot, type ClockOrder, type ClockEntry } from './vector-clock.js';
export {
  SiblingSet,
  actorId,
  parseActorId,
  DEFAULT_MAX_CLOCK_ENTRIES,
  type Version,
  type WriteChange,
  type WriteResult,
} from './sibling-set.js';
export {
  encodeSiblingSet,
  decodeSiblingSet,
  decodeTombstones,
  siblingSetToWire,
  siblingSetFromWire,
  encodeClock,
  decodeClock,
  SIBLING_SET_FORMAT,
  MAX_DECODED_SIBLINGS,
  type VersionWire,
  type DecodeSiblingSetOptions,
} from './codec.js';
