#ifndef SLUICE_LIBPQ_SHIM_H
#define SLUICE_LIBPQ_SHIM_H
// Tests and tools only: the proxy speaks the protocol itself and never links libpq.
#include <postgresql/libpq-fe.h>
#endif
