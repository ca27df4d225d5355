// The owner's transfer slots (PROTOCOL.md 4.3, owner rule 4): one per running transfer or
// unredeemed TCP ticket, at most `total` in all and `perRequester` per requester, a requester
// being its authenticated static key (not its address: one NAT hides many requesters, and one
// requester may move). When every slot is taken, a requester under its own cap may take the
// place of the oldest unredeemed ticket of the requester holding the most, provided that one
// holds more than the newcomer would: tickets cost nothing to hand out, so a requester that
// makes many keys and asks without ever fetching cannot keep the others out for long.

/** One slot held; release() is idempotent. */
export interface Slot {
  readonly key: string;
  /** Redeemed: the slot is a running transfer now, which nobody may take over. */
  pin(): void;
  release(): void;
}

interface Held extends Slot {
  /** Set while the slot is an unredeemed ticket: ends it (the ticket is dropped) to free the slot. */
  preempt: (() => void) | undefined;
}

export class Slots {
  private readonly byKey = new Map<string, Set<Held>>();
  private used = 0;
  /** Tickets taken over by a requester holding fewer (for tests and metrics). */
  preempted = 0;

  constructor(
    readonly total: number,
    readonly perRequester: number,
  ) {}

  /** Slots held in all. */
  get active(): number {
    return this.used;
  }

  /** Slots `key` holds. */
  heldBy(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }

  /**
   * A slot for `key`, or undefined (the answer is then `busy`). `preempt`, for an unredeemed
   * ticket, ends it when another requester takes its place.
   */
  take(key: string, preempt?: () => void): Slot | undefined {
    const mine = this.heldBy(key);
    if (mine >= this.perRequester) return undefined;
    if (this.used >= this.total && !this.takeOver(mine)) return undefined;
    let set = this.byKey.get(key);
    if (!set) this.byKey.set(key, (set = new Set()));
    const mySet = set;
    let released = false;
    const slot: Held = {
      key,
      preempt,
      pin: () => {
        slot.preempt = undefined;
      },
      release: () => {
        if (released) return;
        released = true;
        slot.preempt = undefined;
        this.used--;
        mySet.delete(slot);
        if (mySet.size === 0 && this.byKey.get(key) === mySet) this.byKey.delete(key);
      },
    };
    mySet.add(slot);
    this.used++;
    return slot;
  }

  /** Frees the oldest ticket of the largest holder if it holds more than mine + 1; false if none. */
  private takeOver(mine: number): boolean {
    let victim: Held | undefined;
    let most = mine + 1;
    for (const set of this.byKey.values()) {
      if (set.size <= most) continue;
      for (const s of set) {
        if (!s.preempt) continue;
        victim = s;
        most = set.size;
        break;
      }
    }
    if (!victim) return false;
    const end = victim.preempt!;
    victim.release();
    this.preempted++;
    end();
    return true;
  }
}
