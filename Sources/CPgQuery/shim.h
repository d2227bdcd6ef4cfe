#ifndef SLUICE_PG_QUERY_SHIM_H
#define SLUICE_PG_QUERY_SHIM_H

// PostgreSQL 15's own parser as a C library (Debian's libpg-query-dev), used by the statement
// classifier. Only the JSON entry points are usable: this build exports no protobuf unpackers, and
// pg_query_raw_parse needs the library's internal headers.
//
// Thread safety: every piece of mutable state the parser keeps (its memory contexts, error stack and
// scanner state) is thread-local in this build, set up lazily on each thread's first call and freed by
// a pthread key destructor when the thread exits, so several event loops may parse at once without a
// lock. What it does not have is a stack-depth check: stack_is_too_deep() is compiled to return false,
// so a deeply nested expression recurses until the thread's stack runs out. Callers must bound the
// input (see StatementClassifier.maximumTextLength).
#include <pg_query.h>

#endif
