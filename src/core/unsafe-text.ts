// Characters a name from another peer must never carry raw to a terminal, a script or the disk:
// controls (C0, DEL, C1) can move the cursor, recolour or retitle a terminal and break a line a
// script reads; bidirectional controls (Unicode's Bidi_Control: U+061C, U+200E, U+200F,
// U+202A-U+202E, U+2066-U+2069) can show a name reversed ('photo\u202Egpj.exe' reads as
// 'photoexe.jpg'). Shown, they are escaped; in a name to save, refused (transfer/download.ts).

const UNSAFE = '\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';
const UNSAFE_ONE = new RegExp(`[${UNSAFE}]`);
const UNSAFE_ALL = new RegExp(`[${UNSAFE}]`, 'g');

/** The first control or bidirectional control in `text`, or undefined. */
export function firstUnsafeChar(text: string): string | undefined {
  return UNSAFE_ONE.exec(text)?.[0];
}

/** How an unsafe character is written: `\x1b` below U+0100, `\u202e` above (as in JavaScript). */
export function escapeChar(ch: string): string {
  const cp = ch.codePointAt(0)!;
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
}

/** `text` with every control and bidirectional control escaped; anything else as it is. */
export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE_ALL, escapeChar);
}

/** `text` with every control and bidirectional control replaced by `by`. */
export function replaceUnsafe(text: string, by: string): string {
  return text.replace(UNSAFE_ALL, by);
}

/** JSON text whose strings carry no unsafe character raw (JSON.stringify leaves C1 and bidi controls as they are). */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE_ALL, (ch) => `\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`);
}
