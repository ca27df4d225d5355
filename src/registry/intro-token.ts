// The introduction token (README.md, "Rendezvous"): proof that a requester receives datagrams at
// the address it sends from, without the registry keeping any state. Pure functions.
//
//   token = u32 time slot (10 s) | HMAC-SHA256(registry secret, "intro" | u32 slot | u8 ip length |
//           ip (text) | u16 port)[0..16]
//
// valid in its slot and the next one, at any registry process sharing the secret.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Endpoint } from './store';

export const INTRO_SLOT_MS = 10_000;
export const INTRO_TOKEN_BYTES = 20;
/** Longest a token is good for: the rest of its slot and the whole next one. */
export const INTRO_TOKEN_LIFETIME_MS = 2 * INTRO_SLOT_MS;

function tokenMac(secret: Uint8Array, slot: number, from: Endpoint): Buffer {
  const ip = Buffer.from(from.ip, 'utf8');
  const msg = Buffer.alloc(5 + 4 + 1 + ip.length + 2);
  msg.write('intro', 0, 'latin1');
  msg.writeUInt32BE(slot >>> 0, 5);
  msg[9] = ip.length;
  ip.copy(msg, 10);
  msg.writeUInt16BE(from.port, 10 + ip.length);
  return createHmac('sha256', secret).update(msg).digest().subarray(0, INTRO_TOKEN_BYTES - 4);
}

function slotOf(now: number): number {
  return Math.floor(now / INTRO_SLOT_MS) >>> 0;
}

/** The token for a requester at `from` (its address as the registry sees it, canonical). */
export function issueIntroToken(secret: Uint8Array, from: Endpoint, now: number): Buffer {
  const slot = slotOf(now);
  const out = Buffer.alloc(INTRO_TOKEN_BYTES);
  out.writeUInt32BE(slot, 0);
  tokenMac(secret, slot, from).copy(out, 4);
  return out;
}

/** True for a token issued to `from` in this slot or the previous one. */
export function checkIntroToken(secret: Uint8Array, token: Buffer, from: Endpoint, now: number): boolean {
  if (token.length !== INTRO_TOKEN_BYTES) return false;
  const slot = token.readUInt32BE(0);
  const current = slotOf(now);
  if (slot !== current && slot !== ((current - 1) >>> 0)) return false;
  return timingSafeEqual(tokenMac(secret, slot, from), token.subarray(4));
}
