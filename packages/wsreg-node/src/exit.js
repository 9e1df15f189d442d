// Removes this process's entries when it ends, without changing how it ends.
//
// - `exit` covers a normal end (the event loop ran dry, process.exit()) and an uncaught
//   exception or unhandled rejection: Node emits `exit` (code 1) for those too, after
//   printing the error, so no `uncaughtException` listener is needed — adding one would
//   stop the process from dying.
// - SIGINT, SIGTERM and SIGHUP kill a Node process only while nobody listens for them,
//   and listening is what this module has to do. So its listener decides when the signal
//   comes: if the app listens too, the app decides what the signal means and nothing is
//   done here (should the app end the process, `exit` removes the entries); if not, the
//   entries are removed, the listeners taken off (libuv puts the default action back) and
//   the signal raised again, so the process dies of it as it would have, with the
//   signal's exit status. The listener is prepended, so that it still sees an app's
//   `once` listener, which takes itself off before it runs.
//
// One set of listeners serves every registration of the process (else each would take the
// others' for the app's), installed with the first and taken off with the last, so a
// process whose registrations are closed handles signals exactly as before.

/** The signals whose default action ends the process and which a terminal or a supervisor sends. */
const SIGNALS = /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP']);

/** @type {Set<() => void>} */
const removers = new Set();

/**
 * Calls `remove` (synchronously) when the process ends, unless `cancel()` was called.
 * @param {() => void} remove
 * @returns {() => void} cancel
 */
export function removeOnExit(remove) {
  if (removers.size === 0) install();
  removers.add(remove);
  return () => {
    removers.delete(remove);
    if (removers.size === 0) uninstall();
  };
}

function install() {
  process.on('exit', removeAll);
  for (const signal of SIGNALS) process.prependListener(signal, onSignal);
}

function uninstall() {
  process.removeListener('exit', removeAll);
  for (const signal of SIGNALS) process.removeListener(signal, onSignal);
}

function removeAll() {
  for (const remove of removers) {
    try {
      remove();
    } catch {
      // Nothing is left to tell while the process ends; readers drop the entry once it is dead.
    }
  }
  removers.clear();
}

/** @param {NodeJS.Signals} signal */
function onSignal(signal) {
  if (process.listenerCount(signal) > 1) return;
  removeAll();
  uninstall();
  process.kill(process.pid, signal);
}
