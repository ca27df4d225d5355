// The NAT rows of `npm run bench`: a get punched through two cone NATs and one relayed by the
// registry between two symmetric NATs, each beside the same get on a direct path from the same
// requester, in network namespaces this run builds and removes (test/support/netns.ts; root and
// nftables needed, otherwise the rows say why they are missing).
//   public:  registry 'reg' and an owner 'pub' with a public address (the direct paths)
//   cone NATs:      owner 'oc' behind 'na', requester 'rc' behind 'nb'   (punched)
//   symmetric NATs: owner 'os' behind 'nc', requester 'rs' behind 'nd'   (relayed)
// The veth links are not rate-limited: the rows show what punching and relaying cost over the
// same kernel paths, not a WAN. The relay runs with its per-session cap raised (default 8 MiB/s,
// which would be all a relayed row measured).
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { natNet } from '../test/nat/support';
import { netnsUnavailable } from '../test/support/netns';
import { fmtRate, median, mibPerSecond, MiB } from './util';

export interface NatRow {
  label: string;
  ours: string;
  baseline: string;
  ratio: string;
  notes: string;
}

interface Side {
  seconds: number[];
  inner: number[];
  routes: Set<string>;
  failure?: string;
}

const side = (): Side => ({ seconds: [], inner: [], routes: new Set() });

export async function natRows(fileBytes: number, rounds: number, log: (line: string) => void): Promise<NatRow[]> {
  const mib = fileBytes / MiB;
  const labels = [`6a. NAT namespaces ${mib} MiB: UDP get punched through two cone NATs vs direct`, `6b. NAT namespaces ${mib} MiB: UDP get relayed by the registry (two symmetric NATs) vs direct`];
  const why = netnsUnavailable();
  if (why !== null) return labels.map((label) => ({ label, ours: 'n/a', baseline: 'n/a', ratio: '—', notes: `not measured: ${why}` }));

  const closers: Array<() => Promise<void>> = [];
  try {
    const net = await natNet(
      { after: (fn) => void closers.push(fn) },
      {
        public: ['reg', 'pub'],
        nats: { na: { type: 'cone', hosts: ['oc'] }, nb: { type: 'cone', hosts: ['rc'] }, nc: { type: 'symmetric', hosts: ['os'] }, nd: { type: 'symmetric', hosts: ['rs'] } },
      },
      { registryArgs: ['--relay-session-rate', '100000', '--relay-rate', '1000000'] },
    );
    const owners = [net.owner('pub', 'direct', 'f.bin', fileBytes), net.owner('oc', 'coned', 'f.bin', fileBytes), net.owner('os', 'symmed', 'f.bin', fileBytes)];
    const procs = await Promise.all(owners);
    closers.push(async () => {
      for (const p of procs) await p.proc.stop();
    });

    const run = async (s: Side, host: string, owner: string) => {
      if (s.failure) return;
      const t0 = performance.now();
      const r = await net.get(host, owner, 'f.bin', ['--via', 'udp']);
      const seconds = (performance.now() - t0) / 1000;
      if (r.code !== 0 || !r.out) {
        s.failure = r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`;
        return;
      }
      await rm(r.out.path, { force: true });
      s.seconds.push(seconds);
      s.routes.add(r.out.route);
      const inner = (r.out as { seconds?: unknown }).seconds;
      if (typeof inner === 'number') s.inner.push(inner);
    };
    const pairs = [
      { label: labels[0]!, host: 'rc', owner: 'coned', want: 'punched', ours: side(), direct: side() },
      { label: labels[1]!, host: 'rs', owner: 'symmed', want: 'relayed', ours: side(), direct: side() },
    ];
    // One unmeasured warm-up of each (page cache, the first introduction), then alternating rounds.
    for (const p of pairs) {
      await net.get(p.host, 'direct', 'f.bin', ['--via', 'udp']).then((r) => r.out && rm(r.out.path, { force: true }));
      await net.get(p.host, p.owner, 'f.bin', ['--via', 'udp']).then((r) => r.out && rm(r.out.path, { force: true }));
    }
    for (let r = 0; r < rounds; r++) {
      for (const p of pairs) {
        await run(p.ours, p.host, p.owner);
        await run(p.direct, p.host, 'direct');
      }
      log(`NAT round ${r + 1} done`);
    }
    const rate = (s: Side) => (s.seconds.length ? mibPerSecond(fileBytes, median(s.seconds)) : NaN);
    const cell = (s: Side) => (s.seconds.length ? fmtRate(rate(s)) : `failed: ${s.failure ?? 'no run'}`);
    const innerRate = (s: Side) => (s.inner.length ? fmtRate(mibPerSecond(fileBytes, median(s.inner))) : '—');
    return pairs.map((p) => {
      const routes = [...p.ours.routes].join(', ') || '—';
      const wrongRoute = p.ours.routes.size > 0 && !(p.ours.routes.size === 1 && p.ours.routes.has(p.want));
      return {
        label: p.label,
        ours: cell(p.ours),
        baseline: `${cell(p.direct)} (direct)`,
        ratio: Number.isFinite(rate(p.ours)) && Number.isFinite(rate(p.direct)) ? (rate(p.ours) / rate(p.direct)).toFixed(2) : '—',
        notes:
          `${p.ours.seconds.length} + ${p.direct.seconds.length} runs; route(s) ${routes}${wrongRoute ? ` (expected ${p.want})` : ''}; ` +
          `get's own timer ${innerRate(p.ours)} vs ${innerRate(p.direct)} direct` +
          `${p.ours.failure ? `; then failed: ${p.ours.failure}` : ''}${p.direct.failure ? `; direct failed: ${p.direct.failure}` : ''}`,
      };
    });
  } catch (err) {
    return labels.map((label) => ({ label, ours: 'failed', baseline: '—', ratio: '—', notes: `the namespaces failed: ${(err as Error).message.split('\n')[0]}` }));
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
}
