/** The i-th managed name of the 10k benchmarks: equal lengths, so one certificate template fits all. */
export function benchName (i) {
  return `h${String(i).padStart(5, '0')}.bench.test`
}
