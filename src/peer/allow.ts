// `peer --allow FINGERPRINT|NAME ...`: which requesters an owner serves. A fingerprint admits
// the key it names; a name admits the key the registry has bound to it now (looked up when an
// unlisted key asks, and remembered for a minute), so a peer allowed by name keeps access when
// it comes online after the owner started.
import { decodeKey, fingerprint, parseFingerprint } from '../crypto/identity';
import type { RegistryClient } from '../registry/client';
import { isValidName, nameKey } from '../registry/names';

const NAME_CACHE_MS = 60_000;

export interface AllowList {
  /** Whether a requester with this static key may list and fetch. */
  allows(peerKey: Buffer): Promise<boolean>;
}

/** Throws a message naming the first entry that is neither a fingerprint nor a name. */
export function parseAllowList(entries: string[]): { fingerprints: Set<string>; names: Set<string> } {
  const fingerprints = new Set<string>();
  const names = new Set<string>();
  for (const e of entries) {
    const fp = parseFingerprint(e);
    // 24 letters a-z and digits 2-7 may be either; such an entry counts as both.
    if (fp) fingerprints.add(fp);
    if (isValidName(e)) names.add(nameKey(e));
    if (!fp && !isValidName(e)) throw new Error(`--allow ${e}: neither a key fingerprint (p2pshare id) nor a peer name`);
  }
  return { fingerprints, names };
}

export function allowList(entries: string[], registry: RegistryClient): AllowList {
  const { fingerprints, names } = parseAllowList(entries);
  const byName = new Map<string, { key: Buffer | null; until: number }>();
  const keyOf = async (name: string): Promise<Buffer | null> => {
    const cached = byName.get(name);
    if (cached && cached.until > Date.now()) return cached.key;
    let key: Buffer | null = null;
    try {
      key = decodeKey((await registry.lookup(name)).publicKey);
    } catch {
      key = null; // not registered (or the registry is down): that name admits no one now
    }
    byName.set(name, { key, until: Date.now() + NAME_CACHE_MS });
    return key;
  };
  return {
    async allows(peerKey) {
      if (fingerprints.has(fingerprint(peerKey))) return true;
      for (const name of names) if ((await keyOf(name))?.equals(peerKey)) return true;
      return false;
    },
  };
}
