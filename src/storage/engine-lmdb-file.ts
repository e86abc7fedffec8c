/**
 * Checks an LMDB data file before the engine maps it. LMDB trusts its file:
 * a foreign, damaged or truncated one crashes the process (SIGSEGV/SIGBUS)
 * instead of failing, so LmdbStorage reads the two meta pages first.
 *
 * @internal
 */
import { open } from 'node:fs/promises';

/** MDB_MAGIC. */
const MAGIC = 0xbeefc0de;
/** The data version lmdb-js's LMDB writes. */
const DATA_VERSION = 2;
/** The page header of lmdb-js's LMDB (page number, txn id, pad, flags, lower/upper). */
const PAGE_HEADER = 24;
const P_META = 0x08;
const P_INVALID = 0xffffffffffffffffn;
/** MDB_meta offsets (from the meta's start, after the page header). */
const META = { magic: 0, version: 4, psize: 24, freeRoot: 24 + 40, mainRoot: 72 + 40, lastPage: 120, txnid: 128 } as const;

interface Meta {
  readonly psize: number;
  readonly txnid: bigint;
  readonly roots: readonly bigint[];
  readonly lastPage: bigint;
}

function readMeta(page: Buffer): Meta | string {
  if (page.length < PAGE_HEADER + 136) return 'a meta page is cut short';
  const flags = page.readUInt16LE(18);
  const m = PAGE_HEADER;
  if (page.readUInt32LE(m + META.magic) !== MAGIC) return 'it is not an LMDB file (no LMDB magic number)';
  if ((flags & P_META) === 0) return 'a meta page is damaged';
  const version = page.readUInt32LE(m + META.version);
  if (version !== DATA_VERSION) return `its LMDB data version is ${version}, this engine reads ${DATA_VERSION}`;
  const psize = page.readUInt32LE(m + META.psize);
  if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) return `its page size ${psize} is impossible`;
  return {
    psize,
    txnid: page.readBigUInt64LE(m + META.txnid),
    roots: [page.readBigUInt64LE(m + META.freeRoot), page.readBigUInt64LE(m + META.mainRoot)],
    lastPage: page.readBigUInt64LE(m + META.lastPage),
  };
}

/**
 * Why the LMDB data file at `file` must not be opened, or undefined when it
 * looks sound (or does not exist, or is empty: LMDB then creates it).
 */
export async function lmdbFileProblem(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    return `cannot read ${file}: ${(error as Error).message}`;
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) return undefined;
    const first = Buffer.alloc(PAGE_HEADER + 136);
    await handle.read(first, 0, first.length, 0);
    const meta0 = readMeta(first);
    if (typeof meta0 === 'string') return meta0;
    const { psize } = meta0;
    if (size < 2 * psize) return `the data file is truncated (${size} bytes, under two ${psize}-byte pages)`;
    const second = Buffer.alloc(PAGE_HEADER + 136);
    await handle.read(second, 0, second.length, psize);
    const meta1 = readMeta(second);
    if (typeof meta1 === 'string') return meta1;
    if (meta1.psize !== psize) return 'its two meta pages disagree on the page size';
    const pages = BigInt(Math.floor(size / psize));
    // LMDB opens the newer meta page; every page it points at must be in the file.
    const newest = meta1.txnid > meta0.txnid ? meta1 : meta0;
    for (const root of newest.roots) {
      if (root !== P_INVALID && root >= pages) {
        return `the data file is truncated (${size} bytes, ${pages} pages; the tree's root is page ${root})`;
      }
    }
    if (newest.lastPage !== P_INVALID && newest.lastPage >= pages) {
      return `the data file is truncated (${size} bytes, ${pages} pages; the last page in use is ${newest.lastPage})`;
    }
    return undefined;
  } finally {
    await handle.close();
  }
}
