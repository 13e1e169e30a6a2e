/** Following a run to its end lives in the library (src/api/run-watch.ts); kept here for its importers. */
export { failedJobsOfRun, findStuckJobs, watchRun, type RunOutcome, type StuckJob } from '../api/run-watch.js';
