// Name rules of the registry (README "The registry API with curl"), as pure functions. The
// address rules live in core/addresses.ts.

export const NAME_MAX = 32;
const NAME_RE = /^[A-Za-z0-9._-]{1,32}$/;

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name);
}

/** The store key of a name: names are unique case-insensitively. */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** A prefix filter is a name fragment (possibly empty). */
export function isValidPrefix(prefix: string): boolean {
  return prefix === '' || /^[A-Za-z0-9._-]{1,32}$/.test(prefix);
}
