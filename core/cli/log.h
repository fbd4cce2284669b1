/* SPDX-License-Identifier: MIT */
/*
 * `weft log JOURNAL|CONFIG [--json | --failed [-0]] [--set S.K=V]...`: a
 * run's journal as a job log (GNU parallel's --joblog), one line per item
 * with an entry, in index order:
 *
 *   TSV (default)  a header line, then index, input, status, attempts,
 *                  start, runtime, message; fields escaped as the TSV
 *                  output escapes them (weft__csv_text); start in seconds
 *                  since the Unix epoch and runtime in seconds, both with
 *                  6 decimals; attempts, start and runtime empty for an
 *                  entry without timing (a format 2 journal, isolate =
 *                  process, a quarantined item)
 *   --json         one JSON object a line with the same keys (null for
 *                  what is unknown)
 *   --failed       the input texts of the items that did not end ok, raw,
 *                  one a line (to be fed back as items = lines:FILE); an
 *                  input holding a newline is refused (exit 2) unless -0
 *                  ends each input with a NUL instead
 *
 * The input texts are not in the journal (only their hashes): they are read
 * again from the items of CONFIG, or for a JOURNAL from the items spec its
 * header records.  An item whose text no longer hashes as journaled is
 * listed with its current text and counted in a warning.
 *
 * A journal compacted after a run that finished every item ok has no
 * per-item log: exit 2 saying so (keep_journal = true keeps it); --failed
 * prints nothing then (no item failed) and exits 0.
 * Exit status 0, or 2 with a message (usage, no journal, unreadable or
 * corrupt, no input texts for --failed).
 */
#ifndef WEFT_CORE_CLI_LOG_H
#define WEFT_CORE_CLI_LOG_H

/* argv: the words after `log`. */
int weft__cmd_log(int argc, char **argv);

#endif
