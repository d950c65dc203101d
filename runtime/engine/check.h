// Checks for programmer errors inside the engine. They stay on in release
// builds: a broken invariant means the engine's own state is corrupt, and the
// only safe answer is to stop (TigerBeetle's rule). Bad *input* never reaches
// these: it is answered with a Status.
#pragma once

#include <cstdio>
#include <cstdlib>

#define RESIDENCY_CHECK_MSG(cond, msg)                                              \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__,   \
                   #cond, msg);                                                     \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)

#define RESIDENCY_CHECK(cond) RESIDENCY_CHECK_MSG(cond, "")
