// Invariant checks: a failed STRATA_CHECK is a bug in strata, never a user's mistake,
// so it reports file and line and aborts. User input is validated with Status instead.
#pragma once

#include <cstdio>
#include <cstdlib>

#define STRATA_CHECK(cond)                                                                  \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "strata: internal invariant failed at %s:%d: %s\n", __FILE__,    \
                   __LINE__, #cond);                                                        \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
