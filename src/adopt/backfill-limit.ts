// A module of its own so that the CLI's help text can name the limit without loading the adoption planner.

/** Above this many rows a table's backfill must be batched (`--batch-size`): one UPDATE would hold every row's lock until it commits. */
export const UNBATCHED_BACKFILL_LIMIT = 10_000
