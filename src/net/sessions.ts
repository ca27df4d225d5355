// Values keyed by (connection, session ID): a session belongs to the connection it was made on,
// so the same ID on another connection (another address, later another key) is another session.
import type { Connection } from './connection';

export class SessionTable<V> {
  private readonly byConn = new Map<Connection, Map<number, V>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(conn: Connection, id: number): V | undefined {
    return this.byConn.get(conn)?.get(id >>> 0);
  }

  set(conn: Connection, id: number, value: V): void {
    let ids = this.byConn.get(conn);
    if (!ids) this.byConn.set(conn, (ids = new Map()));
    if (!ids.has(id >>> 0)) this.count++;
    ids.set(id >>> 0, value);
  }

  delete(conn: Connection, id: number): boolean {
    const ids = this.byConn.get(conn);
    if (!ids?.delete(id >>> 0)) return false;
    this.count--;
    if (ids.size === 0) this.byConn.delete(conn);
    return true;
  }

  /** Every entry, oldest connection first; deleting while iterating is fine. */
  *entries(): IterableIterator<[Connection, number, V]> {
    for (const [conn, ids] of this.byConn) for (const [id, v] of ids) yield [conn, id, v];
  }

  *values(): IterableIterator<V> {
    for (const ids of this.byConn.values()) yield* ids.values();
  }
}
