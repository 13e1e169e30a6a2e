/**
 * Exit codes of every command: 0 done, 1 the run (or a job of it) failed, 2 usage or configuration
 * error, 3 `reconcile --fail-on-diff` found differences, 130 a second SIGTERM/SIGINT while a
 * long-running command was stopping (128 + SIGINT).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, differences: 3, signalledTwice: 130 } as const;
