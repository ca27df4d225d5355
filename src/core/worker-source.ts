// Where a worker thread's code comes from. The bundle and the standalone executable carry each
// worker's script as text, embedded by build.mjs (the executable has no file of ours to start a
// worker from); from source (tests run src/ through tsx) the worker compiles its .ts file with
// tsx's require hook. Either way the worker starts with `eval: true`.

/**
 * `embedded` is the build's text for the worker, if any (read it as `typeof X === 'string' ? X :
 * undefined`: outside the bundle its name is not defined at all); `devFile` its .ts file's path.
 */
export function workerSource(embedded: string | undefined, devFile: string): string {
  if (typeof embedded === 'string') return embedded;
  const tsx = 'tsx/cjs'; // a name in a variable: the bundler leaves this development-only path alone
  return `require(${JSON.stringify(require.resolve(tsx))}); require(${JSON.stringify(devFile)});`;
}
