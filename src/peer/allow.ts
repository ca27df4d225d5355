// `peer --allow FINGERPRINT|NAME ...`: which requesters an owner serves. A fingerprint admits
// the key it names; a name admits the key the registry has bound to it now (looked up when an
// unlisted key asks, and remembered for a minute; an answer that did not admit the key asking is
// asked again after 2 s), so a peer allowed by name gets access within seconds when it comes
// online after the owner started, while a flood of unlisted keys costs the registry at most one
// lookup per name every 2 s.
import { decodeKey, fingerprint, parseFingerprint } from '../crypto/identity';
import type { RegistryClient } from '../registry/client';
import { isValidName, nameKey } from '../registry/names';

const NAME_CACHE_MS = 60_000;
/** A remembered answer that did not admit the key asking is looked up again once this old. */
const RECHECK_MS = 2_000;

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
  // One lookup per name at a time: concurrent askers share it.
  const byName = new Map<string, { key: Promise<Buffer | null>; at: number }>();
  const lookup = (name: string) => {
    const key = registry.lookup(name).then(
      (rec) => decodeKey(rec.publicKey),
      () => null, // not registered (or the registry is down): that name admits no one now
    );
    byName.set(name, { key, at: Date.now() });
    return key;
  };
  const admits = async (name: string, peerKey: Buffer): Promise<boolean> => {
    const cached = byName.get(name);
    const age = cached ? Date.now() - cached.at : Infinity;
    if (cached && age < NAME_CACHE_MS) {
      if ((await cached.key)?.equals(peerKey)) return true;
      if (age < RECHECK_MS) return false;
    }
    return (await lookup(name))?.equals(peerKey) === true;
  };
  return {
    async allows(peerKey) {
      if (fingerprints.has(fingerprint(peerKey))) return true;
      for (const name of names) if (await admits(name, peerKey)) return true;
      return false;
    },
  };
}
