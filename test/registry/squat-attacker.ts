// The squatting attack of limits.test.ts, in a process of its own so that its hundreds of
// registrations in flight do not slow the test's legitimate client (nor the registry, which runs
// in the test's process) down by sharing their event loop.
//   node --import tsx squat-attacker.ts URL ADDRESSES(comma-separated) PER_ADDRESS
// Each address keeps 16 registrations (challenge, then signed POST) of new names in flight until
// it has tried PER_ADDRESS; prints "flooding" once they are under way, then one JSON line
// {address: [status of each attempt]} (0 for a request that failed outright).
import { PrivateKey } from '../../src/core/x25519';
import { register } from './http';

async function main(): Promise<void> {
  const [url, list, per] = [process.argv[2]!, process.argv[3]!.split(','), Number(process.argv[4])];
  const keys = list.map(() => Array.from({ length: per }, () => PrivateKey.generate()));
  const attack = list.map(async (address, n) => {
    const statuses: number[] = [];
    let next = 0;
    const worker = async () => {
      while (next < per) {
        const i = next++;
        statuses.push(await register(url, { name: `sq${address.split('.').at(-1)}-${i}`, port: 1 }, keys[n]![i], { localAddress: address }).then((x) => x.status, () => 0));
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return [address, statuses] as const;
  });
  process.stdout.write('flooding\n');
  process.stdout.write(`${JSON.stringify(Object.fromEntries(await Promise.all(attack)))}\n`);
}

void main();
