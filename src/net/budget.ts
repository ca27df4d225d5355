// The anti-amplification rule (PROTOCOL.md 3.5, after RFC 9000 section 8.1): until an address
// has completed the handshake, a peer sends it at most 3 times the bytes it received from it.
// The protocol keeps the rule by construction; this is the enforcement behind it, counted per
// address in a bounded table (a forgotten address has no budget: nothing is sent to it).
import type { Remote } from './connection';

export const AMPLIFICATION_FACTOR = 3;
/** Addresses tracked at most, least recently active forgotten first. */
const MAX_ADDRESSES = 4096;
/** An address silent this long is forgotten (its budget with it). */
const FORGET_MS = 30_000;

interface Account {
  received: number;
  sent: number;
  at: number;
  /** It completed a handshake: no limit. */
  validated: boolean;
}

export class AddressBudget {
  private readonly accounts = new Map<string, Account>();
  /** Sends refused for lack of budget. */
  refused = 0;

  received(from: Remote, bytes: number): void {
    const a = this.account(from, true)!;
    a.received += bytes;
  }

  validated(from: Remote): void {
    this.account(from, true)!.validated = true;
  }

  /** Takes `bytes` from the address's budget; false (and nothing taken) when it would exceed 3x. */
  allow(to: Remote, bytes: number): boolean {
    const a = this.account(to, false);
    if (a && (a.validated || a.sent + bytes <= AMPLIFICATION_FACTOR * a.received)) {
      a.sent += bytes;
      return true;
    }
    this.refused++;
    return false;
  }

  sweep(now = performance.now()): void {
    for (const [k, a] of this.accounts) if (now - a.at > FORGET_MS) this.accounts.delete(k);
  }

  private account(r: Remote, create: boolean): Account | undefined {
    const key = `${r.address}|${r.port}|${r.relay ?? ''}`;
    let a = this.accounts.get(key);
    if (a) {
      this.accounts.delete(key); // re-inserted: least recently active first
    } else {
      if (!create) return undefined;
      a = { received: 0, sent: 0, at: 0, validated: false };
    }
    a.at = performance.now();
    this.accounts.set(key, a);
    if (this.accounts.size > MAX_ADDRESSES) this.accounts.delete(this.accounts.keys().next().value!);
    return a;
  }
}
