// Reconnect delays: exponential, from `initialMs`, capped at `maxMs`.

/**
 * The delay before reconnect attempt number `attempt` (0 for the first).
 * 250, 500, 1000, 2000, 4000, 5000, 5000, … with the defaults.
 * @param {number} attempt
 * @param {number} [initialMs]
 * @param {number} [maxMs]
 * @returns {number}
 */
export function backoffDelay(attempt, initialMs = 250, maxMs = 5000) {
  const n = Math.max(0, Math.min(attempt, 30));
  return Math.min(maxMs, initialMs * 2 ** n);
}
